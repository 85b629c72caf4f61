package api_test

import (
	"context"
	"net"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/efs"
	"github.com/aws/aws-sdk-go-v2/service/efs/types"

	"github.com/efsd/efsd/internal/daemon"
	internalefs "github.com/efsd/efsd/internal/efs"
	"github.com/efsd/efsd/internal/efstest"
)

// network returns the default network of the test account in region.
func network(t *testing.T, srv *efstest.Server, region string) *internalefs.Network {
	t.Helper()
	n, err := srv.Service().DescribeNetwork(context.Background(), internalefs.Principal{Account: efstest.AccountA.Account, Region: region})
	if err != nil {
		t.Fatal(err)
	}
	return n
}

func waitMT(t *testing.T, c *efs.Client, id string, want types.LifeCycleState) *types.MountTargetDescription {
	t.Helper()
	var mt *types.MountTargetDescription
	efstest.Eventually(t, 10*time.Second, "mount target "+string(want), func() bool {
		out, err := c.DescribeMountTargets(context.Background(), &efs.DescribeMountTargetsInput{MountTargetId: aws.String(id)})
		if err != nil {
			return false
		}
		mt = &out.MountTargets[0]
		return mt.LifeCycleState == want
	})
	return mt
}

func TestMountTargets(t *testing.T) {
	srv := efstest.Start(t)
	c := srv.Client(efstest.AccountA, region)
	ctx := context.Background()
	fs := createFS(t, c, "mt")
	n := network(t, srv, region)
	if len(n.Subnets) != 6 || len(n.SecurityGroups) != 1 || len(n.VPCs) != 1 {
		t.Fatalf("default network: %+v", n)
	}
	sub := n.Subnets[0]

	out, err := c.CreateMountTarget(ctx, &efs.CreateMountTargetInput{FileSystemId: fs.FileSystemId, SubnetId: aws.String(sub.ID)})
	if err != nil {
		t.Fatal(err)
	}
	if out.LifeCycleState != types.LifeCycleStateCreating || !strings.HasPrefix(aws.ToString(out.MountTargetId), "fsmt-") ||
		aws.ToString(out.VpcId) != sub.VPCID || aws.ToString(out.AvailabilityZoneName) != sub.ZoneName ||
		aws.ToString(out.AvailabilityZoneId) != sub.ZoneID || !strings.HasPrefix(aws.ToString(out.NetworkInterfaceId), "eni-") {
		t.Fatalf("create answer: %+v", out)
	}
	mt := waitMT(t, c, *out.MountTargetId, types.LifeCycleStateAvailable)
	// It really listens at its address.
	conn, err := net.DialTimeout("tcp", net.JoinHostPort(*mt.IpAddress, strconv.Itoa(srv.Mounts().Port())), 5*time.Second)
	if err != nil {
		t.Fatalf("mount target %s does not listen: %v", *mt.IpAddress, err)
	}
	conn.Close()
	if got := describe(t, c, *fs.FileSystemId); got.NumberOfMountTargets != 1 {
		t.Fatalf("NumberOfMountTargets = %d", got.NumberOfMountTargets)
	}
	sgs, err := c.DescribeMountTargetSecurityGroups(ctx, &efs.DescribeMountTargetSecurityGroupsInput{MountTargetId: mt.MountTargetId})
	if err != nil || len(sgs.SecurityGroups) != 1 || sgs.SecurityGroups[0] != n.SecurityGroups[0].ID {
		t.Fatalf("security groups: %v %+v", err, sgs)
	}

	for _, tc := range []struct {
		name string
		in   efs.CreateMountTargetInput
		code string
	}{
		{"same zone", efs.CreateMountTargetInput{FileSystemId: fs.FileSystemId, SubnetId: aws.String(sub.ID)}, "MountTargetConflict"},
		{"unknown subnet", efs.CreateMountTargetInput{FileSystemId: fs.FileSystemId, SubnetId: aws.String("subnet-0123456789abcdef0")}, "SubnetNotFound"},
		{"address outside the subnet", efs.CreateMountTargetInput{FileSystemId: fs.FileSystemId, SubnetId: aws.String(n.Subnets[1].ID), IpAddress: mt.IpAddress}, "BadRequest"},
		{"too many groups", efs.CreateMountTargetInput{FileSystemId: fs.FileSystemId, SubnetId: aws.String(n.Subnets[1].ID),
			SecurityGroups: []string{"sg-00000001", "sg-00000002", "sg-00000003", "sg-00000004", "sg-00000005", "sg-00000006"}}, "SecurityGroupLimitExceeded"},
		{"unknown group", efs.CreateMountTargetInput{FileSystemId: fs.FileSystemId, SubnetId: aws.String(n.Subnets[1].ID),
			SecurityGroups: []string{"sg-0123456789abcdef0"}}, "SecurityGroupNotFound"},
		{"unknown file system", efs.CreateMountTargetInput{FileSystemId: aws.String("fs-0123456789abcdef0"), SubnetId: aws.String(sub.ID)}, "FileSystemNotFound"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := c.CreateMountTarget(ctx, &tc.in)
			wantAPIError(t, err, tc.code)
		})
	}

	// A requested address in another zone's subnet, and IpAddressInUse.
	second, err := c.CreateMountTarget(ctx, &efs.CreateMountTargetInput{FileSystemId: fs.FileSystemId, SubnetId: aws.String(n.Subnets[1].ID),
		IpAddress: aws.String(strings.TrimSuffix(n.Subnets[1].CIDR, "0/24") + "77")})
	if err != nil {
		t.Fatal(err)
	}
	other := createFS(t, c, "mt-other")
	_, err = c.CreateMountTarget(ctx, &efs.CreateMountTargetInput{FileSystemId: other.FileSystemId, SubnetId: aws.String(n.Subnets[1].ID),
		IpAddress: second.IpAddress})
	wantAPIError(t, err, "IpAddressInUse")

	// One Zone file systems only in their zone.
	oz := createFS(t, c, "mt-onezone", func(in *efs.CreateFileSystemInput) { in.AvailabilityZoneName = aws.String(n.Subnets[2].ZoneName) })
	_, err = c.CreateMountTarget(ctx, &efs.CreateMountTargetInput{FileSystemId: oz.FileSystemId, SubnetId: aws.String(sub.ID)})
	wantAPIError(t, err, "AvailabilityZonesMismatch")

	// Describe by file system with pagination; by access point.
	p1, err := c.DescribeMountTargets(ctx, &efs.DescribeMountTargetsInput{FileSystemId: fs.FileSystemId, MaxItems: aws.Int32(1)})
	if err != nil || len(p1.MountTargets) != 1 || p1.NextMarker == nil {
		t.Fatalf("page 1: %v %+v", err, p1)
	}
	p2, err := c.DescribeMountTargets(ctx, &efs.DescribeMountTargetsInput{FileSystemId: fs.FileSystemId, MaxItems: aws.Int32(1), Marker: p1.NextMarker})
	if err != nil || len(p2.MountTargets) != 1 || p2.NextMarker != nil || *p2.MountTargets[0].MountTargetId != *second.MountTargetId {
		t.Fatalf("page 2: %v %+v", err, p2)
	}
	ap, err := c.CreateAccessPoint(ctx, &efs.CreateAccessPointInput{FileSystemId: fs.FileSystemId, ClientToken: aws.String("ap-for-mt")})
	if err != nil {
		t.Fatal(err)
	}
	byAP, err := c.DescribeMountTargets(ctx, &efs.DescribeMountTargetsInput{AccessPointId: ap.AccessPointId})
	if err != nil || len(byAP.MountTargets) != 2 {
		t.Fatalf("by access point: %v %+v", err, byAP)
	}
	_, err = c.DescribeMountTargets(ctx, &efs.DescribeMountTargetsInput{})
	wantAPIError(t, err, "BadRequest")
	_, err = c.DescribeMountTargets(ctx, &efs.DescribeMountTargetsInput{MountTargetId: aws.String("fsmt-0123456789abcdef0")})
	wantAPIError(t, err, "MountTargetNotFound")

	// Security groups can be replaced.
	_, err = c.ModifyMountTargetSecurityGroups(ctx, &efs.ModifyMountTargetSecurityGroupsInput{MountTargetId: mt.MountTargetId,
		SecurityGroups: []string{"sg-0123456789abcdef0"}})
	wantAPIError(t, err, "SecurityGroupNotFound")
	if _, err := c.ModifyMountTargetSecurityGroups(ctx, &efs.ModifyMountTargetSecurityGroupsInput{MountTargetId: mt.MountTargetId,
		SecurityGroups: []string{n.SecurityGroups[0].ID}}); err != nil {
		t.Fatal(err)
	}

	// A file system with mount targets cannot be deleted.
	_, err = c.DeleteFileSystem(ctx, &efs.DeleteFileSystemInput{FileSystemId: fs.FileSystemId})
	wantAPIError(t, err, "FileSystemInUse")
	for _, id := range []*string{mt.MountTargetId, second.MountTargetId} {
		if _, err := c.DeleteMountTarget(ctx, &efs.DeleteMountTargetInput{MountTargetId: id}); err != nil {
			t.Fatal(err)
		}
	}
	efstest.Eventually(t, 10*time.Second, "mount targets to go", func() bool {
		out, err := c.DescribeMountTargets(ctx, &efs.DescribeMountTargetsInput{FileSystemId: fs.FileSystemId})
		return err == nil && len(out.MountTargets) == 0
	})
	if _, err := net.DialTimeout("tcp", net.JoinHostPort(*mt.IpAddress, strconv.Itoa(srv.Mounts().Port())), time.Second); err == nil {
		t.Fatal("deleted mount target still listens")
	}
	if got := describe(t, c, *fs.FileSystemId); got.NumberOfMountTargets != 0 {
		t.Fatalf("NumberOfMountTargets after delete = %d", got.NumberOfMountTargets)
	}
	_, err = c.DeleteMountTarget(ctx, &efs.DeleteMountTargetInput{MountTargetId: mt.MountTargetId})
	wantAPIError(t, err, "MountTargetNotFound")
	if _, err := c.DeleteFileSystem(ctx, &efs.DeleteFileSystemInput{FileSystemId: fs.FileSystemId}); err != nil {
		t.Fatal(err)
	}
	// Its access points go with it.
	waitGone(t, c, *fs.FileSystemId)
	_, err = c.DescribeAccessPoints(ctx, &efs.DescribeAccessPointsInput{AccessPointId: ap.AccessPointId})
	wantAPIError(t, err, "AccessPointNotFound")
}

