package nfs

import (
	"bufio"
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/efsd/efsd/internal/fsview"
	gonfs "github.com/willscott/go-nfs"
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
// (3, 3; 3, 4 for NFS when NFSv4 is served: its calls go to the Server's V4, not to go-nfs) — a
// client probing NFSv4 where it is not served falls back to v3 cleanly — and MOUNT's DUMP, UMNTALL and EXPORT
// (which libnfs calls at every mount) get an empty answer, LINK NFS3ERR_ACCES. Such a reply is written once go-nfs has
// written the replies of every call before it, never inside one of its records.

const (
	progNFS   = 100003
	progMount = 100005

	mountProcMnt     = 1
	mountProcDump    = 2
	mountProcUmnt    = 3
	mountProcUmntall = 4
	mountProcExport  = 5

	acceptSuccess     = 0
	acceptProgUnavail = 1
	acceptProgMismat  = 2
	acceptProcUnavail = 3
	acceptGarbageArgs = 4

	procGetattr     = 1
	procSetattr     = 2
	procLookup      = 3
	procAccess      = 4
	procReadlink    = 5
	procRead        = 6
	procWrite       = 7
	procCreate      = 8
	procMkdir       = 9
	procSymlink     = 10
	procMknod       = 11
	procRemove      = 12
	procRmdir       = 13
	procRename      = 14
	procLink        = 15
	procReaddir     = 16
	procReaddirplus = 17
	procFSStat      = 18
	procFSInfo      = 19
	procPathconf    = 20
	procCommit      = 21

	flavorAuthUnix = 1

	// stable_how (RFC 1813 3.3.7): how durable a WRITE must be before its reply.
	stableUnstable = 0
	stableDataSync = 1
	stableFileSync = 2

	// maxIO is the largest READ, WRITE and READDIR transfer. FSINFO advertises it as rtmax, rtpref,
	// wtmax and wtpref (go-nfs would say 1 GiB; EFS says 1 MiB too); larger READ and READDIR counts
	// are cut to it before go-nfs sees them, larger WRITEs are refused.
	maxIO = 1 << 20
	// maxCallHead bounds an RPC header with a WRITE's arguments before its data: two auth bodies of
	// at most 400 bytes each, a handle of at most 64, offset, count, stable_how, data length.
	maxCallHead = 2048
	// maxRecord is the largest record accepted: a WRITE of maxIO bytes. A larger record marker ends
	// the connection before a byte of the record is read.
	maxRecord = maxIO + maxCallHead
	// maxArgsRecord bounds the record of every call but WRITE (two handles and names, or a
	// symlink's target); a larger one is answered GARBAGE_ARGS and skipped.
	maxArgsRecord = 8 << 10
	// readBufSize holds a whole record of maxArgsRecord, so that every argument length is checked
	// before go-nfs, which allocates what a length claims before reading, decodes any.
	readBufSize = 4 + maxArgsRecord
	// fhSize is NFS3_FHSIZE.
	fhSize = 64
	// largeCall: a call transferring more than this (a WRITE's data, a READ's or READDIR's count)
	// takes one of the Server's ConnLimits.MaxLargeCalls slots until its reply is written.
	largeCall = 64 << 10
)

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
	machine          string
	uid, gid         uint32
	gids             []uint32
	argOff           int        // offset of the call's arguments in the record, after the marker
	sattr            *sattr     // SETATTR, CREATE (UNCHECKED/GUARDED), MKDIR
	createHow        uint32     // CREATE: 0 UNCHECKED, 1 GUARDED, 2 EXCLUSIVE
	guard            *[2]uint32 // SETATTR: ctime guard (seconds, nanoseconds)
	// stable is a WRITE's stable_how (FILE_SYNC unless the call asked less); committed is what its
	// reply is to say was done (set when the write is closed), which the connection puts in the
	// reply in place of go-nfs's constant FILE_SYNC.
	stable, committed uint32

	// deny, when set by the handler, fails every file system operation of this call.
	deny error
	// existed: a CREATE (UNCHECKED) found the file already there; like knfsd, only a size is then
	// applied, not the mode, owner or times go-nfs would set next.
	existed bool
	// lastErr is the error of the call's latest file system operation (nil if it succeeded): go-nfs
	// answers many failures with a catch-all NFS3ERR_IO or NFS3ERR_ACCES, which the connection
	// corrects from it as the reply goes out.
	lastErr error

	// the export root and identity of the call's file handle, for listing cache keys
	listView  *fsview.View
	listIdent string

	// the directory ToHandle last looked up during this call
	parentView *fsview.View
	parentRel  string
	parentIno  uint64
}

