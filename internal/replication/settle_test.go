package replication

import (
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/efsd/efsd/internal/efs"
)

// fakeNow is a clock the test moves.
type fakeNow struct {
	mu sync.Mutex
	t  time.Time
}

func (c *fakeNow) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeNow) add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// watchedDir watches a new directory, with a hub of its own on clock now.
func watchedDir(t *testing.T, now func() time.Time) (string, *tree) {
	t.Helper()
	h := newHub(100, 1000, now, slog.New(slog.DiscardHandler))
	t.Cleanup(h.close)
	root := t.TempDir()
	tr, err := h.watch(root, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	return root, tr
}

// A file is being written from its first IN_MODIFY until its writer
// closes it, is deleted or moved away, or stays quiet for the delay given.
func TestTreeTracksWriters(t *testing.T) {
	clock := &fakeNow{t: time.Unix(1e9, 0)}
	root, tr := watchedDir(t, clock.now)
	const quiet = time.Second
	writing := func(want bool) func() bool {
		return func() bool { return tr.Writing(quiet) == want }
	}
	open := func(name string) *os.File {
		f, err := os.OpenFile(filepath.Join(root, name), os.O_CREATE|os.O_WRONLY, 0o644)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := f.Write([]byte("partial")); err != nil {
			t.Fatal(err)
		}
		return f
	}
	if tr.Writing(quiet) {
		t.Fatal("writing before any write")
	}
	f := open("a")
	eventually(t, "a write under way", writing(true))
	f.Close()
	eventually(t, "the writer's close seen", writing(false))

	// Quiet for the delay: forgotten, as is a writer whose close is
	// never seen.
	f = open("b")
	defer f.Close()
	eventually(t, "a write under way", writing(true))
	clock.add(quiet)
	if tr.Writing(quiet) {
		t.Fatal("a file quiet for the whole delay still counts as being written")
	}

	// Deleted or moved away while open: not being written any more.
	g := open("c")
	defer g.Close()
	eventually(t, "a write under way", writing(true))
	os.Remove(filepath.Join(root, "c"))
	eventually(t, "the deleted file forgotten", writing(false))
	k := open("d")
	defer k.Close()
	eventually(t, "a write under way", writing(true))
	os.Rename(filepath.Join(root, "d"), filepath.Join(t.TempDir(), "d"))
	eventually(t, "the file moved away forgotten", writing(false))
}

// A worker about to pass (woken by a change, or by its timer for a
// rescan) waits for a file still being written: its pass starts once the
// writer closes it, or after MaxSettle if it never does; a file written
// and closed at once does not hold the pass beyond the settle delay.
func TestPassWaitsForWriter(t *testing.T) {
	const settle = 300 * time.Millisecond // 30 times the writer's pace
	root, tr := watchedDir(t, time.Now)
	sleeper := func(maxSettle, timeout time.Duration, wakeOnChange bool) (done chan time.Time, stop func()) {
		m := newTestManager(t, Options{NoWatch: true, SettleDelay: settle, MaxSettle: maxSettle})
		ctx, cancel := context.WithCancel(context.Background())
		w := newWorker(m, &efs.Replication{ID: "fs-00000001"}, cancel)
		drain(tr)
		done = make(chan time.Time, 1)
		go func() {
			w.sleep(ctx, tr, timeout, wakeOnChange)
			done <- time.Now()
		}()
		return done, cancel
	}
	// writeFor writes a line every 10 ms for d; the file stays open.
	writeFor := func(f *os.File, d time.Duration) {
		for end := time.Now().Add(d); time.Now().Before(end); time.Sleep(10 * time.Millisecond) {
			if _, err := f.Write([]byte("line\n")); err != nil {
				t.Error(err)
				return
			}
		}
	}

	// Closed after a long write: the pass follows the close, whether a
	// change or the timer woke the worker (as after a failure, while the
	// file is written).
	for _, byChange := range []bool{true, false} {
		done, stop := sleeper(time.Minute, 3*settle, byChange)
		f, err := os.Create(filepath.Join(root, "long"))
		if err != nil {
			t.Fatal(err)
		}
		writeFor(f, 6*settle)
		select {
		case at := <-done:
			t.Fatalf("the pass started %v before the writer closed its file", time.Since(at))
		default:
		}
		closed := time.Now()
		f.Close()
		select {
		case at := <-done:
			if at.Before(closed) {
				t.Fatal("the pass started before the close")
			}
		case <-time.After(10 * time.Second):
			t.Fatal("no pass after the writer closed its file")
		}
		stop()
	}

	// Never closed: the pass starts after MaxSettle.
	done, stop := sleeper(3*settle, time.Hour, true)
	defer stop()
	g, err := os.Create(filepath.Join(root, "endless"))
	if err != nil {
		t.Fatal(err)
	}
	defer g.Close()
	began := time.Now()
	writeFor(g, 8*settle)
	select {
	case at := <-done:
		if waited := at.Sub(began); waited < 4*settle-50*time.Millisecond {
			t.Fatalf("the pass started %v after the change, before the settle delay and MaxSettle (%v)", waited, 4*settle)
		}
	default:
		t.Fatalf("no pass within %v of a change though the settle delay and MaxSettle are %v", time.Since(began), 4*settle)
	}

	// Written and closed at once: the settle delay alone.
	done, stop = sleeper(time.Minute, time.Hour, true)
	defer stop()
	began = time.Now()
	if err := os.WriteFile(filepath.Join(root, "short"), []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	select {
	case <-done:
	case <-time.After(20 * time.Second):
		t.Fatalf("a closed file held the pass for %v", time.Since(began))
	}
}
