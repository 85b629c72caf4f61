package replication

import (
	"context"
	"errors"
	"log/slog"
	"path/filepath"
	"regexp"
	"time"

	"github.com/efsd/efsd/internal/efs"
	"github.com/efsd/efsd/internal/remotesync"
	"github.com/efsd/efsd/internal/treesync"
)

// worker replicates one configuration: it waits for the destination to be
// available, then makes passes until stopped.
type worker struct {
	m      *Manager
	rep    *efs.Replication
	src    string
	notify chan struct{} // capacity 1
	scrubs chan *scrubRequest
	cancel context.CancelFunc
	done   chan struct{}
	rec    *treesync.Record // owned by run
	dest   destination      // owned by run

	scrubRetry time.Time // after a failed scrub: no periodic one before

	// what was last recorded, to write only changes
	status, message string
}

func newWorker(m *Manager, r *efs.Replication, cancel context.CancelFunc) *worker {
	return &worker{
		m:       m,
		cancel:  cancel,
		rep:     r,
		src:     m.paths.Path(r.Source),
		notify:  make(chan struct{}, 1),
		scrubs:  make(chan *scrubRequest),
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
	log := w.m.log.With("replicationId", w.rep.ID, "source", w.rep.Source.String(), "destination", w.rep.Dest.String())

	w.rec = w.openRecord(log)
	defer w.rec.Close()
	w.dest = w.m.destinationOf(w.rep, w.src, w.rec, log)
	defer w.dest.close()
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
	var scrubbing []*scrubRequest // requests served by the next pass
	var coverBy time.Time         // a pass must start by then for the timestamp to cover the last changes
	failures := 0
	var churnSince time.Time // start of the passes in a row cut short by a file written while sent
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
		scrub := len(scrubbing) > 0 || w.scrubDue(start)
		ps, err := w.pass(ctx, start, scrub, scrubbing, log)
		stats := ps.Stats
		if ctx.Err() != nil {
			for _, r := range scrubbing {
				r.finish(stats, w.m.opts.Now().Sub(start), ctx.Err())
			}
			return
		}
		if w.m.opts.OnPass != nil {
			w.m.opts.OnPass(Pass{ID: w.rep.ID, Scrub: scrub, Err: err, Duration: w.m.opts.Now().Sub(start), Stats: stats,
				ChunksSent: ps.ChunksSent, BytesSent: ps.BytesSent})
		}
		if scrub {
			elapsed := w.m.opts.Now().Sub(start)
			if err != nil {
				// Not every pass until one succeeds: a failing scrub is
				// retried with the periodic one, at most hourly.
				w.scrubRetry = w.m.opts.Now().Add(min(w.m.opts.ScrubInterval, time.Hour))
			}
			if err == nil {
				if serr := w.rec.SetScrubbed(w.m.opts.Now()); serr != nil {
					log.Warn("record scrub time", "err", serr)
				}
				log.Info("replication scrub", "filesCompared", stats.FilesCompared, "bytesRead", stats.BytesCompared+stats.BytesCopied,
					"differences", stats.Differences, "copied", stats.FilesCopied, "deleted", stats.Deleted, "duration", elapsed)
			}
			for _, r := range scrubbing {
				r.finish(stats, elapsed, err)
			}
			scrubbing = nil
		}
		var wait time.Duration
		if err != nil && errors.Is(err, remotesync.ErrSourceChanged) && (churnSince.IsZero() || w.m.opts.Now().Sub(churnSince) < maxChurn) {
			// A file was written while it was being sent: not a failure
			// (a local pass copies whatever it reads and moves on); the
			// next pass, after the settle delay, sends the new content.
			if churnSince.IsZero() {
				churnSince = start
			}
			log.Debug("replication pass: a source file changed while it was sent; passing again", "err", err)
			r, ok := w.sleep(ctx, watch, w.m.opts.SettleDelay, false)
			if !ok {
				return
			}
			if r != nil {
				scrubbing = append(scrubbing, r)
			}
			continue
		}
		churnSince = time.Time{}
		if err != nil {
			status, msg := classify(err, w.src, w.dest.hostPath())
			failures++
			wait = min(time.Duration(1<<min(failures-1, 16))*100*time.Millisecond, w.m.opts.MaxBackoff)
			if status != w.status || msg != w.message {
				log.Warn("replication pass failed", "status", status, "err", err, "retryIn", wait)
			}
			if w.record(ctx, status, msg, time.Time{}) != nil {
				return
			}
			w.dest.failed(ctx, err, status, msg, wait)
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
			if w.rec.Scrubbed().IsZero() {
				// The record was new (or reset: it described other trees),
				// so this pass compared every file whose size matched, as a
				// scrub does: the scrub interval starts now.
				if err := w.rec.SetScrubbed(w.m.opts.Now()); err != nil {
					log.Warn("record scrub time", "err", err)
				}
			}
			log.Debug("replication pass", "copied", stats.FilesCopied, "bytes", stats.BytesCopied, "deleted", stats.Deleted,
				"filesCompared", stats.FilesCompared, "differences", stats.Differences, "duration", w.m.opts.Now().Sub(start))
			wait = w.m.opts.RescanInterval
			// LastReplicatedTimestamp is reported in whole seconds, so the
			// start of a pass that carried changes, truncated, may not cover
			// them: a pass that starts in the next second (the one after, if
			// nothing wakes one sooner) makes the timestamp cover them.
			if !coverBy.IsZero() && !start.Before(coverBy) {
				coverBy = time.Time{}
			}
			if changed(stats) {
				if whole := start.Truncate(time.Second); !whole.Equal(start) {
					coverBy = whole.Add(time.Second)
				}
			}
			if !coverBy.IsZero() {
				wait = min(wait, coverBy.Sub(w.m.opts.Now()))
			}
		}
		if w.m.opts.ScrubInterval > 0 && !w.rec.Scrubbed().IsZero() {
			wait = min(wait, max(w.nextScrub().Sub(w.m.opts.Now()), 0))
		}
		r, ok := w.sleep(ctx, watch, wait, err == nil)
		if !ok {
			return
		}
		if r != nil {
			scrubbing = append(scrubbing, r)
		}
	}
}

