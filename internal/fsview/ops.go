package fsview

import (
	"errors"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// ResolveFlags confine every path walk to the directory it starts from.
const ResolveFlags = unix.RESOLVE_BENEATH | unix.RESOLVE_NO_MAGICLINKS | unix.RESOLVE_NO_XDEV

// RelPath is comps as a path relative to a directory ("." for none).
func RelPath(comps []string) string {
	if len(comps) == 0 {
		return "."
	}
	return strings.Join(comps, "/")
}

// OpenBeneath opens comps below dirfd without ever leaving it: neither "..", nor a symlink
// (absolute or relative), nor a concurrent rename can lead outside (such a walk fails with EACCES).
func OpenBeneath(dirfd int, comps []string, flags uint64) (int, error) {
	how := &unix.OpenHow{Flags: flags | unix.O_CLOEXEC, Resolve: ResolveFlags}
	rel := RelPath(comps)
	for i := 0; ; i++ {
		fd, err := unix.Openat2(dirfd, rel, how)
		switch {
		case err == nil:
			return fd, nil
		case err == unix.EINTR || (err == unix.EAGAIN && i < 16):
			continue // EAGAIN: a concurrent rename raced the walk
		case err == unix.EXDEV:
			return -1, unix.EACCES // the walk tried to leave the export
		default:
			return -1, err
		}
	}
}

// StatFD stats an open descriptor (an O_PATH one included), with its birth time.
func StatFD(fd int) (unix.Statx_t, error) {
	var st unix.Statx_t
	err := unix.Statx(fd, "", unix.AT_EMPTY_PATH|unix.AT_STATX_SYNC_AS_STAT, unix.STATX_BASIC_STATS|unix.STATX_BTIME, &st)
	return st, err
}

// StatAt stats the entry name of directory dirfd, never following a symlink.
func StatAt(dirfd int, name string) (unix.Statx_t, error) {
	var st unix.Statx_t
	err := unix.Statx(dirfd, name, unix.AT_SYMLINK_NOFOLLOW|unix.AT_STATX_SYNC_AS_STAT, unix.STATX_BASIC_STATS|unix.STATX_BTIME, &st)
	return st, err
}

// Generation is what a handle records to tell a reused inode number from the original file: the
// birth time, or 0 where the host file system has none.
func Generation(st *unix.Statx_t) uint64 {
	if st.Mask&unix.STATX_BTIME == 0 {
		return 0
	}
	return uint64(st.Btime.Sec)*1e9 + uint64(st.Btime.Nsec)
}

// CloseFD closes fd unless it is negative (not open).
func CloseFD(fd int) {
	if fd >= 0 {
		_ = unix.Close(fd)
	}
}

// SyncDir makes a directory's entries durable (NFS requires namespace changes to be on stable
// storage before the reply). It runs as the server: the caller may lack read permission on it.
func SyncDir(pathFD int) error {
	fd, err := unix.Openat(pathFD, ".", unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return err
	}
	defer CloseFD(fd)
	return unix.Fsync(fd)
}

// ChmodFD changes the mode of an O_PATH descriptor's file: fchmodat2(AT_EMPTY_PATH) (Linux 6.6),
// else through its /proc/self/fd magic link (which names the same inode, not a path).
func ChmodFD(fd int, mode uint32) error {
	err := unix.Fchmodat(fd, "", mode, unix.AT_EMPTY_PATH)
	if err == unix.EOPNOTSUPP || err == unix.ENOSYS || err == unix.EINVAL {
		err = unix.Chmod("/proc/self/fd/"+strconv.Itoa(fd), mode)
	}
	return err
}

// SplitPath splits a slash-separated path, dropping empty and "." components; ok is false if it
// has ".." or a NUL.
func SplitPath(p string) (comps []string, ok bool) {
	for _, c := range strings.Split(p, "/") {
		switch c {
		case "", ".":
		case "..":
			return nil, false
		default:
			if strings.ContainsRune(c, 0) {
				return nil, false
			}
			comps = append(comps, c)
		}
	}
	return comps, true
}

// StoreErrno is the errno a client is told when the HandleStore fails: ENOSPC or EDQUOT when its
// disk is full (SQLITE_FULL included), else EIO.
func StoreErrno(err error) unix.Errno {
	var coded interface{ Code() int }
	switch {
	case errors.Is(err, unix.ENOSPC), errors.As(err, &coded) && coded.Code()&0xff == 13: // SQLITE_FULL
		return unix.ENOSPC
	case errors.Is(err, unix.EDQUOT):
		return unix.EDQUOT
	}
	return unix.EIO
}

// SyncObject makes an attribute change of the object comps below dirfd durable: fsync of the
// object if it is a regular file or a directory, else of its parent directory.
func SyncObject(dirfd int, comps []string) error {
	fd, err := OpenBeneath(dirfd, comps, unix.O_RDONLY|unix.O_NOFOLLOW|unix.O_NONBLOCK|unix.O_NOCTTY)
	if err == nil {
		defer CloseFD(fd)
		st, err := StatFD(fd)
		if err != nil {
			return err
		}
		if t := st.Mode & unix.S_IFMT; t == unix.S_IFREG || t == unix.S_IFDIR {
			return unix.Fsync(fd)
		}
	}
	if len(comps) == 0 {
		return err
	}
	pfd, err := OpenBeneath(dirfd, comps[:len(comps)-1], unix.O_PATH|unix.O_DIRECTORY)
	if err != nil {
		return err
	}
	defer CloseFD(pfd)
	return SyncDir(pfd)
}
