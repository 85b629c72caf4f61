// Package procs starts the processes the harness measures, reads their CPU
// time and memory from /proc, and stops each one by its PID. Every process
// started is remembered until stopped, so that StopAll (called on every
// exit path of the harness, including a signal or the global deadline)
// leaves nothing running.
package procs

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// Proc is a started process.
type Proc struct {
	Name  string
	Cmd   *exec.Cmd
	PID   int
	Start time.Time // just before exec
	Log   string    // file receiving stdout and stderr

	logf *os.File
	done chan struct{}
	err  error // of Wait, valid after done
}

var (
	mu      sync.Mutex
	running = map[int]*Proc{}
)

// Start runs name with args, stdout and stderr appended to logPath. The
// process gets its own process group so that a stop signal reaches
// nothing else, and it is killed if the harness dies (Pdeathsig).
func Start(name, logPath string, env []string, args ...string) (*Proc, error) {
	f, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(name, args...)
	cmd.Stdout, cmd.Stderr = f, f
	if env != nil {
		cmd.Env = append(os.Environ(), env...)
	}
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	p := &Proc{Name: name, Cmd: cmd, Log: logPath, logf: f, done: make(chan struct{})}
	p.Start = time.Now()
	if err := cmd.Start(); err != nil {
		f.Close()
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	p.PID = cmd.Process.Pid
	mu.Lock()
	running[p.PID] = p
	mu.Unlock()
	go func() {
		p.err = cmd.Wait()
		f.Close()
		mu.Lock()
		delete(running, p.PID)
		mu.Unlock()
		close(p.done)
	}()
	return p, nil
}

// Exited reports whether the process has ended.
func (p *Proc) Exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// Stop sends SIGTERM to the process (by PID), waits up to grace for it to
// exit, then sends SIGKILL and waits for it.
func (p *Proc) Stop(grace time.Duration) error {
	if p.Exited() {
		return nil
	}
	_ = syscall.Kill(p.PID, syscall.SIGTERM)
	t := time.NewTimer(grace)
	defer t.Stop()
	select {
	case <-p.done:
		return nil
	case <-t.C:
	}
	_ = syscall.Kill(p.PID, syscall.SIGKILL)
	select {
	case <-p.done:
		return fmt.Errorf("%s (pid %d) ignored SIGTERM for %v; killed", p.Name, p.PID, grace)
	case <-time.After(10 * time.Second):
		return fmt.Errorf("%s (pid %d) did not exit after SIGKILL", p.Name, p.PID)
	}
}

// StopAll stops every process started and not yet exited, by PID.
func StopAll() {
	mu.Lock()
	ps := make([]*Proc, 0, len(running))
	for _, p := range running {
		ps = append(ps, p)
	}
	mu.Unlock()
	for _, p := range ps {
		_ = p.Stop(5 * time.Second)
	}
}

// Usage is a process's CPU time and memory as /proc reports them.
type Usage struct {
	CPU     float64 // user+system seconds
	RSS     int64   // current resident set, bytes
	PeakRSS int64   // VmHWM, bytes
}

// clkTck is USER_HZ, which is 100 on every Linux architecture Go supports.
const clkTck = 100

// ReadUsage reads /proc/PID/stat and /proc/PID/status.
func ReadUsage(pid int) (Usage, error) {
	var u Usage
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return u, err
	}
	u.CPU, err = parseStatCPU(string(b))
	if err != nil {
		return u, err
	}
	b, err = os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return u, err
	}
	u.RSS, u.PeakRSS = parseStatusMem(string(b))
	return u, nil
}

// ReadFamilyCPU is a process's user+system CPU seconds plus those of
// the children it has waited for (cutime+cstime): a daemon's, such as
// rsync's, which forks a process per connection.
func ReadFamilyCPU(pid int) (float64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, err
	}
	return parseStatFamilyCPU(string(b))
}

// WaitChildless waits until pid has no child process (a daemon reaped
// the one that served a connection), or limit passes.
func WaitChildless(pid int, limit time.Duration) error {
	alive := func() error { return nil }
	return Poll(limit, 2*time.Millisecond, fmt.Sprintf("process %d without children", pid), alive, func() (bool, error) {
		return len(descendants(pid)) == 1, nil
	})
}

// parseStatFamilyCPU returns utime+stime+cutime+cstime in seconds from a
// /proc/PID/stat line.
func parseStatFamilyCPU(s string) (float64, error) { return statTicks(s, 4) }

// parseStatCPU returns utime+stime in seconds from a /proc/PID/stat line.
func parseStatCPU(s string) (float64, error) { return statTicks(s, 2) }

// statTicks adds up the n fields of a /proc/PID/stat line from utime
// (field 14: utime, stime, cutime, cstime), in seconds. The command name
// (field 2) may contain spaces and parentheses, so fields are counted
// from the last ')'.
func statTicks(s string, n int) (float64, error) {
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return 0, errors.New("malformed stat")
	}
	f := strings.Fields(s[i+1:])
	// f[0] is field 3 (state), so field 14 is f[11].
	if len(f) < 11+n {
		return 0, errors.New("short stat")
	}
	var sum int64
	for _, x := range f[11 : 11+n] {
		v, err := strconv.ParseInt(x, 10, 64)
		if err != nil {
			return 0, err
		}
		sum += v
	}
	return float64(sum) / clkTck, nil
}

