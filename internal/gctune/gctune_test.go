package gctune

import (
	"runtime"
	"runtime/debug"
	"testing"
	"time"
)

func TestPercent(t *testing.T) {
	for _, c := range []struct {
		live uint64
		want int
	}{
		{0, 400}, {1 << 20, 400}, {16 << 20, 400}, {32 << 20, 200}, {64 << 20, 100}, {1 << 30, 100},
	} {
		if got := Percent(c.live); got != c.want {
			t.Errorf("Percent(%d MiB) = %d, want %d", c.live>>20, got, c.want)
		}
	}
}

// The target follows the live heap: a large one held gets Go's default,
// and once it is released the small heap gets its room back.
func TestTunerFollowsLiveHeap(t *testing.T) {
	defer debug.SetGCPercent(debug.SetGCPercent(100))
	tu := Start()
	defer tu.Stop()
	wait := func(want int) {
		t.Helper()
		deadline := time.Now().Add(10 * time.Second)
		for tu.Percent() != want {
			if time.Now().After(deadline) {
				t.Fatalf("GOGC %d, want %d", tu.Percent(), want)
			}
			runtime.GC()
			time.Sleep(10 * time.Millisecond)
		}
		if got := debug.SetGCPercent(want); got != want {
			t.Fatalf("the runtime's GOGC is %d, the tuner says %d", got, want)
		}
	}
	wait(MaxPercent)
	big := make([]byte, 256<<20)
	for i := range big {
		big[i] = byte(i)
	}
	wait(MinPercent)
	runtime.KeepAlive(big)
	wait(MaxPercent)
}
