// Package nfs4load drives an NFSv4.1 server over TCP for the data-plane
// benchmark: the workloads of package nfsload (but the untar, which needs a
// FUSE client, and those speak only NFSv4.0), made of the COMPOUNDs a Linux
// NFSv4.1 client sends for them, so that efsd's mount target and
// nfs-ganesha are measured doing the same work:
//
//   - a session per connection (EXCHANGE_ID, CREATE_SESSION,
//     RECLAIM_COMPLETE), every call behind a SEQUENCE;
//   - open(O_CREAT): PUTFH(dir) OPEN(UNCHECKED4, CLAIM_NULL) GETFH ACCESS
//     GETATTR; an open of an existing file alike, OPEN4_NOCREATE;
//   - write: PUTFH WRITE(UNSTABLE4) GETATTR(change, size, times) in blocks
//     of the server's maxwrite (at most 1 MiB, and within the session's
//     request size), then PUTFH COMMIT, then PUTFH CLOSE GETATTR;
//   - read: PUTFH READ in blocks of maxread (at most 1 MiB);
//   - ls -l: READDIR with the attributes Linux asks for a readdirplus
//     (file handle, type, size, mode, links, owners, times...), its count
//     doubling from 4 KiB to the read size as Linux's does; a lookup of a
//     name not cached: PUTFH LOOKUP GETFH GETATTR;
//   - mv: PUTFH SAVEFH PUTFH RENAME; rm: PUTFH REMOVE.
//
// A Linux client sends a small file's only WRITE at close as FILE_SYNC
// with no COMMIT; like nfsload, this one writes UNSTABLE and commits, so
// that the NFSv3 and NFSv4.1 rows make the same calls.
//
// As in nfsload, concurrency comes from several connections, each with
// its own client ID and session, one call at a time (slot 0), each driven
// by its own goroutine. What is read is checked (sizes, types, every byte
// of file data), so a server that answers fast with wrong data fails the
// workload instead of winning it.
package nfs4load

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"path"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/buildbarn/go-xdr/pkg/protocols/nfsv4"

	"github.com/efsd/efsd/bench/internal/nfsload"
	"github.com/efsd/efsd/internal/efstest/nfs4client"
)

// Endpoint is an NFSv4.1 export to drive.
type Endpoint struct {
	Addr string // host:port of the NFS program; a loopback address
	// Path is the export's path from the server's root: "" for efsd's
	// mount target (its root is the file system's), the pseudo path
	// ("/export") for nfs-ganesha.
	Path string
}

// Result is one workload's measurement, as nfsload's.
type Result = nfsload.Result

// maxIO bounds READ and WRITE sizes, as nfsload's blocks and Linux's
// default rsize and wsize.
const maxIO = 1 << 20

// rwOverhead is what a COMPOUND of SEQUENCE, PUTFH and WRITE (or its
// reply to READ) adds to the data, with room to spare: a block is cut to
// the session's size less this, as Linux does.
const rwOverhead = 1024

// Conn is one TCP connection with its own NFSv4.1 client ID and session,
// calling as root (AUTH_SYS 0/0).
type Conn struct {
	S     *nfs4client.Session
	conn  *nfs4client.Conn
	root  []byte // the export's root handle
	wsize int    // WRITE block
	rsize int    // READ block, and READDIR's largest count
	owner []byte // the open-owner

	opens map[string]nfsv4.Stateid4 // by file handle: closed by Close
}

// owners makes every client owner of this process unique, and those of a
// later run of it too (a server may still know the earlier ones).
var (
	ownerBase = fmt.Sprintf("efsbench-%d-%x", os.Getpid(), time.Now().UnixNano())
	ownerSeq  atomic.Uint64
)

