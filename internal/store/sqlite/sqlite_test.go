package sqlite_test

import (
	"path/filepath"
	"testing"

	"github.com/efsd/efsd/internal/efs"
	"github.com/efsd/efsd/internal/store/sqlite"
	"github.com/efsd/efsd/internal/store/storetest"
)

func TestConformance(t *testing.T) {
	storetest.Run(t, func(t *testing.T) efs.Store {
		s, err := sqlite.Open(filepath.Join(t.TempDir(), "efsd.db"))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { s.Close() })
		return s
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
