package efs

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"strings"
)

// Protocols of ingress rules, in EC2's IpProtocol vocabulary. efsd serves
// NFS over TCP only, so these are the two that can admit a client.
const (
	ProtocolTCP = "tcp"
	ProtocolAll = "-1" // all traffic
)

// IngressRule admits connections from a range of source addresses (CIDR,
// IPv4 or IPv6) to a range of TCP ports, or to every port when Protocol is
// ProtocolAll. It is EC2's IpPermission with one range.
type IngressRule struct {
	Protocol    string
	FromPort    int `json:",omitempty"`
	ToPort      int `json:",omitempty"`
	CIDR        string
	Description string `json:",omitempty"`
}

// CheckIngressRule validates a rule and returns it normalized: protocol
// "tcp", "6", "-1" or "all" (any case), ports within 0-65535 with
// FromPort <= ToPort for tcp (ignored, and cleared, for all traffic), and a
// CIDR block written in its canonical form (192.168.50.0/24, not
// 192.168.50.7/24, which would hide a typo).
func CheckIngressRule(r IngressRule) (IngressRule, error) {
	switch strings.ToLower(r.Protocol) {
	case "tcp", "6":
		r.Protocol = ProtocolTCP
		for _, p := range []struct {
			name string
			v    int
		}{{"fromPort", r.FromPort}, {"toPort", r.ToPort}} {
			if p.v < 0 || p.v > 65535 {
				return r, fmt.Errorf("%s %d is not a port (0-65535)", p.name, p.v)
			}
		}
		if r.FromPort > r.ToPort {
			return r, fmt.Errorf("fromPort %d is above toPort %d", r.FromPort, r.ToPort)
		}
	case "-1", "all":
		r.Protocol, r.FromPort, r.ToPort = ProtocolAll, 0, 0
	default:
		return r, fmt.Errorf("ipProtocol %q: efsd serves NFS over TCP only; use \"tcp\" or \"-1\" (all traffic)", r.Protocol)
	}
	pfx, err := netip.ParsePrefix(r.CIDR)
	if err != nil {
		return r, fmt.Errorf("cidr %q is not a CIDR block such as 192.168.50.0/24", r.CIDR)
	}
	if pfx.Addr().Zone() != "" {
		return r, fmt.Errorf("cidr %q has a zone", r.CIDR)
	}
	if m := pfx.Masked(); m != pfx {
		return r, fmt.Errorf("cidr %q has host bits set; did you mean %s?", r.CIDR, m)
	}
	r.CIDR = pfx.String()
	return r, nil
}

// AdmitsPort reports whether the rule covers TCP port port.
func (r IngressRule) AdmitsPort(port int) bool {
	return r.Protocol == ProtocolAll || r.Protocol == ProtocolTCP && r.FromPort <= port && port <= r.ToPort
}

// hostLoopback is where this host's own clients come from when they
// connect to a loopback address: Linux picks 127.0.0.1 as the source for
// every address of 127.0.0.0/8.
var hostLoopback = netip.MustParsePrefix("127.0.0.1/32")

// Ingress returns a group's rules in effect. A VPC's default group admits,
// on every port, the VPC's range and its subnets' ranges (EC2's default
// group admits its own members; the VPC's ranges are where members live),
// and when one of those ranges is loopback also 127.0.0.1, the source of
// every local client; then the rules declared for it. The built-in rules
// are derived, not stored, so they follow the subnets declared later. Any other group has
// exactly its declared rules.
func (n *Network) Ingress(g SecurityGroup) []IngressRule {
	if d, ok := n.DefaultSecurityGroup(g.VPCID); !ok || d.ID != g.ID {
		return g.Ingress
	}
	var out []IngressRule
	loopback := false
	add := func(cidr, what string) {
		pfx, err := netip.ParsePrefix(cidr)
		if err != nil {
			return
		}
		pfx = pfx.Masked()
		for _, r := range out { // a subnet inside the VPC's range adds nothing
			if o, err := netip.ParsePrefix(r.CIDR); err == nil && o.Bits() <= pfx.Bits() && o.Contains(pfx.Addr()) {
				return
			}
		}
		loopback = loopback || pfx.Addr().IsLoopback()
		out = append(out, IngressRule{Protocol: ProtocolAll, CIDR: pfx.String(), Description: what})
	}
	for _, v := range n.VPCs {
		if v.ID == g.VPCID {
			add(v.CIDR, "the VPC's range")
		}
	}
	for _, s := range n.Subnets {
		if s.VPCID == g.VPCID {
			add(s.CIDR, "subnet "+s.ID)
		}
	}
	if loopback {
		add(hostLoopback.String(), "this host's loopback clients")
	}
	return append(out, g.Ingress...)
}

