package nfs

import (
	"errors"
	"io"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/efsd/efsd/internal/fsview"
	billy "github.com/go-git/go-billy/v5"
	gonfs "github.com/willscott/go-nfs"
	"github.com/willscott/go-nfs/file"
	"golang.org/x/sys/unix"
)

// vfs is the billy.Filesystem go-nfs sees for one RPC: one export root (view), the identity the
// call acts as, and whether the export is read-only at this moment. Every path is resolved with
// openat2(RESOLVE_BENEATH|RESOLVE_NO_MAGICLINKS|RESOLVE_NO_XDEV) from the view's directory, so
// neither "..", nor a symlink (absolute or relative), nor a concurrent rename can take a path out of
// the export: such a walk fails (EXDEV, reported as EACCES). The last component is never followed
// when it is a symlink, except by Stat (which go-nfs uses to test for directories), which follows it
// only inside the export. Files are opened with O_NOFOLLOW|O_NONBLOCK and only regular files are
// served, so a FIFO or a device node is never read or written.
//
// vfs implements billy.Change but not go-nfs's UnixChange: MKNOD and LINK are refused (go-nfs
// v0.0.4 misparses LINK3args and issues MKNOD's handle before the node exists).
type vfs struct {
	s       *Server
	view    *fsview.View
	prefix  []string // components prepended to every path (MOUNT of a subdirectory)
	id      fsview.Identity
	ro      bool
	noWrite bool // ACCESS: the caller may not modify the object (go-nfs then grants read/lookup/execute only)
	// commitFailed: COMMIT could not make the file durable (go-nfs then answers NFS3ERR_SERVERFAULT)
	commitFailed bool
	call         *callInfo
}

var (
	_ billy.Filesystem = (*vfs)(nil)
	_ billy.Change     = (*vfs)(nil)
	_ billy.Capable    = (*vfs)(nil)
)

var errInvalidName = unix.EINVAL

func (v *vfs) Capabilities() billy.Capability {
	c := billy.DefaultCapabilities
	if v.ro || v.noWrite || v.commitFailed {
		c &^= billy.WriteCapability
	}
	return c
}

// do runs fn as the call's identity, unless the handler has denied the call.
func (v *vfs) do(fn func() error) error {
	if v.call != nil && v.call.deny != nil {
		return v.call.deny
	}
	return fsview.RunAs(v.id, fn)
}

// note records the outcome of a file system operation in the call (see callInfo.lastErr). EOF is
// not a failure.
func (v *vfs) note(err *error) {
	if *err == io.EOF {
		return
	}
	v.call.note(*err)
}

func (v *vfs) writable() error {
	if v.ro {
		return unix.EROFS
	}
	return nil
}

// split turns a go-nfs path (elements joined by Join) into components below the view's root.
func (v *vfs) split(name string) ([]string, error) {
	out := make([]string, 0, len(v.prefix)+4)
	out = append(out, v.prefix...)
	if name == "" {
		return out, nil
	}
	for _, c := range strings.Split(name, "/") {
		if !fsview.ValidName(c) {
			return nil, errInvalidName
		}
		out = append(out, c)
	}
	return out, nil
}

func pathErr(op, name string, err error) error {
	if err == nil {
		return nil
	}
	return &os.PathError{Op: op, Path: name, Err: err}
}

// statusErr wraps an error of an operation whose error go-nfs passes on unchanged (SETATTR's Chmod,
// Lchown, Chtimes, Truncate and their Close): anything but an *NFSStatusError would go out as an
// RPC-level SYSTEM_ERR. errors.Is still sees the errno.
func statusErr(err error) error {
	if err == nil {
		return nil
	}
	st, ok := nfsStatusOf(err)
	if !ok {
		st = gonfs.NFSStatusIO
	}
	return &gonfs.NFSStatusError{NFSStatus: st, WrappedErr: err}
}

