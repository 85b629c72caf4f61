package replication

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// watchMask is every event that means the tree changed.
const watchMask = unix.IN_MODIFY | unix.IN_ATTRIB | unix.IN_CLOSE_WRITE | unix.IN_CREATE |
	unix.IN_DELETE | unix.IN_MOVED_FROM | unix.IN_MOVED_TO | unix.IN_DELETE_SELF | unix.IN_MOVE_SELF

// DefaultMaxWatchesPerFileSystem is how many directories of one source file
// system are watched at most unless configured otherwise.
const DefaultMaxWatchesPerFileSystem = 8192

// hostWatchesFile holds the kernel's per-user watch limit.
const hostWatchesFile = "/proc/sys/fs/inotify/max_user_watches"

// defaultWatchBudget returns the process-wide watch cap: half of the
// host's per-user limit, so that the other processes of efsd's user keep
// the other half. When the limit cannot be read, half of the kernel's
// historical default (8192).
func defaultWatchBudget() int {
	if b, err := os.ReadFile(hostWatchesFile); err == nil {
		if n, err := strconv.Atoi(strings.TrimSpace(string(b))); err == nil && n >= 2 {
			return n / 2
		}
	}
	return 4096
}

// hub is the process's one inotify instance, shared by every replication
// worker. The kernel gives each user few instances
// (fs.inotify.max_user_instances, 128 by default): one per configuration
// would let tenants starve every other process of the host. Each worker
// subscribes a tree (its source directory); the hub adds one watch per
// directory, within a cap per file system and one for the process, and
// dispatches events by watch descriptor to the trees that own it. A tree
// that cannot be watched whole is marked limited, once, and relies on its
// worker's periodic rescan for the directories left unwatched.
type hub struct {
	perFS int // watches per tree at most
	max   int // watches of the process at most
	log   *slog.Logger
	now   func() time.Time
	init  func() (int, error) // creates the instance; tests replace it

	mu     sync.Mutex
	fd     int      // the instance, -1 while none is open
	f      *os.File // fd, read through the runtime's poller
	done   chan struct{}
	closed bool // the Manager stopped: no instance opens again
	broken bool // reading events failed: no new watches
	wds    map[int32]*watch
	// ignored counts IN_IGNORED events still due for watches the hub
	// removed itself, so that one arriving late is not taken for the
	// removal of a newer watch that got the same descriptor. An entry
	// whose event was lost in a queue overflow stays (a few bytes); it
	// could matter only once the kernel's cyclic numbering wraps.
	ignored map[int32]int
	trees   map[*tree]struct{}
	total   int // len(wds): watches held in the kernel

	initFailing     bool // the last instance creation failed (logged once)
	initFailures    uint64
	limitHits       uint64
	overflows       uint64
	lastOverflowLog time.Time
}

// watch is one kernel watch: a directory, possibly in several trees.
type watch struct {
	owners map[*tree]string // tree → the directory's path in it
}

// tree is one worker's subscription: every directory under root. Every
// event under it is collapsed into one signal on C, so a burst of writes
// wakes the worker once.
type tree struct {
	h    *hub
	root string
	log  *slog.Logger
	C    chan struct{} // capacity 1

	// guarded by h.mu
	wds     map[int32]struct{}
	limited bool // some directories are not watched
	resync  bool // events were lost: walk the tree again
	seen    map[int32]bool
	closed  bool
	// writing holds the files being written: modified (IN_MODIFY) and
	// not closed since (IN_CLOSE_WRITE), with when they were last
	// modified. At most maxWriting; one beyond is not tracked.
	writing map[fileKey]time.Time
}

// fileKey names a file by its directory's watch and its name there.
type fileKey struct {
	wd   int32
	name string
}

// maxWriting bounds a tree's files tracked as being written.
const maxWriting = 1024

func newHub(perFS, max int, now func() time.Time, log *slog.Logger) *hub {
	return &hub{
		perFS: perFS, max: max, now: now, log: log,
		init:    func() (int, error) { return unix.InotifyInit1(unix.IN_CLOEXEC | unix.IN_NONBLOCK) },
		fd:      -1,
		wds:     map[int32]*watch{},
		ignored: map[int32]int{},
		trees:   map[*tree]struct{}{},
	}
}

// errNoInotify is returned while the hub cannot watch.
var errNoInotify = errors.New("inotify is not available")

