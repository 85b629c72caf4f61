// Package nfsload drives an NFSv3 server over TCP for the data-plane
// benchmark: the same workloads, made of the same calls over the same kind
// of connections, against efsd's mount target and against nfs-ganesha.
// Calls are made as a Linux client makes them where it matters: data is
// written UNSTABLE in blocks of the server's preferred size and committed
// once (close-to-open), files are created UNCHECKED.
//
// go-nfs-client serialises calls on one connection, so concurrency comes
// from several connections, each driven by its own goroutine.
package nfsload

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"path"
	"strings"
	"sync"
	"time"

	nfsc "github.com/willscott/go-nfs-client/nfs"
	"github.com/willscott/go-nfs-client/nfs/rpc"
	"github.com/willscott/go-nfs-client/nfs/xdr"

	"github.com/efsd/efsd/internal/efstest/nfsclient"
)

// Endpoint is an NFSv3 export to drive.
type Endpoint struct {
	NFS    string // host:port of the NFS program
	Mount  string // host:port of MOUNT (efsd serves it on its NFS port)
	Export string // the path to mount
}

// Conn is one TCP connection to the NFS program with the export's root
// handle, calling as root (AUTH_SYS 0/0).
type Conn struct {
	T    *nfsc.Target
	auth rpc.Auth
	rcs  []*rpc.Client
	wmax int // the server's preferred WRITE and READ size, at most 1 MiB
}

// Connect mounts the export and opens a connection to the NFS program.
func Connect(e Endpoint) (*Conn, error) {
	auth := nfsclient.AuthUnix(0, 0)
	mc, err := nfsclient.Dial(e.Mount)
	if err != nil {
		return nil, err
	}
	c := &Conn{auth: auth, rcs: []*rpc.Client{mc}}
	fh, err := mountRoot(mc, auth, e.Export)
	if err != nil {
		c.Close()
		return nil, err
	}
	rc := mc
	if e.NFS != e.Mount {
		if rc, err = nfsclient.Dial(e.NFS); err != nil {
			c.Close()
			return nil, err
		}
		c.rcs = append(c.rcs, rc)
	}
	if c.T, err = nfsc.NewTargetWithClient(rc, auth, fh, e.Export, 0); err != nil {
		c.Close()
		return nil, fmt.Errorf("FSINFO: %w", err)
	}
	info, err := c.T.FSInfo()
	if err != nil {
		c.Close()
		return nil, fmt.Errorf("FSINFO: %w", err)
	}
	c.wmax = int(min(info.WTPref, info.RTPref, 1<<20))
	if c.wmax <= 0 {
		c.wmax = 64 << 10
	}
	return c, nil
}

// Close closes the connections.
func (c *Conn) Close() {
	for _, rc := range c.rcs {
		rc.Close()
	}
}

// mountRoot makes a MOUNT call (MNT) and returns the export's root handle.
func mountRoot(mc *rpc.Client, auth rpc.Auth, export string) ([]byte, error) {
	type mnt struct {
		rpc.Header
		Dirpath string
	}
	res, err := mc.Call(&mnt{rpc.Header{Rpcvers: 2, Prog: nfsc.MountProg, Vers: nfsc.MountVers, Proc: nfsc.MountProc3MNT,
		Cred: auth, Verf: rpc.AuthNull}, export})
	if err != nil {
		return nil, fmt.Errorf("MOUNT %s: %w", export, err)
	}
	st, err := xdr.ReadUint32(res)
	if err != nil {
		return nil, err
	}
	if st != 0 {
		return nil, fmt.Errorf("MOUNT %s: status %d", export, st)
	}
	return xdr.ReadOpaque(res)
}

// Result is one workload's measurement.
type Result struct {
	Ops   int64         // calls or files, as the workload says
	Bytes int64         // data moved
	Wall  time.Duration // first call to last reply
}

// PerSecond is ops per second.
func (r Result) PerSecond() float64 { return float64(r.Ops) / r.Wall.Seconds() }

// MBps is data per second in MB (10^6 bytes).
func (r Result) MBps() float64 { return float64(r.Bytes) / 1e6 / r.Wall.Seconds() }

// parallel connects conns times and runs f(i, conn) for each connection
// at once; the time is from after the connections are made to the last
// f's end.
func parallel(e Endpoint, conns int, f func(i int, c *Conn) error) (time.Duration, error) {
	cs := make([]*Conn, conns)
	defer func() {
		for _, c := range cs {
			if c != nil {
				c.Close()
			}
		}
	}()
	for i := range cs {
		var err error
		if cs[i], err = Connect(e); err != nil {
			return 0, err
		}
	}
	var wg sync.WaitGroup
	errs := make([]error, conns)
	t0 := time.Now()
	for i, c := range cs {
		wg.Go(func() { errs[i] = f(i, c) })
	}
	wg.Wait()
	return time.Since(t0), errors.Join(errs...)
}

