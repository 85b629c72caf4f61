// Package nfs4client is an NFSv4.1 and NFSv4.0 client for tests of an NFS
// server: ONC RPC over TCP with AUTH_SYS, raw COMPOUNDs, a 4.1 session
// (EXCHANGE_ID, CREATE_SESSION, SEQUENCE on slot 0), a 4.0 client
// (SETCLIENTID with open-owner seqids), and helpers for files, locks and
// attributes that return NFS errors as *StatusError.
//
// It is a tester's client: it checks what the server sends back (reply
// framing and size, echoed tags, result order, unrequested attributes)
// and reports what is wrong instead of working around it, and every wait
// is bounded by a context deadline (DefaultTimeout when the context has
// none), so a broken server fails a test instead of hanging it.
package nfs4client

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/buildbarn/go-xdr/pkg/protocols/nfsv4"
	"github.com/buildbarn/go-xdr/pkg/protocols/rpcv2"
	"github.com/buildbarn/go-xdr/pkg/runtime"
)

// RPC numbers of NFSv4 (RFC 7530 and RFC 5661).
const (
	ProgramNFS   = 100003
	VersionNFS4  = 4
	ProcNull     = 0
	ProcCompound = 1
)

// MaxReply bounds the reply record the client accepts: a READ of 1 MiB
// and its headers fit, and a server announcing more cannot make the test
// allocate without bound. A larger reply closes the connection.
const MaxReply = 4 << 20

// DefaultTimeout bounds a call or a dial whose context has no deadline.
const DefaultTimeout = 30 * time.Second

var (
	// ErrMalformed is wrapped by every error about a reply that does not
	// follow RPC or NFSv4: a server bug the test should see.
	ErrMalformed = errors.New("malformed reply")
	// ErrReplyTooLarge is wrapped when a reply record exceeds MaxReply.
	ErrReplyTooLarge = errors.New("reply record exceeds the client's limit")
	// ErrClosed is wrapped by calls on a closed connection.
	ErrClosed = errors.New("connection closed")
)

// Cred is the caller identity sent with every call, as AUTH_SYS
// (RFC 5531 appendix A) unless AuthNone is set.
type Cred struct {
	UID, GID uint32
	GIDs     []uint32 // at most 16
	Machine  string   // ASCII, at most 255 bytes; "nfs4client" when empty
	AuthNone bool     // send AUTH_NONE instead, to test that it is refused
}

// auth encodes c as an opaque_auth.
func (c Cred) auth() (rpcv2.OpaqueAuth, error) {
	if c.AuthNone {
		return rpcv2.OpaqueAuth{Flavor: rpcv2.AUTH_NONE}, nil
	}
	machine := c.Machine
	if machine == "" {
		machine = "nfs4client"
	}
	p := rpcv2.AuthsysParms{Stamp: uint32(time.Now().Unix()), Machinename: machine, Uid: c.UID, Gid: c.GID, Gids: c.GIDs}
	var b bytes.Buffer
	if _, err := p.WriteTo(&b); err != nil {
		return rpcv2.OpaqueAuth{}, fmt.Errorf("nfs4client: credential: %w", err)
	}
	return rpcv2.OpaqueAuth{Flavor: rpcv2.AUTH_SYS, Body: b.Bytes()}, nil
}

// RPCError is a reply other than an accepted SUCCESS: a rejected call
// (MSG_DENIED) or an accepted one whose accept_stat is not SUCCESS.
type RPCError struct {
	Denied     bool             // MSG_DENIED; else MSG_ACCEPTED
	AcceptStat rpcv2.AcceptStat // when !Denied
	RejectStat rpcv2.RejectStat // when Denied
	AuthStat   rpcv2.AuthStat   // when RejectStat is AUTH_ERROR
	Low, High  uint32           // versions, for PROG_MISMATCH and RPC_MISMATCH
}