// Sources is a set of source address ranges.
type Sources []netip.Prefix

// Contains reports whether a is in one of the ranges.
func (s Sources) Contains(a netip.Addr) bool {
	a = a.Unmap()
	for _, p := range s {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

// MountTargetSources returns the source ranges that the security groups of
// a mount target (as stored now, not as mt was loaded) admit to TCP port
// port: the union of their ingress rules, as EC2 applies several groups. A
// group that no longer exists admits nothing. The answer stays right until
// DataPlaneEpoch moves.
func (s *Service) MountTargetSources(ctx context.Context, mt *MountTarget, port int) (Sources, error) {
	var out Sources
	err := s.store.View(ctx, func(tx Tx) error {
		cur, err := tx.MountTarget(mt.Account, mt.Region, mt.ID)
		if errors.Is(err, ErrNotFound) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("load mount target %s: %w", mt.ID, err)
		}
		n, err := tx.Network(mt.Account, mt.Region)
		if errors.Is(err, ErrNotFound) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("load network: %w", err)
		}
		for _, id := range cur.SecurityGroups {
			g, ok := n.SecurityGroup(id)
			if !ok {
				continue
			}
			for _, r := range n.Ingress(g) {
				pfx, err := netip.ParsePrefix(r.CIDR)
				if err != nil || !r.AdmitsPort(port) {
					continue
				}
				out = append(out, pfx.Masked())
			}
		}
		return nil
	})
	return out, err
}

// Error codes of EC2's API, for the security group changes EC2's front end
// makes (the EFS model has no words for them).
const (
	GroupNotFound       Code = "InvalidGroup.NotFound"
	GroupDuplicate      Code = "InvalidGroup.Duplicate"
	GroupReserved       Code = "InvalidGroup.Reserved"
	VPCNotFound         Code = "InvalidVpcID.NotFound"
	PermissionDuplicate Code = "InvalidPermission.Duplicate"
	PermissionNotFound  Code = "InvalidPermission.NotFound"
	DependencyViolation Code = "DependencyViolation"
	CannotDelete        Code = "CannotDelete"
	InvalidParameter    Code = "InvalidParameterValue"
	GroupLimitExceeded  Code = "SecurityGroupLimitExceeded"
	RuleLimitExceeded   Code = "RulesPerSecurityGroupLimitExceeded"
)

// Bounds on what the API may make, as EC2's default quotas.
const (
	maxGroupsPerVPC   = 2500
	maxRulesPerGroup  = 60
	maxGroupNameChars = 255
)

// GroupRef names a security group by ID, or by name in the default VPC
// (as EC2's GroupName parameter does).
type GroupRef struct {
	ID, Name string
}

func (n *Network) findGroup(ref GroupRef) (int, error) {
	for i, g := range n.SecurityGroups {
		if ref.ID != "" && g.ID == ref.ID || ref.ID == "" && g.Name == ref.Name && g.VPCID == n.VPCs[0].ID {
			return i, nil
		}
	}
	if ref.ID != "" {
		return -1, E(GroupNotFound, "The security group '%s' does not exist", ref.ID)
	}
	return -1, E(GroupNotFound, "The security group '%s' does not exist in default VPC '%s'", ref.Name, n.VPCs[0].ID)
}

