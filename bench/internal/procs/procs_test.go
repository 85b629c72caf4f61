package procs

import (
	"path/filepath"
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