func (e *RPCError) Error() string {
	switch {
	case e.Denied && e.RejectStat == rpcv2.AUTH_ERROR:
		return "rpc: call rejected: AUTH_ERROR " + rpcv2.AuthStat_name[e.AuthStat]
	case e.Denied:
		return fmt.Sprintf("rpc: call rejected: RPC_MISMATCH (versions %d..%d)", e.Low, e.High)
	case e.AcceptStat == rpcv2.PROG_MISMATCH:
		return fmt.Sprintf("rpc: PROG_MISMATCH (versions %d..%d)", e.Low, e.High)
	}
	if n, ok := rpcv2.AcceptStat_name[e.AcceptStat]; ok {
		return "rpc: " + n
	}
	return fmt.Sprintf("rpc: accept_stat %d", e.AcceptStat)
}

// Conn is one TCP connection to an RPC server. Calls may be made from
// several goroutines: replies are matched to calls by xid.
type Conn struct {
	nc   net.Conn
	addr string

	credMu sync.Mutex
	cred   rpcv2.OpaqueAuth

	wmu sync.Mutex // one record written at a time
	xid atomic.Uint32

	mu      sync.Mutex
	pending map[uint32]chan []byte
	err     error         // why the reader stopped; set once
	done    chan struct{} // closed when the reader stops
}

// Dial connects to the RPC server at addr (host:port) over TCP.
func Dial(ctx context.Context, addr string, cred Cred) (*Conn, error) {
	auth, err := cred.auth()
	if err != nil {
		return nil, err
	}
	ctx, cancel := withDeadline(ctx)
	defer cancel()
	var d net.Dialer
	nc, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("nfs4client: dial %s: %w", addr, err)
	}
	c := &Conn{nc: nc, addr: addr, cred: auth, pending: map[uint32]chan []byte{}, done: make(chan struct{})}
	// Start xids at a time-derived value: a restarted client must not
	// reuse the xids of its last life, which a server's duplicate request
	// cache may still hold for the same address.
	c.xid.Store(uint32(time.Now().UnixNano()))
	go c.readLoop()
	return c, nil
}

// Addr is the address the connection was dialled to.
func (c *Conn) Addr() string { return c.addr }

// SetCred changes the credential of later calls, to test the server's
// permission checks with other users on the same connection.
func (c *Conn) SetCred(cred Cred) error {
	auth, err := cred.auth()
	if err != nil {
		return err
	}
	c.credMu.Lock()
	c.cred = auth
	c.credMu.Unlock()
	return nil
}

// Close closes the connection and waits for its reader to stop. Calls in
// flight fail with ErrClosed.
func (c *Conn) Close() error {
	err := c.nc.Close()
	<-c.done
	if errors.Is(err, net.ErrClosed) {
		err = nil
	}
	return err
}

// withDeadline gives ctx DefaultTimeout when it has no deadline, so that
// nothing in this package waits without bound.
func withDeadline(ctx context.Context) (context.Context, context.CancelFunc) {
	if _, ok := ctx.Deadline(); ok {
		return ctx, func() {}
	}
	return context.WithTimeout(ctx, DefaultTimeout)
}

// fail stops the connection for good: pending and later calls get err.
func (c *Conn) fail(err error) {
	c.mu.Lock()
	if c.err == nil {
		c.err = err
	}
	c.mu.Unlock()
	c.nc.Close()
}

// readLoop reads reply records and hands each to the call waiting for
// its xid. Replies nobody waits for (calls that timed out) are dropped,
// and so are calls from the server: no callback service runs here.
func (c *Conn) readLoop() {
	var err error
	for {
		var rec []byte
		if rec, err = readRecord(c.nc, MaxReply); err != nil {
			break
		}
		if len(rec) < 8 {
			err = fmt.Errorf("%w: record of %d bytes", ErrMalformed, len(rec))
			break
		}
		xid := binary.BigEndian.Uint32(rec)
		if rpcv2.MsgType(binary.BigEndian.Uint32(rec[4:])) != rpcv2.REPLY {
			continue
		}
		c.mu.Lock()
		ch := c.pending[xid]
		delete(c.pending, xid)
		c.mu.Unlock()
		if ch != nil {
			ch <- rec
		}
	}
	if errors.Is(err, net.ErrClosed) || errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
		err = fmt.Errorf("%w (%v)", ErrClosed, err)
	}
	c.mu.Lock()
	if c.err == nil {
		c.err = err
	}
	c.pending = nil
	c.mu.Unlock()
	c.nc.Close()
	close(c.done)
}