// Connect dials e, sets up a session and finds the export's root handle
// and the server's maxread and maxwrite.
func Connect(ctx context.Context, e Endpoint) (*Conn, error) {
	host, _, err := net.SplitHostPort(e.Addr)
	if err != nil {
		return nil, fmt.Errorf("nfs4load: %w", err)
	}
	if ip := net.ParseIP(host); ip == nil || !ip.IsLoopback() {
		return nil, fmt.Errorf("nfs4load: refusing to dial %s: not a loopback address", e.Addr)
	}
	nc, err := nfs4client.Dial(ctx, e.Addr, nfs4client.Cred{Machine: "efsbench"})
	if err != nil {
		return nil, err
	}
	s, err := nfs4client.NewSession(ctx, nc, fmt.Sprintf("%s-%d", ownerBase, ownerSeq.Add(1)))
	if err != nil {
		nc.Close()
		return nil, fmt.Errorf("nfs4load: session: %w", err)
	}
	c := &Conn{S: s, conn: nc, owner: []byte("efsbench"), opens: map[string]nfsv4.Stateid4{}}
	ops := []nfsv4.NfsArgop4{&nfsv4.NfsArgop4_OP_PUTROOTFH{}}
	for _, name := range strings.Split(e.Path, "/") {
		if name != "" {
			ops = append(ops, &nfsv4.NfsArgop4_OP_LOOKUP{Oplookup: nfsv4.Lookup4args{Objname: name}})
		}
	}
	ops = append(ops, &nfsv4.NfsArgop4_OP_GETFH{}, getattr(nfsv4.FATTR4_MAXREAD, nfsv4.FATTR4_MAXWRITE))
	res, err := s.Do(ctx, ops...)
	if err != nil {
		c.Close(ctx)
		return nil, fmt.Errorf("nfs4load: root %q: %w", e.Path, err)
	}
	if c.root, err = nfs4client.FH(res[len(res)-2]); err != nil {
		c.Close(ctx)
		return nil, err
	}
	a, err := attrsOf(res[len(res)-1])
	if err != nil {
		c.Close(ctx)
		return nil, err
	}
	fore := s.ForeChannel()
	c.wsize = ioSize(a.MaxWrite, fore.CaMaxrequestsize)
	c.rsize = ioSize(a.MaxRead, fore.CaMaxresponsesize)
	return c, nil
}

// ioSize is a block size as Linux picks it: the server's maximum, at most
// maxIO and what the session carries, rounded down to a power of two.
func ioSize(server uint64, session uint32) int {
	n := uint64(maxIO)
	if server > 0 {
		n = min(n, server)
	}
	if session > rwOverhead {
		n = min(n, uint64(session-rwOverhead))
	}
	p := 4096
	for uint64(p*2) <= n {
		p *= 2
	}
	return p
}

// Blocks connects to e and returns the WRITE and READ blocks the
// workloads use there (for the report).
func Blocks(ctx context.Context, e Endpoint) (wsize, rsize int, err error) {
	err = with(ctx, e, func(c *Conn) error {
		wsize, rsize = c.wsize, c.rsize
		return nil
	})
	return wsize, rsize, err
}

// Close closes what the connection still has open, destroys its session
// and client ID, as a client's unmount does, and closes the connection.
func (c *Conn) Close(ctx context.Context) error {
	var errs []error
	for fh, sid := range c.opens {
		errs = append(errs, c.close(ctx, []byte(fh), sid))
	}
	if err := c.S.DestroySession(ctx); err != nil {
		errs = append(errs, fmt.Errorf("DESTROY_SESSION: %w", err))
	} else if err := c.S.DestroyClientID(ctx); err != nil {
		errs = append(errs, fmt.Errorf("DESTROY_CLIENTID: %w", err))
	}
	c.conn.Close()
	return errors.Join(errs...)
}

// Linux's attribute sets: what it asks with a LOOKUP, an OPEN, a CLOSE
// and a readdirplus (nfs4_fattr_bitmap and encode_readdir), and after a
// WRITE (its cache consistency bitmask).
var (
	attrsLookup = []uint32{
		nfsv4.FATTR4_TYPE, nfsv4.FATTR4_CHANGE, nfsv4.FATTR4_SIZE, nfsv4.FATTR4_FSID, nfsv4.FATTR4_FILEID,
		nfsv4.FATTR4_MODE, nfsv4.FATTR4_NUMLINKS, nfsv4.FATTR4_OWNER, nfsv4.FATTR4_OWNER_GROUP,
		nfsv4.FATTR4_RAWDEV, nfsv4.FATTR4_SPACE_USED, nfsv4.FATTR4_TIME_ACCESS, nfsv4.FATTR4_TIME_METADATA,
		nfsv4.FATTR4_TIME_MODIFY, nfsv4.FATTR4_MOUNTED_ON_FILEID,
	}
	attrsReaddir = append([]uint32{nfsv4.FATTR4_RDATTR_ERROR, nfsv4.FATTR4_FILEHANDLE}, attrsLookup...)
	attrsWrite   = []uint32{nfsv4.FATTR4_CHANGE, nfsv4.FATTR4_SIZE, nfsv4.FATTR4_TIME_METADATA, nfsv4.FATTR4_TIME_MODIFY}
)

// openAccess is the ACCESS Linux adds to an OPEN (it caches the answer).
const openAccess = nfsv4.ACCESS4_READ | nfsv4.ACCESS4_MODIFY | nfsv4.ACCESS4_EXTEND | nfsv4.ACCESS4_EXECUTE