// open creates the instance if there is none. A failure (the user's
// instances exhausted by other processes, say) is logged once until an
// instance opens again; replication then works through rescans.
func (h *hub) open() error {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.closed || h.broken {
		return errNoInotify
	}
	if h.fd >= 0 {
		return nil
	}
	fd, err := h.init()
	if err != nil {
		h.initFailures++
		if !h.initFailing {
			h.initFailing = true
			h.log.Warn("inotify unavailable; replication relies on periodic rescans (see fs.inotify.max_user_instances)", "err", err)
		}
		return fmt.Errorf("inotify init: %w", err)
	}
	if h.initFailing {
		h.initFailing = false
		h.log.Info("inotify available again")
	}
	h.fd = fd
	h.f = os.NewFile(uintptr(fd), "inotify") // non-blocking: reads park in the runtime poller, Close wakes them
	h.done = make(chan struct{})
	go h.read(h.f, h.done)
	return nil
}

// close removes every watch and closes the instance.
func (h *hub) close() {
	h.mu.Lock()
	if h.closed {
		h.mu.Unlock()
		return
	}
	h.closed = true
	f, done := h.f, h.done
	h.fd = -1 // no syscall uses the descriptor from now on: it may be reused once closed
	for t := range h.trees {
		t.closed = true
		clear(t.wds)
	}
	clear(h.trees)
	clear(h.wds)
	h.total = 0
	h.mu.Unlock()
	if f != nil {
		f.Close() // the kernel drops the instance's watches
		<-done
	}
}

// watch subscribes the tree under root. Its directories are watched as
// far as the caps allow; it fails when the instance cannot be opened or
// root cannot be watched.
func (h *hub) watch(root string, log *slog.Logger) (*tree, error) {
	if err := h.open(); err != nil {
		return nil, err
	}
	t := &tree{h: h, root: root, log: log, C: make(chan struct{}, 1), wds: map[int32]struct{}{},
		writing: map[fileKey]time.Time{}}
	h.mu.Lock()
	if h.closed || h.broken {
		h.mu.Unlock()
		return nil, errNoInotify
	}
	h.trees[t] = struct{}{}
	h.mu.Unlock()
	if err := h.addTree(t, root); err != nil {
		t.Close()
		return nil, err
	}
	return t, nil
}

// addTree watches dir and every directory below it, until the tree is
// limited.
func (h *hub) addTree(t *tree, dir string) error {
	return filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			if path == dir {
				return err
			}
			return nil // vanished meanwhile
		}
		if !d.IsDir() {
			return nil
		}
		ok, err := h.add(t, path)
		if err != nil && path == dir {
			return fmt.Errorf("watch %s: %w", path, err)
		}
		if !ok {
			return filepath.SkipAll
		}
		return nil
	})
}

// add watches one directory of t. It reports false when t takes no more
// watches (closed or limited).
func (h *hub) add(t *tree, path string) (bool, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if t.closed || t.limited || h.fd < 0 {
		return false, nil
	}
	wd, err := unix.InotifyAddWatch(h.fd, path, watchMask|unix.IN_ONLYDIR|unix.IN_DONT_FOLLOW)
	if errors.Is(err, unix.ENOSPC) || errors.Is(err, unix.ENOMEM) {
		h.limit(t, "host", "fs.inotify.max_user_watches", err)
		return false, nil
	}
	if err != nil {
		return true, err // not a directory any more, vanished, not readable: skip it
	}
	id := int32(wd)
	w := h.wds[id]
	if _, mine := t.wds[id]; !mine {
		// Caps are checked after the kernel answered, since a directory
		// already watched (by this tree or another) costs nothing.
		var over string
		var max int
		switch {
		case len(t.wds) >= h.perFS:
			over, max = "file system", h.perFS
		case w == nil && h.total >= h.max:
			over, max = "process", h.max
		}
		if over != "" {
			if w == nil {
				h.rmWatch(id)
			}
			h.limit(t, over, strconv.Itoa(max), nil)
			return false, nil
		}
	}
	if w == nil {
		w = &watch{owners: map[*tree]string{}}
		h.wds[id] = w
		h.total++
	}
	w.owners[t] = path
	t.wds[id] = struct{}{}
	if t.seen != nil {
		t.seen[id] = true
	}
	return true, nil
}

// limit marks t limited and says so once. Called with h.mu held.
func (h *hub) limit(t *tree, which, max string, err error) {
	t.limited = true
	h.limitHits++
	args := []any{"watchedDirs", len(t.wds), "limit", which, "max", max}
	if err != nil {
		args = append(args, "err", err)
	}
	t.log.Warn("inotify watch limit reached; unwatched directories are replicated by periodic rescans", args...)
}

// rmWatch removes a watch from the kernel. Called with h.mu held.
func (h *hub) rmWatch(wd int32) {
	if h.fd < 0 {
		return
	}
	// On success the kernel queues IN_IGNORED for wd; on failure the watch
	// was already gone and its IN_IGNORED was queued before.
	if _, err := unix.InotifyRmWatch(h.fd, uint32(wd)); err == nil {
		h.ignored[wd]++
	}
}

