package nfs

import (
	"bufio"
	"encoding/binary"
	"errors"
	"io"
	"net"
	"sync"
	"sync/atomic"
)

// go-nfs v0.0.4 gives its Handler no per-RPC context: FromHandle sees only the handle, and only
// Mount sees the RPC header. It does serve each connection strictly sequentially (read one record,
// handle it, queue the reply, read the next). rpcConn exploits that: it sits between the socket and
// go-nfs, never lets one Read cross an RPC record boundary, and parses each call's header (and a few
// arguments go-nfs drops) as the record starts. Until go-nfs reads the next record, everything its
// handlers call on this connection belongs to that call, so the Handler (one per connection) can
// ask current() for the caller's AUTH_UNIX identity.
//
// rpcConn also answers, itself, the calls go-nfs cannot: go-nfs registers handlers by program and
// procedure only, ignores versions, and answers unknown procedures with a wrong accept_stat (its
// PROC_UNAVAIL goes out as PROG_MISMATCH without the mismatch range, which libnfs cannot decode).
// So calls of other programs get PROG_UNAVAIL, other versions of NFS and MOUNT get PROG_MISMATCH
// (3, 3) — a client probing NFSv4 falls back to v3 cleanly — and MOUNT's DUMP, UMNTALL and EXPORT
// (which libnfs calls at every mount) get an empty answer. Such a reply is written once go-nfs has
// written the replies of every call before it, never inside one of its records.

const (
	progNFS   = 100003
	progMount = 100005

	mountProcDump    = 2
	mountProcUmntall = 4
	mountProcExport  = 5

	acceptSuccess     = 0
	acceptProgUnavail = 1
	acceptProgMismat  = 2
	acceptProcUnavail = 3

	procSetattr = 2
	procAccess  = 4
	procCreate  = 8
	procMkdir   = 9
	procMknod   = 11
	procRemove  = 12
	procRmdir   = 13
	procCommit  = 21

	flavorAuthUnix = 1

	// maxPeek bounds how much of a record's start is parsed: RPC header with two auth bodies of at
	// most 400 bytes each, a file handle, a name and a sattr3.
	maxPeek = 4096
)

var errMalformedRecord = errors.New("nfs: malformed RPC record")

// sattr holds a sattr3 as sent by the client (go-nfs keeps only part of it: it drops the
// setuid/setgid/sticky bits and turns SET_TO_SERVER_TIME into a client-supplied time).
type sattr struct {
	mode               *uint32
	atimeHow, mtimeHow uint32 // 0 DONT_CHANGE, 1 SET_TO_SERVER_TIME, 2 SET_TO_CLIENT_TIME
}

// callInfo describes the RPC call being served on a connection.
type callInfo struct {
	xid              uint32
	prog, vers, proc uint32
	authUnix         bool
	uid, gid         uint32
	gids             []uint32
	sattr            *sattr     // SETATTR, CREATE (UNCHECKED/GUARDED), MKDIR
	createHow        uint32     // CREATE: 0 UNCHECKED, 1 GUARDED, 2 EXCLUSIVE
	guard            *[2]uint32 // SETATTR: ctime guard (seconds, nanoseconds)

	// deny, when set by the handler, fails every file system operation of this call.
	deny error
	// existed: a CREATE (UNCHECKED) found the file already there; like knfsd, only a size is then
	// applied, not the mode, owner or times go-nfs would set next.
	existed bool

	// the export root and identity of the call's file handle, for listing cache keys
	listView  *view
	listIdent string

	// the directory ToHandle last looked up during this call
	parentView *view
	parentRel  string
	parentIno  uint64
}

func (c *callInfo) identity() identity {
	if c == nil || !c.authUnix {
		return nobody
	}
	return identity{uid: c.uid, gid: c.gid, groups: c.gids}
}

func (c *callInfo) is(proc uint32) bool {
	return c != nil && c.prog == progNFS && c.vers == 3 && c.proc == proc
}

// rpcConn is the connection go-nfs reads from and writes to. Its Close is called only by go-nfs; the
// Server closes the socket with shutdown.
type rpcConn struct {
	net.Conn
	br        *bufio.Reader
	remaining int64 // bytes of the current record not yet handed to go-nfs
	call      atomic.Pointer[callInfo]

	done     chan struct{} // closed when go-nfs stops reading this connection
	doneOnce sync.Once

	callsIn uint64 // records handed to go-nfs (each gets exactly one reply)

	wmu        sync.Mutex
	wcond      *sync.Cond
	repliesOut uint64 // complete reply records go-nfs has written
	outHdr     [4]byte
	outHdrN    int
	outLeft    int64
	outLast    bool
	wbroken    bool
}