func getattr(attrs ...uint32) nfsv4.NfsArgop4 {
	return &nfsv4.NfsArgop4_OP_GETATTR{Opgetattr: nfsv4.Getattr4args{AttrRequest: nfs4client.Bitmap(attrs...)}}
}

// as asserts a result's type; a server answering with another is broken.
func as[T any](v any) (T, error) {
	t, ok := v.(T)
	if !ok {
		return t, fmt.Errorf("nfs4load: got %T, want %T", v, t)
	}
	return t, nil
}

func attrsOf(r nfsv4.NfsResop4) (nfs4client.Attrs, error) {
	op, err := as[*nfsv4.NfsResop4_OP_GETATTR](r)
	if err != nil {
		return nfs4client.Attrs{}, err
	}
	ok, err := as[*nfsv4.Getattr4res_NFS4_OK](op.Opgetattr)
	if err != nil {
		return nfs4client.Attrs{}, err
	}
	return nfs4client.DecodeAttrs(ok.Resok4.ObjAttributes)
}

// dirFH looks up dir (a "/"-separated path from the export's root) and
// returns its handle.
func (c *Conn) dirFH(ctx context.Context, dir string) ([]byte, error) {
	ops := []nfsv4.NfsArgop4{nfs4client.PutFH(c.root)}
	for _, name := range strings.Split(dir, "/") {
		if name != "" {
			ops = append(ops, &nfsv4.NfsArgop4_OP_LOOKUP{Oplookup: nfsv4.Lookup4args{Objname: name}})
		}
	}
	res, err := c.S.Do(ctx, append(ops, &nfsv4.NfsArgop4_OP_GETFH{})...)
	if err != nil {
		return nil, fmt.Errorf("LOOKUP %s: %w", dir, err)
	}
	return nfs4client.FH(res[len(res)-1])
}

// open opens name in the directory dfh as Linux's open(2) does, creating
// it (UNCHECKED4, mode 0644) when create is set, and returns its handle,
// its open stateid and its attributes.
func (c *Conn) open(ctx context.Context, dfh []byte, name string, create bool, access uint32) ([]byte, nfsv4.Stateid4, nfs4client.Attrs, error) {
	var how nfsv4.Openflag4 = &nfsv4.Openflag4_default{Opentype: nfsv4.OPEN4_NOCREATE}
	if create {
		mode := uint32(0o644)
		f, err := nfs4client.SetAttrs{Mode: &mode}.Encode()
		if err != nil {
			return nil, nfsv4.Stateid4{}, nfs4client.Attrs{}, err
		}
		how = &nfsv4.Openflag4_OPEN4_CREATE{How: &nfsv4.Createhow4_UNCHECKED4{Createattrs: f}}
	}
	res, err := c.S.Do(ctx, nfs4client.PutFH(dfh), &nfsv4.NfsArgop4_OP_OPEN{Opopen: nfsv4.Open4args{
		ShareAccess: access,
		Owner:       nfsv4.StateOwner4{Clientid: c.S.ClientID(), Owner: c.owner},
		Openhow:     how,
		Claim:       &nfsv4.OpenClaim4_CLAIM_NULL{File: name},
	}}, &nfsv4.NfsArgop4_OP_GETFH{},
		&nfsv4.NfsArgop4_OP_ACCESS{Opaccess: nfsv4.Access4args{Access: openAccess}},
		getattr(attrsLookup...))
	if err != nil {
		return nil, nfsv4.Stateid4{}, nfs4client.Attrs{}, fmt.Errorf("OPEN %s: %w", name, err)
	}
	op, err := as[*nfsv4.NfsResop4_OP_OPEN](res[1])
	if err != nil {
		return nil, nfsv4.Stateid4{}, nfs4client.Attrs{}, err
	}
	ok, err := as[*nfsv4.Open4res_NFS4_OK](op.Opopen)
	if err != nil {
		return nil, nfsv4.Stateid4{}, nfs4client.Attrs{}, err
	}
	fh, err := nfs4client.FH(res[2])
	if err != nil {
		return nil, nfsv4.Stateid4{}, nfs4client.Attrs{}, err
	}
	sid := ok.Resok4.Stateid
	c.opens[string(fh)] = sid
	a, err := attrsOf(res[4])
	if err == nil && a.Type != nfsv4.NF4REG {
		err = fmt.Errorf("OPEN %s: type %d, not a regular file", name, a.Type)
	}
	return fh, sid, a, err
}

