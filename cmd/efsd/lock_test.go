package main

import (
	"context"
	"os/exec"
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
