package netshape

import (
	"bytes"
	"crypto/rand"
	"io"
	"net"
	"sort"
	"sync"
	"testing"
	"time"
)

// echoServer echoes every connection until the client half-closes.
func echoServer(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	t.Cleanup(func() { ln.Close(); wg.Wait() })
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer c.Close()
				io.Copy(c, c)
				c.(*net.TCPConn).CloseWrite()
			}()
		}
	}()
	return ln.Addr().String()
}

// sinkServer reads every connection to the end, reports the bytes and
// the times of the first and last byte, and answers with reply bytes.
type sinkResult struct {
	n           int64
	first, last time.Time
	sum         []byte
}

func sinkServer(t *testing.T, reply []byte) (string, <-chan sinkResult) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	out := make(chan sinkResult, 16)
	var wg sync.WaitGroup
	t.Cleanup(func() { ln.Close(); wg.Wait() })
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer c.Close()
				var r sinkResult
				var all bytes.Buffer
				all.Grow(8 << 20)
				buf := make([]byte, 64<<10)
				for {
					n, err := c.Read(buf)
					if n > 0 {
						now := time.Now()
						if r.n == 0 {
							r.first = now
						}
						r.last = now
						r.n += int64(n)
						all.Write(buf[:n])
					}
					if err != nil {
						break
					}
				}
				r.sum = all.Bytes()
				c.Write(reply)
				out <- r
			}()
		}
	}()
	return ln.Addr().String(), out
}

func within(t *testing.T, what string, got, want, tol float64) {
	t.Helper()
	if got < want*(1-tol) || got > want*(1+tol) {
		t.Errorf("%s: got %.4g, want %.4g ± %.0f%%", what, got, want, tol*100)
	} else {
		t.Logf("%s: %.4g (want %.4g ± %.0f%%)", what, got, want, tol*100)
	}
}