// close closes the open sid of fh: PUTFH CLOSE GETATTR.
func (c *Conn) close(ctx context.Context, fh []byte, sid nfsv4.Stateid4) error {
	delete(c.opens, string(fh))
	if _, err := c.S.Do(ctx, nfs4client.PutFH(fh), &nfsv4.NfsArgop4_OP_CLOSE{Opclose: nfsv4.Close4args{OpenStateid: sid}},
		getattr(attrsWrite...)); err != nil {
		return fmt.Errorf("CLOSE: %w", err)
	}
	return nil
}

// write writes data at off through fh in UNSTABLE WRITEs of at most the
// connection's block size, each followed by the GETATTR Linux asks for,
// and returns the write verifier (the same for every WRITE, or an error).
func (c *Conn) write(ctx context.Context, fh []byte, sid nfsv4.Stateid4, off int64, data []byte) (nfsv4.Verifier4, error) {
	var verf nfsv4.Verifier4
	for first := true; len(data) > 0; first = false {
		n := min(len(data), c.wsize)
		res, err := c.S.Do(ctx, nfs4client.PutFH(fh), &nfsv4.NfsArgop4_OP_WRITE{Opwrite: nfsv4.Write4args{
			Stateid: sid, Offset: uint64(off), Stable: nfsv4.UNSTABLE4, Data: data[:n],
		}}, getattr(attrsWrite...))
		if err != nil {
			return verf, fmt.Errorf("WRITE at %d: %w", off, err)
		}
		op, err := as[*nfsv4.NfsResop4_OP_WRITE](res[1])
		if err != nil {
			return verf, err
		}
		ok, err := as[*nfsv4.Write4res_NFS4_OK](op.Opwrite)
		if err != nil {
			return verf, err
		}
		w := ok.Resok4
		if w.Count == 0 || int(w.Count) > n {
			return verf, fmt.Errorf("WRITE of %d bytes at %d wrote %d", n, off, w.Count)
		}
		if !first && w.Writeverf != verf {
			return verf, errors.New("WRITE: the write verifier changed (server restarted?)")
		}
		verf = w.Writeverf
		data, off = data[w.Count:], off+int64(w.Count)
	}
	return verf, nil
}

// commit commits all of fh and returns the write verifier.
func (c *Conn) commit(ctx context.Context, fh []byte) (nfsv4.Verifier4, error) {
	v, err := c.S.Commit(ctx, fh, 0, 0)
	if err != nil {
		return v, fmt.Errorf("COMMIT: %w", err)
	}
	return v, nil
}

// read reads len(b) bytes of the file name at off through fh in READs of
// at most the connection's block size, and checks them against what
// WriteFile wrote there; a short file is an error.
func (c *Conn) read(ctx context.Context, name string, fh []byte, sid nfsv4.Stateid4, off int64, b []byte) error {
	start, all := off, b
	for len(b) > 0 {
		n := min(len(b), c.rsize)
		data, eof, err := c.S.Read(ctx, fh, sid, uint64(off), uint32(n))
		if err != nil {
			return fmt.Errorf("READ at %d: %w", off, err)
		}
		if len(data) == 0 {
			return fmt.Errorf("READ of %d at %d: no bytes (EOF %v)", n, off, eof)
		}
		copy(b, data)
		b, off = b[len(data):], off+int64(len(data))
	}
	if !matches(all, start) {
		return fmt.Errorf("READ of %s at %d: not the bytes written", name, start)
	}
	return nil
}

// parallel connects conns times, runs setup(i, conn) for each (untimed),
// then run(i, conn) for each at once and, once all have returned, finish
// (when not nil), timed from the first run's start to finish's end. Then
// every connection is closed (untimed).
func parallel(ctx context.Context, e Endpoint, conns int, setup, run func(i int, c *Conn) error, finish func() error) (wall time.Duration, err error) {
	cs := make([]*Conn, conns)
	defer func() {
		for _, c := range cs {
			if c != nil {
				err = errors.Join(err, c.Close(ctx))
			}
		}
	}()
	for i := range cs {
		if cs[i], err = Connect(ctx, e); err != nil {
			return 0, err
		}
		if setup != nil {
			if err = setup(i, cs[i]); err != nil {
				return 0, err
			}
		}
	}
	var wg sync.WaitGroup
	errs := make([]error, conns)
	t0 := time.Now()
	for i, c := range cs {
		wg.Go(func() { errs[i] = run(i, c) })
	}
	wg.Wait()
	if err = errors.Join(errs...); err == nil && finish != nil {
		err = finish()
	}
	return time.Since(t0), err
}

// with connects once, runs f and closes the connection.
func with(ctx context.Context, e Endpoint, f func(c *Conn) error) (err error) {
	c, err := Connect(ctx, e)
	if err != nil {
		return err
	}
	defer func() { err = errors.Join(err, c.Close(ctx)) }()
	return f(c)
}

