package nfs4

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"log/slog"
	"sync"
	"time"

	"github.com/buildbarn/go-xdr/pkg/protocols/nfsv4"

	"github.com/efsd/efsd/internal/fsview"
	"github.com/efsd/efsd/internal/nfs"
)

// Options tune a Server. Zero fields take their defaults.
type Options struct {
	// Lease is the lease time: a client that renews nothing for this long loses its opens and locks
	// (default 90 s, as knfsd's).
	Lease time.Duration
	// Grace is how long after start the server takes only reclaims of state clients held before
	// (default: the lease time). It is skipped when the stable record says no client held state.
	Grace time.Duration
	// ServerOwner names this server to clients (EXCHANGE_ID's server owner and scope): it must be
	// stable across restarts and differ between servers that do not share state (efsd: a mount
	// target's ID). Default: the file system ID.
	ServerOwner string
	// Record keeps, durably, the clients that hold state, so that after a restart only they may
	// reclaim and the grace period ends once they all have. Nil: every client may reclaim during a
	// full grace period.
	Record Record
	// Now is the clock (default time.Now).
	Now func() time.Time
}

// Record is the stable record of clients holding state (RFC 8881 section 8.4.3).
type Record interface {
	// Load returns the owners recorded (as of the last run).
	Load() ([]string, error)
	// Store replaces the record with owners, durably.
	Store(owners []string) error
}

const (
	maxIO          = 1 << 20
	maxOps         = 64
	maxSlots       = 16
	maxCachedReply = 64 << 10
	maxClients     = 4096
	maxSessions    = 16 // per client
	// maxClientStates bounds one client's opens and lock states, maxFileLocks the lock ranges on
	// one file, maxCachedBytes the replies all slots keep for retransmissions.
	maxClientStates = 1 << 16
	maxFileLocks    = 1 << 12
	maxCachedBytes  = 64 << 20
	defaultLease    = 90 * time.Second
)

// Server is the NFSv4.0 and 4.1 front end of one file system at one mount target.
type Server struct {
	fs     *fsview.FS
	logger *slog.Logger
	opt    Options
	epoch  uint32  // tells this run's client IDs and stateids from a previous run's
	verf   [8]byte // write verifier
	owner  []byte  // server owner major ID and scope
	fsid   uint64

	mu       sync.Mutex
	counter  uint64
	clients  map[uint64]*client
	byOwner  map[string][]*client // confirmed and unconfirmed records of an owner
	sessions map[[16]byte]*session
	states   map[[12]byte]*state
	files    map[fileKey]*file
	graceEnd time.Time
	reclaim  map[string]bool // owners that may reclaim (from the stable record); nil: anyone
	recorded map[string]bool // owners in the stable record now
	nextReap time.Time
	// connClient: the 4.0 client a connection last acted for (libnfs's lock requests name no
	// client; see lockOwnerState)
	connClient map[uint64]uint64
	cached     int // bytes of replies kept in slots
}

// New returns the NFSv4 server of fs.
func New(fs *fsview.FS, logger *slog.Logger, opt Options) *Server {
	if logger == nil {
		logger = slog.Default()
	}
	if opt.Lease <= 0 {
		opt.Lease = defaultLease
	}
	if opt.Grace <= 0 {
		opt.Grace = opt.Lease
	}
	if opt.Now == nil {
		opt.Now = time.Now
	}
	if opt.ServerOwner == "" {
		opt.ServerOwner = fs.Export().FileSystemID
	}
	now := opt.Now()
	s := &Server{fs: fs, logger: logger, opt: opt, epoch: uint32(now.Unix()), owner: []byte(opt.ServerOwner),
		clients: map[uint64]*client{}, byOwner: map[string][]*client{}, sessions: map[[16]byte]*session{},
		states: map[[12]byte]*state{}, files: map[fileKey]*file{}, recorded: map[string]bool{},
		connClient: map[uint64]uint64{}}
	randomBytes(s.verf[:])
	sum := sha256.Sum256([]byte(fs.Export().FileSystemID))
	s.fsid = binary.BigEndian.Uint64(sum[:8])
	s.graceEnd = now.Add(opt.Grace)
	if opt.Record != nil {
		owners, err := opt.Record.Load()
		if err != nil {
			logger.Warn("nfs4: cannot read the record of clients holding state: every client may reclaim", "err", err)
		} else {
			s.reclaim = map[string]bool{}
			for _, o := range owners {
				s.reclaim[o] = true
				s.recorded[o] = true
			}
			if len(owners) == 0 {
				s.graceEnd = now // no client can have state to reclaim
			}
		}
	}
	return s
}