func (c *callInfo) identity() fsview.Identity {
	if c == nil || !c.authUnix {
		return fsview.Nobody
	}
	return fsview.Identity{UID: c.uid, GID: c.gid, Groups: c.gids}
}

func (c *callInfo) is(proc uint32) bool {
	return c != nil && c.prog == progNFS && c.vers == 3 && c.proc == proc
}

// note records the outcome of one file system operation of the call.
func (c *callInfo) note(err error) {
	if c != nil {
		c.lastErr = err
	}
}

// rpcConn is the connection go-nfs reads from and writes to. Its Close is called only by go-nfs; the
// Server closes the socket with shutdown.
//
// It serves one call at a time: the next record is handed to go-nfs only once the reply to the
// previous one is written. With the record bound and the argument checks this gives every
// connection a fixed memory ceiling (one call and its reply, see Server), whatever the client sends
// or fails to read.
type rpcConn struct {
	net.Conn
	lim       ConnLimits
	log       *fsview.RateLog
	br        *bufio.Reader
	recLen    int64 // length of the current record, marker included
	remaining int64 // bytes of the current record not yet handed to go-nfs
	clamp     []int // offsets in the current record of counts cut to maxIO as go-nfs reads them
	call      atomic.Pointer[callInfo]
	large     chan struct{} // the Server's slots for large calls
	holding   atomic.Bool   // this connection holds one

	done     chan struct{} // closed when go-nfs stops reading this connection
	doneOnce sync.Once
	stop     chan struct{} // closed by shutdown
	stopOnce sync.Once

	callsIn uint64       // records handed to go-nfs (each gets exactly one reply)
	stats   *serverStats // nil: not counted

	wmu        sync.Mutex
	wcond      *sync.Cond
	repliesOut uint64 // complete reply records go-nfs has written
	outHdr     [4]byte
	outHdrN    int
	outLeft    int64
	outLen     int64 // the current reply record's length
	outLast    bool
	outPos     int                // bytes of the current reply record's body seen
	outHead    [replyHeadLen]byte // its first bytes
	outFix     []replyFix         // corrections to its bytes, decided once outHead is complete
	wbroken    bool

	// NFSv4: the Server's V4 (nil: not served), the connection's number, whether it made v4 calls
	v4     V4
	id     uint64
	ctx    context.Context
	v4used bool
}

func newRPCConn(c net.Conn, lim ConnLimits, large chan struct{}, log *fsview.RateLog) *rpcConn {
	rc := &rpcConn{Conn: c, lim: lim, large: large, log: log, br: bufio.NewReaderSize(c, readBufSize),
		done: make(chan struct{}), stop: make(chan struct{})}
	rc.wcond = sync.NewCond(&rc.wmu)
	return rc
}

// Write is go-nfs's writer; it counts the reply records written and corrects their status and
// FSINFO's transfer sizes on the way (see fixReply). A client that does not take a reply within the
// record timeout loses the connection.
func (c *rpcConn) Write(p []byte) (int, error) {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	out := c.scanOut(p)
	if c.lim.RecordTimeout > 0 {
		_ = c.Conn.SetWriteDeadline(time.Now().Add(c.lim.RecordTimeout))
	}
	n, err := c.Conn.Write(out)
	if err != nil {
		c.wbroken = true
	}
	c.stats.reply(c.call.Load(), n)
	c.wcond.Broadcast()
	return n, err
}

// replyHeadLen bytes of a reply's body decide its corrections: xid, REPLY, MSG_ACCEPTED, an
// AUTH_NULL verifier, SUCCESS, the nfsstat3 and FSINFO's attributes_follow.
const replyHeadLen = 32

type replyFix struct {
	off int // in the record's body
	fn  func(uint32) uint32
}

