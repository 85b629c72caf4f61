package replication

import (
	"bufio"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// inotifyFDs lists this process's inotify instances.
func inotifyFDs(t *testing.T) []string {
	t.Helper()
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Skipf("no /proc/self/fd: %v", err)
	}
	var fds []string
	for _, e := range ents {
		if l, err := os.Readlink(filepath.Join("/proc/self/fd", e.Name())); err == nil && l == "anon_inode:inotify" {
			fds = append(fds, e.Name())
		}
	}
	return fds
}

// kernelWatches counts the watches the kernel holds for the hub's
// instance, from /proc/self/fdinfo.
func kernelWatches(t *testing.T, h *hub) int {
	t.Helper()
	h.mu.Lock()
	fd := h.fd
	h.mu.Unlock()
	if fd < 0 {
		return 0
	}
	f, err := os.Open("/proc/self/fdinfo/" + strconv.Itoa(fd))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	n := 0
	for s := bufio.NewScanner(f); s.Scan(); {
		if strings.HasPrefix(s.Text(), "inotify wd:") {
			n++
		}
	}
	return n
}

func testHub(t *testing.T, perFS, max int) *hub {
	t.Helper()
	h := newHub(perFS, max, time.Now, slog.New(slog.DiscardHandler))
	t.Cleanup(h.close)
	return h
}

