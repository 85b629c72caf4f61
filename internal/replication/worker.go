package replication

import (
	"context"
	"errors"
	"os"
	"time"

	"github.com/efsd/efsd/internal/efs"
	"github.com/efsd/efsd/internal/treesync"
)

// worker replicates one configuration: it waits for the destination to be
// available, then makes passes until stopped.
type worker struct {
	m      *Manager
	rep    *efs.Replication
	src    string
	dst    string
	notify chan struct{} // capacity 1
	cancel context.CancelFunc
	done   chan struct{}

	// what was last recorded, to write only changes
	status, message string
}

func newWorker(m *Manager, r *efs.Replication, cancel context.CancelFunc) *worker {
	return &worker{
		m:       m,
		cancel:  cancel,
		rep:     r,
		src:     m.paths.Path(r.Source),
		dst:     m.paths.Path(r.Dest),
		notify:  make(chan struct{}, 1),
		done:    make(chan struct{}),
		status:  r.Status,
		message: r.StatusMessage,
	}
}

func (w *worker) wake() {
	select {
	case w.notify <- struct{}{}:
	default:
	}
}

func (w *worker) stop() {
	w.cancel()
	<-w.done
}

// run replicates until ctx (cancelled by stop) ends.
func (w *worker) run(ctx context.Context) {
	defer close(w.done)
	defer w.cancel()
	log := w.m.log.With("replication", w.rep.ID, "source", w.rep.Source.String(), "destination", w.rep.Dest.String())

	if !w.waitForDestination(ctx) {
		return
	}
	if err := w.record(ctx, efs.RepEnabled, "", time.Time{}); err != nil {
		return
	}
	var watch *tree
	defer func() {
		if watch != nil {
			watch.Close()
		}
	}()
	lastStart := w.rep.LastReplicatedAt
	failures := 0
	for {
		if watch == nil && w.m.hub != nil {
			var err error
			if watch, err = w.m.hub.watch(w.src, log); err != nil {
				log.Debug("watch source", "err", err)
				watch = nil
			}
		}
		if watch != nil {
			watch.Resync() // after lost events; before the pass, so that it misses nothing
		}
		start := w.m.opts.Now()
		// Files modified near the previous pass's start may hide a change
		// behind an unchanged size and mtime; treesync compares their
		// content (with its own slack for coarse clocks).
		stats, err := w.pass(ctx, lastStart)
		if ctx.Err() != nil {
			return
		}
		var wait time.Duration
		if err != nil {
			status, msg := classify(err, w.src, w.dst)
			failures++
			wait = min(time.Duration(1<<min(failures-1, 16))*100*time.Millisecond, w.m.opts.MaxBackoff)
			if status != w.status || msg != w.message {
				log.Warn("replication pass failed", "status", status, "err", err, "retry_in", wait)
			}
			if w.record(ctx, status, msg, time.Time{}) != nil {
				return
			}
			if watch != nil && status == efs.RepError {
				watch.Close() // the source may be gone; watch again once it is back
				watch = nil
			}
		} else {
			if failures > 0 {
				log.Info("replication recovered")
			}
			failures = 0
			if w.record(ctx, efs.RepEnabled, "", start) != nil {
				return
			}
			lastStart = start
			log.Debug("replication pass", "copied", stats.FilesCopied, "bytes", stats.BytesCopied, "deleted", stats.Deleted)
			wait = w.m.opts.RescanInterval
		}
		if !w.sleep(ctx, watch, wait, err == nil) {
			return
		}
	}
}

// sleep waits for the next pass: a change notification (followed by a
// short settle delay, to take a burst of writes in one pass), or the
// timeout. After a failure only the timeout counts (backoff).
func (w *worker) sleep(ctx context.Context, watch *tree, timeout time.Duration, wakeOnChange bool) bool {
	var changes <-chan struct{}
	if watch != nil && wakeOnChange {
		changes = watch.C
	}
	notify := w.notify
	if !wakeOnChange {
		notify = nil
	}
	t := time.NewTimer(timeout)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	case <-changes:
	case <-notify:
	}
	settle := time.NewTimer(w.m.opts.SettleDelay)
	defer settle.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-settle.C:
		return true
	}
}

// waitForDestination holds the configuration at ENABLING until its
// destination file system is available (a new destination is being
// created).
func (w *worker) waitForDestination(ctx context.Context) bool {
	for {
		fs, err := w.m.svc.FileSystemByKey(ctx, w.rep.Dest)
		if err == nil && fs.State == efs.StateAvailable {
			return true
		}
		if err != nil && !errors.Is(err, efs.ErrNotFound) && ctx.Err() == nil {
			w.m.log.Error("load destination", "replication", w.rep.ID, "err", err)
		}
		t := time.NewTimer(50 * time.Millisecond)
		select {
		case <-ctx.Done():
			t.Stop()
			return false
		case <-t.C:
		}
	}
}

// pass makes the destination identical to the source. The roots are
// checked first so that a missing side is reported as such.
func (w *worker) pass(ctx context.Context, racyAfter time.Time) (treesync.Stats, error) {
	if _, err := os.Stat(w.src); err != nil {
		return treesync.Stats{}, &rootError{side: "source", err: err}
	}
	if fi, err := os.Stat(w.dst); err != nil || !fi.IsDir() {
		if err == nil {
			err = errors.New("not a directory")
		}
		return treesync.Stats{}, &rootError{side: "destination", err: err}
	}
	return treesync.Sync(ctx, w.src, w.dst, treesync.Options{Workers: w.m.opts.CopyWorkers, RacyAfter: racyAfter})
}

// record reports status and progress, writing only what changed. It
// fails when the configuration is being deleted, which stops the worker.
func (w *worker) record(ctx context.Context, status, msg string, replicated time.Time) error {
	if status == w.status && msg == w.message && replicated.IsZero() {
		return nil
	}
	err := w.m.svc.RecordProgress(ctx, w.rep.ID, efs.Progress{Status: status, StatusMessage: msg, Replicated: replicated})
	if err != nil {
		if !errors.Is(err, efs.ErrReplicationGone) && ctx.Err() == nil {
			w.m.log.Error("record replication progress", "replication", w.rep.ID, "err", err)
		}
		return err
	}
	w.status, w.message = status, msg
	return nil
}
