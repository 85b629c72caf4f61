package nfs

import (
	"os"
	"strings"
	"testing"

	"github.com/efsd/efsd/internal/fsview"
	nfsc "github.com/willscott/go-nfs-client/nfs"
)

func u32(v uint32) *uint32 { return &v }

const apID = "fsap-0123456789abcdef0"

func TestAccessPoint(t *testing.T) {
	e := newEnv(t)
	e.setAP(fsview.AccessPoint{
		ID: apID, Path: "/data/app", UID: u32(1001), GID: u32(1002), SecondaryGIDs: []uint32{2000},
		CreationInfo: &fsview.CreationInfo{OwnerUID: 1001, OwnerGID: 1002, Permissions: 0o750 | os.ModeSetgid},
	})
	e.setAP(fsview.AccessPoint{ID: "fsap-nocreate", Path: "/missing"})
	_, addr := e.start("")

	// Unknown access points, missing roots without CreationInfo: MNT3ERR_NOENT.
	for _, p := range []string{"/fsap-ffffffffffffffff0", "/fsap-nocreate"} {
		if _, err := mount(t, addr, p, rootAuth); err == nil || !strings.Contains(err.Error(), "NOENT") {
			t.Errorf("mount %s: %v, want MNT3ERR_NOENT", p, err)
		}
	}
	if _, err := os.Stat(e.path("missing")); !os.IsNotExist(err) {
		t.Errorf("/missing was created: %v", err)
	}

	before := e.changes.Load()
	// The client claims root: the access point's POSIX user is used anyway.
	c := mustMount(t, addr, "/"+apID, rootAuth)
	if e.changes.Load() == before {
		t.Errorf("creating the access point root did not call OnChange")
	}
	if uid, gid, mode := ownerOf(t, e.path("data")); uid != 0 || gid != 0 || mode != 0o755 {
		t.Errorf("/data: %d:%d %o, want 0:0 755", uid, gid, mode)
	}
	if uid, gid, mode := ownerOf(t, e.path("data/app")); uid != 1001 || gid != 1002 || mode != 0o2750 {
		t.Errorf("/data/app: %d:%d %o, want 1001:1002 2750", uid, gid, mode)
	}
	// "fsap-…" without the slash mounts it too; so does a subdirectory below it.
	mustMount(t, addr, apID, rootAuth)

	c.writeFile(t, "file", []byte("through the access point"), 0o644)
	if _, err := c.Mkdir("dir", 0o755); err != nil {
		t.Fatal(err)
	}
	if err := c.Symlink("file", "dir/link"); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{"data/app/file", "data/app/dir", "data/app/dir/link"} {
		if uid, gid, _ := ownerOf(t, e.path(p)); uid != 1001 || gid != 1002 {
			t.Errorf("%s owned by %d:%d, want 1001:1002", p, uid, gid)
		}
	}
	if got, _ := os.ReadFile(e.path("data/app/file")); string(got) != "through the access point" {
		t.Errorf("disk: %q", got)
	}
	sub := mustMount(t, addr, "/"+apID+"/dir", authUnix(5, 5))
	if _, err := sub.Create("subfile", 0o600); err != nil {
		t.Fatal(err)
	}
	if uid, _, _ := ownerOf(t, e.path("data/app/dir/subfile")); uid != 1001 {
		t.Errorf("subfile owned by %d", uid)
	}

	// Permissions are those of the POSIX user: another user's 0600 file is unreadable, a file of
	// a secondary group readable.
	for _, f := range []struct {
		name     string
		uid, gid int
		mode     os.FileMode
	}{{"other600", 3000, 3000, 0o600}, {"group640", 3000, 2000, 0o640}} {
		p := e.path("data/app/" + f.name)
		if err := os.WriteFile(p, []byte(f.name), f.mode); err != nil {
			t.Fatal(err)
		}
		if err := os.Chown(p, f.uid, f.gid); err != nil {
			t.Fatal(err)
		}
	}
	_, fh, err := c.Lookup("other600")
	if err != nil {
		t.Fatal(err)
	}
	if _, st, _ := c.readFH(fh); st != nfsc.NFS3ErrAcces {
		t.Errorf("reading another uid's 0600 file through the access point: status %d, want ACCES", st)
	}
	if st, _, _ := c.writeFH(fh, 0, []byte("x")); st != nfsc.NFS3ErrAcces {
		t.Errorf("writing another uid's 0600 file: status %d, want ACCES", st)
	}
	if got := c.readFile(t, "group640"); string(got) != "group640" {
		t.Errorf("secondary group read: %q", got)
	}

	// Nothing outside the access point's root can be reached.
	root := mustMount(t, addr, "/", rootAuth)
	root.writeFile(t, "data/secret", []byte("outside"), 0o644)
	_, rootFH, err := c.Lookup(".")
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"..", "../secret", "dir/../../secret", "/", "/etc/passwd", ".", "dir/."} {
		fh, st, err := c.lookupRaw(rootFH, name)
		if err != nil {
			t.Fatal(err)
		}
		if name == "." {
			if st != 0 {
				t.Errorf("LOOKUP . : status %d", st)
			}
			continue
		}
		if st == 0 {
			a, _, _ := c.getattrRaw(fh)
			t.Errorf("LOOKUP %q from the access point root succeeded (fileid %d)", name, a.Fileid)
		}
	}
	// Symlinks pointing outside: READLINK returns the text, the server never follows them.
	if err := c.Symlink("/etc/passwd", "abs"); err != nil {
		t.Fatal(err)
	}
	if err := c.Symlink("../secret", "rel"); err != nil {
		t.Fatal(err)
	}
	if err := c.Symlink("../../../../../../etc", "etcdir"); err != nil {
		t.Fatal(err)
	}
	for name, target := range map[string]string{"abs": "/etc/passwd", "rel": "../secret", "etcdir": "../../../../../../etc"} {
		f, err := c.Open(name)
		if err != nil {
			t.Fatal(err)
		}
		if got, err := f.Readlink(); err != nil || got != target {
			t.Errorf("READLINK %s = %q, %v", name, got, err)
		}
		_, lfh, _ := c.Lookup(name)
		if data, st, _ := c.readFH(lfh); st == 0 {
			t.Errorf("READ through symlink %s returned %q", name, data)
		}
		if st, _, _ := c.writeFH(lfh, 0, []byte("x")); st == 0 {
			t.Errorf("WRITE through symlink %s succeeded", name)
		}
	}
	if _, st, _ := c.lookupRaw(rootFH, "etcdir/passwd"); st == 0 {
		t.Errorf("LOOKUP etcdir/passwd succeeded")
	}
	_, etcFH, _ := c.Lookup("etcdir")
	if _, st, _ := c.lookupRaw(etcFH, "passwd"); st == 0 {
		t.Errorf("LOOKUP passwd in a symlink to /etc succeeded")
	}
	if got, _ := os.ReadFile(e.path("data/secret")); string(got) != "outside" {
		t.Errorf("outside file changed: %q", got)
	}

	// A handle of the access point naming a file outside its root (known to the table through the
	// plain mount) is stale.
	_, secretFH, err := root.Lookup("data/secret")
	if err != nil {
		t.Fatal(err)
	}
	// (Forging one takes the handle key: the test has it.)
	codec := fsview.NewHandleCodec(e.key, e.fsID)
	h, err := codec.Decode(secretFH)
	if err != nil {
		t.Fatal(err)
	}
	h.APID = apID
	if _, st, _ := c.getattrRaw(codec.Encode(h)); st != nfsc.NFS3ErrStale {
		t.Errorf("forged access point handle for a file outside: status %d, want STALE", st)
	}
	// A file moved out of the access point's root through the plain mount: stale through the access point.
	_, fileFH, err := c.Lookup("file")
	if err != nil {
		t.Fatal(err)
	}
	if err := root.Rename("data/app/file", "data/moved-out"); err != nil {
		t.Fatal(err)
	}
	if _, st, _ := c.getattrRaw(fileFH); st != nfsc.NFS3ErrStale {
		t.Errorf("file moved out of the access point: status %d, want STALE", st)
	}
	if err := root.Rename("data/moved-out", "data/app/back"); err != nil {
		t.Fatal(err)
	}
	if got, st, _ := c.readFH(fileFH); st != 0 || string(got) != "through the access point" {
		t.Errorf("file moved back in: status %d %q", st, got)
	}

	// A deleted access point's handles are stale.
	e.deleteAP(apID)
	if _, st, _ := c.getattrRaw(fileFH); st != nfsc.NFS3ErrStale {
		t.Errorf("handle of a deleted access point: status %d, want STALE", st)
	}
}