// nfsStatusOf maps the errno in err to its nfsstat3, as knfsd does; ok is false when err carries
// no errno with a status of its own.
func nfsStatusOf(err error) (gonfs.NFSStatus, bool) {
	var errno unix.Errno
	if !errors.As(err, &errno) {
		return 0, false
	}
	switch errno {
	case unix.EPERM:
		return gonfs.NFSStatusPerm, true
	case unix.ENOENT:
		return gonfs.NFSStatusNoEnt, true
	case unix.EIO:
		return gonfs.NFSStatusIO, true
	case unix.ENXIO:
		return gonfs.NFSStatusNXIO, true
	case unix.EACCES:
		return gonfs.NFSStatusAccess, true
	case unix.EEXIST:
		return gonfs.NFSStatusExist, true
	case unix.EXDEV:
		return gonfs.NFSStatusXDev, true
	case unix.ENODEV:
		return gonfs.NFSStatusNoDev, true
	case unix.ENOTDIR:
		return gonfs.NFSStatusNotDir, true
	case unix.EISDIR:
		return gonfs.NFSStatusIsDir, true
	case unix.EINVAL, unix.ELOOP:
		return gonfs.NFSStatusInval, true
	case unix.EFBIG:
		return gonfs.NFSStatusFBig, true
	case unix.ENOSPC:
		return gonfs.NFSStatusNoSPC, true
	case unix.EROFS:
		return gonfs.NFSStatusROFS, true
	case unix.EMLINK:
		return gonfs.NFSStatusMlink, true
	case unix.ENAMETOOLONG:
		return gonfs.NFSStatusNameTooLong, true
	case unix.ENOTEMPTY:
		return gonfs.NFSStatusNotEmpty, true
	case unix.EDQUOT:
		return gonfs.NFSStatusDQuot, true
	case unix.ESTALE:
		return gonfs.NFSStatusStale, true
	case unix.EOPNOTSUPP:
		return gonfs.NFSStatusNotSupp, true
	}
	return 0, false
}

// syncObject makes an object's attribute change durable: fsync of the object if it is a regular file
// or a directory, else of its parent directory.
func (v *vfs) syncObject(comps []string) error { return fsview.SyncObject(v.view.FD, comps) }

func (v *vfs) changed() { v.s.fs.Changed() }

// Join joins path elements without cleaning them: split rejects ".", ".." and empty components
// instead of letting them move the path.
func (v *vfs) Join(elem ...string) string { return strings.Join(elem, "/") }

func (v *vfs) Lstat(name string) (os.FileInfo, error) { return v.stat("lstat", name, true) }

// Stat follows a final symlink, inside the export only.
func (v *vfs) Stat(name string) (os.FileInfo, error) { return v.stat("stat", name, false) }

func (v *vfs) stat(op, name string, nofollow bool) (_ os.FileInfo, err error) {
	defer v.note(&err)
	comps, err := v.split(name)
	if err != nil {
		return nil, pathErr(op, name, err)
	}
	flags := uint64(unix.O_PATH)
	if nofollow {
		flags |= unix.O_NOFOLLOW
	}
	var fi *fileInfo
	err = v.do(func() error {
		fd, err := fsview.OpenBeneath(v.view.FD, comps, flags)
		if err != nil {
			return err
		}
		defer fsview.CloseFD(fd)
		st, err := fsview.StatFD(fd)
		if err != nil {
			return err
		}
		fi = newFileInfo(baseName(comps), &st)
		return nil
	})
	if err != nil {
		return nil, pathErr(op, name, err)
	}
	return fi, nil
}

func baseName(comps []string) string {
	if len(comps) == 0 {
		return "."
	}
	return comps[len(comps)-1]
}

func (v *vfs) Open(name string) (billy.File, error) { return v.OpenFile(name, os.O_RDONLY, 0) }

// Create is called by go-nfs for CREATE only. It creates the file if needed but does not truncate
// an existing one (UNCHECKED semantics; go-nfs applies a requested size afterwards); GUARDED
// creation is exclusive. The mode is the client's, exactly (setuid/setgid/sticky included, no
// umask).
func (v *vfs) Create(name string) (billy.File, error) {
	flag := os.O_RDWR | os.O_CREATE
	if v.call.is(procCreate) && v.call.createHow == 1 {
		flag |= os.O_EXCL
	}
	return v.OpenFile(name, flag, 0o666)
}

