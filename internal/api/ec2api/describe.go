package ec2api

import (
	"encoding/xml"
	"fmt"
	"net/netip"
	"slices"
	"strconv"
	"strings"

	"github.com/efsd/efsd/internal/efs"
)

// set is an EC2 list: <xSet><item>…</item>…</xSet>, written even when
// empty, as EC2 does.
type set[T any] struct {
	Items []T `xml:"item"`
}

type tagSet struct{}

// --- DescribeVpcs ---

type vpcCidrAssoc struct {
	AssociationID string `xml:"associationId"`
	CidrBlock     string `xml:"cidrBlock"`
	State         struct {
		State string `xml:"state"`
	} `xml:"cidrBlockState"`
}

type vpcItem struct {
	VpcID             string            `xml:"vpcId"`
	OwnerID           string            `xml:"ownerId"`
	State             string            `xml:"state"`
	CidrBlock         string            `xml:"cidrBlock"`
	CidrAssociations  set[vpcCidrAssoc] `xml:"cidrBlockAssociationSet"`
	Ipv6Associations  set[struct{}]     `xml:"ipv6CidrBlockAssociationSet"`
	DhcpOptionsID     string            `xml:"dhcpOptionsId"`
	InstanceTenancy   string            `xml:"instanceTenancy"`
	IsDefault         bool              `xml:"isDefault"`
	BlockPublicAccess struct {
		InternetGatewayBlockMode string `xml:"internetGatewayBlockMode"`
	} `xml:"blockPublicAccessStates"`
	Tags set[tagSet] `xml:"tagSet"`
}

type describeVpcsResponse struct {
	XMLName xml.Name `xml:"DescribeVpcsResponse"`
	header
	Vpcs      set[vpcItem] `xml:"vpcSet"`
	NextToken string       `xml:"nextToken,omitempty"`
}

var vpcFilters = names("vpc-id", "is-default", "cidr", "cidr-block-association.cidr-block",
	"cidr-block-association.association-id", "cidr-block-association.state", "state", "owner-id", "dhcp-options-id",
	"ipv6-cidr-block-association.ipv6-cidr-block")

func (h *Handler) describeVpcs(c *call) (any, error) {
	ids, fs, pg, err := describeParams(c, "VpcId", "VpcIds", vpcFilters)
	if err != nil {
		return nil, err
	}
	n, _, err := h.svc.NetworkInterfaces(c.ctx, c.p)
	if err != nil {
		return nil, err
	}
	known := map[string]bool{}
	for _, v := range n.VPCs {
		known[v.ID] = true
	}
	if err := allKnown(ids, known, "vpc-", "InvalidVpcID.Malformed", "InvalidVpcID.NotFound", "The vpc ID '%s' does not exist"); err != nil {
		return nil, err
	}
	var out []vpcItem
	for _, v := range n.VPCs {
		assoc := v.ID[len("vpc-"):]
		a := func(name string) []string {
			switch name {
			case "vpc-id":
				return []string{v.ID}
			case "is-default":
				return []string{boolString(v.Default)}
			case "cidr", "cidr-block-association.cidr-block":
				return []string{v.CIDR}
			case "cidr-block-association.association-id":
				return []string{"vpc-cidr-assoc-" + assoc}
			case "cidr-block-association.state":
				return []string{"associated"}
			case "state":
				return []string{"available"}
			case "owner-id":
				return []string{c.p.Account}
			case "dhcp-options-id":
				return []string{"default"}
			}
			return nil
		}
		if !selected(ids, v.ID) || !matches(fs, a) {
			continue
		}
		it := vpcItem{VpcID: v.ID, OwnerID: c.p.Account, State: "available", CidrBlock: v.CIDR,
			DhcpOptionsID: "default", InstanceTenancy: "default", IsDefault: v.Default}
		ca := vpcCidrAssoc{AssociationID: "vpc-cidr-assoc-" + assoc, CidrBlock: v.CIDR}
		ca.State.State = "associated"
		it.CidrAssociations.Items = []vpcCidrAssoc{ca}
		it.BlockPublicAccess.InternetGatewayBlockMode = "off"
		out = append(out, it)
	}
	resp := &describeVpcsResponse{}
	resp.Vpcs.Items, resp.NextToken = apply(pg, out, func(v vpcItem) string { return v.VpcID })
	return resp, nil
}

// --- DescribeSubnets ---

