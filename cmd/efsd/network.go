package main

import (
	"encoding/json"
	"io"
	"net/netip"

	"github.com/efsd/efsd/internal/efs"
)

// writeNetwork prints a network in the field names of the EC2 API, which
// users of EFS already know (security groups as DescribeSecurityGroups
// shows them).
func writeNetwork(w io.Writer, account, region string, port int, n *efs.Network) error {
	type vpc struct {
		VpcId     string
		CidrBlock string
		IsDefault bool
	}
	type subnet struct {
		SubnetId           string
		VpcId              string
		AvailabilityZone   string
		AvailabilityZoneId string
		CidrBlock          string
	}
	type ipRange struct {
		CidrIp      string `json:",omitempty"`
		CidrIpv6    string `json:",omitempty"`
		Description string `json:",omitempty"`
	}
	type permission struct {
		IpProtocol string
		FromPort   *int `json:",omitempty"`
		ToPort     *int `json:",omitempty"`
		IpRanges   []ipRange
		Ipv6Ranges []ipRange
	}
	// IpPermissions are the rules in effect, a default group's built-in
	// ones included; NfsSources are the ranges they admit to the NFS port.
	type group struct {
		GroupId       string
		GroupName     string
		VpcId         string
		IpPermissions []permission
		NfsSources    []string
	}
	out := struct {
		Account        string
		Region         string
		NfsPort        int
		Vpcs           []vpc
		Subnets        []subnet
		SecurityGroups []group
	}{Account: account, Region: region, NfsPort: port}
	for _, v := range n.VPCs {
		out.Vpcs = append(out.Vpcs, vpc{v.ID, v.CIDR, v.Default})
	}
	for _, s := range n.Subnets {
		out.Subnets = append(out.Subnets, subnet{s.ID, s.VPCID, s.ZoneName, s.ZoneID, s.CIDR})
	}
	for _, g := range n.SecurityGroups {
		og := group{GroupId: g.ID, GroupName: g.Name, VpcId: g.VPCID, IpPermissions: []permission{}, NfsSources: []string{}}
		for _, r := range n.Ingress(g) {
			p := permission{IpProtocol: r.Protocol, IpRanges: []ipRange{}, Ipv6Ranges: []ipRange{}}
			if r.Protocol != efs.ProtocolAll {
				p.FromPort, p.ToPort = &r.FromPort, &r.ToPort
			}
			if pfx, err := netip.ParsePrefix(r.CIDR); err == nil && pfx.Addr().Is6() {
				p.Ipv6Ranges = append(p.Ipv6Ranges, ipRange{CidrIpv6: r.CIDR, Description: r.Description})
			} else {
				p.IpRanges = append(p.IpRanges, ipRange{CidrIp: r.CIDR, Description: r.Description})
			}
			og.IpPermissions = append(og.IpPermissions, p)
			if r.AdmitsPort(port) {
				og.NfsSources = append(og.NfsSources, r.CIDR)
			}
		}
		out.SecurityGroups = append(out.SecurityGroups, og)
	}
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(out)
}