// parseStatusMem returns VmRSS and VmHWM in bytes.
func parseStatusMem(s string) (rss, hwm int64) {
	for _, line := range strings.Split(s, "\n") {
		k, v, ok := strings.Cut(line, ":")
		if !ok || (k != "VmRSS" && k != "VmHWM") {
			continue
		}
		f := strings.Fields(v)
		if len(f) == 0 {
			continue
		}
		n, _ := strconv.ParseInt(f[0], 10, 64)
		if k == "VmRSS" {
			rss = n << 10
		} else {
			hwm = n << 10
		}
	}
	return rss, hwm
}

// ChildCPU returns the CPU seconds of a finished command, including the
// descendants it waited for (rsync's receiver).
func ChildCPU(ps *os.ProcessState) float64 {
	return (ps.UserTime() + ps.SystemTime()).Seconds()
}

// TreePeak samples the peak RSS (VmHWM) of a process and of every
// descendant it has while it runs, every interval, until Stop. Peak
// memory from wait4's rusage is useless for a child of a Go program: Go
// starts children with vfork semantics, so the kernel charges the
// parent's own high-water mark to the child at exec.
type TreePeak struct {
	pid  int
	mu   sync.Mutex
	peak map[int]int64
	stop chan struct{}
	done chan struct{}
}

// WatchTree starts sampling pid and its descendants.
func WatchTree(pid int, interval time.Duration) *TreePeak {
	t := &TreePeak{pid: pid, peak: map[int]int64{}, stop: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(t.done)
		tick := time.NewTicker(interval)
		defer tick.Stop()
		for {
			t.sample()
			select {
			case <-t.stop:
				return
			case <-tick.C:
			}
		}
	}()
	return t
}

func (t *TreePeak) sample() {
	for _, p := range descendants(t.pid) {
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", p))
		if err != nil {
			continue
		}
		_, hwm := parseStatusMem(string(b))
		t.mu.Lock()
		t.peak[p] = max(t.peak[p], hwm)
		t.mu.Unlock()
	}
}

// Stop ends sampling and returns the largest peak of any one process and
// the sum of every process's peak (an upper bound of their peak total).
func (t *TreePeak) Stop() (maxOne, sum int64) {
	close(t.stop)
	<-t.done
	t.mu.Lock()
	defer t.mu.Unlock()
	for _, v := range t.peak {
		maxOne = max(maxOne, v)
		sum += v
	}
	return maxOne, sum
}

// descendants returns pid and all its descendants, from
// /proc/PID/task/TID/children.
func descendants(pid int) []int {
	out := []int{pid}
	for i := 0; i < len(out) && i < 1000; i++ {
		tasks, _ := os.ReadDir(fmt.Sprintf("/proc/%d/task", out[i]))
		for _, tk := range tasks {
			b, err := os.ReadFile(fmt.Sprintf("/proc/%d/task/%s/children", out[i], tk.Name()))
			if err != nil {
				continue
			}
			for _, f := range strings.Fields(string(b)) {
				if c, err := strconv.Atoi(f); err == nil {
					out = append(out, c)
				}
			}
		}
	}
	return out
}

// Machine is the whole machine's CPU time from /proc/stat, in seconds
// summed over CPUs: Busy is user+nice+system+irq+softirq (guest time is
// inside user), Steal is time the hypervisor gave to someone else.
type Machine struct {
	Busy, Steal float64
}

// ReadMachine reads the first line of /proc/stat.
func ReadMachine() Machine {
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return Machine{}
	}
	line, _, _ := strings.Cut(string(b), "\n")
	return parseProcStat(line)
}

func parseProcStat(line string) Machine {
	f := strings.Fields(line)
	if len(f) < 9 || f[0] != "cpu" {
		return Machine{}
	}
	v := make([]float64, len(f))
	for i := 1; i < len(f); i++ {
		n, _ := strconv.ParseInt(f[i], 10, 64)
		v[i] = float64(n) / clkTck
	}
	// user nice system idle iowait irq softirq steal ...
	return Machine{Busy: v[1] + v[2] + v[3] + v[6] + v[7], Steal: v[8]}
}

// Sub returns m − o.
func (m Machine) Sub(o Machine) Machine {
	return Machine{Busy: m.Busy - o.Busy, Steal: m.Steal - o.Steal}
}

// ModuleRoot is the directory of the Go module the harness runs in (it
// builds efsd from there); tool names the harness in the error.
func ModuleRoot(tool string) (string, error) {
	out, err := exec.Command("go", "env", "GOMOD").Output()
	if err != nil {
		return "", fmt.Errorf("go env GOMOD: %w", err)
	}
	mod := strings.TrimSpace(string(out))
	if mod == "" || mod == os.DevNull {
		return "", fmt.Errorf("run %s from inside the efsd module", tool)
	}
	return filepath.Dir(mod), nil
}

// Poll calls cond every interval until it is true, alive or cond fails
// with an error that is not retryable (alive's), or limit passes. cond's
// own error is retried and reported if time runs out.
func Poll(limit, interval time.Duration, what string, alive func() error, cond func() (bool, error)) error {
	deadline := time.Now().Add(limit)
	var last error
	for {
		if err := alive(); err != nil {
			return err
		}
		ok, err := cond()
		if ok {
			return nil
		}
		last = err
		if time.Now().After(deadline) {
			return fmt.Errorf("timed out after %v waiting for %s (last error: %v)", limit, what, last)
		}
		time.Sleep(interval)
	}
}
