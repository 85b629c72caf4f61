package replication

import (
	"context"
	"fmt"
	"path/filepath"
	"testing"

	"github.com/efsd/efsd/internal/efs"
	"github.com/efsd/efsd/internal/store/sqlite"
)

// dirPaths places every file system under one directory.
type dirPaths string

func (d dirPaths) Path(k efs.FSKey) string {
	return filepath.Join(string(d), k.Account, k.Region, k.ID)
}

// newTestManager returns a Manager over an empty store: its workers wait
// for destinations that never appear, which is all a start/stop test needs.
func newTestManager(t *testing.T, o Options) *Manager {
	t.Helper()
	st, err := sqlite.Open(filepath.Join(t.TempDir(), "efsd.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	svc := efs.NewService(efs.Config{Store: st})
	return NewManager(svc, dirPaths(t.TempDir()), o)
}

// A worker stopped right after it was started (as at shutdown) must stop
// cleanly: its cancel function exists before its goroutine runs.
func TestWorkerStopRightAfterStart(t *testing.T) {
	m := newTestManager(t, Options{NoWatch: true})
	ctx := context.Background()
	for i := range 300 {
		r := &efs.Replication{ID: fmt.Sprintf("fs-%08d", i),
			Source: efs.FSKey{Account: "111111111111", Region: "us-east-1", ID: fmt.Sprintf("fs-s%07d", i)},
			Dest:   efs.FSKey{Account: "111111111111", Region: "us-east-1", ID: fmt.Sprintf("fs-d%07d", i)}}
		m.start(ctx, r)
		m.stop(r.ID)
	}
	m.stopAll()
}
