package sqlite_test

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"sync"
	"testing"

	"github.com/efsd/efsd/internal/efs"
	"github.com/efsd/efsd/internal/fsview"
	"github.com/efsd/efsd/internal/store/sqlite"
	"github.com/efsd/efsd/internal/store/storetest"
)

// open opens the database at path for the length of the test.
func open(t *testing.T, path string) *sqlite.Store {
	t.Helper()
	s, err := sqlite.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func TestConformance(t *testing.T) {
	storetest.Run(t, func(t *testing.T) efs.Store { return open(t, filepath.Join(t.TempDir(), "efsd.db")) })
}

func TestHandleStoreConformance(t *testing.T) {
	storetest.RunHandles(t, func(t *testing.T) (fsview.HandleStore, func() fsview.HandleStore) {
		path := filepath.Join(t.TempDir(), "efsd.db")
		s := open(t, path)
		return s, func() fsview.HandleStore {
			if err := s.Close(); err != nil {
				t.Fatal(err)
			}
			s = open(t, path)
			return s
		}
	})
}

func TestReopenKeepsMigrations(t *testing.T) {
	path := filepath.Join(t.TempDir(), "efsd.db")
	for range 2 {
		s, err := sqlite.Open(path)
		if err != nil {
			t.Fatal(err)
		}
		s.Close()
	}
}

// Concurrent writes share commits; one failing (or panicking) write is
// rolled back alone.
func TestGroupCommit(t *testing.T) {
	s, err := sqlite.Open(filepath.Join(t.TempDir(), "efsd.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	ctx := context.Background()
	const n = 200
	errs := make(chan error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs <- s.Update(ctx, func(tx efs.Tx) error {
				if err := tx.InsertFileSystem(&efs.FileSystem{ID: fmt.Sprintf("fs-%08x", i), Account: "1", Region: "r",
					CreationToken: fmt.Sprint(i)}); err != nil {
					return err
				}
				switch i % 10 {
				case 3:
					return errors.New("refused")
				case 7:
					panic("boom")
				}
				return nil
			})
		}()
	}
	wg.Wait()
	close(errs)
	failed := 0
	for err := range errs {
		if err != nil {
			failed++
		}
	}
	var count int
	s.View(ctx, func(tx efs.Tx) error { count, err = tx.CountFileSystems("1", "r"); return err })
	if failed != n/5 || count != n-n/5 {
		t.Fatalf("%d failed, %d stored; want %d and %d", failed, count, n/5, n-n/5)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if err := s.Update(ctx, func(efs.Tx) error { return nil }); err == nil {
		t.Fatal("update after Close succeeded")
	}
}
