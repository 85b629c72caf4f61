package api_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"
	"github.com/aws/aws-sdk-go-v2/service/efs"
	"github.com/aws/smithy-go"

	"github.com/efsd/efsd/internal/efstest"
)

// wantEC2Error checks err is an EC2 API error with the given code.
func wantEC2Error(t *testing.T, err error, code string) {
	t.Helper()
	var ae smithy.APIError
	if !errors.As(err, &ae) {
		t.Fatalf("got error %v, want API error %s", err, code)
	}
	if ae.ErrorCode() != code || ae.ErrorMessage() == "" {
		t.Fatalf("got error %s (%q), want %s with a message", ae.ErrorCode(), ae.ErrorMessage(), code)
	}
}

func ec2Filter(name string, values ...string) ec2types.Filter {
	return ec2types.Filter{Name: aws.String(name), Values: values}
}

func TestEC2DescribeVpcsAndSubnets(t *testing.T) {
	srv := efstest.Start(t)
	c := srv.EC2Client(efstest.AccountA, region)
	ctx := context.Background()
	n := network(t, srv, region)
	vpc := n.VPCs[0]

	vpcs, err := c.DescribeVpcs(ctx, &ec2.DescribeVpcsInput{})
	if err != nil {
		t.Fatal(err)
	}
	if len(vpcs.Vpcs) != 1 {
		t.Fatalf("vpcs: %+v", vpcs.Vpcs)
	}
	v := vpcs.Vpcs[0]
	if aws.ToString(v.VpcId) != vpc.ID || aws.ToString(v.CidrBlock) != vpc.CIDR || !aws.ToBool(v.IsDefault) ||
		v.State != ec2types.VpcStateAvailable || aws.ToString(v.OwnerId) != efstest.AccountA.Account ||
		len(v.CidrBlockAssociationSet) != 1 || aws.ToString(v.CidrBlockAssociationSet[0].CidrBlock) != vpc.CIDR {
		t.Fatalf("vpc: %+v", v)
	}
	vpcs, err = c.DescribeVpcs(ctx, &ec2.DescribeVpcsInput{Filters: []ec2types.Filter{ec2Filter("is-default", "true")}})
	if err != nil || len(vpcs.Vpcs) != 1 {
		t.Fatalf("is-default filter: %v %+v", err, vpcs)
	}
	vpcs, err = c.DescribeVpcs(ctx, &ec2.DescribeVpcsInput{Filters: []ec2types.Filter{ec2Filter("is-default", "false")}})
	if err != nil || len(vpcs.Vpcs) != 0 {
		t.Fatalf("is-default=false filter: %v %+v", err, vpcs)
	}
	// Terraform's data sources send EC2's camelCase filter names.
	vpcs, err = c.DescribeVpcs(ctx, &ec2.DescribeVpcsInput{Filters: []ec2types.Filter{ec2Filter("isDefault", "true")}})
	if err != nil || len(vpcs.Vpcs) != 1 {
		t.Fatalf("isDefault filter: %v %+v", err, vpcs)
	}
	_, err = c.DescribeVpcs(ctx, &ec2.DescribeVpcsInput{VpcIds: []string{"vpc-0123456789abcdef0"}})
	wantEC2Error(t, err, "InvalidVpcID.NotFound")
	attr, err := c.DescribeVpcAttribute(ctx, &ec2.DescribeVpcAttributeInput{VpcId: aws.String(vpc.ID), Attribute: ec2types.VpcAttributeNameEnableDnsHostnames})
	if err != nil || aws.ToString(attr.VpcId) != vpc.ID || attr.EnableDnsHostnames == nil || !aws.ToBool(attr.EnableDnsHostnames.Value) {
		t.Fatalf("DescribeVpcAttribute: %v %+v", err, attr)
	}
	_, err = c.DescribeVpcAttribute(ctx, &ec2.DescribeVpcAttributeInput{VpcId: aws.String("vpc-0123456789abcdef0"), Attribute: ec2types.VpcAttributeNameEnableDnsSupport})
	wantEC2Error(t, err, "InvalidVpcID.NotFound")

	all, err := c.DescribeSubnets(ctx, &ec2.DescribeSubnetsInput{})
	if err != nil {
		t.Fatal(err)
	}
	if len(all.Subnets) != len(n.Subnets) {
		t.Fatalf("got %d subnets, want %d", len(all.Subnets), len(n.Subnets))
	}
	want := n.Subnets[2]
	one, err := c.DescribeSubnets(ctx, &ec2.DescribeSubnetsInput{SubnetIds: []string{want.ID}})
	if err != nil {
		t.Fatal(err)
	}
	s := one.Subnets[0]
	if len(one.Subnets) != 1 || aws.ToString(s.SubnetId) != want.ID || aws.ToString(s.VpcId) != vpc.ID ||
		aws.ToString(s.AvailabilityZone) != want.ZoneName || aws.ToString(s.AvailabilityZoneId) != want.ZoneID ||
		aws.ToString(s.CidrBlock) != want.CIDR || !aws.ToBool(s.DefaultForAz) || s.State != ec2types.SubnetStateAvailable ||
		aws.ToInt32(s.AvailableIpAddressCount) != 251 ||
		aws.ToString(s.SubnetArn) != fmt.Sprintf("arn:aws:ec2:%s:%s:subnet/%s", region, efstest.AccountA.Account, want.ID) {
		t.Fatalf("subnet: %+v", s)
	}

	for _, tc := range []struct {
		name    string
		filters []ec2types.Filter
		want    int
	}{
		{"availability-zone", []ec2types.Filter{ec2Filter("availability-zone", want.ZoneName)}, 1},
		{"availability-zone wildcard", []ec2types.Filter{ec2Filter("availability-zone", region+"*")}, len(n.Subnets)},
		{"two zones", []ec2types.Filter{ec2Filter("availability-zone", n.Subnets[0].ZoneName, n.Subnets[1].ZoneName)}, 2},
		{"vpc-id", []ec2types.Filter{ec2Filter("vpc-id", vpc.ID)}, len(n.Subnets)},
		{"vpc-id and zone", []ec2types.Filter{ec2Filter("vpc-id", vpc.ID), ec2Filter("availability-zone", want.ZoneName)}, 1},
		{"default-for-az", []ec2types.Filter{ec2Filter("default-for-az", "true")}, len(n.Subnets)},
		{"other vpc", []ec2types.Filter{ec2Filter("vpc-id", "vpc-0123456789abcdef0")}, 0},
		{"subnet-id", []ec2types.Filter{ec2Filter("subnet-id", want.ID)}, 1},
		{"cidr-block", []ec2types.Filter{ec2Filter("cidr-block", want.CIDR)}, 1},
		{"tag", []ec2types.Filter{ec2Filter("tag:Name", "x")}, 0},
		{"camelCase names", []ec2types.Filter{ec2Filter("availabilityZone", want.ZoneName), ec2Filter("defaultForAz", "true")}, 1},
	} {
		out, err := c.DescribeSubnets(ctx, &ec2.DescribeSubnetsInput{Filters: tc.filters})
		if err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		if len(out.Subnets) != tc.want {
			t.Errorf("%s: got %d subnets, want %d", tc.name, len(out.Subnets), tc.want)
		}
	}

	_, err = c.DescribeSubnets(ctx, &ec2.DescribeSubnetsInput{SubnetIds: []string{want.ID, "subnet-0123456789abcdef0"}})
	wantEC2Error(t, err, "InvalidSubnetID.NotFound")
	_, err = c.DescribeSubnets(ctx, &ec2.DescribeSubnetsInput{SubnetIds: []string{"nonsense"}})
	wantEC2Error(t, err, "InvalidSubnetID.Malformed")
	_, err = c.DescribeSubnets(ctx, &ec2.DescribeSubnetsInput{Filters: []ec2types.Filter{ec2Filter("no-such-filter", "x")}})
	wantEC2Error(t, err, "InvalidParameterValue")
	_, err = c.DescribeSubnets(ctx, &ec2.DescribeSubnetsInput{SubnetIds: []string{want.ID}, MaxResults: aws.Int32(5)})
	wantEC2Error(t, err, "InvalidParameterCombination")
	_, err = c.DescribeSubnets(ctx, &ec2.DescribeSubnetsInput{MaxResults: aws.Int32(2)})
	wantEC2Error(t, err, "InvalidParameterValue")
	_, err = c.DescribeSubnets(ctx, &ec2.DescribeSubnetsInput{NextToken: aws.String("garbage")})
	wantEC2Error(t, err, "InvalidPaginationToken")
	_, err = c.DescribeSubnets(ctx, &ec2.DescribeSubnetsInput{DryRun: aws.Bool(true)})
	wantEC2Error(t, err, "DryRunOperation")
}

