package nfs

import (
	"context"
	"crypto/rand"
	"errors"
	"log/slog"
	"net"
	"sync"
	"sync/atomic"
	"time"

	gonfs "github.com/willscott/go-nfs"
	"golang.org/x/sys/unix"

	"github.com/efsd/efsd/internal/fsview"
	"github.com/efsd/efsd/internal/netlimit"
)

// ConnLimits bound what NFS clients can hold on a Server. A zero field takes its default, a
// negative one turns the limit off.
type ConnLimits struct {
	// MaxConns caps the connections open at once on each listener (default 1024).
	MaxConns int
	// MaxConnsPerClient caps the connections open at once from one client IP address (default 64:
	// an NFSv3 client shares one connection among all its mounts of a server, 16 with nconnect).
	MaxConnsPerClient int
	// IdleTimeout closes a connection on which no call starts for this long (default 6 minutes, as
	// knfsd; Linux clients close theirs after 5 idle minutes and reconnect when needed).
	IdleTimeout time.Duration
	// RecordTimeout closes a connection whose call, once its first byte arrived, does not arrive in
	// full within it, or whose client does not take a reply within it (default 30 seconds).
	RecordTimeout time.Duration
	// MaxLargeCalls caps the calls transferring more than 64 KiB (READ, WRITE, READDIR) served at
	// once by a Server, replies included; more wait their turn. It bounds the memory of a Server
	// whatever the number of connections (default 256: four times the default per-client cap, so
	// that one client address cannot hold them all; each connection holds at most one).
	MaxLargeCalls int
}

// Defaults of ConnLimits.
const (
	DefaultMaxConns          = 1024
	DefaultMaxConnsPerClient = 64
	DefaultIdleTimeout       = 6 * time.Minute
	DefaultRecordTimeout     = 30 * time.Second
	DefaultMaxLargeCalls     = 256
)

func (l ConnLimits) withDefaults() ConnLimits {
	orDefault := func(v, def int) int {
		switch {
		case v == 0:
			return def
		case v < 0:
			return 0
		}
		return v
	}
	orDefaultD := func(v, def time.Duration) time.Duration {
		switch {
		case v == 0:
			return def
		case v < 0:
			return 0
		}
		return v
	}
	return ConnLimits{
		MaxConns:          orDefault(l.MaxConns, DefaultMaxConns),
		MaxConnsPerClient: orDefault(l.MaxConnsPerClient, DefaultMaxConnsPerClient),
		IdleTimeout:       orDefaultD(l.IdleTimeout, DefaultIdleTimeout),
		RecordTimeout:     orDefaultD(l.RecordTimeout, DefaultRecordTimeout),
		MaxLargeCalls:     orDefault(l.MaxLargeCalls, DefaultMaxLargeCalls),
	}
}

// Server serves one Export on a listener (one per mount target). Several Servers may serve the same
// file system with the same HandleStore; each keeps its own cache in front of it.
//
// Memory: a connection serves one call at a time (see rpcConn). Idle or stalled, it holds about
// 30 KiB (measured: 22 KiB of heap, with an 8 KiB read buffer and go-nfs's 4 KiB reader and writer,
// and 8 KiB of goroutine stacks); during a call, up to about 5 MiB more (a 1 MiB READ's data and
// go-nfs's two growing copies of its reply; a 1 MiB WRITE's data, decoded twice), and only
// MaxLargeCalls calls at once may transfer more than 64 KiB. A Server thus holds at most about
// MaxConns × 300 KiB (a call of at most 64 KiB in flight on each) + MaxLargeCalls × 5 MiB: about
// 1.6 GiB at the defaults, 30 MiB when its connections are idle.
type Server struct {
	e        fsview.Export
	fs       *fsview.FS
	logger   *slog.Logger
	clog     *fsview.RateLog
	lim      ConnLimits
	large    chan struct{} // slots of large calls (nil: no cap)
	verifier [8]byte       // WRITE/COMMIT verifier: changes when the server restarts
	ctx      context.Context
	cancel   context.CancelFunc

	mu        sync.Mutex
	closed    bool
	listeners map[net.Listener]struct{}
	conns     map[*rpcConn]struct{}
	wg        sync.WaitGroup

	dirs dirCache

	v4      V4            // nil: NFSv4 not served
	connIDs atomic.Uint64 // numbers connections for v4

	stats serverStats
}

var errStale = fsview.ErrStale

// NewServer returns a Server for e. handles persists file handles (fsview.NewMemHandles for tests).
func NewServer(e fsview.Export, handles fsview.HandleStore, logger *slog.Logger) *Server {
	if logger == nil {
		logger = slog.Default()
	}
	installGoNFSLogger()
	ctx, cancel := context.WithCancel(context.Background())
	clog := fsview.NewRateLog(logger.With("fileSystemId", e.FileSystemID), 10*time.Second, time.Now)
	s := &Server{
		e:         e,
		fs:        fsview.New(e, handles, logger, clog),
		logger:    logger,
		clog:      clog,
		ctx:       ctx,
		cancel:    cancel,
		listeners: make(map[net.Listener]struct{}),
		conns:     make(map[*rpcConn]struct{}),
	}
	s.SetLimits(ConnLimits{})
	_, _ = rand.Read(s.verifier[:])
	if !fsview.CanSwitchIdentity() {
		logger.Warn("nfs: efsd is not running as root: client identities and access point POSIX users are not enforced, every NFS operation acts as efsd's own user",
			"fileSystemId", e.FileSystemID)
	}
	return s
}

