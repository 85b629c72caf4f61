package nfs4

import (
	"crypto/rand"
	"encoding/binary"
	"math"
	"time"

	"github.com/buildbarn/go-xdr/pkg/protocols/nfsv4"
)

// client is a client ID (RFC 8881 section 2.4): one client machine's state on this server.
type client struct {
	id        uint64
	owner     string // co_ownerid (4.1) or nfs_client_id4.id (4.0)
	verifier  [8]byte
	minor     uint32
	confirmed bool
	// 4.0: the verifier SETCLIENTID_CONFIRM must present
	confirmVerf [8]byte
	// 4.1: the last CREATE_SESSION's sequence and its reply (a retransmission gets it again)
	csSeq   uint32
	csReply *nfsv4.CreateSession4resok
	renewed time.Time
	// reclaimComplete: RECLAIM_COMPLETE was done (4.1), or the client's first non-reclaim OPEN (4.0)
	reclaimComplete bool
	// reclaimable: the client held state before the server restarted (it is in the stable record)
	reclaimable bool

	// lockOwner: the 4.0 lock owner the client last named (see lockOwnerState)
	lockOwner []byte

	sessions map[[16]byte]*session
	states   map[string]*state // by stateKey: one open state per (open owner, file), one lock state per (lock owner, file)
}

// session is a 4.1 session: its slot table and reply cache.
type session struct {
	id    [16]byte
	c     *client
	slots []slot
	fore  nfsv4.ChannelAttrs4
	back  nfsv4.ChannelAttrs4
	flags uint32
}

type slot struct {
	seq    uint32
	busy   bool
	reply  []byte // the encoded COMPOUND4res of seq, nil if not cached
	cached bool
}

type stateKind int

const (
	kindOpen stateKind = iota
	kindLock
)

// state is an open or a lock state: what a stateid names.
type state struct {
	other [12]byte
	seq   uint32
	kind  stateKind
	c     *client
	f     *file
	owner []byte // open owner or lock owner
	key   string // in c.states
	// open
	access, deny uint32
	// lock: the open it came from
	open *state
}

func (st *state) stateid() nfsv4.Stateid4 { return nfsv4.Stateid4{Seqid: st.seq, Other: st.other} }

// fileKey names a file across renames: inode and birth time.
type fileKey struct{ ino, gen uint64 }

// file is the share reservations and byte-range locks on one file.
type file struct {
	key   fileKey
	opens map[*state]struct{}
	locks []lockRange
}

// lockRange is one lock: [start, end) of a lock state's owner; end math.MaxUint64 reaches EOF.
type lockRange struct {
	ls         *state
	write      bool
	start, end uint64
}

func ownerKey(clientID uint64, owner []byte) string {
	b := binary.BigEndian.AppendUint64(nil, clientID)
	return string(append(b, owner...))
}

func stateKey(kind stateKind, clientID uint64, owner []byte, f fileKey) string {
	b := []byte{byte(kind)}
	b = binary.BigEndian.AppendUint64(b, f.ino)
	b = binary.BigEndian.AppendUint64(b, f.gen)
	return string(b) + ownerKey(clientID, owner)
}

// lockEnd is the end of a range given by offset and length (NFS4_UINT64_MAX: to EOF).
func lockEnd(off, length uint64) (uint64, status) {
	if length == 0 {
		return 0, errInval
	}
	if length == math.MaxUint64 {
		return math.MaxUint64, ok
	}
	if off+length < off {
		return 0, errInval
	}
	return off + length, ok
}

func (l lockRange) denied() nfsv4.Lock4denied {
	length := uint64(math.MaxUint64)
	if l.end != math.MaxUint64 {
		length = l.end - l.start
	}
	t := nfsv4.READ_LT
	if l.write {
		t = nfsv4.WRITE_LT
	}
	return nfsv4.Lock4denied{Offset: l.start, Length: length, Locktype: t,
		Owner: nfsv4.StateOwner4{Clientid: l.ls.c.id, Owner: l.ls.owner}}
}

// conflict returns a lock of another owner than ownerKey that a lock [start, end) (write or not)
// conflicts with.
func (f *file) conflict(owner string, write bool, start, end uint64) (lockRange, bool) {
	for _, l := range f.locks {
		if ownerKey(l.ls.c.id, l.ls.owner) == owner {
			continue
		}
		if l.start < end && start < l.end && (write || l.write) {
			return l, true
		}
	}
	return lockRange{}, false
}

// cut removes the ranges [start, end) of ls's locks, splitting those that straddle it.
func (f *file) cut(ls *state, start, end uint64) {
	out := f.locks[:0:0]
	for _, l := range f.locks {
		if l.ls != ls || l.end <= start || end <= l.start {
			out = append(out, l)
			continue
		}
		if l.start < start {
			out = append(out, lockRange{ls: ls, write: l.write, start: l.start, end: start})
		}
		if end < l.end {
			out = append(out, lockRange{ls: ls, write: l.write, start: end, end: l.end})
		}
	}
	f.locks = out
}

// add records a lock of ls, replacing what ls held in the range (POSIX semantics: a lock owner's
// new lock upgrades, downgrades or splits its own).
func (f *file) add(ls *state, write bool, start, end uint64) {
	f.cut(ls, start, end)
	f.locks = append(f.locks, lockRange{ls: ls, write: write, start: start, end: end})
}

func (f *file) holds(ls *state) bool {
	for _, l := range f.locks {
		if l.ls == ls {
			return true
		}
	}
	return false
}

func randomBytes(b []byte) { _, _ = rand.Read(b) }
