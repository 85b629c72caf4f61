package nfs4_test

import (
	"context"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/efs"
	"github.com/aws/aws-sdk-go-v2/service/efs/types"
	"github.com/buildbarn/go-xdr/pkg/protocols/nfsv4"

	"github.com/efsd/efsd/internal/daemon"
	internalefs "github.com/efsd/efsd/internal/efs"
	"github.com/efsd/efsd/internal/efstest"
	"github.com/efsd/efsd/internal/efstest/nfs4client"
)

const region = "us-east-1"

// mountTarget makes a mount target of fs and returns its NFS address.
func mountTarget(t *testing.T, srv *efstest.Server, c *efs.Client, fs string) string {
	t.Helper()
	ctx := context.Background()
	n, err := srv.Service().DescribeNetwork(ctx, internalefs.Principal{Account: efstest.AccountA.Account, Region: region})
	if err != nil {
		t.Fatal(err)
	}
	mt, err := c.CreateMountTarget(ctx, &efs.CreateMountTargetInput{FileSystemId: aws.String(fs), SubnetId: aws.String(n.Subnets[0].ID)})
	if err != nil {
		t.Fatal(err)
	}
	efstest.Eventually(t, 10*time.Second, "mount target available", func() bool {
		d, err := c.DescribeMountTargets(ctx, &efs.DescribeMountTargetsInput{MountTargetId: mt.MountTargetId})
		return err == nil && d.MountTargets[0].LifeCycleState == types.LifeCycleStateAvailable
	})
	return net.JoinHostPort(*mt.IpAddress, strconv.Itoa(srv.Mounts().Port()))
}

func createFS(t *testing.T, c *efs.Client, token string) string {
	t.Helper()
	ctx := context.Background()
	out, err := c.CreateFileSystem(ctx, &efs.CreateFileSystemInput{CreationToken: aws.String(token)})
	if err != nil {
		t.Fatal(err)
	}
	efstest.Eventually(t, 10*time.Second, token+" available", func() bool {
		d, err := c.DescribeFileSystems(ctx, &efs.DescribeFileSystemsInput{FileSystemId: out.FileSystemId})
		return err == nil && d.FileSystems[0].LifeCycleState == types.LifeCycleStateAvailable
	})
	return *out.FileSystemId
}

func sessionAt(t *testing.T, addr, owner string, opts ...nfs4client.Option) *nfs4client.Session {
	t.Helper()
	conn, err := nfs4client.Dial(context.Background(), addr, nfs4client.Cred{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = conn.Close() })
	s, err := nfs4client.NewSession(context.Background(), conn, owner, opts...)
	if err != nil {
		t.Fatalf("session %s at %s: %v", owner, addr, err)
	}
	return s
}