func (v *vfs) OpenFile(name string, flag int, perm os.FileMode) (_ billy.File, err error) {
	defer v.note(&err)
	comps, err := v.split(name)
	if err != nil {
		return nil, pathErr("open", name, err)
	}
	if flag&(os.O_WRONLY|os.O_RDWR|os.O_CREATE|os.O_TRUNC|os.O_APPEND) != 0 {
		if err := v.writable(); err != nil {
			return nil, pathErr("open", name, err)
		}
	}
	if flag&os.O_CREATE != 0 {
		return v.create(name, comps, flag, perm)
	}
	flags := uint64(flag&^os.O_EXCL) | unix.O_NOFOLLOW | unix.O_NONBLOCK | unix.O_NOCTTY
	var fd int
	err = v.do(func() error {
		var err error
		fd, err = fsview.OpenBeneath(v.view.FD, comps, flags)
		if err == unix.EACCES && flag&unix.O_ACCMODE == unix.O_RDWR {
			// go-nfs opens O_RDWR to WRITE; a write-only file is enough for that.
			fd, err = fsview.OpenBeneath(v.view.FD, comps, flags&^unix.O_RDWR|unix.O_WRONLY)
		}
		return err
	})
	if err == unix.ELOOP {
		err = unix.EINVAL // a symlink is not a file to read or write
	}
	if err != nil {
		return nil, pathErr("open", name, err)
	}
	if err := checkRegular(fd); err != nil {
		fsview.CloseFD(fd)
		return nil, pathErr("open", name, err)
	}
	return &nfsFile{v: v, name: name, comps: comps, fd: fd, dirty: flag&os.O_TRUNC != 0}, nil
}

func checkRegular(fd int) error {
	st, err := fsview.StatFD(fd)
	if err != nil {
		return err
	}
	switch st.Mode & unix.S_IFMT {
	case unix.S_IFREG:
		return unix.SetNonblock(fd, false)
	case unix.S_IFDIR:
		return unix.EISDIR
	default:
		return unix.EINVAL
	}
}

func (v *vfs) create(name string, comps []string, flag int, perm os.FileMode) (billy.File, error) {
	if len(comps) == 0 {
		return nil, pathErr("create", name, unix.EEXIST)
	}
	mode := uint32(perm.Perm())
	var exact *uint32
	if v.call.is(procCreate) && v.call.sattr != nil && v.call.sattr.mode != nil {
		m := *v.call.sattr.mode & 07777
		mode, exact = m&0o777, &m
	}
	flags := flag | unix.O_NOFOLLOW | unix.O_NONBLOCK | unix.O_NOCTTY | unix.O_CLOEXEC
	fd, pfd := -1, -1
	created := false
	err := v.do(func() error {
		var err error
		pfd, err = fsview.OpenBeneath(v.view.FD, comps[:len(comps)-1], unix.O_PATH|unix.O_DIRECTORY)
		if err != nil {
			return err
		}
		base := comps[len(comps)-1]
		if flag&os.O_EXCL != 0 {
			fd, err = unix.Openat(pfd, base, flags, mode)
			created = err == nil
		} else {
			fd, err = unix.Openat(pfd, base, flags|unix.O_EXCL, mode)
			created = err == nil
			if err == unix.EEXIST {
				fd, err = unix.Openat(pfd, base, flags&^unix.O_CREAT, 0)
			}
		}
		if err != nil {
			return err
		}
		if created && exact != nil {
			// Undo the process umask and keep the special bits go-nfs would drop.
			return unix.Fchmod(fd, *exact)
		}
		return nil
	})
	defer fsview.CloseFD(pfd)
	if err == unix.ELOOP {
		err = unix.EEXIST // the name is a symlink
	}
	if err == nil {
		err = checkRegular(fd)
	}
	if err == nil && !created && v.call.is(procCreate) {
		v.call.existed = true
	}
	if err == nil && created {
		err = v.s.fs.RecordNew(pfd, comps[len(comps)-1], false)
	}
	if err == nil && created {
		if err = unix.Fsync(fd); err == nil {
			err = fsview.SyncDir(pfd)
		}
		v.changed()
	}
	if err != nil {
		fsview.CloseFD(fd)
		return nil, pathErr("create", name, err)
	}
	return &nfsFile{v: v, name: name, comps: comps, fd: fd, dirty: flag&os.O_TRUNC != 0}, nil
}

