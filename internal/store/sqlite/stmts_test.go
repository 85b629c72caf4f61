package sqlite

import (
	"context"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/efsd/efsd/internal/efs"
)

func cached(c *stmtCache) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.m)
}

// Queries run by a transaction are prepared after it, once per database,
// and later transactions run the prepared statements.
func TestStatementsPreparedOnce(t *testing.T) {
	s, err := Open(filepath.Join(t.TempDir(), "efsd.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	ctx := context.Background()
	insert := func(id string) {
		t.Helper()
		err := s.Update(ctx, func(tx efs.Tx) error {
			return tx.InsertFileSystem(&efs.FileSystem{ID: id, Account: "1", Region: "r", CreationToken: id})
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	read := func(id string) {
		t.Helper()
		err := s.View(ctx, func(tx efs.Tx) error {
			fs, err := tx.FileSystem("1", "r", id)
			if err == nil && fs.ID != id {
				t.Errorf("read %s, got %s", id, fs.ID)
			}
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	insert("fs-1")
	read("fs-1")
	// The writer prepares after it has answered the batch that first ran a query: wait until it
	// has, and has stopped.
	for deadline, last := time.Now().Add(5*time.Second), -1; time.Now().Before(deadline); {
		n := cached(s.ws)
		if n > 0 && n == last {
			break
		}
		last = n
		time.Sleep(20 * time.Millisecond)
	}
	w, r := cached(s.ws), cached(s.rs)
	if w == 0 || r == 0 {
		t.Fatalf("after one write and one read: %d statements prepared on the writer, %d on the readers; want some on each", w, r)
	}
	insert("fs-2")
	read("fs-2")
	if w2, r2 := cached(s.ws), cached(s.rs); w2 != w || r2 != r {
		t.Errorf("the same queries again prepared more statements: writer %d → %d, readers %d → %d", w, w2, r, r2)
	}
}

// Many readers at once, more than the pool's connections, each running a
// query not prepared yet: preparing after a transaction must not wait on
// a connection held by a transaction that waits on the cache.
func TestStatementsPreparedUnderLoad(t *testing.T) {
	s, err := Open(filepath.Join(t.TempDir(), "efsd.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var wg sync.WaitGroup
	errs := make(chan error, 64)
	for i := range 64 {
		wg.Go(func() {
			for range 20 {
				err := s.View(ctx, func(tx efs.Tx) error {
					_, err := tx.CountFileSystems("1", "r")
					if err == nil {
						_, err = tx.FileSystems("1", "r", 0, 10)
					}
					return err
				})
				if err == nil && i%8 == 0 {
					err = s.Update(ctx, func(tx efs.Tx) error { return tx.PutAccountPreference("1", "r", "LONG_ID") })
				}
				if err != nil {
					errs <- err
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
}
