package deploy

import (
	"math/rand/v2"
	"os"
	"strconv"
	"testing"
	"time"
)

// KillSchedule picks the moments, and the victims, of kill -9s from a
// seeded generator, so a failing run can be replayed: the seed is logged,
// and EFSD_KILL_SEED=<seed> makes the next run draw the same schedule.
type KillSchedule struct {
	Seed     uint64
	Min, Max time.Duration
	rng      *rand.Rand
}

// NewKillSchedule returns a schedule of delays between min and max. The
// seed comes from EFSD_KILL_SEED if set, else from the clock; either way
// it is logged.
func NewKillSchedule(t testing.TB, min, max time.Duration) *KillSchedule {
	t.Helper()
	seed := uint64(time.Now().UnixNano())
	if s := os.Getenv("EFSD_KILL_SEED"); s != "" {
		v, err := strconv.ParseUint(s, 10, 64)
		if err != nil {
			t.Fatalf("EFSD_KILL_SEED=%q: %v", s, err)
		}
		seed = v
	}
	t.Logf("kill schedule seed %d (EFSD_KILL_SEED=%d replays it)", seed, seed)
	return NewKillScheduleSeed(seed, min, max)
}

// NewKillScheduleSeed returns the schedule of a given seed.
func NewKillScheduleSeed(seed uint64, min, max time.Duration) *KillSchedule {
	if max < min {
		max = min
	}
	return &KillSchedule{Seed: seed, Min: min, Max: max, rng: rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))}
}

// Next is the delay before the next kill.
func (k *KillSchedule) Next() time.Duration {
	if k.Max == k.Min {
		return k.Min
	}
	return k.Min + time.Duration(k.rng.Int64N(int64(k.Max-k.Min)+1))
}

// Pick chooses which of n deployments dies next.
func (k *KillSchedule) Pick(n int) int { return k.rng.IntN(n) }

// KillAfter waits the next delay, or until stop is closed, then kills d
// with SIGKILL. It returns the delay waited and whether it killed.
func (k *KillSchedule) KillAfter(d *Deployment, stop <-chan struct{}) (time.Duration, bool) {
	wait := k.Next()
	tm := time.NewTimer(wait)
	defer tm.Stop()
	select {
	case <-tm.C:
		d.Kill()
		return wait, true
	case <-stop:
		return wait, false
	}
}