// Setup makes dir (and its parents) under the export's root.
func Setup(ctx context.Context, e Endpoint, dir string) error {
	return with(ctx, e, func(c *Conn) error {
		p := ""
		for _, d := range strings.Split(strings.Trim(path.Clean(dir), "/"), "/") {
			parent := p
			p = path.Join(p, d)
			if _, err := c.dirFH(ctx, p); err == nil {
				continue
			}
			pfh, err := c.dirFH(ctx, parent)
			if err != nil {
				return err
			}
			mode := uint32(0o755)
			f, err := nfs4client.SetAttrs{Mode: &mode}.Encode()
			if err != nil {
				return err
			}
			if _, err := c.S.Do(ctx, nfs4client.PutFH(pfh), &nfsv4.NfsArgop4_OP_CREATE{Opcreate: nfsv4.Create4args{
				Objtype: &nfsv4.Createtype4_NF4DIR{}, Objname: d, Createattrs: f,
			}}); err != nil {
				return fmt.Errorf("CREATE %s: %w", p, err)
			}
		}
		return nil
	})
}

// WaitReady waits, within ctx, until the server takes new opens: a
// server in its grace period after a start refuses them with
// NFS4ERR_GRACE. It creates and removes a file in dir (which must
// exist) to find out.
func WaitReady(ctx context.Context, e Endpoint, dir string) error {
	for {
		err := with(ctx, e, func(c *Conn) error {
			dfh, err := c.dirFH(ctx, dir)
			if err != nil {
				return err
			}
			fh, sid, _, err := c.open(ctx, dfh, ".efsbench-ready", true, nfsv4.OPEN4_SHARE_ACCESS_WRITE)
			if err != nil {
				return err
			}
			if err := c.close(ctx, fh, sid); err != nil {
				return err
			}
			_, err = c.S.Do(ctx, nfs4client.PutFH(dfh), &nfsv4.NfsArgop4_OP_REMOVE{Opremove: nfsv4.Remove4args{Target: ".efsbench-ready"}})
			return err
		})
		if !nfs4client.IsStatus(err, nfsv4.NFS4ERR_GRACE) {
			return err
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("nfs4load: still in its grace period: %w", ctx.Err())
		case <-time.After(250 * time.Millisecond):
		}
	}
}

// CreateFiles creates n files of size bytes in dir (which must exist)
// over conns connections, per file open(O_CREAT), write and close: OPEN
// (UNCHECKED4), WRITE (UNSTABLE4), COMMIT and CLOSE. Ops is files.
func CreateFiles(ctx context.Context, e Endpoint, dir string, n, size, conns int) (Result, error) {
	data := make([]byte, size)
	rand.NewChaCha8([32]byte{1}).Read(data)
	dfhs := make([][]byte, conns)
	wall, err := parallel(ctx, e, conns, func(i int, c *Conn) (err error) {
		dfhs[i], err = c.dirFH(ctx, dir)
		return err
	}, func(i int, c *Conn) error {
		for j := i; j < n; j += conns {
			fh, sid, _, err := c.open(ctx, dfhs[i], fmt.Sprintf("f%06d", j), true, nfsv4.OPEN4_SHARE_ACCESS_WRITE)
			if err != nil {
				return err
			}
			verf, err := c.write(ctx, fh, sid, 0, data)
			if err != nil {
				return err
			}
			if err := c.commitCheck(ctx, fh, verf); err != nil {
				return err
			}
			if err := c.close(ctx, fh, sid); err != nil {
				return err
			}
		}
		return nil
	}, nil)
	return Result{Ops: int64(n), Bytes: int64(n) * int64(size), Wall: wall}, err
}

// commitCheck commits fh and checks that the server's write verifier is
// the one its WRITEs returned (else the data may be lost: a client would
// write it again).
func (c *Conn) commitCheck(ctx context.Context, fh []byte, verf nfsv4.Verifier4) error {
	cv, err := c.commit(ctx, fh)
	if err == nil && cv != verf {
		err = errors.New("COMMIT: write verifier differs from the WRITEs' (server restarted?)")
	}
	return err
}

// The big file's content: byte p is pattern[p % len(pattern)]. Its
// length is no power of two, so a block read from the wrong offset does
// not match.
var pattern = func() []byte {
	b := make([]byte, 1<<20+4093)
	rand.NewChaCha8([32]byte{2}).Read(b)
	return b
}()