// mkTree makes root with n subdirectories d0…d(n-1).
func mkTree(t *testing.T, n int) string {
	t.Helper()
	root := t.TempDir()
	for i := range n {
		if err := os.Mkdir(filepath.Join(root, fmt.Sprintf("d%d", i)), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	return root
}

func signaled(tr *tree, within time.Duration) bool {
	select {
	case <-tr.C:
		return true
	case <-time.After(within):
		return false
	}
}

func drain(tr *tree) {
	select {
	case <-tr.C:
	default:
	}
}

// eventually polls cond until the deadline.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// More trees than the host's default instance limit (128) share one
// instance, events reach only their own tree, and closing the trees
// removes every watch from the kernel.
func TestHubTreesShareOneInstance(t *testing.T) {
	before := len(inotifyFDs(t))
	h := testHub(t, 100, 10000)
	const n = 200
	trees := make([]*tree, n)
	for i := range trees {
		tr, err := h.watch(mkTree(t, 1), slog.New(slog.DiscardHandler))
		if err != nil {
			t.Fatal(err)
		}
		trees[i] = tr
	}
	if got := len(inotifyFDs(t)) - before; got != 1 {
		t.Fatalf("%d inotify instances opened for %d trees, want 1", got, n)
	}
	s := h.stats()
	if s.Instances != 1 || s.WatchedFileSystems != n || s.WatchedDirs != 2*n || s.WatchLimitedFileSystems != 0 {
		t.Fatalf("stats %+v", s)
	}
	if k := kernelWatches(t, h); k != 2*n {
		t.Fatalf("kernel holds %d watches, want %d", k, 2*n)
	}
	os.WriteFile(filepath.Join(trees[137].root, "d0", "f"), []byte("x"), 0o644)
	if !signaled(trees[137], 5*time.Second) {
		t.Fatal("a write did not wake its tree")
	}
	// The reader signals every owner of an event's watch while holding
	// h.mu: once it is free, the event has been dispatched entirely.
	h.mu.Lock()
	h.mu.Unlock()
	for i, tr := range trees {
		if i != 137 && len(tr.C) > 0 {
			t.Fatalf("a write in tree 137 woke tree %d", i)
		}
	}
	for _, tr := range trees {
		tr.Close()
	}
	if s := h.stats(); s.WatchedDirs != 0 || s.WatchedFileSystems != 0 {
		t.Fatalf("after closing every tree: %+v", s)
	}
	if k := kernelWatches(t, h); k != 0 {
		t.Fatalf("kernel still holds %d watches after every tree closed", k)
	}
}

// A tree with more directories than the per-file-system cap is limited,
// keeps exactly the cap, and does not limit other trees.
func TestHubCapPerFileSystem(t *testing.T) {
	h := testHub(t, 3, 10000)
	big, err := h.watch(mkTree(t, 5), slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	small, err := h.watch(mkTree(t, 2), slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	if !big.Limited() || small.Limited() {
		t.Fatalf("limited: big %v small %v", big.Limited(), small.Limited())
	}
	s := h.stats()
	if s.WatchedDirs != 6 || s.WatchLimitedFileSystems != 1 || s.WatchLimitHits != 1 {
		t.Fatalf("stats %+v", s)
	}
	// A directory appearing in a limited tree is not watched.
	os.Mkdir(filepath.Join(big.root, "later"), 0o755)
	if !signaled(big, 5*time.Second) {
		t.Fatal("the limited tree's watched root did not wake it")
	}
	// A later event is read after the reader finished with the first one
	// (including any watches it added).
	os.WriteFile(filepath.Join(big.root, "f"), []byte("x"), 0o644)
	if !signaled(big, 5*time.Second) {
		t.Fatal("a write in the limited tree's root did not wake it")
	}
	if s := h.stats(); s.WatchedDirs != 6 || s.WatchLimitHits != 1 {
		t.Fatalf("after a directory appeared in a limited tree: %+v", s)
	}
	if k := kernelWatches(t, h); k != 6 {
		t.Fatalf("kernel holds %d watches, want 6", k)
	}
}

// The process-wide cap holds across trees.
func TestHubProcessCap(t *testing.T) {
	h := testHub(t, 100, 4)
	a, err := h.watch(mkTree(t, 2), slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	b, err := h.watch(mkTree(t, 2), slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	if a.Limited() || !b.Limited() {
		t.Fatalf("limited: a %v b %v", a.Limited(), b.Limited())
	}
	if s := h.stats(); s.WatchedDirs != 4 || kernelWatches(t, h) != 4 {
		t.Fatalf("stats %+v, kernel %d", s, kernelWatches(t, h))
	}
	a.Close()
	if s := h.stats(); s.WatchedDirs != 1 || kernelWatches(t, h) != 1 {
		t.Fatalf("after closing a: stats %+v, kernel %d", s, kernelWatches(t, h))
	}
}

// Directories created later are watched; deleted or moved-away ones are
// released.
func TestHubFollowsDirectories(t *testing.T) {
	h := testHub(t, 100, 10000)
	root := mkTree(t, 0)
	tr, err := h.watch(root, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	watched := func(n int) func() bool {
		return func() bool { return h.stats().WatchedDirs == n && kernelWatches(t, h) == n }
	}
	os.MkdirAll(filepath.Join(root, "new", "deeper"), 0o755)
	eventually(t, "new directories watched", watched(3))
	drain(tr)
	os.WriteFile(filepath.Join(root, "new", "deeper", "f"), []byte("x"), 0o644)
	if !signaled(tr, 5*time.Second) {
		t.Fatal("a write in a new directory did not wake the tree")
	}
	// Moved within the tree: still watched by the same kernel watches
	// (events of writes right after the move are not lost to a remove and
	// add), under its new name.
	paths := func() map[int32]string {
		h.mu.Lock()
		defer h.mu.Unlock()
		m := map[int32]string{}
		for wd := range tr.wds {
			m[wd] = h.wds[wd].owners[tr]
		}
		return m
	}
	before := paths()
	os.Rename(filepath.Join(root, "new"), filepath.Join(root, "renamed"))
	eventually(t, "renamed directories watched under their new paths", func() bool {
		return slices.Contains(slices.Collect(maps.Values(paths())), filepath.Join(root, "renamed", "deeper"))
	})
	after := paths()
	if !slices.Equal(slices.Sorted(maps.Keys(before)), slices.Sorted(maps.Keys(after))) || kernelWatches(t, h) != 3 {
		t.Fatalf("watches before the move %v, after %v: removed and added again", before, after)
	}
	drain(tr)
	os.WriteFile(filepath.Join(root, "renamed", "deeper", "g"), []byte("x"), 0o644)
	if !signaled(tr, 5*time.Second) {
		t.Fatal("a write in a renamed directory did not wake the tree")
	}
	os.Mkdir(filepath.Join(root, "renamed", "deeper", "more"), 0o755)
	eventually(t, "a directory under a renamed one watched", watched(4))
	// Moved out of the tree: released.
	away := t.TempDir()
	os.Rename(filepath.Join(root, "renamed"), filepath.Join(away, "renamed"))
	eventually(t, "moved-away directories released", watched(1))
	// Deleted: released.
	os.Mkdir(filepath.Join(root, "gone"), 0o755)
	eventually(t, "directory watched", watched(2))
	os.Remove(filepath.Join(root, "gone"))
	eventually(t, "deleted directory released", watched(1))
	tr.Close()
	eventually(t, "every watch removed", watched(0))
}

// When the kernel's event queue overflows every tree wakes, and a resync
// watches the directories whose creation was lost and releases those
// whose deletion was.
func TestHubQueueOverflow(t *testing.T) {
	b, err := os.ReadFile("/proc/sys/fs/inotify/max_queued_events")
	if err != nil {
		t.Skip(err)
	}
	queue, _ := strconv.Atoi(strings.TrimSpace(string(b)))
	if queue <= 0 || queue > 100000 {
		t.Skipf("max_queued_events %d: too many events to overflow in a test", queue)
	}
	h := testHub(t, 100, 10000)
	busy, err := h.watch(mkTree(t, 1), slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	idle, err := h.watch(mkTree(t, 0), slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	fa, err := os.Create(filepath.Join(busy.root, "a"))
	if err != nil {
		t.Fatal(err)
	}
	defer fa.Close()
	fb, err := os.Create(filepath.Join(busy.root, "b"))
	if err != nil {
		t.Fatal(err)
	}
	defer fb.Close()
	eventually(t, "creations read", func() bool { return len(busy.C) == 1 })
	drain(busy)
	drain(idle)

	h.mu.Lock()                   // the reader stops dispatching: the kernel's queue fills
	for i := range queue + 5000 { // the reader may hold one buffer of events already
		f := fa
		if i%2 == 1 {
			f = fb // alternate files: the kernel merges only identical events in a row
		}
		f.Write([]byte{'x'})
	}
	os.Mkdir(filepath.Join(busy.root, "lost"), 0o755) // its IN_CREATE is dropped
	os.Remove(filepath.Join(busy.root, "d0"))         // so is its IN_IGNORED
	h.mu.Unlock()

	eventually(t, "overflow seen", func() bool { return h.stats().QueueOverflows >= 1 })
	if !signaled(idle, 5*time.Second) {
		t.Fatal("an overflow did not wake an idle tree")
	}
	busy.Resync()
	if s, k := h.stats(), kernelWatches(t, h); s.WatchedDirs != 3 || k != 3 {
		t.Fatalf("after resync: %+v, kernel %d", s, k) // root, lost, the idle root
	}
	drain(busy)
	os.WriteFile(filepath.Join(busy.root, "lost", "f"), []byte("x"), 0o644)
	if !signaled(busy, 5*time.Second) {
		t.Fatal("a directory created during the overflow is not watched after resync")
	}
}

// When no instance can be opened, watch fails (the worker rescans) and
// says so in Stats; it works again once instances are available.
func TestHubInitFailure(t *testing.T) {
	h := testHub(t, 100, 10000)
	h.init = func() (int, error) { return -1, unix.EMFILE }
	if _, err := h.watch(mkTree(t, 0), slog.New(slog.DiscardHandler)); !errors.Is(err, unix.EMFILE) {
		t.Fatalf("watch without an instance: %v", err)
	}
	if s := h.stats(); s.Instances != 0 || s.InotifyInitFailures != 1 {
		t.Fatalf("stats %+v", s)
	}
	h.init = newHub(0, 0, nil, nil).init
	tr, err := h.watch(mkTree(t, 0), slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	if s := h.stats(); s.Instances != 1 || s.WatchedDirs != 1 {
		t.Fatalf("stats %+v", s)
	}
	tr.Close()
}
