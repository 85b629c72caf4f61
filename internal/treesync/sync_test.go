package treesync

import (
	"context"
	"errors"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

func TestInitialAndNoop(t *testing.T) {
	src, dst := tempDirs(t)
	buildTree(t, src)
	var calls int
	st := mustSync(t, src, dst, Options{Progress: func(Stats) { calls++ }})
	assertIdentical(t, src, dst)
	// 6 files copied once each, 2 extra names of a.txt linked, 4 symlinks.
	if st.FilesCopied != 7 || st.LinksCreated != 2 || st.SymlinksCreated != 4 || st.DirsCreated != 6 {
		t.Errorf("stats %+v", st)
	}
	if st.BytesCopied != 5+0+10+1+3_200_000+3+3 {
		t.Errorf("BytesCopied = %d", st.BytesCopied)
	}
	if calls != 13 {
		t.Errorf("Progress called %d times", calls)
	}

	st = mustSync(t, src, dst, Options{})
	assertIdentical(t, src, dst)
	if st.FilesCopied != 0 || st.Deleted != 0 || st.MetadataUpdated != 0 || st.LinksCreated != 0 || st.SymlinksCreated != 0 || st.DirsCreated != 0 {
		t.Errorf("no-op pass did something: %+v", st)
	}
	if st.Unchanged != 19 {
		t.Errorf("Unchanged = %d, want 19", st.Unchanged)
	}
}

func TestMetadataOnly(t *testing.T) {
	src, dst := tempDirs(t)
	buildTree(t, src)
	mustSync(t, src, dst, Options{})
	if os.Geteuid() != 0 {
		t.Skip("needs root for chown")
	}
	must(t, os.Chmod(src+"/a.txt", 0o600))
	must(t, os.Lchown(src+"/sub/b.txt", 1234, 5678))
	must(t, os.Lchown(src+"/rel-link", 1234, 5678))
	must(t, os.Chown(src+"/sub", 1234, 5678))
	must(t, os.Chmod(src+"/sticky", 0o755))
	must(t, os.Chmod(src+"/sgid", 0o750))
	setMtime(t, src+"/exec", old.Add(time.Minute))
	st := mustSync(t, src, dst, Options{})
	assertIdentical(t, src, dst)
	if st.FilesCopied != 0 || st.BytesCopied != 0 || st.MetadataUpdated != 7 {
		t.Errorf("stats %+v", st)
	}
	if fi, _ := os.Stat(dst + "/exec"); fi.Mode() != os.ModeSetuid|0o755 {
		t.Errorf("exec mode %v", fi.Mode())
	}
}

func TestDeleteAndRename(t *testing.T) {
	src, dst := tempDirs(t)
	buildTree(t, src)
	mustSync(t, src, dst, Options{})
	must(t, os.Remove(src+"/empty"))
	must(t, os.RemoveAll(src+"/sub/deep"))
	must(t, os.Rename(src+"/exec", src+"/exec2"))
	must(t, os.Rename(src+"/emptydir", src+"/sub/moved"))
	st := mustSync(t, src, dst, Options{})
	assertIdentical(t, src, dst)
	// empty, exec, emptydir; deep/{a-link2,up,er/c.txt,er,deep itself}.
	if st.Deleted != 8 || st.FilesCopied != 1 || st.DirsCreated != 1 {
		t.Errorf("stats %+v", st)
	}
}

func TestTypeChanges(t *testing.T) {
	src, dst := tempDirs(t)
	kinds := []string{"file", "dir", "symlink", "fifo", "link"}
	make := func(kind, p string) {
		switch kind {
		case "file":
			writeFile(t, p, "content of "+p, 0o644, old)
		case "dir":
			mkdir(t, p, 0o755)
			writeFile(t, p+"/inner", "inner", 0o644, old)
		case "symlink":
			symlink(t, "target/"+filepath.Base(p), p)
		case "fifo":
			must(t, unix.Mkfifo(p, 0o644))
		case "link": // hard link to a file elsewhere in the tree
			hardlink(t, src+"/anchor", p)
		}
	}
	writeFile(t, src+"/anchor", "anchor", 0o644, old)
	for _, from := range kinds {
		for _, to := range kinds {
			make(from, src+"/"+from+"-to-"+to)
		}
	}
	mustSync(t, src, dst, Options{})
	assertIdentical(t, src, dst)
	for _, from := range kinds {
		for _, to := range kinds {
			p := src + "/" + from + "-to-" + to
			must(t, os.RemoveAll(p))
			make(to, p)
		}
	}
	mustSync(t, src, dst, Options{})
	assertIdentical(t, src, dst)
}

func TestHardLinks(t *testing.T) {
	src, dst := tempDirs(t)
	writeFile(t, src+"/a", "same", 0o644, old)
	hardlink(t, src+"/a", src+"/b")
	writeFile(t, src+"/d/c", "other", 0o644, old)
	hardlink(t, src+"/d/c", src+"/d/e")
	mustSync(t, src, dst, Options{})
	assertIdentical(t, src, dst)

	// Break a link with an identical file (same content, size, mtime):
	// the destination must follow though the names look unchanged.
	must(t, os.Remove(src+"/b"))
	writeFile(t, src+"/b", "same", 0o644, old)
	// Move a link between groups and add a third name to a group.
	must(t, os.Remove(src+"/d/e"))
	hardlink(t, src+"/a", src+"/d/e")
	hardlink(t, src+"/d/c", src+"/z")
	st := mustSync(t, src, dst, Options{})
	assertIdentical(t, src, dst)
	if st.LinksCreated != 2 {
		t.Errorf("stats %+v", st)
	}
	st = mustSync(t, src, dst, Options{})
	if st.FilesCopied+st.LinksCreated+st.MetadataUpdated+st.Deleted != 0 {
		t.Errorf("second pass did something: %+v", st)
	}
	// Two groups that the destination has merged into one inode.
	must(t, os.Remove(dst+"/d/c"))
	hardlink(t, dst+"/a", dst+"/d/c")
	must(t, os.Remove(dst+"/z"))
	hardlink(t, dst+"/a", dst+"/z")
	writeFile(t, src+"/d/c", "same", 0o644, old)
	writeFile(t, src+"/a", "same", 0o644, old)
	mustSync(t, src, dst, Options{})
	assertIdentical(t, src, dst)
}

func TestSymlinksNotFollowed(t *testing.T) {
	src, dst := tempDirs(t)
	mkdir(t, src, 0o755)
	symlink(t, "/etc", src+"/etc")
	symlink(t, "/etc/passwd", src+"/passwd")
	symlink(t, "../../outside", src+"/rel")
	symlink(t, "nowhere", src+"/dangling")
	st := mustSync(t, src, dst, Options{})
	assertIdentical(t, src, dst)
	if st.SymlinksCreated != 4 || st.FilesCopied != 0 || st.DirsCreated != 1 {
		t.Errorf("stats %+v", st)
	}
	for _, n := range []string{"etc", "passwd"} {
		if fi, err := os.Lstat(dst + "/" + n); err != nil || fi.Mode()&os.ModeSymlink == 0 {
			t.Errorf("%s: not copied as a symlink: %v %v", n, fi, err)
		}
	}
}

// A symlink planted in dst must not redirect writes outside the root.
func TestPlantedSymlinkInDst(t *testing.T) {
	src, dst := tempDirs(t)
	outside := t.TempDir()
	writeFile(t, outside+"/victim", "precious", 0o644, old)
	writeFile(t, src+"/sub/file", "data", 0o644, old)
	writeFile(t, src+"/sub/inner/x", "x", 0o644, old)
	writeFile(t, src+"/victim", "overwrite!", 0o644, old)
	writeFile(t, src+"/d/victim", "overwrite!", 0o644, old)
	mkdir(t, dst, 0o755)
	symlink(t, outside, dst+"/sub")
	symlink(t, outside+"/victim", dst+"/victim")
	symlink(t, outside, dst+"/d")
	st := mustSync(t, src, dst, Options{})
	assertIdentical(t, src, dst)
	if st.Deleted != 2 { // dst/sub and dst/d; dst/victim is renamed over
		t.Errorf("stats %+v", st)
	}
	entries, _ := os.ReadDir(outside)
	if len(entries) != 1 {
		t.Errorf("outside dir now has %d entries", len(entries))
	}
	if b, _ := os.ReadFile(outside + "/victim"); string(b) != "precious" {
		t.Errorf("outside file overwritten: %q", b)
	}
	if fi, err := os.Lstat(dst + "/sub"); err != nil || !fi.IsDir() {
		t.Errorf("dst/sub is not a real directory: %v", err)
	}
}

func TestSpecialFilesSkipped(t *testing.T) {
	src, dst := tempDirs(t)
	writeFile(t, src+"/f", "f", 0o644, old)
	must(t, unix.Mkfifo(src+"/fifo", 0o644))
	l, err := net.Listen("unix", src+"/sock")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	writeFile(t, dst+"/fifo", "a file where src has a FIFO", 0o644, old)
	must(t, unix.Mkfifo(dst+"/stray-fifo", 0o644))
	st := mustSync(t, src, dst, Options{})
	assertIdentical(t, src, dst)
	if st.Skipped != 2 || st.Deleted != 2 || st.FilesCopied != 1 {
		t.Errorf("stats %+v", st)
	}
	if _, err := os.Lstat(dst + "/fifo"); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("dst/fifo: %v", err)
	}
}