// CreateSecurityGroup makes a security group without rules (it admits
// nothing) in a VPC of p's network, the default VPC when vpcID is "".
func (s *Service) CreateSecurityGroup(ctx context.Context, p Principal, name, description, vpcID string) (SecurityGroup, error) {
	var g SecurityGroup
	switch {
	case name == "" || len(name) > maxGroupNameChars:
		return g, E(InvalidParameter, "The group name must be 1 to %d characters.", maxGroupNameChars)
	case strings.HasPrefix(strings.ToLower(name), "sg-"):
		return g, E(InvalidParameter, "Group names may not be in the format sg-*.")
	case name == "default":
		return g, E(GroupReserved, "The security group 'default' is reserved")
	case description == "" || len(description) > 255:
		return g, E(InvalidParameter, "The group description must be 1 to 255 characters.")
	}
	err := s.store.Update(ctx, func(tx Tx) error {
		n, err := s.network(tx, p.Account, p.Region)
		if err != nil {
			return err
		}
		if vpcID == "" {
			vpcID = n.VPCs[0].ID
		}
		found := false
		for _, v := range n.VPCs {
			found = found || v.ID == vpcID
		}
		if !found {
			return E(VPCNotFound, "The vpc ID '%s' does not exist", vpcID)
		}
		count := 0
		for _, o := range n.SecurityGroups {
			if o.VPCID != vpcID {
				continue
			}
			if o.Name == name {
				return E(GroupDuplicate, "The security group '%s' already exists for VPC '%s'", name, vpcID)
			}
			count++
		}
		if count >= maxGroupsPerVPC {
			return E(GroupLimitExceeded, "The maximum number of security groups for VPC '%s' has been reached.", vpcID)
		}
		g = SecurityGroup{ID: "sg-" + s.ids.Hex(longIDDigits), VPCID: vpcID, Name: name, Description: description, API: true,
			Egress: []IngressRule{{Protocol: ProtocolAll, CIDR: "0.0.0.0/0"}}}
		n.SecurityGroups = append(n.SecurityGroups, g)
		return tx.PutNetwork(p.Account, p.Region, n)
	})
	return g, err
}

// AuthorizeIngress adds rules to a group; each is checked by
// CheckIngressRule, and one the group already has is refused. Mount
// targets with the group admit by them from the next connection.
func (s *Service) AuthorizeIngress(ctx context.Context, p Principal, ref GroupRef, rules []IngressRule) (SecurityGroup, error) {
	return s.authorize(ctx, p, ref, rules, false)
}

// AuthorizeEgress adds outbound rules to a group made through the API.
func (s *Service) AuthorizeEgress(ctx context.Context, p Principal, ref GroupRef, rules []IngressRule) (SecurityGroup, error) {
	return s.authorize(ctx, p, ref, rules, true)
}

// RevokeEgress removes outbound rules from a group made through the API.
func (s *Service) RevokeEgress(ctx context.Context, p Principal, ref GroupRef, rules []IngressRule) (SecurityGroup, error) {
	return s.revoke(ctx, p, ref, rules, true)
}

func (s *Service) authorize(ctx context.Context, p Principal, ref GroupRef, rules []IngressRule, egress bool) (SecurityGroup, error) {
	return s.changeRules(ctx, p, ref, egress, func(g *SecurityGroup, list *[]IngressRule) error {
		for _, r := range rules {
			r, err := CheckIngressRule(r)
			if err != nil {
				return E(InvalidParameter, "%s", err.Error())
			}
			if i := ruleIndex(*list, r); i >= 0 {
				return E(PermissionDuplicate, "the specified rule \"peer: %s, %s, %s\" already exists", r.CIDR, strings.ToUpper(r.Protocol), portRange(r))
			}
			if len(*list) >= maxRulesPerGroup {
				return E(RuleLimitExceeded, "The maximum number of rules per security group has been reached.")
			}
			*list = append(*list, r)
		}
		return nil
	})
}

// RevokeIngress removes rules from a group (matched by protocol, ports and
// CIDR; the description does not count). A rule the group lacks is
// InvalidPermission.NotFound; the default group's built-in rules cannot
// be revoked, as they are derived from the VPC.
func (s *Service) RevokeIngress(ctx context.Context, p Principal, ref GroupRef, rules []IngressRule) (SecurityGroup, error) {
	return s.revoke(ctx, p, ref, rules, false)
}