type subnetItem struct {
	SubnetID                    string        `xml:"subnetId"`
	SubnetArn                   string        `xml:"subnetArn"`
	State                       string        `xml:"state"`
	VpcID                       string        `xml:"vpcId"`
	OwnerID                     string        `xml:"ownerId"`
	CidrBlock                   string        `xml:"cidrBlock"`
	Ipv6Associations            set[struct{}] `xml:"ipv6CidrBlockAssociationSet"`
	AvailableIPAddressCount     int           `xml:"availableIpAddressCount"`
	AvailabilityZone            string        `xml:"availabilityZone"`
	AvailabilityZoneID          string        `xml:"availabilityZoneId"`
	DefaultForAz                bool          `xml:"defaultForAz"`
	MapPublicIPOnLaunch         bool          `xml:"mapPublicIpOnLaunch"`
	MapCustomerOwnedIPOnLaunch  bool          `xml:"mapCustomerOwnedIpOnLaunch"`
	AssignIpv6AddressOnCreation bool          `xml:"assignIpv6AddressOnCreation"`
	Ipv6Native                  bool          `xml:"ipv6Native"`
	EnableDNS64                 bool          `xml:"enableDns64"`
	PrivateDNSNameOptions       struct {
		HostnameType                    string `xml:"hostnameType"`
		EnableResourceNameDNSARecord    bool   `xml:"enableResourceNameDnsARecord"`
		EnableResourceNameDNSAAAARecord bool   `xml:"enableResourceNameDnsAAAARecord"`
	} `xml:"privateDnsNameOptionsOnLaunch"`
	Tags set[tagSet] `xml:"tagSet"`
}

type describeSubnetsResponse struct {
	XMLName xml.Name `xml:"DescribeSubnetsResponse"`
	header
	Subnets   set[subnetItem] `xml:"subnetSet"`
	NextToken string          `xml:"nextToken,omitempty"`
}

var subnetFilters = names("subnet-id", "vpc-id", "availability-zone", "availability-zone-id",
	"default-for-az", "cidr", "cidr-block", "state", "owner-id", "subnet-arn", "available-ip-address-count",
	"map-public-ip-on-launch", "ipv6-native", "ipv6-cidr-block-association.ipv6-cidr-block")

func (h *Handler) describeSubnets(c *call) (any, error) {
	ids, fs, pg, err := describeParams(c, "SubnetId", "SubnetIds", subnetFilters)
	if err != nil {
		return nil, err
	}
	n, mts, err := h.svc.NetworkInterfaces(c.ctx, c.p)
	if err != nil {
		return nil, err
	}
	known := map[string]bool{}
	for _, s := range n.Subnets {
		known[s.ID] = true
	}
	if err := allKnown(ids, known, "subnet-", "InvalidSubnetID.Malformed", "InvalidSubnetID.NotFound", "The subnet ID '%s' does not exist"); err != nil {
		return nil, err
	}
	used := map[string]int{}
	for _, mt := range mts {
		used[mt.SubnetID]++
	}
	// The first subnet of the default VPC in each zone is the one efsd made
	// with the network: the zone's default subnet. Declared ones are not.
	defaultFor := map[string]string{}
	for _, v := range n.VPCs {
		for _, s := range n.Subnets {
			if v.Default && s.VPCID == v.ID && defaultFor[s.ZoneName] == "" {
				defaultFor[s.ZoneName] = s.ID
			}
		}
	}
	var out []subnetItem
	for _, s := range n.Subnets {
		arn := fmt.Sprintf("arn:aws:ec2:%s:%s:subnet/%s", c.p.Region, c.p.Account, s.ID)
		free := max(addresses(s.CIDR)-5-used[s.ID], 0) // EC2 reserves 5 addresses per subnet
		def := defaultFor[s.ZoneName] == s.ID
		a := func(name string) []string {
			switch name {
			case "subnet-id":
				return []string{s.ID}
			case "vpc-id":
				return []string{s.VPCID}
			case "availability-zone":
				return []string{s.ZoneName}
			case "availability-zone-id":
				return []string{s.ZoneID}
			case "default-for-az":
				return []string{boolString(def)}
			case "cidr", "cidr-block":
				return []string{s.CIDR}
			case "state":
				return []string{"available"}
			case "owner-id":
				return []string{c.p.Account}
			case "subnet-arn":
				return []string{arn}
			case "available-ip-address-count":
				return []string{strconv.Itoa(free)}
			case "map-public-ip-on-launch", "ipv6-native":
				return []string{"false"}
			}
			return nil
		}
		if !selected(ids, s.ID) || !matches(fs, a) {
			continue
		}
		it := subnetItem{SubnetID: s.ID, SubnetArn: arn, State: "available", VpcID: s.VPCID, OwnerID: c.p.Account,
			CidrBlock: s.CIDR, AvailableIPAddressCount: free, AvailabilityZone: s.ZoneName, AvailabilityZoneID: s.ZoneID,
			DefaultForAz: def}
		it.PrivateDNSNameOptions.HostnameType = "ip-name"
		out = append(out, it)
	}
	resp := &describeSubnetsResponse{}
	resp.Subnets.Items, resp.NextToken = apply(pg, out, func(s subnetItem) string { return s.SubnetID })
	return resp, nil
}