func TestConverges(t *testing.T) {
	src, dst := tempDirs(t)
	buildTree(t, src)
	writeFile(t, dst+"/.efsd-tmp-x", "leftover of a crash", 0o600, old)
	writeFile(t, dst+"/sub/.efsd-tmp-y", "leftover", 0o600, old)
	writeFile(t, dst+"/extra/deep/file", "extra", 0o644, old)
	writeFile(t, dst+"/a.txt", "different", 0o600, time.Now())
	writeFile(t, dst+"/big", strings.Repeat("0123456789abcdef", 200_000), 0o640, old) // already right
	writeFile(t, dst+"/sub/b.txt", "bee", 0o444, old)                                 // already right
	mkdir(t, dst+"/rel-link", 0o755)                                                  // dir where src has a symlink
	symlink(t, "elsewhere", dst+"/emptydir")                                          // symlink where src has a dir
	st := mustSync(t, src, dst, Options{})
	assertIdentical(t, src, dst)
	// big and sub/b.txt are kept.
	if st.FilesCopied != 5 {
		t.Errorf("stats %+v", st)
	}
	if st := mustSync(t, src, dst, Options{}); st.FilesCopied+st.Deleted+st.MetadataUpdated != 0 {
		t.Errorf("second pass did something: %+v", st)
	}
}

