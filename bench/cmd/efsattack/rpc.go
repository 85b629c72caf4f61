package main

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"time"

	"github.com/efsd/efsd/bench/internal/loadgen"
)

// A raw ONC RPC client over TCP, just enough of MOUNT v3 and NFSv3 to
// mount, look up, read and list with handles of the attacker's choosing.
// Every byte sent is built here, so forged handles and records go out
// exactly as written; every reply is bounded.

const (
	progNFS   = 100003
	progMount = 100005

	procGetattr = 1
	procLookup  = 3
	procRead    = 6
	procReaddir = 16

	nfsOK         = 0
	nfsErrNoEnt   = 2
	nfsErrAcces   = 13
	nfsErrStale   = 70
	nfsErrBadHndl = 10001

	maxReply = 1 << 20
)

func nfsStatus(st uint32) string {
	switch st {
	case nfsOK:
		return "NFS3_OK"
	case nfsErrNoEnt:
		return "NFS3ERR_NOENT"
	case nfsErrAcces:
		return "NFS3ERR_ACCES"
	case nfsErrStale:
		return "NFS3ERR_STALE"
	case nfsErrBadHndl:
		return "NFS3ERR_BADHANDLE"
	}
	return fmt.Sprintf("NFS3 status %d", st)
}

type rpcClient struct {
	conn    net.Conn
	br      *bufio.Reader
	xid     uint32
	timeout time.Duration
	uid     uint32
}

// dialRPC connects to addr (loopback only), from local if not empty.
func dialRPC(addr, local string, timeout time.Duration) (*rpcClient, error) {
	d := net.Dialer{Timeout: timeout, Control: loadgen.LoopbackOnly}
	if local != "" {
		d.LocalAddr = &net.TCPAddr{IP: net.ParseIP(local)}
	}
	c, err := d.Dial("tcp", addr)
	if err != nil {
		return nil, err
	}
	return &rpcClient{conn: c, br: bufio.NewReader(c), xid: uint32(time.Now().UnixNano()), timeout: timeout}, nil
}

func (c *rpcClient) Close() error { return c.conn.Close() }

// xdrw builds XDR.
type xdrw []byte

func (w xdrw) u32(v uint32) xdrw { return binary.BigEndian.AppendUint32(w, v) }
func (w xdrw) u64(v uint64) xdrw { return binary.BigEndian.AppendUint64(w, v) }
func (w xdrw) opaque(b []byte) xdrw {
	w = w.u32(uint32(len(b)))
	w = append(w, b...)
	for len(w)%4 != 0 {
		w = append(w, 0)
	}
	return w
}

// callHeader is an RPC call's header with AUTH_UNIX (uid, gid) or, if
// null, AUTH_NULL.
func callHeader(xid, prog, vers, proc uint32, null bool, uid uint32) xdrw {
	w := xdrw{}.u32(xid).u32(0).u32(2).u32(prog).u32(vers).u32(proc)
	if null {
		w = w.u32(0).u32(0)
	} else {
		cred := xdrw{}.u32(0).opaque([]byte("efsattack")).u32(uid).u32(uid).u32(0)
		w = w.u32(1).opaque(cred)
	}
	return w.u32(0).u32(0) // verifier AUTH_NULL
}

// record frames a message with a last-fragment record marker.
func record(msg []byte) []byte {
	return append(binary.BigEndian.AppendUint32(nil, uint32(len(msg))|1<<31), msg...)
}

// call sends one call and returns the reply's results (after accept_stat
// SUCCESS).
func (c *rpcClient) call(prog, vers, proc uint32, args []byte) (*xdrr, error) {
	c.xid++
	msg := append(callHeader(c.xid, prog, vers, proc, false, c.uid), args...)
	c.conn.SetDeadline(time.Now().Add(c.timeout))
	if _, err := c.conn.Write(record(msg)); err != nil {
		return nil, err
	}
	var rec []byte
	for {
		var m [4]byte
		if _, err := io.ReadFull(c.br, m[:]); err != nil {
			return nil, err
		}
		n := binary.BigEndian.Uint32(m[:])
		if int(n&^(1<<31))+len(rec) > maxReply {
			return nil, errors.New("reply record too long")
		}
		frag := make([]byte, n&^(1<<31))
		if _, err := io.ReadFull(c.br, frag); err != nil {
			return nil, err
		}
		rec = append(rec, frag...)
		if n&(1<<31) != 0 {
			break
		}
	}
	r := &xdrr{b: rec}
	xid, typ, stat := r.u32(), r.u32(), r.u32()
	if r.err != nil || xid != c.xid || typ != 1 {
		return nil, fmt.Errorf("malformed RPC reply (xid %d type %d)", xid, typ)
	}
	if stat != 0 {
		return nil, fmt.Errorf("RPC call denied (reject_stat %d)", r.u32())
	}
	r.u32()    // verifier flavor
	r.opaque() // verifier body
	if as := r.u32(); as != 0 || r.err != nil {
		return nil, fmt.Errorf("RPC call not accepted (accept_stat %d)", as)
	}
	return r, nil
}

