package storetest

import (
	"fmt"
	"math"
	"strings"
	"sync"
	"testing"

	"github.com/efsd/efsd/internal/fsview"
)

// RunHandles runs the conformance suite for fsview.HandleStore against stores
// made by open; each subtest gets a fresh, empty store. open also returns
// reopen, which closes that store and opens it again on the same data; a
// store that keeps nothing across a restart (fsview.NewMemHandles) returns a
// nil reopen and the persistence test is skipped.
//
// The contract, beyond what fsview.HandleStore says the strings mean:
//   - PutHandle inserts or replaces the string of (fsID, ino); HandlePath
//     returns it byte for byte, whatever the bytes (directory entry names
//     may hold spaces, newlines and invalid UTF-8, up to 255 bytes), and
//     ok=false with a nil error when there is none.
//   - Entries of different file systems, and of different inodes over the
//     whole uint64 range, are independent.
//   - DeleteHandle of a missing entry is not an error.
//   - The methods are safe for concurrent use.
//   - A durable store has after reopening what it held when closed.
func RunHandles(t *testing.T, open func(t *testing.T) (h fsview.HandleStore, reopen func() fsview.HandleStore)) {
	t.Run("PutGetDelete", func(t *testing.T) { h, _ := open(t); testHandlesPutGetDelete(t, h) })
	t.Run("OddBytes", func(t *testing.T) { h, _ := open(t); testHandlesOddBytes(t, h) })
	t.Run("Isolation", func(t *testing.T) { h, _ := open(t); testHandlesIsolation(t, h) })
	t.Run("Concurrent", func(t *testing.T) { h, _ := open(t); testHandlesConcurrent(t, h) })
	t.Run("Reopen", func(t *testing.T) {
		h, reopen := open(t)
		if reopen == nil {
			t.Skip("the store keeps nothing across a restart")
		}
		testHandlesReopen(t, h, reopen)
	})
}

// handle is one (file system, inode) entry of a HandleStore.
type handle struct {
	fsID string
	ino  uint64
}

// expectHandles fails the test unless each entry reads back as want says;
// "" means no entry.
func expectHandles(t *testing.T, h fsview.HandleStore, what string, want map[handle]string) {
	t.Helper()
	for k, w := range want {
		got, ok, err := h.HandlePath(k.fsID, k.ino)
		if err != nil || ok != (w != "") || got != w {
			t.Errorf("%s: HandlePath(%q, %d) = %q, %v, %v; want %q, %v", what, k.fsID, k.ino, got, ok, err, w, w != "")
		}
	}
}

func put(t *testing.T, h fsview.HandleStore, entries map[handle]string) {
	t.Helper()
	for k, v := range entries {
		if err := h.PutHandle(k.fsID, k.ino, v); err != nil {
			t.Fatalf("PutHandle(%q, %d, %q): %v", k.fsID, k.ino, v, err)
		}
	}
}

func del(t *testing.T, h fsview.HandleStore, k handle) {
	t.Helper()
	if err := h.DeleteHandle(k.fsID, k.ino); err != nil {
		t.Fatalf("DeleteHandle(%q, %d): %v", k.fsID, k.ino, err)
	}
}

func testHandlesPutGetDelete(t *testing.T, h fsview.HandleStore) {
	k := handle{"fs-1", 42}
	expectHandles(t, h, "never put", map[handle]string{k: ""})
	put(t, h, map[handle]string{k: "1/a"})
	expectHandles(t, h, "put", map[handle]string{k: "1/a"})
	put(t, h, map[handle]string{k: "7/b"})
	expectHandles(t, h, "put again", map[handle]string{k: "7/b"})
	put(t, h, map[handle]string{k: "7/b"})
	expectHandles(t, h, "put the same", map[handle]string{k: "7/b"})
	del(t, h, k)
	expectHandles(t, h, "deleted", map[handle]string{k: ""})
	del(t, h, k)                 // deleted before
	del(t, h, handle{"fs-2", 9}) // never put
	put(t, h, map[handle]string{k: "1/c"})
	expectHandles(t, h, "put after delete", map[handle]string{k: "1/c"})
}

