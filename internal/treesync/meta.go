package treesync

import (
	"errors"
	"unsafe"

	"golang.org/x/sys/unix"
)

// meta is the part of stat(2) that Sync compares and reproduces. It is kept
// small because the walker holds one per entry it is working on.
type meta struct {
	dev, ino uint64
	nlink    uint64
	size     int64
	mtime    int64  // nanoseconds since the epoch
	ctime    int64  // inode change time, ns: moved by every write and metadata change
	mode     uint32 // st_mode: type and permission bits
	uid, gid uint32
}

func metaOf(st *unix.Stat_t) meta {
	return meta{
		dev: st.Dev, ino: st.Ino, nlink: uint64(st.Nlink), size: st.Size,
		mtime: st.Mtim.Nano(), ctime: st.Ctim.Nano(), mode: st.Mode, uid: st.Uid, gid: st.Gid,
	}
}

func (m meta) typ() uint32  { return m.mode & unix.S_IFMT }
func (m meta) isDir() bool  { return m.typ() == unix.S_IFDIR }
func (m meta) isReg() bool  { return m.typ() == unix.S_IFREG }
func (m meta) isLink() bool { return m.typ() == unix.S_IFLNK }
func (m meta) perm() uint32 { return m.mode & 0o7777 }

// lstatAt stats name in the directory dirfd without following a symlink.
func lstatAt(dirfd int, name string) (meta, error) {
	var st unix.Stat_t
	err := ignoringEINTR(func() error { return unix.Fstatat(dirfd, name, &st, unix.AT_SYMLINK_NOFOLLOW) })
	return metaOf(&st), err
}

func fstat(fd int) (meta, error) {
	var st unix.Stat_t
	err := unix.Fstat(fd, &st)
	return metaOf(&st), err
}

// ownerEqual reports whether owners match; once chown has been refused
// (we are not root) ownership is not compared, so that an unprivileged
// caller does not try, and fail, to fix it for every entry.
func (s *syncer) ownerEqual(a, b meta) bool {
	return s.noChown.Load() || a.uid == b.uid && a.gid == b.gid
}

// metaEqual compares what Sync reproduces besides content: mode, owner, mtime.
func (s *syncer) metaEqual(a, b meta) bool {
	return a.mode == b.mode && a.mtime == b.mtime && s.ownerEqual(a, b)
}

// chown runs f and swallows EPERM: without CAP_CHOWN ownership cannot be
// reproduced, which is tolerated (documented on Sync) rather than fatal.
func (s *syncer) chown(f func() error) error {
	err := f()
	if errors.Is(err, unix.EPERM) {
		s.noChown.Store(true)
		return nil
	}
	return err
}

func mtimeSpec(ns int64) []unix.Timespec {
	// atime is left alone (UTIME_OMIT): only mtime is reproduced.
	return []unix.Timespec{{Nsec: unix.UTIME_OMIT}, unix.NsecToTimespec(ns)}
}

// futimens sets the mtime of an open file (utimensat with a NULL path,
// which x/sys does not expose).
func futimens(fd int, ns int64) error {
	ts := mtimeSpec(ns)
	_, _, e := unix.Syscall6(unix.SYS_UTIMENSAT, uintptr(fd), 0, uintptr(unsafe.Pointer(&ts[0])), 0, 0, 0)
	if e != 0 {
		return e
	}
	return nil
}

// fsetMeta gives an open file or directory the owner, mode and mtime of m.
// chown comes first because it clears setuid/setgid bits, mtime last
// because nothing after it may touch the inode.
func (s *syncer) fsetMeta(fd int, m meta) error {
	if err := s.chown(func() error { return unix.Fchown(fd, int(m.uid), int(m.gid)) }); err != nil {
		return err
	}
	if err := unix.Fchmod(fd, m.perm()); err != nil {
		return err
	}
	return futimens(fd, m.mtime)
}

// fsetMetaFrom gives an open file the owner, mode and mtime of want, from
// have, its own: chown and chmod only where they differ (chmod again after
// a chown, which clears setuid and setgid, and whenever such bits are
// wanted), the mtime always, last.
func (s *syncer) fsetMetaFrom(fd int, have, want meta) error {
	chowned := false
	if !s.ownerEqual(have, want) {
		if err := s.chown(func() error { return unix.Fchown(fd, int(want.uid), int(want.gid)) }); err != nil {
			return err
		}
		chowned = true
	}
	if chowned || have.perm() != want.perm() || want.perm()&0o7000 != 0 {
		if err := unix.Fchmod(fd, want.perm()); err != nil {
			return err
		}
	}
	return futimens(fd, want.mtime)
}

// setMetaAt updates the metadata of the existing entry name (a regular file
// or symlink, never followed) from have to want, touching only what differs.
func (s *syncer) setMetaAt(dirfd int, name string, have, want meta) error {
	chowned := false
	if !s.ownerEqual(have, want) {
		err := s.chown(func() error {
			return unix.Fchownat(dirfd, name, int(want.uid), int(want.gid), unix.AT_SYMLINK_NOFOLLOW)
		})
		if err != nil {
			return err
		}
		chowned = true
	}
	if !want.isLink() && (chowned || have.mode != want.mode) {
		if err := fchmodNoFollow(dirfd, name, want.perm()); err != nil {
			return err
		}
	}
	if chowned || have.mtime != want.mtime {
		return unix.UtimesNanoAt(dirfd, name, mtimeSpec(want.mtime), unix.AT_SYMLINK_NOFOLLOW)
	}
	return nil
}

// fchmodNoFollow chmods a regular file without following a symlink that
// might have been planted in its place: fchmodat2 (Linux ≥ 6.6), else
// through an O_NOFOLLOW descriptor.
func fchmodNoFollow(dirfd int, name string, perm uint32) error {
	err := unix.Fchmodat(dirfd, name, perm, unix.AT_SYMLINK_NOFOLLOW)
	if err != unix.EOPNOTSUPP && err != unix.ENOSYS {
		return err
	}
	fd, err := openAt(dirfd, name, unix.O_RDONLY|unix.O_NOFOLLOW|unix.O_NONBLOCK|unix.O_NOCTTY, 0)
	if err != nil {
		return err
	}
	defer unix.Close(fd)
	return unix.Fchmod(fd, perm)
}

func openAt(dirfd int, name string, flags int, perm uint32) (int, error) {
	var fd int
	err := ignoringEINTR(func() (err error) {
		fd, err = unix.Openat(dirfd, name, flags|unix.O_CLOEXEC, perm)
		return err
	})
	return fd, err
}

// ignoringEINTR retries f while it is interrupted by a signal (the Go
// runtime's preemption signals can interrupt slow file systems).
func ignoringEINTR(f func() error) error {
	for {
		if err := f(); err != unix.EINTR {
			return err
		}
	}
}