// maxChurn bounds how long passes are retried at once because a source
// file changed while it was being sent; beyond it (a file rewritten
// without pause) the failure is reported, and retried with backoff.
const maxChurn = time.Minute

// changed reports whether a pass changed the destination.
func changed(st treesync.Stats) bool {
	return st.FilesCopied+st.Deleted+st.DirsCreated+st.LinksCreated+st.SymlinksCreated+st.MetadataUpdated > 0
}

// recordName is what a configuration ID must look like to name a file.
var recordName = regexp.MustCompile(`^[A-Za-z0-9-]{1,64}$`)

// recordPath is where the configuration's change record lives; "" keeps
// it in memory.
func (m *Manager) recordPath(id string) string {
	if m.opts.RecordDir == "" || !recordName.MatchString(id) {
		return ""
	}
	return filepath.Join(m.opts.RecordDir, id+".record")
}

// openRecord opens the configuration's record of what was copied. Without
// one (it cannot be opened) the worker keeps it in memory: the first pass
// then compares contents, as after a restart.
func (w *worker) openRecord(log *slog.Logger) *treesync.Record {
	rec, err := treesync.OpenRecord(w.m.recordPath(w.rep.ID))
	if err != nil {
		log.Warn("open replication record; keeping it in memory", "err", err)
		rec, _ = treesync.OpenRecord("")
	}
	return rec
}

// scrubDue reports whether the periodic scrub is due at now. A record that
// has never seen a complete pass is not: that pass compares everything
// anyway.
func (w *worker) scrubDue(now time.Time) bool {
	return w.m.opts.ScrubInterval > 0 && !w.rec.Scrubbed().IsZero() && !now.Before(w.nextScrub())
}

// nextScrub is when the periodic scrub is next due.
func (w *worker) nextScrub() time.Time {
	next := w.rec.Scrubbed().Add(w.m.opts.ScrubInterval)
	if w.scrubRetry.After(next) {
		return w.scrubRetry
	}
	return next
}

