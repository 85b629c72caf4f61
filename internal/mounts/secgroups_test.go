package mounts_test

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"strconv"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/efs"
	"github.com/aws/aws-sdk-go-v2/service/efs/types"

	"github.com/efsd/efsd/internal/daemon"
	internalefs "github.com/efsd/efsd/internal/efs"
	"github.com/efsd/efsd/internal/efstest"
)

const (
	sgClients = "sg-0000000000000c11e" // admits 127.77.0.0/16 to the NFS port
	sgSSH     = "sg-00000000000055a00" // admits all of loopback, but to port 22 only
)

// TestSecurityGroupsAdmitBySource: a mount target accepts NFS only from
// sources its security groups admit to the NFS port; refused clients get
// their connection closed without any RPC answered; a change of groups
// holds for the next connection.
func TestSecurityGroupsAdmitBySource(t *testing.T) {
	e := newEnv(t, efstest.WithConfig(func(c *daemon.Config) {
		c.Networks = []internalefs.DeclaredNetwork{{Account: efstest.AccountA.Account, Region: region,
			SecurityGroups: []internalefs.SecurityGroup{
				{ID: sgClients, Name: "nfs-clients", Ingress: []internalefs.IngressRule{
					{Protocol: "tcp", FromPort: c.NFSPort, ToPort: c.NFSPort, CIDR: "127.77.0.0/16"}}},
				{ID: sgSSH, Name: "ssh", Ingress: []internalefs.IngressRule{
					{Protocol: "tcp", FromPort: 22, ToPort: 22, CIDR: "127.0.0.0/8"}}},
			}}}
	}))
	ctx := context.Background()
	fsID := e.createFS("sg-fs", false)
	out, err := e.c.CreateMountTarget(ctx, &efs.CreateMountTargetInput{FileSystemId: aws.String(fsID),
		SubnetId: aws.String(e.net.Subnets[0].ID), SecurityGroups: []string{sgClients}})
	if err != nil {
		t.Fatal(err)
	}
	efstest.Eventually(t, 10*time.Second, "mount target available", func() bool {
		d, err := e.c.DescribeMountTargets(ctx, &efs.DescribeMountTargetsInput{MountTargetId: out.MountTargetId})
		return err == nil && d.MountTargets[0].LifeCycleState == types.LifeCycleStateAvailable
	})
	addr := net.JoinHostPort(*out.IpAddress, strconv.Itoa(e.srv.Mounts().Port()))
	const host, inside = "127.0.0.1", "127.77.0.9" // this host's own source; one in the group's range

	refuseFrom(t, addr, host)
	open := serveFrom(t, addr, inside)
	defer open.Close()

	modify := func(groups ...string) {
		t.Helper()
		if _, err := e.c.ModifyMountTargetSecurityGroups(ctx, &efs.ModifyMountTargetSecurityGroupsInput{
			MountTargetId: out.MountTargetId, SecurityGroups: groups}); err != nil {
			t.Fatal(err)
		}
	}
	// A group that admits every loopback source, but not to the NFS port.
	modify(sgSSH)
	refuseFrom(t, addr, inside)
	refuseFrom(t, addr, host)
	// A connection admitted before the change stays (EC2 tracks it).
	if err := mnt(open); err != nil {
		t.Fatalf("connection opened before the change: %v", err)
	}
	// The default group admits this host (and the VPC's range), not others.
	modify(e.net.SecurityGroups[0].ID)
	serveFrom(t, addr, host).Close()
	refuseFrom(t, addr, inside)
	// Several groups admit the union of their rules.
	modify(sgSSH, sgClients)
	serveFrom(t, addr, inside).Close()
	refuseFrom(t, addr, host)
}

// dialFrom connects to addr from the source address src.
func dialFrom(t *testing.T, addr, src string) net.Conn {
	t.Helper()
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(src)}, Timeout: 5 * time.Second}
	conn, err := d.Dial("tcp", addr)
	if err != nil {
		t.Fatalf("dial %s from %s: %v", addr, src, err)
	}
	conn.SetDeadline(time.Now().Add(5 * time.Second))
	return conn
}

// serveFrom mounts / from src and returns the open connection.
func serveFrom(t *testing.T, addr, src string) net.Conn {
	t.Helper()
	conn := dialFrom(t, addr, src)
	if err := mnt(conn); err != nil {
		conn.Close()
		t.Fatalf("mount from %s: %v", src, err)
	}
	return conn
}

// refuseFrom checks that a client at src gets its connection closed and no
// answer to a MOUNT call.
func refuseFrom(t *testing.T, addr, src string) {
	t.Helper()
	conn := dialFrom(t, addr, src)
	defer conn.Close()
	err := mnt(conn)
	var ne net.Error
	switch {
	case err == nil:
		t.Fatalf("a client at %s mounted; its security groups do not admit it", src)
	case errors.As(err, &ne) && ne.Timeout():
		t.Fatalf("a client at %s was neither served nor disconnected: %v", src, err)
	case !errors.Is(err, io.EOF) && !errors.Is(err, io.ErrUnexpectedEOF) && !isReset(err):
		t.Fatalf("a client at %s: %v, want the connection closed", src, err)
	}
}

func isReset(err error) bool {
	var op *net.OpError
	return errors.As(err, &op) && (op.Op == "read" || op.Op == "write")
}

// mnt sends MOUNT v3 MNT("/") with AUTH_UNIX root over conn, as one RPC
// record, and reads the answer: nil when the server mounted it.
func mnt(conn net.Conn) error {
	u32 := func(b []byte, v ...uint32) []byte {
		for _, x := range v {
			b = binary.BigEndian.AppendUint32(b, x)
		}
		return b
	}
	str := func(b []byte, s string) []byte {
		b = u32(b, uint32(len(s)))
		b = append(b, s...)
		return append(b, make([]byte, (4-len(s)%4)%4)...)
	}
	var cred []byte
	cred = u32(cred, 0)         // stamp
	cred = str(cred, "sg-test") // machine name
	cred = u32(cred, 0, 0, 0)   // uid, gid, no other gids
	var call []byte
	call = u32(call, 7, 0, 2, 100005, 3, 1) // xid, CALL, RPC v2, MOUNT v3, MNT
	call = u32(call, 1, uint32(len(cred)))  // AUTH_UNIX
	call = append(call, cred...)
	call = u32(call, 0, 0) // verifier AUTH_NONE
	call = str(call, "/")
	rec := u32(nil, uint32(len(call))|0x8000_0000)
	if _, err := conn.Write(append(rec, call...)); err != nil {
		return err
	}
	var mark [4]byte
	if _, err := io.ReadFull(conn, mark[:]); err != nil {
		return err
	}
	n := binary.BigEndian.Uint32(mark[:]) &^ 0x8000_0000
	if n > 1<<16 {
		return fmt.Errorf("reply record of %d bytes", n)
	}
	reply := make([]byte, n)
	if _, err := io.ReadFull(conn, reply); err != nil {
		return err
	}
	word := func(i int) uint32 {
		if len(reply) < 4*(i+1) {
			return ^uint32(0)
		}
		return binary.BigEndian.Uint32(reply[4*i:])
	}
	// xid, REPLY, MSG_ACCEPTED, verifier (flavor, empty body), SUCCESS, mountstat3.
	if word(0) != 7 || word(1) != 1 || word(2) != 0 || word(4) != 0 || word(5) != 0 {
		return fmt.Errorf("reply %x is not an accepted, successful RPC", reply)
	}
	if st := word(6); st != 0 {
		return fmt.Errorf("MNT status %d", st)
	}
	return nil
}