var _ nfs.V4 = (*Server)(nil)

// ConnClosed forgets the connection. State belongs to clients, not connections: a client that
// vanished loses it when its lease expires.
func (s *Server) ConnClosed(conn uint64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.connClient, conn)
}

// ServeNFSv4 serves NULL and COMPOUND.
func (s *Server) ServeNFSv4(ctx context.Context, call *nfs.V4Call) (uint32, []byte) {
	switch call.Proc {
	case 0:
		return nfs.AcceptSuccess, nil
	case 1:
	default:
		return nfs.AcceptProcUnavail, nil
	}
	var args nfsv4.Compound4args
	if _, err := args.ReadFrom(bytes.NewReader(call.Args)); err != nil {
		return nfs.AcceptGarbageArgs, nil
	}
	return nfs.AcceptSuccess, s.compound(ctx, call, &args)
}

// compound is the state of one COMPOUND.
type compound struct {
	s      *Server
	ctx    context.Context
	call   *nfs.V4Call
	minor  uint32
	now    time.Time
	cur    *object
	saved  *object
	sess   *session
	slot   *slot
	c      *client // the session's client (4.1)
	curSID *state
	// cacheThis: SEQUENCE asked for the reply to be kept for retransmissions
	cacheThis bool
}

func (s *Server) compound(ctx context.Context, call *nfs.V4Call, args *nfsv4.Compound4args) []byte {
	cs := &compound{s: s, ctx: ctx, call: call, minor: args.Minorversion, now: s.opt.Now()}
	finished := false
	defer func() {
		if !finished && cs.slot != nil { // a panic (answered by package nfs): free the slot
			s.mu.Lock()
			cs.slot.busy = false
			s.mu.Unlock()
		}
	}()
	w := &xdrw{}
	status := ok
	var results [][]byte
	if args.Minorversion > 1 {
		status = errMinorVersMismatch
	} else if len(args.Argarray) > maxOps {
		status = errTooManyOps
		if args.Minorversion == 0 {
			status = nfsv4.NFS4ERR_RESOURCE
		}
	}
	if status == ok {
		s.reap(cs.now)
		for i, op := range args.Argarray {
			res, st, replay := cs.op(i, op)
			if replay != nil {
				return replay // a retransmission: the reply of the first time, as it was
			}
			results = append(results, res)
			if st != ok {
				status = st
				s.logger.Debug("nfs4: operation failed", "op", nfsv4.NfsOpnum4_name[op.GetArgop()], "status", nfsv4.Nfsstat4_name[st],
					"minorVersion", args.Minorversion, "client", call.Client.String())
				break
			}
		}
	}
	size := 12 + len(args.Tag) + 3
	for _, r := range results {
		size += len(r)
	}
	w.b = make([]byte, 0, size)
	w.u32(uint32(status))
	w.opaque([]byte(args.Tag))
	w.u32(uint32(len(results)))
	for _, r := range results {
		w.b = append(w.b, r...)
	}
	finished = true
	if cs.slot != nil {
		s.mu.Lock()
		sl := cs.slot
		sl.busy = false
		s.cached -= len(sl.reply)
		sl.reply, sl.cached = nil, false
		// Kept when the client asked (sa_cachethis) or the reply is small, within the budget; a
		// retransmission of another gets NFS4ERR_RETRY_UNCACHED_REP.
		if want := cs.cacheThis || len(w.b) <= 1024; want && len(w.b) <= maxCachedReply && s.cached+len(w.b) <= maxCachedBytes {
			sl.reply, sl.cached = w.b, true
			s.cached += len(w.b)
		}
		s.mu.Unlock()
	}
	return w.b
}