// fill fills b with the big file's content at off.
func fill(b []byte, off int64) {
	for len(b) > 0 {
		n := copy(b, pattern[off%int64(len(pattern)):])
		b, off = b[n:], off+int64(n)
	}
}

// matches reports whether b is the big file's content at off.
func matches(b []byte, off int64) bool {
	for len(b) > 0 {
		want := pattern[off%int64(len(pattern)):]
		n := min(len(b), len(want))
		if !bytes.Equal(b[:n], want[:n]) {
			return false
		}
		b, off = b[n:], off+int64(n)
	}
	return true
}

// split cuts [0, size) into conns contiguous parts, each a multiple of
// block bytes but the last.
func split(size int64, conns, block int) int64 {
	return (size/int64(conns) + int64(block) - 1) / int64(block) * int64(block)
}

// WriteFile creates the file name (in a directory that exists) and
// writes size bytes into it, each of conns connections (each with its
// own open) a contiguous part, then COMMITs it: the time is from the
// first WRITE until the COMMIT answered, the data durable. The file is
// closed after. Ops is WRITE calls.
func WriteFile(ctx context.Context, e Endpoint, name string, size int64, conns int) (Result, error) {
	var res Result
	err := with(ctx, e, func(c0 *Conn) error {
		dfh, err := c0.dirFH(ctx, path.Dir(name))
		if err != nil {
			return err
		}
		fh, sid, _, err := c0.open(ctx, dfh, path.Base(name), true, nfsv4.OPEN4_SHARE_ACCESS_WRITE)
		if err != nil {
			return err
		}
		part := split(size, conns, c0.wsize)
		fhs := make([][]byte, conns)
		sids := make([]nfsv4.Stateid4, conns)
		verfs := make([]nfsv4.Verifier4, conns)
		var commitVerf nfsv4.Verifier4
		wall, err := parallel(ctx, e, conns, func(i int, c *Conn) (err error) {
			fhs[i], sids[i], _, err = c.open(ctx, dfh, path.Base(name), false, nfsv4.OPEN4_SHARE_ACCESS_WRITE)
			return err
		}, func(i int, c *Conn) error {
			block := make([]byte, c0.wsize)
			for off := int64(i) * part; off < min(size, int64(i+1)*part); off += int64(len(block)) {
				b := block[:min(int64(len(block)), size-off)]
				fill(b, off)
				v, err := c.write(ctx, fhs[i], sids[i], off, b)
				if err != nil {
					return err
				}
				verfs[i] = v
			}
			return nil
		}, func() (err error) {
			commitVerf, err = c0.commit(ctx, fh)
			return err
		})
		res = Result{Ops: (size + int64(c0.wsize) - 1) / int64(c0.wsize), Bytes: size, Wall: wall}
		if err != nil {
			return err
		}
		for i, v := range verfs {
			if v != commitVerf && int64(i)*part < size {
				return errors.New("COMMIT: write verifier differs from the WRITEs' (server restarted?)")
			}
		}
		a, err := c0.getattr(ctx, fh)
		if err == nil && a.Size != uint64(size) {
			err = fmt.Errorf("%s: %d bytes after writing %d", name, a.Size, size)
		}
		if err != nil {
			return err
		}
		return c0.close(ctx, fh, sid)
	})
	return res, err
}

func (c *Conn) getattr(ctx context.Context, fh []byte) (nfs4client.Attrs, error) {
	res, err := c.S.Do(ctx, nfs4client.PutFH(fh), getattr(attrsLookup...))
	if err != nil {
		return nfs4client.Attrs{}, fmt.Errorf("GETATTR: %w", err)
	}
	return attrsOf(res[1])
}

// openRead opens name (a path from the export's root) for reading on c
// and checks that it has size bytes.
func (c *Conn) openRead(ctx context.Context, name string, size int64) ([]byte, nfsv4.Stateid4, error) {
	dfh, err := c.dirFH(ctx, path.Dir(name))
	if err != nil {
		return nil, nfsv4.Stateid4{}, err
	}
	fh, sid, a, err := c.open(ctx, dfh, path.Base(name), false, nfsv4.OPEN4_SHARE_ACCESS_READ)
	if err == nil && a.Size != uint64(size) {
		err = fmt.Errorf("%s has %d bytes, not %d", name, a.Size, size)
	}
	return fh, sid, err
}