// readRecord reads one record (RFC 5531 section 11): fragments, each with
// a 4-byte header whose top bit marks the last, of at most max bytes in
// all.
func readRecord(r io.Reader, max int) ([]byte, error) {
	var rec []byte
	var hdr [4]byte
	for {
		if _, err := io.ReadFull(r, hdr[:]); err != nil {
			if len(rec) > 0 && errors.Is(err, io.EOF) {
				err = io.ErrUnexpectedEOF
			}
			return nil, err
		}
		h := binary.BigEndian.Uint32(hdr[:])
		n := int(h & 0x7fffffff)
		if n > max-len(rec) {
			return nil, fmt.Errorf("%w: more than %d bytes", ErrReplyTooLarge, max)
		}
		start := len(rec)
		rec = append(rec, make([]byte, n)...)
		if _, err := io.ReadFull(r, rec[start:]); err != nil {
			if errors.Is(err, io.EOF) {
				err = io.ErrUnexpectedEOF
			}
			return nil, err
		}
		if h&0x80000000 != 0 {
			return rec, nil
		}
	}
}

// NewXID returns an xid no other call of this connection uses, for a
// record built by hand and sent with CallRecord.
func (c *Conn) NewXID() uint32 { return c.xid.Add(1) }

// Call sends an RPC call of prog, vers and proc with args as its
// already-encoded arguments and returns the accept_stat and the bytes
// after it: the results for SUCCESS, the mismatch_info for PROG_MISMATCH.
// A rejected call (MSG_DENIED) is an *RPCError. Tests use it to send odd
// programs, versions and argument bytes.
func (c *Conn) Call(ctx context.Context, prog, vers, proc uint32, args []byte) (acceptStat uint32, body []byte, err error) {
	c.credMu.Lock()
	cred := c.cred
	c.credMu.Unlock()
	xid := c.NewXID()
	msg := rpcv2.RpcMsg{Xid: xid, Body: &rpcv2.RpcMsgBody_CALL{Cbody: rpcv2.CallBody{
		Rpcvers: 2, Prog: prog, Vers: vers, Proc: proc, Cred: cred, Verf: rpcv2.OpaqueAuth{Flavor: rpcv2.AUTH_NONE},
	}}}
	var b bytes.Buffer
	if _, err := msg.WriteTo(&b); err != nil {
		return 0, nil, fmt.Errorf("nfs4client: encode call: %w", err)
	}
	b.Write(args)
	rep, err := c.CallRecord(ctx, b.Bytes())
	if err != nil {
		return 0, nil, err
	}
	return parseReply(rep)
}

// CallRecord sends record (a whole RPC message, its xid first, without
// the record mark) as one record and returns the reply record with the
// same xid, undecoded.
func (c *Conn) CallRecord(ctx context.Context, record []byte) ([]byte, error) {
	if len(record) < 4 || len(record) > 0x7fffffff {
		return nil, fmt.Errorf("nfs4client: record of %d bytes", len(record))
	}
	ctx, cancel := withDeadline(ctx)
	defer cancel()
	xid := binary.BigEndian.Uint32(record)
	ch := make(chan []byte, 1)
	c.mu.Lock()
	if c.pending == nil {
		err := c.err
		c.mu.Unlock()
		return nil, fmt.Errorf("nfs4client: call: %w", err)
	}
	if _, dup := c.pending[xid]; dup {
		c.mu.Unlock()
		return nil, fmt.Errorf("nfs4client: xid %#x already in flight", xid)
	}
	c.pending[xid] = ch
	c.mu.Unlock()
	forget := func() {
		c.mu.Lock()
		if c.pending != nil {
			delete(c.pending, xid)
		}
		c.mu.Unlock()
	}

	if err := c.write(ctx, record); err != nil {
		forget()
		return nil, err
	}
	select {
	case rep := <-ch:
		return rep, nil
	case <-ctx.Done():
		forget()
		return nil, fmt.Errorf("nfs4client: waiting for reply to xid %#x: %w", xid, ctx.Err())
	case <-c.done:
		select { // the reply may have come just before the reader stopped
		case rep := <-ch:
			return rep, nil
		default:
		}
		return nil, fmt.Errorf("nfs4client: waiting for reply to xid %#x: %w", xid, c.err)
	}
}

