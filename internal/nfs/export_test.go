package nfs

import (
	"bytes"
	"os"
	"testing"

	nfsc "github.com/willscott/go-nfs-client/nfs"
)

func TestReadOnly(t *testing.T) {
	e := newEnv(t)
	if err := os.MkdirAll(e.path("d"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(e.path("d/f"), []byte("replica"), 0o644); err != nil {
		t.Fatal(err)
	}
	_, addr := e.start("")
	c := mustMount(t, addr, "/", rootAuth)
	_, fh, err := c.Lookup("d/f")
	if err != nil {
		t.Fatal(err)
	}
	e.ro.Store(true)
	before := e.changes.Load()

	rofs := func(what string, err error) {
		t.Helper()
		if st := nfsStatus(err); st != nfsc.NFS3ErrROFS {
			t.Errorf("%s on a read-only export: %v (status %d), want NFS3ERR_ROFS", what, err, st)
		}
	}
	_, err = c.Create("d/new", 0o644)
	rofs("CREATE", err)
	_, err = c.Mkdir("d/newdir", 0o755)
	rofs("MKDIR", err)
	rofs("SYMLINK", c.Symlink("f", "d/link"))
	rofs("REMOVE", c.Remove("d/f"))
	rofs("RMDIR", c.RmDir("d"))
	rofs("RENAME", c.Rename("d/f", "d/g"))
	st, _, err := c.writeFH(fh, 0, []byte("x"))
	if err != nil || st != nfsc.NFS3ErrROFS {
		t.Errorf("WRITE: status %d %v, want ROFS", st, err)
	}
	st, err = c.setattrRaw(fh, nfsc.Sattr3{Mode: nfsc.SetMode{SetIt: true, Mode: 0o600}})
	if err != nil || st != nfsc.NFS3ErrROFS {
		t.Errorf("SETATTR: status %d %v, want ROFS", st, err)
	}
	// Special bits only (handled before go-nfs sees the call) are refused too.
	st, err = c.setattrRaw(fh, nfsc.Sattr3{Mode: nfsc.SetMode{SetIt: true, Mode: 0o4644}})
	if err != nil || st != nfsc.NFS3ErrROFS {
		t.Errorf("SETATTR u+s: status %d %v, want ROFS", st, err)
	}
	if got := c.readFile(t, "d/f"); string(got) != "replica" {
		t.Errorf("READ on a read-only export: %q", got)
	}
	if _, err := c.ReadDirPlus("d"); err != nil {
		t.Errorf("READDIRPLUS on a read-only export: %v", err)
	}
	if got, _ := os.ReadFile(e.path("d/f")); string(got) != "replica" {
		t.Errorf("disk changed: %q", got)
	}
	if _, _, mode := ownerOf(t, e.path("d/f")); mode != 0o644 {
		t.Errorf("mode changed: %o", mode)
	}
	if n := e.changes.Load() - before; n != 0 {
		t.Errorf("OnChange called %d times on a read-only export", n)
	}

	// The flag is read on every call.
	e.ro.Store(false)
	c.writeFile(t, "d/new", []byte("now writable"), 0o644)
	if got, _ := os.ReadFile(e.path("d/new")); string(got) != "now writable" {
		t.Errorf("after ReadOnly=false: %q", got)
	}
	if st, _, err := c.writeFH(fh, 0, []byte("R")); err != nil || st != 0 {
		t.Errorf("WRITE after ReadOnly=false: %d %v", st, err)
	}
}

func TestOnChange(t *testing.T) {
	e := newEnv(t)
	_, addr := e.start("")
	c := mustMount(t, addr, "/", rootAuth)
	step := func(what string, fn func() error) {
		t.Helper()
		before := e.changes.Load()
		if err := fn(); err != nil {
			t.Fatalf("%s: %v", what, err)
		}
		if e.changes.Load() == before {
			t.Errorf("%s did not call OnChange", what)
		}
	}
	step("MKDIR", func() error { _, err := c.Mkdir("d", 0o755); return err })
	var fh []byte
	step("CREATE", func() error { var err error; fh, err = c.Create("d/f", 0o644); return err })
	step("WRITE", func() error {
		st, _, err := c.writeFH(fh, 0, []byte("data"))
		if st != 0 {
			return &nfsc.Error{ErrorNum: st}
		}
		return err
	})
	step("SETATTR", func() error {
		st, err := c.setattrRaw(fh, nfsc.Sattr3{Mode: nfsc.SetMode{SetIt: true, Mode: 0o600}})
		if st != 0 {
			return &nfsc.Error{ErrorNum: st}
		}
		return err
	})
	step("SYMLINK", func() error { return c.Symlink("f", "d/l") })
	step("RENAME", func() error { return c.Rename("d/f", "d/g") })
	step("REMOVE", func() error { return c.Remove("d/g") })
	step("RMDIR", func() error {
		if err := c.Remove("d/l"); err != nil {
			return err
		}
		return c.RmDir("d")
	})
	// Reads do not.
	c.writeFile(t, "r", []byte("read me"), 0o644)
	before := e.changes.Load()
	if got := c.readFile(t, "r"); !bytes.Equal(got, []byte("read me")) {
		t.Errorf("read %q", got)
	}
	if _, err := c.ReadDirPlus("/"); err != nil {
		t.Fatal(err)
	}
	if n := e.changes.Load() - before; n != 0 {
		t.Errorf("reads called OnChange %d times", n)
	}
}

// Plain mounts act as the client's AUTH_UNIX identity; root is root; AUTH_NULL is nobody.
func TestClientIdentity(t *testing.T) {
	e := newEnv(t)
	_, addr := e.start("")
	root := mustMount(t, addr, "/", rootAuth)
	if _, err := root.Mkdir("shared", 0o777); err != nil {
		t.Fatal(err)
	}
	root.writeFile(t, "secret", []byte("root only"), 0o600)
	root.writeFile(t, "group", []byte("group 2000"), 0o640)
	if err := os.Chown(e.path("group"), 0, 2000); err != nil {
		t.Fatal(err)
	}

	u := mustMount(t, addr, "/", authUnix(1000, 1000))
	if _, err := u.Create("mine", 0o644); nfsStatus(err) != nfsc.NFS3ErrAcces {
		t.Errorf("uid 1000 creating in root's 0755 directory: %v, want NFS3ERR_ACCES", err)
	}
	u.writeFile(t, "shared/mine", []byte("x"), 0o640)
	if uid, gid, mode := ownerOf(t, e.path("shared/mine")); uid != 1000 || gid != 1000 || mode != 0o640 {
		t.Errorf("shared/mine: %d:%d %o, want 1000:1000 640", uid, gid, mode)
	}
	if _, err := u.Mkdir("shared/dir", 0o755); err != nil {
		t.Fatal(err)
	}
	if uid, gid, _ := ownerOf(t, e.path("shared/dir")); uid != 1000 || gid != 1000 {
		t.Errorf("shared/dir: %d:%d", uid, gid)
	}
	if err := u.Symlink("mine", "shared/link"); err != nil {
		t.Fatal(err)
	}
	if uid, gid, _ := ownerOf(t, e.path("shared/link")); uid != 1000 || gid != 1000 {
		t.Errorf("shared/link: %d:%d", uid, gid)
	}
	_, secretFH, err := u.Lookup("secret")
	if err != nil {
		t.Fatal(err)
	}
	if _, st, _ := u.readFH(secretFH); st != nfsc.NFS3ErrAcces {
		t.Errorf("uid 1000 reading root's 0600 file: status %d, want ACCES", st)
	}
	_, groupFH, err := u.Lookup("group")
	if err != nil {
		t.Fatal(err)
	}
	if _, st, _ := u.readFH(groupFH); st != nfsc.NFS3ErrAcces {
		t.Errorf("uid 1000 (no group 2000) reading a 0640 file of group 2000: status %d", st)
	}
	ug := mustMount(t, addr, "/", authUnix(1000, 1000, 2000))
	if got, st, err := ug.readFH(groupFH); st != 0 || err != nil || string(got) != "group 2000" {
		t.Errorf("uid 1000 with secondary group 2000: %q status %d %v", got, st, err)
	}
	// Not the owner: chmod is refused (EPERM from the kernel, NFS3ERR_ACCES from go-nfs).
	if st, _ := u.setattrRaw(groupFH, nfsc.Sattr3{Mode: nfsc.SetMode{SetIt: true, Mode: 0o666}}); st == 0 {
		t.Errorf("uid 1000 chmod of root's file succeeded")
	}
	if st, _ := u.setattrRaw(groupFH, nfsc.Sattr3{Mode: nfsc.SetMode{SetIt: true, Mode: 0o4640}}); st == 0 {
		t.Errorf("uid 1000 chmod u+s of root's file succeeded")
	}
	if _, _, mode := ownerOf(t, e.path("group")); mode != 0o640 {
		t.Errorf("mode of root's file changed to %o", mode)
	}
	// CREATE (UNCHECKED) of an existing file another user owns opens it, without trying to give it
	// the mode asked (as knfsd).
	root.writeFile(t, "shared/open", []byte("anyone"), 0o666)
	if err := os.Chmod(e.path("shared/open"), 0o666); err != nil {
		t.Fatal(err)
	}
	if _, err := u.Create("shared/open", 0o600); err != nil {
		t.Errorf("CREATE of an existing file: %v", err)
	}
	if uid, _, mode := ownerOf(t, e.path("shared/open")); uid != 0 || mode != 0o666 {
		t.Errorf("shared/open: uid %d mode %o", uid, mode)
	}
	// ACCESS tells the client what it may not modify (go-nfs always grants read, lookup, execute).
	const modify = nfsc.ACCESS3_MODIFY | nfsc.ACCESS3_EXTEND
	if got, err := u.Access("group", modify|nfsc.ACCESS3_READ); err != nil || got&modify != 0 {
		t.Errorf("ACCESS of root's 0640 file for uid 1000: %#x %v, want no modify", got, err)
	}
	if got, err := u.Access("shared/mine", modify); err != nil || got&modify != modify {
		t.Errorf("ACCESS of its own file for uid 1000: %#x %v, want modify", got, err)
	}
	// Root may do anything.
	if got := root.readFile(t, "shared/mine"); string(got) != "x" {
		t.Errorf("root reading uid 1000's 0640 file: %q", got)
	}

	anon := mustMount(t, addr, "/", authNull())
	anon.writeFile(t, "shared/anon", []byte("x"), 0o644)
	if uid, gid, _ := ownerOf(t, e.path("shared/anon")); uid != 65534 || gid != 65534 {
		t.Errorf("AUTH_NULL file owner %d:%d, want 65534:65534", uid, gid)
	}
}
