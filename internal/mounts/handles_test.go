package mounts_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
	"unsafe"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/efs"
	"github.com/aws/aws-sdk-go-v2/service/efs/types"
	nfsc "github.com/willscott/go-nfs-client/nfs"
	"github.com/willscott/go-nfs-client/nfs/rpc"
	"github.com/willscott/go-nfs-client/nfs/xdr"
	"golang.org/x/sys/unix"

	"github.com/efsd/efsd/internal/efstest"
	"github.com/efsd/efsd/internal/efstest/nfsclient"
)

// conn opens an NFS connection to addr that makes no MOUNT call (as a kernel client's NFS
// connection): only the handles themselves confine it.
func conn(t *testing.T, addr string) *nfsc.Target {
	t.Helper()
	c, err := nfsclient.Dial(addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	return &nfsc.Target{Client: c}
}

// read makes one READ through fh as uid 0 and returns the data, or the NFS status.
func read(v *nfsc.Target, fh []byte) ([]byte, uint32, error) {
	type args struct {
		rpc.Header
		FH     []byte
		Offset uint64
		Count  uint32
	}
	res, err := v.Call(&args{Header: rpc.Header{Rpcvers: 2, Prog: nfsc.Nfs3Prog, Vers: nfsc.Nfs3Vers, Proc: nfsc.NFSProc3Read,
		Cred: rpc.NewAuthUnix("efsd-test", 0, 0).Auth(), Verf: rpc.AuthNull}, FH: fh, Count: 1 << 20})
	if err != nil {
		return nil, 0, err
	}
	st, err := xdr.ReadUint32(res)
	if err != nil || st != 0 {
		return nil, st, err
	}
	var r struct {
		Attr  nfsc.PostOpAttr
		Count uint32
		EOF   uint32
		Data  []byte
	}
	err = xdr.Read(res, &r)
	return r.Data, 0, err
}

// refusedHere checks that fh gets NFS3ERR_STALE or NFS3ERR_BADHANDLE from GETATTR and READ on v.
func refusedHere(t *testing.T, v *nfsc.Target, what string, fh []byte) bool {
	t.Helper()
	ok := true
	var ne *nfsc.Error
	if _, err := v.GetAttr(fh); !errors.As(err, &ne) || (ne.ErrorNum != nfsc.NFS3ErrStale && ne.ErrorNum != nfsc.NFS3ErrBadHandle) {
		t.Errorf("%s: GETATTR: %v, want NFS3ERR_STALE or NFS3ERR_BADHANDLE", what, err)
		ok = false
	}
	if data, st, err := read(v, fh); err != nil || (st != nfsc.NFS3ErrStale && st != nfsc.NFS3ErrBadHandle) {
		t.Errorf("%s: READ: status %d %v (%q), want NFS3ERR_STALE or NFS3ERR_BADHANDLE", what, st, err, data)
		ok = false
	}
	return ok
}

func lookup(t *testing.T, v *nfsc.Target, path string) []byte {
	t.Helper()
	_, fh, err := v.Lookup(path)
	if err != nil {
		t.Fatalf("LOOKUP %s: %v", path, err)
	}
	return fh
}

// Handles through real mount targets (issue #8): valid at every mount target of their file
// system, stale at another file system's or another account's, never changed into something else
// by a client, and confined to the access point they were issued through.
func TestHandlesAcrossFileSystemsAccountsAndAccessPoints(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	fsID := e.createFS("handles-a", false)
	addr1, addr2 := e.mountTarget(fsID, 0), e.mountTarget(fsID, 1)
	ap, err := e.c.CreateAccessPoint(ctx, &efs.CreateAccessPointInput{
		FileSystemId: aws.String(fsID), ClientToken: aws.String("app"),
		PosixUser: &types.PosixUser{Uid: aws.Int64(1001), Gid: aws.Int64(1001)},
		RootDirectory: &types.RootDirectory{Path: aws.String("/data/app"),
			CreationInfo: &types.CreationInfo{OwnerUid: aws.Int64(1001), OwnerGid: aws.Int64(1001), Permissions: aws.String("0755")}},
	})
	if err != nil {
		t.Fatal(err)
	}
	root := mount(t, addr1, "/", 0, 0)
	apm := mount(t, addr1, "/"+*ap.AccessPointId, 0, 0)
	if err := writeFile(t, apm, "in-ap.txt", []byte("in the access point")); err != nil {
		t.Fatal(err)
	}
	if err := writeFile(t, root, "data/secret.txt", []byte("root only")); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(filepath.Join(e.dir(fsID), "data", "secret.txt"), 0o600); err != nil {
		t.Fatal(err)
	}
	apRoot, apFile := lookup(t, apm, "."), lookup(t, apm, "in-ap.txt")
	secret := lookup(t, root, "data/secret.txt")

	// Another file system of the account and one of another account, each with a file.
	fs2 := e.createFS("handles-b", false)
	addrFS2 := e.mountTarget(fs2, 0)
	eb := e.as(efstest.AccountB)
	fs3 := eb.createFS("handles-other-account", false)
	addrFS3 := eb.mountTarget(fs3, 0)
	other := map[string][]byte{}
	for name, addr := range map[string]string{"fs2": addrFS2, "fs3": addrFS3} {
		v := mount(t, addr, "/", 0, 0)
		if err := writeFile(t, v, "f.txt", []byte(name)); err != nil {
			t.Fatal(err)
		}
		other[name] = lookup(t, v, "f.txt")
	}

	// A handle is valid at every mount target of its file system (here, on a connection that
	// mounted nothing).
	at2 := conn(t, addr2)
	if data, st, err := read(at2, secret); err != nil || st != 0 || string(data) != "root only" {
		t.Errorf("root handle at the other mount target: status %d %v %q", st, err, data)
	}
	if data, st, err := read(at2, apFile); err != nil || st != 0 || string(data) != "in the access point" {
		t.Errorf("access point handle at the other mount target: status %d %v %q", st, err, data)
	}

	// Handles of other file systems, of this account and of another, are stale here, and
	// this file system's are stale there.
	at1 := conn(t, addr1)
	for name, fh := range other {
		refusedHere(t, at1, name+" handle at "+fsID, fh)
		refusedHere(t, root, name+" handle on "+fsID+"'s root mount", fh)
	}
	for name, addr := range map[string]string{"fs2": addrFS2, "fs3": addrFS3} {
		v := conn(t, addr)
		refusedHere(t, v, fsID+" root handle at "+name, secret)
		refusedHere(t, v, fsID+" access point handle at "+name, apFile)
	}

	// The access point's connection takes no root handle; the root mount's no access point handle.
	refusedHere(t, apm, "root handle on the access point's mount", secret)
	refusedHere(t, root, "access point handle on the root mount", apFile)

	// The attack of issue #8 (the access point ID's length zeroed and the ID cut off, whatever the
	// layout), and every byte of the access point root's handle changed: never anything but stale.
	leaks := 0
	for _, fh := range [][]byte{apRoot, apFile} {
		for i := range fh {
			b := append([]byte{}, fh...)
			b[i] ^= 0xff
			if !refusedHere(t, at1, fmt.Sprintf("byte %d changed", i), b) {
				leaks++
			}
			for n := (i + 4) &^ 3; n <= len(fh); n += 4 {
				b := append([]byte{}, fh[:n]...)
				clear(b[i:])
				if !refusedHere(t, at1, fmt.Sprintf("bytes %d… zeroed, cut to %d", i, n), b) {
					leaks++
				}
			}
			if leaks > 4 {
				t.FailNow()
			}
		}
	}
}

// Issue #8: mounting an access point on a replication destination must not create its missing root
// directory there (replication removes it within seconds): the mount fails, nothing is created.
func TestAccessPointOnReplicationDestinationCreatesNothing(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	src := e.createFS("ap-src", false)
	rep, err := e.c.CreateReplicationConfiguration(ctx, &efs.CreateReplicationConfigurationInput{SourceFileSystemId: aws.String(src),
		Destinations: []types.DestinationToCreate{{Region: aws.String(region)}}})
	if err != nil {
		t.Fatal(err)
	}
	dst := *rep.Destinations[0].FileSystemId
	efstest.Eventually(t, 20*time.Second, "destination available", func() bool {
		d, err := e.c.DescribeFileSystems(ctx, &efs.DescribeFileSystemsInput{FileSystemId: aws.String(dst)})
		return err == nil && d.FileSystems[0].LifeCycleState == types.LifeCycleStateAvailable
	})
	addr := e.mountTarget(dst, 0)
	ap, err := e.c.CreateAccessPoint(ctx, &efs.CreateAccessPointInput{
		FileSystemId: aws.String(dst), ClientToken: aws.String("on-destination"),
		RootDirectory: &types.RootDirectory{Path: aws.String("/apps/new"),
			CreationInfo: &types.CreationInfo{OwnerUid: aws.Int64(1001), OwnerGid: aws.Int64(1001), Permissions: aws.String("0755")}},
	})
	if err != nil {
		t.Fatal(err)
	}
	// Replication would remove a directory created by mistake at once: watch for its creation.
	in, err := unix.InotifyInit1(unix.IN_NONBLOCK | unix.IN_CLOEXEC)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(in)
	if _, err := unix.InotifyAddWatch(in, e.dir(dst), unix.IN_CREATE|unix.IN_MOVED_TO); err != nil {
		t.Fatal(err)
	}
	c := conn(t, addr)
	_, err = (&nfsc.Mount{Client: c.Client}).Mount("/"+*ap.AccessPointId, rpc.NewAuthUnix("efsd-test", 0, 0).Auth())
	if err == nil || !strings.Contains(err.Error(), "NOENT") {
		t.Errorf("mount of an access point with a missing root on a replication destination: %v, want MNT3ERR_NOENT", err)
	}
	if _, err := os.Lstat(filepath.Join(e.dir(dst), "apps")); !os.IsNotExist(err) {
		t.Errorf("the mount created /apps on the destination: %v", err)
	}
	buf := make([]byte, 4096)
	if n, err := unix.Read(in, buf); err != unix.EAGAIN {
		for off := 0; off+unix.SizeofInotifyEvent <= n; {
			ev := (*unix.InotifyEvent)(unsafe.Pointer(&buf[off]))
			name := strings.TrimRight(string(buf[off+unix.SizeofInotifyEvent:off+unix.SizeofInotifyEvent+int(ev.Len)]), "\x00")
			if name == "apps" {
				t.Errorf("the mount created /apps on the destination (replication removed it since)")
			}
			off += unix.SizeofInotifyEvent + int(ev.Len)
		}
		if n <= 0 {
			t.Errorf("reading inotify events: %v", err)
		}
	}
}
