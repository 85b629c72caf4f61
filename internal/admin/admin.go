// Package admin is efsd's local administration channel: a unix socket in
// the data directory (admin/efsd.sock, mode 0600 in a 0700 directory, and only peers running as efsd's user or
// root are served) speaking newline-delimited JSON. A client sends one
// Request; the server answers with a stream of Messages ending with one of
// type "end" or "error". The one operation is "scrub": verify replication
// destinations by content now, with progress. `efsd scrub` is the client;
// it cannot open the data directory itself, which the daemon holds locked.
package admin

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"sync"
	"time"

	"golang.org/x/sys/unix"

	"github.com/efsd/efsd/internal/replication"
)

// SocketName is the socket's name in the data directory.
const SocketName = "efsd.sock"

// Request is what a client sends, on one line.
type Request struct {
	Op string `json:"op"` // "scrub"
	// Target names a replication configuration by its ID or by its source
	// or destination file system ID; "" means every running one.
	Target string `json:"target,omitempty"`
	// ProgressMillis is how often progress is sent; clamped to 100ms–1m,
	// default 1s.
	ProgressMillis int `json:"progressMillis,omitempty"`
}

// Message is one line the server sends.
type Message struct {
	// Type is "progress" (a scrub running), "result" (a configuration's
	// scrub ended; Error is set if it failed), "end" (all done) or
	// "error" (the request failed).
	Type                             string  `json:"type"`
	Replication, Source, Destination string  `json:",omitempty"`
	FilesCompared                    int64   `json:",omitempty"`
	BytesRead                        int64   `json:",omitempty"`
	Differences                      int64   `json:",omitempty"`
	FilesCopied                      int64   `json:",omitempty"`
	Deleted                          int64   `json:",omitempty"`
	Seconds                          float64 `json:",omitempty"`
	Error                            string  `json:",omitempty"`
}

// Scrubber runs scrubs: replication.Manager.
type Scrubber interface {
	Scrub(ctx context.Context, target string, interval time.Duration, progress func(replication.ScrubProgress)) ([]replication.ScrubProgress, error)
}

// Server serves the socket.
type Server struct {
	ln   *net.UnixListener
	path string
	s    Scrubber
	log  *slog.Logger

	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup
}

const (
	maxRequest     = 4 << 10
	requestTimeout = 10 * time.Second
	maxConns       = 8
)

// SocketPath is where the socket of the daemon on dataDir is.
func SocketPath(dataDir string) string { return filepath.Join(dataDir, "admin", SocketName) }

// Listen creates the socket of the daemon on dataDir, replacing a stale
// one (the caller holds the data directory's lock, so no other daemon uses
// it), and serves it until Close. The socket's directory is made 0700
// before the socket exists, so that nobody else can reach it during the
// moment it has the umask's mode, before it is made 0600.
func Listen(dataDir string, s Scrubber, log *slog.Logger) (*Server, error) {
	path := SocketPath(dataDir)
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("admin socket directory: %w", err)
	}
	if err := os.Chmod(dir, 0o700); err != nil {
		return nil, fmt.Errorf("admin socket directory: %w", err)
	}
	if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("remove stale admin socket: %w", err)
	}
	ln, err := net.ListenUnix("unix", &net.UnixAddr{Name: path, Net: "unix"})
	if err != nil {
		return nil, fmt.Errorf("admin socket: %w", err)
	}
	if err := os.Chmod(path, 0o600); err != nil {
		ln.Close()
		return nil, fmt.Errorf("admin socket: %w", err)
	}
	ln.SetUnlinkOnClose(true)
	ctx, cancel := context.WithCancel(context.Background())
	srv := &Server{ln: ln, path: path, s: s, log: log, ctx: ctx, cancel: cancel}
	srv.wg.Add(1)
	go srv.serve()
	return srv, nil
}

// Close stops serving, ends the running requests and removes the socket.
func (srv *Server) Close() error {
	srv.cancel()
	err := srv.ln.Close()
	srv.wg.Wait()
	return err
}

func (srv *Server) serve() {
	defer srv.wg.Done()
	slots := make(chan struct{}, maxConns)
	for {
		c, err := srv.ln.AcceptUnix()
		if err != nil {
			if srv.ctx.Err() == nil {
				srv.log.Error("admin socket accept", "err", err)
			}
			return
		}
		select {
		case slots <- struct{}{}:
		default:
			c.Close() // busy: a client retries
			continue
		}
		srv.wg.Add(1)
		go func() {
			defer srv.wg.Done()
			defer func() { <-slots }()
			defer c.Close()
			srv.handle(c)
		}()
	}
}

