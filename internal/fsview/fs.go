package fsview

import (
	"crypto/rand"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"

	"golang.org/x/sys/unix"
)

// Errors of resolution.
var (
	ErrStale         = errors.New("fsview: stale file handle")
	ErrNoAccessPoint = errors.New("fsview: no such access point")
)

// StoreError is a HandleStore failure: the handle may well be good.
type StoreError struct{ Err error }

func (e StoreError) Error() string { return "fsview: handle store: " + e.Err.Error() }
func (e StoreError) Unwrap() error { return e.Err }

// FS is one file system as its NFS front ends serve it at one mount target: its export roots (the
// file system's and its access points'), the handles of its files and where they are, and who a
// call acts as. It knows no protocol: NFSv3 and NFSv4 servers share it, and with it their handles.
type FS struct {
	e      Export
	logger *slog.Logger
	log    *RateLog
	table  *handleTable
	codec  *HandleCodec

	vmu     sync.Mutex
	root    *View
	views   map[string]*View // access point ID → its current root
	retired []int            // descriptors of replaced views, closed by Close
}

// View is one export root: the file system root, or an access point's root directory.
type View struct {
	APID  string   // "" for the file system root
	Comps []string // path of the root inside the file system
	FD    int      // O_PATH descriptor of the root directory
	Ino   uint64
	Gen   uint64
}

// New returns the FS of e. handles persists file handles (NewMemHandles for tests); log takes what
// clients can cause at will.
func New(e Export, handles HandleStore, logger *slog.Logger, log *RateLog) *FS {
	key := e.HandleKey
	if len(key) == 0 {
		key = make([]byte, HandleKeySize)
		_, _ = rand.Read(key)
	}
	return &FS{
		e:      e,
		logger: logger,
		log:    log,
		table:  newHandleTable(e.FileSystemID, handles),
		codec:  NewHandleCodec(key, e.FileSystemID),
		views:  make(map[string]*View),
	}
}

// Export is what FS serves.
func (f *FS) Export() *Export { return &f.e }

// Close releases the export roots' descriptors. No call may be in flight.
func (f *FS) Close() {
	f.vmu.Lock()
	defer f.vmu.Unlock()
	if f.root != nil {
		CloseFD(f.root.FD)
		f.root = nil
	}
	for id, v := range f.views {
		CloseFD(v.FD)
		delete(f.views, id)
	}
	for _, fd := range f.retired {
		CloseFD(fd)
	}
	f.retired = nil
}

// EncodeHandle returns the handle of h.
func (f *FS) EncodeHandle(h Handle) []byte { return f.codec.Encode(h) }

// DecodeHandle authenticates a handle and returns its fields.
func (f *FS) DecodeHandle(b []byte) (Handle, error) { return f.codec.Decode(b) }

// RootView returns the file system root, opening it on first use.
func (f *FS) RootView() (*View, error) {
	f.vmu.Lock()
	defer f.vmu.Unlock()
	if f.root != nil {
		return f.root, nil
	}
	fd, err := unix.Open(f.e.Root, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, err
	}
	st, err := StatFD(fd)
	if err != nil {
		CloseFD(fd)
		return nil, err
	}
	f.root = &View{FD: fd, Ino: st.Ino, Gen: Generation(&st)}
	return f.root, nil
}

// ViewOf returns the export root a handle of access point apID ("" for none) resolves from, and the
// access point.
func (f *FS) ViewOf(apID string) (*View, *AccessPoint, error) {
	if apID == "" {
		v, err := f.RootView()
		return v, nil, err
	}
	v, ap, err := f.AccessPointView(apID, false)
	if err != nil {
		return nil, nil, err
	}
	return v, &ap, nil
}

