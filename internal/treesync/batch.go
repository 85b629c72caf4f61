package treesync

import (
	"errors"
	"fmt"
	"slices"
	"sync"

	"golang.org/x/sys/unix"
)

// A batch collects the temporaries written by tasks until one syncfs makes
// them all durable; then they are renamed into place, the hard links to
// them made and the directories they were in finished. Batches go through
// a two-stage pipeline: while a sealed batch waits for its last copies and
// is synced and renamed in the background, tasks fill the next one, so
// copying waits neither for the disk nor for the slowest copy of a batch,
// except when both stages are full.
type batch struct {
	wg     sync.WaitGroup // the batch's running tasks
	done   []result       // finished tasks, appended under syncer.mu
	links  []deferredLink
	dirs   []*dirH // directories to finish after the batch's renames
	tasks  int
	bytes  int64
	synced chan error // commit's result, once sealed
}

func (b *batch) full(openDirs int) bool {
	return b.tasks+len(b.links)+len(b.dirs) >= batchEntries || b.bytes >= batchBytes || openDirs >= batchDirs
}

// progressBatches is called by the walker after each task it submits and
// each directory it leaves: it applies the sealed batch if its commit is
// done, and seals the current one when it has reached its bounds.
func (s *syncer) progressBatches() error {
	if err := s.applySealed(false); err != nil {
		return err
	}
	if !s.cur.full(len(s.open)) {
		return nil
	}
	if err := s.applySealed(true); err != nil {
		return err
	}
	return s.seal()
}

// seal hands the current batch to a background commit and starts a new one.
func (s *syncer) seal() error {
	if err := s.check(); err != nil {
		return err
	}
	b := s.cur
	s.cur = &batch{}
	s.sealed = b
	b.synced = make(chan error, 1)
	go func() { b.synced <- s.commit(b) }()
	return nil
}

// commit waits for a sealed batch's tasks, makes their temporaries durable
// and renames them into place. It runs in the background and touches only
// the results' names; the walker does the bookkeeping in applySealed.
func (s *syncer) commit(b *batch) error {
	b.wg.Wait() // b.done is complete and no longer written
	if s.bad.Load() {
		return errFailed // the walker reports the task's error
	}
	if !slices.ContainsFunc(b.done, func(r result) bool { return r.tmp != "" }) {
		return nil // nothing to make durable
	}
	if err := syncfs(s.dstRoot); err != nil {
		return err
	}
	for i := range b.done {
		r := &b.done[i]
		if r.tmp == "" {
			continue
		}
		if err := unix.Renameat(r.d.dstFd, r.tmp, r.d.dstFd, r.name); err != nil {
			return errAt("rename into place", r.d.path(r.name), err)
		}
		r.tmp = ""
	}
	return nil
}

var errFailed = errors.New("a task failed")

// applySealed does the walker's part of the sealed batch once its commit
// has returned; without wait, only if it already has.
func (s *syncer) applySealed(wait bool) error {
	b := s.sealed
	if b == nil {
		return nil
	}
	var err error
	if wait {
		err = <-b.synced
	} else {
		select {
		case err = <-b.synced:
		default:
			return nil
		}
	}
	b.synced = nil
	if err == errFailed {
		err = s.check()
	}
	if err != nil {
		return err
	}
	for i := range b.done {
		if err := s.apply(&b.done[i]); err != nil {
			return err
		}
	}
	for len(b.links) > 0 {
		l := b.links[0]
		b.links = b.links[1:]
		err := s.link(l.d, l.name, l.g)
		s.release(l.d)
		if err != nil {
			return err
		}
	}
	for len(b.dirs) > 0 {
		d := b.dirs[0]
		b.dirs = b.dirs[1:]
		if err := s.finishMeta(d); err != nil {
			return err
		}
		s.release(d)
	}
	s.sealed = nil
	if s.rec != nil {
		// The batch's entries go to the record's file now (made durable at
		// the end of the pass), so that a killed process keeps them.
		s.rec.flush()
	}
	return nil
}

// finish flushes both batches and ends with the syncfs that makes
// everything else done in the pass durable too: renames, links, deletions,
// new directories and metadata.
func (s *syncer) finish() error {
	if err := s.applySealed(true); err != nil {
		return err
	}
	if err := s.seal(); err != nil {
		return err
	}
	if err := s.applySealed(true); err != nil {
		return err
	}
	return syncfs(s.dstRoot)
}

func syncfs(fd int) error {
	if err := ignoringEINTR(func() error { return unix.Syncfs(fd) }); err != nil {
		return fmt.Errorf("syncfs destination: %w", err)
	}
	return nil
}

// abort cleans up after an error: waits for tasks and a running commit,
// removes temporaries that were never renamed and closes every directory.
func (s *syncer) abort() {
	s.wg.Wait()
	for _, b := range []*batch{s.sealed, s.cur} {
		if b == nil {
			continue
		}
		if b.synced != nil {
			<-b.synced
		}
		for _, r := range b.done {
			if r.tmp != "" {
				unix.Unlinkat(r.d.dstFd, r.tmp, 0)
			}
		}
	}
	for d := range s.open {
		unix.Close(d.srcFd)
		unix.Close(d.dstFd)
	}
}