// scanOut follows the reply records in p (go-nfs writes each as one last fragment) and returns p,
// or a corrected copy of it.
func (c *rpcConn) scanOut(p []byte) []byte {
	out := p
	for i := 0; i < len(p); {
		if c.outHdrN < 4 {
			k := copy(c.outHdr[c.outHdrN:], p[i:])
			c.outHdrN += k
			i += k
			if c.outHdrN == 4 {
				mark := binary.BigEndian.Uint32(c.outHdr[:])
				c.outLeft, c.outLast = int64(mark&0x7fffffff), mark&0x80000000 != 0
				c.outLen = c.outLeft
				c.outPos, c.outFix = 0, nil
			}
		} else {
			k := min(int64(len(p)-i), c.outLeft)
			chunk := p[i : i+int(k)]
			if c.outPos < replyHeadLen {
				n := copy(c.outHead[c.outPos:], chunk)
				if c.outPos+n == replyHeadLen && c.outLast {
					c.outFix = fixReply(c.current(), c.outHead[:], int(c.outLen))
				}
			}
			for _, f := range c.outFix {
				if f.off >= c.outPos && f.off+4 <= c.outPos+len(chunk) {
					if &out[0] == &p[0] {
						out = bytes.Clone(p)
					}
					at := i + f.off - c.outPos
					binary.BigEndian.PutUint32(out[at:], f.fn(binary.BigEndian.Uint32(out[at:])))
				}
			}
			c.outPos += len(chunk)
			c.outLeft -= k
			i += int(k)
		}
		if c.outHdrN == 4 && c.outLeft == 0 {
			c.outHdrN = 0
			if c.outLast {
				c.repliesOut++
			}
		}
	}
	return out
}

const (
	fsfLink = 0x0001 // FSINFO properties: hard links supported
)

// fixReply decides the corrections of go-nfs's reply to call, from the reply's first bytes:
//   - a catch-all NFS3ERR_IO or NFS3ERR_ACCES that go-nfs put on a failed file system operation
//     becomes the status of that operation's errno (NFS3ERR_PERM, _NOSPC, _NOTEMPTY, …), as does
//     the NFS3ERR_SERVERFAULT of a failed COMMIT;
//   - FSINFO advertises maxIO as the largest and preferred READ and WRITE sizes, and no hard links;
//   - a WRITE's reply says how durable the write was made (go-nfs always says FILE_SYNC): its
//     committed field, before the 8-byte verifier that ends the reply of size n.
func fixReply(call *callInfo, head []byte, n int) []replyFix {
	if call == nil || call.prog != progNFS || call.vers != 3 {
		return nil
	}
	u := func(off int) uint32 { return binary.BigEndian.Uint32(head[off:]) }
	// MSG_ACCEPTED, AUTH_NULL verifier of length 0, SUCCESS
	if u(8) != 0 || u(16) != 0 || u(20) != acceptSuccess {
		return nil
	}
	var fixes []replyFix
	status := gonfs.NFSStatus(u(24))
	if status == gonfs.NFSStatusIO || status == gonfs.NFSStatusAccess ||
		(call.proc == procCommit && status == gonfs.NFSStatusServerFault) {
		if st, ok := nfsStatusOf(call.lastErr); ok && st != status {
			fixes = append(fixes, replyFix{24, func(uint32) uint32 { return uint32(st) }})
		}
	}
	if call.proc == procWrite && status == gonfs.NFSStatusOk && call.committed != stableFileSync && n >= replyHeadLen+12 {
		committed := call.committed
		fixes = append(fixes, replyFix{n - 12, func(uint32) uint32 { return committed }})
	}
	if call.proc == procFSInfo && status == gonfs.NFSStatusOk {
		base := 32 // rtmax, after the status and an absent post_op_attr
		if u(28) != 0 {
			base += 84 // fattr3
		}
		set := func(uint32) uint32 { return maxIO }
		fixes = append(fixes,
			replyFix{base, set}, replyFix{base + 4, set}, // rtmax, rtpref
			replyFix{base + 12, set}, replyFix{base + 16, set}, // wtmax, wtpref
			replyFix{base + 44, func(v uint32) uint32 { return v &^ fsfLink }}) // properties
	}
	return fixes
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
	if c.lim.RecordTimeout > 0 {
		_ = c.Conn.SetWriteDeadline(time.Now().Add(c.lim.RecordTimeout))
	}
	if _, err := c.Conn.Write(rec); err != nil {
		c.wbroken = true
		return err
	}
	return nil
}