// oddNames are directory entry names the NFS server may record.
var oddNames = []string{
	"with space", " leading and trailing ", "new\nline", "tab\tand\rreturn", "\xff\xfe not UTF-8 \xc3",
	"quote's \"and\" back\\slash", "'); DROP TABLE nfs_handles; --", "%_*?[", "日本語", "\x01\x7f",
	strings.Repeat("n", 255), strings.Repeat("\xe2\x82\xac", 85), // 255 bytes
}

func testHandlesOddBytes(t *testing.T, h fsview.HandleStore) {
	want := map[handle]string{}
	for i, name := range oddNames {
		want[handle{"fs-1", uint64(i + 2)}] = fmt.Sprintf("%d/%s", math.MaxUint64-uint64(i), name)
	}
	want[handle{"fs-1", 100}] = strings.Repeat("d/", 2048) // longer than any locator
	put(t, h, want)
	expectHandles(t, h, "odd names", want)
}

func testHandlesIsolation(t *testing.T, h fsview.HandleStore) {
	inodes := []uint64{0, 1, 2, math.MaxInt64, 1 << 63, 1<<63 + 1, math.MaxUint64 - 1, math.MaxUint64}
	want := map[handle]string{}
	for _, fsID := range []string{"fs-1", "fs-2", "fs-10"} {
		for _, ino := range inodes {
			want[handle{fsID, ino}] = fmt.Sprintf("%s/%d", fsID, ino)
		}
	}
	put(t, h, want)
	expectHandles(t, h, "many entries", want)
	for _, k := range []handle{{"fs-1", 1 << 63}, {"fs-2", 0}, {"fs-10", math.MaxUint64}} {
		del(t, h, k)
		want[k] = ""
	}
	k := handle{"fs-1", math.MaxUint64}
	put(t, h, map[handle]string{k: "replaced"})
	want[k] = "replaced"
	expectHandles(t, h, "after deletes and a replace", want)
	expectHandles(t, h, "unknown file system", map[handle]string{{"fs-3", 1}: "", {"", 1}: "", {"fs-1x", 1}: ""})
}

func testHandlesConcurrent(t *testing.T, h fsview.HandleStore) {
	const workers, each = 8, 25
	var wg sync.WaitGroup
	errs := make(chan error, workers*each)
	for w := range workers {
		wg.Go(func() {
			for i := range each {
				ino := uint64(w*each + i)
				if err := h.PutHandle("fs-1", ino, fmt.Sprintf("%d/old", ino)); err != nil {
					errs <- err
				}
				if err := h.PutHandle("fs-1", ino, fmt.Sprintf("%d/new", ino)); err != nil {
					errs <- err
				}
				if p, ok, err := h.HandlePath("fs-1", ino); err != nil || !ok || p != fmt.Sprintf("%d/new", ino) {
					errs <- fmt.Errorf("HandlePath(%d) = %q, %v, %v", ino, p, ok, err)
				}
				if i%5 == 0 {
					if err := h.DeleteHandle("fs-1", ino); err != nil {
						errs <- err
					}
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	want := map[handle]string{}
	for ino := range uint64(workers * each) {
		want[handle{"fs-1", ino}] = fmt.Sprintf("%d/new", ino)
		if ino%each%5 == 0 {
			want[handle{"fs-1", ino}] = ""
		}
	}
	expectHandles(t, h, "after concurrent writers", want)
}

func testHandlesReopen(t *testing.T, h fsview.HandleStore, reopen func() fsview.HandleStore) {
	want := map[handle]string{{"fs-2", 1}: "1/kept", {"fs-1", 3}: "1/first", {"fs-1", 4}: "1/gone"}
	for i, name := range oddNames {
		want[handle{"fs-1", uint64(10 + i)}] = "3/" + name
	}
	put(t, h, want)
	put(t, h, map[handle]string{{"fs-1", 3}: "2/second"})
	del(t, h, handle{"fs-1", 4})
	want[handle{"fs-1", 3}], want[handle{"fs-1", 4}] = "2/second", ""
	h = reopen()
	expectHandles(t, h, "after reopening", want)
}