// reap ends the clients whose lease has expired, with their opens and locks (at most once a second).
func (s *Server) reap(now time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if now.Before(s.nextReap) {
		return
	}
	s.nextReap = now.Add(time.Second)
	changed := false
	for _, c := range s.clients {
		if now.Sub(c.renewed) > s.opt.Lease {
			if len(c.states) > 0 {
				s.logger.Info("nfs4: client lease expired, its opens and locks are released", "clientOwner", printable(c.owner),
					"fileSystemId", s.fs.Export().FileSystemID)
			}
			changed = s.dropClient(c) || changed
		}
	}
	if changed {
		s.storeRecordLocked()
	}
}

// dropClient removes a client with its sessions and state (s.mu held). It reports whether the
// stable record changes.
func (s *Server) dropClient(c *client) bool {
	for _, st := range c.states {
		s.dropState(st)
	}
	for id, sess := range c.sessions {
		for i := range sess.slots {
			s.cached -= len(sess.slots[i].reply)
		}
		delete(s.sessions, id)
	}
	delete(s.clients, c.id)
	list := s.byOwner[c.owner]
	for i, o := range list {
		if o == c {
			list = append(list[:i:i], list[i+1:]...)
			break
		}
	}
	if len(list) == 0 {
		delete(s.byOwner, c.owner)
	} else {
		s.byOwner[c.owner] = list
	}
	if c.confirmed && s.recorded[c.owner] && len(list) == 0 {
		delete(s.recorded, c.owner)
		return true
	}
	return false
}

func (s *Server) dropState(st *state) {
	delete(s.states, st.other)
	delete(st.c.states, st.key)
	f := st.f
	if st.kind == kindOpen {
		delete(f.opens, st)
	} else {
		f.cut(st, 0, ^uint64(0))
	}
	if len(f.opens) == 0 && len(f.locks) == 0 {
		delete(s.files, f.key)
	}
}

// storeRecordLocked writes the stable record (s.mu held; it is small and changes rarely).
func (s *Server) storeRecordLocked() {
	if s.opt.Record == nil {
		return
	}
	owners := make([]string, 0, len(s.recorded))
	for o := range s.recorded {
		owners = append(owners, o)
	}
	if err := s.opt.Record.Store(owners); err != nil {
		s.logger.Error("nfs4: cannot write the record of clients holding state", "err", err)
	}
}

// roomForClient makes room for a new client record at the maximum by ending the unconfirmed record
// renewed longest ago (one that never made a session or confirmed, and holds nothing); false if
// every record is confirmed (s.mu held).
func (s *Server) roomForClient() bool {
	if len(s.clients) < maxClients {
		return true
	}
	var oldest *client
	for _, c := range s.clients {
		if !c.confirmed && (oldest == nil || c.renewed.Before(oldest.renewed)) {
			oldest = c
		}
	}
	if oldest == nil {
		return false
	}
	s.dropClient(oldest)
	return true
}

// resource is the status of a request refused for want of room: NFS4ERR_RESOURCE in 4.0, which
// 4.1 removed (NFS4ERR_DELAY there).
func (cs *compound) resource() status {
	if cs.minor == 0 {
		return nfsv4.NFS4ERR_RESOURCE
	}
	return nfsv4.NFS4ERR_DELAY
}

func (s *Server) newID() uint64 {
	s.counter++
	return uint64(s.epoch)<<32 | s.counter&0xffffffff
}

func (s *Server) newOther() [12]byte {
	var o [12]byte
	binary.BigEndian.PutUint32(o[:4], s.epoch)
	s.counter++
	binary.BigEndian.PutUint64(o[4:], s.counter)
	return o
}

func (s *Server) inGrace(now time.Time) bool { return now.Before(s.graceEnd) }

// endGraceIfDone ends the grace period once every client of the stable record has completed its
// reclaims (s.mu held).
func (s *Server) endGraceIfDone(now time.Time) {
	if s.reclaim == nil || !s.inGrace(now) {
		return
	}
	for o := range s.reclaim {
		done := false
		for _, c := range s.byOwner[o] {
			if c.confirmed && c.reclaimComplete {
				done = true
			}
		}
		if !done {
			return
		}
	}
	s.graceEnd = now
	s.logger.Info("nfs4: grace period over: every client has reclaimed", "fileSystemId", s.fs.Export().FileSystemID)
}

func printable(owner string) string {
	for _, r := range owner {
		if r < 0x20 || r > 0x7e {
			return "(binary)"
		}
	}
	if len(owner) > 128 {
		return owner[:128]
	}
	return owner
}