// ReadFile reads the file name (size bytes, as WriteFile wrote it) whole,
// each of conns connections a contiguous part, and checks every byte.
// Ops is READ calls.
func ReadFile(ctx context.Context, e Endpoint, name string, size int64, conns int) (Result, error) {
	fhs := make([][]byte, conns)
	sids := make([]nfsv4.Stateid4, conns)
	var rsize int
	wall, err := parallel(ctx, e, conns, func(i int, c *Conn) (err error) {
		rsize = c.rsize
		fhs[i], sids[i], err = c.openRead(ctx, name, size)
		return err
	}, func(i int, c *Conn) error {
		part := split(size, conns, c.rsize)
		b := make([]byte, c.rsize)
		for off := int64(i) * part; off < min(size, int64(i+1)*part); off += int64(len(b)) {
			chunk := b[:min(int64(len(b)), size-off)]
			if err := c.read(ctx, name, fhs[i], sids[i], off, chunk); err != nil {
				return err
			}
		}
		return nil
	}, nil)
	return Result{Ops: (size + int64(rsize) - 1) / int64(max(rsize, 1)), Bytes: size, Wall: wall}, err
}

// ReadRandom makes count READs of 4 KiB at random 4 KiB-aligned offsets
// of the file name (size bytes, as WriteFile wrote it) over conns
// connections, and checks every byte. Ops is READs.
func ReadRandom(ctx context.Context, e Endpoint, name string, size int64, count, conns int) (Result, error) {
	fhs := make([][]byte, conns)
	sids := make([]nfsv4.Stateid4, conns)
	wall, err := parallel(ctx, e, conns, func(i int, c *Conn) (err error) {
		fhs[i], sids[i], err = c.openRead(ctx, name, size)
		return err
	}, func(i int, c *Conn) error {
		rng := rand.New(rand.NewPCG(uint64(i), 7))
		b := make([]byte, 4096)
		for j := i; j < count; j += conns {
			off := rng.Int64N(size/4096) * 4096
			if err := c.read(ctx, name, fhs[i], sids[i], off, b); err != nil {
				return err
			}
		}
		return nil
	}, nil)
	return Result{Ops: int64(count), Bytes: int64(count) * 4096, Wall: wall}, err
}

// readdirStart is the first READDIR's count; Linux doubles it on each
// call of a listing read in order, up to its read size.
const readdirStart = 4096

// ListDir lists dir with READDIR as Linux's readdirplus does (the entries'
// attributes and handles) on one connection, checks that every entry is a
// regular file of size bytes with a handle, and returns the names. Ops is
// entries.
func ListDir(ctx context.Context, e Endpoint, dir string, size int64) (Result, []string, error) {
	var names []string
	var wall time.Duration
	err := with(ctx, e, func(c *Conn) error {
		dfh, err := c.dirFH(ctx, dir)
		if err != nil {
			return err
		}
		seen := map[string]bool{}
		var cookie uint64
		var verf nfsv4.Verifier4
		count := uint32(readdirStart)
		req := nfs4client.Bitmap(attrsReaddir...)
		t0 := time.Now()
		for calls := 0; ; calls++ {
			if calls > 1_000_000 {
				return errors.New("READDIR: no end after a million calls")
			}
			res, err := c.S.Do(ctx, nfs4client.PutFH(dfh), &nfsv4.NfsArgop4_OP_READDIR{Opreaddir: nfsv4.Readdir4args{
				Cookie: cookie, Cookieverf: verf, Dircount: count, Maxcount: count, AttrRequest: req,
			}})
			if err != nil {
				return fmt.Errorf("READDIR: %w", err)
			}
			op, err := as[*nfsv4.NfsResop4_OP_READDIR](res[1])
			if err != nil {
				return err
			}
			ok, err := as[*nfsv4.Readdir4res_NFS4_OK](op.Opreaddir)
			if err != nil {
				return err
			}
			n := 0
			for en := ok.Resok4.Reply.Entries; en != nil; en = en.Nextentry {
				if err := checkEntry(en, size, seen); err != nil {
					return err
				}
				names = append(names, en.Name)
				cookie = en.Cookie
				n++
			}
			if ok.Resok4.Reply.Eof {
				break
			}
			if n == 0 {
				return errors.New("READDIR: no entry and no EOF")
			}
			verf = ok.Resok4.Cookieverf
			count = min(2*count, uint32(c.rsize))
		}
		wall = time.Since(t0)
		return nil
	})
	return Result{Ops: int64(len(names)), Wall: wall}, names, err
}