// addresses is how many IPv4 addresses a CIDR block holds (capped).
func addresses(cidr string) int {
	p, err := netip.ParsePrefix(cidr)
	if err != nil || !p.Addr().Is4() {
		return 0
	}
	return 1 << min(32-p.Bits(), 30)
}

// --- DescribeSecurityGroups ---

type ipRange struct {
	CidrIP      string `xml:"cidrIp"`
	Description string `xml:"description,omitempty"`
}

type ipv6Range struct {
	CidrIpv6    string `xml:"cidrIpv6"`
	Description string `xml:"description,omitempty"`
}

type ipPermission struct {
	IPProtocol    string         `xml:"ipProtocol"`
	FromPort      *int           `xml:"fromPort"`
	ToPort        *int           `xml:"toPort"`
	Groups        set[struct{}]  `xml:"groups"`
	IPRanges      set[ipRange]   `xml:"ipRanges"`
	Ipv6Ranges    set[ipv6Range] `xml:"ipv6Ranges"`
	PrefixListIDs set[struct{}]  `xml:"prefixListIds"`
}

type securityGroupItem struct {
	OwnerID          string            `xml:"ownerId"`
	GroupID          string            `xml:"groupId"`
	GroupName        string            `xml:"groupName"`
	GroupDescription string            `xml:"groupDescription"`
	VpcID            string            `xml:"vpcId"`
	IPPermissions    set[ipPermission] `xml:"ipPermissions"`
	IPPermissionsOut set[ipPermission] `xml:"ipPermissionsEgress"`
	SecurityGroupArn string            `xml:"securityGroupArn"`
	Tags             set[tagSet]       `xml:"tagSet"`
}

type describeSecurityGroupsResponse struct {
	XMLName xml.Name `xml:"DescribeSecurityGroupsResponse"`
	header
	Groups    set[securityGroupItem] `xml:"securityGroupInfo"`
	NextToken string                 `xml:"nextToken,omitempty"`
}

var groupFilters = names("group-id", "group-name", "vpc-id", "owner-id", "description",
	"ip-permission.cidr", "ip-permission.protocol", "ip-permission.from-port", "ip-permission.to-port")

// groupDescription is what EC2 shows for a group: the one it was made
// with; efsd's default groups have EC2's, config-file groups their name.
func groupDescription(g efs.SecurityGroup) string {
	switch {
	case g.Description != "":
		return g.Description
	case g.Name == "default":
		return "default VPC security group"
	}
	return g.Name
}

