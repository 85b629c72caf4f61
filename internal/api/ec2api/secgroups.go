package ec2api

import (
	"encoding/xml"
	"slices"
	"strconv"
	"strings"

	"github.com/efsd/efsd/internal/efs"
)

type createSecurityGroupResponse struct {
	XMLName xml.Name `xml:"CreateSecurityGroupResponse"`
	header
	GroupID string      `xml:"groupId"`
	Tags    set[tagSet] `xml:"tagSet"`
}

// createSecurityGroup makes a group without rules; tags are not kept, so
// a request with TagSpecification is refused rather than half-done.
func (h *Handler) createSecurityGroup(c *call) (any, error) {
	if hasPrefix(c, "TagSpecification.") {
		return nil, errorf("InvalidParameterValue", "efsd's security groups carry no tags; leave out TagSpecification.")
	}
	name, desc := c.form.Get("GroupName"), c.form.Get("GroupDescription")
	if name == "" || desc == "" {
		return nil, errorf("MissingParameter", "The request must contain the parameters GroupName and GroupDescription.")
	}
	g, err := h.svc.CreateSecurityGroup(c.ctx, c.p, name, desc, c.form.Get("VpcId"))
	if err != nil {
		return nil, err
	}
	return &createSecurityGroupResponse{GroupID: g.ID}, nil
}

type returnResponse struct {
	XMLName xml.Name
	header
	Return bool `xml:"return"`
}

func (h *Handler) authorizeSecurityGroupIngress(c *call) (any, error) {
	ref, rules, err := ingressParams(c)
	if err != nil {
		return nil, err
	}
	if _, err := h.svc.AuthorizeIngress(c.ctx, c.p, ref, rules); err != nil {
		return nil, err
	}
	return &returnResponse{XMLName: xml.Name{Local: "AuthorizeSecurityGroupIngressResponse"}, Return: true}, nil
}

func (h *Handler) revokeSecurityGroupIngress(c *call) (any, error) {
	ref, rules, err := ingressParams(c)
	if err != nil {
		return nil, err
	}
	if _, err := h.svc.RevokeIngress(c.ctx, c.p, ref, rules); err != nil {
		return nil, err
	}
	return &returnResponse{XMLName: xml.Name{Local: "RevokeSecurityGroupIngressResponse"}, Return: true}, nil
}

func (h *Handler) authorizeSecurityGroupEgress(c *call) (any, error) {
	ref, rules, err := ingressParams(c)
	if err != nil {
		return nil, err
	}
	if _, err := h.svc.AuthorizeEgress(c.ctx, c.p, ref, rules); err != nil {
		return nil, err
	}
	return &returnResponse{XMLName: xml.Name{Local: "AuthorizeSecurityGroupEgressResponse"}, Return: true}, nil
}

func (h *Handler) revokeSecurityGroupEgress(c *call) (any, error) {
	ref, rules, err := ingressParams(c)
	if err != nil {
		return nil, err
	}
	if _, err := h.svc.RevokeEgress(c.ctx, c.p, ref, rules); err != nil {
		return nil, err
	}
	return &returnResponse{XMLName: xml.Name{Local: "RevokeSecurityGroupEgressResponse"}, Return: true}, nil
}

type deleteSecurityGroupResponse struct {
	XMLName xml.Name `xml:"DeleteSecurityGroupResponse"`
	header
	Return  bool   `xml:"return"`
	GroupID string `xml:"groupId"`
}

func (h *Handler) deleteSecurityGroup(c *call) (any, error) {
	ref, err := groupRef(c)
	if err != nil {
		return nil, err
	}
	id, err := h.svc.DeleteSecurityGroup(c.ctx, c.p, ref)
	if err != nil {
		return nil, err
	}
	return &deleteSecurityGroupResponse{Return: true, GroupID: id}, nil
}

func groupRef(c *call) (efs.GroupRef, error) {
	ref := efs.GroupRef{ID: c.form.Get("GroupId"), Name: c.form.Get("GroupName")}
	switch {
	case ref.ID == "" && ref.Name == "":
		return ref, errorf("MissingParameter", "The request must contain the parameter GroupId or GroupName.")
	case ref.ID != "" && (!strings.HasPrefix(ref.ID, "sg-") || len(ref.ID) == 3):
		return ref, errorf("InvalidGroupId.Malformed", "Invalid id: \"%s\"", ref.ID)
	}
	return ref, nil
}

