package replication

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/efsd/efsd/internal/treesync"
)

// DefaultScrubInterval is how often each configuration's destination is
// verified against its source by content when Options.ScrubInterval is 0.
const DefaultScrubInterval = 24 * time.Hour

// ScrubProgress is the state of one configuration's scrub: a pass that
// reads both trees, compares every file by content and repairs what
// differs. Stats.BytesCompared + Stats.BytesCopied is what it read.
type ScrubProgress struct {
	Replication, Source, Destination string // configuration and file system IDs
	treesync.Stats
	Elapsed time.Duration
	Done    bool
	Err     error // with Done: the scrub failed or was cut short
}

// BytesRead is what the scrub read: both sides of every comparison, and
// the source of every repair.
func (p ScrubProgress) BytesRead() int64 { return p.BytesCompared + p.BytesCopied }

// ErrNotRunning: the configuration named for a scrub has no running worker
// (it does not exist, is being deleted, or one side was deleted).
var ErrNotRunning = errors.New("no running replication configuration")

// scrubRequest is a scrub asked for through Manager.Scrub; the worker
// serves it with its next pass.
type scrubRequest struct {
	base     ScrubProgress
	progress chan ScrubProgress // capacity 1: the latest state wins
	done     chan ScrubProgress // capacity 1
	every    time.Duration
	last     time.Time
}

// update hands the latest state over without ever blocking the pass.
func (r *scrubRequest) update(st treesync.Stats, start time.Time, now func() time.Time) {
	t := now()
	if t.Sub(r.last) < r.every {
		return
	}
	r.last = t
	p := r.base
	p.Stats, p.Elapsed = st, t.Sub(start)
	for {
		select {
		case r.progress <- p:
			return
		default:
		}
		select {
		case <-r.progress:
		default:
		}
	}
}

func (r *scrubRequest) finish(st treesync.Stats, elapsed time.Duration, err error) {
	p := r.base
	p.Stats, p.Elapsed, p.Done, p.Err = st, elapsed, true, err
	r.done <- p
}

// Scrub verifies the destination of the configuration id (its ID, or its
// source's or destination's file system ID), or of every running
// configuration when id is "", one after the other: each scrub
// pass compares every file by content and repairs what differs (each
// repair is logged). progress is called with the running state about
// every interval and with each configuration's final state. Scrub returns
// the final states; if ctx ends first, scrubs already started run on.
func (m *Manager) Scrub(ctx context.Context, id string, interval time.Duration, progress func(ScrubProgress)) ([]ScrubProgress, error) {
	m.mu.Lock()
	var ws []*worker
	for wid, w := range m.workers {
		if id == "" || wid == id || w.rep.Source.ID == id || w.rep.Dest.ID == id {
			ws = append(ws, w)
		}
	}
	m.mu.Unlock()
	if id != "" && len(ws) == 0 {
		return nil, fmt.Errorf("%w: %s", ErrNotRunning, id)
	}
	slices.SortFunc(ws, func(a, b *worker) int { return strings.Compare(a.rep.ID, b.rep.ID) })
	var out []ScrubProgress
	for _, w := range ws {
		r := &scrubRequest{
			base:     ScrubProgress{Replication: w.rep.ID, Source: w.rep.Source.ID, Destination: w.rep.Dest.ID},
			progress: make(chan ScrubProgress, 1),
			done:     make(chan ScrubProgress, 1),
			every:    interval,
		}
		select {
		case w.scrubs <- r:
		case <-w.done:
			return out, fmt.Errorf("%w: %s stopped", ErrNotRunning, w.rep.ID)
		case <-ctx.Done():
			return out, ctx.Err()
		}
		for p := range waitScrub(ctx, w, r) {
			if progress != nil {
				progress(p)
			}
			if p.Done {
				out = append(out, p)
			}
		}
		if err := ctx.Err(); err != nil {
			return out, err
		}
	}
	return out, nil
}

// waitScrub yields a request's progress until its final state.
func waitScrub(ctx context.Context, w *worker, r *scrubRequest) func(func(ScrubProgress) bool) {
	return func(yield func(ScrubProgress) bool) {
		for {
			select {
			case p := <-r.progress:
				if !yield(p) {
					return
				}
			case p := <-r.done:
				yield(p)
				return
			case <-w.done:
				select {
				case p := <-r.done:
					yield(p)
				default:
					p := r.base
					p.Done, p.Err = true, fmt.Errorf("%w: %s stopped", ErrNotRunning, w.rep.ID)
					yield(p)
				}
				return
			case <-ctx.Done():
				return
			}
		}
	}
}
