package nfs

import (
	"context"
	"errors"
	"log/slog"
	"math"
	"net"
	"strings"
	"sync"

	"github.com/efsd/efsd/internal/fsview"
	billy "github.com/go-git/go-billy/v5"
	gonfs "github.com/willscott/go-nfs"
	"golang.org/x/sys/unix"
)

// connHandler is the go-nfs Handler of one connection.
type connHandler struct {
	s *Server
	c *rpcConn

	mu sync.Mutex
	// mounted holds the exports this connection has mounted, by access point ID ("" = the file
	// system root, or a directory of it); nil until its first MOUNT. Once set, a handle of any other
	// export is stale on this connection. At most maxBoundExports.
	mounted map[string]struct{}
	// warned: a forged handle has been logged for this connection (once is enough)
	warned bool
}

var _ gonfs.Handler = (*connHandler)(nil)

// Mount serves MOUNT: "/" is the file system root, "/fsap-…" (or "fsap-…") an access point's root,
// "/fsap-…/sub/dir" a directory below it, and "/sub/dir" a directory of the file system (not
// confined: ".." from it reaches the rest of the file system, as a subdirectory mount of EFS does).
func (h *connHandler) Mount(ctx context.Context, conn net.Conn, req gonfs.MountRequest) (gonfs.MountStatus, billy.Filesystem, []gonfs.AuthFlavor) {
	s := h.s
	call := h.c.current()
	dirpath := string(req.Dirpath)
	log := s.logger.With("fileSystemId", s.e.FileSystemID, "mountPath", dirpath, "client", conn.RemoteAddr().String())
	// Refusals are logged rate-limited: a client can repeat them at will.
	who := []any{"mountPath", dirpath, "client", conn.RemoteAddr().String()}
	if !s.fs.Access(fsview.MountAccessPoint(dirpath)).Mount {
		// Refused before anything is looked up or created (an access point's root directory).
		s.clog.Rate(slog.LevelInfo, "nfs: mount refused by the file system policy", who...)
		return gonfs.MountStatusErrAcces, nil, nil
	}
	fs, err := s.mount(dirpath, call)
	if err != nil {
		s.clog.Rate(slog.LevelInfo, "nfs: mount refused", append(who, "err", err)...)
		return mountStatus(err), nil, nil
	}
	if !h.bind(fs.view.APID) {
		s.clog.Rate(slog.LevelWarn, "nfs: mount refused: too many exports mounted over one connection", append(who, "max", maxBoundExports)...)
		return gonfs.MountStatusErrAcces, nil, nil
	}
	log.Info("nfs: mount", "uid", fs.id.UID, "gid", fs.id.GID)
	return gonfs.MountStatusOk, fs, []gonfs.AuthFlavor{gonfs.AuthFlavorUnix}
}

// bind confines the connection's later calls to the exports it has mounted: after MOUNT of an
// access point (or a directory below it) a root handle, or another access point's, is refused on
// it. Clients that MOUNT on one connection and call NFS on another (the Linux and macOS kernels)
// are not bound; the handles' MAC is what keeps them inside the export they were given.
// It reports false, binding nothing, when the connection has mounted maxBoundExports others.
func (h *connHandler) bind(apID string) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.mounted == nil {
		h.mounted = make(map[string]struct{}, 1)
	}
	if _, ok := h.mounted[apID]; !ok && len(h.mounted) >= maxBoundExports {
		return false
	}
	h.mounted[apID] = struct{}{}
	return true
}

// maxBoundExports bounds the exports one connection may mount (and the memory that records them).
const maxBoundExports = 64

// allows reports whether a handle of export apID may be used on this connection.
func (h *connHandler) allows(apID string) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.mounted == nil {
		return true
	}
	_, ok := h.mounted[apID]
	return ok
}

func (s *Server) mount(dirpath string, call *callInfo) (*vfs, error) {
	base, ap, chain, err := s.fs.Mount(dirpath)
	if err != nil {
		return nil, err
	}
	fs := s.newVFS(base, ap, call)
	fs.prefix = chain
	return fs, nil
}

func mountStatus(err error) gonfs.MountStatus {
	var errno unix.Errno
	switch {
	case errors.Is(err, fsview.ErrNoAccessPoint):
		return gonfs.MountStatusErrNoEnt
	case errors.As(err, &errno):
		switch errno {
		case unix.ENOENT, unix.ELOOP:
			return gonfs.MountStatusErrNoEnt
		case unix.ENOTDIR:
			return gonfs.MountStatusErrNotDir
		case unix.EACCES, unix.EPERM:
			return gonfs.MountStatusErrAcces
		case unix.EINVAL:
			return gonfs.MountStatusErrInval
		case unix.ENAMETOOLONG:
			return gonfs.MountStatusErrNameTooLong
		}
		return gonfs.MountStatusErrIO
	}
	return gonfs.MountStatusErrServerFault
}

