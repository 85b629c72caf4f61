package nfs

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"slices"
	"strings"
	"sync"
	"time"

	gonfs "github.com/willscott/go-nfs"
	"golang.org/x/sys/unix"

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
	e        Export
	logger   *slog.Logger
	clog     *clientLog
	lim      ConnLimits
	large    chan struct{} // slots of large calls (nil: no cap)
	table    *handleTable
	handles  *handleCodec
	verifier [8]byte // WRITE/COMMIT verifier: changes when the server restarts
	ctx      context.Context
	cancel   context.CancelFunc

	mu        sync.Mutex
	closed    bool
	listeners map[net.Listener]struct{}
	conns     map[*rpcConn]struct{}
	wg        sync.WaitGroup

	vmu     sync.Mutex
	root    *view
	views   map[string]*view // access point ID → its current root
	retired []int            // descriptors of replaced views, closed by Close

	dirs dirCache

	stats serverStats
}

// view is one export root: the file system root, or an access point's root directory.
type view struct {
	apID  string   // "" for the file system root
	comps []string // path of the root inside the file system
	fd    int      // O_PATH descriptor of the root directory
	ino   uint64
	gen   uint64
}

var (
	errStale         = errors.New("nfs: stale file handle")
	errNoAccessPoint = errors.New("nfs: no such access point")
)

// storeError is a HandleStore failure: the handle may well be good.
type storeError struct{ err error }

func (e storeError) Error() string { return "nfs: handle store: " + e.err.Error() }
func (e storeError) Unwrap() error { return e.err }