// SetLimits sets the connection limits (before Serve).
func (s *Server) SetLimits(l ConnLimits) {
	s.lim = l.withDefaults()
	s.large = nil
	if s.lim.MaxLargeCalls > 0 {
		s.large = make(chan struct{}, s.lim.MaxLargeCalls)
	}
}

// Serve accepts NFSv3 and MOUNT connections on ln until ln is closed (it then returns the Accept
// error) or Close is called (it then returns nil). Connections that Export.Admit refuses or that are
// over the ConnLimits caps are closed as they are accepted. Any other Accept error (out of descriptors, a connection aborted before it
// was accepted) is logged and retried with backoff: the server never gives up while its listener is
// open.
func (s *Server) Serve(ln net.Listener) error {
	lim := netlimit.Listen(ln, netlimit.Options{MaxConns: s.lim.MaxConns, MaxConnsPerClient: s.lim.MaxConnsPerClient,
		Admit: s.e.Admit, Logger: s.logger, Name: "nfs " + s.e.FileSystemID})
	ln = lim
	s.stats.mu.Lock()
	s.stats.lns = append(s.stats.lns, lim)
	s.stats.mu.Unlock()
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		_ = ln.Close()
		return nil
	}
	s.listeners[ln] = struct{}{}
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		delete(s.listeners, ln)
		s.mu.Unlock()
	}()
	var delay time.Duration
	for {
		c, err := ln.Accept()
		if err != nil {
			if s.isClosed() {
				return nil
			}
			if errors.Is(err, net.ErrClosed) {
				return err
			}
			s.clog.Error("nfs: accept failed, retrying", "err", err)
			delay = min(max(2*delay, 5*time.Millisecond), time.Second)
			select {
			case <-time.After(delay):
			case <-s.ctx.Done():
				return nil
			}
			continue
		}
		delay = 0
		rc := newRPCConn(c, s.lim, s.large, s.clog)
		rc.stats = &s.stats
		rc.v4, rc.id, rc.ctx = s.v4, s.connIDs.Add(1), s.ctx
		s.mu.Lock()
		if s.closed {
			s.mu.Unlock()
			_ = c.Close()
			return nil
		}
		s.conns[rc] = struct{}{}
		s.wg.Add(1)
		s.mu.Unlock()
		go s.serveConn(rc)
	}
}

func (s *Server) isClosed() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.closed
}

// serveConn runs one go-nfs server per connection, so that its Handler knows the connection, and
// through it the current call's credentials.
func (s *Server) serveConn(rc *rpcConn) {
	defer s.wg.Done()
	defer func() {
		_ = rc.shutdown()
		rc.release()
		if rc.v4used {
			rc.v4.ConnClosed(rc.id)
		}
		s.mu.Lock()
		delete(s.conns, rc)
		s.mu.Unlock()
	}()
	srv := &gonfs.Server{Handler: &connHandler{s: s, c: rc}, ID: s.verifier, Context: s.ctx}
	_ = srv.Serve(&oneConnListener{c: rc})
	<-rc.done
}

// Close stops serving: it closes the listeners and every connection, waits until no RPC is being
// served, and releases the server's descriptors.
func (s *Server) Close() error {
	s.mu.Lock()
	already := s.closed
	s.closed = true
	for ln := range s.listeners {
		_ = ln.Close()
	}
	for rc := range s.conns {
		_ = rc.shutdown()
	}
	s.mu.Unlock()
	s.cancel()
	s.wg.Wait()
	if already {
		return nil
	}
	s.fs.Close()
	return nil
}

// oneConnListener hands go-nfs a single connection, then blocks until go-nfs is done with it.
type oneConnListener struct {
	c    *rpcConn
	used bool
}

func (l *oneConnListener) Accept() (net.Conn, error) {
	if !l.used {
		l.used = true
		return l.c, nil
	}
	<-l.c.done
	return nil, net.ErrClosed
}

func (l *oneConnListener) Close() error   { return nil }
func (l *oneConnListener) Addr() net.Addr { return l.c.LocalAddr() }

// newVFS returns the file system an RPC sees: the access point's POSIX user if it has one, else
// the caller's AUTH_UNIX identity (root squashed unless the file system policy grants root access),
// read-only if the file system is a replication destination or the policy does not grant writes,
// and denied altogether if it no longer grants mounting.
func (s *Server) newVFS(v *fsview.View, ap *fsview.AccessPoint, call *callInfo) *vfs {
	c := s.fs.Caller(v, ap, call.identity())
	if c.Denied && call != nil && call.deny == nil {
		call.deny = unix.EACCES
	}
	return &vfs{s: s, view: v, id: c.ID, ro: c.ReadOnly, call: call}
}
