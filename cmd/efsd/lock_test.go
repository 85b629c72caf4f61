package main

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// TestSecondProcessOnDataDirExits: a second efsd on a data directory that a
// running efsd holds exits at once, naming the directory and the holder's PID;
// once the first is gone, the directory is free again.
func TestSecondProcessOnDataDirExits(t *testing.T) {
	bin := buildBinary(t)
	dir := t.TempDir()
	first, _ := startBinary(t, bin, dir)

	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, bin, "--listen", "127.0.0.1:0", "--data-dir", dir).CombinedOutput()
	if ctx.Err() != nil {
		t.Fatal("the second efsd did not exit")
	}
	if err == nil {
		t.Fatalf("the second efsd exited 0:\n%s", out)
	}
	for _, want := range []string{dir, "in use by another efsd", "pid " + strconv.Itoa(first.Process.Pid)} {
		if !strings.Contains(string(out), want) {
			t.Errorf("second efsd's error lacks %q:\n%s", want, out)
		}
	}

	first.Process.Kill() // a crash leaves no stale lock
	first.Wait()
	startBinary(t, bin, dir)
}

// A data directory that cannot be made or written is named in the error
// with the OS's reason.
func TestUnusableDataDirNamed(t *testing.T) {
	file := filepath.Join(t.TempDir(), "file")
	if err := os.WriteFile(file, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	m := &Main{Stdout: &out, Stderr: &out, Getenv: func(string) string { return "" }}
	err := m.Run(context.Background(), []string{"--listen", "127.0.0.1:0", "--data-dir", filepath.Join(file, "data")})
	if err == nil || !strings.Contains(err.Error(), file) || !strings.Contains(err.Error(), "not a directory") {
		t.Fatalf("error %v, want one naming %s and the OS's reason", err, file)
	}
}
