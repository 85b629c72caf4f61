// Package treesync makes one directory tree identical to another: contents,
// directories, symbolic links, hard links, modes, owners and mtimes, copying
// only what differs, and returning only once the destination is durable.
//
// Safety: every file-system call is relative to a directory descriptor that
// was opened with O_NOFOLLOW|O_DIRECTORY from its parent's descriptor, with
// single-component names read from the directory itself, so no symlink on
// either side can redirect a read or a write outside the two roots. (This is
// what os.Root guarantees too, but os.Root re-resolves a path per call and
// follows in-root symlinks; the descriptor walk is both stricter and cheaper.)
//
// Durability and atomicity: file contents are written under a temporary name
// (.efsd-tmp-<random>) in the destination directory and given their
// metadata; only once they are on disk is that name renamed over the real
// one, so a crash never leaves a partially written file under a real name,
// only temporaries, which the next Sync deletes because the source lacks
// them. Instead of fsync(2) per file (0.7 ms each on this project's ext4
// without journal, where concurrent fsyncs do not batch), finished
// temporaries are collected in batches, each made durable by one syncfs(2)
// on the destination's file system before it is renamed into place: the
// ordering "content durable, then rename" is the same as with fsync, at a
// fraction of the cost. Renames, links, deletions, new directories and
// metadata changes are made durable by a final syncfs, which also reports
// writeback errors since the destination was opened (Linux ≥ 5.8), before
// Sync returns nil; a pass with nothing to do still ends with it, because
// an earlier pass may have failed after changing things. The price is that
// syncfs also flushes whatever else is dirty on that file system.
package treesync

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sys/unix"
)

// Options tune Sync. The zero value is usable.
type Options struct {
	// Workers bounds concurrent file copies and comparisons; 0 means 4.
	Workers int
	// Record, if set, is the memory of earlier passes over the same two
	// trees (see Record): files it vouches for are skipped for one lstat
	// per side. Without it every file whose size matches is compared by
	// content. A Record must not be shared by concurrent Syncs.
	Record *Record
	// Verify compares every file whose size matches by content, whatever
	// the Record says (a scrub). The Record is still updated.
	Verify bool
	// OnDifference, if set, is called (from one goroutine at a time) with
	// the path, relative to the roots, of each file whose destination had
	// the source's size and mtime, or was vouched for by the Record, but
	// other bytes, once it has been rewritten.
	OnDifference func(rel string)
	// Progress, if set, is called after each copied, compared or deleted
	// entry, from one goroutine at a time; it must be cheap.
	Progress func(Stats)
}

// Stats counts what Sync did. Deleted counts every removed entry, including
// each one inside a removed directory. Unchanged counts entries (files,
// links, directories) that needed nothing. FilesCompared counts files
// compared by content and BytesCompared the bytes read for that, on both
// sides; Differences counts the compared files that looked unchanged (see
// Options.OnDifference) but were not.
type Stats struct {
	FilesCopied, BytesCopied, Deleted, DirsCreated, LinksCreated, SymlinksCreated, MetadataUpdated, Skipped, Unchanged int64
	FilesCompared, BytesCompared, Differences                                                                          int64
}

const (
	defaultWorkers = 4
	// defaultRacySlack: a source file whose ctime is less than this before
	// the moment it was read is not vouched for by the Record, because a
	// later write could leave the same ctime: file-system timestamps come
	// from a coarse clock (up to a jiffy, at most 10 ms, behind time.Now)
	// and some file systems store whole or even two seconds (ext4 with
	// 128-byte inodes). The next pass compares it by content instead
	// (git's "racy clean" problem). A ctime with a fraction of a second
	// comes from a file system that keeps fine timestamps: then
	// defaultRacySlackFine, ten times the coarsest jiffy, is enough.
	defaultRacySlack     = 2 * time.Second
	defaultRacySlackFine = 100 * time.Millisecond
	// A batch of temporaries is made durable and renamed into place when
	// it holds this many entries or bytes, or this many directories are
	// held open for it; these bound memory and descriptors, and how much
	// is rewritten after a crash.
	defaultBatchEntries = 4096
	defaultBatchBytes   = 256 << 20
	defaultBatchDirs    = 256
)

