package nfs

import (
	"bytes"
	"errors"
	"os"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/efsd/efsd/internal/fsview"
	nfsc "github.com/willscott/go-nfs-client/nfs"
)

// Handles name files by inode: they survive a restart of the server (new go-nfs instance, new
// connection, same fsview.HandleStore) and renames of the file and of its directories.
func TestHandlesSurviveRestartAndRenames(t *testing.T) {
	e := newEnv(t)
	s1, addr := e.start("")
	c := mustMount(t, addr, "/", rootAuth)
	for _, d := range []string{"a", "a/b", "a/b/c"} {
		if _, err := c.Mkdir(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	data := pattern(70000, 9)
	c.writeFile(t, "a/b/c/file", data, 0o644)
	_, fileFH, err := c.Lookup("a/b/c/file")
	if err != nil {
		t.Fatal(err)
	}
	_, dirFH, err := c.Lookup("a/b")
	if err != nil {
		t.Fatal(err)
	}

	// A directory rename above the file, and a rename of the file itself.
	if err := c.Rename("a/b", "top"); err != nil {
		t.Fatal(err)
	}
	if got, st, err := c.readFH(fileFH); err != nil || st != 0 || !bytes.Equal(got, data) {
		t.Fatalf("READ through the old handle after a directory rename: status %d, %v", st, err)
	}
	if err := c.Rename("top/c/file", "a/file2"); err != nil {
		t.Fatal(err)
	}
	if got, st, err := c.readFH(fileFH); err != nil || st != 0 || !bytes.Equal(got, data) {
		t.Fatalf("READ through the old handle after the file's rename: status %d, %v", st, err)
	}
	if err := c.Rename("a/file2", "top/c/file"); err != nil {
		t.Fatal(err)
	}

	// Restart: a new Server (and go-nfs instance) with the same store, on the same address.
	if err := s1.Close(); err != nil {
		t.Fatal(err)
	}
	_, addr2 := e.start(addr)
	c2 := mustMount(t, addr2, "/", rootAuth)
	if got, st, err := c2.readFH(fileFH); err != nil || st != 0 || !bytes.Equal(got, data) {
		t.Fatalf("READ through a handle from before the restart: status %d, %v", st, err)
	}
	if a, st, err := c2.getattrRaw(dirFH); err != nil || st != 0 || a.Type != nfsc.NF3Dir {
		t.Fatalf("GETATTR of a directory handle from before the restart: %+v %d %v", a, st, err)
	}
	// Another rename after the restart, then a write through the old handle.
	if err := c2.Rename("top", "top2"); err != nil {
		t.Fatal(err)
	}
	if st, _, err := c2.writeFH(fileFH, 0, []byte("NEW")); err != nil || st != 0 {
		t.Fatalf("WRITE through the old handle: %d %v", st, err)
	}
	if got, _ := os.ReadFile(e.path("top2/c/file")); !bytes.HasPrefix(got, []byte("NEW")) {
		t.Errorf("disk content after WRITE: %q", got[:8])
	}

	// A removed file's handle is stale; a new file does not inherit it.
	if err := c2.Remove("top2/c/file"); err != nil {
		t.Fatal(err)
	}
	if _, st, _ := c2.getattrRaw(fileFH); st != nfsc.NFS3ErrStale {
		t.Errorf("GETATTR of a removed file: status %d, want STALE", st)
	}
	// A file moved behind the server's back is stale too (not found by a scan).
	if err := os.Rename(e.path("top2/c"), e.path("elsewhere")); err != nil {
		t.Fatal(err)
	}
	if _, st, _ := c2.getattrRaw(dirFH); st != 0 {
		t.Errorf("GETATTR of top2 (not moved): status %d", st)
	}
	_, cFH, err := c2.Lookup("elsewhere")
	if err != nil {
		t.Fatal(err)
	}
	if _, st, _ := c2.getattrRaw(cFH); st != 0 {
		t.Errorf("GETATTR after a fresh LOOKUP: %d", st)
	}
	// Garbage and other file systems' handles are stale.
	other := fsview.NewHandleCodec(e.key, "fs-other").Encode(fsview.Handle{Ino: 2})
	for _, fh := range [][]byte{other, {1, 2, 3, 4}, make([]byte, 28)} {
		if _, st, _ := c2.getattrRaw(fh); st != nfsc.NFS3ErrStale {
			t.Errorf("GETATTR %x: status %d, want STALE", fh, st)
		}
	}
}

// The handle table is written on LOOKUP, CREATE, MKDIR and READDIRPLUS, and its entries are
// "parent inode/name".
func TestHandleTableEntries(t *testing.T) {
	e := newEnv(t)
	_, addr := e.start("")
	c := mustMount(t, addr, "/", rootAuth)
	if _, err := c.Mkdir("d", 0o755); err != nil {
		t.Fatal(err)
	}
	c.writeFile(t, "d/f", []byte("x"), 0o644)
	if err := os.WriteFile(e.path("d/outside-nfs"), []byte("y"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := c.ReadDirPlus("d"); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{"d", "d/f", "d/outside-nfs"} {
		st := statPath(t, e.path(p))
		parent := statPath(t, e.path(p+"/.."))
		loc, ok, err := e.handles.HandlePath(testFSID, st)
		want := strconv.FormatUint(parent, 10) + "/" + p[strings.LastIndex(p, "/")+1:]
		if err != nil || !ok || loc != want {
			t.Errorf("entry of %s = %q %v %v, want %q", p, loc, ok, err, want)
		}
	}
}

type flakyStore struct {
	fsview.HandleStore
	fail atomic.Bool
}

func (f *flakyStore) HandlePath(fsID string, ino uint64) (string, bool, error) {
	if f.fail.Load() {
		return "", false, errors.New("database is locked")
	}
	return f.HandleStore.HandlePath(fsID, ino)
}

// A failing fsview.HandleStore fails calls with an I/O error, not NFS3ERR_STALE (which makes clients drop
// their handles).
func TestHandleStoreFailureIsNotStale(t *testing.T) {
	e := newEnv(t)
	store := &flakyStore{HandleStore: fsview.NewMemHandles()}
	e.handles = store
	_, addr := e.start("")
	c := mustMount(t, addr, "/", rootAuth)
	if _, err := c.Mkdir("d", 0o755); err != nil {
		t.Fatal(err)
	}
	c.writeFile(t, "d/f", []byte("x"), 0o644)
	_, fh, err := c.Lookup("d/f")
	if err != nil {
		t.Fatal(err)
	}
	// A fresh server has an empty cache: it must ask the store.
	_, addr2 := e.start("")
	c2 := mustMount(t, addr2, "/", rootAuth)
	store.fail.Store(true)
	if _, st, _ := c2.getattrRaw(fh); st == 0 || st == nfsc.NFS3ErrStale {
		t.Errorf("GETATTR with a failing store: status %d, want an error other than STALE", st)
	}
	store.fail.Store(false)
	if _, st, _ := c2.getattrRaw(fh); st != 0 {
		t.Errorf("GETATTR once the store works again: status %d", st)
	}
}