func newRPCConn(c net.Conn) *rpcConn {
	rc := &rpcConn{Conn: c, br: bufio.NewReaderSize(c, 64<<10), done: make(chan struct{})}
	rc.wcond = sync.NewCond(&rc.wmu)
	return rc
}

// Write is go-nfs's writer; it counts the reply records written.
func (c *rpcConn) Write(p []byte) (int, error) {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	n, err := c.Conn.Write(p)
	c.trackOut(p[:n])
	if err != nil {
		c.wbroken = true
	}
	c.wcond.Broadcast()
	return n, err
}

func (c *rpcConn) trackOut(b []byte) {
	for len(b) > 0 {
		if c.outHdrN < 4 {
			k := copy(c.outHdr[c.outHdrN:], b)
			c.outHdrN += k
			b = b[k:]
			if c.outHdrN == 4 {
				mark := binary.BigEndian.Uint32(c.outHdr[:])
				c.outLeft, c.outLast = int64(mark&0x7fffffff), mark&0x80000000 != 0
			}
		} else {
			k := int64(len(b))
			if k > c.outLeft {
				k = c.outLeft
			}
			c.outLeft -= k
			b = b[k:]
		}
		if c.outHdrN == 4 && c.outLeft == 0 {
			c.outHdrN = 0
			if c.outLast {
				c.repliesOut++
			}
		}
	}
}

// reply writes a reply of the connection's own, once go-nfs's replies to every earlier call are out.
func (c *rpcConn) reply(rec []byte) error {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	for !c.wbroken && c.repliesOut < c.callsIn {
		c.wcond.Wait()
	}
	if c.wbroken {
		return net.ErrClosed
	}
	if _, err := c.Conn.Write(rec); err != nil {
		c.wbroken = true
		return err
	}
	return nil
}

// localReply returns the reply record for a call go-nfs must not see, or nil.
func localReply(call *callInfo) []byte {
	var stat uint32
	var body []byte
	switch {
	case call.prog != progNFS && call.prog != progMount:
		stat = acceptProgUnavail
	case call.vers != 3:
		stat, body = acceptProgMismat, []byte{0, 0, 0, 3, 0, 0, 0, 3} // supported: 3 to 3
	case call.prog == progMount && (call.proc == mountProcDump || call.proc == mountProcExport):
		body = []byte{0, 0, 0, 0} // empty list
	case call.prog == progMount && call.proc == mountProcUmntall:
	case call.prog == progMount && call.proc > mountProcExport, call.prog == progNFS && call.proc > procCommit:
		stat = acceptProcUnavail
	default:
		return nil
	}
	rec := make([]byte, 0, 32+len(body))
	rec = binary.BigEndian.AppendUint32(rec, 0x80000000|uint32(24+len(body)))
	rec = binary.BigEndian.AppendUint32(rec, call.xid)
	rec = binary.BigEndian.AppendUint32(rec, 1) // REPLY
	rec = binary.BigEndian.AppendUint32(rec, 0) // MSG_ACCEPTED
	rec = binary.BigEndian.AppendUint32(rec, 0) // verifier AUTH_NULL
	rec = binary.BigEndian.AppendUint32(rec, 0) // of length 0
	rec = binary.BigEndian.AppendUint32(rec, stat)
	return append(rec, body...)
}

func (c *rpcConn) current() *callInfo { return c.call.Load() }

func (c *rpcConn) finish() { c.doneOnce.Do(func() { close(c.done) }) }

// Close is called by go-nfs when it gives up the connection.
func (c *rpcConn) Close() error {
	err := c.shutdown()
	c.finish()
	return err
}

// shutdown closes the socket (first: a Write blocked on a client that does not read holds wmu),
// then wakes a reply waiting for go-nfs's writer.
func (c *rpcConn) shutdown() error {
	err := c.Conn.Close()
	c.wmu.Lock()
	c.wbroken = true
	c.wcond.Broadcast()
	c.wmu.Unlock()
	return err
}

func (c *rpcConn) Read(p []byte) (int, error) {
	if c.remaining == 0 {
		if err := c.startRecord(); err != nil {
			c.finish()
			return 0, err
		}
	}
	if int64(len(p)) > c.remaining {
		p = p[:c.remaining]
	}
	n, err := c.br.Read(p)
	c.remaining -= int64(n)
	if err != nil {
		c.finish()
	}
	return n, err
}