// Change returns the vfs itself: billy.Change, not go-nfs's UnixChange (no MKNOD, no LINK).
func (h *connHandler) Change(fs billy.Filesystem) billy.Change {
	if v, ok := fs.(*vfs); ok {
		return v
	}
	return nil
}

// FSStat reports the host file system's space and inodes.
func (h *connHandler) FSStat(ctx context.Context, fs billy.Filesystem, st *gonfs.FSStat) error {
	v, ok := fs.(*vfs)
	if !ok {
		return nil
	}
	if v.call != nil && v.call.deny != nil {
		return statusErr(v.call.deny)
	}
	var sf unix.Statfs_t
	if err := unix.Fstatfs(v.view.FD, &sf); err != nil {
		return err
	}
	bs := uint64(sf.Frsize)
	if bs == 0 {
		bs = uint64(sf.Bsize)
	}
	st.TotalSize = sf.Blocks * bs
	st.FreeSize = sf.Bfree * bs
	st.AvailableSize = sf.Bavail * bs
	st.TotalFiles = sf.Files
	st.FreeFiles = sf.Ffree
	st.AvailableFiles = sf.Ffree
	if v.ro {
		st.AvailableSize, st.AvailableFiles = 0, 0
	}
	return nil
}

// ToHandle names the file at path below fs's root by (file system, inode, birth time, access
// point) and records where it is in the handle table. A path that does not exist (go-nfs asks
// before some operations) gets a handle that is always stale.
func (h *connHandler) ToHandle(fs billy.Filesystem, path []string) []byte {
	v, ok := fs.(*vfs)
	if !ok || v == nil {
		return nil
	}
	dead := h.s.fs.EncodeHandle(fsview.Handle{APID: v.view.APID})
	comps, err := v.split(v.Join(path...))
	if err != nil {
		return dead
	}
	fd, err := fsview.OpenBeneath(v.view.FD, comps, unix.O_PATH|unix.O_NOFOLLOW)
	if err != nil {
		return dead
	}
	st, err := fsview.StatFD(fd)
	fsview.CloseFD(fd)
	if err != nil {
		return dead
	}
	if len(comps) > 0 {
		if parent, ok := h.parentIno(v, comps[:len(comps)-1]); ok {
			h.s.fs.RecordHandle(st.Ino, parent, comps[len(comps)-1], false)
		}
	}
	return h.s.fs.EncodeHandle(fsview.Handle{Ino: st.Ino, Gen: fsview.Generation(&st), APID: v.view.APID})
}

// parentIno returns the inode of directory comps, remembered for the rest of the call
// (READDIRPLUS asks for every entry of one directory).
func (h *connHandler) parentIno(v *vfs, comps []string) (uint64, bool) {
	if len(comps) == 0 {
		return v.view.Ino, true
	}
	rel := fsview.RelPath(comps)
	if c := v.call; c != nil && c.parentView == v.view && c.parentRel == rel {
		return c.parentIno, true
	}
	fd, err := fsview.OpenBeneath(v.view.FD, comps, unix.O_PATH|unix.O_DIRECTORY)
	if err != nil {
		return 0, false
	}
	st, err := fsview.StatFD(fd)
	fsview.CloseFD(fd)
	if err != nil {
		return 0, false
	}
	if c := v.call; c != nil {
		c.parentView, c.parentRel, c.parentIno = v.view, rel, st.Ino
	}
	return st.Ino, true
}