// Through efsd's mount targets: a lock taken over NFSv4 on a replication source is held across
// replication passes (which copy the file as it is written), the destination's mount target is
// read-only over NFSv4, and after efsd restarts the client reclaims its lock, which then still
// excludes another client.
func TestLocksThroughReplicationAndRestart(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("the NFS data plane needs root")
	}
	srv := efstest.Start(t, efstest.WithConfig(func(c *daemon.Config) {
		c.ReplicationRescanInterval = 200 * time.Millisecond
		c.NFSv4Grace = time.Minute // ended early: the one client with state reclaims
	}))
	ctx := context.Background()
	c := srv.Client(efstest.AccountA, region)
	src := createFS(t, c, "nfs4-src")
	srcAddr := mountTarget(t, srv, c, src)

	a := sessionAt(t, srcAddr, "client-a")
	o, err := a.Open(ctx, "/", "db", nfs4client.OpenOpts{Create: true, Mode: 0o666})
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := a.Lock(ctx, o, nfsv4.WRITE_LT, 0, 100, false); err != nil {
		t.Fatal(err)
	}
	payload := []byte("written under a lock")
	if _, _, _, err := a.Write(ctx, o.FH, o.Stateid, 0, payload, nfsv4.FILE_SYNC4); err != nil {
		t.Fatal(err)
	}

	rep, err := c.CreateReplicationConfiguration(ctx, &efs.CreateReplicationConfigurationInput{
		SourceFileSystemId: aws.String(src), Destinations: []types.DestinationToCreate{{Region: aws.String(region)}}})
	if err != nil {
		t.Fatal(err)
	}
	dst := *rep.Destinations[0].FileSystemId
	dstDir := srv.Volumes().Path(internalefs.FSKey{Account: efstest.AccountA.Account, Region: region, ID: dst})
	efstest.Eventually(t, 30*time.Second, "the locked file replicated", func() bool {
		b, err := os.ReadFile(filepath.Join(dstDir, "db"))
		return err == nil && string(b) == string(payload)
	})
	more := []byte(" and more")
	if _, _, _, err := a.Write(ctx, o.FH, o.Stateid, uint64(len(payload)), more, nfsv4.FILE_SYNC4); err != nil {
		t.Fatal(err)
	}
	efstest.Eventually(t, 30*time.Second, "the next write replicated", func() bool {
		b, err := os.ReadFile(filepath.Join(dstDir, "db"))
		return err == nil && string(b) == string(payload)+string(more)
	})
	b := sessionAt(t, srcAddr, "client-b")
	ob, err := b.Open(ctx, "/", "db", nfs4client.OpenOpts{})
	if err != nil {
		t.Fatal(err)
	}
	_, denied, err := b.Lock(ctx, ob, nfsv4.WRITE_LT, 10, 1, false)
	wantStatus(t, err, nfsv4.NFS4ERR_DENIED, "a lock over one held across replication passes")
	if denied == nil || denied.Length != 100 {
		t.Fatalf("denied %+v", denied)
	}

	// The destination's mount target: readable, not writable.
	d := sessionAt(t, mountTarget(t, srv, c, dst), "client-d")
	_, err = d.Open(ctx, "/", "new", nfs4client.OpenOpts{Create: true})
	wantStatus(t, err, nfsv4.NFS4ERR_ROFS, "create at the destination")
	od, err := d.Open(ctx, "/", "db", nfs4client.OpenOpts{Access: nfsv4.OPEN4_SHARE_ACCESS_READ})
	if err != nil {
		t.Fatal(err)
	}
	if got, _, err := d.Read(ctx, od.FH, od.Stateid, 0, 100); err != nil || string(got) != string(payload)+string(more) {
		t.Fatalf("read at the destination: %q %v", got, err)
	}

	// efsd restarts: client-a reclaims its open and lock; client-b, which held an open, comes back
	// without reclaiming.
	srv.Restart()
	efstest.Eventually(t, 10*time.Second, "the mount target serving again", func() bool {
		conn, err := nfs4client.Dial(ctx, srcAddr, nfs4client.Cred{})
		if err == nil {
			_ = conn.Close()
		}
		return err == nil
	})
	a2, err := a.Recover(ctx, dialAt(t, srcAddr))
	if err != nil {
		t.Fatal(err)
	}
	b2, err := b.Recover(ctx, dialAt(t, srcAddr))
	if err != nil {
		t.Fatal(err)
	}
	_, err = b2.Open(ctx, "/", "db", nfs4client.OpenOpts{})
	wantStatus(t, err, nfsv4.NFS4ERR_GRACE, "a new open in the grace period")
	ra, err := a2.Open(ctx, "", "", nfs4client.OpenOpts{Reclaim: true, FH: o.FH})
	if err != nil {
		t.Fatalf("reclaim of the open after efsd restarted: %v", err)
	}
	if _, _, err := a2.Lock(ctx, ra, nfsv4.WRITE_LT, 0, 100, true); err != nil {
		t.Fatalf("reclaim of the lock: %v", err)
	}
	// Both clients that held state have completed their reclaims: the grace period ends then,
	// not a minute after the start.
	for _, s := range []*nfs4client.Session{a2, b2} {
		if err := s.ReclaimComplete(ctx); err != nil {
			t.Fatal(err)
		}
	}
	ob2, err := b2.Open(ctx, "/", "db", nfs4client.OpenOpts{})
	if err != nil {
		t.Fatalf("open once the grace period ended: %v", err)
	}
	_, _, err = b2.Lock(ctx, ob2, nfsv4.WRITE_LT, 10, 1, false)
	wantStatus(t, err, nfsv4.NFS4ERR_DENIED, "a lock over the reclaimed one")
}

func dialAt(t *testing.T, addr string) *nfs4client.Conn {
	t.Helper()
	conn, err := nfs4client.Dial(context.Background(), addr, nfs4client.Cred{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = conn.Close() })
	return conn
}

// Files a non-root client creates over NFSv4 get handles in the daemon's store (recorded as the
// server, not as the client), which stay valid across a restart.
func TestHandlesOfNonRootCreatesSurviveRestart(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("the NFS data plane needs root")
	}
	srv := efstest.Start(t)
	ctx := context.Background()
	c := srv.Client(efstest.AccountA, region)
	fs := createFS(t, c, "nfs4-handles")
	addr := mountTarget(t, srv, c, fs)
	home := filepath.Join(srv.Volumes().Path(internalefs.FSKey{Account: efstest.AccountA.Account, Region: region, ID: fs}), "home")
	if err := os.Mkdir(home, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Chown(home, 1000, 1000); err != nil {
		t.Fatal(err)
	}
	conn, err := nfs4client.Dial(ctx, addr, nfs4client.Cred{UID: 1000, GID: 1000})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	s, err := nfs4client.NewSession(ctx, conn, "user-1000")
	if err != nil {
		t.Fatal(err)
	}
	o, err := s.Open(ctx, "/home", "f", nfs4client.OpenOpts{Create: true, Mode: 0o600})
	if err != nil {
		t.Fatal(err)
	}
	d, err := s.Mkdir(ctx, "/home", "d", 0o700)
	if err != nil {
		t.Fatal(err)
	}
	srv.Restart()
	efstest.Eventually(t, 10*time.Second, "the mount target serving again", func() bool {
		c, err := nfs4client.Dial(ctx, addr, nfs4client.Cred{})
		if err == nil {
			_ = c.Close()
		}
		return err == nil
	})
	conn2, err := nfs4client.Dial(ctx, addr, nfs4client.Cred{UID: 1000, GID: 1000})
	if err != nil {
		t.Fatal(err)
	}
	defer conn2.Close()
	s2, err := nfs4client.NewSession(ctx, conn2, "user-1000-again")
	if err != nil {
		t.Fatal(err)
	}
	for _, fh := range [][]byte{o.FH, d} {
		if _, err := s2.GetAttr(ctx, fh, nfsv4.FATTR4_TYPE); err != nil {
			t.Fatalf("a handle made before the restart: %v", err)
		}
	}
}