// allowed reports whether the peer runs as efsd's user or as root.
func allowed(c *net.UnixConn) bool {
	raw, err := c.SyscallConn()
	if err != nil {
		return false
	}
	var cred *unix.Ucred
	var cerr error
	if err := raw.Control(func(fd uintptr) {
		cred, cerr = unix.GetsockoptUcred(int(fd), unix.SOL_SOCKET, unix.SO_PEERCRED)
	}); err != nil || cerr != nil {
		return false
	}
	return cred.Uid == 0 || int(cred.Uid) == os.Geteuid()
}

func (srv *Server) handle(c *net.UnixConn) {
	enc := json.NewEncoder(c)
	fail := func(msg string) { enc.Encode(Message{Type: "error", Error: msg}) }
	if !allowed(c) {
		fail("permission denied")
		return
	}
	c.SetReadDeadline(time.Now().Add(requestTimeout))
	line, err := bufio.NewReaderSize(io.LimitReader(c, maxRequest), maxRequest).ReadSlice('\n')
	if err != nil {
		fail("bad request: want one JSON line of at most 4 KiB")
		return
	}
	c.SetReadDeadline(time.Time{})
	var req Request
	if err := json.Unmarshal(line, &req); err != nil {
		fail("bad request: " + err.Error())
		return
	}
	if req.Op != "scrub" {
		fail(fmt.Sprintf("unknown op %q", req.Op))
		return
	}
	every := time.Second
	if req.ProgressMillis != 0 {
		every = min(max(time.Duration(req.ProgressMillis)*time.Millisecond, 100*time.Millisecond), time.Minute)
	}
	// The request ends when the client hangs up (the scrub itself runs on
	// in the worker) or efsd stops.
	ctx, cancel := context.WithCancel(srv.ctx)
	defer cancel()
	go func() {
		io.Copy(io.Discard, io.LimitReader(c, maxRequest))
		cancel()
	}()
	var werr error
	srv.log.Info("scrub requested", "target", req.Target)
	_, err = srv.s.Scrub(ctx, req.Target, every, func(p replication.ScrubProgress) {
		if werr != nil {
			return
		}
		m := message(p)
		c.SetWriteDeadline(time.Now().Add(requestTimeout))
		if werr = enc.Encode(m); werr != nil {
			cancel()
		}
	})
	if werr != nil {
		return
	}
	if err != nil {
		fail(err.Error())
		return
	}
	enc.Encode(Message{Type: "end"})
}

func message(p replication.ScrubProgress) Message {
	m := Message{Type: "progress", Replication: p.Replication, Source: p.Source, Destination: p.Destination,
		FilesCompared: p.FilesCompared, BytesRead: p.BytesRead(), Differences: p.Differences,
		FilesCopied: p.FilesCopied, Deleted: p.Deleted, Seconds: p.Elapsed.Seconds()}
	if p.Done {
		m.Type = "result"
		if p.Err != nil {
			m.Error = p.Err.Error()
		}
	}
	return m
}

// Scrub asks the daemon on dataDir for a scrub of target
// ("" for all) and calls each with every message until the last, which it
// returns. A request the daemon refused is an error.
func Scrub(ctx context.Context, dataDir, target string, progress time.Duration, each func(Message)) error {
	var d net.Dialer
	c, err := d.DialContext(ctx, "unix", SocketPath(dataDir))
	if err != nil {
		return fmt.Errorf("connect to efsd (is it running on this data directory?): %w", err)
	}
	defer c.Close()
	stop := context.AfterFunc(ctx, func() { c.Close() })
	defer stop()
	req, _ := json.Marshal(Request{Op: "scrub", Target: target, ProgressMillis: int(progress / time.Millisecond)})
	if _, err := c.Write(append(req, '\n')); err != nil {
		return fmt.Errorf("send request: %w", err)
	}
	dec := json.NewDecoder(bufio.NewReader(c))
	for {
		var m Message
		if err := dec.Decode(&m); err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			return fmt.Errorf("read from efsd: %w", err)
		}
		switch m.Type {
		case "error":
			return errors.New(m.Error)
		case "end":
			return nil
		}
		each(m)
	}
}
