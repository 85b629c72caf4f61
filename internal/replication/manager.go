// Package replication is efsd's replication engine: a Manager that keeps
// one Worker running per active replication configuration, and Workers
// that copy a source file system's tree into its destination, pass after
// pass, woken by change notifications and a periodic rescan, and report
// honest statuses and timestamps through the domain service.
package replication

import (
	"context"
	"errors"
	"log/slog"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/efsd/efsd/internal/efs"
	"github.com/efsd/efsd/internal/treesync"
)

// Paths locates file systems' data directories (volume.Manager).
type Paths interface {
	Path(k efs.FSKey) string
}

// Options tune the engine. Zero values take the defaults.
type Options struct {
	// RescanInterval is how often a worker makes a pass without being
	// notified of a change. Default 5s.
	RescanInterval time.Duration
	// SettleDelay is how long a worker waits after a change notification
	// before its pass, so that a burst of writes is copied in one pass.
	// Default 20ms.
	SettleDelay time.Duration
	// MaxSettle bounds how long a worker about to pass waits for a file
	// of its source being written (modified within SettleDelay and not
	// closed). Default 1s.
	MaxSettle time.Duration
	// MaxBackoff caps the wait between retries of a failing pass.
	// Default 30s.
	MaxBackoff time.Duration
	// NoWatch turns off inotify: passes are then woken only by Notify and
	// the periodic rescan (for data directories where inotify does not
	// work, such as some network file systems).
	NoWatch bool
	// MaxWatchesPerFileSystem caps the directories watched in one source
	// file system; beyond it the file system relies on the periodic
	// rescan. Default DefaultMaxWatchesPerFileSystem.
	MaxWatchesPerFileSystem int
	// MaxWatches caps the watches of the whole process. Default: half of
	// the host's fs.inotify.max_user_watches, leaving the rest to the
	// other processes of efsd's user.
	MaxWatches int
	// CopyWorkers bounds concurrent file copies and comparisons per pass;
	// 0 uses the copier's default.
	CopyWorkers int
	// RecordDir holds each configuration's record of what was copied
	// (treesync.Record, ID.record), which lets a pass skip files untouched
	// on both sides since, across restarts. "": records are kept in
	// memory, so the first pass after a start compares contents.
	RecordDir string
	// ScrubInterval is how often each configuration's destination is
	// verified by content against its source (and repaired); 0 means
	// DefaultScrubInterval, negative disables periodic scrubs (Scrub
	// still runs one on demand).
	ScrubInterval time.Duration
	Now           func() time.Time
	Logger        *slog.Logger
	// OnPass, when set, is told of every pass a worker finishes (metrics
	// hook here); it must not block.
	OnPass func(Pass)
	// Peers reaches the deployments holding the other side of
	// configurations that span two; nil when there are none.
	Peers PeerLink
}

// Pass is what one finished pass of a configuration did.
type Pass struct {
	ID       string // the configuration
	Scrub    bool   // compared every file by content
	Err      error  // nil when the destination was made identical
	Duration time.Duration
	Stats    treesync.Stats
	// ChunksSent and BytesSent are what crossed the network to a peer
	// destination (chunk payload after compression); 0 for a local one.
	ChunksSent, BytesSent int64
}

// Manager reconciles stored configurations with running workers.
type Manager struct {
	svc   *efs.Service
	paths Paths
	opts  Options
	log   *slog.Logger

	// hub is the process's inotify instance shared by the workers; nil
	// with NoWatch.
	hub *hub

	swept bool // records of configurations deleted while efsd was down are removed

	mu        sync.Mutex
	workers   map[string]*worker   // by configuration ID
	receivers map[string]*receiver // destinations of peers' sources, by configuration ID
	telling   map[string]*telling  // deletions being told to peers, by configuration ID
	doubts    map[string]*doubt    // destinations asking whether their source recorded them, by configuration ID
	wg        sync.WaitGroup
}

