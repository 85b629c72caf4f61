package nfs4_test

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"math/rand/v2"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/buildbarn/go-xdr/pkg/protocols/nfsv4"
	nfsc "github.com/willscott/go-nfs-client/nfs"

	"github.com/efsd/efsd/internal/efstest/nfs4client"
	"github.com/efsd/efsd/internal/efstest/nfsclient"
	"github.com/efsd/efsd/internal/fsview"
	"github.com/efsd/efsd/internal/nfs"
	"github.com/efsd/efsd/internal/nfs4"
)

// env is one file system served over NFSv3 and NFSv4 on one listener, restartable with the same
// handles, key and stable record.
type env struct {
	t       *testing.T
	root    string
	key     []byte
	handles fsview.HandleStore
	record  nfs4.FileRecord
	ro      atomic.Bool
	changes atomic.Int64
	aps     map[string]fsview.AccessPoint // set before start
	access  atomic.Pointer[fsview.ClientAccess]
	opt     nfs4.Options
	addr    string
	stop    func()
}

func newEnv(t *testing.T, opt nfs4.Options) *env { return newEnvWith(t, opt, nil) }

// newEnvWith is newEnv with set changing the env before the server starts.
func newEnvWith(t *testing.T, opt nfs4.Options, set func(*env)) *env {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("the NFS server tests need root (identity switching, chown)")
	}
	dir := t.TempDir()
	root := filepath.Join(dir, "fs")
	if err := os.Mkdir(root, 0o755); err != nil {
		t.Fatal(err)
	}
	key := make([]byte, fsview.HandleKeySize)
	e := &env{t: t, root: root, key: key, handles: fsview.NewMemHandles(),
		record: nfs4.FileRecord{Path: filepath.Join(dir, "state", "clients")}, opt: opt}
	if set != nil {
		set(e)
	}
	e.start()
	t.Cleanup(func() { e.stop() })
	return e
}

// start serves the file system (again) on e.addr (a new port the first time).
func (e *env) start() {
	addr := e.addr
	if addr == "" {
		addr = "127.0.0.1:0"
	}
	var ln net.Listener
	var err error
	for deadline := time.Now().Add(5 * time.Second); ; {
		if ln, err = net.Listen("tcp", addr); err == nil || time.Now().After(deadline) {
			break
		}
		time.Sleep(20 * time.Millisecond) // the previous listener's port is being released
	}
	if err != nil {
		e.t.Fatal(err)
	}
	e.addr = ln.Addr().String()
	logger := slog.New(slog.DiscardHandler)
	srv := nfs.NewServer(fsview.Export{FileSystemID: "fs-0123456789abcdef0", HandleKey: e.key, Root: e.root,
		ReadOnly: e.ro.Load, OnChange: func() { e.changes.Add(1) },
		AccessPoint: func(id string) (fsview.AccessPoint, bool) { ap, ok := e.aps[id]; return ap, ok },
		Access: func(string) fsview.ClientAccess {
			if a := e.access.Load(); a != nil {
				return *a
			}
			return fsview.FullAccess
		}}, e.handles, logger)
	opt := e.opt
	opt.Record = e.record
	srv.SetV4(nfs4.New(srv.FS(), logger, opt))
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ln) }()
	e.stop = func() {
		_ = srv.Close()
		<-done
	}
}

func (e *env) restart() {
	e.stop()
	e.start()
}

func (e *env) dial(uid uint32) *nfs4client.Conn {
	e.t.Helper()
	c, err := nfs4client.Dial(context.Background(), e.addr, nfs4client.Cred{UID: uid, GID: uid})
	if err != nil {
		e.t.Fatal(err)
	}
	e.t.Cleanup(func() { _ = c.Close() })
	return c
}

func (e *env) session(owner string, opts ...nfs4client.Option) *nfs4client.Session {
	e.t.Helper()
	s, err := nfs4client.NewSession(context.Background(), e.dial(0), owner, opts...)
	if err != nil {
		e.t.Fatalf("session %s: %v", owner, err)
	}
	return s
}

func wantStatus(t *testing.T, err error, st nfsv4.Nfsstat4, what string) {
	t.Helper()
	if !nfs4client.IsStatus(err, st) {
		t.Fatalf("%s: %v, want %s", what, err, nfsv4.Nfsstat4_name[st])
	}
}

