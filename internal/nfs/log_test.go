package nfs

import (
	"bytes"
	"encoding/json"
	"log/slog"
	"testing"

	gonfs "github.com/willscott/go-nfs"
)

// TestGoNFSLogsThroughInstalledLogger checks that go-nfs's own output (gonfs.Log, which its
// handlers call) comes out of the logger the daemon installs, in its format and at its level.
func TestGoNFSLogsThroughInstalledLogger(t *testing.T) {
	defer InstallGoNFSLogger(slog.Default())

	var debug, info bytes.Buffer
	InstallGoNFSLogger(slog.New(slog.NewJSONHandler(&debug, &slog.HandlerOptions{Level: slog.LevelDebug})))
	gonfs.Log.Errorf("Error Creating: %v", "file exists")
	var line struct{ Level, Msg string }
	if err := json.Unmarshal(debug.Bytes(), &line); err != nil {
		t.Fatalf("go-nfs's line is not the installed JSON logger's: %q (%v)", debug.String(), err)
	}
	if line.Level != "DEBUG" || line.Msg != "go-nfs: Error Creating: file exists" {
		t.Errorf("go-nfs's line = %+v, want DEBUG \"go-nfs: Error Creating: file exists\"", line)
	}

	InstallGoNFSLogger(slog.New(slog.NewJSONHandler(&info, &slog.HandlerOptions{Level: slog.LevelInfo})))
	gonfs.Log.Errorf("refused request")
	gonfs.Log.Tracef("request: %v", "every call")
	if info.Len() != 0 {
		t.Errorf("at level info, go-nfs's refusals and traces still logged: %q", info.String())
	}
	gonfs.Log.Panicf("broken: %d", 1)
	if err := json.Unmarshal(info.Bytes(), &line); err != nil || line.Level != "ERROR" || line.Msg != "go-nfs: broken: 1" {
		t.Errorf("go-nfs's panic line = %q, want an ERROR line", info.String())
	}
}