// sleep waits for the next pass: a change notification (followed by a
// short settle delay, to take a burst of writes in one pass), a scrub
// request (returned, at once), or the timeout; then for the end of a
// file's write under way (awaitWriters). After a failure only the timeout
// and scrub requests count (backoff). false: the worker stops.
func (w *worker) sleep(ctx context.Context, watch *tree, timeout time.Duration, wakeOnChange bool) (*scrubRequest, bool) {
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
		return nil, false
	case <-t.C:
		return w.awaitWriters(ctx, watch, changes)
	case r := <-w.scrubs:
		return r, true
	case <-changes:
	case <-notify:
	}
	settle := time.NewTimer(w.m.opts.SettleDelay)
	defer settle.Stop()
	select {
	case <-ctx.Done():
		return nil, false
	case r := <-w.scrubs:
		return r, true
	case <-settle.C:
	}
	return w.awaitWriters(ctx, watch, changes)
}

// awaitWriters waits while a file of the tree is being written (modified
// within the settle delay and not closed), at most MaxSettle: a pass that
// starts mid-write reads a partial file and sends it, then another pass
// sends the rest (at a peer, each with its own durable commit). A close
// comes as a change; without changes, the writer is looked at again every
// settle delay.
func (w *worker) awaitWriters(ctx context.Context, watch *tree, changes <-chan struct{}) (*scrubRequest, bool) {
	if watch == nil || !watch.Writing(w.m.opts.SettleDelay) {
		return nil, true
	}
	limit := time.NewTimer(w.m.opts.MaxSettle)
	defer limit.Stop()
	for watch.Writing(w.m.opts.SettleDelay) {
		again := time.NewTimer(w.m.opts.SettleDelay)
		select {
		case <-ctx.Done():
			again.Stop()
			return nil, false
		case r := <-w.scrubs:
			again.Stop()
			return r, true
		case <-limit.C:
			again.Stop()
			return nil, true
		case <-changes:
		case <-again.C:
		}
		again.Stop()
	}
	return nil, true
}

// waitForDestination holds the configuration at ENABLING until its
// destination is ready (a new destination is being created).
func (w *worker) waitForDestination(ctx context.Context) bool {
	wait, logged := 5*time.Millisecond, "" // a new local destination is provisioned within milliseconds
	for {
		ok, err := w.dest.ready(ctx)
		if ok {
			return true
		}
		if err != nil && ctx.Err() == nil && err.Error() != logged {
			logged = err.Error()
			level := slog.LevelWarn
			if re := (*remotesync.RemoteError)(nil); errors.As(err, &re) && re.Code == codeNotReady {
				level = slog.LevelDebug // being created there
			}
			w.m.log.Log(ctx, level, "destination not ready", "replicationId", w.rep.ID, "err", err)
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return false
		case <-t.C:
		}
		wait = min(2*wait, time.Second)
	}
}

// pass makes the destination identical to the source; a scrub compares
// every file by content, reports to the requests' progress functions and
// logs each difference it repairs.
func (w *worker) pass(ctx context.Context, start time.Time, scrub bool, reqs []*scrubRequest, log *slog.Logger) (passStats, error) {
	o := passOptions{start: start, scrub: scrub}
	if scrub {
		o.onDifference = func(rel string) {
			log.Warn("replication scrub repaired a difference", "path", rel)
		}
		if len(reqs) > 0 {
			o.progress = func(st treesync.Stats) {
				for _, r := range reqs {
					r.update(st, start, w.m.opts.Now)
				}
			}
		}
	} else {
		o.onDifference = func(rel string) {
			// A same-size rewrite with its mtime put back, or a destination
			// changed behind efsd's back: found and copied.
			log.Debug("replication pass: content differed under equal size and mtime", "path", rel)
		}
	}
	return w.dest.pass(ctx, o)
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
			w.m.log.Error("record replication progress", "replicationId", w.rep.ID, "err", err)
		}
		return err
	}
	w.status, w.message = status, msg
	return nil
}