// Variables so that tests can exercise many small batches, and the record
// without waiting out the racy window.
var (
	racySlack           = defaultRacySlack
	racySlackFine       = defaultRacySlackFine
	batchEntries        = defaultBatchEntries
	batchBytes    int64 = defaultBatchBytes
	batchDirs           = defaultBatchDirs
)

// Sync makes dst identical to src and returns what it did. It returns nil
// only after dst is durable on disk, and then every change made to src
// before Sync was called is in dst; changes made during the call may or may
// not be (a file modified while it is copied keeps the mtime observed before
// reading, so the next pass copies it again).
//
// src must be an existing directory. dst is created if missing (its parent
// must exist). Sockets, FIFOs and devices in src are skipped and removed
// from dst. Ownership is reproduced when permitted; without CAP_CHOWN
// (EPERM) it is silently left as is and then not compared for the rest of
// the call. Errors name the entry and wrap the underlying errno.
func Sync(ctx context.Context, src, dst string, o Options) (Stats, error) {
	if o.Workers <= 0 {
		o.Workers = defaultWorkers
	}
	s := &syncer{ctx: ctx, o: o, sem: make(chan struct{}, o.Workers),
		groups: map[devIno]*linkGroup{}, claimed: map[devIno]bool{}, open: map[*dirH]bool{}, cur: &batch{}}
	root, err := s.openRoots(src, dst)
	if err != nil {
		return s.stats, err
	}
	defer unix.Close(s.srcRoot)
	defer unix.Close(s.dstRoot)
	if o.Record != nil {
		if err := o.Record.begin(s.srcID.ino, s.dstID.ino); err != nil {
			s.abort()
			return s.stats, err
		}
		s.rec = o.Record
	}

	err = s.walkDir(root)
	if err == nil {
		err = s.finishDir(root)
	}
	if err == nil {
		err = s.finish()
	}
	if err != nil {
		s.abort()
	}
	// Entries are added to the record only once their copies are durable
	// (see Record); after a failure the ones already added stay true. The
	// final syncfs of a complete pass also made a record kept on the
	// destination's file system durable.
	if s.rec != nil {
		var synced uint64
		if err == nil {
			synced = s.dstID.dev
		}
		err = errors.Join(err, s.rec.end(err == nil, synced))
	}
	return s.stats, err
}

// syncer is the state of one Sync. Apart from the fields marked otherwise it
// is owned by the walker goroutine; copy tasks only read the descriptors of
// the directories they work in and hand results back through batch.done.
type syncer struct {
	ctx context.Context
	o   Options
	rec *Record // nil: every file of matching size is compared

	srcRoot, dstRoot int
	srcID, dstID     devIno

	stats Stats

	sem     chan struct{}  // worker slots
	wg      sync.WaitGroup // running tasks
	noChown atomic.Bool    // chown was refused (EPERM)

	mu  sync.Mutex // guards err and the done lists of batches
	err error      // first error of a task
	bad atomic.Bool

	cur    *batch         // being filled
	sealed *batch         // complete, being made durable; nil if none
	open   map[*dirH]bool // dirHs with open descriptors

	groups  map[devIno]*linkGroup // source inodes with nlink > 1 seen so far
	claimed map[devIno]bool       // destination inodes kept for a link group
}

// dirH is a pair of open directories being synced. It stays open while the
// walker is inside it or a batch entry needs it (refs).
type dirH struct {
	srcFd, dstFd int
	rel          string // path below the roots, "" for the roots themselves
	src, dst     meta   // as stat'ed before listing; dst is zero if created
	created      bool
	dirty        bool // entries were added, removed or renamed in dst
	refs         int
}

func (d *dirH) path(name string) string {
	if d.rel == "" {
		return name
	}
	return d.rel + "/" + name
}

