package nfs

import (
	"bytes"
	"os"
	"path/filepath"
	"sort"
	"testing"
	"time"

	"github.com/efsd/efsd/internal/efstest/nfsclient"
	nfsc "github.com/willscott/go-nfs-client/nfs"
)

func TestTreeReadWriteRenameRemoveSetattr(t *testing.T) {
	e := newEnv(t)
	_, addr := e.start("")
	c := mustMount(t, addr, "/", rootAuth)

	for _, d := range []string{"a", "a/b", "a/b/c", "empty"} {
		if _, err := c.Mkdir(d, 0o750); err != nil {
			t.Fatalf("Mkdir %s: %v", d, err)
		}
	}
	files := map[string][]byte{
		"zero":          {},
		"a/small":       []byte("hello, efs\n"),
		"a/b/page":      pattern(4095, 1),
		"a/b/c/medium":  pattern(300<<10, 2),
		"a/b/c/big.bin": pattern(3<<20+12345, 3), // several WRITEs and READs
	}
	for p, data := range files {
		c.writeFile(t, p, data, 0o640)
	}
	if err := c.Symlink("../small", "a/b/link"); err != nil {
		t.Fatalf("Symlink: %v", err)
	}

	// Through NFS and on disk.
	for p, data := range files {
		if got := c.readFile(t, p); !bytes.Equal(got, data) {
			t.Errorf("NFS read %s: %d bytes, want %d", p, len(got), len(data))
		}
		disk, err := os.ReadFile(e.path(p))
		if err != nil || !bytes.Equal(disk, data) {
			t.Errorf("disk %s: %d bytes (%v), want %d", p, len(disk), err, len(data))
		}
		if _, _, mode := ownerOf(t, e.path(p)); mode != 0o640 {
			t.Errorf("%s mode %o, want 640", p, mode)
		}
	}
	if _, _, mode := ownerOf(t, e.path("a/b")); mode != 0o750 {
		t.Errorf("a/b mode %o, want 750", mode)
	}
	if target, err := os.Readlink(e.path("a/b/link")); err != nil || target != "../small" {
		t.Errorf("disk symlink = %q, %v", target, err)
	}
	f, err := c.Open("a/b/link")
	if err != nil {
		t.Fatal(err)
	}
	if target, err := f.Readlink(); err != nil || target != "../small" {
		t.Errorf("READLINK = %q, %v", target, err)
	}
	entries, err := c.ReadDirPlus("a/b")
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, en := range entries {
		if n := en.Name(); n != "." && n != ".." {
			names = append(names, n)
		}
	}
	sort.Strings(names)
	if want := []string{"c", "link", "page"}; !equalStrings(names, want) {
		t.Errorf("READDIRPLUS a/b = %v, want %v", names, want)
	}

	// Overwrite in the middle, then extend.
	_, fh, err := c.Lookup("a/small")
	if err != nil {
		t.Fatal(err)
	}
	if st, committed, err := c.writeFH(fh, 7, []byte("EFS")); err != nil || st != 0 || committed != nfsclient.Unstable {
		t.Fatalf("WRITE: status %d committed %d, %v", st, committed, err)
	}
	if st, err := c.commitRaw(fh); err != nil || st != 0 {
		t.Fatalf("COMMIT: status %d, %v", st, err)
	}
	if got, _ := os.ReadFile(e.path("a/small")); string(got) != "hello, EFS\n" {
		t.Errorf("after overwrite: %q", got)
	}

	// Renames: a file, then a directory with a subtree, across directories.
	if err := c.Rename("a/small", "a/b/c/renamed"); err != nil {
		t.Fatalf("Rename file: %v", err)
	}
	if err := c.Rename("a/b", "moved"); err != nil {
		t.Fatalf("Rename dir: %v", err)
	}
	if got := c.readFile(t, "moved/c/renamed"); string(got) != "hello, EFS\n" {
		t.Errorf("moved/c/renamed = %q", got)
	}
	if _, err := os.Stat(e.path("moved/c/big.bin")); err != nil {
		t.Errorf("disk after dir rename: %v", err)
	}
	if _, _, err := c.Lookup("a/b"); nfsStatus(err) != nfsc.NFS3ErrNoEnt {
		t.Errorf("Lookup a/b after rename: %v", err)
	}
	// Rename over an existing file replaces it.
	if err := c.Rename("zero", "moved/page"); err != nil {
		t.Fatalf("Rename over: %v", err)
	}
	if fi, err := os.Stat(e.path("moved/page")); err != nil || fi.Size() != 0 {
		t.Errorf("moved/page after rename over: %v %v", fi, err)
	}

	// Setattr: chmod, truncate, mtime.
	_, fh, err = c.Lookup("moved/c/medium")
	if err != nil {
		t.Fatal(err)
	}
	mtime := time.Date(2020, 2, 3, 4, 5, 6, 7000, time.UTC)
	st, err := c.setattrRaw(fh, nfsc.Sattr3{
		Mode:  nfsc.SetMode{SetIt: true, Mode: 0o604},
		Size:  nfsc.SetSize{SetIt: true, Size: 1000},
		Mtime: nfsc.SetTime{SetIt: nfsc.SetToClientTime, Time: nfsc.NFS3Time{Seconds: uint32(mtime.Unix()), Nseconds: uint32(mtime.Nanosecond())}},
	})
	if err != nil || st != 0 {
		t.Fatalf("SETATTR: status %d, %v", st, err)
	}
	fi, err := os.Stat(e.path("moved/c/medium"))
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o604 || fi.Size() != 1000 || !fi.ModTime().Equal(mtime) {
		t.Errorf("after SETATTR: mode %v size %d mtime %v", fi.Mode(), fi.Size(), fi.ModTime())
	}
	if got := c.readFile(t, "moved/c/medium"); !bytes.Equal(got, files["a/b/c/medium"][:1000]) {
		t.Errorf("truncated content differs")
	}
	// Extend with a size (sparse).
	if st, err := c.setattrRaw(fh, nfsc.Sattr3{Size: nfsc.SetSize{SetIt: true, Size: 5000}}); err != nil || st != 0 {
		t.Fatalf("SETATTR size: %d %v", st, err)
	}
	if fi, _ := os.Stat(e.path("moved/c/medium")); fi.Size() != 5000 {
		t.Errorf("size %d, want 5000", fi.Size())
	}
	// The setgid bit alone (go-nfs compares permission bits only) and the sticky bit on a directory.
	_, dfh, err := c.Lookup("moved")
	if err != nil {
		t.Fatal(err)
	}
	if st, err := c.setattrRaw(dfh, nfsc.Sattr3{Mode: nfsc.SetMode{SetIt: true, Mode: 0o2750}}); err != nil || st != 0 {
		t.Fatalf("SETATTR g+s: %d %v", st, err)
	}
	if _, _, mode := ownerOf(t, e.path("moved")); mode != 0o2750 {
		t.Errorf("moved mode %o, want 2750", mode)
	}
	if a, st, err := c.getattrRaw(dfh); err != nil || st != 0 || a.FileMode&07777 != 0o2750 {
		t.Errorf("GETATTR moved: %+v %d %v", a, st, err)
	}
	sfh, err := c.Mkdir("moved/sub", 0o777)
	if err != nil {
		t.Fatal(err)
	}
	// Created in a setgid directory: inherits the setgid bit; the mode asked is not reduced by umask.
	if _, _, mode := ownerOf(t, e.path("moved/sub")); mode != 0o2777 {
		t.Errorf("moved/sub mode %o, want 2777", mode)
	}
	if st, err := c.setattrRaw(sfh, nfsc.Sattr3{Mode: nfsc.SetMode{SetIt: true, Mode: 0o1777}}); err != nil || st != 0 {
		t.Fatalf("SETATTR +t-s: %d %v", st, err)
	}
	if _, _, mode := ownerOf(t, e.path("moved/sub")); mode != 0o1777 {
		t.Errorf("moved/sub mode %o, want 1777", mode)
	}

	// Remove files and directories.
	if err := c.Remove("moved/c/renamed"); err != nil {
		t.Fatalf("Remove: %v", err)
	}
	if err := c.RmDir("empty"); err != nil {
		t.Fatalf("RmDir: %v", err)
	}
	if err := c.RmDir("moved/c"); err == nil {
		t.Errorf("RmDir of a non-empty directory succeeded")
	}
	if err := c.Remove("moved/c"); err == nil {
		t.Errorf("REMOVE of a directory succeeded")
	}
	if err := c.RmDir("moved/page"); err == nil {
		t.Errorf("RMDIR of a file succeeded")
	}
	if err := c.RemoveAll("moved"); err != nil {
		t.Fatalf("RemoveAll: %v", err)
	}
	left, _ := os.ReadDir(e.root)
	var leftNames []string
	for _, l := range left {
		leftNames = append(leftNames, l.Name())
	}
	if want := []string{"a"}; !equalStrings(leftNames, want) {
		t.Errorf("left at root: %v, want %v", leftNames, want)
	}
	if _, err := os.Stat(filepath.Join(e.root, "a")); err != nil {
		t.Error(err)
	}
}

func equalStrings(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}