// write sends record with its record mark, within ctx's deadline. A
// write cut short leaves the stream out of step, so it ends the
// connection.
func (c *Conn) write(ctx context.Context, record []byte) error {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	dl, _ := ctx.Deadline()
	if err := c.nc.SetWriteDeadline(dl); err != nil {
		return fmt.Errorf("nfs4client: set deadline: %w", err)
	}
	buf := make([]byte, 4, 4+len(record))
	binary.BigEndian.PutUint32(buf, 0x80000000|uint32(len(record)))
	buf = append(buf, record...)
	if _, err := c.nc.Write(buf); err != nil {
		c.fail(err)
		return fmt.Errorf("nfs4client: send: %w", err)
	}
	return nil
}

// parseReply decodes the reply header of rep (RFC 5531 section 9).
func parseReply(rep []byte) (uint32, []byte, error) {
	r := bytes.NewReader(rep[8:]) // xid and msg_type were checked by readLoop
	stat, _, err := runtime.ReadInt(r)
	if err != nil {
		return 0, nil, fmt.Errorf("%w: reply_stat: %v", ErrMalformed, err)
	}
	switch rpcv2.ReplyStat(stat) {
	case rpcv2.MSG_ACCEPTED:
		var verf rpcv2.OpaqueAuth
		if _, err := verf.ReadFrom(r); err != nil {
			return 0, nil, fmt.Errorf("%w: verifier: %v", ErrMalformed, err)
		}
		as, _, err := runtime.ReadUnsignedInt(r)
		if err != nil {
			return 0, nil, fmt.Errorf("%w: accept_stat: %v", ErrMalformed, err)
		}
		return as, rep[len(rep)-r.Len():], nil
	case rpcv2.MSG_DENIED:
		rj, _, err := rpcv2.ReadRejectedReply(r)
		if err != nil {
			return 0, nil, fmt.Errorf("%w: rejected reply: %v", ErrMalformed, err)
		}
		e := &RPCError{Denied: true, RejectStat: rj.GetStat()}
		switch rj := rj.(type) {
		case *rpcv2.RejectedReply_RPC_MISMATCH:
			e.Low, e.High = rj.MismatchInfo.Low, rj.MismatchInfo.High
		case *rpcv2.RejectedReply_AUTH_ERROR:
			e.AuthStat = rj.Stat
		}
		return 0, nil, e
	}
	return 0, nil, fmt.Errorf("%w: reply_stat %d", ErrMalformed, stat)
}

// AcceptError is the *RPCError of an accept_stat other than SUCCESS, with
// the versions of PROG_MISMATCH from body, as Call returns them; nil for
// SUCCESS.
func AcceptError(stat uint32, body []byte) error {
	if rpcv2.AcceptStat(stat) == rpcv2.SUCCESS {
		return nil
	}
	e := &RPCError{AcceptStat: rpcv2.AcceptStat(stat)}
	if e.AcceptStat == rpcv2.PROG_MISMATCH && len(body) >= 8 {
		e.Low, e.High = binary.BigEndian.Uint32(body), binary.BigEndian.Uint32(body[4:])
	}
	return e
}

