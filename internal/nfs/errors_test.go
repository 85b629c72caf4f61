package nfs

import (
	"context"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/efsd/efsd/internal/fsview"
	nfsc "github.com/willscott/go-nfs-client/nfs"
	"github.com/willscott/go-nfs-client/nfs/rpc"
	"golang.org/x/sys/unix"
)

// countingHandler counts the log records at or above Error, and all of them by message.
type countingHandler struct {
	errors atomic.Int64
	mu     sync.Mutex
	msgs   map[string]int
}

func (h *countingHandler) Enabled(context.Context, slog.Level) bool { return true }
func (h *countingHandler) Handle(_ context.Context, r slog.Record) error {
	if r.Level >= slog.LevelError {
		h.errors.Add(1)
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.msgs == nil {
		h.msgs = map[string]int{}
	}
	h.msgs[r.Message]++
	return nil
}

func (h *countingHandler) count(msg string) int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.msgs[msg]
}
func (h *countingHandler) WithAttrs([]slog.Attr) slog.Handler { return h }
func (h *countingHandler) WithGroup(string) slog.Handler      { return h }

// The statuses of failed operations are those of their errno, not go-nfs's catch-alls.
func TestErrorStatuses(t *testing.T) {
	e := newEnv(t)
	if err := os.Mkdir(e.path("sticky"), 0o777|os.ModeSticky); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(e.path("sticky"), 0o777|os.ModeSticky); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(e.path("sticky/theirs"), nil, 0o666); err != nil {
		t.Fatal(err)
	}
	if err := os.Chown(e.path("sticky/theirs"), 2000, 2000); err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(e.path("full/sub"), 0o755); err != nil {
		t.Fatal(err)
	}
	_, addr := e.start("")
	u := mustMount(t, addr, "/", authUnix(1000, 1000))
	r := mustMount(t, addr, "/", rootAuth)

	// REMOVE of another user's file in a sticky directory: EPERM (go-nfs said NFS3ERR_ACCES).
	if err := u.Remove("sticky/theirs"); nfsStatus(err) != nfsc.NFS3ErrPerm {
		t.Errorf("REMOVE in a sticky directory: %v (status %d), want NFS3ERR_PERM", err, nfsStatus(err))
	}
	// CREATE asking for another owner, as a user: EPERM (go-nfs said NFS3ERR_IO).
	_, dirFH, err := u.Lookup("sticky")
	if err != nil {
		t.Fatal(err)
	}
	type createArgs struct {
		rpc.Header
		Where nfsc.Diropargs3
		How   uint32
		Attr  nfsc.Sattr3
	}
	st, _, err := u.raw(&createArgs{Header: u.header(nfsc.NFSProc3Create), Where: nfsc.Diropargs3{FH: dirFH, Filename: "mine"},
		Attr: nfsc.Sattr3{Mode: nfsc.SetMode{SetIt: true, Mode: 0o644}, UID: nfsc.SetUID{SetIt: true, UID: 0}}})
	if err != nil || st != nfsc.NFS3ErrPerm {
		t.Errorf("CREATE owned by root, as a user: status %d %v, want NFS3ERR_PERM", st, err)
	}
	// RMDIR of a non-empty directory: ENOTEMPTY (go-nfs said NFS3ERR_IO).
	_, rootFH, err := r.Lookup(".")
	if err != nil {
		t.Fatal(err)
	}
	type rmdirArgs struct {
		rpc.Header
		What nfsc.Diropargs3
	}
	st, _, err = r.raw(&rmdirArgs{Header: r.header(nfsc.NFSProc3RmDir), What: nfsc.Diropargs3{FH: rootFH, Filename: "full"}})
	if err != nil || st != nfsc.NFS3ErrNotEmpty {
		t.Errorf("RMDIR of a non-empty directory: status %d %v, want NFS3ERR_NOTEMPTY", st, err)
	}
	// What succeeds still does.
	if err := r.Remove("sticky/theirs"); err != nil {
		t.Errorf("REMOVE as root: %v", err)
	}
}

// COMMIT on a symlink is answered (nothing to commit) without an error line per call: a client
// cannot flood the log.
func TestCommitOnSymlink(t *testing.T) {
	e := newEnv(t)
	if err := os.Symlink("nowhere", e.path("link")); err != nil {
		t.Fatal(err)
	}
	h := &countingHandler{}
	e.logger = slog.New(h)
	_, addr := e.start("")
	c := mustMount(t, addr, "/", rootAuth)
	_, fh, err := c.Lookup("link")
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 50; i++ {
		if st, err := c.commitRaw(fh); err != nil || st != 0 {
			t.Fatalf("COMMIT on a symlink: status %d %v", st, err)
		}
	}
	if n := h.errors.Load(); n > 1 {
		t.Errorf("%d error lines for 50 COMMITs", n)
	}
}