func TestMountTargetNeedsAvailableFileSystem(t *testing.T) {
	srv := efstest.Start(t, efstest.WithConfig(func(c *daemon.Config) { c.TransitionDelay = time.Minute }))
	c := srv.Client(efstest.AccountA, region)
	out, err := c.CreateFileSystem(context.Background(), &efs.CreateFileSystemInput{CreationToken: aws.String("slow")})
	if err != nil {
		t.Fatal(err)
	}
	_, err = c.CreateMountTarget(context.Background(), &efs.CreateMountTargetInput{FileSystemId: out.FileSystemId,
		SubnetId: aws.String(network(t, srv, region).Subnets[0].ID)})
	wantAPIError(t, err, "IncorrectFileSystemLifeCycleState")
}

func TestAccessPoints(t *testing.T) {
	srv := efstest.Start(t, efstest.WithConfig(func(c *daemon.Config) { c.AccessPointQuota = 3 }))
	c := srv.Client(efstest.AccountA, region)
	ctx := context.Background()
	fs := createFS(t, c, "ap")

	in := &efs.CreateAccessPointInput{
		FileSystemId: fs.FileSystemId,
		ClientToken:  aws.String("token-1"),
		PosixUser:    &types.PosixUser{Uid: aws.Int64(1001), Gid: aws.Int64(1002), SecondaryGids: []int64{5, 6}},
		RootDirectory: &types.RootDirectory{Path: aws.String("/apps/web"),
			CreationInfo: &types.CreationInfo{OwnerUid: aws.Int64(1001), OwnerGid: aws.Int64(1002), Permissions: aws.String("0750")}},
		Tags: []types.Tag{tag("Name", "web")},
	}
	ap, err := c.CreateAccessPoint(ctx, in)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(aws.ToString(ap.AccessPointId), "fsap-") || aws.ToString(ap.Name) != "web" ||
		aws.ToString(ap.AccessPointArn) != "arn:aws:elasticfilesystem:us-east-1:111111111111:access-point/"+*ap.AccessPointId ||
		ap.LifeCycleState != types.LifeCycleStateAvailable || aws.ToInt64(ap.PosixUser.Uid) != 1001 || len(ap.PosixUser.SecondaryGids) != 2 ||
		aws.ToString(ap.RootDirectory.Path) != "/apps/web" || aws.ToString(ap.RootDirectory.CreationInfo.Permissions) != "0750" {
		t.Fatalf("create answer: %+v", ap)
	}
	_, err = c.CreateAccessPoint(ctx, in)
	ae := wantAPIError(t, err, "AccessPointAlreadyExists")
	if e, ok := ae.(*types.AccessPointAlreadyExists); !ok || aws.ToString(e.AccessPointId) != *ap.AccessPointId {
		t.Fatalf("AccessPointAlreadyExists %#v", ae)
	}

	// Tags through the resource-tag API.
	if _, err := c.TagResource(ctx, &efs.TagResourceInput{ResourceId: ap.AccessPointArn, Tags: []types.Tag{tag("env", "test")}}); err != nil {
		t.Fatal(err)
	}
	lt, err := c.ListTagsForResource(ctx, &efs.ListTagsForResourceInput{ResourceId: ap.AccessPointId})
	if err != nil || len(lt.Tags) != 2 {
		t.Fatalf("access point tags: %v %+v", err, lt)
	}
	if _, err := c.UntagResource(ctx, &efs.UntagResourceInput{ResourceId: ap.AccessPointId, TagKeys: []string{"Name"}}); err != nil {
		t.Fatal(err)
	}

	raw := srv.UnvalidatedClient(efstest.AccountA, region)
	for name, bad := range map[string]*types.RootDirectory{
		"relative":     {Path: aws.String("apps")},
		"dot-dot":      {Path: aws.String("/apps/../etc")},
		"bad perms":    {Path: aws.String("/x"), CreationInfo: &types.CreationInfo{OwnerUid: aws.Int64(1), OwnerGid: aws.Int64(1), Permissions: aws.String("999")}},
		"partial info": {Path: aws.String("/x"), CreationInfo: &types.CreationInfo{OwnerUid: aws.Int64(1)}},
	} {
		_, err := raw.CreateAccessPoint(ctx, &efs.CreateAccessPointInput{FileSystemId: fs.FileSystemId, ClientToken: aws.String(name), RootDirectory: bad})
		if err == nil {
			t.Fatalf("%s: accepted", name)
		}
		wantAPIError(t, err, "ValidationException")
	}

	for i := 2; i <= 3; i++ {
		if _, err := c.CreateAccessPoint(ctx, &efs.CreateAccessPointInput{FileSystemId: fs.FileSystemId, ClientToken: aws.String("token-" + strconv.Itoa(i))}); err != nil {
			t.Fatal(err)
		}
	}
	_, err = c.CreateAccessPoint(ctx, &efs.CreateAccessPointInput{FileSystemId: fs.FileSystemId, ClientToken: aws.String("token-4")})
	wantAPIError(t, err, "AccessPointLimitExceeded")

	var ids []string
	pager := efs.NewDescribeAccessPointsPaginator(c, &efs.DescribeAccessPointsInput{FileSystemId: fs.FileSystemId, MaxResults: aws.Int32(2)})
	for pager.HasMorePages() {
		page, err := pager.NextPage(ctx)
		if err != nil {
			t.Fatal(err)
		}
		for _, a := range page.AccessPoints {
			ids = append(ids, *a.AccessPointId)
		}
	}
	if len(ids) != 3 || ids[0] != *ap.AccessPointId {
		t.Fatalf("paged access points: %v", ids)
	}
	if _, err := c.DeleteAccessPoint(ctx, &efs.DeleteAccessPointInput{AccessPointId: ap.AccessPointId}); err != nil {
		t.Fatal(err)
	}
	_, err = c.DescribeAccessPoints(ctx, &efs.DescribeAccessPointsInput{AccessPointId: ap.AccessPointId})
	wantAPIError(t, err, "AccessPointNotFound")
	_, err = c.DeleteAccessPoint(ctx, &efs.DeleteAccessPointInput{AccessPointId: ap.AccessPointId})
	wantAPIError(t, err, "AccessPointNotFound")
	_, err = c.CreateAccessPoint(ctx, &efs.CreateAccessPointInput{FileSystemId: aws.String("fs-0123456789abcdef0"), ClientToken: aws.String("x")})
	wantAPIError(t, err, "FileSystemNotFound")
	_, err = c.DescribeAccessPoints(ctx, &efs.DescribeAccessPointsInput{FileSystemId: aws.String("fs-0123456789abcdef0")})
	wantAPIError(t, err, "FileSystemNotFound")
	// Other accounts see nothing.
	_, err = srv.Client(efstest.AccountB, region).DescribeAccessPoints(ctx, &efs.DescribeAccessPointsInput{AccessPointId: aws.String(ids[1])})
	wantAPIError(t, err, "AccessPointNotFound")
}

