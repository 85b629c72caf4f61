package replication

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"unicode"
	"unicode/utf8"

	"github.com/efsd/efsd/internal/efs"
	"github.com/efsd/efsd/internal/remotesync"
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

// A source's status report is checked before anything is recorded: a
// status other than PAUSED or ERROR, no message, a negative retry, JSON
// that does not parse or a body over its bound is a protocol error.
func TestSourceStatusChecked(t *testing.T) {
	m := newTestManager(t, Options{NoWatch: true})
	rc := &receiver{}
	long := `{"status":"PAUSED","message":"` + strings.Repeat("x", maxStatusBody) + `"}`
	for _, body := range []string{`{`, `{"status":"ENABLED","message":"m"}`, `{"status":"PAUSED"}`,
		`{"status":"ERROR","message":"m","retryIn":-1}`, long} {
		err := m.sourceFailed(context.Background(), rc, "a", "rep-0123456789abcdef0", strings.NewReader(body))
		if remotesync.ErrorCode(err) != remotesync.CodeProtocol {
			t.Errorf("%.40s: %v, want a protocol error", body, err)
		}
	}
	// A well-formed one reaches the store (which has no such configuration).
	err := m.sourceFailed(context.Background(), rc, "a", "rep-0123456789abcdef0", strings.NewReader(`{"status":"ERROR","message":"m","retryIn":1000}`))
	if !errors.Is(err, efs.ErrReplicationGone) {
		t.Errorf("well-formed: %v", err)
	}

	got := reportedBy("a", "one\nline\x00\xff"+strings.Repeat("é", 2*maxStatusMessage))
	if strings.ContainsFunc(got, unicode.IsControl) || !utf8.ValidString(got) ||
		!strings.HasPrefix(got, "The source deployment 'a' reports: one line \uFFFD") ||
		utf8.RuneCountInString(got) > maxStatusMessage+100 {
		t.Errorf("reportedBy: %.80q (%d characters)", got, utf8.RuneCountInString(got))
	}
}