// Stats tells how change notification is doing, for operators: whether
// inotify is available and which file systems fell back to rescans.
type Stats struct {
	// Instances is the number of inotify instances open: 0 or 1, however
	// many configurations run.
	Instances int
	// WatchedFileSystems is the number of source trees subscribed.
	WatchedFileSystems int
	// WatchedDirs is the number of inotify watches held (one per
	// directory).
	WatchedDirs int
	// WatchLimitedFileSystems is the number of source trees with
	// directories left unwatched by a cap or the host's limit; changes
	// there are found by the periodic rescan.
	WatchLimitedFileSystems int
	// WatchLimitHits counts the times a tree became limited.
	WatchLimitHits uint64
	// QueueOverflows counts the kernel's event queue overflows (each
	// wakes every worker).
	QueueOverflows uint64
	// InotifyInitFailures counts failed attempts to open the instance.
	InotifyInitFailures uint64
	// MaxWatches and MaxWatchesPerFileSystem are the caps in force.
	MaxWatches, MaxWatchesPerFileSystem int
}

// NewManager returns a Manager; Run starts it.
func NewManager(svc *efs.Service, paths Paths, o Options) *Manager {
	if o.RescanInterval <= 0 {
		o.RescanInterval = 5 * time.Second
	}
	if o.SettleDelay <= 0 {
		o.SettleDelay = 20 * time.Millisecond
	}
	if o.MaxSettle <= 0 {
		o.MaxSettle = time.Second
	}
	if o.MaxBackoff <= 0 {
		o.MaxBackoff = 30 * time.Second
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.ScrubInterval == 0 {
		o.ScrubInterval = DefaultScrubInterval
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.MaxWatchesPerFileSystem <= 0 {
		o.MaxWatchesPerFileSystem = DefaultMaxWatchesPerFileSystem
	}
	if o.MaxWatches <= 0 {
		o.MaxWatches = defaultWatchBudget()
	}
	m := &Manager{svc: svc, paths: paths, opts: o, log: o.Logger, workers: map[string]*worker{},
		receivers: map[string]*receiver{}, telling: map[string]*telling{}, doubts: map[string]*doubt{}}
	if !o.NoWatch {
		m.hub = newHub(o.MaxWatchesPerFileSystem, o.MaxWatches, o.Now, o.Logger)
	}
	return m
}

// Stats reports on change notification. With NoWatch everything is zero.
func (m *Manager) Stats() Stats {
	if m.hub == nil {
		return Stats{}
	}
	return m.hub.stats()
}

// reconcileInterval bounds how stale the manager's view of the store may
// get when no change signal arrives (e.g. rows changed by another tool).
const reconcileInterval = time.Second

// Run reconciles until ctx ends, then stops every worker and closes the
// inotify instance.
func (m *Manager) Run(ctx context.Context) {
	defer func() {
		m.stopAll()
		if m.hub != nil {
			m.hub.close()
		}
	}()
	for {
		next := m.reconcile(ctx)
		wait := reconcileInterval
		if !next.IsZero() {
			wait = min(max(next.Sub(m.opts.Now()), 0), wait)
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-m.svc.ReplicationsChanged():
		case <-t.C:
		}
		t.Stop()
	}
}

// reconcile starts workers for running configurations, stops the others,
// and finishes deletions. It returns when it next needs to run.
func (m *Manager) reconcile(ctx context.Context) time.Time {
	reps, err := m.svc.Replications(ctx)
	if err != nil {
		if ctx.Err() == nil {
			m.log.Error("list replications", "err", err)
		}
		return time.Time{}
	}
	seen := map[string]bool{}
	for _, r := range reps {
		seen[r.ID] = true
	}
	if !m.swept {
		m.sweepRecords(seen)
		m.swept = true
	}
	// Receivers of configurations gone are closed first: a configuration
	// that took over another's destination (efs.AcceptReplication) opens
	// its own on the same directory below.
	m.mu.Lock()
	var goneReceivers []string
	for id := range m.receivers {
		if !seen[id] {
			goneReceivers = append(goneReceivers, id)
		}
	}
	m.mu.Unlock()
	for _, id := range goneReceivers {
		m.closeReceiver(id)
		m.removeRecord(id)
	}
	var next time.Time
	for _, r := range reps {
		if r.Peer != "" && r.PeerSide == efs.PeerSource {
			// The source is on a peer: this side applies its passes.
			if r.Running() {
				m.checkRecorded(ctx, r)
				m.mu.Lock()
				_, open := m.receivers[r.ID]
				d := m.doubts[r.ID]
				closing := d != nil && d.closing
				m.mu.Unlock()
				if open || closing {
					continue
				}
				if fs, err := m.svc.FileSystemByKey(ctx, r.Dest); err == nil && fs.State == efs.StateAvailable {
					m.openReceiver(ctx, r)
				}
				continue
			}
			m.closeReceiver(r.ID)
		} else if r.Running() {
			m.start(ctx, r)
			continue
		}
		m.stop(r.ID)
		if r.Peer != "" {
			if m.opts.Peers == nil {
				continue // peers unconfigured: kept until they are back
			}
			m.settlePeer(ctx, r)
			if !r.PeerAcked {
				continue
			}
		}
		if r.Status != efs.RepDeleting {
			continue // one side deleted locally: nothing runs, nothing to finish
		}
		done, retryAt, err := m.svc.FinishDeletion(ctx, r.ID)
		switch {
		case err != nil:
			m.log.Error("finish replication deletion", "replicationId", r.ID, "err", err)
			retryAt = m.opts.Now().Add(reconcileInterval)
		case done:
			m.log.Info("replication deleted", "replicationId", r.ID, "source", r.Source.String(), "destination", r.Dest.String())
			m.removeRecord(r.ID)
			continue
		}
		if next.IsZero() || retryAt.Before(next) {
			next = retryAt
		}
	}
	m.watchSilence(ctx)
	m.mu.Lock()
	var gone []string
	for id := range m.workers {
		if !seen[id] {
			gone = append(gone, id)
		}
	}
	for id := range m.telling {
		if !seen[id] {
			delete(m.telling, id)
		}
	}
	for id, d := range m.doubts {
		if !seen[id] && !d.busy {
			delete(m.doubts, id)
		}
	}
	m.mu.Unlock()
	for _, id := range gone {
		m.stop(id)
	}
	return next
}

func (m *Manager) start(ctx context.Context, r *efs.Replication) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if _, ok := m.workers[r.ID]; ok {
		return
	}
	// The cancel function exists before the goroutine starts, so a stop
	// right after this start (at shutdown) always has one to call.
	wctx, cancel := context.WithCancel(ctx)
	w := newWorker(m, r, cancel)
	m.workers[r.ID] = w
	m.wg.Add(1)
	go func() {
		defer m.wg.Done()
		w.run(wctx)
	}()
}

// stop ends a configuration's worker and waits until it has stopped
// writing to the destination.
func (m *Manager) stop(id string) {
	m.mu.Lock()
	w, ok := m.workers[id]
	delete(m.workers, id)
	m.mu.Unlock()
	if ok {
		w.stop()
	}
}

func (m *Manager) stopAll() {
	m.mu.Lock()
	ids := make([]string, 0, len(m.workers))
	for id := range m.workers {
		ids = append(ids, id)
	}
	m.mu.Unlock()
	for _, id := range ids {
		m.stop(id)
	}
	m.mu.Lock()
	ids = ids[:0]
	for id := range m.receivers {
		ids = append(ids, id)
	}
	m.mu.Unlock()
	for _, id := range ids {
		m.closeReceiver(id)
	}
	m.wg.Wait()
}

// Notify tells the engine that the file system's data changed (the NFS
// server calls it on writes); workers replicating from it wake up.
func (m *Manager) Notify(k efs.FSKey) {
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, w := range m.workers {
		if w.rep.Source == k {
			w.wake()
		}
	}
}

// removeRecord deletes a deleted configuration's engine state: its record
// of what was copied, and a sender's or receiver's state.
func (m *Manager) removeRecord(id string) {
	for _, suf := range stateSuffixes {
		if p := m.statePath(id, suf); p != "" {
			if err := os.Remove(p); err != nil && !errors.Is(err, os.ErrNotExist) {
				m.log.Warn("remove replication record", "replicationId", id, "err", err)
			}
		}
	}
}

// sweepRecords removes the records of configurations that no longer exist.
func (m *Manager) sweepRecords(exist map[string]bool) {
	if m.opts.RecordDir == "" {
		return
	}
	ents, err := os.ReadDir(m.opts.RecordDir)
	if err != nil {
		return // not created yet
	}
	for _, e := range ents {
		for _, suf := range stateSuffixes {
			if id, ok := strings.CutSuffix(e.Name(), suf); ok && !exist[id] {
				m.removeRecord(id)
			}
		}
	}
}
