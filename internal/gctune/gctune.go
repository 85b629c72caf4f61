// Package gctune adapts the garbage collector's target (GOGC) to the live
// heap after every collection. A small heap may grow to five times its
// size between collections, so that allocation-heavy paths (the NFS
// server's buffer per READ) collect rarely; a large one (the replication
// record of a million files) keeps Go's default of twice its size, so that
// memory grows with what is kept and not five times faster.
package gctune

import (
	"runtime"
	"runtime/debug"
	"runtime/metrics"
	"sync"
	"sync/atomic"
)

const (
	// MaxPercent is the target of a small heap, MinPercent of a large one.
	MaxPercent = 400
	MinPercent = 100
	// Headroom is the most a heap above MaxPercent's range may grow beyond
	// its live size before it is collected, while that is more than Go's
	// default would allow.
	Headroom = 64 << 20
)

// Percent is the GOGC for a live heap of live bytes: growth of 4× the live
// heap up to 16 MiB, then 64 MiB, then the live heap's own size.
func Percent(live uint64) int {
	if live == 0 {
		return MaxPercent
	}
	extra := min(4*live, max(live, Headroom))
	return min(max(int(100*extra/live), MinPercent), MaxPercent)
}

// Tuner sets GOGC after each collection until it is stopped.
type Tuner struct {
	stopped atomic.Bool
	mu      sync.Mutex
	last    int
	sample  []metrics.Sample
}

// sentinel is garbage made for its finalizer, which runs after the
// collection that found it unreachable. It holds a pointer so that it is
// not batched with other tiny objects (whose finalizers may never run).
type sentinel struct{ t *Tuner }

// Start sets GOGC for the heap as it is now and after every collection.
func Start() *Tuner {
	t := &Tuner{sample: []metrics.Sample{{Name: "/gc/heap/live:bytes"}}}
	t.tune()
	t.arm()
	return t
}

// Percent is the GOGC last set.
func (t *Tuner) Percent() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.last
}

// Stop ends the tuning; GOGC stays as last set.
func (t *Tuner) Stop() { t.stopped.Store(true) }

func (t *Tuner) arm() {
	runtime.SetFinalizer(&sentinel{t: t}, func(s *sentinel) {
		if s.t.stopped.Load() {
			return
		}
		s.t.tune()
		s.t.arm()
	})
}

func (t *Tuner) tune() {
	t.mu.Lock()
	defer t.mu.Unlock()
	metrics.Read(t.sample)
	live := uint64(0)
	if t.sample[0].Value.Kind() == metrics.KindUint64 {
		live = t.sample[0].Value.Uint64()
	}
	if p := Percent(live); p != t.last {
		debug.SetGCPercent(p)
		t.last = p
	}
}
