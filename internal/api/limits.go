package api

import (
	"log/slog"
	"net/http"
	"net/netip"
	"sync"
	"time"
)

// Limits bound what the API's clients can hold of the server: connections,
// time and memory. Zero fields take the defaults below.
type Limits struct {
	// MaxConns caps open connections to the API listener, MaxConnsPerClient
	// those from one client IP address. The daemon enforces both at accept.
	MaxConns, MaxConnsPerClient int
	// BodyMemory caps the bytes of request bodies held at once over all
	// requests; one client address may hold at most a quarter of it. A
	// request whose body does not fit is refused with ThrottlingException.
	BodyMemory int64
	// ReadHeaderTimeout bounds reading a request's headers, ReadTimeout its
	// headers and body, WriteTimeout everything from the end of the headers
	// to the end of the response, IdleTimeout a kept-alive connection's wait
	// for its next request.
	ReadHeaderTimeout, ReadTimeout, WriteTimeout, IdleTimeout time.Duration
	// MaxHeaderBytes caps a request's headers.
	MaxHeaderBytes int
}

// Defaults of Limits. Connection caps are far above what a CI running many
// SDK clients on loopback opens (an SDK client pools about 10 connections).
// The idle timeout is longer than the SDKs' own (90s), so a client never
// reuses a connection just as the server closes it.
const (
	DefaultMaxConns          = 1024
	DefaultMaxConnsPerClient = 256
	DefaultBodyMemory        = 64 << 20
	DefaultReadHeaderTimeout = 10 * time.Second
	DefaultReadTimeout       = 30 * time.Second
	DefaultWriteTimeout      = 60 * time.Second
	DefaultIdleTimeout       = 120 * time.Second
	DefaultMaxHeaderBytes    = 32 << 10
)

// WithDefaults returns l with every zero field set to its default.
func (l Limits) WithDefaults() Limits {
	set := func(v *int, d int) {
		if *v <= 0 {
			*v = d
		}
	}
	setD := func(v *time.Duration, d time.Duration) {
		if *v <= 0 {
			*v = d
		}
	}
	set(&l.MaxConns, DefaultMaxConns)
	set(&l.MaxConnsPerClient, DefaultMaxConnsPerClient)
	set(&l.MaxHeaderBytes, DefaultMaxHeaderBytes)
	if l.BodyMemory <= 0 {
		l.BodyMemory = DefaultBodyMemory
	}
	setD(&l.ReadHeaderTimeout, DefaultReadHeaderTimeout)
	setD(&l.ReadTimeout, DefaultReadTimeout)
	setD(&l.WriteTimeout, DefaultWriteTimeout)
	setD(&l.IdleTimeout, DefaultIdleTimeout)
	return l
}

// HTTPServer returns an http.Server serving s with its limits' timeouts.
// net/http's own log lines (a panic, a bad TLS handshake) go to s's logger.
func (s *Server) HTTPServer() *http.Server {
	l := s.limits
	return &http.Server{
		Handler:           s,
		ReadHeaderTimeout: l.ReadHeaderTimeout,
		ReadTimeout:       l.ReadTimeout,
		WriteTimeout:      l.WriteTimeout,
		IdleTimeout:       l.IdleTimeout,
		MaxHeaderBytes:    l.MaxHeaderBytes,
		// "OPTIONS *" reaches the handler and gets an AWS-shaped answer.
		DisableGeneralOptionsHandler: true,
		ErrorLog:                     slog.NewLogLogger(s.log.Handler(), slog.LevelWarn),
	}
}

// bodyBudget accounts the memory request bodies hold, overall and per
// client address, so slow or stalled uploads cannot hold more than the cap.
type bodyBudget struct {
	mu        sync.Mutex
	total     int64
	perClient int64
	used      int64
	byClient  map[netip.Addr]int64
}

func newBodyBudget(total int64) *bodyBudget {
	return &bodyBudget{total: total, perClient: max(total/4, maxBody), byClient: map[netip.Addr]int64{}}
}

// take reserves n bytes for client; false when the reservation would pass
// either cap.
func (b *bodyBudget) take(client netip.Addr, n int64) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.used+n > b.total || b.byClient[client]+n > b.perClient {
		return false
	}
	b.used += n
	b.byClient[client] += n
	return true
}

// give returns a reservation made by take.
func (b *bodyBudget) give(client netip.Addr, n int64) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.used -= n
	if b.byClient[client] -= n; b.byClient[client] <= 0 {
		delete(b.byClient, client)
	}
}
