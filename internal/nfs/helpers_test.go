package nfs

import (
	"bytes"
	"crypto/rand"
	"errors"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"

	"github.com/efsd/efsd/internal/efstest/nfsclient"
	"github.com/efsd/efsd/internal/fsview"
	nfsc "github.com/willscott/go-nfs-client/nfs"
	"github.com/willscott/go-nfs-client/nfs/rpc"
	"github.com/willscott/go-nfs-client/nfs/xdr"
)

const testFSID = "fs-0123456789abcdef0"

type testEnv struct {
	t       *testing.T
	root    string
	fsID    string
	key     []byte // the data directory's handle key, shared by every server the test starts
	handles fsview.HandleStore
	ro      atomic.Bool
	changes atomic.Int64
	apMu    sync.Mutex
	aps     map[string]fsview.AccessPoint
	limits  ConnLimits   // of the servers start starts
	logger  *slog.Logger // of the servers start starts (default: testLogger)
}

func (e *testEnv) setAP(ap fsview.AccessPoint) {
	e.apMu.Lock()
	defer e.apMu.Unlock()
	e.aps[ap.ID] = ap
}

func (e *testEnv) deleteAP(id string) {
	e.apMu.Lock()
	defer e.apMu.Unlock()
	delete(e.aps, id)
}

func newEnv(t *testing.T) *testEnv {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("the NFS server tests need root (identity switching, chown)")
	}
	root := filepath.Join(t.TempDir(), "fs")
	if err := os.Mkdir(root, 0o755); err != nil {
		t.Fatal(err)
	}
	return &testEnv{t: t, root: root, fsID: testFSID, key: testKey(), handles: fsview.NewMemHandles(), aps: map[string]fsview.AccessPoint{}}
}

func (e *testEnv) export() fsview.Export {
	return fsview.Export{
		FileSystemID: e.fsID,
		HandleKey:    e.key,
		Root:         e.root,
		ReadOnly:     e.ro.Load,
		OnChange:     func() { e.changes.Add(1) },
		AccessPoint: func(id string) (fsview.AccessPoint, bool) {
			e.apMu.Lock()
			defer e.apMu.Unlock()
			ap, ok := e.aps[id]
			return ap, ok
		},
	}
}

func testKey() []byte {
	k := make([]byte, fsview.HandleKeySize)
	if _, err := rand.Read(k); err != nil {
		panic(err)
	}
	return k
}

func testLogger(t *testing.T) *slog.Logger {
	return slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelWarn}))
}

type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(string(bytes.TrimRight(p, "\n")))
	return len(p), nil
}

// start serves the environment's export on a new loopback listener (or on addr) and returns the
// server and its address.
func (e *testEnv) start(addr string) (*Server, string) {
	e.t.Helper()
	if addr == "" {
		addr = "127.0.0.1:0"
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		e.t.Fatal(err)
	}
	logger := e.logger
	if logger == nil {
		logger = testLogger(e.t)
	}
	s := NewServer(e.export(), e.handles, logger)
	s.SetLimits(e.limits)
	done := make(chan error, 1)
	go func() { done <- s.Serve(ln) }()
	e.t.Cleanup(func() {
		_ = s.Close()
		if err := <-done; err != nil {
			e.t.Errorf("Serve: %v", err)
		}
	})
	return s, ln.Addr().String()
}

func (e *testEnv) path(rel string) string { return filepath.Join(e.root, rel) }

// authUnix builds an AUTH_UNIX credential (go-nfs-client's always claims group 0 as a secondary group).
func authUnix(uid, gid uint32, gids ...uint32) rpc.Auth { return nfsclient.AuthUnix(uid, gid, gids...) }

var rootAuth = authUnix(0, 0)

type client struct {
	*nfsc.Target
	auth rpc.Auth
}

// mount mounts dirpath over a new connection (MOUNT and NFS share it).
func mount(t *testing.T, addr, dirpath string, auth rpc.Auth) (*client, error) {
	t.Helper()
	c, err := nfsclient.Dial(addr)
	if err != nil {
		t.Fatal(err)
	}
	m := &nfsc.Mount{Client: c}
	target, err := m.Mount(dirpath, auth)
	if err != nil {
		c.Close()
		return nil, err
	}
	t.Cleanup(c.Close)
	return &client{Target: target, auth: auth}, nil
}

func mustMount(t *testing.T, addr, dirpath string, auth rpc.Auth) *client {
	t.Helper()
	c, err := mount(t, addr, dirpath, auth)
	if err != nil {
		t.Fatalf("mount %s: %v", dirpath, err)
	}
	return c
}

func (c *client) header(proc uint32) rpc.Header { return nfsclient.Header(c.auth, proc) }