func (h *Handler) describeSecurityGroups(c *call) (any, error) {
	ids, fs, pg, err := describeParams(c, "GroupId", "GroupIds", groupFilters)
	if err != nil {
		return nil, err
	}
	groupNames, err := list(c, "GroupName")
	if err != nil {
		return nil, err
	}
	if len(groupNames) > 0 && pg.max > 0 {
		return nil, errorf("InvalidParameterCombination", "The parameter GroupNames cannot be used with the parameter maxResults")
	}
	n, _, err := h.svc.NetworkInterfaces(c.ctx, c.p)
	if err != nil {
		return nil, err
	}
	knownIDs, knownNames := map[string]bool{}, map[string]bool{}
	for _, g := range n.SecurityGroups {
		knownIDs[g.ID] = true
		// GroupName names groups of the default VPC, as in EC2.
		knownNames[g.Name] = true
	}
	if err := allKnown(ids, knownIDs, "sg-", "InvalidGroupId.Malformed", "InvalidGroup.NotFound", "The security group '%s' does not exist"); err != nil {
		return nil, err
	}
	for _, name := range groupNames {
		if !knownNames[name] {
			return nil, errorf("InvalidGroup.NotFound", "The security group '%s' does not exist in default VPC '%s'", name, n.VPCs[0].ID)
		}
	}
	var out []securityGroupItem
	for _, g := range n.SecurityGroups {
		perms := permissions(n.Ingress(g))
		a := func(name string) []string {
			switch name {
			case "group-id":
				return []string{g.ID}
			case "group-name":
				return []string{g.Name}
			case "vpc-id":
				return []string{g.VPCID}
			case "owner-id":
				return []string{c.p.Account}
			case "description":
				return []string{groupDescription(g)}
			}
			var vs []string
			for _, p := range perms {
				switch name {
				case "ip-permission.protocol":
					vs = append(vs, p.IPProtocol)
				case "ip-permission.from-port":
					if p.FromPort != nil {
						vs = append(vs, strconv.Itoa(*p.FromPort))
					}
				case "ip-permission.to-port":
					if p.ToPort != nil {
						vs = append(vs, strconv.Itoa(*p.ToPort))
					}
				case "ip-permission.cidr":
					for _, r := range p.IPRanges.Items {
						vs = append(vs, r.CidrIP)
					}
				}
			}
			return vs
		}
		if !selected(ids, g.ID) || len(groupNames) > 0 && !selected(groupNames, g.Name) || !matches(fs, a) {
			continue
		}
		it := securityGroupItem{OwnerID: c.p.Account, GroupID: g.ID, GroupName: g.Name, GroupDescription: groupDescription(g),
			VpcID: g.VPCID, SecurityGroupArn: fmt.Sprintf("arn:aws:ec2:%s:%s:security-group/%s", c.p.Region, c.p.Account, g.ID)}
		it.IPPermissions.Items = perms
		if g.API {
			it.IPPermissionsOut.Items = permissions(g.Egress)
		} else {
			egress := ipPermission{IPProtocol: "-1"}
			egress.IPRanges.Items = []ipRange{{CidrIP: "0.0.0.0/0"}}
			it.IPPermissionsOut.Items = []ipPermission{egress}
		}
		out = append(out, it)
	}
	resp := &describeSecurityGroupsResponse{}
	resp.Groups.Items, resp.NextToken = apply(pg, out, func(g securityGroupItem) string { return g.GroupID })
	return resp, nil
}

// permissions groups ingress rules into EC2's IpPermissions: one per
// protocol and port range, with its IPv4 and IPv6 ranges.
func permissions(rules []efs.IngressRule) []ipPermission {
	var out []ipPermission
	index := map[string]int{}
	for _, r := range rules {
		key := fmt.Sprintf("%s/%d/%d", r.Protocol, r.FromPort, r.ToPort)
		i, ok := index[key]
		if !ok {
			p := ipPermission{IPProtocol: r.Protocol}
			if r.Protocol != efs.ProtocolAll {
				from, to := r.FromPort, r.ToPort
				p.FromPort, p.ToPort = &from, &to
			}
			i = len(out)
			index[key] = i
			out = append(out, p)
		}
		if pfx, err := netip.ParsePrefix(r.CIDR); err == nil && pfx.Addr().Is6() {
			out[i].Ipv6Ranges.Items = append(out[i].Ipv6Ranges.Items, ipv6Range{CidrIpv6: r.CIDR, Description: r.Description})
		} else {
			out[i].IPRanges.Items = append(out[i].IPRanges.Items, ipRange{CidrIP: r.CIDR, Description: r.Description})
		}
	}
	return out
}

// --- DescribeAvailabilityZones ---

type zoneItem struct {
	ZoneName           string        `xml:"zoneName"`
	ZoneID             string        `xml:"zoneId"`
	ZoneState          string        `xml:"zoneState"`
	RegionName         string        `xml:"regionName"`
	GroupName          string        `xml:"groupName"`
	NetworkBorderGroup string        `xml:"networkBorderGroup"`
	OptInStatus        string        `xml:"optInStatus"`
	ZoneType           string        `xml:"zoneType"`
	Messages           set[struct{}] `xml:"messageSet"`
}

type describeAvailabilityZonesResponse struct {
	XMLName xml.Name `xml:"DescribeAvailabilityZonesResponse"`
	header
	Zones set[zoneItem] `xml:"availabilityZoneInfo"`
}

var zoneFilters = names("zone-name", "zone-id", "region-name", "state", "zone-type", "group-name",
	"network-border-group", "opt-in-status")

