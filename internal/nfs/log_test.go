package nfs

import (
	"bufio"
	"bytes"
	"encoding/json"
	"log/slog"
	"testing"

	gonfs "github.com/willscott/go-nfs"
)

// logLine finds the line with msg among JSON log lines (other tests' servers may log too).
func logLine(t *testing.T, b *bytes.Buffer, msg string) (level string, ok bool) {
	t.Helper()
	sc := bufio.NewScanner(bytes.NewReader(b.Bytes()))
	for sc.Scan() {
		var line struct{ Level, Msg string }
		if err := json.Unmarshal(sc.Bytes(), &line); err != nil {
			t.Fatalf("not a line of the installed JSON logger: %q (%v)", sc.Text(), err)
		}
		if line.Msg == msg {
			return line.Level, true
		}
	}
	return "", false
}

// TestGoNFSLogsThroughInstalledLogger checks that go-nfs's own output (gonfs.Log, which its
// handlers call) comes out of the logger the daemon installs, in its format and at its level.
func TestGoNFSLogsThroughInstalledLogger(t *testing.T) {
	defer InstallGoNFSLogger(slog.Default())

	var debug, info bytes.Buffer
	InstallGoNFSLogger(slog.New(slog.NewJSONHandler(&debug, &slog.HandlerOptions{Level: slog.LevelDebug})))
	gonfs.Log.Errorf("Error Creating: %v", "file exists")
	if level, ok := logLine(t, &debug, "go-nfs: Error Creating: file exists"); !ok || level != "DEBUG" {
		t.Errorf("go-nfs's refusal: found %v at level %q in %q, want a DEBUG line", ok, level, debug.String())
	}

	InstallGoNFSLogger(slog.New(slog.NewJSONHandler(&info, &slog.HandlerOptions{Level: slog.LevelInfo})))
	gonfs.Log.Errorf("refused request")
	gonfs.Log.Tracef("request: %v", "every call")
	for _, msg := range []string{"go-nfs: refused request", "go-nfs: request: every call"} {
		if _, ok := logLine(t, &info, msg); ok {
			t.Errorf("at level info, %q still logged", msg)
		}
	}
	gonfs.Log.Panicf("broken: %d", 1)
	if level, ok := logLine(t, &info, "go-nfs: broken: 1"); !ok || level != "ERROR" {
		t.Errorf("go-nfs's panic: found %v at level %q in %q, want an ERROR line", ok, level, info.String())
	}
}