func (v *vfs) ReadDir(name string) (_ []os.FileInfo, err error) {
	defer v.note(&err)
	comps, err := v.split(name)
	if err != nil {
		return nil, pathErr("readdir", name, err)
	}
	var out []os.FileInfo
	err = v.do(func() error {
		fd, err := fsview.OpenBeneath(v.view.FD, comps, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW)
		if err != nil {
			return err
		}
		d := os.NewFile(uintptr(fd), name)
		defer d.Close()
		names, err := d.Readdirnames(-1)
		if err != nil {
			return err
		}
		out = make([]os.FileInfo, 0, len(names))
		for _, n := range names {
			st, err := fsview.StatAt(fd, n)
			if err != nil {
				continue // gone meanwhile, or not searchable
			}
			out = append(out, newFileInfo(n, &st))
		}
		return nil
	})
	if err != nil {
		return nil, pathErr("readdir", name, err)
	}
	return out, nil
}

func (v *vfs) Readlink(name string) (_ string, err error) {
	defer v.note(&err)
	comps, err := v.split(name)
	if err != nil {
		return "", pathErr("readlink", name, err)
	}
	var target string
	err = v.do(func() error {
		fd, err := fsview.OpenBeneath(v.view.FD, comps, unix.O_PATH|unix.O_NOFOLLOW)
		if err != nil {
			return err
		}
		defer fsview.CloseFD(fd)
		buf := make([]byte, 4096)
		n, err := unix.Readlinkat(fd, "", buf)
		if err != nil {
			return err
		}
		target = string(buf[:n])
		return nil
	})
	if err != nil {
		return "", pathErr("readlink", name, err)
	}
	return target, nil
}

// nsOpCreate runs fn, which makes the entry base in directory pfd (MKDIR, SYMLINK), as the
// caller; then records the new entry's handle (see fsview.FS.RecordNew), makes the directory
// durable and notifies.
func (v *vfs) nsOpCreate(op, name string, dir bool, fn func(pfd int, base string) error) (err error) {
	defer v.note(&err)
	pfd, base, err := v.parentOf(op, name)
	if err != nil {
		return err
	}
	defer fsview.CloseFD(pfd)
	err = v.do(func() error { return fn(pfd, base) })
	if err == nil {
		err = v.s.fs.RecordNew(pfd, base, dir)
	}
	if err == nil {
		err = fsview.SyncDir(pfd)
		v.changed()
	}
	return pathErr(op, name, err)
}

// MkdirAll is called by go-nfs for MKDIR only, after checking that the parent exists: it makes one
// directory, with the client's exact mode (the setgid bit inherited from the parent is kept, as
// the kernel does).
func (v *vfs) MkdirAll(name string, perm os.FileMode) error {
	mode := uint32(0o755)
	if v.call.is(procMkdir) && v.call.sattr != nil && v.call.sattr.mode != nil {
		mode = *v.call.sattr.mode & 07777
	}
	return v.nsOpCreate("mkdir", name, true, func(pfd int, base string) error {
		if err := unix.Mkdirat(pfd, base, mode&0o777); err != nil {
			return err
		}
		st, err := fsview.StatAt(pfd, base)
		if err != nil {
			return err
		}
		want := mode | uint32(st.Mode)&unix.S_ISGID
		if uint32(st.Mode)&07777 == want {
			return nil
		}
		fd, err := unix.Openat2(pfd, base, &unix.OpenHow{Flags: unix.O_PATH | unix.O_NOFOLLOW | unix.O_DIRECTORY | unix.O_CLOEXEC, Resolve: fsview.ResolveFlags})
		if err != nil {
			return err
		}
		defer fsview.CloseFD(fd)
		return fsview.ChmodFD(fd, want)
	})
}

