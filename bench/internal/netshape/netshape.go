// Package netshape is an in-process TCP proxy that makes a loopback
// connection look like a long, thin link: each direction of a Link delays
// every byte by a one-way latency and caps the bytes per second with a
// token bucket, and counts every byte it delivers. It stands in for netem,
// which the benchmark machine lacks, between the two sides of a
// cross-deployment measurement; both tools measured (efsd's peer traffic
// and rsync's daemon protocol) go through the same Link, so its counters are
// the same meter for both.
//
// The proxy terminates TCP on each side: the kernel's congestion control
// sees loopback round trips, so TCP slow start and loss recovery over a real
// 50 ms path are not modelled. What is modelled is what the applications
// feel: every request/response exchange costs the round trip, and every
// byte the bandwidth.
package netshape

import (
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"time"
)

// Shape is one direction's behaviour. The zero Shape forwards at once and
// without a cap.
type Shape struct {
	// Delay is added to every byte (one-way latency: half the RTT when
	// both directions have the same).
	Delay time.Duration
	// Rate caps the bytes per second; 0: no cap.
	Rate int64
	// Burst is the token bucket's depth in bytes: how much may leave at
	// once after the link was idle. 0 takes 32 KiB (one read).
	Burst int64
	// Queue is how many bytes may wait for the bandwidth, beyond those in
	// flight for Delay, before the proxy stops reading from the sender
	// (which TCP turns into back-pressure). 0 takes 256 KiB (about 20 ms
	// at 100 Mbit/s).
	Queue int64
}

// String renders the shape for reports.
func (s Shape) String() string {
	if s.Delay == 0 && s.Rate == 0 {
		return "no delay, no cap"
	}
	r := "no cap"
	if s.Rate > 0 {
		r = fmt.Sprintf("%g Mbit/s", float64(s.Rate)*8/1e6)
	}
	return fmt.Sprintf("+%v, %s", s.Delay, r)
}

const (
	readSize     = 32 << 10
	defaultBurst = 32 << 10
	defaultQueue = 256 << 10
	// unshapedCap bounds the bytes in flight through a direction without a
	// rate cap (memory, and a window when only Delay is set).
	unshapedCap = 8 << 20
)

// Link is a pair of directions, forward (client to server of the proxies
// made with Proxy(target, false)) and back. Proxies on the same Link share
// its bandwidth, as connections over one path do.
type Link struct {
	fwd, back *direction
}

// NewLink returns a link with the same shape in both directions.
func NewLink(s Shape) *Link {
	return &Link{fwd: newDirection(s), back: newDirection(s)}
}

// SetShape changes both directions' shape; it applies to the bytes read
// from then on, on existing connections too.
func (l *Link) SetShape(s Shape) {
	l.fwd.setShape(s)
	l.back.setShape(s)
}

// Bytes returns the bytes delivered so far forward and back.
func (l *Link) Bytes() (fwd, back int64) {
	return l.fwd.delivered.Load(), l.back.delivered.Load()
}

// Slack returns, per direction, the time the machine rather than the shape
// has cost: how long the direction stood idle between its first and latest
// bytes (the shape would have let bytes through but none were offered — a
// sender not scheduled, or with nothing to say) plus how late its latest
// delivery was (a writer not scheduled at its bytes' due time, or a
// receiver slow to read). A transfer takes at most its bytes/rate plus
// this, so callers can tell the shaper's doing from a busy machine's.
func (l *Link) Slack() (fwd, back time.Duration) {
	return l.fwd.slack(), l.back.slack()
}

// direction is one way of a Link: its shape, the token bucket's clock and
// the delivered-bytes counter.
type direction struct {
	mu    sync.Mutex
	shape Shape
	// free is when the bytes reserved so far have all left at Rate
	// (the token bucket as a virtual clock: the bucket holds
	// Burst − (free − now)·Rate tokens).
	free      time.Time
	idle      time.Duration // sum of the gaps in which the bucket was full
	late      time.Duration // how late the latest delivery was
	delivered atomic.Int64
}