// startRecord parses the start of the next record. Records go-nfs would reject (fragmented, short,
// not a call, undecodable header) end the connection here: go-nfs stops reading on them without
// closing the socket.
func (c *rpcConn) startRecord() error {
	for {
		hdr, err := c.br.Peek(4)
		if err != nil {
			if len(hdr) == 0 && errors.Is(err, io.EOF) {
				return io.EOF
			}
			return err
		}
		mark := binary.BigEndian.Uint32(hdr)
		size := int64(mark & 0x7fffffff)
		if mark&0x80000000 == 0 || size < 40 {
			_ = c.shutdown()
			return errMalformedRecord
		}
		want := 4 + size
		if want > maxPeek {
			want = maxPeek
		}
		buf, err := c.br.Peek(int(want))
		if err != nil {
			return err
		}
		call, ok := parseCall(buf[4:])
		if !ok {
			_ = c.shutdown()
			return errMalformedRecord
		}
		if rec := localReply(call); rec != nil {
			if _, err := c.br.Discard(int(4 + size)); err != nil {
				return err
			}
			if err := c.reply(rec); err != nil {
				return err
			}
			continue
		}
		c.call.Store(call)
		c.remaining = 4 + size
		c.callsIn++
		return nil
	}
}

type xdrReader struct {
	b   []byte
	bad bool
}

func (r *xdrReader) u32() uint32 {
	if len(r.b) < 4 {
		r.bad = true
		r.b = nil
		return 0
	}
	v := binary.BigEndian.Uint32(r.b)
	r.b = r.b[4:]
	return v
}

func (r *xdrReader) u64() uint64 {
	hi := r.u32()
	return uint64(hi)<<32 | uint64(r.u32())
}

func (r *xdrReader) opaque(max int) []byte {
	n := int(r.u32())
	if r.bad || n > max || n > len(r.b) {
		r.bad = true
		r.b = nil
		return nil
	}
	v := r.b[:n]
	pad := (4 - n%4) % 4
	if n+pad > len(r.b) {
		r.bad = true
		r.b = nil
		return nil
	}
	r.b = r.b[n+pad:]
	return v
}

// parseCall parses an RPC call header (RFC 5531) and, for NFSv3, the arguments go-nfs loses. ok is
// false when the header itself is malformed; arguments that do not fit in the peeked bytes are
// simply not recorded.
func parseCall(b []byte) (*callInfo, bool) {
	r := &xdrReader{b: b}
	xid := r.u32()
	if r.u32() != 0 || r.bad {
		return nil, false // not a CALL
	}
	_ = r.u32() // rpcvers
	c := &callInfo{xid: xid, prog: r.u32(), vers: r.u32(), proc: r.u32()}
	flavor := r.u32()
	cred := r.opaque(400)
	_ = r.u32() // verifier flavor
	_ = r.opaque(400)
	if r.bad {
		return nil, false
	}
	if flavor == flavorAuthUnix {
		parseAuthUnix(c, cred)
	}
	if c.prog == progNFS && c.vers == 3 {
		parseArgs(c, r)
	}
	return c, true
}

func parseAuthUnix(c *callInfo, body []byte) {
	r := &xdrReader{b: body}
	_ = r.u32()       // stamp
	_ = r.opaque(255) // machine name
	uid, gid := r.u32(), r.u32()
	n := r.u32()
	if r.bad || n > 16 {
		return
	}
	gids := make([]uint32, 0, n)
	for i := uint32(0); i < n; i++ {
		gids = append(gids, r.u32())
	}
	if r.bad {
		return
	}
	c.authUnix, c.uid, c.gid, c.gids = true, uid, gid, gids
}

func parseArgs(c *callInfo, r *xdrReader) {
	switch c.proc {
	case procSetattr:
		_ = r.opaque(64)
		sa := parseSattr(r)
		if r.u32() != 0 {
			c.guard = &[2]uint32{r.u32(), r.u32()}
		}
		if !r.bad {
			c.sattr = sa
		} else {
			c.guard = nil
		}
	case procCreate:
		_ = r.opaque(64)
		_ = r.opaque(1024)
		c.createHow = r.u32()
		if c.createHow <= 1 {
			if sa := parseSattr(r); !r.bad {
				c.sattr = sa
			}
		}
	case procMkdir:
		_ = r.opaque(64)
		_ = r.opaque(1024)
		if sa := parseSattr(r); !r.bad {
			c.sattr = sa
		}
	}
}

func parseSattr(r *xdrReader) *sattr {
	sa := &sattr{}
	if r.u32() != 0 {
		m := r.u32()
		sa.mode = &m
	}
	if r.u32() != 0 { // uid
		_ = r.u32()
	}
	if r.u32() != 0 { // gid
		_ = r.u32()
	}
	if r.u32() != 0 { // size
		_ = r.u64()
	}
	if sa.atimeHow = r.u32(); sa.atimeHow == 2 {
		_, _ = r.u32(), r.u32()
	}
	if sa.mtimeHow = r.u32(); sa.mtimeHow == 2 {
		_, _ = r.u32(), r.u32()
	}
	return sa
}