func (s *Service) revoke(ctx context.Context, p Principal, ref GroupRef, rules []IngressRule, egress bool) (SecurityGroup, error) {
	return s.changeRules(ctx, p, ref, egress, func(g *SecurityGroup, list *[]IngressRule) error {
		for _, r := range rules {
			r, err := CheckIngressRule(r)
			if err != nil {
				return E(InvalidParameter, "%s", err.Error())
			}
			i := ruleIndex(*list, r)
			if i < 0 {
				return E(PermissionNotFound, "The specified rule does not exist in this security group.")
			}
			*list = slices.Delete(*list, i, i+1)
		}
		return nil
	})
}

// changeRules applies change to a group's ingress or egress rules.
// Egress rules exist for groups made through the API only (the others
// show EC2's default, all traffic anywhere).
func (s *Service) changeRules(ctx context.Context, p Principal, ref GroupRef, egress bool, change func(*SecurityGroup, *[]IngressRule) error) (SecurityGroup, error) {
	var g SecurityGroup
	err := s.store.Update(ctx, func(tx Tx) error {
		n, err := s.network(tx, p.Account, p.Region)
		if err != nil {
			return err
		}
		i, err := n.findGroup(ref)
		if err != nil {
			return err
		}
		g = n.SecurityGroups[i]
		g.Ingress, g.Egress = slices.Clone(g.Ingress), slices.Clone(g.Egress)
		list := &g.Ingress
		if egress {
			if !g.API {
				return E(InvalidParameter, "the outbound rules of %s are not efsd's to change: it was not made through EC2's API", g.ID)
			}
			list = &g.Egress
		}
		if err := change(&g, list); err != nil {
			return err
		}
		n.SecurityGroups[i] = g
		return tx.PutNetwork(p.Account, p.Region, n)
	})
	if err != nil {
		return SecurityGroup{}, err
	}
	s.dataPlaneChanged() // mount targets admit by these rules
	return g, nil
}

// DeleteSecurityGroup deletes a group made through the API. A VPC's
// default group cannot be deleted, nor a group a mount target still names
// (DependencyViolation), nor one from the config file (which would
// declare it again at the next start).
func (s *Service) DeleteSecurityGroup(ctx context.Context, p Principal, ref GroupRef) (string, error) {
	var id string
	err := s.store.Update(ctx, func(tx Tx) error {
		n, err := s.network(tx, p.Account, p.Region)
		if err != nil {
			return err
		}
		i, err := n.findGroup(ref)
		if err != nil {
			return err
		}
		g := n.SecurityGroups[i]
		id = g.ID
		if g.Name == "default" {
			return E(CannotDelete, "the specified group: \"%s\" name: \"default\" cannot be deleted by a user", g.ID)
		}
		if !g.API {
			return E(CannotDelete, "the security group %s is declared in efsd's config file; remove it there", g.ID)
		}
		mts, err := tx.AllMountTargets()
		if err != nil {
			return fmt.Errorf("list mount targets: %w", err)
		}
		for _, mt := range mts {
			if mt.Account == p.Account && mt.Region == p.Region && slices.Contains(mt.SecurityGroups, g.ID) {
				return E(DependencyViolation, "resource %s has a dependent object", g.ID)
			}
		}
		n.SecurityGroups = slices.Delete(n.SecurityGroups, i, i+1)
		return tx.PutNetwork(p.Account, p.Region, n)
	})
	if err != nil {
		return "", err
	}
	s.dataPlaneChanged()
	return id, nil
}

func ruleIndex(rules []IngressRule, r IngressRule) int {
	for i, o := range rules {
		if o.Protocol == r.Protocol && o.FromPort == r.FromPort && o.ToPort == r.ToPort && o.CIDR == r.CIDR {
			return i
		}
	}
	return -1
}

func portRange(r IngressRule) string {
	if r.Protocol == ProtocolAll {
		return "ALL"
	}
	return fmt.Sprintf("%d-%d", r.FromPort, r.ToPort)
}
