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
