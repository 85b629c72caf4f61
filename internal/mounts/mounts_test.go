package mounts_test

import (
	"bytes"
	"context"
	"io"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/efs"
	"github.com/aws/aws-sdk-go-v2/service/efs/types"
	nfsc "github.com/willscott/go-nfs-client/nfs"
	"github.com/willscott/go-nfs-client/nfs/rpc"

	"github.com/efsd/efsd/internal/api"
	"github.com/efsd/efsd/internal/daemon"
	internalefs "github.com/efsd/efsd/internal/efs"
	"github.com/efsd/efsd/internal/efstest"
	"github.com/efsd/efsd/internal/efstest/nfsclient"
	"github.com/efsd/efsd/internal/mounts"
)

const region = "us-east-1"

type env struct {
	t       *testing.T
	srv     *efstest.Server
	account string
	c       *efs.Client
	net     *internalefs.Network
}

func newEnv(t *testing.T, opts ...efstest.Option) *env {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("the NFS data plane needs root")
	}
	return (&env{t: t, srv: efstest.Start(t, opts...)}).as(efstest.AccountA)
}

// as returns the environment of another account of the same daemon.
func (e *env) as(cred api.Credential) *env {
	e.t.Helper()
	n, err := e.srv.Service().DescribeNetwork(context.Background(), internalefs.Principal{Account: cred.Account, Region: region})
	if err != nil {
		e.t.Fatal(err)
	}
	return &env{t: e.t, srv: e.srv, account: cred.Account, c: e.srv.Client(cred, region), net: n}
}

func (e *env) createFS(token string, encrypted bool) string {
	e.t.Helper()
	ctx := context.Background()
	out, err := e.c.CreateFileSystem(ctx, &efs.CreateFileSystemInput{CreationToken: aws.String(token), Encrypted: aws.Bool(encrypted)})
	if err != nil {
		e.t.Fatal(err)
	}
	efstest.Eventually(e.t, 10*time.Second, token+" available", func() bool {
		d, err := e.c.DescribeFileSystems(ctx, &efs.DescribeFileSystemsInput{FileSystemId: out.FileSystemId})
		return err == nil && d.FileSystems[0].LifeCycleState == types.LifeCycleStateAvailable
	})
	return *out.FileSystemId
}

// mountTarget creates a mount target for fsID and returns its NFS address
// once it is available.
func (e *env) mountTarget(fsID string, subnet int) string {
	e.t.Helper()
	ctx := context.Background()
	out, err := e.c.CreateMountTarget(ctx, &efs.CreateMountTargetInput{FileSystemId: aws.String(fsID), SubnetId: aws.String(e.net.Subnets[subnet].ID)})
	if err != nil {
		e.t.Fatal(err)
	}
	efstest.Eventually(e.t, 10*time.Second, "mount target available", func() bool {
		d, err := e.c.DescribeMountTargets(ctx, &efs.DescribeMountTargetsInput{MountTargetId: out.MountTargetId})
		return err == nil && d.MountTargets[0].LifeCycleState == types.LifeCycleStateAvailable
	})
	return net.JoinHostPort(*out.IpAddress, strconv.Itoa(e.srv.Mounts().Port()))
}

func (e *env) dir(fsID string) string {
	return e.srv.Volumes().Path(internalefs.FSKey{Account: e.account, Region: region, ID: fsID})
}

