package main

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/efsd/efsd/bench/internal/loadgen"
)

// fdExhaustion: more idle TCP connections than efsd has descriptors, to
// its API port and then to a mount target's NFS port, all held at once.
// efsd runs with a known RLIMIT_NOFILE. The normal client must still be
// served while they are held, and once they are closed the mount target
// must accept again and be reported available. The connections are held
// by child processes of this program, each within its own descriptor
// limit.
func (h *harness) fdExhaustion() result {
	limit := pick(h, 20_000, 1_500)
	conns := pick(h, 21_000, 2_000)
	limit = min(limit, nofile())
	r := result{held: true, scale: fmt.Sprintf("%d idle connections to the API and %d to an NFS port, efsd RLIMIT_NOFILE %d", conns, conns, limit)}
	in, t, err := h.startWithMount("fd-exhaustion", efsdOpts{nofile: limit})
	if err != nil {
		r.fail("setup: %v", err)
		return r
	}
	defer in.stop()
	var holders []*holder
	defer func() {
		for _, hd := range holders {
			hd.stop()
		}
	}()
	perHolder := max(nofile()-500, 1000)
	peakFDs := 0
	for _, target := range []struct{ what, addr string }{{"API", in.apiAddr}, {"NFS", t.addr}} {
		t0 := time.Now()
		k := (conns + perHolder - 1) / perHolder
		opened, failed := 0, 0
		for i := range k {
			want := conns / k
			if i == k-1 {
				want = conns - (k-1)*(conns/k)
			}
			hd, err := h.startHolder(target.addr, want)
			if err != nil {
				r.fail("attacker: %v", err)
				return r
			}
			hd.target = target.what
			holders = append(holders, hd)
			opened += hd.opened
			failed += hd.failed
		}
		peakFDs = max(peakFDs, countFDs(in.proc.PID))
		logf("  %s: %d connections open, %d failed, in %s; efsd has %d descriptors", target.what, opened, failed,
			time.Since(t0).Round(time.Second), countFDs(in.proc.PID))
		r.fig("%s: %d connected, %d refused/timed out", target.what, opened, failed)
	}
	// The normal client while every attacking connection is held.
	if lat, err := in.normalAPI(devAcct, 30*time.Second); err != nil {
		r.fail("normal API client during the attack: %v", err)
	} else {
		r.fig("normal API during %s", ms(lat))
	}
	if lat, err := t.normalNFS(h, 30*time.Second); err != nil {
		r.fail("normal NFS client during the attack: %v", err)
	} else {
		r.fig("normal NFS during %s", ms(lat))
	}
	peakFDs = max(peakFDs, countFDs(in.proc.PID))
	shed := map[string]int{}
	for _, hd := range holders {
		shed[hd.target] += hd.closedByPeer()
	}
	r.fig("attacking connections closed by efsd: API %d, NFS %d; efsd peak %d descriptors", shed["API"], shed["NFS"], peakFDs)
	for _, hd := range holders {
		hd.stop()
	}
	holders = nil
	if ok, why := in.alive(); !ok {
		r.fail("%s", why)
		return r
	}
	// After the attack: the mount target serves again and says so.
	_, nfsErr := t.normalNFS(h, 30*time.Second)
	if nfsErr != nil {
		r.fail("NFS after the attack: %v", nfsErr)
	} else {
		r.fig("NFS after: ok")
	}
	if _, err := in.normalAPI(devAcct, 30*time.Second); err != nil {
		r.fail("normal API client after the attack: %v", err)
	}
	if err := in.mountTargetAvailable(in.normalClient(devAcct), t.mtID, 30*time.Second); err != nil {
		r.fail("mount target after the attack: %v", err)
	} else if nfsErr != nil {
		r.fail("the mount target is reported available while its NFS server does not answer")
	}
	r.fig("peak RSS %s", mb(in.peak()))
	return r
}

const holdArg = "__hold"

// holder is a child process holding idle connections.
type holder struct {
	cmd            *exec.Cmd
	in             io.WriteCloser
	out            *bufio.Reader
	opened, failed int
	target         string // API or NFS
	ctx            context.Context
}