// NewServer returns a Server for e. handles persists file handles (NewMemHandles for tests).
func NewServer(e Export, handles HandleStore, logger *slog.Logger) *Server {
	if logger == nil {
		logger = slog.Default()
	}
	installGoNFSLogger()
	key := e.HandleKey
	if len(key) == 0 {
		key = make([]byte, HandleKeySize)
		_, _ = rand.Read(key)
	}
	ctx, cancel := context.WithCancel(context.Background())
	s := &Server{
		e:         e,
		logger:    logger,
		clog:      newClientLog(logger.With("fileSystemId", e.FileSystemID), 10*time.Second, time.Now),
		table:     newHandleTable(e.FileSystemID, handles),
		handles:   newHandleCodec(key, e.FileSystemID),
		ctx:       ctx,
		cancel:    cancel,
		listeners: make(map[net.Listener]struct{}),
		conns:     make(map[*rpcConn]struct{}),
		views:     make(map[string]*view),
	}
	s.SetLimits(ConnLimits{})
	_, _ = rand.Read(s.verifier[:])
	if !canSwitchIdentity() {
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
			s.clog.error("nfs: accept failed, retrying", "err", err)
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
	s.vmu.Lock()
	defer s.vmu.Unlock()
	if s.root != nil {
		closeFD(s.root.fd)
		s.root = nil
	}
	for id, v := range s.views {
		closeFD(v.fd)
		delete(s.views, id)
	}
	for _, fd := range s.retired {
		closeFD(fd)
	}
	s.retired = nil
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

// rootView returns the file system root, opening it on first use.
func (s *Server) rootView() (*view, error) {
	s.vmu.Lock()
	defer s.vmu.Unlock()
	if s.root != nil {
		return s.root, nil
	}
	fd, err := unix.Open(s.e.Root, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, err
	}
	st, err := statFD(fd)
	if err != nil {
		closeFD(fd)
		return nil, err
	}
	s.root = &view{fd: fd, ino: st.Ino, gen: generation(&st)}
	return s.root, nil
}

// splitPath splits a slash-separated path, dropping empty and "." components; ok is false if it
// has "..".
func splitPath(p string) (comps []string, ok bool) {
	for _, c := range strings.Split(p, "/") {
		switch c {
		case "", ".":
		case "..":
			return nil, false
		default:
			if strings.ContainsRune(c, 0) {
				return nil, false
			}
			comps = append(comps, c)
		}
	}
	return comps, true
}

// accessPointView returns the current root of access point id; with create, a missing root is
// created as its CreationInfo says, unless the export is read-only.
func (s *Server) accessPointView(id string, create bool) (*view, AccessPoint, error) {
	if s.e.AccessPoint == nil {
		return nil, AccessPoint{}, errNoAccessPoint
	}
	ap, ok := s.e.AccessPoint(id)
	if !ok {
		return nil, AccessPoint{}, errNoAccessPoint
	}
	if len(id) > maxAPIDLen {
		return nil, ap, unix.ENAMETOOLONG
	}
	root, err := s.rootView()
	if err != nil {
		return nil, ap, err
	}
	comps, ok := splitPath(ap.Path)
	if !ok {
		return nil, ap, unix.EINVAL
	}
	fd, err := openBeneath(root.fd, comps, unix.O_PATH|unix.O_DIRECTORY)
	if err == unix.ENOENT && create && ap.CreationInfo != nil {
		if s.readOnly() {
			// A replication destination: nothing may be created (replication would remove it).
			return nil, ap, fmt.Errorf("root directory %s of access point %s is missing and the file system is read-only: %w",
				ap.Path, id, unix.ENOENT)
		}
		if err = s.createAccessPointRoot(root, comps, ap.CreationInfo); err == nil {
			fd, err = openBeneath(root.fd, comps, unix.O_PATH|unix.O_DIRECTORY)
		}
	}
	if err != nil {
		return nil, ap, err
	}
	st, err := statFD(fd)
	if err != nil {
		closeFD(fd)
		return nil, ap, err
	}
	s.vmu.Lock()
	defer s.vmu.Unlock()
	old := s.views[id]
	if old != nil && old.ino == st.Ino && old.gen == generation(&st) && slices.Equal(old.comps, comps) {
		closeFD(fd)
		return old, ap, nil
	}
	v := &view{apID: id, comps: comps, fd: fd, ino: st.Ino, gen: generation(&st)}
	if old != nil {
		s.retired = append(s.retired, old.fd) // RPCs in flight may still use it
	}
	s.views[id] = v
	return v, ap, nil
}

// createAccessPointRoot makes an access point's missing root directory: missing parents as
// root:root 0755, the root itself with CreationInfo's owner and permissions. Each directory is
// created 0700, then given its owner and mode, so it is never open to others in between.
func (s *Server) createAccessPointRoot(root *view, comps []string, ci *CreationInfo) error {
	cur, owned, changed := root.fd, false, false
	defer func() {
		if owned {
			closeFD(cur)
		}
		if changed {
			s.changed()
		}
	}()
	for i, c := range comps {
		one := []string{c}
		fd, err := openBeneath(cur, one, unix.O_PATH|unix.O_DIRECTORY)
		if err == unix.ENOENT {
			uid, gid, mode := 0, 0, uint32(0o755)
			if i == len(comps)-1 {
				uid, gid, mode = int(ci.OwnerUID), int(ci.OwnerGID), unixMode(ci.Permissions)
			}
			err = unix.Mkdirat(cur, c, 0o700)
			switch {
			case err == nil:
				changed = true
				if fd, err = openBeneath(cur, one, unix.O_PATH|unix.O_DIRECTORY|unix.O_NOFOLLOW); err == nil {
					if err = unix.Fchownat(fd, "", uid, gid, unix.AT_EMPTY_PATH); err == nil {
						if err = chmodFD(fd, mode); err == nil {
							err = syncDir(cur)
						}
					}
				}
			case err == unix.EEXIST: // created meanwhile
				fd, err = openBeneath(cur, one, unix.O_PATH|unix.O_DIRECTORY)
			}
		}
		if err != nil {
			closeFD(fd)
			return err
		}
		if owned {
			closeFD(cur)
		}
		cur, owned = fd, true
	}
	if changed {
		s.logger.Info("nfs: created access point root directory", "fileSystemId", s.e.FileSystemID,
			"path", "/"+strings.Join(comps, "/"), "uid", ci.OwnerUID, "gid", ci.OwnerGID,
			"mode", unixMode(ci.Permissions))
	}
	return nil
}

func (s *Server) changed() {
	if f := s.e.OnChange; f != nil {
		f()
	}
}

// recordChain records the handle table entries of the directories comps below base (MOUNT of an
// access point or a subdirectory), so that handles below them resolve.
func (s *Server) recordChain(base *view, comps []string) error {
	parent := base.ino
	for i := range comps {
		fd, err := openBeneath(base.fd, comps[:i+1], unix.O_PATH)
		if err != nil {
			return err
		}
		st, err := statFD(fd)
		closeFD(fd)
		if err != nil {
			return err
		}
		s.recordHandle(st.Ino, parent, comps[i], false)
		parent = st.Ino
	}
	return nil
}

func (s *Server) recordHandle(ino, parent uint64, name string, force bool) {
	if err := s.table.put(ino, parent, name, force); err != nil {
		s.clog.log(slog.LevelWarn, "nfs: cannot record file handle", "inode", ino, "err", err)
	}
}

func (s *Server) forgetHandle(ino uint64) {
	if err := s.table.del(ino); err != nil {
		s.clog.log(slog.LevelWarn, "nfs: cannot delete file handle", "inode", ino, "err", err)
	}
}

// maxDepth bounds a locator chain (a loop in a corrupt table must not spin).
const maxDepth = 2048

// resolve finds the path below v of the file with inode ino and generation gen, following locators
// up to v's root, and checks that the path still leads to that very file. A chain read from the
// cache is retried from the store before the handle is declared stale.
func (s *Server) resolve(v *view, ino, gen uint64) ([]string, error) {
	if ino == v.ino {
		if gen != 0 && v.gen != 0 && gen != v.gen {
			return nil, errStale
		}
		return nil, nil
	}
	root, err := s.rootView()
	if err != nil {
		return nil, err
	}
	for _, fresh := range []bool{false, true} {
		comps, ok, err := s.chain(v, root.ino, ino, fresh)
		if err != nil {
			return nil, storeError{err}
		}
		if !ok {
			continue
		}
		fd, err := openBeneath(v.fd, comps, unix.O_PATH|unix.O_NOFOLLOW)
		if err != nil {
			continue
		}
		st, err := statFD(fd)
		closeFD(fd)
		if err == nil && st.Ino == ino && (gen == 0 || generation(&st) == 0 || generation(&st) == gen) {
			return comps, nil
		}
	}
	return nil, errStale
}

func (s *Server) chain(v *view, fsRootIno, ino uint64, fresh bool) ([]string, bool, error) {
	var names []string
	cur := ino
	for depth := 0; cur != v.ino; depth++ {
		if cur == fsRootIno || depth >= maxDepth {
			return nil, false, nil // outside the view
		}
		loc, ok, err := s.table.get(cur, fresh)
		if err != nil || !ok {
			return nil, false, err
		}
		parent, name, ok := parseLocator(loc)
		if !ok {
			return nil, false, nil
		}
		names = append(names, name)
		cur = parent
	}
	slices.Reverse(names)
	return names, true, nil
}

// newVFS returns the file system an RPC sees: the access point's POSIX user if it has one, else
// the caller's AUTH_UNIX identity (root squashed unless the file system policy grants root access),
// read-only if the file system is a replication destination or the policy does not grant writes,
// and denied altogether if it no longer grants mounting.
func (s *Server) newVFS(v *view, ap *AccessPoint, call *callInfo) *vfs {
	acc := s.access(v.apID)
	id := call.identity()
	if !acc.Root {
		id = id.squashRoot()
	}
	if ap != nil && ap.UID != nil {
		id = identity{uid: *ap.UID, gid: nobody.gid, groups: ap.SecondaryGIDs}
		if ap.GID != nil {
			id.gid = *ap.GID
		}
	}
	if !acc.Mount && call != nil && call.deny == nil {
		call.deny = unix.EACCES
	}
	return &vfs{s: s, view: v, id: id, ro: !acc.Write || s.readOnly(), call: call}
}

// access is what the file system policy grants clients of access point apID ("" for none).
func (s *Server) access(apID string) ClientAccess {
	if s.e.Access == nil {
		return FullAccess
	}
	return s.e.Access(apID)
}

func (s *Server) readOnly() bool { return s.e.ReadOnly != nil && s.e.ReadOnly() }