// A source file modified while it is copied keeps the metadata observed
// before reading, so the next pass copies it again; one that vanishes is
// not an error and disappears from the destination.
func TestSourceChangesDuringPass(t *testing.T) {
	src, dst := tempDirs(t)
	writeFile(t, src+"/busy", "aaaa", 0o644, old)
	writeFile(t, src+"/gone", "gone", 0o644, old)
	mustSync(t, src, dst, Options{})
	// Both are to be copied; gone vanishes before it is opened, busy
	// changes again after it is stat'ed and before it is read.
	writeFile(t, src+"/gone", "changed", 0o644, old)
	must(t, os.WriteFile(src+"/busy", []byte("AAAA"), 0))
	setMtime(t, src+"/busy", old.Add(time.Second))
	testHook = func(stage, rel string) { // runs in a worker: no t.Fatal
		switch {
		case stage == "open" && rel == "gone":
			if err := os.Remove(src + "/gone"); err != nil {
				t.Error(err)
			}
		case stage == "read" && rel == "busy":
			if err := os.WriteFile(src+"/busy", []byte("bbbbbbbb"), 0); err != nil {
				t.Error(err)
			}
			ts := []unix.Timespec{{Nsec: unix.UTIME_OMIT}, unix.NsecToTimespec(old.Add(time.Hour).UnixNano())}
			if err := unix.UtimesNanoAt(unix.AT_FDCWD, src+"/busy", ts, 0); err != nil {
				t.Error(err)
			}
		}
	}
	defer func() { testHook = nil }()
	mustSync(t, src, dst, Options{})
	if !mtimeOf(t, dst+"/busy").Equal(old.Add(time.Second)) {
		t.Errorf("busy got mtime %v, not the one observed before reading", mtimeOf(t, dst+"/busy"))
	}
	if _, err := os.Lstat(dst + "/gone"); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("vanished file still in dst: %v", err)
	}
	testHook = nil
	if st := mustSync(t, src, dst, Options{}); st.FilesCopied != 1 {
		t.Errorf("stats %+v", st)
	}
	assertIdentical(t, src, dst)
}

// Without CAP_CHOWN, ownership is left alone rather than failing the sync.
func TestChownNotPermitted(t *testing.T) {
	if os.Geteuid() == 0 {
		t.Skip("runs only without root (try: setpriv --reuid=65534 ...)")
	}
	const src = "/etc/skel" // root-owned and readable on most systems
	if _, err := os.Stat(src); err != nil {
		t.Skip(err)
	}
	dst := t.TempDir() + "/dst"
	mustSync(t, src, dst, Options{})
	st := mustSync(t, src, dst, Options{})
	if st.FilesCopied+st.MetadataUpdated+st.Deleted != 0 {
		t.Errorf("second pass did something: %+v", st)
	}
}