// mount mounts dirpath at addr over NFSv3 with the go-nfs-client library.
func mount(t *testing.T, addr, dirpath string, uid, gid uint32) *nfsc.Target {
	t.Helper()
	c, err := nfsclient.Dial(addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	target, err := (&nfsc.Mount{Client: c}).Mount(dirpath, rpc.NewAuthUnix("efsd-test", uid, gid).Auth())
	if err != nil {
		t.Fatalf("mount %s:%s: %v", addr, dirpath, err)
	}
	return target
}

func writeFile(t *testing.T, v *nfsc.Target, path string, data []byte) error {
	t.Helper()
	f, err := v.OpenFile(path, 0o644)
	if err != nil {
		return err
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

func readFile(t *testing.T, v *nfsc.Target, path string) []byte {
	t.Helper()
	f, err := v.Open(path)
	if err != nil {
		t.Fatalf("open %s over NFS: %v", path, err)
	}
	defer f.Close()
	b, err := io.ReadAll(f)
	if err != nil {
		t.Fatalf("read %s over NFS: %v", path, err)
	}
	return b
}

// TestWriteOverNFSReplicateReadOverNFS is the whole data path: write a tree
// through a mount target of the source, see it replicated, read it through
// the destination's mount target, and find the destination read-only.
func TestWriteOverNFSReplicateReadOverNFS(t *testing.T) {
	// Without inotify and with an hour between rescans, only the NFS
	// server's change notifications can carry writes to the destination.
	e := newEnv(t, efstest.WithConfig(func(c *daemon.Config) {
		c.ReplicationNoWatch = true
		c.ReplicationRescanInterval = time.Hour
	}))
	ctx := context.Background()
	src := e.createFS("nfs-src", true)
	srcNFS := mount(t, e.mountTarget(src, 0), "/", 0, 0)

	if _, err := srcNFS.Mkdir("data", 0o755); err != nil {
		t.Fatal(err)
	}
	if _, err := srcNFS.Mkdir("data/nested", 0o700); err != nil {
		t.Fatal(err)
	}
	big := bytes.Repeat([]byte("efsd over nfs "), 200_000) // ~2.8 MB
	if err := writeFile(t, srcNFS, "data/nested/big.bin", big); err != nil {
		t.Fatal(err)
	}
	if err := writeFile(t, srcNFS, "data/small.txt", []byte("small")); err != nil {
		t.Fatal(err)
	}
	if got, _ := os.ReadFile(filepath.Join(e.dir(src), "data", "nested", "big.bin")); !bytes.Equal(got, big) {
		t.Fatal("file written over NFS is not on disk")
	}

	rep, err := e.c.CreateReplicationConfiguration(ctx, &efs.CreateReplicationConfigurationInput{SourceFileSystemId: aws.String(src),
		Destinations: []types.DestinationToCreate{{Region: aws.String(region)}}})
	if err != nil {
		t.Fatal(err)
	}
	dst := *rep.Destinations[0].FileSystemId
	identical := func() bool { return efstest.TreeDiff(e.dir(src), e.dir(dst)) == "" }
	efstest.Eventually(t, 20*time.Second, "initial replication", identical)

	dstNFS := mount(t, e.mountTarget(dst, 1), "/", 0, 0)
	if got := readFile(t, dstNFS, "data/nested/big.bin"); !bytes.Equal(got, big) {
		t.Fatal("replicated file differs when read over NFS")
	}
	// The destination refuses writes over NFS.
	err = writeFile(t, dstNFS, "data/intruder.txt", []byte("no"))
	if err == nil || !strings.Contains(err.Error(), "NFS3ERR_ROFS") {
		t.Fatalf("write to a replication destination: %v, want a read-only error", err)
	}
	if _, err := dstNFS.Mkdir("newdir", 0o755); err == nil {
		t.Fatal("mkdir on a replication destination succeeded")
	}

	// A change made over NFS reaches the destination promptly.
	start := time.Now()
	if err := writeFile(t, srcNFS, "data/small.txt", []byte("changed over NFS")); err != nil {
		t.Fatal(err)
	}
	if err := srcNFS.Rename("data/nested", "data/moved"); err != nil {
		t.Fatal(err)
	}
	efstest.Eventually(t, 10*time.Second, "NFS change to replicate", identical)
	t.Logf("NFS write to replicated in %v", time.Since(start))
	if got := readFile(t, dstNFS, "data/small.txt"); string(got) != "changed over NFS" {
		t.Fatalf("destination over NFS reads %q", got)
	}

	// Once the configuration is deleted the destination is writable over NFS.
	if _, err := e.c.DeleteReplicationConfiguration(ctx, &efs.DeleteReplicationConfigurationInput{SourceFileSystemId: aws.String(src)}); err != nil {
		t.Fatal(err)
	}
	efstest.Eventually(t, 10*time.Second, "destination to become writable", func() bool {
		return writeFile(t, dstNFS, "data/after-failover.txt", []byte("mine now")) == nil
	})
}

func TestAccessPointOverNFS(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	fsID := e.createFS("ap-fs", false)
	addr := e.mountTarget(fsID, 0)
	ap, err := e.c.CreateAccessPoint(ctx, &efs.CreateAccessPointInput{
		FileSystemId: aws.String(fsID), ClientToken: aws.String("web"),
		PosixUser: &types.PosixUser{Uid: aws.Int64(1001), Gid: aws.Int64(1002)},
		RootDirectory: &types.RootDirectory{Path: aws.String("/apps/web"),
			CreationInfo: &types.CreationInfo{OwnerUid: aws.Int64(1001), OwnerGid: aws.Int64(1002), Permissions: aws.String("0750")}},
	})
	if err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(e.dir(fsID), "outside.txt"), []byte("not for the access point"), 0o644)

	// The client claims root; the access point's identity wins.
	v := mount(t, addr, "/"+*ap.AccessPointId, 0, 0)
	if err := writeFile(t, v, "hello.txt", []byte("hi")); err != nil {
		t.Fatal(err)
	}
	root := filepath.Join(e.dir(fsID), "apps", "web")
	var st syscall.Stat_t
	if err := syscall.Stat(root, &st); err != nil || st.Uid != 1001 || st.Gid != 1002 || st.Mode&0o7777 != 0o750 {
		t.Fatalf("access point root: %v uid=%d gid=%d mode=%o", err, st.Uid, st.Gid, st.Mode&0o7777)
	}
	if err := syscall.Stat(filepath.Join(root, "hello.txt"), &st); err != nil || st.Uid != 1001 || st.Gid != 1002 {
		t.Fatalf("file created through the access point: %v uid=%d gid=%d", err, st.Uid, st.Gid)
	}
	if _, err := v.Open("../outside.txt"); err == nil {
		t.Fatal("escaped the access point root with ..")
	}
	if _, _, err := v.Lookup("outside.txt"); err == nil {
		t.Fatal("file outside the access point root is visible")
	}
	// Unknown access points cannot be mounted.
	c, err := nfsclient.Dial(addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := (&nfsc.Mount{Client: c}).Mount("/fsap-0123456789abcdef0", rpc.NewAuthUnix("x", 0, 0).Auth()); err == nil {
		t.Fatal("mounted an unknown access point")
	}
	// A deleted access point cannot be mounted any more.
	if _, err := e.c.DeleteAccessPoint(ctx, &efs.DeleteAccessPointInput{AccessPointId: ap.AccessPointId}); err != nil {
		t.Fatal(err)
	}
	if _, err := (&nfsc.Mount{Client: c}).Mount("/"+*ap.AccessPointId, rpc.NewAuthUnix("x", 0, 0).Auth()); err == nil {
		t.Fatal("mounted a deleted access point")
	}
}

func TestHandlesSurviveRestart(t *testing.T) {
	e := newEnv(t)
	fsID := e.createFS("handles", false)
	addr := e.mountTarget(fsID, 0)
	v := mount(t, addr, "/", 0, 0)
	if _, err := v.Mkdir("a", 0o755); err != nil {
		t.Fatal(err)
	}
	if err := writeFile(t, v, "a/file.txt", []byte("kept")); err != nil {
		t.Fatal(err)
	}
	_, fileFH, err := v.Lookup("a/file.txt")
	if err != nil {
		t.Fatal(err)
	}
	_, dirFH, err := v.Lookup("a")
	if err != nil {
		t.Fatal(err)
	}
	// A rename keeps handles valid.
	if err := v.Rename("a", "b"); err != nil {
		t.Fatal(err)
	}

	e.srv.Restart()
	efstest.Eventually(t, 10*time.Second, "mount target to serve again", func() bool {
		conn, err := net.DialTimeout("tcp", addr, time.Second)
		if err == nil {
			conn.Close()
		}
		return err == nil
	})
	v2 := mount(t, addr, "/", 0, 0)
	for name, fh := range map[string][]byte{"file": fileFH, "dir": dirFH} {
		attr, err := v2.GetAttr(fh)
		if err != nil {
			t.Fatalf("%s handle after rename and restart: %v", name, err)
		}
		if name == "file" && attr.Filesize != 4 {
			t.Fatalf("file handle resolves to size %d", attr.Filesize)
		}
	}
	if got := readFile(t, v2, "b/file.txt"); string(got) != "kept" {
		t.Fatalf("read after restart: %q", got)
	}
}

// An NFS server that stops serving (its listener failed) is restarted: a mount target never stays
// available without a server.
func TestNFSServerIsRestarted(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	fsID := e.createFS("restart", false)
	addr := e.mountTarget(fsID, 0)
	d, err := e.c.DescribeMountTargets(ctx, &efs.DescribeMountTargetsInput{FileSystemId: aws.String(fsID)})
	if err != nil {
		t.Fatal(err)
	}
	if err := writeFile(t, mount(t, addr, "/", 0, 0), "f", []byte("before")); err != nil {
		t.Fatal(err)
	}
	if !mounts.BreakListener(e.srv.Mounts(), *d.MountTargets[0].MountTargetId) {
		t.Fatal("no NFS server for the mount target")
	}
	efstest.Eventually(t, 10*time.Second, "NFS served again", func() bool {
		conn, err := net.DialTimeout("tcp", addr, time.Second)
		if err != nil {
			return false
		}
		conn.Close()
		return true
	})
	if got := readFile(t, mount(t, addr, "/", 0, 0), "f"); string(got) != "before" {
		t.Errorf("read %q after the restart", got)
	}
}