func TestEC2Pagination(t *testing.T) {
	srv := efstest.Start(t)
	c := srv.EC2Client(efstest.AccountA, region)
	n := network(t, srv, region)
	var got []string
	pages := 0
	p := ec2.NewDescribeSubnetsPaginator(c, &ec2.DescribeSubnetsInput{MaxResults: aws.Int32(5)})
	for p.HasMorePages() {
		out, err := p.NextPage(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		if len(out.Subnets) > 5 {
			t.Fatalf("page of %d", len(out.Subnets))
		}
		pages++
		for _, s := range out.Subnets {
			got = append(got, aws.ToString(s.SubnetId))
		}
	}
	var want []string
	for _, s := range n.Subnets {
		want = append(want, s.ID)
	}
	slices.Sort(want)
	if pages != 2 || !slices.Equal(got, want) {
		t.Fatalf("%d pages, subnets %v, want %v", pages, got, want)
	}
}

func TestEC2SecurityGroupsAndZones(t *testing.T) {
	srv := efstest.Start(t)
	c := srv.EC2Client(efstest.AccountA, region)
	ctx := context.Background()
	n := network(t, srv, region)
	sg := n.SecurityGroups[0]

	out, err := c.DescribeSecurityGroups(ctx, &ec2.DescribeSecurityGroupsInput{GroupIds: []string{sg.ID}})
	if err != nil {
		t.Fatal(err)
	}
	g := out.SecurityGroups[0]
	if len(out.SecurityGroups) != 1 || aws.ToString(g.GroupId) != sg.ID || aws.ToString(g.GroupName) != "default" ||
		aws.ToString(g.VpcId) != n.VPCs[0].ID || len(g.IpPermissionsEgress) != 1 || len(g.IpPermissions) != 1 {
		t.Fatalf("group: %+v", g)
	}
	// The default group admits the VPC's range and this host's loopback
	// clients on every port: what the mount targets enforce.
	perm := g.IpPermissions[0]
	var cidrs []string
	for _, r := range perm.IpRanges {
		cidrs = append(cidrs, aws.ToString(r.CidrIp))
	}
	if aws.ToString(perm.IpProtocol) != "-1" || !slices.Contains(cidrs, n.VPCs[0].CIDR) || !slices.Contains(cidrs, "127.0.0.1/32") {
		t.Fatalf("default group's ingress: %+v", cidrs)
	}
	for _, f := range []ec2types.Filter{ec2Filter("group-name", "default"), ec2Filter("vpc-id", n.VPCs[0].ID), ec2Filter("group-id", sg.ID)} {
		out, err := c.DescribeSecurityGroups(ctx, &ec2.DescribeSecurityGroupsInput{Filters: []ec2types.Filter{f}})
		if err != nil || len(out.SecurityGroups) != 1 {
			t.Fatalf("filter %s: %v %+v", aws.ToString(f.Name), err, out)
		}
	}
	out, err = c.DescribeSecurityGroups(ctx, &ec2.DescribeSecurityGroupsInput{GroupNames: []string{"default"}})
	if err != nil || len(out.SecurityGroups) != 1 {
		t.Fatalf("by name: %v %+v", err, out)
	}
	_, err = c.DescribeSecurityGroups(ctx, &ec2.DescribeSecurityGroupsInput{GroupIds: []string{"sg-0123456789abcdef0"}})
	wantEC2Error(t, err, "InvalidGroup.NotFound")
	_, err = c.DescribeSecurityGroups(ctx, &ec2.DescribeSecurityGroupsInput{GroupNames: []string{"nfs"}})
	wantEC2Error(t, err, "InvalidGroup.NotFound")

	zones, err := c.DescribeAvailabilityZones(ctx, &ec2.DescribeAvailabilityZonesInput{})
	if err != nil {
		t.Fatal(err)
	}
	if len(zones.AvailabilityZones) != len(n.Subnets) {
		t.Fatalf("zones: %+v", zones.AvailabilityZones)
	}
	z := zones.AvailabilityZones[0]
	if aws.ToString(z.ZoneName) != n.Subnets[0].ZoneName || aws.ToString(z.ZoneId) != n.Subnets[0].ZoneID ||
		z.State != ec2types.AvailabilityZoneStateAvailable || aws.ToString(z.RegionName) != region {
		t.Fatalf("zone: %+v", z)
	}
	zones, err = c.DescribeAvailabilityZones(ctx, &ec2.DescribeAvailabilityZonesInput{ZoneIds: []string{n.Subnets[1].ZoneID}})
	if err != nil || len(zones.AvailabilityZones) != 1 || aws.ToString(zones.AvailabilityZones[0].ZoneName) != n.Subnets[1].ZoneName {
		t.Fatalf("by zone ID: %v %+v", err, zones)
	}
	_, err = c.DescribeAvailabilityZones(ctx, &ec2.DescribeAvailabilityZonesInput{ZoneNames: []string{"us-east-1z"}})
	wantEC2Error(t, err, "InvalidParameterValue")
}

func TestEC2NetworkInterfaces(t *testing.T) {
	srv := efstest.Start(t)
	c := srv.Client(efstest.AccountA, region)
	e := srv.EC2Client(efstest.AccountA, region)
	ctx := context.Background()
	fs := createFS(t, c, "eni")
	n := network(t, srv, region)
	sub := n.Subnets[1]
	mt, err := c.CreateMountTarget(ctx, &efs.CreateMountTargetInput{FileSystemId: fs.FileSystemId, SubnetId: aws.String(sub.ID)})
	if err != nil {
		t.Fatal(err)
	}
	eni := aws.ToString(mt.NetworkInterfaceId)
	out, err := e.DescribeNetworkInterfaces(ctx, &ec2.DescribeNetworkInterfacesInput{NetworkInterfaceIds: []string{eni}})
	if err != nil {
		t.Fatal(err)
	}
	if len(out.NetworkInterfaces) != 1 {
		t.Fatalf("interfaces: %+v", out.NetworkInterfaces)
	}
	ni := out.NetworkInterfaces[0]
	wantDesc := fmt.Sprintf("EFS mount target for %s (%s)", aws.ToString(fs.FileSystemId), aws.ToString(mt.MountTargetId))
	if aws.ToString(ni.NetworkInterfaceId) != eni || aws.ToString(ni.SubnetId) != sub.ID || aws.ToString(ni.VpcId) != sub.VPCID ||
		aws.ToString(ni.AvailabilityZone) != sub.ZoneName || aws.ToString(ni.PrivateIpAddress) != aws.ToString(mt.IpAddress) ||
		aws.ToString(ni.Description) != wantDesc || len(ni.Groups) != 1 || aws.ToString(ni.Groups[0].GroupId) != n.SecurityGroups[0].ID ||
		aws.ToString(ni.Groups[0].GroupName) != "default" || !aws.ToBool(ni.RequesterManaged) ||
		ni.Status != ec2types.NetworkInterfaceStatusInUse || len(ni.PrivateIpAddresses) != 1 {
		t.Fatalf("interface: %+v", ni)
	}
	for _, f := range []ec2types.Filter{
		ec2Filter("subnet-id", sub.ID), ec2Filter("vpc-id", sub.VPCID), ec2Filter("group-id", n.SecurityGroups[0].ID),
		ec2Filter("description", "EFS mount target for *"), ec2Filter("addresses.private-ip-address", aws.ToString(mt.IpAddress)),
		ec2Filter("availability-zone", sub.ZoneName), ec2Filter("network-interface-id", eni),
	} {
		out, err := e.DescribeNetworkInterfaces(ctx, &ec2.DescribeNetworkInterfacesInput{Filters: []ec2types.Filter{f}})
		if err != nil || len(out.NetworkInterfaces) != 1 {
			t.Fatalf("filter %s: %v %+v", aws.ToString(f.Name), err, out)
		}
	}
	out, err = e.DescribeNetworkInterfaces(ctx, &ec2.DescribeNetworkInterfacesInput{Filters: []ec2types.Filter{ec2Filter("subnet-id", n.Subnets[0].ID)}})
	if err != nil || len(out.NetworkInterfaces) != 0 {
		t.Fatalf("other subnet: %v %+v", err, out)
	}
	subs, err := e.DescribeSubnets(ctx, &ec2.DescribeSubnetsInput{SubnetIds: []string{sub.ID}})
	if err != nil || aws.ToInt32(subs.Subnets[0].AvailableIpAddressCount) != 250 {
		t.Fatalf("a mount target takes an address of its subnet: %v %+v", err, subs)
	}
	_, err = e.DescribeNetworkInterfaces(ctx, &ec2.DescribeNetworkInterfacesInput{NetworkInterfaceIds: []string{"eni-0123456789abcdef0"}})
	wantEC2Error(t, err, "InvalidNetworkInterfaceID.NotFound")
}

// TestEC2Isolation: each account and region sees its own network only, and
// another's IDs are unknown to it.
func TestEC2Isolation(t *testing.T) {
	srv := efstest.Start(t)
	ctx := context.Background()
	a := network(t, srv, region)
	for _, tc := range []struct {
		name   string
		client *ec2.Client
	}{
		{"other account", srv.EC2Client(efstest.AccountB, region)},
		{"other region", srv.EC2Client(efstest.AccountA, "eu-west-1")},
	} {
		out, err := tc.client.DescribeSubnets(ctx, &ec2.DescribeSubnetsInput{})
		if err != nil {
			t.Fatal(err)
		}
		for _, s := range out.Subnets {
			if aws.ToString(s.SubnetId) == a.Subnets[0].ID || aws.ToString(s.VpcId) == a.VPCs[0].ID {
				t.Fatalf("%s sees %s", tc.name, aws.ToString(s.SubnetId))
			}
		}
		_, err = tc.client.DescribeSubnets(ctx, &ec2.DescribeSubnetsInput{SubnetIds: []string{a.Subnets[0].ID}})
		wantEC2Error(t, err, "InvalidSubnetID.NotFound")
		_, err = tc.client.DescribeVpcs(ctx, &ec2.DescribeVpcsInput{VpcIds: []string{a.VPCs[0].ID}})
		wantEC2Error(t, err, "InvalidVpcID.NotFound")
		_, err = tc.client.DescribeSecurityGroups(ctx, &ec2.DescribeSecurityGroupsInput{GroupIds: []string{a.SecurityGroups[0].ID}})
		wantEC2Error(t, err, "InvalidGroup.NotFound")
	}
	// Nor does another account see the mount targets' interfaces.
	fs := createFS(t, srv.Client(efstest.AccountA, region), "iso")
	mt, err := srv.Client(efstest.AccountA, region).CreateMountTarget(ctx, &efs.CreateMountTargetInput{
		FileSystemId: fs.FileSystemId, SubnetId: aws.String(a.Subnets[0].ID)})
	if err != nil {
		t.Fatal(err)
	}
	b := srv.EC2Client(efstest.AccountB, region)
	_, err = b.DescribeNetworkInterfaces(ctx, &ec2.DescribeNetworkInterfacesInput{NetworkInterfaceIds: []string{aws.ToString(mt.NetworkInterfaceId)}})
	wantEC2Error(t, err, "InvalidNetworkInterfaceID.NotFound")
	all, err := b.DescribeNetworkInterfaces(ctx, &ec2.DescribeNetworkInterfacesInput{})
	if err != nil || len(all.NetworkInterfaces) != 0 {
		t.Fatalf("other account's interfaces: %v %+v", err, all)
	}
	if strings.HasPrefix(region, "eu-") {
		t.Fatal("test assumes the default region is not eu-west-1")
	}
}

// TestEC2Authentication: the EC2 front end checks signatures as the EFS one
// does, and answers in EC2's error format.
func TestEC2Authentication(t *testing.T) {
	srv := efstest.Start(t)
	bad := efstest.AccountA
	bad.SecretAccessKey = "wrong"
	_, err := srv.EC2Client(bad, region).DescribeVpcs(context.Background(), &ec2.DescribeVpcsInput{})
	wantEC2Error(t, err, "SignatureDoesNotMatch")
	unknown := efstest.AccountA
	unknown.AccessKeyID = "AKIAUNKNOWN000000000"
	_, err = srv.EC2Client(unknown, region).DescribeVpcs(context.Background(), &ec2.DescribeVpcsInput{})
	wantEC2Error(t, err, "AuthFailure")
	_, err = srv.EC2Client(efstest.AccountA, "xx-nowhere-1").DescribeVpcs(context.Background(), &ec2.DescribeVpcsInput{})
	wantEC2Error(t, err, "AuthFailure")
	// An action efsd does not serve is refused as EC2 refuses unknown ones.
	_, err = srv.EC2Client(efstest.AccountA, region).DescribeInstances(context.Background(), &ec2.DescribeInstancesInput{})
	wantEC2Error(t, err, "InvalidAction")
}

// TestEC2SecurityGroupRules: the rule calls as Terraform's aws_security_group
// makes them: the default egress rule revoked and set again, ingress by
// IpPermissions and by the legacy top-level parameters; group sources
// refused; the default group's egress is not the API's.
func TestEC2SecurityGroupRules(t *testing.T) {
	srv := efstest.Start(t)
	c := srv.EC2Client(efstest.AccountA, region)
	ctx := context.Background()
	n := network(t, srv, region)
	g, err := c.CreateSecurityGroup(ctx, &ec2.CreateSecurityGroupInput{GroupName: aws.String("app"), Description: aws.String("app")})
	if err != nil {
		t.Fatal(err)
	}
	sg := aws.ToString(g.GroupId)
	describe := func() ec2types.SecurityGroup {
		t.Helper()
		out, err := c.DescribeSecurityGroups(ctx, &ec2.DescribeSecurityGroupsInput{GroupIds: []string{sg}})
		if err != nil {
			t.Fatal(err)
		}
		return out.SecurityGroups[0]
	}
	if d := describe(); len(d.IpPermissions) != 0 || len(d.IpPermissionsEgress) != 1 ||
		aws.ToString(d.IpPermissionsEgress[0].IpRanges[0].CidrIp) != "0.0.0.0/0" || aws.ToString(d.VpcId) != n.VPCs[0].ID {
		t.Fatalf("new group: %+v", d)
	}
	all := []ec2types.IpPermission{{IpProtocol: aws.String("-1"), FromPort: aws.Int32(0), ToPort: aws.Int32(0),
		IpRanges: []ec2types.IpRange{{CidrIp: aws.String("0.0.0.0/0")}}}}
	if _, err := c.RevokeSecurityGroupEgress(ctx, &ec2.RevokeSecurityGroupEgressInput{GroupId: aws.String(sg), IpPermissions: all}); err != nil {
		t.Fatal(err)
	}
	if d := describe(); len(d.IpPermissionsEgress) != 0 {
		t.Fatalf("egress after revoke: %+v", d.IpPermissionsEgress)
	}
	if _, err := c.AuthorizeSecurityGroupEgress(ctx, &ec2.AuthorizeSecurityGroupEgressInput{GroupId: aws.String(sg), IpPermissions: all}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.AuthorizeSecurityGroupIngress(ctx, &ec2.AuthorizeSecurityGroupIngressInput{GroupName: aws.String("app"),
		IpProtocol: aws.String("tcp"), FromPort: aws.Int32(2049), ToPort: aws.Int32(2049), CidrIp: aws.String("10.0.0.0/8")}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.AuthorizeSecurityGroupIngress(ctx, &ec2.AuthorizeSecurityGroupIngressInput{GroupId: aws.String(sg),
		IpPermissions: []ec2types.IpPermission{{IpProtocol: aws.String("tcp"), FromPort: aws.Int32(2049), ToPort: aws.Int32(2049),
			Ipv6Ranges: []ec2types.Ipv6Range{{CidrIpv6: aws.String("fd00::/8")}}}}}); err != nil {
		t.Fatal(err)
	}
	d := describe()
	if len(d.IpPermissions) != 1 || len(d.IpPermissions[0].IpRanges) != 1 || len(d.IpPermissions[0].Ipv6Ranges) != 1 ||
		len(d.IpPermissionsEgress) != 1 {
		t.Fatalf("rules: %+v", d)
	}
	for _, tc := range []struct {
		name string
		in   *ec2.AuthorizeSecurityGroupIngressInput
		code string
	}{
		{"group source", &ec2.AuthorizeSecurityGroupIngressInput{GroupId: aws.String(sg), IpPermissions: []ec2types.IpPermission{{
			IpProtocol: aws.String("tcp"), FromPort: aws.Int32(1), ToPort: aws.Int32(2),
			UserIdGroupPairs: []ec2types.UserIdGroupPair{{GroupId: aws.String(sg)}}}}}, "InvalidParameterValue"},
		{"udp", &ec2.AuthorizeSecurityGroupIngressInput{GroupId: aws.String(sg), IpProtocol: aws.String("udp"),
			FromPort: aws.Int32(1), ToPort: aws.Int32(2), CidrIp: aws.String("10.0.0.0/8")}, "InvalidParameterValue"},
		{"host bits", &ec2.AuthorizeSecurityGroupIngressInput{GroupId: aws.String(sg), IpProtocol: aws.String("tcp"),
			FromPort: aws.Int32(1), ToPort: aws.Int32(2), CidrIp: aws.String("10.0.0.1/8")}, "InvalidParameterValue"},
		{"unknown group", &ec2.AuthorizeSecurityGroupIngressInput{GroupId: aws.String("sg-0123456789abcdef0"), IpProtocol: aws.String("-1"),
			CidrIp: aws.String("10.0.0.0/8")}, "InvalidGroup.NotFound"},
	} {
		_, err := c.AuthorizeSecurityGroupIngress(ctx, tc.in)
		wantEC2Error(t, err, tc.code)
	}
	_, err = c.RevokeSecurityGroupEgress(ctx, &ec2.RevokeSecurityGroupEgressInput{GroupId: aws.String(n.SecurityGroups[0].ID), IpPermissions: all})
	wantEC2Error(t, err, "InvalidParameterValue")
	_, err = c.CreateSecurityGroup(ctx, &ec2.CreateSecurityGroupInput{GroupName: aws.String("default"), Description: aws.String("x")})
	wantEC2Error(t, err, "InvalidGroup.Reserved")
	_, err = c.CreateSecurityGroup(ctx, &ec2.CreateSecurityGroupInput{GroupName: aws.String("x"), Description: aws.String("x"), VpcId: aws.String("vpc-0123456789abcdef0")})
	wantEC2Error(t, err, "InvalidVpcID.NotFound")
	if _, err := c.DeleteSecurityGroup(ctx, &ec2.DeleteSecurityGroupInput{GroupId: aws.String(sg)}); err != nil {
		t.Fatal(err)
	}
}