func TestSourceRootMissing(t *testing.T) {
	src, dst := tempDirs(t)
	_, err := Sync(context.Background(), src, dst, Options{})
	if !errors.Is(err, syscall.ENOENT) || !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("err = %v", err)
	}
	writeFile(t, src, "a file, not a directory", 0o644, old)
	if _, err := Sync(context.Background(), src, dst, Options{}); !errors.Is(err, syscall.ENOTDIR) {
		t.Fatalf("err = %v", err)
	}
}

func TestOverlappingRoots(t *testing.T) {
	src, _ := tempDirs(t)
	buildTree(t, src)
	for _, dst := range []string{src, src + "/sub/inside"} {
		if _, err := Sync(context.Background(), src, dst, Options{}); err == nil {
			t.Errorf("Sync(%s, %s) succeeded", src, dst)
		}
	}
	if _, err := Sync(context.Background(), src+"/sub", src, Options{}); err == nil {
		t.Errorf("Sync into an ancestor succeeded")
	}
	if _, err := os.Stat(src + "/a.txt"); err != nil {
		t.Errorf("source damaged: %v", err)
	}
}

func TestCancelled(t *testing.T) {
	src, dst := tempDirs(t)
	buildTree(t, src)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := Sync(ctx, src, dst, Options{}); !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v", err)
	}
	// Cancelled mid-pass (at the first deletion, which comes first in the
	// walk): no temporaries are left behind.
	for i := range 50 {
		writeFile(t, src+"/many/"+string(rune('a'+i%26))+string(rune('a'+i/26)), "x", 0o644, old)
	}
	writeFile(t, dst+"/0-extra", "x", 0o644, old)
	ctx, cancel = context.WithCancel(context.Background())
	st, err := Sync(ctx, src, dst, Options{Progress: func(st Stats) {
		if st.Deleted == 1 {
			cancel()
		}
	}})
	if !errors.Is(err, context.Canceled) || st.Deleted != 1 || st.FilesCopied != 0 {
		t.Fatalf("err = %v, stats %+v", err, st)
	}
	filepath.Walk(dst, func(p string, _ os.FileInfo, _ error) error {
		if strings.HasPrefix(filepath.Base(p), tmpPrefix) {
			t.Errorf("temporary left: %s", p)
		}
		return nil
	})
	mustSync(t, src, dst, Options{})
	assertIdentical(t, src, dst)
}

func TestWriteErrors(t *testing.T) {
	src, dst := tempDirs(t)
	buildTree(t, src)
	writeFile(t, dst, "a regular file", 0o644, old)
	_, err := Sync(context.Background(), src, dst+"/below", Options{})
	if !errors.Is(err, syscall.ENOTDIR) {
		t.Fatalf("err = %v", err)
	}
	if !strings.Contains(err.Error(), "below") {
		t.Errorf("error does not say where: %v", err)
	}
}

// TestFullAndReadOnly uses a small tmpfs to get real ENOSPC and EROFS.
func TestFullAndReadOnly(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to mount")
	}
	mnt := t.TempDir()
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", mnt).CombinedOutput(); err != nil {
		t.Skipf("cannot mount tmpfs: %v %s", err, out)
	}
	defer exec.Command("umount", mnt).Run()
	src, _ := tempDirs(t)
	buildTree(t, src) // 3.2 MB
	_, err := Sync(context.Background(), src, mnt+"/dst", Options{})
	if !errors.Is(err, syscall.ENOSPC) {
		t.Fatalf("err = %v, want ENOSPC", err)
	}
	must(t, os.Remove(src+"/big"))
	mustSync(t, src, mnt+"/dst", Options{})
	assertIdentical(t, src, mnt+"/dst")
	if out, err := exec.Command("mount", "-o", "remount,ro", mnt).CombinedOutput(); err != nil {
		t.Skipf("cannot remount: %v %s", err, out)
	}
	writeFile(t, src+"/new", "new", 0o644, old)
	if _, err := Sync(context.Background(), src, mnt+"/dst", Options{}); !errors.Is(err, syscall.EROFS) {
		t.Fatalf("err = %v, want EROFS", err)
	}
}

func must(t testing.TB, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}