func (h *Handler) describeAvailabilityZones(c *call) (any, error) {
	zoneNames, err := list(c, "ZoneName")
	if err != nil {
		return nil, err
	}
	zoneIDs, err := list(c, "ZoneId")
	if err != nil {
		return nil, err
	}
	fs, err := filters(c, zoneFilters)
	if err != nil {
		return nil, err
	}
	zones := h.svc.Regions().Zones(c.p.Region)
	for _, want := range [][]string{zoneNames, zoneIDs} {
		for _, z := range want {
			found := false
			for _, have := range zones {
				found = found || have.Name == z || have.ID == z
			}
			if !found {
				return nil, errorf("InvalidParameterValue", "Invalid availability zone: [%s]", z)
			}
		}
	}
	resp := &describeAvailabilityZonesResponse{}
	for _, z := range zones {
		a := func(name string) []string {
			switch name {
			case "zone-name":
				return []string{z.Name}
			case "zone-id":
				return []string{z.ID}
			case "region-name", "group-name", "network-border-group":
				return []string{c.p.Region}
			case "state":
				return []string{"available"}
			case "zone-type":
				return []string{"availability-zone"}
			case "opt-in-status":
				return []string{"opt-in-not-required"}
			}
			return nil
		}
		named := slices.Contains(zoneNames, z.Name) || slices.Contains(zoneIDs, z.ID)
		if len(zoneNames)+len(zoneIDs) > 0 && !named || !matches(fs, a) {
			continue
		}
		resp.Zones.Items = append(resp.Zones.Items, zoneItem{ZoneName: z.Name, ZoneID: z.ID, ZoneState: "available",
			RegionName: c.p.Region, GroupName: c.p.Region, NetworkBorderGroup: c.p.Region,
			OptInStatus: "opt-in-not-required", ZoneType: "availability-zone"})
	}
	return resp, nil
}

// --- DescribeNetworkInterfaces ---

type groupIdentifier struct {
	GroupID   string `xml:"groupId"`
	GroupName string `xml:"groupName"`
}

type privateIP struct {
	PrivateIPAddress string `xml:"privateIpAddress"`
	PrivateDNSName   string `xml:"privateDnsName"`
	Primary          bool   `xml:"primary"`
}

type networkInterfaceItem struct {
	NetworkInterfaceID string               `xml:"networkInterfaceId"`
	SubnetID           string               `xml:"subnetId"`
	VpcID              string               `xml:"vpcId"`
	AvailabilityZone   string               `xml:"availabilityZone"`
	Description        string               `xml:"description"`
	OwnerID            string               `xml:"ownerId"`
	RequesterManaged   bool                 `xml:"requesterManaged"`
	Status             string               `xml:"status"`
	MacAddress         string               `xml:"macAddress"`
	PrivateIPAddress   string               `xml:"privateIpAddress"`
	PrivateDNSName     string               `xml:"privateDnsName"`
	SourceDestCheck    bool                 `xml:"sourceDestCheck"`
	Groups             set[groupIdentifier] `xml:"groupSet"`
	PrivateIPAddresses set[privateIP]       `xml:"privateIpAddressesSet"`
	Ipv6Addresses      set[struct{}]        `xml:"ipv6AddressesSet"`
	InterfaceType      string               `xml:"interfaceType"`
	Tags               set[tagSet]          `xml:"tagSet"`
}

type describeNetworkInterfacesResponse struct {
	XMLName xml.Name `xml:"DescribeNetworkInterfacesResponse"`
	header
	Interfaces set[networkInterfaceItem] `xml:"networkInterfaceSet"`
	NextToken  string                    `xml:"nextToken,omitempty"`
}

var eniFilters = names("network-interface-id", "subnet-id", "vpc-id", "availability-zone", "group-id",
	"group-name", "addresses.private-ip-address", "private-ip-address", "description", "status", "owner-id",
	"interface-type", "requester-managed", "mac-address", "private-dns-name", "source-dest-check")