func (v *vfs) Symlink(target, link string) error {
	return v.nsOpCreate("symlink", link, false, func(pfd int, base string) error {
		return unix.Symlinkat(target, pfd, base)
	})
}

// Remove serves REMOVE and RMDIR (go-nfs routes both here): RMDIR removes only directories,
// REMOVE only non-directories.
func (v *vfs) Remove(name string) (err error) {
	defer v.note(&err)
	dir := -1
	switch {
	case v.call.is(procRmdir):
		dir = 1
	case v.call.is(procRemove):
		dir = 0
	}
	pfd, base, err := v.parentOf("remove", name)
	if err != nil {
		return err
	}
	defer fsview.CloseFD(pfd)
	return pathErr("remove", name, v.s.fs.Remove(v.id, pfd, base, dir))
}

// parentOf opens the directory of the entry name names (as the caller: the walk checks its
// permissions) for a namespace change, and returns it with the entry's name; the export root and
// a read-only export are refused.
func (v *vfs) parentOf(op, name string) (int, string, error) {
	comps, err := v.split(name)
	if err == nil && len(comps) == 0 {
		err = unix.EBUSY // the export root itself
	}
	if err == nil {
		err = v.writable()
	}
	if err != nil {
		return -1, "", pathErr(op, name, err)
	}
	pfd := -1
	err = v.do(func() error {
		var err error
		pfd, err = fsview.OpenBeneath(v.view.FD, comps[:len(comps)-1], unix.O_PATH|unix.O_DIRECTORY)
		return err
	})
	if err != nil {
		return -1, "", pathErr(op, name, err)
	}
	return pfd, comps[len(comps)-1], nil
}

func (v *vfs) Rename(from, to string) (err error) {
	defer v.note(&err)
	fpfd, fb, err := v.parentOf("rename", from)
	if err != nil {
		return err
	}
	defer fsview.CloseFD(fpfd)
	tpfd, tb, err := v.parentOf("rename", to)
	if err != nil {
		return err
	}
	defer fsview.CloseFD(tpfd)
	return pathErr("rename", from, v.s.fs.Rename(v.id, fpfd, fb, tpfd, tb))
}

// attrOp changes an attribute of the object at name (never following a final symlink), as the
// caller, then makes it durable and notifies.
func (v *vfs) attrOp(op, name string, fn func(fd int, st *unix.Statx_t) error) (err error) {
	defer v.note(&err)
	comps, err := v.split(name)
	if err == nil {
		err = v.writable()
	}
	if err != nil {
		return statusErr(pathErr(op, name, err))
	}
	if v.call.is(procCreate) && v.call.existed {
		return nil
	}
	err = v.do(func() error {
		fd, err := fsview.OpenBeneath(v.view.FD, comps, unix.O_PATH|unix.O_NOFOLLOW)
		if err != nil {
			return err
		}
		defer fsview.CloseFD(fd)
		st, err := fsview.StatFD(fd)
		if err != nil {
			return err
		}
		return fn(fd, &st)
	})
	if err == nil {
		err = v.syncObject(comps)
		v.changed()
	}
	return statusErr(pathErr(op, name, err))
}

// Chmod sets the mode the client asked for: go-nfs passes only the permission bits, the
// setuid/setgid/sticky bits come from the SETATTR arguments.
func (v *vfs) Chmod(name string, mode os.FileMode) error {
	m := fsview.UnixMode(mode) & 0o777
	if v.call.is(procSetattr) && v.call.sattr != nil && v.call.sattr.mode != nil {
		m = *v.call.sattr.mode & 07777
	}
	return v.attrOp("chmod", name, func(fd int, st *unix.Statx_t) error {
		if st.Mode&unix.S_IFMT == unix.S_IFLNK {
			return nil // symlinks have no mode of their own on Linux (SYMLINK may carry one)
		}
		return fsview.ChmodFD(fd, m)
	})
}

