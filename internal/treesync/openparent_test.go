package treesync

import (
	"os"
	"path/filepath"
	"testing"

	"golang.org/x/sys/unix"
)

// The one-call open of a parent directory (openat2, confined by the
// kernel) answers as the walk one component at a time does: the same
// directory, or the same error, for every way a path can go wrong.
func TestOpenParentMatchesWalk(t *testing.T) {
	root := t.TempDir()
	outside := t.TempDir()
	for _, d := range []string{"a/b/c", "x"} {
		if err := os.MkdirAll(filepath.Join(root, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(os.WriteFile(filepath.Join(root, "a/file"), nil, 0o644))
	must(os.Symlink("b", filepath.Join(root, "a/lb")))
	must(os.Symlink(outside, filepath.Join(root, "out")))
	must(os.Symlink("/", filepath.Join(root, "a/b/abs")))
	rfd, err := unix.Open(root, unix.O_PATH|unix.O_DIRECTORY, 0)
	must(err)
	defer unix.Close(rfd)

	ino := func(fd int) uint64 {
		var st unix.Stat_t
		must(unix.Fstat(fd, &st))
		return st.Ino
	}
	for _, rel := range []string{
		"top", "a/b/c/f", "a/b/f", "x/f",
		"missing/f", "a/missing/f", // ENOENT
		"a/file/f",                                // ENOTDIR: a file on the way
		"a/lb/c/f", "out/f", "a/b/abs/etc/passwd", // symlinks on the way
	} {
		fd1, base1, err1 := openParentAt(rfd, rel)
		fd2, base2, err2 := walkParent(rfd, rel)
		if err1 != err2 || base1 != base2 {
			t.Errorf("%s: openat2 gives %q, %v; the walk %q, %v", rel, base1, err1, base2, err2)
		} else if err1 == nil && ino(fd1) != ino(fd2) {
			t.Errorf("%s: openat2 and the walk open different directories", rel)
		}
		for _, fd := range []int{fd1, fd2} {
			if fd >= 0 && fd != rfd {
				unix.Close(fd)
			}
		}
		if err1 == nil && rel == "out/f" {
			t.Errorf("out/f: a symlink out of the root was followed")
		}
	}
}

// Parents answers as OpenParent does, opens a run of paths in one
// directory once, refuses what OpenParent refuses, and after Forget sees a
// directory that was replaced meanwhile.
func TestParentsKeepsTheLastDirectory(t *testing.T) {
	root := t.TempDir()
	for _, d := range []string{"a/b", "c"} {
		if err := os.MkdirAll(filepath.Join(root, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Symlink("/", filepath.Join(root, "up")); err != nil {
		t.Fatal(err)
	}
	rfd, err := unix.Open(root, unix.O_PATH|unix.O_DIRECTORY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(rfd)
	ino := func(fd int) uint64 {
		var st unix.Stat_t
		if err := unix.Fstat(fd, &st); err != nil {
			t.Fatal(err)
		}
		return st.Ino
	}
	p := NewParents(rfd)
	defer p.Close()
	for _, rel := range []string{"a/b/f1", "a/b/f2", "top", "c/f", "c/g", "a/b/f3"} {
		fd, base, err := p.Open(rel)
		wfd, wbase, werr := OpenParent(rfd, rel)
		if err != nil || werr != nil {
			t.Fatalf("%s: %v, %v", rel, err, werr)
		}
		if base != wbase || ino(fd) != ino(wfd) {
			t.Errorf("%s: Parents gives %q in inode %d, OpenParent %q in %d", rel, base, ino(fd), wbase, ino(wfd))
		}
		unix.Close(wfd)
	}
	// The kept directory is used without resolving its path again (what
	// saves the opens); another directory's path is resolved.
	fd, _, err := p.Open("a/b/f1")
	if err != nil {
		t.Fatal(err)
	}
	kept := ino(fd)
	if err := os.Rename(filepath.Join(root, "a/b"), filepath.Join(root, "a/moved")); err != nil {
		t.Fatal(err)
	}
	if fd, _, err = p.Open("a/b/f2"); err != nil || ino(fd) != kept {
		t.Errorf("a/b/f2 right after a/b/f1: the kept directory was not used (%v)", err)
	}
	if _, _, err = p.Open("c/f"); err != nil {
		t.Fatal(err)
	}
	if _, _, err = p.Open("a/b/f3"); err != unix.ENOENT {
		t.Errorf("a/b/f3 after c/f, a/b gone: %v, want ENOENT", err)
	}
	for _, rel := range []string{"up/etc/passwd", "a/../../x", "", "/etc/passwd"} {
		if _, _, err := p.Open(rel); err == nil {
			t.Errorf("%q: opened", rel)
		}
	}
	// A replaced directory is seen once forgotten.
	fd, _, err = p.Open("c/f")
	if err != nil {
		t.Fatal(err)
	}
	old := ino(fd)
	if err := os.Rename(filepath.Join(root, "c"), filepath.Join(root, "c.old")); err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(filepath.Join(root, "c"), 0o755); err != nil {
		t.Fatal(err)
	}
	p.Forget()
	if fd, _, err = p.Open("c/f"); err != nil {
		t.Fatal(err)
	}
	if ino(fd) == old {
		t.Errorf("after Forget the replaced directory is still used")
	}
}
