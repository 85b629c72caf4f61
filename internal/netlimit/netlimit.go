// Package netlimit guards a listener against clients that would exhaust the
// server: it caps open connections overall and per client address, closes
// connections that an admission check refuses before anything is read from
// them, and keeps accepting through descriptor exhaustion instead of giving
// up. Both the API listener and every mount target's NFS listener use it.
package netlimit

import (
	"errors"
	"log/slog"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// Options set a Listener's limits. Zero values mean no limit.
type Options struct {
	// MaxConns caps the connections open at once through the listener.
	MaxConns int
	// MaxConnsPerClient caps the connections open at once from one source address.
	MaxConnsPerClient int
	// Admit is consulted at every accept with the client's address; false closes the
	// connection at once. Nil admits every client.
	Admit func(netip.Addr) bool
	// Logger receives refusals and accept errors, at most one line per second.
	Logger *slog.Logger
	// Name tells listeners apart in log lines, e.g. "api" or "nfs fsmt-…".
	Name string
}

// Stats counts what a Listener did.
type Stats struct {
	Open         uint64 // connections open now
	Accepted     uint64 // connections handed to the server
	Refused      uint64 // connections closed at accept: over a cap or not admitted
	AcceptErrors uint64 // temporary accept failures retried (e.g. out of descriptors)
}

// Listener is a net.Listener with limits; see Listen.
type Listener struct {
	net.Listener
	o   Options
	log *slog.Logger

	mu      sync.Mutex
	open    int
	byAddr  map[netip.Addr]int
	lastLog time.Time
	quiet   int // log lines suppressed since lastLog

	accepted, refused, acceptErrors atomic.Uint64
}

// Listen wraps ln. Accept returns only admitted connections within the caps; a
// connection over a cap or refused by Admit is closed at once, never queued,
// so that an attacker's connections cannot hold a slot. Temporary accept
// errors (out of descriptors or buffers, aborted handshakes) are retried with
// a backoff from 5 ms doubling to 1 s, never returned: Accept returns an error
// only once ln is closed or fails for good. Closing a connection that Accept
// returned frees its slots.
func Listen(ln net.Listener, o Options) *Listener {
	l := &Listener{Listener: ln, o: o, log: o.Logger, byAddr: make(map[netip.Addr]int)}
	if l.log == nil {
		l.log = slog.New(slog.DiscardHandler)
	}
	return l
}

// Stats returns the listener's counters.
func (l *Listener) Stats() Stats {
	l.mu.Lock()
	open := l.open
	l.mu.Unlock()
	return Stats{Open: uint64(open), Accepted: l.accepted.Load(), Refused: l.refused.Load(),
		AcceptErrors: l.acceptErrors.Load()}
}

// Accept waits for the next admitted connection.
func (l *Listener) Accept() (net.Conn, error) {
	var delay time.Duration
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			if !temporary(err) {
				return nil, err
			}
			l.acceptErrors.Add(1)
			delay = min(max(2*delay, 5*time.Millisecond), time.Second)
			l.note("accept failed; retrying", "err", err, "retryIn", delay)
			time.Sleep(delay)
			continue
		}
		delay = 0
		addr := clientAddr(c)
		if reason := l.take(addr); reason != "" {
			l.refused.Add(1)
			l.note("connection refused", "client", addr.String(), "reason", reason)
			_ = c.Close()
			continue
		}
		l.accepted.Add(1)
		return &conn{Conn: c, l: l, addr: addr}, nil
	}
}

// take reserves the slots of a connection from addr, or says why it cannot.
func (l *Listener) take(addr netip.Addr) string {
	if l.o.Admit != nil && !l.o.Admit(addr) {
		return "not admitted"
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.o.MaxConns > 0 && l.open >= l.o.MaxConns {
		return "too many connections"
	}
	if l.o.MaxConnsPerClient > 0 && l.byAddr[addr] >= l.o.MaxConnsPerClient {
		return "too many connections from this client"
	}
	l.open++
	l.byAddr[addr]++
	return ""
}

func (l *Listener) release(addr netip.Addr) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.open--
	if n := l.byAddr[addr] - 1; n > 0 {
		l.byAddr[addr] = n
	} else {
		delete(l.byAddr, addr)
	}
}

// note logs at most one line per second; the next line says how many were
// left out, so a flood of refusals cannot flood the log.
func (l *Listener) note(msg string, args ...any) {
	l.mu.Lock()
	now := time.Now()
	if now.Sub(l.lastLog) < time.Second {
		l.quiet++
		l.mu.Unlock()
		return
	}
	quiet := l.quiet
	l.lastLog, l.quiet = now, 0
	l.mu.Unlock()
	args = append(args, "listener", l.o.Name)
	if quiet > 0 {
		args = append(args, "suppressed", quiet)
	}
	l.log.Warn("netlimit: "+msg, args...)
}

// temporary reports whether an accept error may pass: descriptor or memory
// exhaustion, a handshake the client aborted, a timeout.
func temporary(err error) bool {
	if errors.Is(err, net.ErrClosed) {
		return false
	}
	var errno syscall.Errno
	if errors.As(err, &errno) {
		switch errno {
		case syscall.EMFILE, syscall.ENFILE, syscall.ENOBUFS, syscall.ENOMEM,
			syscall.ECONNABORTED, syscall.ECONNRESET, syscall.EINTR, syscall.EAGAIN, syscall.EPROTO:
			return true
		}
	}
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// clientAddr is the source address of c without its port, IPv4-mapped IPv6
// addresses unmapped, so that caps and rules see one address per client.
func clientAddr(c net.Conn) netip.Addr {
	if ta, ok := c.RemoteAddr().(*net.TCPAddr); ok {
		if a, ok := netip.AddrFromSlice(ta.IP); ok {
			return a.Unmap()
		}
	}
	ap, err := netip.ParseAddrPort(c.RemoteAddr().String())
	if err != nil {
		return netip.Addr{}
	}
	return ap.Addr().Unmap()
}

// conn frees its listener slots when closed, once.
type conn struct {
	net.Conn
	l    *Listener
	addr netip.Addr
	once sync.Once
}

// CloseWrite half-closes the connection where the underlying one can, so
// that net/http's lingering close still works through the wrapper.
func (c *conn) CloseWrite() error {
	if cw, ok := c.Conn.(interface{ CloseWrite() error }); ok {
		return cw.CloseWrite()
	}
	return c.Close()
}

func (c *conn) Close() error {
	err := c.Conn.Close()
	c.once.Do(func() { c.l.release(c.addr) })
	return err
}