// A round trip through the proxy takes twice the one-way delay.
func TestDelay(t *testing.T) {
	link := NewLink(Shape{Delay: 25 * time.Millisecond})
	p, err := link.Proxy(echoServer(t), false)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	c, err := net.Dial("tcp", p.Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	var rtts []float64
	msg, back := []byte("ping"), make([]byte, 4)
	for range 11 {
		t0 := time.Now()
		if _, err := c.Write(msg); err != nil {
			t.Fatal(err)
		}
		c.SetReadDeadline(time.Now().Add(5 * time.Second))
		if _, err := io.ReadFull(c, back); err != nil {
			t.Fatal(err)
		}
		rtts = append(rtts, time.Since(t0).Seconds())
	}
	// The quickest round trip shows what the proxy adds: on a busy machine
	// others may be late, but none may be early.
	sort.Float64s(rtts)
	within(t, "quickest round trip (s)", rtts[0], 0.050, 0.10)
	if rtts[0] < 0.050 {
		t.Errorf("a round trip took %.4fs, less than the 50 ms the delay adds", rtts[0])
	}
}

// A bulk transfer through a capped link takes bytes/rate, and every byte
// arrives, in order, counted once.
func TestRateAndCounts(t *testing.T) {
	const rate = 8_000_000 // bytes/s
	data := make([]byte, 4<<20+12345)
	rand.Read(data)
	// From the first write to the last byte: the bytes beyond the first
	// 32 KiB (the bucket's depth) at the rate, plus the delay.
	want := float64(len(data)-defaultBurst)/rate + 0.005
	timed(t, "transfer time (s)", want, func() (float64, float64) { return rateOnce(t, data, rate) })
}

// timed runs a timed transfer and checks its time against want. Never
// may it be faster than want − 10%. It may be slower by 10% plus the
// link's slack (the machine may be shared, and a sender or writer that is
// not scheduled is not the shaper's doing); up to three attempts are made
// for the upper bound.
func timed(t *testing.T, what string, want float64, run func() (got, slack float64)) {
	t.Helper()
	var got, slack float64
	for attempt := range 3 {
		got, slack = run()
		if got < want*0.9 {
			t.Fatalf("%s: %.4fs, faster than the shape allows (%.4fs)", what, got, want)
		}
		if got <= want*1.1+slack {
			t.Logf("%s: %.4fs (want %.4fs, +10%% and %.4fs slack allowed)", what, got, want, slack)
			return
		}
		t.Logf("attempt %d: %.4fs, more than 10%% over %.4fs with %.4fs slack", attempt, got, want, slack)
	}
	t.Errorf("%s: got %.4fs, want %.4fs ± 10%% (+%.4fs slack)", what, got, want, slack)
}

func rateOnce(t *testing.T, data []byte, rate int64) (took, slack float64) {
	reply := []byte("done: 12345")
	addr, results := sinkServer(t, reply)
	link := NewLink(Shape{Delay: 5 * time.Millisecond, Rate: rate})
	p, err := link.Proxy(addr, false)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	c, err := net.Dial("tcp", p.Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	// Write in uneven pieces.
	t0 := time.Now()
	for off := 0; off < len(data); {
		n := min(len(data)-off, 1000+off%70000)
		if _, err := c.Write(data[off : off+n]); err != nil {
			t.Fatal(err)
		}
		off += n
	}
	c.(*net.TCPConn).CloseWrite()
	got, err := io.ReadAll(c)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, reply) {
		t.Fatalf("reply %q, want %q", got, reply)
	}
	var r sinkResult
	select {
	case r = <-results:
	case <-time.After(10 * time.Second):
		t.Fatal("server saw no end of stream")
	}
	if !bytes.Equal(r.sum, data) {
		t.Fatalf("server received %d bytes, not the %d sent (or not in order)", len(r.sum), len(data))
	}
	fwd, back := link.Bytes()
	if fwd != int64(len(data)) || back != int64(len(reply)) {
		t.Errorf("counted %d forward and %d back, want exactly %d and %d", fwd, back, len(data), len(reply))
	}
	slackF, _ := link.Slack()
	return r.last.Sub(t0).Seconds(), slackF.Seconds()
}

// Connections through proxies on one link share its bandwidth, in both
// orientations, and the counts add up exactly.
func TestSharedLinkReverseCounts(t *testing.T) {
	const rate = 4_000_000
	// Two senders forward at once: together they take 2× as long.
	timed(t, "two shared transfers (s)", float64(2<<20-defaultBurst)/rate, func() (float64, float64) {
		return sharedOnce(t, rate)
	})
}

func sharedOnce(t *testing.T, rate int64) (took, slack float64) {
	addr1, res1 := sinkServer(t, []byte("one"))
	addr2, res2 := sinkServer(t, []byte("second reply"))
	link := NewLink(Shape{Rate: rate})
	p1, err := link.Proxy(addr1, false)
	if err != nil {
		t.Fatal(err)
	}
	defer p1.Close()
	p2, err := link.Proxy(addr2, true) // its clients send "back"
	if err != nil {
		t.Fatal(err)
	}
	defer p2.Close()
	dial := func(addr string) net.Conn {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	send := func(c net.Conn, n int) {
		defer c.Close()
		c.Write(make([]byte, n))
		c.(*net.TCPConn).CloseWrite()
		io.Copy(io.Discard, c)
	}
	// Connected before the clock starts, and timed to the sinks' last
	// byte: the shaper's part, not the replies' way back or the accepts
	// of a busy machine.
	c1, c2 := dial(p1.Addr()), dial(p1.Addr())
	t0 := time.Now()
	var wg sync.WaitGroup
	for _, c := range []net.Conn{c1, c2} {
		wg.Add(1)
		go func() { defer wg.Done(); send(c, 1<<20) }()
	}
	wg.Wait()
	slackF, _ := link.Slack()
	send(dial(p2.Addr()), 1000)
	r1, r2 := <-res1, <-res1
	<-res2
	last := r1.last
	if r2.last.After(last) {
		last = r2.last
	}
	took = last.Sub(t0).Seconds()
	fwd, back := link.Bytes()
	if wantF, wantB := int64(2*(1<<20)+len("second reply")), int64(2*len("one")+1000); fwd != wantF || back != wantB {
		t.Errorf("counted %d forward and %d back, want exactly %d and %d", fwd, back, wantF, wantB)
	}
	return took, slackF.Seconds()
}

// SetShape applies to a connection already open.
func TestSetShapeOnOpenConnection(t *testing.T) {
	link := NewLink(Shape{})
	p, err := link.Proxy(echoServer(t), false)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	c, err := net.Dial("tcp", p.Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	rtt := func() time.Duration {
		t0 := time.Now()
		c.Write([]byte{1})
		c.SetReadDeadline(time.Now().Add(5 * time.Second))
		if _, err := io.ReadFull(c, make([]byte, 1)); err != nil {
			t.Fatal(err)
		}
		return time.Since(t0)
	}
	// The quickest of a few: a busy machine may delay any one of them.
	quickest := rtt()
	for range 4 {
		quickest = min(quickest, rtt())
	}
	if quickest > 20*time.Millisecond {
		t.Errorf("unshaped round trip %v", quickest)
	}
	link.SetShape(Shape{Delay: 20 * time.Millisecond})
	if d := rtt(); d < 40*time.Millisecond {
		t.Errorf("round trip after SetShape %v, want ≥ 40ms", d)
	}
}

// A sender faster than the link is held back: the proxy never holds more
// than the in-flight bound, so memory is bounded.
func TestBackPressure(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	accepted := make(chan net.Conn, 1)
	go func() {
		c, err := ln.Accept()
		if err == nil {
			accepted <- c
		}
	}()
	const rate = 1_000_000
	link := NewLink(Shape{Rate: rate, Queue: 64 << 10})
	p, err := link.Proxy(ln.Addr().String(), false)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	c, err := net.Dial("tcp", p.Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	srv := <-accepted
	defer srv.Close()
	// The server does not read: what the proxy took from the sender
	// (accepted by the sender's writes) is bounded by the kernel's socket
	// buffers plus the proxy's queue.
	written := 0
	c.SetWriteDeadline(time.Now().Add(2 * time.Second))
	for written < 256<<20 {
		n, err := c.Write(make([]byte, 64<<10))
		written += n
		if err != nil {
			break
		}
	}
	if written >= 256<<20 {
		t.Fatalf("the proxy accepted %d bytes from a sender whose receiver reads nothing", written)
	}
	t.Logf("accepted %d bytes before back-pressure", written)
}

func TestLoopbackOnly(t *testing.T) {
	link := NewLink(Shape{})
	for _, a := range []string{"192.0.2.1:80", "example.com:80", "[2001:db8::1]:80"} {
		if p, err := link.Proxy(a, false); err == nil {
			p.Close()
			t.Errorf("proxy to %s accepted", a)
		}
	}
}
