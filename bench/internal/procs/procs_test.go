package procs

import (
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

func TestParseStatCPU(t *testing.T) {
	line := "1234 (my (odd) name) S 1 1234 1234 0 -1 4194560 100 0 0 0 250 50 0 0 20 0 1 0 100 1000 10"
	cpu, err := parseStatCPU(line)
	if err != nil || cpu != 3.0 {
		t.Fatalf("cpu %v, err %v", cpu, err)
	}
	if _, err := parseStatCPU("garbage"); err == nil {
		t.Error("want error")
	}
}

func TestParseStatFamilyCPU(t *testing.T) {
	line := "1234 (my (odd) name) S 1 1234 1234 0 -1 4194560 100 0 0 0 250 50 70 30 20 0 1 0 100 1000 10"
	cpu, err := parseStatFamilyCPU(line)
	if err != nil || cpu != 4.0 {
		t.Fatalf("cpu %v, err %v", cpu, err)
	}
	if _, err := parseStatFamilyCPU("1 (x) S 1 2"); err == nil {
		t.Error("want error")
	}
}

// TestFamilyCPU: the CPU of a child a process waited for shows in its
// family's CPU, not in its own.
func TestFamilyCPU(t *testing.T) {
	p, err := Start("sh", filepath.Join(t.TempDir(), "log"), nil, "-c",
		"sh -c 'i=0; while [ $i -lt 300000 ]; do i=$((i+1)); done'; exec sleep 30")
	if err != nil {
		t.Fatal(err)
	}
	defer p.Stop(time.Second)
	// Childless once the loop's shell was reaped and sleep took over.
	if err := Poll(20*time.Second, 10*time.Millisecond, "sleep", func() error { return nil }, func() (bool, error) {
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/comm", p.PID))
		return err == nil && strings.TrimSpace(string(b)) == "sleep", nil
	}); err != nil {
		t.Fatal(err)
	}
	if err := WaitChildless(p.PID, 10*time.Second); err != nil {
		t.Fatal(err)
	}
	family, err := ReadFamilyCPU(p.PID)
	if err != nil {
		t.Fatal(err)
	}
	own, err := ReadUsage(p.PID)
	if err != nil {
		t.Fatal(err)
	}
	if family-own.CPU < 0.05 {
		t.Fatalf("family %.2fs, own %.2fs: the child's loop is not counted", family, own.CPU)
	}
}

func TestParseStatusMem(t *testing.T) {
	rss, hwm := parseStatusMem("Name:\tx\nVmHWM:\t   2048 kB\nVmRSS:\t   1024 kB\n")
	if rss != 1<<20 || hwm != 2<<20 {
		t.Fatalf("rss %d hwm %d", rss, hwm)
	}
}

func TestStartStop(t *testing.T) {
	p, err := Start("sleep", filepath.Join(t.TempDir(), "log"), nil, "30")
	if err != nil {
		t.Fatal(err)
	}
	u, err := ReadUsage(p.PID)
	if err != nil || u.PeakRSS <= 0 {
		t.Fatalf("usage %+v, err %v", u, err)
	}
	if err := p.Stop(5 * time.Second); err != nil {
		t.Fatal(err)
	}
	if !p.Exited() {
		t.Fatal("still running")
	}
	mu.Lock()
	n := len(running)
	mu.Unlock()
	if n != 0 {
		t.Fatalf("%d processes still registered", n)
	}
	StopAll()
}

func TestWatchTree(t *testing.T) {
	p, err := Start("sh", filepath.Join(t.TempDir(), "log"), nil, "-c", "sleep 30 & wait")
	if err != nil {
		t.Fatal(err)
	}
	defer p.Stop(5 * time.Second)
	w := WatchTree(p.PID, 10*time.Millisecond)
	deadline := time.Now().Add(5 * time.Second)
	for len(descendants(p.PID)) < 2 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	time.Sleep(30 * time.Millisecond)
	one, sum := w.Stop()
	if one <= 0 || sum < one {
		t.Fatalf("peak %d, sum %d", one, sum)
	}
	if n := len(descendants(p.PID)); n < 2 {
		t.Fatalf("saw %d processes, want the shell and its sleep", n)
	}
	// Stopping the shell leaves its sleep to init; kill it by its PID.
	for _, c := range descendants(p.PID)[1:] {
		syscall.Kill(c, syscall.SIGKILL)
	}
}

func TestParseProcStat(t *testing.T) {
	m := parseProcStat("cpu  100 10 200 5000 70 3 7 40 0 0")
	if math.Abs(m.Busy-3.2) > 1e-9 || math.Abs(m.Steal-0.4) > 1e-9 {
		t.Fatalf("%+v", m)
	}
	if ReadMachine().Busy <= 0 {
		t.Fatal("no busy time on this machine?")
	}
}
