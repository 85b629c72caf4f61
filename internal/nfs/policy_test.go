package nfs

import (
	"net"
	"os"
	"sync"
	"testing"

	"github.com/efsd/efsd/internal/fsview"
	nfsc "github.com/willscott/go-nfs-client/nfs"
	"github.com/willscott/go-nfs-client/nfs/rpc"
	"github.com/willscott/go-nfs-client/nfs/xdr"
)

// policyEnv serves the test export with an Access function the test sets per access point.
type policyEnv struct {
	*testEnv
	mu     sync.Mutex
	access map[string]fsview.ClientAccess // by access point ID; missing = fsview.FullAccess
	asked  map[string]int
}

func newPolicyEnv(t *testing.T) (*policyEnv, string) {
	t.Helper()
	pe := &policyEnv{testEnv: newEnv(t), access: map[string]fsview.ClientAccess{}, asked: map[string]int{}}
	ex := pe.export()
	ex.Access = func(apID string) fsview.ClientAccess {
		pe.mu.Lock()
		defer pe.mu.Unlock()
		pe.asked[apID]++
		if a, ok := pe.access[apID]; ok {
			return a
		}
		return fsview.FullAccess
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := NewServer(ex, pe.handles, testLogger(t))
	done := make(chan error, 1)
	go func() { done <- s.Serve(ln) }()
	t.Cleanup(func() {
		_ = s.Close()
		if err := <-done; err != nil {
			t.Errorf("Serve: %v", err)
		}
	})
	return pe, ln.Addr().String()
}

func (pe *policyEnv) set(apID string, a fsview.ClientAccess) {
	pe.mu.Lock()
	defer pe.mu.Unlock()
	pe.access[apID] = a
}

func TestPolicyMount(t *testing.T) {
	pe, addr := newPolicyEnv(t)
	if err := os.WriteFile(pe.path("f"), []byte("data"), 0o644); err != nil {
		t.Fatal(err)
	}
	ci := &fsview.CreationInfo{OwnerUID: 1000, OwnerGID: 1000, Permissions: 0o755}
	pe.setAP(fsview.AccessPoint{ID: "fsap-0000000000000000a", Path: "/a", CreationInfo: ci})
	pe.setAP(fsview.AccessPoint{ID: "fsap-0000000000000000b", Path: "/b", CreationInfo: ci})

	pe.set("", fsview.ClientAccess{})
	pe.set("fsap-0000000000000000b", fsview.ClientAccess{})
	for _, dir := range []string{"/", "/sub", "/fsap-0000000000000000b", "fsap-0000000000000000b/x"} {
		if _, err := mount(t, addr, dir, rootAuth); err == nil || err.Error() != "MNT3ERR_ACCES" {
			t.Errorf("mount %s without ClientMount: %v, want MNT3ERR_ACCES", dir, err)
		}
	}
	if _, err := os.Lstat(pe.path("b")); !os.IsNotExist(err) {
		t.Errorf("a refused mount created the access point's root: %v", err)
	}
	// Access is asked per access point: another one is granted.
	c := mustMount(t, addr, "/fsap-0000000000000000a", rootAuth)
	c.writeFile(t, "through-a", []byte("x"), 0o644)

	// A policy change reaches mounted clients at their next call.
	pe.set("", fsview.FullAccess)
	root := mustMount(t, addr, "/", rootAuth)
	_, fh, err := root.Lookup("f")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(pe.path("d"), 0o755); err != nil {
		t.Fatal(err)
	}
	for _, n := range []string{"x", "y", "z"} {
		if err := os.WriteFile(pe.path("d/"+n), nil, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	_, dfh, err := root.Lookup("d")
	if err != nil {
		t.Fatal(err)
	}
	st, verf, err := root.readdirRaw(dfh, 0, 0)
	if err != nil || st != 0 || verf == 0 {
		t.Fatalf("READDIR: status %d verifier %x %v", st, verf, err)
	}
	const secondEntry = 2 // go-nfs's cookies: 0 ".", 1 "..", then 2, 3, … for the entries
	if st, v2, err := root.readdirRaw(dfh, secondEntry, verf); err != nil || st != 0 || v2 != verf {
		t.Fatalf("READDIR continued: status %d verifier %x (was %x) %v", st, v2, verf, err)
	}

	pe.set("", fsview.ClientAccess{Write: true, Root: true}) // everything but ClientMount
	if st, _, _ := root.readdirRaw(dfh, secondEntry, verf); st != nfsc.NFS3ErrAcces {
		t.Errorf("READDIR continued from a cached listing after ClientMount was withdrawn: status %d, want ACCES", st)
	}
	if st, _ := root.fsstatRaw(dfh); st != nfsc.NFS3ErrAcces {
		t.Errorf("FSSTAT after ClientMount was withdrawn: status %d, want ACCES", st)
	}
	if _, st, _ := root.readFH(fh); st != nfsc.NFS3ErrAcces {
		t.Errorf("READ after ClientMount was withdrawn: status %d, want ACCES", st)
	}
	if _, st, _ := root.getattrRaw(fh); st == 0 { // go-nfs answers a failed GETATTR with NFS3ERR_IO
		t.Error("GETATTR after ClientMount was withdrawn succeeded")
	}
	if _, err := root.Mkdir("new", 0o755); err == nil {
		t.Error("MKDIR after ClientMount was withdrawn succeeded")
	}
	if _, err := os.Lstat(pe.path("new")); !os.IsNotExist(err) {
		t.Errorf("directory created after ClientMount was withdrawn: %v", err)
	}
	pe.set("", fsview.FullAccess)
	if got := root.readFile(t, "f"); string(got) != "data" {
		t.Errorf("READ once ClientMount is granted again: %q", got)
	}
}

func TestPolicyWriteAndRoot(t *testing.T) {
	pe, addr := newPolicyEnv(t)
	if err := os.WriteFile(pe.path("f"), []byte("data"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(pe.path("open"), 0o777); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(pe.path("open"), 0o777); err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(pe.path("rootgroup"), 0o770); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(pe.path("rootgroup"), 0o770); err != nil { // root:root 0770, umask aside
		t.Fatal(err)
	}

	// ClientMount only: read-only.
	pe.set("", fsview.ClientAccess{Mount: true})
	c := mustMount(t, addr, "/", rootAuth)
	if got := c.readFile(t, "f"); string(got) != "data" {
		t.Errorf("READ with ClientMount: %q", got)
	}
	_, fh, err := c.Lookup("f")
	if err != nil {
		t.Fatal(err)
	}
	if st, _, _ := c.writeFH(fh, 0, []byte("X")); st != nfsc.NFS3ErrROFS {
		t.Errorf("WRITE without ClientWrite: status %d, want ROFS", st)
	}
	if _, err := c.Create("new", 0o644); nfsStatus(err) != nfsc.NFS3ErrROFS {
		t.Errorf("CREATE without ClientWrite: %v, want ROFS", err)
	}
	if err := c.Remove("f"); nfsStatus(err) != nfsc.NFS3ErrROFS {
		t.Errorf("REMOVE without ClientWrite: %v, want ROFS", err)
	}
	if st, _ := c.setattrRaw(fh, nfsc.Sattr3{Mode: nfsc.SetMode{SetIt: true, Mode: 0o4644}}); st != nfsc.NFS3ErrROFS {
		t.Errorf("SETATTR u+s without ClientWrite: status %d, want ROFS", st)
	}
	if got, _ := os.ReadFile(pe.path("f")); string(got) != "data" {
		t.Errorf("file changed without ClientWrite: %q", got)
	}

	// ClientMount and ClientWrite, no ClientRootAccess: root is squashed, on uid and on group 0.
	pe.set("", fsview.ClientAccess{Mount: true, Write: true})
	c.writeFile(t, "open/by-root", []byte("x"), 0o644)
	if uid, gid, _ := ownerOf(t, pe.path("open/by-root")); uid != 65534 || gid != 65534 {
		t.Errorf("file created by uid 0 without ClientRootAccess: owner %d:%d, want 65534:65534", uid, gid)
	}
	if _, err := c.Create("by-root-in-root-dir", 0o644); nfsStatus(err) != nfsc.NFS3ErrAcces {
		t.Errorf("squashed root creating in root's 0755 directory: %v, want ACCES", err)
	}
	g0 := mustMount(t, addr, "/", authUnix(1000, 0, 0))
	if _, err := g0.Create("rootgroup/x", 0o644); nfsStatus(err) != nfsc.NFS3ErrAcces {
		t.Errorf("uid 1000 with group 0 creating in a root:root 0770 directory: %v, want ACCES", err)
	}
	g0.writeFile(t, "open/by-1000", []byte("x"), 0o644)
	if uid, gid, _ := ownerOf(t, pe.path("open/by-1000")); uid != 1000 || gid != 65534 {
		t.Errorf("file created by 1000:0 without ClientRootAccess: owner %d:%d, want 1000:65534", uid, gid)
	}

	// An access point's POSIX user still replaces the client's identity.
	pe.setAP(fsview.AccessPoint{ID: "fsap-0000000000000000c", Path: "/open", UID: ptr(uint32(0)), GID: ptr(uint32(0))})
	pe.set("fsap-0000000000000000c", fsview.ClientAccess{Mount: true, Write: true})
	ap := mustMount(t, addr, "/fsap-0000000000000000c", authUnix(1000, 1000))
	ap.writeFile(t, "by-ap", []byte("x"), 0o644)
	if uid, gid, _ := ownerOf(t, pe.path("open/by-ap")); uid != 0 || gid != 0 {
		t.Errorf("file created through an access point with PosixUser 0:0: owner %d:%d", uid, gid)
	}

	// With ClientRootAccess root is root.
	pe.set("", fsview.FullAccess)
	c.writeFile(t, "by-root", []byte("x"), 0o644)
	if uid, gid, _ := ownerOf(t, pe.path("by-root")); uid != 0 || gid != 0 {
		t.Errorf("file created by root with ClientRootAccess: owner %d:%d", uid, gid)
	}
}

func ptr[T any](v T) *T { return &v }

// readdirRaw makes one READDIR of directory fh from cookie with verifier verf and returns the
// status and the reply's verifier.
func (c *client) readdirRaw(fh []byte, cookie, verf uint64) (uint32, uint64, error) {
	type args struct {
		rpc.Header
		FH     []byte
		Cookie uint64
		Verf   uint64
		Count  uint32
	}
	const procReaddir = 16 // NFSPROC3_READDIR
	st, res, err := c.raw(&args{Header: c.header(procReaddir), FH: fh, Cookie: cookie, Verf: verf, Count: 4096})
	if err != nil || st != 0 {
		return st, 0, err
	}
	var head struct {
		Attr nfsc.PostOpAttr
		Verf uint64
	}
	err = xdr.Read(res, &head)
	return 0, head.Verf, err
}

// fsstatRaw makes an FSSTAT of the file system of fh.
func (c *client) fsstatRaw(fh []byte) (uint32, error) {
	type args struct {
		rpc.Header
		FH []byte
	}
	const procFSStat = 18 // NFSPROC3_FSSTAT
	st, _, err := c.raw(&args{Header: c.header(procFSStat), FH: fh})
	return st, err
}