// AccessPointView returns the current root of access point id; with create, a missing root is
// created as its CreationInfo says, unless the export is read-only.
func (f *FS) AccessPointView(id string, create bool) (*View, AccessPoint, error) {
	if f.e.AccessPoint == nil {
		return nil, AccessPoint{}, ErrNoAccessPoint
	}
	ap, ok := f.e.AccessPoint(id)
	if !ok {
		return nil, AccessPoint{}, ErrNoAccessPoint
	}
	if len(id) > maxAPIDLen {
		return nil, ap, unix.ENAMETOOLONG
	}
	root, err := f.RootView()
	if err != nil {
		return nil, ap, err
	}
	comps, ok := SplitPath(ap.Path)
	if !ok {
		return nil, ap, unix.EINVAL
	}
	fd, err := OpenBeneath(root.FD, comps, unix.O_PATH|unix.O_DIRECTORY)
	if err == unix.ENOENT && create && ap.CreationInfo != nil {
		if f.ReadOnly() {
			// A replication destination: nothing may be created (replication would remove it).
			return nil, ap, fmt.Errorf("root directory %s of access point %s is missing and the file system is read-only: %w",
				ap.Path, id, unix.ENOENT)
		}
		if err = f.createAccessPointRoot(root, comps, ap.CreationInfo); err == nil {
			fd, err = OpenBeneath(root.FD, comps, unix.O_PATH|unix.O_DIRECTORY)
		}
	}
	if err != nil {
		return nil, ap, err
	}
	st, err := StatFD(fd)
	if err != nil {
		CloseFD(fd)
		return nil, ap, err
	}
	f.vmu.Lock()
	defer f.vmu.Unlock()
	old := f.views[id]
	if old != nil && old.Ino == st.Ino && old.Gen == Generation(&st) && slices.Equal(old.Comps, comps) {
		CloseFD(fd)
		return old, ap, nil
	}
	v := &View{APID: id, Comps: comps, FD: fd, Ino: st.Ino, Gen: Generation(&st)}
	if old != nil {
		f.retired = append(f.retired, old.FD) // RPCs in flight may still use it
	}
	f.views[id] = v
	return v, ap, nil
}

// createAccessPointRoot makes an access point's missing root directory: missing parents as
// root:root 0755, the root itself with CreationInfo's owner and permissions. Each directory is
// created 0700, then given its owner and mode, so it is never open to others in between.
func (f *FS) createAccessPointRoot(root *View, comps []string, ci *CreationInfo) error {
	cur, owned, changed := root.FD, false, false
	defer func() {
		if owned {
			CloseFD(cur)
		}
		if changed {
			f.Changed()
		}
	}()
	for i, c := range comps {
		one := []string{c}
		fd, err := OpenBeneath(cur, one, unix.O_PATH|unix.O_DIRECTORY)
		if err == unix.ENOENT {
			uid, gid, mode := 0, 0, uint32(0o755)
			if i == len(comps)-1 {
				uid, gid, mode = int(ci.OwnerUID), int(ci.OwnerGID), UnixMode(ci.Permissions)
			}
			err = unix.Mkdirat(cur, c, 0o700)
			switch {
			case err == nil:
				changed = true
				if fd, err = OpenBeneath(cur, one, unix.O_PATH|unix.O_DIRECTORY|unix.O_NOFOLLOW); err == nil {
					if err = unix.Fchownat(fd, "", uid, gid, unix.AT_EMPTY_PATH); err == nil {
						if err = ChmodFD(fd, mode); err == nil {
							err = SyncDir(cur)
						}
					}
				}
			case err == unix.EEXIST: // created meanwhile
				fd, err = OpenBeneath(cur, one, unix.O_PATH|unix.O_DIRECTORY)
			}
		}
		if err != nil {
			CloseFD(fd)
			return err
		}
		if owned {
			CloseFD(cur)
		}
		cur, owned = fd, true
	}
	if changed {
		f.logger.Info("nfs: created access point root directory", "fileSystemId", f.e.FileSystemID,
			"path", "/"+strings.Join(comps, "/"), "uid", ci.OwnerUID, "gid", ci.OwnerGID,
			"mode", UnixMode(ci.Permissions))
	}
	return nil
}