// raw makes an NFSv3 call and returns the nfsstat3 and the rest of the reply.
func (c *client) raw(call any) (uint32, io.ReadSeeker, error) { return nfsclient.Raw(c.Target, call) }

// readFH reads a whole file through a handle with READ calls.
func (c *client) readFH(fh []byte) ([]byte, uint32, error) {
	return nfsclient.ReadAll(c.Target, c.auth, fh)
}

// lookupRaw makes one LOOKUP of name (which may contain anything) in directory fh.
func (c *client) lookupRaw(fh []byte, name string) ([]byte, uint32, error) {
	type lookupArgs struct {
		rpc.Header
		What nfsc.Diropargs3
	}
	st, res, err := c.raw(&lookupArgs{Header: c.header(nfsc.NFSProc3Lookup), What: nfsc.Diropargs3{FH: fh, Filename: name}})
	if err != nil || st != 0 {
		return nil, st, err
	}
	h, err := xdr.ReadOpaque(res)
	return h, 0, err
}

func (c *client) getattrRaw(fh []byte) (*nfsc.Fattr, uint32, error) {
	type args struct {
		rpc.Header
		FH []byte
	}
	st, res, err := c.raw(&args{Header: c.header(nfsc.NFSProc3GetAttr), FH: fh})
	if err != nil || st != 0 {
		return nil, st, err
	}
	var a nfsc.Fattr
	err = xdr.Read(res, &a)
	return &a, 0, err
}

func (c *client) setattrRaw(fh []byte, sa nfsc.Sattr3) (uint32, error) {
	type args struct {
		rpc.Header
		FH    []byte
		Sattr nfsc.Sattr3
		Guard uint32
	}
	st, _, err := c.raw(&args{Header: c.header(nfsc.NFSProc3SetAttr), FH: fh, Sattr: sa})
	return st, err
}

// writeFH writes data at offset through a handle (one WRITE, UNSTABLE) and returns the stability
// the server committed to.
func (c *client) writeFH(fh []byte, off uint64, data []byte) (uint32, uint32, error) {
	w, st, err := nfsclient.Write(c.Target, c.auth, fh, off, data, nfsclient.Unstable)
	return st, w.Committed, err
}

func (c *client) commitRaw(fh []byte) (uint32, error) {
	_, st, err := nfsclient.Commit(c.Target, c.auth, fh)
	return st, err
}

func (c *client) writeFile(t *testing.T, path string, data []byte, perm os.FileMode) {
	t.Helper()
	f, err := c.OpenFile(path, perm)
	if err != nil {
		t.Fatalf("OpenFile %s: %v", path, err)
	}
	if _, err := f.Write(data); err != nil {
		t.Fatalf("Write %s: %v", path, err)
	}
	if err := f.Close(); err != nil {
		t.Fatalf("Close %s: %v", path, err)
	}
}

func (c *client) readFile(t *testing.T, path string) []byte {
	t.Helper()
	_, fh, err := c.Lookup(path)
	if err != nil {
		t.Fatalf("Lookup %s: %v", path, err)
	}
	data, st, err := c.readFH(fh)
	if err != nil || st != 0 {
		t.Fatalf("read %s: status %d, %v", path, st, err)
	}
	return data
}

// nfsStatus extracts the NFS3ERR code of a go-nfs-client error (0 if none can be found).
func nfsStatus(err error) uint32 {
	var e *nfsc.Error
	switch {
	case err == nil:
		return 0
	case errors.As(err, &e):
		return e.ErrorNum
	case errors.Is(err, os.ErrPermission):
		return nfsc.NFS3ErrPerm
	case errors.Is(err, os.ErrNotExist):
		return nfsc.NFS3ErrNoEnt
	case errors.Is(err, os.ErrExist):
		return nfsc.NFS3ErrExist
	}
	return 1 << 31
}

func ownerOf(t *testing.T, path string) (uint32, uint32, os.FileMode) {
	t.Helper()
	fi, err := os.Lstat(path)
	if err != nil {
		t.Fatal(err)
	}
	st := fi.Sys().(*syscall.Stat_t)
	return st.Uid, st.Gid, os.FileMode(st.Mode & 07777)
}

func statPath(t *testing.T, path string) uint64 {
	t.Helper()
	fi, err := os.Lstat(path)
	if err != nil {
		t.Fatal(err)
	}
	return fi.Sys().(*syscall.Stat_t).Ino
}

func pattern(n int, seed byte) []byte {
	b := make([]byte, n)
	x := uint32(seed) + 1
	for i := range b {
		x = x*1664525 + 1013904223
		b[i] = byte(x >> 24)
	}
	return b
}

func authNull() rpc.Auth { return rpc.AuthNull }

func netDial(addr string) (net.Conn, error) { return net.Dial("tcp", addr) }