// Refused mounts, which a client can repeat at will, are not logged one line each.
func TestRefusedMountsDoNotFloodTheLog(t *testing.T) {
	e := newEnv(t)
	h := &countingHandler{}
	e.logger = slog.New(h)
	_, addr := e.start("")
	for i := 0; i < 30; i++ {
		if _, err := mount(t, addr, "/missing", rootAuth); err == nil {
			t.Fatal("mounted a missing directory")
		}
	}
	if n := h.count("nfs: mount refused"); n < 1 || n > 2 {
		t.Errorf("%d log lines for 30 refused mounts", n)
	}
}

// clientLog passes one line per message and interval, then counts what it dropped.
func TestClientLogIsRateLimited(t *testing.T) {
	h := &countingHandler{}
	now := time.Unix(0, 0)
	l := fsview.NewRateLog(slog.New(h), 10*time.Second, func() time.Time { return now })
	for i := 0; i < 100; i++ {
		l.Error("nfs: something failed")
	}
	if n := h.errors.Load(); n != 1 {
		t.Errorf("%d lines for 100 within the interval, want 1", n)
	}
	now = now.Add(11 * time.Second)
	l.Error("nfs: something failed")
	l.Error("nfs: something else failed")
	if n := h.errors.Load(); n != 3 {
		t.Errorf("%d lines, want 3", n)
	}
}

// diskStore is a fsview.HandleStore kept on the file system's disk (as efsd's SQLite store shares the
// data directory's disk): a handle it cannot write is not recorded.
type diskStore struct {
	mem  fsview.HandleStore
	path string
}

func (s *diskStore) PutHandle(fsID string, ino uint64, loc string) error {
	f, err := os.OpenFile(s.path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600)
	if err != nil {
		return err
	}
	_, err = f.WriteString(loc + strings.Repeat(" ", 4096) + "\n") // a page per write, as SQLite's WAL
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return err
	}
	return s.mem.PutHandle(fsID, ino, loc)
}

func (s *diskStore) HandlePath(fsID string, ino uint64) (string, bool, error) {
	return s.mem.HandlePath(fsID, ino)
}

func (s *diskStore) DeleteHandle(fsID string, ino uint64) error {
	return s.mem.DeleteHandle(fsID, ino)
}

// On a full disk a new file is refused with NFS3ERR_NOSPC; it never becomes a file whose every
// call answers NFS3ERR_STALE (its handle could not be recorded).
func TestFullDisk(t *testing.T) {
	e := newEnv(t)
	disk := filepath.Join(t.TempDir(), "disk")
	if err := os.Mkdir(disk, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := unix.Mount("tmpfs", disk, "tmpfs", 0, "size=1m"); err != nil {
		t.Skipf("cannot mount a tmpfs: %v", err)
	}
	t.Cleanup(func() { _ = unix.Unmount(disk, unix.MNT_DETACH) })
	e.root = filepath.Join(disk, "fs")
	if err := os.Mkdir(e.root, 0o755); err != nil {
		t.Fatal(err)
	}
	e.handles = &diskStore{mem: fsview.NewMemHandles(), path: filepath.Join(disk, "handles")}
	_, addr := e.start("")
	c := mustMount(t, addr, "/", rootAuth)
	c.writeFile(t, "before", []byte("x"), 0o644)
	// Fill the disk.
	f, err := os.Create(filepath.Join(disk, "filler"))
	if err != nil {
		t.Fatal(err)
	}
	for {
		if _, err := f.Write(make([]byte, 64<<10)); err != nil {
			if !errors.Is(err, unix.ENOSPC) {
				t.Fatal(err)
			}
			break
		}
	}
	f.Close()

	stale := func(what string, err error) {
		t.Helper()
		if st := nfsStatus(err); st == nfsc.NFS3ErrStale || (err != nil && st != nfsc.NFS3ErrNoSpc) {
			t.Errorf("%s on a full disk: %v (status %d), want NFS3ERR_NOSPC", what, err, st)
		}
	}
	nf, err := c.OpenFile("new", 0o644)
	stale("CREATE", err)
	if err == nil {
		_, err = nf.Write([]byte("data"))
		stale("WRITE", err)
		stale("CLOSE", nf.Close())
	} else if _, err := os.Lstat(e.path("new")); err == nil {
		t.Errorf("a refused CREATE left the file behind")
	}
	_, err = c.Mkdir("newdir", 0o755)
	stale("MKDIR", err)
	// A file whose handle was recorded before answers NOSPC to a WRITE that needs space.
	_, fh, err := c.Lookup("before")
	if err != nil {
		t.Fatal(err)
	}
	st, _, err := c.writeFH(fh, 0, make([]byte, 256<<10))
	if err != nil || st != nfsc.NFS3ErrNoSpc {
		t.Errorf("WRITE to an existing file on a full disk: status %d %v, want NFS3ERR_NOSPC", st, err)
	}
}