// A declared subnet of eight addresses has three usable ones (AWS reserves
// the first four and the last). An address another program holds is never
// handed out (IpAddressInUse when asked for); a mount target that cannot
// listen anyway moves to error, and DeleteMountTarget removes it.
func TestDeclaredSubnetLimits(t *testing.T) {
	declared := internalefs.DeclaredNetwork{Account: efstest.AccountA.Account, Region: region,
		Subnets: []internalefs.DeclaredSubnet{
			{ID: "subnet-0000000000000abcd", ZoneName: "us-east-1a", CIDR: "127.250.0.0/29"},
			// TEST-NET-2: no address of this host, so nothing can listen there.
			{ID: "subnet-0000000000000dcba", ZoneName: "us-east-1b", CIDR: "198.51.100.0/29"}},
		SecurityGroups: []internalefs.SecurityGroup{{ID: "sg-00000000000000abc", Name: "app"}}}
	srv := efstest.Start(t, efstest.WithConfig(func(c *daemon.Config) { c.Networks = []internalefs.DeclaredNetwork{declared} }))
	c := srv.Client(efstest.AccountA, region)
	ctx := context.Background()

	// Something else holds the first usable address.
	blocker, err := net.Listen("tcp", net.JoinHostPort("127.250.0.4", strconv.Itoa(srv.Mounts().Port())))
	if err != nil {
		t.Fatal(err)
	}
	defer blocker.Close()
	fs := createFS(t, c, "small-asked")
	_, err = c.CreateMountTarget(ctx, &efs.CreateMountTargetInput{FileSystemId: fs.FileSystemId,
		SubnetId: aws.String("subnet-0000000000000abcd"), IpAddress: aws.String("127.250.0.4")})
	wantAPIError(t, err, "IpAddressInUse")
	var ids []string
	for i := range 2 {
		fs := createFS(t, c, "small-"+strconv.Itoa(i))
		mt, err := c.CreateMountTarget(ctx, &efs.CreateMountTargetInput{FileSystemId: fs.FileSystemId,
			SubnetId: aws.String("subnet-0000000000000abcd"), SecurityGroups: []string{"sg-00000000000000abc"}})
		if err != nil {
			t.Fatal(err)
		}
		if want := "127.250.0." + strconv.Itoa(5+i); aws.ToString(mt.IpAddress) != want {
			t.Fatalf("address %s, want %s (127.250.0.4 is taken)", aws.ToString(mt.IpAddress), want)
		}
		ids = append(ids, *mt.MountTargetId)
	}
	fs = createFS(t, c, "small-full")
	_, err = c.CreateMountTarget(ctx, &efs.CreateMountTargetInput{FileSystemId: fs.FileSystemId, SubnetId: aws.String("subnet-0000000000000abcd")})
	wantAPIError(t, err, "NoFreeAddressesInSubnet")
	for _, id := range ids {
		waitMT(t, c, id, types.LifeCycleStateAvailable)
	}

	// A mount target whose address is not on this host moves to error.
	mt, err := c.CreateMountTarget(ctx, &efs.CreateMountTargetInput{FileSystemId: fs.FileSystemId,
		SubnetId: aws.String("subnet-0000000000000dcba"), SecurityGroups: []string{"sg-00000000000000abc"}})
	if err != nil {
		t.Fatal(err)
	}
	waitMT(t, c, *mt.MountTargetId, types.LifeCycleStateError)
	// The security group operations work in every state but deleted.
	sgs, err := c.DescribeMountTargetSecurityGroups(ctx, &efs.DescribeMountTargetSecurityGroupsInput{MountTargetId: mt.MountTargetId})
	if err != nil || len(sgs.SecurityGroups) != 1 || sgs.SecurityGroups[0] != "sg-00000000000000abc" {
		t.Fatalf("security groups of a mount target in error: %v %+v", err, sgs)
	}
	if _, err := c.ModifyMountTargetSecurityGroups(ctx, &efs.ModifyMountTargetSecurityGroupsInput{MountTargetId: mt.MountTargetId,
		SecurityGroups: []string{"sg-00000000000000abc"}}); err != nil {
		t.Fatalf("modify the security groups of a mount target in error: %v", err)
	}
	if _, err := c.DeleteMountTarget(ctx, &efs.DeleteMountTargetInput{MountTargetId: mt.MountTargetId}); err != nil {
		t.Fatal(err)
	}
	efstest.Eventually(t, 10*time.Second, "the failed mount target to be gone", func() bool {
		_, err := c.DescribeMountTargets(ctx, &efs.DescribeMountTargetsInput{MountTargetId: mt.MountTargetId})
		return err != nil
	})
	if got := describe(t, c, *fs.FileSystemId); got.NumberOfMountTargets != 0 {
		t.Fatalf("NumberOfMountTargets = %d after the failed mount target was deleted", got.NumberOfMountTargets)
	}
}