// A 4.1 client creates, writes, reads back and lists files; the files are the host's, and NFSv3
// and NFSv4 clients see the same file handles.
func TestFilesOverSession(t *testing.T) {
	e := newEnv(t, nfs4.Options{Grace: time.Millisecond})
	ctx := context.Background()
	s := e.session("client-a")
	if _, err := s.Mkdir(ctx, "/", "dir", 0o755); err != nil {
		t.Fatal(err)
	}
	o, err := s.Open(ctx, "/dir", "f", nfs4client.OpenOpts{Create: true, Mode: 0o640})
	if err != nil {
		t.Fatal(err)
	}
	before := e.changes.Load()
	data := bytes.Repeat([]byte("efsd "), 1000)
	n, committed, _, err := s.Write(ctx, o.FH, o.Stateid, 0, data, nfsv4.FILE_SYNC4)
	if err != nil || int(n) != len(data) || committed != nfsv4.FILE_SYNC4 {
		t.Fatalf("write: %d %v %v", n, committed, err)
	}
	if e.changes.Load() == before {
		t.Error("a WRITE did not notify replication")
	}
	got, eof, err := s.Read(ctx, o.FH, o.Stateid, 0, 1<<20)
	if err != nil || !eof || !bytes.Equal(got, data) {
		t.Fatalf("read back: %d bytes, eof %v, %v", len(got), eof, err)
	}
	if err := s.Close(ctx, o); err != nil {
		t.Fatal(err)
	}
	host, err := os.ReadFile(filepath.Join(e.root, "dir", "f"))
	if err != nil || !bytes.Equal(host, data) {
		t.Fatalf("on the host: %d bytes, %v", len(host), err)
	}
	if fi, _ := os.Stat(filepath.Join(e.root, "dir", "f")); fi.Mode().Perm() != 0o640 {
		t.Errorf("mode %v, want 0640", fi.Mode().Perm())
	}
	a, err := s.GetAttr(ctx, o.FH, nfsv4.FATTR4_SIZE, nfsv4.FATTR4_TYPE, nfsv4.FATTR4_MODE)
	if err != nil {
		t.Fatal(err)
	}
	if a.Size != uint64(len(data)) || a.Type != nfsv4.NF4REG || a.Mode != 0o640 {
		t.Errorf("attributes %+v", a)
	}
	// SETATTR with the anonymous stateid (the file is closed): size, mode and times, as the caller.
	size, mode := uint64(10), uint32(0o600)
	mtime := nfsv4.Nfstime4{Seconds: 1700000000, Nseconds: 5}
	if err := s.SetAttr(ctx, o.FH, nfsv4.Stateid4{}, nfs4client.SetAttrs{Size: &size, Mode: &mode, MTime: &mtime}); err != nil {
		t.Fatalf("setattr: %v", err)
	}
	fi, err := os.Stat(filepath.Join(e.root, "dir", "f"))
	if err != nil || fi.Size() != 10 || fi.Mode().Perm() != 0o600 || fi.ModTime().Unix() != 1700000000 {
		t.Fatalf("after SETATTR: %v %v", fi, err)
	}
	if err := s.Rename(ctx, "/dir", "f", "/", "g"); err != nil {
		t.Fatal(err)
	}
	// The handle survives the rename, and a server restart.
	e.restart()
	s = e.session("client-b")
	if a, err := s.GetAttr(ctx, o.FH, nfsv4.FATTR4_SIZE); err != nil || a.Size != 10 {
		t.Errorf("size through the old handle after rename and restart: %d, %v", a.Size, err)
	}
	root, err := s.RootFH(ctx)
	if err != nil {
		t.Fatal(err)
	}
	ents, err := s.ReadDir(ctx, root)
	if err != nil {
		t.Fatal(err)
	}
	names := map[string]bool{}
	for _, en := range ents {
		names[en.Name] = true
	}
	if len(ents) != 2 || !names["dir"] || !names["g"] {
		t.Errorf("root lists %v", names)
	}
	if err := s.Remove(ctx, "/", "g"); err != nil {
		t.Fatal(err)
	}
	_, err = s.Lookup(ctx, "/g")
	wantStatus(t, err, nfsv4.NFS4ERR_NOENT, "lookup of a removed file")
}