// An access point without a POSIX user acts as the client; its root is "/" here.
func TestAccessPointWithoutPosixUser(t *testing.T) {
	e := newEnv(t)
	e.setAP(fsview.AccessPoint{ID: "fsap-plain", Path: "/"})
	if err := os.Chmod(e.root, 0o777); err != nil {
		t.Fatal(err)
	}
	_, addr := e.start("")
	c := mustMount(t, addr, "/fsap-plain", authUnix(1234, 4321))
	c.writeFile(t, "f", []byte("x"), 0o644)
	if uid, gid, _ := ownerOf(t, e.path("f")); uid != 1234 || gid != 4321 {
		t.Errorf("owner %d:%d, want 1234:4321", uid, gid)
	}
	if _, err := mount(t, addr, "/no/such/dir", rootAuth); err == nil {
		t.Errorf("mount of a missing directory succeeded")
	}
	if err := os.MkdirAll(e.path("sub/dir"), 0o755); err != nil {
		t.Fatal(err)
	}
	s := mustMount(t, addr, "/sub/dir", rootAuth)
	s.writeFile(t, "g", []byte("y"), 0o644)
	if _, err := os.Stat(e.path("sub/dir/g")); err != nil {
		t.Errorf("subdirectory mount: %v", err)
	}
}