// awaitReplies waits until go-nfs has written the reply to every call handed to it.
func (c *rpcConn) awaitReplies() error {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	for !c.wbroken && c.repliesOut < c.callsIn {
		c.wcond.Wait()
	}
	if c.wbroken {
		return net.ErrClosed
	}
	return nil
}

// localReply returns the reply record for a call go-nfs must not see, or nil. v4 tells whether
// NFSv4 is served too.
func localReply(call *callInfo, v4 bool) []byte {
	var stat uint32
	var body []byte
	switch {
	case call.prog != progNFS && call.prog != progMount:
		stat = acceptProgUnavail
	case call.vers != 3:
		stat, body = acceptProgMismat, []byte{0, 0, 0, 3, 0, 0, 0, 3} // supported: 3 to 3
		if v4 && call.prog == progNFS {
			body[7] = 4
		}
	case call.prog == progMount && (call.proc == mountProcDump || call.proc == mountProcExport):
		body = []byte{0, 0, 0, 0} // empty list
	case call.prog == progMount && call.proc == mountProcUmntall:
	case call.prog == progMount && call.proc > mountProcExport, call.prog == progNFS && call.proc > procCommit:
		stat = acceptProcUnavail
	case call.prog == progNFS && call.proc == procLink:
		// Hard links are not supported. go-nfs would decode LINK3args as SYMLINK's, taking a length
		// from the bytes of the link's name and allocating it: it never sees a LINK.
		body = []byte{0, 0, 0, byte(gonfs.NFSStatusAccess), 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0} // no attributes, no wcc_data
	default:
		return nil
	}
	return acceptedReply(call.xid, stat, body)
}

func acceptedReply(xid, stat uint32, body []byte) []byte {
	rec := make([]byte, 0, 32+len(body))
	rec = binary.BigEndian.AppendUint32(rec, 0x80000000|uint32(24+len(body)))
	rec = binary.BigEndian.AppendUint32(rec, xid)
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
	c.stopOnce.Do(func() { close(c.stop) })
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
	pos := int(c.recLen - c.remaining)
	n, err := c.br.Read(p)
	for _, off := range c.clamp {
		for j := 0; j < 4; j++ {
			if at := off + j - pos; at >= 0 && at < n {
				p[at] = byte(uint32(maxIO) >> (24 - 8*j))
			}
		}
	}
	c.remaining -= int64(n)
	if err != nil {
		if isTimeout(err) {
			clientInfo(c.log, "nfs: connection closed", c, "err", errStalled)
			_ = c.shutdown()
			err = errStalled
		}
		c.finish()
	}
	return n, err
}

var (
	errMalformedRecord = errors.New("nfs: malformed RPC record")
	errRecordTooLarge  = errors.New("nfs: RPC record larger than the largest call")
	errIdle            = errors.New("nfs: connection idle")
	errStalled         = errors.New("nfs: RPC record not received in time")
)

