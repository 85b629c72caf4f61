package main

import (
	"encoding/json"
	"io"

	"github.com/efsd/efsd/internal/efs"
)

// writeNetwork prints a network in the field names of the EC2 API, which
// users of EFS already know.
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
	type group struct {
		GroupId   string
		GroupName string
		VpcId     string
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
		out.SecurityGroups = append(out.SecurityGroups, group{g.ID, g.Name, g.VPCID})
	}
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(out)
}