// FromHandle authenticates a handle, checks that this connection may use it, finds its file,
// verifies it is still the same file, and returns the file system the current call acts on (export
// root, identity, read-only state). go-nfs answers every error with NFS3ERR_STALE.
func (h *connHandler) FromHandle(fh []byte) (billy.Filesystem, []string, error) {
	s := h.s
	fhd, err := s.fs.DecodeHandle(fh)
	if err != nil {
		if errors.Is(err, fsview.ErrForgedHandle) {
			h.warnForged()
		}
		return nil, nil, err
	}
	if !h.allows(fhd.APID) {
		return nil, nil, errStale
	}
	v, ap, err := s.fs.ViewOf(fhd.APID)
	if err != nil {
		return nil, nil, err
	}
	call := h.c.current()
	comps, err := s.fs.Resolve(v, fhd.Ino, fhd.Gen)
	var se fsview.StoreError
	if errors.As(err, &se) && call != nil {
		// go-nfs answers every FromHandle error with NFS3ERR_STALE, which makes clients drop the
		// handle; a store failure fails the call's operations instead (NFS3ERR_IO or _ACCES).
		s.clog.Error("nfs: handle store failed", "err", err)
		call.deny = unix.EIO
		return s.newVFS(v, ap, call), nil, nil
	}
	if err != nil {
		return nil, nil, err
	}
	fs := s.newVFS(v, ap, call)
	if call != nil {
		call.listView, call.listIdent = v, fs.id.Key()
	}
	switch {
	case call.is(procCommit):
		if err := fs.commit(comps); err != nil {
			// go-nfs answers an error here with NFS3ERR_STALE: instead, the handle stays good and
			// go-nfs's COMMIT, finding no write capability, answers NFS3ERR_SERVERFAULT, which the
			// connection turns into the errno's status (NFS3ERR_IO).
			s.clog.Error("nfs: COMMIT failed", "err", err)
			call.note(err)
			fs.commitFailed = true
		}
	case call.is(procAccess):
		if !fs.ro {
			fd, err := fsview.OpenBeneath(v.FD, comps, unix.O_PATH|unix.O_NOFOLLOW)
			if err == nil {
				err = fsview.RunAs(fs.id, func() error {
					return unix.Faccessat2(fd, "", unix.W_OK, unix.AT_EACCESS|unix.AT_EMPTY_PATH)
				})
				// Only a definite no (not, say, ENOSYS before Linux 5.8) withholds write access.
				fs.noWrite = err == unix.EACCES || err == unix.EPERM || err == unix.EROFS
				fsview.CloseFD(fd)
			}
		}
	case call.is(procSetattr):
		fs.specialBits(comps)
	}
	return fs, comps, nil
}

// warnForged logs, once per connection and rate-limited, a handle that fails authentication: a
// client forging handles, or one holding handles from before the data directory's handle key was
// replaced.
func (h *connHandler) warnForged() {
	h.mu.Lock()
	first := !h.warned
	h.warned = true
	h.mu.Unlock()
	if first {
		h.s.clog.Rate(slog.LevelWarn, "nfs: file handle fails authentication", "client", h.c.RemoteAddr().String())
	}
}

// commit makes a file durable (COMMIT): what UNSTABLE WRITEs left in the page cache, and the
// file's metadata, reach the disk before the reply. Anything but a regular file (a symlink, a
// directory, a device) has nothing to commit.
func (v *vfs) commit(comps []string) error {
	fd, err := fsview.OpenBeneath(v.view.FD, comps, unix.O_RDONLY|unix.O_NOFOLLOW|unix.O_NONBLOCK|unix.O_NOCTTY)
	if err == unix.ELOOP || err == unix.ENXIO {
		return nil // a symlink or a socket: no data of its own
	}
	if err != nil {
		return err
	}
	defer fsview.CloseFD(fd)
	st, err := fsview.StatFD(fd)
	if err != nil || st.Mode&unix.S_IFMT != unix.S_IFREG {
		return err
	}
	return unix.Fsync(fd)
}

// specialBits applies a SETATTR that changes only the setuid/setgid/sticky bits: go-nfs compares
// permission bits only, and would not call Chmod. A failure (not the owner) makes go-nfs answer
// NFS3ERR_ACCES through call.deny.
func (v *vfs) specialBits(comps []string) {
	sa := v.call.sattr
	if sa == nil || sa.mode == nil || v.ro {
		return
	}
	want := *sa.mode & 07777
	fd, err := fsview.OpenBeneath(v.view.FD, comps, unix.O_PATH|unix.O_NOFOLLOW)
	if err != nil {
		return
	}
	st, err := fsview.StatFD(fd)
	fsview.CloseFD(fd)
	if err != nil || st.Mode&unix.S_IFMT == unix.S_IFLNK {
		return
	}
	cur := uint32(st.Mode) & 07777
	if cur&07000 == want&07000 || cur&0o777 != want&0o777 {
		return
	}
	if g := v.call.guard; g != nil && (g[0] != uint32(st.Mtime.Sec) || g[1] != st.Mtime.Nsec) {
		return // go-nfs answers NFS3ERR_NOT_SYNC (its ctime is the mtime)
	}
	if err := v.Chmod(strings.Join(comps, "/"), 0); err != nil {
		v.call.deny = err
	}
}

// InvalidateHandle is a no-op: Remove and Rename keep the table current themselves.
func (h *connHandler) InvalidateHandle(billy.Filesystem, []byte) error { return nil }

// HandleLimit: handles are persistent, there is no limit to keep.
func (h *connHandler) HandleLimit() int { return math.MaxInt32 }