func (d *direction) slack() time.Duration {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.idle + d.late
}

// wrote records that a segment due at due has just been written.
func (d *direction) wrote(due time.Time) {
	late := max(time.Since(due), 0)
	d.mu.Lock()
	d.late = late
	d.mu.Unlock()
}

func newDirection(s Shape) *direction { return &direction{shape: s} }

func (d *direction) setShape(s Shape) {
	d.mu.Lock()
	d.shape = s
	d.mu.Unlock()
}

// reserve books n bytes read at now and returns when they are to be
// delivered, and the shape's cap on bytes queued in a connection's
// direction.
func (d *direction) reserve(n int, now time.Time) (time.Time, int64) {
	d.mu.Lock()
	defer d.mu.Unlock()
	s := d.shape
	if s.Rate <= 0 {
		return now.Add(s.Delay), unshapedCap
	}
	burst, queue := s.Burst, s.Queue
	if burst <= 0 {
		burst = defaultBurst
	}
	if queue <= 0 {
		queue = defaultQueue
	}
	perByte := float64(time.Second) / float64(s.Rate)
	if d.free.Before(now) {
		if !d.free.IsZero() {
			d.idle += now.Sub(d.free)
		}
		d.free = now
	}
	d.free = d.free.Add(time.Duration(float64(n) * perByte))
	// The last byte leaves when the bucket has refilled enough for it.
	leave := d.free.Add(-time.Duration(float64(burst) * perByte))
	if leave.Before(now) {
		leave = now
	}
	inflight := int64(float64(s.Rate)*s.Delay.Seconds()) + queue + readSize
	return leave.Add(s.Delay), inflight
}

// Proxy accepts loopback connections and forwards each to target through
// its Link.
type Proxy struct {
	ln      net.Listener
	target  string
	up, dn  *direction // client→target, target→client
	closing atomic.Bool

	mu    sync.Mutex
	conns map[net.Conn]struct{}
	wg    sync.WaitGroup
}

// Proxy listens on 127.0.0.1 (a free port) and forwards to target, which
// must be a loopback address. With reverse false the bytes a client sends
// travel the link's forward direction; with reverse true, back (a proxy
// for connections made from the other side).
func (l *Link) Proxy(target string, reverse bool) (*Proxy, error) {
	if err := loopback(target); err != nil {
		return nil, err
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	p := &Proxy{ln: ln, target: target, up: l.fwd, dn: l.back, conns: map[net.Conn]struct{}{}}
	if reverse {
		p.up, p.dn = l.back, l.fwd
	}
	p.wg.Add(1)
	go p.accept()
	return p, nil
}

// loopback refuses any target outside 127.0.0.0/8 and ::1.
func loopback(addr string) error {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return err
	}
	if ip := net.ParseIP(host); ip == nil || !ip.IsLoopback() {
		return fmt.Errorf("netshape: target %s is not a loopback address", addr)
	}
	return nil
}

// Addr is the proxy's listening address (host:port).
func (p *Proxy) Addr() string { return p.ln.Addr().String() }

// Close stops accepting, closes every connection and waits for the
// proxy's goroutines to end.
func (p *Proxy) Close() error {
	p.closing.Store(true)
	err := p.ln.Close()
	p.mu.Lock()
	for c := range p.conns {
		c.Close()
	}
	p.mu.Unlock()
	p.wg.Wait()
	return err
}

func (p *Proxy) track(c net.Conn) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closing.Load() {
		return false
	}
	p.conns[c] = struct{}{}
	return true
}

func (p *Proxy) untrack(c net.Conn) {
	p.mu.Lock()
	delete(p.conns, c)
	p.mu.Unlock()
}

func (p *Proxy) accept() {
	defer p.wg.Done()
	for {
		c, err := p.ln.Accept()
		if err != nil {
			if p.closing.Load() || errors.Is(err, net.ErrClosed) {
				return
			}
			time.Sleep(10 * time.Millisecond) // e.g. EMFILE: try again
			continue
		}
		p.wg.Add(1)
		go p.serve(c)
	}
}