// release drops t's claim on wd and removes the watch when no tree holds
// it any more. Called with h.mu held.
func (h *hub) release(t *tree, wd int32) {
	delete(t.wds, wd)
	w := h.wds[wd]
	if w == nil {
		return
	}
	delete(w.owners, t)
	if len(w.owners) > 0 {
		return
	}
	delete(h.wds, wd)
	h.total--
	h.rmWatch(wd)
}

// forget releases t's watches on dir and below (a directory moved away:
// if it moved within the tree, its new name is watched again). Called
// with h.mu held.
func (h *hub) forget(t *tree, dir string) {
	for wd := range t.wds {
		if w := h.wds[wd]; w != nil {
			if p := w.owners[t]; p == dir || strings.HasPrefix(p, dir+"/") {
				h.release(t, wd)
			}
		}
	}
}

// repath gives t's watches on dir and below their paths under to (dir
// moved within the tree). Called with h.mu held.
func (h *hub) repath(t *tree, dir, to string) {
	for wd := range t.wds {
		if w := h.wds[wd]; w != nil {
			if p := w.owners[t]; p == dir {
				w.owners[t] = to
			} else if rest, ok := strings.CutPrefix(p, dir+"/"); ok {
				w.owners[t] = to + "/" + rest
			}
		}
	}
}

func (h *hub) read(f *os.File, done chan struct{}) {
	defer close(done)
	// Room for many events; one event is at most 16 bytes + NAME_MAX + 1.
	buf := make([]byte, 64*1024)
	for {
		n, err := f.Read(buf)
		if err != nil {
			h.mu.Lock()
			if !h.closed {
				h.fail(err)
			}
			h.mu.Unlock()
			return
		}
		h.dispatch(buf[:n])
	}
}

// fail gives up on inotify after the instance could not be read: every
// tree becomes limited (rescans) and no new tree is watched. Called with
// h.mu held.
func (h *hub) fail(err error) {
	h.log.Error("read inotify events; replication relies on periodic rescans", "err", err)
	h.broken = true
	for t := range h.trees {
		if !t.limited {
			t.limited = true
			h.limitHits++
		}
		t.signal()
	}
}

// newDir is a directory that appeared in a tree.
type newDir struct {
	t    *tree
	path string
}

// dispatch wakes the trees owning each event's watch and follows their
// directories appearing and vanishing.
func (h *hub) dispatch(buf []byte) {
	var added []newDir
	// A directory moved within a tree keeps its watches (the kernel's
	// follow the inode), under its new path: removing them at
	// IN_MOVED_FROM and watching again at IN_MOVED_TO would lose the
	// events of writes made in between. A move's two events share a
	// cookie and come together; one left without its pair moved the
	// directory out of the tree.
	type moved struct {
		t    *tree
		path string
	}
	from := map[uint32][]moved{}
	h.mu.Lock()
	now := h.now()
	for off := 0; off+unix.SizeofInotifyEvent <= len(buf); {
		ev := (*unix.InotifyEvent)(unsafe.Pointer(&buf[off]))
		end := off + unix.SizeofInotifyEvent + int(ev.Len)
		if end > len(buf) {
			break
		}
		name := buf[off+unix.SizeofInotifyEvent : end]
		if i := bytes.IndexByte(name, 0); i >= 0 {
			name = name[:i]
		}
		off = end
		switch {
		case ev.Mask&unix.IN_Q_OVERFLOW != 0:
			h.overflow()
			continue
		case ev.Mask&unix.IN_IGNORED != 0:
			h.dropped(ev.Wd)
			continue
		}
		w := h.wds[ev.Wd]
		if w == nil {
			continue // a watch removed since the event was queued
		}
		isDir := ev.Mask&unix.IN_ISDIR != 0 && len(name) > 0
		for t, dir := range w.owners {
			t.signal()
			if !isDir {
				if len(name) > 0 {
					t.wrote(fileKey{ev.Wd, string(name)}, ev.Mask, now)
				}
				continue
			}
			p := filepath.Join(dir, string(name))
			if ev.Mask&unix.IN_MOVED_FROM != 0 {
				from[ev.Cookie] = append(from[ev.Cookie], moved{t, p})
			}
			if ev.Mask&unix.IN_MOVED_TO != 0 {
				if i := slices.IndexFunc(from[ev.Cookie], func(m moved) bool { return m.t == t }); i >= 0 {
					h.repath(t, from[ev.Cookie][i].path, p)
					from[ev.Cookie] = slices.Delete(from[ev.Cookie], i, i+1)
				}
			}
			if ev.Mask&(unix.IN_CREATE|unix.IN_MOVED_TO) != 0 {
				added = append(added, newDir{t, p}) // and what appeared below it meanwhile
			}
		}
	}
	for _, ms := range from {
		for _, m := range ms {
			h.forget(m.t, m.path)
		}
	}
	h.mu.Unlock()
	for _, d := range added {
		h.addTree(d.t, d.path) // a directory gone meanwhile needs no watch
	}
}