// Mount resolves a mount path: "/" is the file system root, "/fsap-…" (or "fsap-…") an access
// point's root (created if missing, as its CreationInfo says), "/fsap-…/sub/dir" a directory below
// it, and "/sub/dir" a directory of the file system (not confined: ".." from it reaches the rest of
// the file system, as a subdirectory mount of EFS does). It returns the export root, the access
// point (nil for none) and the directory's components below the root, and records their handles.
func (f *FS) Mount(dirpath string) (base *View, ap *AccessPoint, chain []string, err error) {
	comps, ok := SplitPath(dirpath)
	if !ok {
		return nil, nil, nil, unix.EINVAL
	}
	root, err := f.RootView()
	if err != nil {
		return nil, nil, nil, err
	}
	base, chain = root, comps
	if len(comps) > 0 && strings.HasPrefix(comps[0], "fsap-") {
		v, a, err := f.AccessPointView(comps[0], true)
		if err != nil {
			return nil, nil, nil, err
		}
		if err := f.RecordChain(root, v.Comps); err != nil {
			return nil, nil, nil, err
		}
		base, chain, ap = v, comps[1:], &a
	}
	if len(chain) > 0 {
		fd, err := OpenBeneath(base.FD, chain, unix.O_PATH|unix.O_DIRECTORY)
		if err != nil {
			return nil, nil, nil, err
		}
		CloseFD(fd)
		if err := f.RecordChain(base, chain); err != nil {
			return nil, nil, nil, err
		}
	}
	return base, ap, chain, nil
}

// MountAccessPoint is the access point ID a mount path names ("" for none).
func MountAccessPoint(dirpath string) string {
	comps, ok := SplitPath(dirpath)
	if ok && len(comps) > 0 && strings.HasPrefix(comps[0], "fsap-") {
		return comps[0]
	}
	return ""
}

// Changed tells the export's OnChange that the file system was modified.
func (f *FS) Changed() {
	if fn := f.e.OnChange; fn != nil {
		fn()
	}
}

// RecordChain records the handle table entries of the directories comps below base (a mount of an
// access point or a subdirectory), so that handles below them resolve.
func (f *FS) RecordChain(base *View, comps []string) error {
	parent := base.Ino
	for i := range comps {
		fd, err := OpenBeneath(base.FD, comps[:i+1], unix.O_PATH)
		if err != nil {
			return err
		}
		st, err := StatFD(fd)
		CloseFD(fd)
		if err != nil {
			return err
		}
		f.RecordHandle(st.Ino, parent, comps[i], false)
		parent = st.Ino
	}
	return nil
}

// RecordHandle records that ino is name in directory parent (see handleTable.put); a failure is
// logged, and the handle is stale at its next use.
func (f *FS) RecordHandle(ino, parent uint64, name string, force bool) {
	if err := f.table.put(ino, parent, name, force); err != nil {
		f.log.Rate(slog.LevelWarn, "nfs: cannot record file handle", "inode", ino, "err", err)
	}
}

// ForgetHandle deletes the handle of a file that no longer exists.
func (f *FS) ForgetHandle(ino uint64) {
	if err := f.table.del(ino); err != nil {
		f.log.Rate(slog.LevelWarn, "nfs: cannot delete file handle", "inode", ino, "err", err)
	}
}