// write writes data at off through fh in UNSTABLE WRITEs of at most the
// connection's block size.
func (c *Conn) write(fh []byte, off int64, data []byte) error {
	for len(data) > 0 {
		n := min(len(data), c.wmax)
		w, st, err := nfsclient.Write(c.T, c.auth, fh, uint64(off), data[:n], nfsclient.Unstable)
		if err != nil {
			return err
		}
		if st != 0 {
			return fmt.Errorf("WRITE: status %d", st)
		}
		if w.Count == 0 {
			return errors.New("WRITE wrote nothing")
		}
		data, off = data[w.Count:], off+int64(w.Count)
	}
	return nil
}

func (c *Conn) commit(fh []byte) error {
	_, st, err := nfsclient.Commit(c.T, c.auth, fh)
	if err == nil && st != 0 {
		err = fmt.Errorf("COMMIT: status %d", st)
	}
	return err
}

// read reads len(b) bytes at off through fh in READs of at most the
// connection's block size.
func (c *Conn) read(fh []byte, off int64, b []byte) error {
	for len(b) > 0 {
		data, eof, st, err := nfsclient.Read(c.T, c.auth, fh, uint64(off), uint32(min(len(b), c.wmax)))
		if err != nil {
			return err
		}
		if st != 0 {
			return fmt.Errorf("READ: status %d", st)
		}
		if len(data) == 0 {
			return fmt.Errorf("READ at %d: no data (EOF %v)", off, eof)
		}
		copy(b, data)
		b, off = b[len(data):], off+int64(len(data))
	}
	return nil
}

// Setup makes dir (and its parents) at the export's root.
func Setup(e Endpoint, dir string) error {
	c, err := Connect(e)
	if err != nil {
		return err
	}
	defer c.Close()
	p := ""
	for _, d := range strings.Split(strings.Trim(path.Clean(dir), "/"), "/") {
		p = path.Join(p, d)
		if _, _, err := c.T.Lookup(p); err == nil {
			continue
		}
		if _, err := c.T.Mkdir(p, 0o755); err != nil {
			return fmt.Errorf("MKDIR %s: %w", p, err)
		}
	}
	return nil
}

// CreateFiles creates n files of size bytes in dir (which must exist),
// over conns connections: per file CREATE, WRITE (UNSTABLE) and COMMIT,
// as a Linux client's open, write and close. Ops is files.
func CreateFiles(e Endpoint, dir string, n, size, conns int) (Result, error) {
	data := make([]byte, size)
	rand.NewChaCha8([32]byte{1}).Read(data)
	wall, err := parallel(e, conns, func(i int, c *Conn) error {
		for j := i; j < n; j += conns {
			fh, err := c.T.Create(path.Join(dir, fmt.Sprintf("f%06d", j)), 0o644)
			if err != nil {
				return fmt.Errorf("CREATE: %w", err)
			}
			if err := c.write(fh, 0, data); err != nil {
				return err
			}
			if err := c.commit(fh); err != nil {
				return err
			}
		}
		return nil
	})
	return Result{Ops: int64(n), Bytes: int64(n) * int64(size), Wall: wall}, err
}

// WriteFile writes a new file of size bytes at name, each of conns
// connections a contiguous part in blocks, then COMMITs it: the time is
// until the data is durable. Ops is WRITE calls.
func WriteFile(e Endpoint, name string, size int64, conns int) (Result, error) {
	c0, err := Connect(e)
	if err != nil {
		return Result{}, err
	}
	defer c0.Close()
	fh, err := c0.T.Create(name, 0o644)
	if err != nil {
		return Result{}, fmt.Errorf("CREATE %s: %w", name, err)
	}
	block := make([]byte, c0.wmax)
	rand.NewChaCha8([32]byte{2}).Read(block)
	part := (size/int64(conns) + int64(c0.wmax) - 1) / int64(c0.wmax) * int64(c0.wmax)
	t0 := time.Now()
	_, err = parallel(e, conns, func(i int, c *Conn) error {
		for off := int64(i) * part; off < min(size, int64(i+1)*part); off += int64(len(block)) {
			if err := c.write(fh, off, block[:min(int64(len(block)), size-off)]); err != nil {
				return err
			}
		}
		return nil
	})
	if err == nil {
		err = c0.commit(fh)
	}
	return Result{Ops: (size + int64(c0.wmax) - 1) / int64(c0.wmax), Bytes: size, Wall: time.Since(t0)}, err
}

// lookup connects and looks name up; the caller closes the connection.
func lookup(e Endpoint, name string) (*Conn, []byte, error) {
	c, err := Connect(e)
	if err != nil {
		return nil, nil, err
	}
	_, fh, err := c.T.Lookup(name)
	if err != nil {
		c.Close()
		return nil, nil, fmt.Errorf("LOOKUP %s: %w", name, err)
	}
	return c, fh, nil
}