func (s *syncer) openRoots(src, dst string) (*dirH, error) {
	var err error
	if s.srcRoot, err = openAt(unix.AT_FDCWD, src, unix.O_RDONLY|unix.O_DIRECTORY, 0); err != nil {
		return nil, fmt.Errorf("open source %s: %w", src, err)
	}
	if err = unix.Mkdir(dst, 0o700); err != nil && err != unix.EEXIST {
		unix.Close(s.srcRoot)
		return nil, fmt.Errorf("create destination %s: %w", dst, err)
	}
	created := err == nil
	if s.dstRoot, err = openAt(unix.AT_FDCWD, dst, unix.O_RDONLY|unix.O_DIRECTORY, 0); err != nil {
		unix.Close(s.srcRoot)
		return nil, fmt.Errorf("open destination %s: %w", dst, err)
	}
	sm, err1 := fstat(s.srcRoot)
	dm, err2 := fstat(s.dstRoot)
	if err := errors.Join(err1, err2); err != nil {
		s.closeRoots()
		return nil, fmt.Errorf("stat roots: %w", err)
	}
	s.srcID, s.dstID = devIno{sm.dev, sm.ino}, devIno{dm.dev, dm.ino}
	if err := s.checkNesting(src, dst); err != nil {
		s.closeRoots()
		return nil, err
	}
	if created {
		s.stats.DirsCreated++
	}
	// The roots' descriptors are dup'ed so that dirH can own and close its
	// own while Sync keeps the roots for syncfs and hard links.
	d := &dirH{src: sm, dst: dm, created: created, refs: 1}
	if d.srcFd, err = unix.Dup(s.srcRoot); err == nil {
		if d.dstFd, err = unix.Dup(s.dstRoot); err != nil {
			unix.Close(d.srcFd)
		}
	}
	if err != nil {
		s.closeRoots()
		return nil, fmt.Errorf("dup: %w", err)
	}
	s.open[d] = true
	return d, nil
}

// checkNesting refuses roots that are the same directory or contain one
// another (deleting what the source lacks would then destroy the source,
// or the walk would copy its own output), by following ".." from each root
// up to "/" and comparing directory identities.
func (s *syncer) checkNesting(src, dst string) error {
	if s.srcID == s.dstID {
		return fmt.Errorf("source %s and destination %s are the same directory", src, dst)
	}
	if under, err := isUnder(s.srcRoot, s.dstID); err != nil {
		return err
	} else if under {
		return fmt.Errorf("source %s is inside destination %s", src, dst)
	}
	if under, err := isUnder(s.dstRoot, s.srcID); err != nil {
		return err
	} else if under {
		return fmt.Errorf("destination %s is inside source %s", dst, src)
	}
	return nil
}

// isUnder reports whether the directory dir has ancestor among its parents.
func isUnder(dir int, ancestor devIno) (bool, error) {
	fd, err := unix.Dup(dir)
	for err == nil {
		var parent int
		parent, err = openAt(fd, "..", unix.O_PATH|unix.O_DIRECTORY, 0)
		unix.Close(fd)
		if err != nil {
			break
		}
		fd = parent
		var m, up meta
		if m, err = fstat(fd); err != nil {
			break
		}
		if (devIno{m.dev, m.ino}) == ancestor {
			unix.Close(fd)
			return true, nil
		}
		if up, err = lstatAt(fd, ".."); err == nil && up.dev == m.dev && up.ino == m.ino {
			unix.Close(fd)
			return false, nil // reached "/"
		}
	}
	if err != nil {
		err = fmt.Errorf("check nesting: %w", err)
	}
	return false, err
}

func (s *syncer) closeRoots() {
	unix.Close(s.srcRoot)
	unix.Close(s.dstRoot)
}

// release drops a reference to d, closing it with the last one.
func (s *syncer) release(d *dirH) {
	if d.refs--; d.refs == 0 {
		unix.Close(d.srcFd)
		unix.Close(d.dstFd)
		delete(s.open, d)
	}
}

// fail records the first error of a task and stops the walk.
func (s *syncer) fail(err error) {
	s.mu.Lock()
	if s.err == nil {
		s.err = err
	}
	s.mu.Unlock()
	s.bad.Store(true)
}

// check returns why the walk must stop: a task's error or cancellation.
func (s *syncer) check() error {
	if s.bad.Load() {
		s.mu.Lock()
		defer s.mu.Unlock()
		return s.err
	}
	if err := s.ctx.Err(); err != nil {
		return fmt.Errorf("sync cancelled: %w", err)
	}
	return nil
}

func (s *syncer) progress() {
	if s.o.Progress != nil {
		s.o.Progress(s.stats)
	}
}