// deadline sets the read deadline d from now (none if d is 0).
func (c *rpcConn) deadline(d time.Duration) {
	if d > 0 {
		_ = c.Conn.SetReadDeadline(time.Now().Add(d))
	} else {
		_ = c.Conn.SetReadDeadline(time.Time{})
	}
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// startRecord waits for the reply to the previous call, then parses the start of the next record.
// The connection ends on a record go-nfs would reject or could be made to over-allocate by
// (fragmented, short, larger than maxRecord, not a call, undecodable header), on no record
// starting within the idle timeout, and on a record not arriving in full within the record
// timeout: go-nfs stops reading on such errors without closing the socket. A call whose arguments
// could make go-nfs allocate more than the record holds is answered GARBAGE_ARGS and skipped.
func (c *rpcConn) startRecord() error {
	for {
		err := c.awaitReplies()
		c.release() // the previous call is done, reply and all
		if err != nil {
			return err
		}
		c.deadline(c.lim.IdleTimeout)
		if _, err := c.br.Peek(1); err != nil {
			if isTimeout(err) {
				clientDebug(c.log, "nfs: idle connection closed", c)
				_ = c.shutdown()
				return errIdle
			}
			if errors.Is(err, io.EOF) {
				return io.EOF
			}
			return err
		}
		c.deadline(c.lim.RecordTimeout)
		call, size, err := c.peekCall()
		if err != nil {
			if isTimeout(err) {
				err = errStalled
			}
			clientInfo(c.log, "nfs: connection closed", c, "err", err)
			_ = c.shutdown()
			return err
		}
		var stat uint32
		var xfer int
		if call.prog == progNFS && call.vers == 4 && c.v4 != nil {
			c.stats.call(call, int(4+size))
			if size > largeCall && c.large != nil {
				select {
				case c.large <- struct{}{}:
					c.holding.Store(true)
				case <-c.stop:
					return net.ErrClosed
				}
				c.deadline(c.lim.RecordTimeout)
			}
			if err := c.serveV4(call, size); err != nil {
				if isTimeout(err) {
					clientInfo(c.log, "nfs: connection closed", c, "err", errStalled)
					_ = c.shutdown()
					return errStalled
				}
				return err
			}
			continue
		}
		rec := localReply(call, c.v4 != nil)
		if rec == nil {
			var ok bool
			if c.clamp, xfer, ok = c.checkCall(call, size); !ok {
				clientInfo(c.log, "nfs: call with malformed arguments", c, "prog", call.prog, "proc", call.proc)
				stat = acceptGarbageArgs
				rec = acceptedReply(call.xid, stat, nil)
			}
		}
		c.stats.call(call, int(4+size))
		if rec != nil {
			c.stats.reply(call, len(rec))
			if _, err := c.br.Discard(int(4 + size)); err != nil {
				if isTimeout(err) {
					clientInfo(c.log, "nfs: connection closed", c, "err", errStalled)
					_ = c.shutdown()
					return errStalled
				}
				return err
			}
			if err := c.reply(rec); err != nil {
				return err
			}
			continue
		}
		if xfer > largeCall && c.large != nil {
			select {
			case c.large <- struct{}{}:
				c.holding.Store(true)
			case <-c.stop:
				return net.ErrClosed
			}
			c.deadline(c.lim.RecordTimeout) // the wait was the server's, not the client's
		}
		c.call.Store(call)
		c.recLen, c.remaining = 4+size, 4+size
		c.callsIn++
		return nil
	}
}

// peekCall reads the next record's marker and call header (not consuming them).
func (c *rpcConn) peekCall() (*callInfo, int64, error) {
	hdr, err := c.br.Peek(4)
	if err != nil {
		return nil, 0, err
	}
	mark := binary.BigEndian.Uint32(hdr)
	size := int64(mark & 0x7fffffff)
	if mark&0x80000000 == 0 || size < 40 {
		return nil, 0, errMalformedRecord
	}
	if size > maxRecord {
		return nil, 0, errRecordTooLarge
	}
	buf, err := c.br.Peek(int(min(4+size, readBufSize)))
	if err != nil {
		return nil, 0, err
	}
	call, ok := parseCall(buf[4:])
	if !ok {
		return nil, 0, errMalformedRecord
	}
	return call, size, nil
}

// checkCall checks the arguments of a call go-nfs is to decode, and returns the record offsets of
// the counts to cut to maxIO and the size of the call's transfer.
func (c *rpcConn) checkCall(call *callInfo, size int64) ([]int, int, bool) {
	if size > maxArgsRecord && !call.is(procWrite) {
		return nil, 0, false
	}
	buf, err := c.br.Peek(int(min(4+size, readBufSize)))
	if err != nil {
		return nil, 0, false
	}
	at := 4 + call.argOff
	clamp, xfer, ok := checkArgs(call, buf[at:], int(size)-call.argOff)
	for i := range clamp {
		clamp[i] += at
	}
	return clamp, xfer, ok
}

// release gives back the connection's large-call slot, if it holds one.
func (c *rpcConn) release() {
	if c.holding.Swap(false) {
		<-c.large
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
	c := &callInfo{xid: xid, prog: r.u32(), vers: r.u32(), proc: r.u32(), stable: stableFileSync, committed: stableFileSync}
	flavor := r.u32()
	cred := r.opaque(400)
	_ = r.u32() // verifier flavor
	_ = r.opaque(400)
	if r.bad {
		return nil, false
	}
	c.argOff = len(b) - len(r.b)
	if flavor == flavorAuthUnix {
		parseAuthUnix(c, cred)
	}
	if c.prog == progNFS && c.vers == 3 {
		parseArgs(c, r)
	}
	return c, true
}

// argReader walks a call's arguments to check their lengths: b holds the first bytes of the
// arguments, size is their length in the record.
type argReader struct {
	b    []byte
	off  int
	size int
	bad  bool
}

func (r *argReader) skip(n int) {
	if r.bad || r.off+n > len(r.b) {
		r.bad = true
		return
	}
	r.off += n
}

func (r *argReader) u32() uint32 {
	if r.skip(4); r.bad {
		return 0
	}
	return binary.BigEndian.Uint32(r.b[r.off-4:])
}

// opaque checks a variable-length opaque or string: at most max bytes, and all of it (with its
// padding) within the record.
func (r *argReader) opaque(max int) {
	n := int64(r.u32())
	if padded := (n + 3) &^ 3; r.bad || n > int64(max) || int64(r.off)+padded > int64(r.size) {
		r.bad = true
	} else {
		r.off += int(padded)
	}
}

func (r *argReader) sattr() {
	for _, n := range []int{4, 4, 4, 8} { // mode, uid, gid, size
		if r.u32() != 0 {
			r.skip(n)
		}
	}
	for range 2 { // atime, mtime
		if r.u32() == 2 {
			r.skip(8)
		}
	}
}

// checkArgs checks the arguments of an NFSv3 or MOUNT call before go-nfs decodes them: go-nfs (and
// rasky/go-xdr under it) allocates what an opaque's or array's length claims before reading it, so
// every length must lie within the record (itself at most maxRecord), a handle at most fhSize
// bytes, a WRITE's data at most maxIO. For a WRITE, b holds only the start of the arguments; for
// every other call, all of them. It returns the offsets in b of the counts to cut to maxIO (READ's
// count, READDIR's and READDIRPLUS's dircount and maxcount: a server may return less than asked),
// and the size of the call's transfer (at most maxIO).
func checkArgs(c *callInfo, b []byte, size int) ([]int, int, bool) {
	r := &argReader{b: b, size: size}
	fh := func() { r.opaque(fhSize) }
	dirop := func() { fh(); r.opaque(size) }
	var counts []int
	xfer := 0
	count := func() {
		n := r.u32()
		if n > maxIO {
			counts = append(counts, r.off-4)
		}
		xfer = max(xfer, int(min(n, maxIO)))
	}
	if c.prog == progMount {
		if c.proc == mountProcMnt || c.proc == mountProcUmnt {
			r.opaque(size)
		}
		return nil, 0, !r.bad
	}
	switch c.proc {
	case procGetattr, procSetattr, procAccess, procReadlink, procFSStat, procFSInfo, procPathconf, procCommit:
		fh() // go-nfs reads the rest (fixed-size) itself, some of it misaligned after a padded handle
	case procLookup, procCreate, procMkdir, procMknod, procRemove, procRmdir:
		dirop()
	case procSymlink:
		dirop()
		r.sattr()
		r.opaque(size)
	case procRename:
		dirop()
		dirop()
	case procLink:
		fh()
		dirop()
	case procRead:
		fh()
		r.skip(8)
		count()
	case procWrite:
		fh()
		r.skip(16) // offset, count, stable
		r.opaque(maxIO)
		xfer = size
	case procReaddir:
		fh()
		r.skip(16) // cookie, cookieverf
		count()
	case procReaddirplus:
		fh()
		r.skip(16)
		count() // dircount
		count() // maxcount
	}
	return counts, xfer, !r.bad
}

func parseAuthUnix(c *callInfo, body []byte) {
	r := &xdrReader{b: body}
	_ = r.u32()              // stamp
	machine := r.opaque(255) // machine name
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
	c.authUnix, c.uid, c.gid, c.gids, c.machine = true, uid, gid, gids, string(machine)
}

func parseArgs(c *callInfo, r *xdrReader) {
	switch c.proc {
	case procWrite:
		_ = r.opaque(64)
		_ = r.u64() // offset
		_ = r.u32() // count
		if how := r.u32(); !r.bad && how < stableFileSync {
			c.stable = how
		}
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