func (v *vfs) Lchown(name string, uid, gid int) error {
	return v.attrOp("lchown", name, func(fd int, _ *unix.Statx_t) error {
		return unix.Fchownat(fd, "", uid, gid, unix.AT_EMPTY_PATH)
	})
}

// Chown is Lchown: the server never follows a client's symlink to change what it points to.
func (v *vfs) Chown(name string, uid, gid int) error { return v.Lchown(name, uid, gid) }

// Chtimes sets the times the client asked for. go-nfs turns SET_TO_SERVER_TIME into an explicit
// time and fills unchanged times with current values; the SETATTR arguments restore UTIME_NOW and
// UTIME_OMIT, so that a non-owner with write permission can "touch" a file, as locally.
func (v *vfs) Chtimes(name string, atime, mtime time.Time) error {
	ts := []unix.Timespec{unix.NsecToTimespec(atime.UnixNano()), unix.NsecToTimespec(mtime.UnixNano())}
	if v.call.is(procSetattr) && v.call.sattr != nil {
		for i, how := range []uint32{v.call.sattr.atimeHow, v.call.sattr.mtimeHow} {
			switch how {
			case 0:
				ts[i] = unix.Timespec{Nsec: unix.UTIME_OMIT}
			case 1:
				ts[i] = unix.Timespec{Nsec: unix.UTIME_NOW}
			}
		}
	}
	return v.attrOp("chtimes", name, func(fd int, _ *unix.Statx_t) error {
		err := unix.UtimesNanoAt(fd, "", ts, unix.AT_EMPTY_PATH)
		if err == unix.EINVAL || err == unix.ENOENT {
			err = unix.UtimesNanoAt(unix.AT_FDCWD, "/proc/self/fd/"+strconv.Itoa(fd), ts, 0)
		}
		return err
	})
}

func (v *vfs) TempFile(dir, prefix string) (billy.File, error) { return nil, billy.ErrNotSupported }

func (v *vfs) Chroot(path string) (billy.Filesystem, error) { return nil, billy.ErrNotSupported }

func (v *vfs) Root() string { return "/" }

// nfsFile is an open regular file. Writes are made durable before Close returns, because go-nfs
// answers every WRITE with FILE_SYNC.
type nfsFile struct {
	v     *vfs
	name  string
	comps []string
	fd    int
	off   int64
	dirty bool
}

func (f *nfsFile) Name() string { return f.name }

func (f *nfsFile) Read(p []byte) (int, error) {
	n, err := f.ReadAt(p, f.off)
	f.off += int64(n)
	return n, err
}

func (f *nfsFile) ReadAt(p []byte, off int64) (_ int, err error) {
	defer f.v.note(&err)
	total := 0
	for total < len(p) {
		n, err := unix.Pread(f.fd, p[total:], off+int64(total))
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return total, pathErr("read", f.name, err)
		}
		if n == 0 {
			return total, io.EOF
		}
		total += n
	}
	return total, nil
}

func (f *nfsFile) Write(p []byte) (_ int, err error) {
	defer f.v.note(&err)
	if f.fd < 0 {
		return 0, os.ErrClosed
	}
	total := 0
	for total < len(p) {
		n, err := unix.Pwrite(f.fd, p[total:], f.off)
		if err == unix.EINTR {
			continue
		}
		if n > 0 {
			total += n
			f.off += int64(n)
			f.dirty = true
		}
		if err == nil && n == 0 {
			err = io.ErrShortWrite
		}
		if err != nil {
			f.abandon()
			return total, pathErr("write", f.name, err)
		}
	}
	return total, nil
}

// abandon closes the file after an error: go-nfs returns on a failed Write, Seek or Truncate
// without closing it.
func (f *nfsFile) abandon() {
	if f.fd >= 0 {
		_ = unix.Close(f.fd)
		f.fd = -1
		if f.dirty {
			f.v.changed()
		}
	}
}