// ReadFile reads the file name (size bytes) whole, each of conns
// connections a contiguous part. Ops is READ calls.
func ReadFile(e Endpoint, name string, size int64, conns int) (Result, error) {
	c0, fh, err := lookup(e, name)
	if err != nil {
		return Result{}, err
	}
	defer c0.Close()
	part := (size/int64(conns) + int64(c0.wmax) - 1) / int64(c0.wmax) * int64(c0.wmax)
	wall, err := parallel(e, conns, func(i int, c *Conn) error {
		b := make([]byte, c.wmax)
		for off := int64(i) * part; off < min(size, int64(i+1)*part); off += int64(len(b)) {
			if err := c.read(fh, off, b[:min(int64(len(b)), size-off)]); err != nil {
				return err
			}
		}
		return nil
	})
	return Result{Ops: (size + int64(c0.wmax) - 1) / int64(c0.wmax), Bytes: size, Wall: wall}, err
}

// ReadRandom makes count READs of 4 KiB at random 4 KiB-aligned offsets
// of the file name (size bytes) over conns connections. Ops is READs.
func ReadRandom(e Endpoint, name string, size int64, count, conns int) (Result, error) {
	c0, fh, err := lookup(e, name)
	if err != nil {
		return Result{}, err
	}
	defer c0.Close()
	wall, err := parallel(e, conns, func(i int, c *Conn) error {
		rng := rand.New(rand.NewPCG(uint64(i), 7))
		b := make([]byte, 4096)
		for j := i; j < count; j += conns {
			if err := c.read(fh, rng.Int64N(size/4096)*4096, b); err != nil {
				return err
			}
		}
		return nil
	})
	return Result{Ops: int64(count), Bytes: int64(count) * 4096, Wall: wall}, err
}

// ListDir lists dir with READDIRPLUS (go-nfs-client pages through it)
// and returns the names it holds; Ops is entries.
func ListDir(e Endpoint, dir string) (Result, []string, error) {
	c, err := Connect(e)
	if err != nil {
		return Result{}, nil, err
	}
	defer c.Close()
	t0 := time.Now()
	ents, err := c.T.ReadDirPlus(dir)
	wall := time.Since(t0)
	var names []string
	for _, en := range ents {
		if n := en.Name(); n != "." && n != ".." {
			names = append(names, n)
		}
	}
	return Result{Ops: int64(len(names)), Wall: wall}, names, err
}

// Getattrs looks up and GETATTRs every name of dir over conns
// connections (the calls of `ls -l` without a READDIRPLUS cache). Ops is
// names.
func Getattrs(e Endpoint, dir string, names []string, conns int) (Result, error) {
	wall, err := parallel(e, conns, func(i int, c *Conn) error {
		_, dfh, err := c.T.Lookup(dir)
		if err != nil {
			return err
		}
		for j := i; j < len(names); j += conns {
			fh, _, err := lookupIn(c, dfh, names[j])
			if err != nil {
				return err
			}
			if _, err := c.T.GetAttr(fh); err != nil {
				return fmt.Errorf("GETATTR %s: %w", names[j], err)
			}
		}
		return nil
	})
	return Result{Ops: int64(len(names)), Wall: wall}, err
}

// lookupIn makes one LOOKUP of name in the directory dfh.
func lookupIn(c *Conn, dfh []byte, name string) ([]byte, uint32, error) {
	type args struct {
		rpc.Header
		What nfsc.Diropargs3
	}
	st, r, err := nfsclient.Raw(c.T, &args{Header: nfsclient.Header(c.auth, nfsc.NFSProc3Lookup), What: nfsc.Diropargs3{FH: dfh, Filename: name}})
	if err != nil {
		return nil, 0, err
	}
	if st != 0 {
		return nil, st, fmt.Errorf("LOOKUP %s: status %d", name, st)
	}
	fh, err := xdr.ReadOpaque(r)
	return fh, 0, err
}

// RenameAll renames every name of dir to name+suffix over conns
// connections. Ops is renames.
func RenameAll(e Endpoint, dir string, names []string, suffix string, conns int) (Result, error) {
	wall, err := parallel(e, conns, func(i int, c *Conn) error {
		for j := i; j < len(names); j += conns {
			if err := c.T.Rename(path.Join(dir, names[j]), path.Join(dir, names[j]+suffix)); err != nil {
				return fmt.Errorf("RENAME %s: %w", names[j], err)
			}
		}
		return nil
	})
	return Result{Ops: int64(len(names)), Wall: wall}, err
}

// RemoveAll removes every name of dir over conns connections. Ops is
// removes.
func RemoveAll(e Endpoint, dir string, names []string, conns int) (Result, error) {
	wall, err := parallel(e, conns, func(i int, c *Conn) error {
		for j := i; j < len(names); j += conns {
			if err := c.T.Remove(path.Join(dir, names[j])); err != nil {
				return fmt.Errorf("REMOVE %s: %w", names[j], err)
			}
		}
		return nil
	})
	return Result{Ops: int64(len(names)), Wall: wall}, err
}
