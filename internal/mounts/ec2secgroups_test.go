package mounts_test

import (
	"context"
	"errors"
	"net"
	"strconv"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"
	"github.com/aws/aws-sdk-go-v2/service/efs"
	"github.com/aws/aws-sdk-go-v2/service/efs/types"
	"github.com/aws/smithy-go"

	"github.com/efsd/efsd/internal/efstest"
)

func wantCode(t *testing.T, err error, code string) {
	t.Helper()
	var ae smithy.APIError
	if !errors.As(err, &ae) || ae.ErrorCode() != code {
		t.Fatalf("got %v, want %s", err, code)
	}
}

// TestEC2SecurityGroupsTakeEffect: a group made and changed through EC2's
// API admits NFS clients at the mount targets that name it, from the next
// connection, as a config-file group does; it cannot be deleted while a
// mount target names it.
func TestEC2SecurityGroupsTakeEffect(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	c := e.srv.EC2Client(efstest.AccountA, region)
	port := int32(e.srv.Mounts().Port())
	nfsRule := func(cidr string) []ec2types.IpPermission {
		return []ec2types.IpPermission{{IpProtocol: aws.String("tcp"), FromPort: aws.Int32(port), ToPort: aws.Int32(port),
			IpRanges: []ec2types.IpRange{{CidrIp: aws.String(cidr), Description: aws.String("NFS clients")}}}}
	}
	g, err := c.CreateSecurityGroup(ctx, &ec2.CreateSecurityGroupInput{GroupName: aws.String("nfs"),
		Description: aws.String("NFS clients"), VpcId: aws.String(e.net.VPCs[0].ID)})
	if err != nil {
		t.Fatal(err)
	}
	sg := aws.ToString(g.GroupId)
	_, err = c.CreateSecurityGroup(ctx, &ec2.CreateSecurityGroupInput{GroupName: aws.String("nfs"), Description: aws.String("again")})
	wantCode(t, err, "InvalidGroup.Duplicate")
	if _, err := c.AuthorizeSecurityGroupIngress(ctx, &ec2.AuthorizeSecurityGroupIngressInput{GroupId: aws.String(sg),
		IpPermissions: nfsRule("127.77.0.0/16")}); err != nil {
		t.Fatal(err)
	}
	_, err = c.AuthorizeSecurityGroupIngress(ctx, &ec2.AuthorizeSecurityGroupIngressInput{GroupId: aws.String(sg), IpPermissions: nfsRule("127.77.0.0/16")})
	wantCode(t, err, "InvalidPermission.Duplicate")
	d, err := c.DescribeSecurityGroups(ctx, &ec2.DescribeSecurityGroupsInput{GroupIds: []string{sg}})
	if err != nil || len(d.SecurityGroups[0].IpPermissions) != 1 || aws.ToString(d.SecurityGroups[0].Description) != "NFS clients" ||
		aws.ToString(d.SecurityGroups[0].IpPermissions[0].IpRanges[0].CidrIp) != "127.77.0.0/16" ||
		aws.ToInt32(d.SecurityGroups[0].IpPermissions[0].FromPort) != port {
		t.Fatalf("described: %v %+v", err, d)
	}

	fsID := e.createFS("ec2-sg", false)
	out, err := e.c.CreateMountTarget(ctx, &efs.CreateMountTargetInput{FileSystemId: aws.String(fsID),
		SubnetId: aws.String(e.net.Subnets[0].ID), SecurityGroups: []string{sg}})
	if err != nil {
		t.Fatal(err)
	}
	efstest.Eventually(t, 10*time.Second, "mount target available", func() bool {
		d, err := e.c.DescribeMountTargets(ctx, &efs.DescribeMountTargetsInput{MountTargetId: out.MountTargetId})
		return err == nil && d.MountTargets[0].LifeCycleState == types.LifeCycleStateAvailable
	})
	addr := net.JoinHostPort(*out.IpAddress, strconv.Itoa(int(port)))
	const host, inside = "127.0.0.1", "127.77.0.9"
	serveFrom(t, addr, inside).Close()
	refuseFrom(t, addr, host)

	// Admit this host too; then revoke the first range.
	if _, err := c.AuthorizeSecurityGroupIngress(ctx, &ec2.AuthorizeSecurityGroupIngressInput{GroupId: aws.String(sg),
		IpPermissions: nfsRule("127.0.0.1/32")}); err != nil {
		t.Fatal(err)
	}
	serveFrom(t, addr, host).Close()
	if _, err := c.RevokeSecurityGroupIngress(ctx, &ec2.RevokeSecurityGroupIngressInput{GroupId: aws.String(sg),
		IpPermissions: nfsRule("127.77.0.0/16")}); err != nil {
		t.Fatal(err)
	}
	refuseFrom(t, addr, inside)
	serveFrom(t, addr, host).Close()
	_, err = c.RevokeSecurityGroupIngress(ctx, &ec2.RevokeSecurityGroupIngressInput{GroupId: aws.String(sg), IpPermissions: nfsRule("127.77.0.0/16")})
	wantCode(t, err, "InvalidPermission.NotFound")

	_, err = c.DeleteSecurityGroup(ctx, &ec2.DeleteSecurityGroupInput{GroupId: aws.String(sg)})
	wantCode(t, err, "DependencyViolation")
	_, err = c.DeleteSecurityGroup(ctx, &ec2.DeleteSecurityGroupInput{GroupId: aws.String(e.net.SecurityGroups[0].ID)})
	wantCode(t, err, "CannotDelete")
	if _, err := e.c.ModifyMountTargetSecurityGroups(ctx, &efs.ModifyMountTargetSecurityGroupsInput{
		MountTargetId: out.MountTargetId, SecurityGroups: []string{e.net.SecurityGroups[0].ID}}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.DeleteSecurityGroup(ctx, &ec2.DeleteSecurityGroupInput{GroupName: aws.String("nfs")}); err != nil {
		t.Fatal(err)
	}
	_, err = c.DescribeSecurityGroups(ctx, &ec2.DescribeSecurityGroupsInput{GroupIds: []string{sg}})
	wantCode(t, err, "InvalidGroup.NotFound")
	// Another account cannot see or touch the group's name in its VPC.
	_, err = e.srv.EC2Client(efstest.AccountB, region).DeleteSecurityGroup(ctx, &ec2.DeleteSecurityGroupInput{GroupId: aws.String(sg)})
	wantCode(t, err, "InvalidGroup.NotFound")
}