// Two clients' conflicting locks: the second is denied with the holder's range until the first
// unlocks; shared locks coexist.
func TestLocksExcludeEachOther(t *testing.T) {
	e := newEnv(t, nfs4.Options{Grace: time.Millisecond})
	ctx := context.Background()
	a, b := e.session("client-a"), e.session("client-b")
	oa, err := a.Open(ctx, "/", "db", nfs4client.OpenOpts{Create: true, Mode: 0o666})
	if err != nil {
		t.Fatal(err)
	}
	ob, err := b.Open(ctx, "/", "db", nfs4client.OpenOpts{})
	if err != nil {
		t.Fatal(err)
	}
	if _, denied, err := a.Lock(ctx, oa, nfsv4.WRITE_LT, 0, 100, false); err != nil || denied != nil {
		t.Fatalf("first lock: %v %v", denied, err)
	}
	_, denied, err := b.Lock(ctx, ob, nfsv4.WRITE_LT, 50, 10, false)
	wantStatus(t, err, nfsv4.NFS4ERR_DENIED, "conflicting lock")
	if denied == nil || denied.Offset != 0 || denied.Length != 100 || denied.Locktype != nfsv4.WRITE_LT {
		t.Fatalf("denied: %+v", denied)
	}
	if d, err := b.TestLock(ctx, ob.FH, "someone", nfsv4.READ_LT, 99, 1); err != nil || d == nil || d.Length != 100 {
		t.Fatalf("LOCKT over the lock: %v %v", d, err)
	}
	if _, denied, err := b.Lock(ctx, ob, nfsv4.WRITE_LT, 100, 10, false); err != nil || denied != nil {
		t.Fatalf("a lock beside it: %v %v", denied, err)
	}
	if d, err := b.TestLock(ctx, ob.FH, "someone", nfsv4.READ_LT, 200, 1); err != nil || d != nil {
		t.Fatalf("LOCKT beside the locks: %v %v", d, err)
	}
	if err := a.Unlock(ctx, oa, nfsv4.WRITE_LT, 0, 100); err != nil {
		t.Fatal(err)
	}
	if _, denied, err := b.Lock(ctx, ob, nfsv4.WRITE_LT, 50, 10, false); err != nil || denied != nil {
		t.Fatalf("after the unlock: %v %v", denied, err)
	}
	// Read locks share.
	if err := b.Unlock(ctx, ob, nfsv4.WRITE_LT, 0, ^uint64(0)); err != nil {
		t.Fatal(err)
	}
	if _, _, err := a.Lock(ctx, oa, nfsv4.READ_LT, 0, ^uint64(0), false); err != nil {
		t.Fatal(err)
	}
	if _, _, err := b.Lock(ctx, ob, nfsv4.READ_LT, 0, ^uint64(0), false); err != nil {
		t.Fatalf("a second read lock: %v", err)
	}
	_, _, err = b.Lock(ctx, ob, nfsv4.WRITE_LT, 0, 1, false)
	wantStatus(t, err, nfsv4.NFS4ERR_DENIED, "write lock over another's read lock")
}