// dropped handles IN_IGNORED: the kernel removed wd (its directory was
// deleted, or the hub removed it). Called with h.mu held.
func (h *hub) dropped(wd int32) {
	if n := h.ignored[wd]; n > 0 {
		if n == 1 {
			delete(h.ignored, wd)
		} else {
			h.ignored[wd] = n - 1
		}
		return
	}
	w := h.wds[wd]
	if w == nil {
		return
	}
	delete(h.wds, wd)
	h.total--
	for t := range w.owners {
		delete(t.wds, wd)
		t.signal()
	}
}

// overflow handles IN_Q_OVERFLOW: events were lost, among them perhaps
// new directories. Every tree wakes for a pass and walks itself again.
// Called with h.mu held.
func (h *hub) overflow() {
	h.overflows++
	for t := range h.trees {
		t.resync = true
		t.signal()
	}
	if now := h.now(); now.Sub(h.lastOverflowLog) >= time.Minute {
		h.lastOverflowLog = now
		h.log.Warn("inotify event queue overflowed; every replication rescans (see fs.inotify.max_queued_events)",
			"overflows", h.overflows)
	}
}

func (t *tree) signal() {
	select {
	case t.C <- struct{}{}:
	default:
	}
}

// wrote tracks a file's writer from its events. Called with h.mu held.
func (t *tree) wrote(k fileKey, mask uint32, now time.Time) {
	switch {
	case mask&(unix.IN_CLOSE_WRITE|unix.IN_DELETE|unix.IN_MOVED_FROM) != 0:
		delete(t.writing, k)
	case mask&unix.IN_MODIFY != 0:
		if _, ok := t.writing[k]; ok || len(t.writing) < maxWriting {
			t.writing[k] = now
		}
	}
}

// Writing says whether a file of the tree is being written: modified
// within quiet and not closed since. A file quiet for longer is forgotten
// (a writer that pauses, or one whose close went unseen).
func (t *tree) Writing(quiet time.Duration) bool {
	h := t.h
	h.mu.Lock()
	defer h.mu.Unlock()
	now, busy := h.now(), false
	for k, at := range t.writing {
		if now.Sub(at) >= quiet {
			delete(t.writing, k)
		} else {
			busy = true
		}
	}
	return busy
}

// Limited reports whether some directories of the tree are not watched.
func (t *tree) Limited() bool {
	t.h.mu.Lock()
	defer t.h.mu.Unlock()
	return t.limited
}

// Resync walks the tree again after events were lost, watching the
// directories that appeared and releasing those that are gone. The worker
// calls it before each pass; it does nothing unless needed.
func (t *tree) Resync() {
	h := t.h
	h.mu.Lock()
	if !t.resync || t.closed {
		h.mu.Unlock()
		return
	}
	t.resync = false
	t.seen = map[int32]bool{} // add also records the reader's additions meanwhile
	h.mu.Unlock()
	err := h.addTree(t, t.root)
	h.mu.Lock()
	defer h.mu.Unlock()
	seen := t.seen
	t.seen = nil
	if err != nil || t.limited || t.closed {
		return // not a full walk: keep what is watched
	}
	for wd := range t.wds {
		if !seen[wd] {
			h.release(t, wd)
		}
	}
}

// Close removes the tree's watches (those no other tree holds).
func (t *tree) Close() {
	h := t.h
	h.mu.Lock()
	defer h.mu.Unlock()
	if t.closed {
		return
	}
	t.closed = true
	for wd := range t.wds {
		h.release(t, wd)
	}
	delete(h.trees, t)
}

// stats reports the hub's state.
func (h *hub) stats() Stats {
	h.mu.Lock()
	defer h.mu.Unlock()
	s := Stats{
		WatchedFileSystems: len(h.trees), WatchedDirs: h.total,
		WatchLimitHits: h.limitHits, QueueOverflows: h.overflows, InotifyInitFailures: h.initFailures,
		MaxWatches: h.max, MaxWatchesPerFileSystem: h.perFS,
	}
	if h.fd >= 0 {
		s.Instances = 1
	}
	for t := range h.trees {
		if t.limited {
			s.WatchLimitedFileSystems++
		}
	}
	return s
}