func (f *nfsFile) Seek(offset int64, whence int) (_ int64, err error) {
	defer f.v.note(&err)
	switch whence {
	case io.SeekStart:
	case io.SeekCurrent:
		offset += f.off
	case io.SeekEnd:
		st, err := fsview.StatFD(f.fd)
		if err != nil {
			return f.off, err
		}
		offset += int64(st.Size)
	default:
		return f.off, unix.EINVAL
	}
	if offset < 0 {
		f.abandon()
		return f.off, unix.EINVAL
	}
	f.off = offset
	return offset, nil
}

func (f *nfsFile) Truncate(size int64) (err error) {
	defer f.v.note(&err)
	if f.fd < 0 {
		return os.ErrClosed
	}
	if err := unix.Ftruncate(f.fd, size); err != nil {
		f.abandon()
		return statusErr(pathErr("truncate", f.name, err))
	}
	f.dirty = true
	return nil
}

func (f *nfsFile) Lock() error   { return nil }
func (f *nfsFile) Unlock() error { return nil }

// Close makes what was written as durable as the WRITE asked before go-nfs replies: FILE_SYNC
// (and any other call) fsyncs, DATA_SYNC fdatasyncs, UNSTABLE leaves the data in the page cache
// for COMMIT, which fsyncs. The reply says which was done (callInfo.committed). A client that
// wrote UNSTABLE keeps its data until COMMIT succeeds with the verifier its WRITEs got; the
// verifier changes whenever efsd starts, so after a crash it sends the data again.
func (f *nfsFile) Close() (err error) {
	if f.fd < 0 {
		return nil // abandoned after an error already reported
	}
	defer f.v.note(&err)
	if f.dirty {
		how := uint32(stableFileSync)
		if c := f.v.call; c.is(procWrite) {
			how = c.stable
		}
		switch how {
		case stableUnstable:
		case stableDataSync:
			err = unix.Fdatasync(f.fd)
		default:
			err = unix.Fsync(f.fd)
		}
		if c := f.v.call; err == nil && c.is(procWrite) {
			c.committed = how
		}
	}
	if cerr := unix.Close(f.fd); err == nil {
		err = cerr
	}
	f.fd = -1
	if f.dirty {
		f.v.changed()
	}
	return statusErr(pathErr("close", f.name, err))
}

// fileInfo is an os.FileInfo from statx. Mode carries the setuid/setgid/sticky bits as the raw
// octal 07000 bits (go-nfs sends uint32(Mode()) as fattr3.mode, and clients read the low 12 bits);
// Sys gives go-nfs the inode number, link count, owner and device numbers.
type fileInfo struct {
	name string
	st   unix.Statx_t
}

func newFileInfo(name string, st *unix.Statx_t) *fileInfo {
	return &fileInfo{name: name, st: *st}
}

func (fi *fileInfo) Name() string { return fi.name }
func (fi *fileInfo) Size() int64  { return int64(fi.st.Size) }
func (fi *fileInfo) ModTime() time.Time {
	return time.Unix(fi.st.Mtime.Sec, int64(fi.st.Mtime.Nsec))
}
func (fi *fileInfo) IsDir() bool { return fi.st.Mode&unix.S_IFMT == unix.S_IFDIR }

func (fi *fileInfo) Mode() os.FileMode {
	m := os.FileMode(fi.st.Mode & 07777)
	switch fi.st.Mode & unix.S_IFMT {
	case unix.S_IFDIR:
		m |= os.ModeDir
	case unix.S_IFLNK:
		m |= os.ModeSymlink
	case unix.S_IFIFO:
		m |= os.ModeNamedPipe
	case unix.S_IFSOCK:
		m |= os.ModeSocket
	case unix.S_IFCHR:
		m |= os.ModeDevice | os.ModeCharDevice
	case unix.S_IFBLK:
		m |= os.ModeDevice
	}
	return m
}

func (fi *fileInfo) Sys() any {
	return &file.FileInfo{
		Nlink:  fi.st.Nlink,
		UID:    fi.st.Uid,
		GID:    fi.st.Gid,
		Major:  fi.st.Rdev_major,
		Minor:  fi.st.Rdev_minor,
		Fileid: fi.st.Ino,
	}
}