// startHolder starts a child holding up to n idle connections to addr,
// and waits until it has opened them.
func (h *harness) startHolder(addr string, n int) (*holder, error) {
	cmd := exec.Command(filepath.Join(h.work, "bin", "efsattack"), holdArg, addr, strconv.Itoa(n))
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	cmd.Stderr = os.Stderr
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return nil, err
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	hd := &holder{cmd: cmd, in: stdin, out: bufio.NewReader(stdout), ctx: h.ctx}
	line, err := hd.readLine(5 * time.Minute)
	if err == nil {
		_, err = fmt.Sscanf(line, "opened %d failed %d", &hd.opened, &hd.failed)
	}
	if err != nil {
		hd.stop()
		return nil, fmt.Errorf("holder: %v", err)
	}
	return hd, nil
}

func (hd *holder) readLine(limit time.Duration) (string, error) {
	type res struct {
		s   string
		err error
	}
	ch := make(chan res, 1)
	go func() {
		s, err := hd.out.ReadString('\n')
		ch <- res{s, err}
	}()
	select {
	case r := <-ch:
		return r.s, r.err
	case <-time.After(limit):
		return "", fmt.Errorf("no answer within %v", limit)
	case <-hd.ctx.Done():
		return "", hd.ctx.Err()
	}
}

// closedByPeer asks how many of the held connections the server closed.
func (hd *holder) closedByPeer() int {
	if _, err := io.WriteString(hd.in, "closed\n"); err != nil {
		return 0
	}
	line, err := hd.readLine(time.Minute)
	n := 0
	if err == nil {
		fmt.Sscanf(line, "closed %d", &n)
	}
	return n
}

// stop closes the child's stdin (it then closes its connections and
// exits) and kills it by PID if it does not.
func (hd *holder) stop() {
	if hd.cmd.ProcessState != nil {
		return
	}
	hd.in.Close()
	done := make(chan struct{})
	go func() { hd.cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		hd.cmd.Process.Kill()
		<-done
	}
}

// holdMain is the holder child: open the connections, report, answer
// "closed" queries, exit when stdin closes.
func holdMain(addr, count string) int {
	n, err := strconv.Atoi(count)
	if err != nil {
		return 2
	}
	if err := raiseNofile(); err != nil {
		fmt.Fprintln(os.Stderr, err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	conns, failed := openIdle(ctx, addr, n, 3*time.Minute)
	fmt.Printf("opened %d failed %d\n", len(conns), failed)
	sc := bufio.NewScanner(os.Stdin)
	for sc.Scan() && ctx.Err() == nil {
		closed := 0
		for _, c := range conns {
			c.SetReadDeadline(time.Now().Add(time.Millisecond))
			if _, err := c.Read(make([]byte, 1)); err != nil && !isTimeout(err) {
				closed++
			}
		}
		fmt.Printf("closed %d\n", closed)
	}
	for _, c := range conns {
		c.Close()
	}
	return 0
}

// openIdle opens up to n idle connections to addr, bounded by limit and
// by giving up after many failures (a full backlog makes every further
// connect time out).
func openIdle(ctx context.Context, addr string, n int, limit time.Duration) ([]net.Conn, int) {
	ctx, cancel := context.WithTimeout(ctx, limit)
	defer cancel()
	var (
		mu     sync.Mutex
		out    []net.Conn
		next   atomic.Int64
		failed atomic.Int64
		wg     sync.WaitGroup
	)
	d := net.Dialer{Timeout: 1500 * time.Millisecond, Control: loadgen.LoopbackOnly}
	for range 256 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for ctx.Err() == nil && failed.Load() < 2000 {
				if int(next.Add(1)) > n {
					return
				}
				c, err := d.DialContext(ctx, "tcp", addr)
				if err != nil {
					failed.Add(1)
					continue
				}
				mu.Lock()
				out = append(out, c)
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	return out, int(failed.Load())
}

func countFDs(pid int) int {
	es, _ := os.ReadDir(fmt.Sprintf("/proc/%d/fd", pid))
	return len(es)
}
