package nfs

import (
	"crypto/sha256"
	"fmt"
	"os"
	"strings"
	"testing"

	"github.com/efsd/efsd/internal/efstest/nfsclient"
	"github.com/efsd/efsd/internal/fsview"
	gonfs "github.com/willscott/go-nfs"
	nfsc "github.com/willscott/go-nfs-client/nfs"
	"github.com/willscott/go-nfs-client/nfs/rpc"
)

// dialRaw opens an NFS connection that makes no MOUNT call (as the Linux kernel's NFS connection,
// which mounts over another one): only the handles themselves confine it.
func dialRaw(t *testing.T, addr string, auth rpc.Auth) *client {
	t.Helper()
	c, err := nfsclient.Dial(addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	return &client{Target: &nfsc.Target{Client: c}, auth: auth}
}

func refused(st uint32) bool { return st == nfsc.NFS3ErrStale || st == nfsc.NFS3ErrBadHandle }

// mustRefuse checks that fh gets NFS3ERR_STALE or NFS3ERR_BADHANDLE, and no data, from GETATTR,
// READ and LOOKUP "..".
func mustRefuse(t *testing.T, c *client, what string, fh []byte) {
	t.Helper()
	if a, st, err := c.getattrRaw(fh); err != nil || !refused(st) {
		t.Errorf("%s: GETATTR %x: status %d %v (attr %+v), want STALE or BADHANDLE", what, fh, st, err, a)
		return
	}
	if len(fh)%4 != 0 {
		return // go-nfs misreads the arguments after an unpadded handle; GETATTR has none
	}
	if data, st, err := c.readFH(fh); err != nil || !refused(st) {
		t.Errorf("%s: READ %x: status %d %v (%q), want STALE or BADHANDLE", what, fh, st, err, data)
	}
	if _, st, err := c.lookupRaw(fh, ".."); err != nil || !refused(st) {
		t.Errorf("%s: LOOKUP .. in %x: status %d %v, want STALE or BADHANDLE", what, fh, st, err)
	}
}

// mutations returns every variant of a handle an attacker might try without the key: each byte
// changed in several ways; each byte, or all bytes from it on, zeroed with the handle cut to any
// length after it (the attack of issue #8 zeroed the access point ID's length byte and cut the ID
// off, leaving zero padding); the handle cut short or extended.
func mutations(fh []byte) map[string][]byte {
	out := map[string][]byte{}
	add := func(name string, b []byte) {
		if string(b) != string(fh) {
			out[name] = b
		}
	}
	for i := range fh {
		for _, x := range []byte{0x01, 0x80, 0xff} {
			b := append([]byte{}, fh...)
			b[i] ^= x
			add(fmt.Sprintf("byte %d ^ %#x", i, x), b)
		}
		for _, v := range []byte{0, 1, 2} {
			b := append([]byte{}, fh...)
			b[i] = v
			add(fmt.Sprintf("byte %d = %d", i, v), b)
		}
		for n := (i + 4) &^ 3; n <= len(fh); n += 4 {
			b := append([]byte{}, fh[:n]...)
			b[i] = 0
			add(fmt.Sprintf("byte %d = 0, cut to %d", i, n), b)
			clear(b[i:])
			add(fmt.Sprintf("bytes %d… = 0, cut to %d", i, n), b)
		}
	}
	for n := 0; n < len(fh); n++ {
		add(fmt.Sprintf("cut to %d", n), append([]byte{}, fh[:n]...))
	}
	add("4 zero bytes more", append(append([]byte{}, fh...), 0, 0, 0, 0))
	add("4 bytes more", append(append([]byte{}, fh...), 1, 2, 3, 4))
	if len(fh) < gonfs.FHSize {
		add("zero-padded to 64", append(append([]byte{}, fh...), make([]byte, gonfs.FHSize-len(fh))...))
	}
	return out
}

// apFixture is a file system with an access point (POSIX user 1001) at /data/app, a root-only
// file and a sibling directory beside it, mounted through the access point and at the root.
type apFixture struct {
	e                      *testEnv
	addr                   string
	ap, root               *client // connections that mounted the access point, the root
	apRoot, apFile, apDir  []byte  // handles issued through the access point
	rootFile, rootSecret   []byte  // handles issued through the root mount
	rootSibling, rootData  []byte
	secretText, appFileTxt string
}

func newAPFixture(t *testing.T) *apFixture {
	e := newEnv(t)
	e.setAP(fsview.AccessPoint{ID: apID, Path: "/data/app", UID: u32(1001), GID: u32(1001),
		CreationInfo: &fsview.CreationInfo{OwnerUID: 1001, OwnerGID: 1001, Permissions: 0o755}})
	f := &apFixture{e: e, secretText: "root only", appFileTxt: "in the access point"}
	if err := os.MkdirAll(e.path("data/sibling"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(e.path("data/secret"), []byte(f.secretText), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(e.path("data/sibling/f"), []byte("sibling"), 0o600); err != nil {
		t.Fatal(err)
	}
	_, f.addr = e.start("")
	f.ap = mustMount(t, f.addr, "/"+apID, rootAuth)
	f.ap.writeFile(t, "file", []byte(f.appFileTxt), 0o644)
	if _, err := f.ap.Mkdir("dir", 0o755); err != nil {
		t.Fatal(err)
	}
	f.root = mustMount(t, f.addr, "/", rootAuth)
	for _, h := range []struct {
		c    *client
		path string
		fh   *[]byte
	}{
		{f.ap, ".", &f.apRoot}, {f.ap, "file", &f.apFile}, {f.ap, "dir", &f.apDir},
		{f.root, "data/app/file", &f.rootFile}, {f.root, "data/secret", &f.rootSecret},
		{f.root, "data/sibling", &f.rootSibling}, {f.root, "data", &f.rootData},
	} {
		_, fh, err := h.c.Lookup(h.path)
		if err != nil {
			t.Fatalf("LOOKUP %s: %v", h.path, err)
		}
		*h.fh = fh
	}
	return f
}

// Issue #8: no change to an access point's (or the root's) handle gets past the server, neither on
// a connection that mounted nothing (the handle alone must hold) nor on the access point's own.
func TestMutatedHandlesAreRefused(t *testing.T) {
	f := newAPFixture(t)
	raw := dialRaw(t, f.addr, rootAuth)
	// The handles themselves work on a connection that mounted nothing.
	if got, st, err := raw.readFH(f.apFile); err != nil || st != 0 || string(got) != f.appFileTxt {
		t.Fatalf("READ of a genuine access point handle: status %d %v %q", st, err, got)
	}
	if got, st, err := raw.readFH(f.rootSecret); err != nil || st != 0 || string(got) != f.secretText {
		t.Fatalf("READ of a genuine root handle: status %d %v %q", st, err, got)
	}
	for _, base := range []struct {
		name string
		fh   []byte
		on   []*client
	}{
		{"access point root", f.apRoot, []*client{raw, f.ap}},
		{"access point file", f.apFile, []*client{raw, f.ap}},
		{"access point dir", f.apDir, []*client{raw}},
		{"root file", f.rootSecret, []*client{raw, f.root}},
		{"root dir", f.rootData, []*client{raw}},
	} {
		for name, fh := range mutations(base.fh) {
			for _, c := range base.on {
				mustRefuse(t, c, base.name+": "+name, fh)
			}
		}
		if t.Failed() {
			return // one base's failures tell enough
		}
	}
	if got, _ := os.ReadFile(f.e.path("data/secret")); string(got) != f.secretText {
		t.Errorf("secret changed: %q", got)
	}
}

// The attack of issue #8, step by step: an access point's directory handle turned into a root
// handle by zeroing the access point ID's length and cutting the ID off (leaving zero padding),
// whatever the layout, must not let a client
// claiming uid 0 read a root-only file or list a sibling directory outside the access point.
func TestAccessPointHandleCannotBecomeRootHandle(t *testing.T) {
	f := newAPFixture(t)
	raw := dialRaw(t, f.addr, rootAuth)
	escaped := 0
	for _, base := range [][]byte{f.apRoot, f.apDir} {
		for i := range base {
			for n := (i + 4) &^ 3; n <= len(base); n += 4 {
				fh := append([]byte{}, base[:n]...)
				clear(fh[i:]) // the length byte, and the padding after it
				for _, c := range []*client{raw, f.ap} {
					up, st, err := c.lookupRaw(fh, "..")
					if err != nil || st != 0 {
						continue
					}
					for _, name := range []string{"secret", "../secret", "sibling"} {
						target, st, _ := c.lookupRaw(up, name)
						if st != 0 {
							continue
						}
						if data, st, _ := c.readFH(target); st == 0 {
							t.Errorf("bytes %d… zeroed, cut to %d: read %s outside the access point: %q", i, n, name, data)
							escaped++
						} else if _, st, _ := c.getattrRaw(target); st == 0 {
							t.Errorf("bytes %d… zeroed, cut to %d: reached %s outside the access point", i, n, name)
							escaped++
						}
					}
					if escaped > 5 {
						t.FailNow()
					}
				}
			}
		}
	}
}

// The export a connection has mounted bounds the handles used on it: after MOUNT of an access
// point, a genuine root handle or another access point's handle is stale there, and the reverse.
// A connection that mounted several exports may use the handles of each.
func TestConnectionBoundToMountedExport(t *testing.T) {
	f := newAPFixture(t)
	const ap2 = "fsap-0000000000000000b"
	f.e.setAP(fsview.AccessPoint{ID: ap2, Path: "/data/b", CreationInfo: &fsview.CreationInfo{OwnerUID: 0, OwnerGID: 0, Permissions: 0o755}})
	b := mustMount(t, f.addr, "/"+ap2, rootAuth)
	b.writeFile(t, "bfile", []byte("of the other access point"), 0o644)
	_, bFile, err := b.Lookup("bfile")
	if err != nil {
		t.Fatal(err)
	}

	// Genuine handles of other exports: stale on the access point's connection...
	for name, fh := range map[string][]byte{
		"root handle of a file inside the access point": f.rootFile,
		"root handle of a root-only file":               f.rootSecret,
		"root handle of a sibling directory":            f.rootSibling,
		"handle of another access point":                bFile,
	} {
		mustRefuse(t, f.ap, name, fh)
	}
	// ...as are the access points' handles on the root mount's connection.
	mustRefuse(t, f.root, "access point handle on a root mount", f.apFile)
	mustRefuse(t, f.root, "other access point's handle on a root mount", bFile)
	mustRefuse(t, b, "access point handle on another access point's mount", f.apFile)
	// The connection's own handles still work.
	if got, st, _ := f.ap.readFH(f.apFile); st != 0 || string(got) != f.appFileTxt {
		t.Errorf("own handle on the access point's connection: status %d %q", st, got)
	}
	if got, st, _ := f.root.readFH(f.rootSecret); st != 0 || string(got) != f.secretText {
		t.Errorf("own handle on the root connection: status %d %q", st, got)
	}

	// A subdirectory mount below the access point binds to the access point (EFS confines an
	// access point, not a subdirectory mount: its root's handle works there).
	sub := mustMount(t, f.addr, "/"+apID+"/dir", rootAuth)
	if _, st, _ := sub.getattrRaw(f.apRoot); st != 0 {
		t.Errorf("access point root handle on a mount of a directory below it: status %d", st)
	}
	mustRefuse(t, sub, "root handle on a mount of a directory below an access point", f.rootFile)
	// A subdirectory mount of the file system is not confined: root handles work, access point
	// handles do not.
	rsub := mustMount(t, f.addr, "/data/sibling", rootAuth)
	if _, st, _ := rsub.getattrRaw(f.rootSecret); st != 0 {
		t.Errorf("root handle on a subdirectory mount: status %d", st)
	}
	mustRefuse(t, rsub, "access point handle on a subdirectory mount", f.apFile)

	// One connection that mounted both may use the handles of both.
	both := mustMount(t, f.addr, "/", rootAuth)
	if _, err := (&nfsc.Mount{Client: both.Client}).Mount("/"+apID, rootAuth); err != nil {
		t.Fatal(err)
	}
	for name, fh := range map[string][]byte{"root": f.rootSecret, "access point": f.apFile} {
		if _, st, _ := both.getattrRaw(fh); st != 0 {
			t.Errorf("%s handle on a connection that mounted both: status %d", name, st)
		}
	}
	mustRefuse(t, both, "unmounted access point's handle", bFile)
}

// One connection may mount only so many exports (the set that bounds its handles is bounded too);
// mounting one it has already mounted again still works.
func TestConnectionMountLimit(t *testing.T) {
	e := newEnv(t)
	for i := range maxBoundExports + 1 {
		e.setAP(fsview.AccessPoint{ID: fmt.Sprintf("fsap-%017x", i), Path: "/"})
	}
	_, addr := e.start("")
	c := mustMount(t, addr, "/", rootAuth)
	m := &nfsc.Mount{Client: c.Client}
	for i := range maxBoundExports - 1 {
		if _, err := m.Mount(fmt.Sprintf("/fsap-%017x", i), rootAuth); err != nil {
			t.Fatalf("mount %d: %v", i, err)
		}
	}
	if _, err := m.Mount(fmt.Sprintf("/fsap-%017x", maxBoundExports), rootAuth); err == nil || !strings.Contains(err.Error(), "ACCES") {
		t.Errorf("mount of export %d over one connection: %v, want MNT3ERR_ACCES", maxBoundExports+1, err)
	}
	for _, p := range []string{"/", "/fsap-00000000000000000"} {
		if _, err := m.Mount(p, rootAuth); err != nil {
			t.Errorf("mount %s again: %v", p, err)
		}
	}
	// Another connection is not affected.
	mustMount(t, addr, fmt.Sprintf("/fsap-%017x", maxBoundExports), rootAuth)
}

// Handles of another file system are stale, even one of another account with the same file
// system ID, and even when that other file system could resolve the inode (here, two file system
// IDs over one directory and one handle table): the handle alone must say which file system it is
// for. Writing the other file system's public tag into the handle at any offset does not help.
func TestHandlesOfOtherFileSystems(t *testing.T) {
	a := newEnv(t)
	a.fsID = "111111111111/us-east-1/fs-0123456789abcdef0"
	if err := os.MkdirAll(a.path("d"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(a.path("d/f"), []byte("of account 1"), 0o600); err != nil {
		t.Fatal(err)
	}
	_, addrA := a.start("")
	ca := mustMount(t, addrA, "/", rootAuth)
	_, fileA, err := ca.Lookup("d/f")
	if err != nil {
		t.Fatal(err)
	}
	_, dirA, err := ca.Lookup("d")
	if err != nil {
		t.Fatal(err)
	}
	_, rootA, err := ca.Lookup(".")
	if err != nil {
		t.Fatal(err)
	}

	for _, otherID := range []string{"222222222222/us-east-1/fs-0123456789abcdef0", "111111111111/us-east-1/fs-0123456789abcdef1"} {
		// same directory, handle table and key (one data directory)
		b := &testEnv{t: t, root: a.root, fsID: otherID, key: a.key, handles: a.handles, aps: map[string]fsview.AccessPoint{}}
		_, addrB := b.start("")
		cb := mustMount(t, addrB, "/", rootAuth)
		if got := cb.readFile(t, "d/f"); string(got) != "of account 1" { // B's table knows the inodes
			t.Fatalf("B reads %q", got)
		}
		raw := dialRaw(t, addrB, rootAuth)
		tagB := sha256.Sum256([]byte(otherID))
		for name, fh := range map[string][]byte{"file": fileA, "dir": dirA, "root": rootA} {
			mustRefuse(t, cb, otherID+": "+name, fh)
			mustRefuse(t, raw, otherID+": "+name, fh)
			for off := 0; off+8 <= len(fh); off++ {
				forged := append([]byte{}, fh...)
				copy(forged[off:], tagB[:8])
				mustRefuse(t, raw, fmt.Sprintf("%s: %s with B's tag at %d", otherID, name, off), forged)
			}
		}
	}
}

// A read-only export (a replication destination) creates nothing: mounting an access point whose
// root directory is missing fails with MNT3ERR_NOENT (replication would remove the directory
// within seconds anyway), and works once the export is writable.
func TestReadOnlyExportCreatesNoAccessPointRoot(t *testing.T) {
	e := newEnv(t)
	e.setAP(fsview.AccessPoint{ID: apID, Path: "/data/app", UID: u32(1001), GID: u32(1001),
		CreationInfo: &fsview.CreationInfo{OwnerUID: 1001, OwnerGID: 1001, Permissions: 0o750}})
	e.ro.Store(true)
	_, addr := e.start("")
	before := e.changes.Load()
	for _, p := range []string{"/" + apID, apID, "/" + apID + "/sub"} {
		if _, err := mount(t, addr, p, rootAuth); err == nil || !strings.Contains(err.Error(), "NOENT") {
			t.Errorf("mount %s of a read-only export: %v, want MNT3ERR_NOENT", p, err)
		}
	}
	if _, err := os.Lstat(e.path("data")); !os.IsNotExist(err) {
		t.Errorf("mount of a read-only export created /data: %v", err)
	}
	if e.changes.Load() != before {
		t.Errorf("OnChange called for a read-only export")
	}
	// An existing root mounts fine read-only.
	if err := os.MkdirAll(e.path("data/app"), 0o755); err != nil {
		t.Fatal(err)
	}
	c := mustMount(t, addr, "/"+apID, rootAuth)
	if _, err := c.Mkdir("x", 0o755); nfsStatus(err) != nfsc.NFS3ErrROFS {
		t.Errorf("MKDIR on a read-only access point: %v, want ROFS", err)
	}
	if err := os.RemoveAll(e.path("data")); err != nil {
		t.Fatal(err)
	}
	e.ro.Store(false)
	mustMount(t, addr, "/"+apID, rootAuth)
	if uid, _, mode := ownerOf(t, e.path("data/app")); uid != 1001 || mode != 0o750 {
		t.Errorf("root created once writable: uid %d mode %o", uid, mode)
	}
}