func (p *Proxy) serve(client net.Conn) {
	defer p.wg.Done()
	if !p.track(client) {
		client.Close()
		return
	}
	defer p.untrack(client)
	server, err := net.DialTimeout("tcp", p.target, 10*time.Second)
	if err != nil {
		client.Close()
		return
	}
	if !p.track(server) {
		client.Close()
		server.Close()
		return
	}
	defer p.untrack(server)
	var wg sync.WaitGroup
	wg.Add(2)
	go func() { defer wg.Done(); pipe(client, server, p.up) }()
	go func() { defer wg.Done(); pipe(server, client, p.dn) }()
	wg.Wait()
	client.Close()
	server.Close()
}

// segment is bytes read at one time, due at the other side at due; a nil
// b with err set ends the stream.
type segment struct {
	b   []byte
	due time.Time
	err error // io.EOF: half-close; other: abort
}

// pipe copies src to dst through d: a reader stamps each read with its
// delivery time and a writer delivers in order at that time. The bytes
// between the two are bounded (the shape's cap), so a sender faster than
// the link is held back by TCP.
func pipe(src, dst net.Conn, d *direction) {
	q := newQueue()
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			s, ok := q.pop()
			if !ok {
				return
			}
			if s.b == nil {
				if s.err == io.EOF {
					closeWrite(dst)
				} else {
					dst.Close()
				}
				return
			}
			if w := time.Until(s.due); w > 0 {
				time.Sleep(w)
			}
			n, err := dst.Write(s.b)
			d.wrote(s.due)
			d.delivered.Add(int64(n))
			q.release(len(s.b))
			if err != nil {
				src.Close() // the reader ends, and so the pair
				q.abort()
				return
			}
		}
	}()
	buf := make([]byte, readSize)
	for {
		n, err := src.Read(buf)
		if n > 0 {
			due, limit := d.reserve(n, time.Now())
			// A copy of exactly n bytes: the queue's bound counts what
			// it holds.
			if !q.push(segment{b: append([]byte(nil), buf[:n]...), due: due}, limit) {
				break // the writer failed
			}
		}
		if err != nil {
			q.push(segment{err: err}, 0)
			break
		}
	}
	<-done
}

func closeWrite(c net.Conn) {
	if tc, ok := c.(*net.TCPConn); ok {
		tc.CloseWrite()
		return
	}
	c.Close()
}

// queue is a FIFO of segments bounded by the bytes it holds (counted
// until the writer has delivered them).
type queue struct {
	mu      sync.Mutex
	cond    *sync.Cond
	segs    []segment
	held    int64
	aborted bool
}

func newQueue() *queue {
	q := &queue{}
	q.cond = sync.NewCond(&q.mu)
	return q
}

// push appends s, first waiting while more than limit bytes are held (a
// segment larger than the limit passes when the queue is empty). It
// returns false if the writer gave up.
func (q *queue) push(s segment, limit int64) bool {
	q.mu.Lock()
	defer q.mu.Unlock()
	for !q.aborted && s.b != nil && q.held > 0 && q.held+int64(len(s.b)) > limit {
		q.cond.Wait()
	}
	if q.aborted {
		return false
	}
	q.held += int64(len(s.b))
	q.segs = append(q.segs, s)
	q.cond.Broadcast()
	return true
}

func (q *queue) pop() (segment, bool) {
	q.mu.Lock()
	defer q.mu.Unlock()
	for len(q.segs) == 0 && !q.aborted {
		q.cond.Wait()
	}
	if q.aborted {
		return segment{}, false
	}
	s := q.segs[0]
	q.segs[0] = segment{}
	q.segs = q.segs[1:]
	return s, true
}

func (q *queue) release(n int) {
	q.mu.Lock()
	q.held -= int64(n)
	q.cond.Broadcast()
	q.mu.Unlock()
}

func (q *queue) abort() {
	q.mu.Lock()
	q.aborted = true
	q.segs = nil
	q.cond.Broadcast()
	q.mu.Unlock()
}