// A client that vanishes loses its locks once its lease expires, not before.
func TestLeaseExpiryReleasesLocks(t *testing.T) {
	lease := 2 * time.Second
	e := newEnv(t, nfs4.Options{Lease: lease, Grace: time.Millisecond})
	ctx := context.Background()
	a, b := e.session("client-a"), e.session("client-b")
	oa, err := a.Open(ctx, "/", "f", nfs4client.OpenOpts{Create: true, Mode: 0o666})
	if err != nil {
		t.Fatal(err)
	}
	ob, err := b.Open(ctx, "/", "f", nfs4client.OpenOpts{})
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := a.Lock(ctx, oa, nfsv4.WRITE_LT, 0, 1, false); err != nil {
		t.Fatal(err)
	}
	vanished := time.Now()
	if err := a.Vanish(); err != nil {
		t.Fatal(err)
	}
	for deadline := time.Now().Add(10 * lease); ; {
		_, _, err := b.Lock(ctx, ob, nfsv4.WRITE_LT, 0, 1, false)
		if err == nil {
			if waited := time.Since(vanished); waited < lease {
				t.Fatalf("the lock was released %v after its client vanished, before the %v lease ran out", waited, lease)
			}
			break
		}
		wantStatus(t, err, nfsv4.NFS4ERR_DENIED, "lock while the holder's lease runs")
		if time.Now().After(deadline) {
			t.Fatal("the vanished client's lock was never released")
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// After a restart, clients reclaim their opens and locks in the grace period, in which new locks
// wait (NFS4ERR_GRACE); the grace period ends once every client with state has reclaimed.
func TestReclaimAfterRestart(t *testing.T) {
	e := newEnv(t, nfs4.Options{Lease: 5 * time.Second, Grace: time.Minute})
	ctx := context.Background()
	// The first start had no record: no grace period.
	a := e.session("client-a")
	oa, err := a.Open(ctx, "/", "f", nfs4client.OpenOpts{Create: true, Mode: 0o666})
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := a.Lock(ctx, oa, nfsv4.WRITE_LT, 0, 10, false); err != nil {
		t.Fatal(err)
	}
	e.restart()
	b := e.session("client-b")
	_, err = b.Open(ctx, "/", "f", nfs4client.OpenOpts{})
	wantStatus(t, err, nfsv4.NFS4ERR_GRACE, "a new open in the grace period")
	a2, err := a.Recover(ctx, e.dial(0))
	if err != nil {
		t.Fatal(err)
	}
	ra, err := a2.Open(ctx, "", "", nfs4client.OpenOpts{Reclaim: true, FH: oa.FH})
	if err != nil {
		t.Fatalf("reclaim of the open: %v", err)
	}
	if _, _, err := a2.Lock(ctx, ra, nfsv4.WRITE_LT, 0, 10, true); err != nil {
		t.Fatalf("reclaim of the lock: %v", err)
	}
	if err := a2.ReclaimComplete(ctx); err != nil {
		t.Fatal(err)
	}
	// Every client of the record has reclaimed: the grace period is over at once.
	ob, err := b.Open(ctx, "/", "f", nfs4client.OpenOpts{})
	if err != nil {
		t.Fatal(err)
	}
	_, denied, err := b.Lock(ctx, ob, nfsv4.WRITE_LT, 5, 1, false)
	wantStatus(t, err, nfsv4.NFS4ERR_DENIED, "a lock over the reclaimed one")
	if denied == nil || denied.Length != 10 {
		t.Fatalf("denied: %+v", denied)
	}
	// A reclaim after the grace period is refused.
	_, _, err = a2.Lock(ctx, ra, nfsv4.WRITE_LT, 20, 1, true)
	wantStatus(t, err, nfsv4.NFS4ERR_NO_GRACE, "a reclaim after the grace period")
}

// A replication destination is read-only over NFSv4 too.
func TestReadOnlyDestination(t *testing.T) {
	e := newEnv(t, nfs4.Options{Grace: time.Millisecond})
	ctx := context.Background()
	if err := os.WriteFile(filepath.Join(e.root, "f"), []byte("replica"), 0o644); err != nil {
		t.Fatal(err)
	}
	e.ro.Store(true)
	s := e.session("client-a")
	_, err := s.Open(ctx, "/", "g", nfs4client.OpenOpts{Create: true})
	wantStatus(t, err, nfsv4.NFS4ERR_ROFS, "create on a destination")
	_, err = s.Open(ctx, "/", "f", nfs4client.OpenOpts{Access: nfsv4.OPEN4_SHARE_ACCESS_BOTH})
	wantStatus(t, err, nfsv4.NFS4ERR_ROFS, "open for writing on a destination")
	o, err := s.Open(ctx, "/", "f", nfs4client.OpenOpts{Access: nfsv4.OPEN4_SHARE_ACCESS_READ})
	if err != nil {
		t.Fatal(err)
	}
	if got, _, err := s.Read(ctx, o.FH, o.Stateid, 0, 100); err != nil || string(got) != "replica" {
		t.Fatalf("read: %q %v", got, err)
	}
	_, err = s.Mkdir(ctx, "/", "d", 0o755)
	wantStatus(t, err, nfsv4.NFS4ERR_ROFS, "mkdir on a destination")
	err = s.Remove(ctx, "/", "f")
	wantStatus(t, err, nfsv4.NFS4ERR_ROFS, "remove on a destination")
}

// NFSv4.0 clients (libnfs, fuse-nfs) open, write, read and lock without sessions.
func TestMinorVersion0(t *testing.T) {
	e := newEnv(t, nfs4.Options{Grace: time.Millisecond})
	ctx := context.Background()
	s, err := nfs4client.NewClient40(ctx, e.dial(0), "client-40")
	if err != nil {
		t.Fatal(err)
	}
	o, err := s.Open(ctx, "/", "f", nfs4client.OpenOpts{Create: true, Mode: 0o644})
	if err != nil {
		t.Fatal(err)
	}
	if _, _, _, err := s.Write(ctx, o.FH, o.Stateid, 0, []byte("v4.0"), nfsv4.UNSTABLE4); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Commit(ctx, o.FH, 0, 0); err != nil {
		t.Fatal(err)
	}
	if got, _, err := s.Read(ctx, o.FH, o.Stateid, 0, 10); err != nil || string(got) != "v4.0" {
		t.Fatalf("read: %q %v", got, err)
	}
	if _, _, err := s.Lock(ctx, o, nfsv4.WRITE_LT, 0, 1, false); err != nil {
		t.Fatal(err)
	}
	if err := s.Unlock(ctx, o, nfsv4.WRITE_LT, 0, 1); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(ctx, o); err != nil {
		t.Fatal(err)
	}
}

// Hostile and odd calls get errors, not a dead server.
func TestHostileCalls(t *testing.T) {
	e := newEnv(t, nfs4.Options{Grace: time.Millisecond})
	ctx := context.Background()
	c := e.dial(0)
	// A compound without SEQUENCE, with a made-up handle, with garbage.
	res, err := c.Compound(ctx, 1, "", []nfsv4.NfsArgop4{&nfsv4.NfsArgop4_OP_PUTROOTFH{}})
	if err != nil || res.Status != nfsv4.NFS4ERR_OP_NOT_IN_SESSION {
		t.Fatalf("PUTROOTFH without a session: %v %v", res, err)
	}
	res, err = c.Compound(ctx, 1, "", []nfsv4.NfsArgop4{&nfsv4.NfsArgop4_OP_EXCHANGE_ID{OpexchangeId: nfsv4.ExchangeId4args{
		EiaClientowner: nfsv4.ClientOwner4{CoOwnerid: []byte("x")}, EiaStateProtect: &nfsv4.StateProtect4A_SP4_NONE{}}},
		&nfsv4.NfsArgop4_OP_PUTROOTFH{}, &nfsv4.NfsArgop4_OP_GETFH{}})
	if err != nil || res.Status != nfsv4.NFS4ERR_NOT_ONLY_OP {
		t.Fatalf("PUTROOTFH after EXCHANGE_ID, without a session: %v %v", res, err)
	}
	res, err = c.Compound(ctx, 2, "", nil)
	if err != nil || res.Status != nfsv4.NFS4ERR_MINOR_VERS_MISMATCH {
		t.Fatalf("minor version 2: %v %v", res, err)
	}
	stat, _, err := c.Call(ctx, 100003, 4, 1, []byte{0, 0, 0, 0, 0, 0, 0, 1, 0xff, 0xff, 0xff, 0xff})
	if err != nil || stat != nfs.AcceptGarbageArgs {
		t.Fatalf("garbage: stat %d %v", stat, err)
	}
	s := e.session("client-a")
	_, err = s.GetAttr(ctx, make([]byte, 56), nfsv4.FATTR4_SIZE)
	wantStatus(t, err, nfsv4.NFS4ERR_BADHANDLE, "a forged handle")
	_, err = s.Lookup(ctx, "/..")
	var se *nfs4client.StatusError
	if !errors.As(err, &se) {
		t.Fatalf("lookup of ..: %v", err)
	}
	if err := c.Null(ctx); err != nil {
		t.Fatalf("the server stopped answering: %v", err)
	}
}

// The NFSv4.0 allowances for libnfs never lend a client access it lacks: an open it closed, then
// locked through (which gets an open of its own), still writes only with the caller's permission.
func TestClosedOpenLendsNoAccess(t *testing.T) {
	e := newEnv(t, nfs4.Options{Grace: time.Millisecond})
	ctx := context.Background()
	path := filepath.Join(e.root, "root-only")
	if err := os.WriteFile(path, []byte("root's"), 0o644); err != nil {
		t.Fatal(err)
	}
	conn, err := nfs4client.Dial(ctx, e.addr, nfs4client.Cred{UID: 1000, GID: 1000})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = conn.Close() })
	s, err := nfs4client.NewClient40(ctx, conn, "user-1000")
	if err != nil {
		t.Fatal(err)
	}
	o, err := s.Open(ctx, "/", "root-only", nfs4client.OpenOpts{Access: nfsv4.OPEN4_SHARE_ACCESS_READ})
	if err != nil {
		t.Fatal(err)
	}
	_, err = s.Open(ctx, "/", "root-only", nfs4client.OpenOpts{Access: nfsv4.OPEN4_SHARE_ACCESS_WRITE})
	wantStatus(t, err, nfsv4.NFS4ERR_ACCESS, "an open for writing without write permission")
	if err := s.Close(ctx, o); err != nil {
		t.Fatal(err)
	}
	lsid, _, err := s.Lock(ctx, o, nfsv4.WRITE_LT, 0, 1, false)
	if err != nil {
		t.Fatalf("a lock through the closed open: %v", err)
	}
	for _, sid := range []nfsv4.Stateid4{lsid, o.Stateid} {
		_, _, _, err = s.Write(ctx, o.FH, sid, 0, []byte("mine"), nfsv4.FILE_SYNC4)
		wantStatus(t, err, nfsv4.NFS4ERR_ACCESS, "a write through it")
	}
	if b, _ := os.ReadFile(path); string(b) != "root's" {
		t.Fatalf("the file became %q", b)
	}
}

// A flood of client records that never make a session does not lock real clients out: the
// unconfirmed record renewed longest ago makes room.
func TestClientFloodLeavesRoom(t *testing.T) {
	e := newEnv(t, nfs4.Options{Grace: time.Millisecond})
	ctx := context.Background()
	c := e.dial(0)
	for i := range 4200 {
		res, err := c.Compound(ctx, 1, "", []nfsv4.NfsArgop4{&nfsv4.NfsArgop4_OP_EXCHANGE_ID{OpexchangeId: nfsv4.ExchangeId4args{
			EiaClientowner:  nfsv4.ClientOwner4{CoOwnerid: []byte("flood-" + strconv.Itoa(i))},
			EiaStateProtect: &nfsv4.StateProtect4A_SP4_NONE{},
		}}})
		if err != nil || res.Status != nfsv4.NFS4_OK {
			t.Fatalf("EXCHANGE_ID %d: %v %v", i, res, err)
		}
	}
	s := e.session("real-client")
	if _, err := s.RootFH(ctx); err != nil {
		t.Fatal(err)
	}
}

// An access point's root is reached by LOOKUP of its ID at the root (the NFSv3 mount path
// /fsap-…): calls through it act as its POSIX user and cannot leave its root; the file system
// policy applies to NFSv4 calls as to NFSv3 ones; NFSv3 and NFSv4 hand out the same handles.
func TestAccessPointsPolicyAndSharedHandles(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root")
	}
	uid, gid := uint32(1234), uint32(5678)
	e := newEnvWith(t, nfs4.Options{Grace: time.Millisecond}, func(e *env) {
		e.aps = map[string]fsview.AccessPoint{"fsap-0123456789abcdef0": {ID: "fsap-0123456789abcdef0", Path: "/app",
			UID: &uid, GID: &gid, CreationInfo: &fsview.CreationInfo{OwnerUID: uid, OwnerGID: gid, Permissions: 0o755}}}
	})
	ctx := context.Background()
	if err := os.WriteFile(filepath.Join(e.root, "secret"), []byte("outside"), 0o600); err != nil {
		t.Fatal(err)
	}
	s := e.session("client-a")
	o, err := s.Open(ctx, "/fsap-0123456789abcdef0", "made", nfs4client.OpenOpts{Create: true, Mode: 0o644})
	if err != nil {
		t.Fatalf("create through the access point: %v", err)
	}
	var st syscall.Stat_t
	if err := syscall.Stat(filepath.Join(e.root, "app", "made"), &st); err != nil || st.Uid != uid || st.Gid != gid {
		t.Fatalf("made through the access point: owner %d:%d, %v; want %d:%d", st.Uid, st.Gid, err, uid, gid)
	}
	_, err = s.Lookup(ctx, "/fsap-0123456789abcdef0/../secret")
	if err == nil {
		t.Fatal("a path out of the access point's root resolved")
	}
	apRoot, err := s.Lookup(ctx, "/fsap-0123456789abcdef0")
	if err != nil {
		t.Fatal(err)
	}
	res, err := s.Do(ctx, &nfsv4.NfsArgop4_OP_PUTFH{Opputfh: nfsv4.Putfh4args{Object: apRoot}}, &nfsv4.NfsArgop4_OP_LOOKUPP{})
	if !nfs4client.IsStatus(err, nfsv4.NFS4ERR_NOENT) {
		t.Fatalf("LOOKUPP from the access point's root: %v %v, want NOENT", res, err)
	}
	_, err = s.Lookup(ctx, "/fsap-00000000000000000")
	wantStatus(t, err, nfsv4.NFS4ERR_NOENT, "an unknown access point")

	// The same file's handle over NFSv3 (MOUNT of the access point, LOOKUP) is NFSv4's.
	rc, err := nfsclient.Dial(e.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	target, err := (&nfsc.Mount{Client: rc}).Mount("/fsap-0123456789abcdef0", nfsclient.AuthUnix(0, 0))
	if err != nil {
		t.Fatal(err)
	}
	_, fh3, err := target.Lookup("made")
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(fh3, o.FH) {
		t.Fatalf("NFSv3 handle %x, NFSv4 handle %x", fh3, o.FH)
	}

	// The policy: without ClientWrite every change is ROFS; without ClientMount every call ACCESS.
	e.access.Store(&fsview.ClientAccess{Mount: true, Write: false, Root: true})
	_, err = s.Mkdir(ctx, "/", "d", 0o755)
	wantStatus(t, err, nfsv4.NFS4ERR_ROFS, "mkdir without ClientWrite")
	e.access.Store(&fsview.ClientAccess{})
	_, err = s.GetAttr(ctx, o.FH, nfsv4.FATTR4_SIZE)
	wantStatus(t, err, nfsv4.NFS4ERR_ACCESS, "getattr without ClientMount")
	// Without ClientRootAccess, root acts as 65534.
	e.access.Store(&fsview.ClientAccess{Mount: true, Write: true})
	if _, err := s.Open(ctx, "/", "squashed", nfs4client.OpenOpts{Create: true, Mode: 0o666}); err == nil {
		t.Fatal("root squashed to nobody created a file in a root-owned 0755 directory")
	}
}

// SEQUENCE's reply cache: a retransmission (same slot, same sequence ID) gets the first reply again
// without the operations running twice; a sequence ID out of order is refused.
func TestRetransmissionGetsCachedReply(t *testing.T) {
	e := newEnv(t, nfs4.Options{Grace: time.Millisecond})
	ctx := context.Background()
	s := e.session("client-a")
	c := s.Conn()
	seq := s.Seq()
	call := func(seqid uint32) (*nfsv4.Compound4res, error) {
		return c.Compound(ctx, 1, "retry", []nfsv4.NfsArgop4{
			&nfsv4.NfsArgop4_OP_SEQUENCE{Opsequence: nfsv4.Sequence4args{SaSessionid: s.SessionID(), SaSequenceid: seqid, SaCachethis: true}},
			&nfsv4.NfsArgop4_OP_PUTROOTFH{},
			&nfsv4.NfsArgop4_OP_CREATE{Opcreate: nfsv4.Create4args{Objtype: &nfsv4.Createtype4_NF4DIR{}, Objname: "once"}},
		})
	}
	first, err := call(seq)
	if err != nil || first.Status != nfsv4.NFS4_OK {
		t.Fatalf("first: %v %v", first, err)
	}
	again, err := call(seq)
	if err != nil || again.Status != nfsv4.NFS4_OK {
		t.Fatalf("retransmission: %v %v (a second CREATE would say EXIST)", again, err)
	}
	if res, err := call(seq + 5); res == nil || res.Status != nfsv4.NFS4ERR_SEQ_MISORDERED {
		t.Fatalf("sequence ID out of order: %v %v", res, err)
	}
	if next, err := call(seq + 1); err != nil || next.Status != nfsv4.NFS4ERR_EXIST {
		t.Fatalf("the next call runs the CREATE again: %v %v, want EXIST", next, err)
	}
}

// OPEN's share reservations: an open denying writes refuses another client's open for writing.
func TestShareReservations(t *testing.T) {
	e := newEnv(t, nfs4.Options{Grace: time.Millisecond})
	ctx := context.Background()
	a, b := e.session("client-a"), e.session("client-b")
	if _, err := a.Open(ctx, "/", "f", nfs4client.OpenOpts{Create: true, Mode: 0o666, Access: nfsv4.OPEN4_SHARE_ACCESS_READ, Deny: nfsv4.OPEN4_SHARE_DENY_WRITE}); err != nil {
		t.Fatal(err)
	}
	_, err := b.Open(ctx, "/", "f", nfs4client.OpenOpts{Access: nfsv4.OPEN4_SHARE_ACCESS_WRITE})
	wantStatus(t, err, nfsv4.NFS4ERR_SHARE_DENIED, "an open for writing against a deny-write open")
	if _, err := b.Open(ctx, "/", "f", nfs4client.OpenOpts{Access: nfsv4.OPEN4_SHARE_ACCESS_READ}); err != nil {
		t.Fatalf("an open for reading beside it: %v", err)
	}
}

// The write verifier changes when the server restarts, so that a client resends what it wrote
// UNSTABLE and a crash may have lost.
func TestWriteVerifierChangesWithRestart(t *testing.T) {
	e := newEnv(t, nfs4.Options{Grace: time.Millisecond})
	ctx := context.Background()
	verf := func() nfsv4.Verifier4 {
		s := e.session("client-" + strconv.FormatInt(time.Now().UnixNano(), 10))
		var o *nfs4client.Open
		var err error
		for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(5 * time.Millisecond) {
			// just after a restart, the grace period (1 ms here) may not be over yet
			if o, err = s.Open(ctx, "/", "f", nfs4client.OpenOpts{Create: true, Mode: 0o666}); !nfs4client.IsStatus(err, nfsv4.NFS4ERR_GRACE) || time.Now().After(deadline) {
				break
			}
		}
		if err != nil {
			t.Fatal(err)
		}
		_, committed, v, err := s.Write(ctx, o.FH, o.Stateid, 0, []byte("x"), nfsv4.UNSTABLE4)
		if err != nil || committed != nfsv4.UNSTABLE4 {
			t.Fatalf("unstable write: %v %v", committed, err)
		}
		if cv, err := s.Commit(ctx, o.FH, 0, 0); err != nil || cv != v {
			t.Fatalf("COMMIT's verifier %x, WRITE's %x, %v", cv, v, err)
		}
		return v
	}
	before := verf()
	if again := verf(); again != before {
		t.Fatalf("the verifier changed without a restart: %x then %x", before, again)
	}
	e.restart()
	if after := verf(); after == before {
		t.Fatalf("the verifier %x survived a restart", after)
	}
}

// READDIR pages through a large directory with the directory's own offsets as cookies: every
// entry once, none invented, across several calls.
func TestReaddirPages(t *testing.T) {
	e := newEnv(t, nfs4.Options{Grace: time.Millisecond})
	ctx := context.Background()
	dir := filepath.Join(e.root, "big")
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	want := map[string]bool{}
	for i := range 3000 {
		name := "entry-with-a-longish-name-" + strconv.Itoa(i)
		if err := os.WriteFile(filepath.Join(dir, name), nil, 0o644); err != nil {
			t.Fatal(err)
		}
		want[name] = true
	}
	s := e.session("client-a")
	fh, err := s.Lookup(ctx, "/big")
	if err != nil {
		t.Fatal(err)
	}
	ents, err := s.ReadDir(ctx, fh, nfsv4.FATTR4_TYPE, nfsv4.FATTR4_FILEID, nfsv4.FATTR4_SIZE, nfsv4.FATTR4_MODE)
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	for _, en := range ents {
		if !want[en.Name] || seen[en.Name] {
			t.Fatalf("entry %q unexpected or repeated", en.Name)
		}
		seen[en.Name] = true
	}
	if len(seen) != len(want) {
		t.Fatalf("%d entries listed, want %d", len(seen), len(want))
	}
}

// Random bytes as COMPOUND arguments, and truncations of a valid COMPOUND, are refused one by one
// (GARBAGE_ARGS or an NFS error), and the server goes on serving.
func TestGarbageCompounds(t *testing.T) {
	e := newEnv(t, nfs4.Options{Grace: time.Millisecond})
	ctx := context.Background()
	c := e.dial(0)
	rng := rand.New(rand.NewPCG(1, 2))
	valid := []byte{0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 2, 0, 0, 0, 24, 0, 0, 0, 10, 0, 0, 0, 1, 0, 0, 0, 1} // tag "", minor 1, PUTROOTFH, GETFH, GETATTR [1]
	for i := range 500 {
		var args []byte
		if i < len(valid) {
			args = valid[:i]
		} else {
			args = make([]byte, rng.IntN(300))
			for j := range args {
				args[j] = byte(rng.IntN(256))
			}
			if len(args) >= 8 {
				args[4], args[5], args[6], args[7] = 0, 0, 0, byte(rng.IntN(2)) // a plausible minor version
			}
		}
		if _, _, err := c.Call(ctx, 100003, 4, 1, args); err != nil {
			t.Fatalf("call %d (%x): %v", i, args, err)
		}
	}
	if err := c.Null(ctx); err != nil {
		t.Fatalf("the server stopped answering: %v", err)
	}
	s := e.session("after-garbage")
	if _, err := s.RootFH(ctx); err != nil {
		t.Fatal(err)
	}
}