// mount calls MOUNT MNT and returns the root handle.
func (c *rpcClient) mount(path string) ([]byte, error) {
	r, err := c.call(progMount, 3, 1, xdrw{}.opaque([]byte(path)))
	if err != nil {
		return nil, fmt.Errorf("MOUNT %s: %w", path, err)
	}
	if st := r.u32(); st != 0 {
		return nil, fmt.Errorf("MOUNT %s: mountstat3 %d", path, st)
	}
	fh := r.opaque()
	if r.err != nil {
		return nil, fmt.Errorf("MOUNT %s: %w", path, r.err)
	}
	return fh, nil
}

func (c *rpcClient) getattr(fh []byte) (uint32, error) {
	r, err := c.call(progNFS, 3, procGetattr, xdrw{}.opaque(fh))
	if err != nil {
		return 0, err
	}
	return r.u32(), r.err
}

func (c *rpcClient) lookup(dir []byte, name string) (uint32, []byte, error) {
	r, err := c.call(progNFS, 3, procLookup, xdrw{}.opaque(dir).opaque([]byte(name)))
	if err != nil {
		return 0, nil, err
	}
	st := r.u32()
	if st != nfsOK {
		return st, nil, r.err
	}
	return st, r.opaque(), r.err
}

func (c *rpcClient) read(fh []byte, off uint64, count uint32) (uint32, []byte, error) {
	r, err := c.call(progNFS, 3, procRead, xdrw{}.opaque(fh).u64(off).u32(count))
	if err != nil {
		return 0, nil, err
	}
	st := r.u32()
	if st != nfsOK {
		return st, nil, r.err
	}
	r.postOpAttr()
	r.u32() // count
	r.u32() // eof
	return st, r.opaque(), r.err
}

// readdir returns the names of the first page of a directory.
func (c *rpcClient) readdir(fh []byte) (uint32, []string, error) {
	r, err := c.call(progNFS, 3, procReaddir, xdrw{}.opaque(fh).u64(0).u64(0).u32(8192))
	if err != nil {
		return 0, nil, err
	}
	st := r.u32()
	if st != nfsOK {
		return st, nil, r.err
	}
	r.postOpAttr()
	r.skip(8) // cookieverf
	var names []string
	for i := 0; i < 10_000 && r.u32() == 1 && r.err == nil; i++ {
		r.skip(8) // fileid
		names = append(names, string(r.opaque()))
		r.skip(8) // cookie
	}
	return st, names, r.err
}

// xdrr reads XDR; the first error sticks.
type xdrr struct {
	b   []byte
	err error
}

func (r *xdrr) skip(n int) {
	if r.err != nil {
		return
	}
	if n > len(r.b) {
		r.err = io.ErrUnexpectedEOF
		return
	}
	r.b = r.b[n:]
}

func (r *xdrr) u32() uint32 {
	if r.err != nil || len(r.b) < 4 {
		if r.err == nil {
			r.err = io.ErrUnexpectedEOF
		}
		return 0
	}
	v := binary.BigEndian.Uint32(r.b)
	r.b = r.b[4:]
	return v
}

func (r *xdrr) opaque() []byte {
	n := int(r.u32())
	if r.err != nil {
		return nil
	}
	if n > len(r.b) {
		r.err = io.ErrUnexpectedEOF
		return nil
	}
	v := append([]byte(nil), r.b[:n]...)
	r.skip((n + 3) &^ 3)
	return v
}

// postOpAttr skips a post_op_attr (a flag and a 84-byte fattr3).
func (r *xdrr) postOpAttr() {
	if r.u32() == 1 {
		r.skip(84)
	}
}