// RecordNew records the handle of the entry base a call just created in directory pfd (as the
// server: the store is not the caller's). A handle that cannot be recorded would be stale at its
// first use, for instance when the disk of the store is full: the entry is removed again and the
// call fails with ENOSPC (or EDQUOT, or EIO), rather than creating a file every later call
// on which answers STALE.
func (f *FS) RecordNew(pfd int, base string, dir bool) error {
	pst, err := StatFD(pfd)
	if err != nil {
		return err
	}
	st, err := StatAt(pfd, base)
	if err != nil {
		return err
	}
	err = f.table.put(st.Ino, pst.Ino, base, true)
	if err == nil {
		return nil
	}
	flags := 0
	if dir {
		flags = unix.AT_REMOVEDIR
	}
	_ = unix.Unlinkat(pfd, base, flags)
	f.log.Error("nfs: cannot record the file handle of a new entry, creation undone", "err", err)
	return StoreErrno(err)
}

// maxDepth bounds a locator chain (a loop in a corrupt table must not spin).
const maxDepth = 2048

// Resolve finds the path below v of the file with inode ino and generation gen, following locators
// up to v's root, and checks that the path still leads to that very file. A chain read from the
// cache is retried from the store before the handle is declared stale (ErrStale). A store failure
// is a StoreError.
func (f *FS) Resolve(v *View, ino, gen uint64) ([]string, error) {
	if ino == v.Ino {
		if gen != 0 && v.Gen != 0 && gen != v.Gen {
			return nil, ErrStale
		}
		return nil, nil
	}
	root, err := f.RootView()
	if err != nil {
		return nil, err
	}
	for _, fresh := range []bool{false, true} {
		comps, ok, err := f.chain(v, root.Ino, ino, fresh)
		if err != nil {
			return nil, StoreError{err}
		}
		if !ok {
			continue
		}
		fd, err := OpenBeneath(v.FD, comps, unix.O_PATH|unix.O_NOFOLLOW)
		if err != nil {
			continue
		}
		st, err := StatFD(fd)
		CloseFD(fd)
		if err == nil && st.Ino == ino && (gen == 0 || Generation(&st) == 0 || Generation(&st) == gen) {
			return comps, nil
		}
	}
	return nil, ErrStale
}

func (f *FS) chain(v *View, fsRootIno, ino uint64, fresh bool) ([]string, bool, error) {
	var names []string
	cur := ino
	for depth := 0; cur != v.Ino; depth++ {
		if cur == fsRootIno || depth >= maxDepth {
			return nil, false, nil // outside the view
		}
		loc, ok, err := f.table.get(cur, fresh)
		if err != nil || !ok {
			return nil, false, err
		}
		parent, name, ok := parseLocator(loc)
		if !ok {
			return nil, false, nil
		}
		names = append(names, name)
		cur = parent
	}
	slices.Reverse(names)
	return names, true, nil
}

// Caller is what a call acts as, decided for each call.
type Caller struct {
	ID       Identity
	ReadOnly bool // the file system is a replication destination, or the policy withholds writes
	Denied   bool // the policy no longer grants mounting: every operation fails with EACCES
}

// Caller returns what a call through export root v (of access point ap, nil for none) made by
// client acts as: the access point's POSIX user if it has one, else the client's AUTH_UNIX
// identity (Nobody without one; root squashed unless the file system policy grants root access).
func (f *FS) Caller(v *View, ap *AccessPoint, client Identity) Caller {
	acc := f.Access(v.APID)
	id := client
	if !acc.Root {
		id = id.SquashRoot()
	}
	if ap != nil && ap.UID != nil {
		id = Identity{UID: *ap.UID, GID: Nobody.GID, Groups: ap.SecondaryGIDs}
		if ap.GID != nil {
			id.GID = *ap.GID
		}
	}
	return Caller{ID: id, ReadOnly: !acc.Write || f.ReadOnly(), Denied: !acc.Mount}
}

// Access is what the file system policy grants clients of access point apID ("" for none).
func (f *FS) Access(apID string) ClientAccess {
	if f.e.Access == nil {
		return FullAccess
	}
	return f.e.Access(apID)
}

// ReadOnly reports whether the file system is read-only now (a replication destination).
func (f *FS) ReadOnly() bool { return f.e.ReadOnly != nil && f.e.ReadOnly() }