// Null calls NFSv4's NULL procedure: a ping that checks the RPC layer.
func (c *Conn) Null(ctx context.Context) error {
	stat, body, err := c.Call(ctx, ProgramNFS, VersionNFS4, ProcNull, nil)
	if err != nil {
		return err
	}
	if err := AcceptError(stat, body); err != nil {
		return err
	}
	if len(body) != 0 {
		return fmt.Errorf("%w: NULL reply has %d bytes of results", ErrMalformed, len(body))
	}
	return nil
}

// Compound sends one COMPOUND and returns its decoded reply. A status
// other than NFS4_OK is not an error here: it is in the reply. The reply
// is checked against RFC 5661 section 15.2: the tag echoed, one result
// per operation evaluated, in order, each for the operation sent (or
// OP_ILLEGAL), evaluation stopping at the first failure, and the
// COMPOUND's status that of the last result; a reply that breaks these
// is returned with an error wrapping ErrMalformed.
func (c *Conn) Compound(ctx context.Context, minorVersion uint32, tag string, ops []nfsv4.NfsArgop4) (*nfsv4.Compound4res, error) {
	args := nfsv4.Compound4args{Tag: tag, Minorversion: minorVersion, Argarray: ops}
	var b bytes.Buffer
	if _, err := args.WriteTo(&b); err != nil {
		return nil, fmt.Errorf("nfs4client: encode COMPOUND: %w", err)
	}
	stat, body, err := c.Call(ctx, ProgramNFS, VersionNFS4, ProcCompound, b.Bytes())
	if err != nil {
		return nil, err
	}
	if err := AcceptError(stat, body); err != nil {
		return nil, err
	}
	res, err := DecodeCompoundReply(body)
	if err != nil {
		return nil, err
	}
	return res, CheckCompound(tag, ops, res)
}

// DecodeCompoundReply decodes a COMPOUND4res that must fill body exactly.
func DecodeCompoundReply(body []byte) (*nfsv4.Compound4res, error) {
	r := bytes.NewReader(body)
	var res nfsv4.Compound4res
	if _, err := res.ReadFrom(r); err != nil {
		return nil, fmt.Errorf("%w: COMPOUND4res: %v", ErrMalformed, err)
	}
	if r.Len() != 0 {
		return nil, fmt.Errorf("%w: %d bytes after COMPOUND4res", ErrMalformed, r.Len())
	}
	return &res, nil
}

// CheckCompound checks that res answers a COMPOUND of ops tagged tag.
func CheckCompound(tag string, ops []nfsv4.NfsArgop4, res *nfsv4.Compound4res) error {
	if res.Tag != tag {
		return fmt.Errorf("%w: tag %q echoed as %q", ErrMalformed, tag, res.Tag)
	}
	if len(res.Resarray) > len(ops) {
		return fmt.Errorf("%w: %d results for %d operations", ErrMalformed, len(res.Resarray), len(ops))
	}
	for i, r := range res.Resarray {
		if op := r.GetResop(); op != ops[i].GetArgop() && op != nfsv4.OP_ILLEGAL {
			return fmt.Errorf("%w: result %d is for %s, operation %d was %s", ErrMalformed, i, OpName(op), i, OpName(ops[i].GetArgop()))
		}
		if st := OpStatus(r); st != nfsv4.NFS4_OK && i != len(res.Resarray)-1 {
			return fmt.Errorf("%w: result %d (%s) failed with %s but evaluation went on", ErrMalformed, i, OpName(r.GetResop()), StatusName(st))
		}
	}
	if n := len(res.Resarray); n > 0 {
		if st := OpStatus(res.Resarray[n-1]); st != res.Status {
			return fmt.Errorf("%w: COMPOUND status %s, last result %s", ErrMalformed, StatusName(res.Status), StatusName(st))
		}
	} else if len(ops) > 0 && res.Status == nfsv4.NFS4_OK {
		return fmt.Errorf("%w: NFS4_OK with no results for %d operations", ErrMalformed, len(ops))
	}
	return nil
}