// checkEntry checks a READDIR entry: a new name, a regular file of size
// bytes, with a handle and no attribute error.
func checkEntry(en *nfsv4.Entry4, size int64, seen map[string]bool) error {
	if en.Name == "" || en.Name == "." || en.Name == ".." || seen[en.Name] {
		return fmt.Errorf("READDIR: entry %q (twice, or not a name)", en.Name)
	}
	seen[en.Name] = true
	a, err := nfs4client.DecodeAttrs(en.Attrs)
	if err != nil {
		return fmt.Errorf("READDIR entry %s: %w", en.Name, err)
	}
	switch {
	case a.Has(nfsv4.FATTR4_RDATTR_ERROR) && a.RdattrError != nfsv4.NFS4_OK:
		return fmt.Errorf("READDIR entry %s: rdattr_error %s", en.Name, nfs4client.StatusName(a.RdattrError))
	case !a.Has(nfsv4.FATTR4_FILEHANDLE) || len(a.Filehandle) == 0:
		return fmt.Errorf("READDIR entry %s: no file handle", en.Name)
	case a.Type != nfsv4.NF4REG || a.Size != uint64(size):
		return fmt.Errorf("READDIR entry %s: type %d, %d bytes; want a regular file of %d", en.Name, a.Type, a.Size, size)
	}
	return nil
}

// Getattrs looks every name of dir up with its attributes, as Linux's
// stat(2) of a name not in its cache (PUTFH LOOKUP GETFH GETATTR), over
// conns connections, and checks that each is a regular file of size
// bytes. Ops is names.
func Getattrs(ctx context.Context, e Endpoint, dir string, names []string, size int64, conns int) (Result, error) {
	dfhs := make([][]byte, conns)
	wall, err := parallel(ctx, e, conns, func(i int, c *Conn) (err error) {
		dfhs[i], err = c.dirFH(ctx, dir)
		return err
	}, func(i int, c *Conn) error {
		for j := i; j < len(names); j += conns {
			res, err := c.S.Do(ctx, nfs4client.PutFH(dfhs[i]), &nfsv4.NfsArgop4_OP_LOOKUP{Oplookup: nfsv4.Lookup4args{Objname: names[j]}},
				&nfsv4.NfsArgop4_OP_GETFH{}, getattr(attrsLookup...))
			if err != nil {
				return fmt.Errorf("LOOKUP %s: %w", names[j], err)
			}
			fh, err := nfs4client.FH(res[2])
			if err != nil {
				return err
			}
			a, err := attrsOf(res[3])
			if err != nil {
				return err
			}
			if len(fh) == 0 || a.Type != nfsv4.NF4REG || a.Size != uint64(size) {
				return fmt.Errorf("LOOKUP %s: type %d, %d bytes, handle of %d bytes; want a regular file of %d", names[j], a.Type, a.Size, len(fh), size)
			}
		}
		return nil
	}, nil)
	return Result{Ops: int64(len(names)), Wall: wall}, err
}

// RenameAll renames every name of dir to name+suffix over conns
// connections (PUTFH SAVEFH PUTFH RENAME). Ops is renames.
func RenameAll(ctx context.Context, e Endpoint, dir string, names []string, suffix string, conns int) (Result, error) {
	dfhs := make([][]byte, conns)
	wall, err := parallel(ctx, e, conns, func(i int, c *Conn) (err error) {
		dfhs[i], err = c.dirFH(ctx, dir)
		return err
	}, func(i int, c *Conn) error {
		for j := i; j < len(names); j += conns {
			if _, err := c.S.Do(ctx, nfs4client.PutFH(dfhs[i]), &nfsv4.NfsArgop4_OP_SAVEFH{}, nfs4client.PutFH(dfhs[i]),
				&nfsv4.NfsArgop4_OP_RENAME{Oprename: nfsv4.Rename4args{Oldname: names[j], Newname: names[j] + suffix}}); err != nil {
				return fmt.Errorf("RENAME %s: %w", names[j], err)
			}
		}
		return nil
	}, nil)
	return Result{Ops: int64(len(names)), Wall: wall}, err
}

// RemoveAll removes every name of dir over conns connections (PUTFH
// REMOVE). Ops is removes.
func RemoveAll(ctx context.Context, e Endpoint, dir string, names []string, conns int) (Result, error) {
	dfhs := make([][]byte, conns)
	wall, err := parallel(ctx, e, conns, func(i int, c *Conn) (err error) {
		dfhs[i], err = c.dirFH(ctx, dir)
		return err
	}, func(i int, c *Conn) error {
		for j := i; j < len(names); j += conns {
			if _, err := c.S.Do(ctx, nfs4client.PutFH(dfhs[i]), &nfsv4.NfsArgop4_OP_REMOVE{Opremove: nfsv4.Remove4args{Target: names[j]}}); err != nil {
				return fmt.Errorf("REMOVE %s: %w", names[j], err)
			}
		}
		return nil
	}, nil)
	return Result{Ops: int64(len(names)), Wall: wall}, err
}