func (h *Handler) describeNetworkInterfaces(c *call) (any, error) {
	ids, fs, pg, err := describeParams(c, "NetworkInterfaceId", "NetworkInterfaceIds", eniFilters)
	if err != nil {
		return nil, err
	}
	n, mts, err := h.svc.NetworkInterfaces(c.ctx, c.p)
	if err != nil {
		return nil, err
	}
	known := map[string]bool{}
	for _, mt := range mts {
		known[mt.ENI] = true
	}
	if err := allKnown(ids, known, "eni-", "InvalidNetworkInterfaceID.Malformed", "InvalidNetworkInterfaceID.NotFound", "The networkInterface ID '%s' does not exist"); err != nil {
		return nil, err
	}
	var out []networkInterfaceItem
	for _, mt := range mts {
		desc := fmt.Sprintf("EFS mount target for %s (%s)", mt.FileSystemID, mt.ID)
		dns := privateDNSName(mt.IP, c.p.Region)
		mac := macAddress(mt.ENI)
		var groups []groupIdentifier
		for _, id := range mt.SecurityGroups {
			name := ""
			if g, ok := n.SecurityGroup(id); ok {
				name = g.Name
			}
			groups = append(groups, groupIdentifier{GroupID: id, GroupName: name})
		}
		a := func(name string) []string {
			switch name {
			case "network-interface-id":
				return []string{mt.ENI}
			case "subnet-id":
				return []string{mt.SubnetID}
			case "vpc-id":
				return []string{mt.VPCID}
			case "availability-zone":
				return []string{mt.ZoneName}
			case "addresses.private-ip-address", "private-ip-address":
				return []string{mt.IP}
			case "description":
				return []string{desc}
			case "status":
				return []string{"in-use"}
			case "owner-id":
				return []string{c.p.Account}
			case "interface-type":
				return []string{"interface"}
			case "requester-managed":
				return []string{"true"}
			case "mac-address":
				return []string{mac}
			case "private-dns-name":
				return []string{dns}
			case "source-dest-check":
				return []string{"true"}
			}
			var vs []string
			for _, g := range groups {
				if name == "group-id" {
					vs = append(vs, g.GroupID)
				} else if name == "group-name" {
					vs = append(vs, g.GroupName)
				}
			}
			return vs
		}
		if !selected(ids, mt.ENI) || !matches(fs, a) {
			continue
		}
		it := networkInterfaceItem{NetworkInterfaceID: mt.ENI, SubnetID: mt.SubnetID, VpcID: mt.VPCID,
			AvailabilityZone: mt.ZoneName, Description: desc, OwnerID: c.p.Account, RequesterManaged: true,
			Status: "in-use", MacAddress: mac, PrivateIPAddress: mt.IP, PrivateDNSName: dns, SourceDestCheck: true,
			InterfaceType: "interface"}
		it.Groups.Items = groups
		it.PrivateIPAddresses.Items = []privateIP{{PrivateIPAddress: mt.IP, PrivateDNSName: dns, Primary: true}}
		out = append(out, it)
	}
	resp := &describeNetworkInterfacesResponse{}
	resp.Interfaces.Items, resp.NextToken = apply(pg, out, func(e networkInterfaceItem) string { return e.NetworkInterfaceID })
	return resp, nil
}

// privateDNSName is EC2's internal host name of an address.
func privateDNSName(ip, region string) string {
	host := "ip-" + strings.ReplaceAll(ip, ".", "-")
	if region == "us-east-1" {
		return host + ".ec2.internal"
	}
	return host + "." + region + ".compute.internal"
}

// macAddress derives a stable, locally administered MAC address from an
// ENI ID (02: and the ID's first ten hex digits).
func macAddress(eni string) string {
	hex := strings.TrimPrefix(eni, "eni-") + "0000000000"
	b := []string{"02"}
	for i := 0; i < 10; i += 2 {
		b = append(b, hex[i:i+2])
	}
	return strings.Join(b, ":")
}

// --- shared ---

func names(ns ...string) map[string]bool {
	m := make(map[string]bool, len(ns))
	for _, n := range ns {
		m[n] = true
	}
	return m
}

// describeParams reads a describe action's ID list, filters and paging.
func describeParams(c *call, idKey, idParam string, known map[string]bool) ([]string, []filter, page, error) {
	ids, err := list(c, idKey)
	if err != nil {
		return nil, nil, page{}, err
	}
	fs, err := filters(c, known)
	if err != nil {
		return nil, nil, page{}, err
	}
	pg, err := paging(c, idParam, ids)
	return ids, fs, pg, err
}

// allKnown answers EC2's errors for an ID list: <Kind>.Malformed for an ID
// without the resource's prefix, <Kind>.NotFound for one that does not
// exist (in the caller's account and region).
func allKnown(ids []string, known map[string]bool, prefix, malformed, notFound, msg string) error {
	for _, id := range ids {
		if !strings.HasPrefix(id, prefix) || len(id) == len(prefix) {
			return errorf(malformed, "Invalid id: \"%s\"", id)
		}
	}
	for _, id := range ids {
		if !known[id] {
			return errorf(notFound, msg, id)
		}
	}
	return nil
}

// selected reports whether id is in ids, or ids is empty (no selection).
func selected(ids []string, id string) bool {
	return len(ids) == 0 || slices.Contains(ids, id)
}