// ingressParams reads the group and the rules: IpPermissions.N (each with
// its IpRanges and Ipv6Ranges, one rule per range), or the legacy
// top-level IpProtocol, FromPort, ToPort and CidrIp. Sources that are
// other groups or prefix lists are refused: efsd admits by address range.
func ingressParams(c *call) (efs.GroupRef, []efs.IngressRule, error) {
	ref, err := groupRef(c)
	if err != nil {
		return ref, nil, err
	}
	if c.form.Get("SourceSecurityGroupName") != "" || c.form.Get("SourceSecurityGroupOwnerId") != "" {
		return ref, nil, errorf("InvalidParameterValue", "efsd's security group rules admit address ranges (CidrIp) only, not other groups.")
	}
	var rules []efs.IngressRule
	if proto := c.form.Get("IpProtocol"); proto != "" || c.form.Get("CidrIp") != "" {
		r, err := rule(c, "", proto)
		if err != nil {
			return ref, nil, err
		}
		r.CIDR = c.form.Get("CidrIp")
		rules = append(rules, r)
	}
	perms, err := indices(c, "IpPermissions")
	if err != nil {
		return ref, nil, err
	}
	for _, i := range perms {
		pfx := "IpPermissions." + strconv.Itoa(i) + "."
		if hasPrefix(c, pfx+"Groups.") || hasPrefix(c, pfx+"PrefixListIds.") {
			return ref, nil, errorf("InvalidParameterValue", "efsd's security group rules admit address ranges (IpRanges, Ipv6Ranges) only, not groups or prefix lists.")
		}
		base, err := rule(c, pfx, c.form.Get(pfx+"IpProtocol"))
		if err != nil {
			return ref, nil, err
		}
		n := 0
		for _, rs := range []struct{ key, cidr string }{{"IpRanges", "CidrIp"}, {"Ipv6Ranges", "CidrIpv6"}} {
			idx, err := indices(c, pfx+rs.key)
			if err != nil {
				return ref, nil, err
			}
			for _, j := range idx {
				rp := pfx + rs.key + "." + strconv.Itoa(j) + "."
				r := base
				r.CIDR, r.Description = c.form.Get(rp+rs.cidr), c.form.Get(rp+"Description")
				rules = append(rules, r)
				n++
			}
		}
		if n == 0 {
			return ref, nil, errorf("InvalidParameterValue", "IpPermissions.%d has no IpRanges or Ipv6Ranges.", i)
		}
	}
	if len(rules) == 0 {
		return ref, nil, errorf("MissingParameter", "The request must contain the parameter IpPermissions.")
	}
	if len(rules) > maxListed {
		return ref, nil, errorf("InvalidParameterValue", "The request names more than %d rules.", maxListed)
	}
	return ref, rules, nil
}

// rule reads a permission's protocol and ports (prefix "" for the legacy
// top-level parameters). All traffic (-1) takes no ports.
func rule(c *call, prefix, proto string) (efs.IngressRule, error) {
	r := efs.IngressRule{Protocol: proto}
	if proto == "" {
		return r, errorf("MissingParameter", "The request must contain the parameter %sIpProtocol.", prefix)
	}
	if p := strings.ToLower(proto); p == "-1" || p == "all" {
		return r, nil
	}
	for _, port := range []struct {
		key string
		to  *int
	}{{"FromPort", &r.FromPort}, {"ToPort", &r.ToPort}} {
		v := c.form.Get(prefix + port.key)
		n, err := strconv.Atoi(v)
		if err != nil {
			return r, errorf("InvalidParameterValue", "Invalid value '%s' for %s%s.", v, prefix, port.key)
		}
		*port.to = n
	}
	return r, nil
}

// indices lists the N of the parameters key.N.… in order.
func indices(c *call, key string) ([]int, error) {
	seen := map[int]bool{}
	for k := range c.form {
		rest, ok := strings.CutPrefix(k, key+".")
		if !ok {
			continue
		}
		n, _, _ := strings.Cut(rest, ".")
		i, err := strconv.Atoi(n)
		if err != nil || i < 1 {
			return nil, errorf("InvalidParameterValue", "%s is not a parameter of this action.", k)
		}
		seen[i] = true
		if len(seen) > maxListed {
			return nil, errorf("InvalidParameterValue", "%s lists more than %d values.", key, maxListed)
		}
	}
	out := make([]int, 0, len(seen))
	for i := range seen {
		out = append(out, i)
	}
	slices.Sort(out)
	return out, nil
}

func hasPrefix(c *call, prefix string) bool {
	for k := range c.form {
		if strings.HasPrefix(k, prefix) {
			return true
		}
	}
	return false
}
