package treesync

import (
	"bytes"
	"context"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// old is a fixed mtime well outside any racy window.
var old = time.Date(2021, 3, 4, 5, 6, 7, 123456789, time.UTC)

// writeFile and mkdir take raw st_mode permission bits (04755, 01777), which
// os.Chmod would not understand.
func writeFile(t testing.TB, path, content string, mode uint32, mtime time.Time) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	os.Remove(path)
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := unix.Chmod(path, mode); err != nil {
		t.Fatal(err)
	}
	setMtime(t, path, mtime)
}

func mkdir(t testing.TB, path string, mode uint32) {
	t.Helper()
	if err := os.MkdirAll(path, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := unix.Chmod(path, mode); err != nil {
		t.Fatal(err)
	}
}

func symlink(t testing.TB, target, path string) {
	t.Helper()
	if err := os.Symlink(target, path); err != nil {
		t.Fatal(err)
	}
}

func hardlink(t testing.TB, oldpath, newpath string) {
	t.Helper()
	if err := os.Link(oldpath, newpath); err != nil {
		t.Fatal(err)
	}
}

// setMtime sets the mtime of path itself (a symlink is not followed).
func setMtime(t testing.TB, path string, mtime time.Time) {
	t.Helper()
	ts := []unix.Timespec{{Nsec: unix.UTIME_OMIT}, unix.NsecToTimespec(mtime.UnixNano())}
	if err := unix.UtimesNanoAt(unix.AT_FDCWD, path, ts, unix.AT_SYMLINK_NOFOLLOW); err != nil {
		t.Fatal(err)
	}
}

func mtimeOf(t testing.TB, path string) time.Time {
	t.Helper()
	fi, err := os.Lstat(path)
	if err != nil {
		t.Fatal(err)
	}
	return fi.ModTime()
}

// buildTree makes a tree with every kind of entry Sync handles.
func buildTree(t testing.TB, root string) {
	t.Helper()
	mkdir(t, root, 0o755)
	writeFile(t, root+"/a.txt", "hello", 0o644, old)
	writeFile(t, root+"/empty", "", 0o600, old)
	writeFile(t, root+"/exec", "#!/bin/sh\n", 0o4755, old)
	writeFile(t, root+"/sgid", "x", 0o2750, old)
	writeFile(t, root+"/big", strings.Repeat("0123456789abcdef", 200_000), 0o640, old) // 3.2 MB
	writeFile(t, root+"/sub/b.txt", "bee", 0o444, old)
	writeFile(t, root+"/sub/deep/er/c.txt", "sea", 0o644, old)
	mkdir(t, root+"/emptydir", 0o700)
	mkdir(t, root+"/sticky", 0o1777)
	hardlink(t, root+"/a.txt", root+"/sub/a-link")
	hardlink(t, root+"/a.txt", root+"/sub/deep/a-link2")
	symlink(t, "a.txt", root+"/rel-link")
	symlink(t, "/etc", root+"/abs-link")
	symlink(t, "does/not/exist", root+"/dangling")
	symlink(t, "../sub", root+"/sub/deep/up")
	for _, p := range []string{"/rel-link", "/abs-link", "/dangling"} {
		setMtime(t, root+p, old.Add(time.Hour))
	}
	for _, p := range []string{"/sub/deep/er", "/sub/deep", "/sub", "/emptydir", "/sticky", ""} {
		setMtime(t, root+p, old.Add(2*time.Hour))
	}
}

type node struct {
	mode       fs.FileMode
	uid, gid   uint32
	size       int64
	mtime      int64
	target     string
	ino, nlink uint64
}

// scan lists root with Lstat, skipping sockets, FIFOs and devices (which
// Sync does not replicate).
func scan(t testing.TB, root string) map[string]node {
	t.Helper()
	m := map[string]node{}
	err := filepath.WalkDir(root, func(p string, _ fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		fi, err := os.Lstat(p)
		if err != nil {
			return err
		}
		if fi.Mode()&(fs.ModeSocket|fs.ModeNamedPipe|fs.ModeDevice|fs.ModeCharDevice) != 0 {
			return nil
		}
		st := fi.Sys().(*syscall.Stat_t)
		rel, _ := filepath.Rel(root, p)
		n := node{mode: fi.Mode(), uid: st.Uid, gid: st.Gid, mtime: fi.ModTime().UnixNano(), ino: st.Ino, nlink: uint64(st.Nlink)}
		switch {
		case fi.Mode().IsRegular():
			n.size = fi.Size()
		case fi.Mode()&fs.ModeSymlink != 0:
			if n.target, err = os.Readlink(p); err != nil {
				return err
			}
		}
		m[rel] = n
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// linkedWith returns, for every regular file, the other paths sharing its inode.
func linkedWith(m map[string]node) map[string][]string {
	byIno := map[uint64][]string{}
	for p, n := range m {
		if n.mode.IsRegular() {
			byIno[n.ino] = append(byIno[n.ino], p)
		}
	}
	out := map[string][]string{}
	for _, ps := range byIno {
		slices.Sort(ps)
		for _, p := range ps {
			out[p] = ps
		}
	}
	return out
}

// assertIdentical fails unless dst reproduces src: the same names, types,
// modes, owners, sizes, mtimes (ns), symlink targets, contents and hard-link
// structure; and dst holds no temporaries or special files.
func assertIdentical(t testing.TB, src, dst string) {
	t.Helper()
	sm, dm := scan(t, src), scan(t, dst)
	sl, dl := linkedWith(sm), linkedWith(dm)
	for p, s := range sm {
		d, ok := dm[p]
		switch {
		case !ok:
			t.Errorf("%s: missing in dst", p)
			continue
		case s.mode != d.mode:
			t.Errorf("%s: mode %v, want %v", p, d.mode, s.mode)
		case s.uid != d.uid || s.gid != d.gid:
			t.Errorf("%s: owner %d:%d, want %d:%d", p, d.uid, d.gid, s.uid, s.gid)
		case s.size != d.size:
			t.Errorf("%s: size %d, want %d", p, d.size, s.size)
		case s.mtime != d.mtime:
			t.Errorf("%s: mtime %v, want %v", p, time.Unix(0, d.mtime), time.Unix(0, s.mtime))
		case s.target != d.target:
			t.Errorf("%s: symlink target %q, want %q", p, d.target, s.target)
		case s.mode.IsRegular() && !slices.Equal(sl[p], dl[p]):
			t.Errorf("%s: linked with %v, want %v", p, dl[p], sl[p])
		case s.mode.IsRegular():
			a, err1 := os.ReadFile(filepath.Join(src, p))
			b, err2 := os.ReadFile(filepath.Join(dst, p))
			if err1 != nil || err2 != nil || !bytes.Equal(a, b) {
				t.Errorf("%s: content differs (%v, %v)", p, err1, err2)
			}
		}
	}
	for p := range dm {
		if _, ok := sm[p]; !ok {
			t.Errorf("%s: extra in dst", p)
		}
	}
	filepath.WalkDir(dst, func(p string, e fs.DirEntry, err error) error {
		if err == nil && e.Type()&(fs.ModeSocket|fs.ModeNamedPipe|fs.ModeDevice|fs.ModeCharDevice) != 0 {
			t.Errorf("%s: special file in dst", p)
		}
		return nil
	})
}

func mustSync(t testing.TB, src, dst string, o Options) Stats {
	t.Helper()
	st, err := Sync(context.Background(), src, dst, o)
	if err != nil {
		t.Fatalf("Sync: %v", err)
	}
	return st
}

func tempDirs(t testing.TB) (src, dst string) {
	t.Helper()
	base := t.TempDir()
	return base + "/src", base + "/dst"
}
