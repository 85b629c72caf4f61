package remotesync

import (
	"bytes"
	"crypto/rand"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/efsd/efsd/internal/chunks"
	"github.com/efsd/efsd/internal/treesync"
)

// The file-system calls of both sides: every one relative to a directory
// descriptor opened without following symlinks, with single-component
// names.

func lstatAt(dirfd int, name string) (unix.Stat_t, error) {
	var st unix.Stat_t
	err := ignoringEINTR(func() error { return unix.Fstatat(dirfd, name, &st, unix.AT_SYMLINK_NOFOLLOW) })
	return st, err
}

func ignoringEINTR(f func() error) error {
	for {
		if err := f(); err != unix.EINTR {
			return err
		}
	}
}

func typeOf(st *unix.Stat_t) uint32 { return st.Mode & unix.S_IFMT }

// chownTolerant runs a chown and swallows EPERM, as treesync does: without
// CAP_CHOWN owners cannot be reproduced (the daemon runs as root).
func chownTolerant(f func() error) error {
	if err := f(); err != nil && !errors.Is(err, unix.EPERM) {
		return err
	}
	return nil
}

func mtimeSpec(ns int64) []unix.Timespec {
	return []unix.Timespec{{Nsec: unix.UTIME_OMIT}, unix.NsecToTimespec(ns)}
}

// futimens sets the mtime of an open file or directory.
func futimens(fd int, ns int64) error {
	ts := mtimeSpec(ns)
	_, _, e := unix.Syscall6(unix.SYS_UTIMENSAT, uintptr(fd), 0, uintptr(unsafe.Pointer(&ts[0])), 0, 0, 0)
	if e != 0 {
		return e
	}
	return nil
}

// fsetMeta gives an open file or directory e's owner, mode and mtime:
// chown first (it clears setuid bits), mtime last.
func fsetMeta(fd int, st *unix.Stat_t, e *wireEntry) error {
	chowned := false
	if st.Uid != e.UID || st.Gid != e.GID {
		if err := chownTolerant(func() error { return unix.Fchown(fd, int(e.UID), int(e.GID)) }); err != nil {
			return err
		}
		chowned = true
	}
	// Set again whenever chown ran (it clears setuid and setgid) or such
	// bits are wanted.
	if chowned || st.Mode&0o7777 != e.Mode || e.Mode&0o7000 != 0 {
		if err := unix.Fchmod(fd, e.Mode); err != nil {
			return err
		}
	}
	return futimens(fd, e.Mtime)
}

// metaEqual: the entry's owner, permission bits and mtime are the file's.
func metaEqual(st *unix.Stat_t, e *wireEntry, symlink bool) bool {
	return st.Uid == e.UID && st.Gid == e.GID && st.Mtim.Nano() == e.Mtime &&
		(symlink || st.Mode&0o7777 == e.Mode)
}

// setMetaAt updates the metadata of the regular file or symlink name
// (never followed) from st to e.
func setMetaAt(dirfd int, name string, st *unix.Stat_t, e *wireEntry, symlink bool) error {
	chowned := false
	if st.Uid != e.UID || st.Gid != e.GID {
		if err := chownTolerant(func() error {
			return unix.Fchownat(dirfd, name, int(e.UID), int(e.GID), unix.AT_SYMLINK_NOFOLLOW)
		}); err != nil {
			return err
		}
		chowned = true
	}
	if !symlink && (chowned || st.Mode&0o7777 != e.Mode) {
		if err := fchmodNoFollow(dirfd, name, e.Mode); err != nil {
			return err
		}
	}
	return unix.UtimesNanoAt(dirfd, name, mtimeSpec(e.Mtime), unix.AT_SYMLINK_NOFOLLOW)
}

func fchmodNoFollow(dirfd int, name string, perm uint32) error {
	err := unix.Fchmodat(dirfd, name, perm, unix.AT_SYMLINK_NOFOLLOW)
	if err != unix.EOPNOTSUPP && err != unix.ENOSYS {
		return err
	}
	fd, err := treesync.OpenAt(dirfd, name, unix.O_RDONLY|unix.O_NOFOLLOW|unix.O_NONBLOCK|unix.O_NOCTTY, 0)
	if err != nil {
		return err
	}
	defer unix.Close(fd)
	return unix.Fchmod(fd, perm)
}

// readNames lists a directory, without "." and "..", sorted.
func readNames(fd int) ([]string, error) {
	ds, err := readDirents(fd)
	if err != nil {
		return nil, err
	}
	names := make([]string, len(ds))
	for i, d := range ds {
		names[i] = d.name
	}
	return names, nil
}

// dirent is a directory entry's name and its type as the directory
// records it (unix.DT_*; DT_UNKNOWN where the file system does not).
type dirent struct {
	name string
	typ  uint8
}

// readDirents lists the directory fd (without "." and ".."), sorted by
// name.
func readDirents(fd int) ([]dirent, error) {
	buf := make([]byte, 64<<10)
	var ds []dirent
	for {
		var n int
		err := ignoringEINTR(func() (err error) { n, err = unix.Getdents(fd, buf); return err })
		if err != nil {
			return nil, err
		}
		if n <= 0 {
			break
		}
		if ds, err = parseDirents(buf[:n], ds); err != nil {
			return nil, err
		}
	}
	slices.SortFunc(ds, func(a, b dirent) int { return strings.Compare(a.name, b.name) })
	return ds, nil
}

// parseDirents appends the linux_dirent64 records of b to ds: d_ino (8
// bytes), d_off (8), d_reclen (2), d_type (1), then the name, NUL
// terminated and padded to d_reclen.
func parseDirents(b []byte, ds []dirent) ([]dirent, error) {
	const head = 19
	for len(b) > 0 {
		if len(b) < head {
			return ds, fmt.Errorf("directory entry of %d bytes", len(b))
		}
		reclen := int(binary.NativeEndian.Uint16(b[16:18]))
		if reclen < head || reclen > len(b) {
			return ds, fmt.Errorf("directory entry length %d of %d bytes", reclen, len(b))
		}
		name := b[head:reclen]
		if i := bytes.IndexByte(name, 0); i >= 0 {
			name = name[:i]
		}
		if n := string(name); n != "." && n != ".." {
			ds = append(ds, dirent{name: n, typ: b[18]})
		}
		b = b[reclen:]
	}
	return ds, nil
}

func openRead(dirfd int, name string) (int, error) {
	const fl = unix.O_RDONLY | unix.O_NOFOLLOW | unix.O_NONBLOCK | unix.O_NOCTTY
	fd, err := treesync.OpenAt(dirfd, name, fl|unix.O_NOATIME, 0)
	if err == unix.EPERM {
		fd, err = treesync.OpenAt(dirfd, name, fl, 0)
	}
	return fd, err
}

// holds reports whether the regular file name in dirfd holds exactly the
// content l describes, by hashing it, and how many bytes it read. *buf is
// grown to the longest chunk when shorter (kept for the caller's next
// file: most never need one).
func holds(dirfd int, name string, l []chunks.Chunk, buf *[]byte) (bool, int64) {
	fd, err := openRead(dirfd, name)
	if err != nil {
		return false, 0
	}
	defer unix.Close(fd)
	var st unix.Stat_t
	if unix.Fstat(fd, &st) != nil || typeOf(&st) != unix.S_IFREG || st.Size != chunks.Size(l) {
		return false, 0
	}
	var read int64
	for _, c := range l {
		if cap(*buf) < c.Length {
			*buf = make([]byte, c.Length, max(c.Length, 2*cap(*buf)))
		}
		b := (*buf)[:c.Length]
		n, err := treesync.PreadFull(fd, b, c.Offset)
		read += int64(n)
		if err != nil || n != c.Length || chunks.Sum(b) != c.Hash {
			return false, read
		}
	}
	return true, read
}

// tmpName is a fresh temporary name (treesync's prefix, so that a
// leftover is recognised as one).
func tmpName() string {
	var b [8]byte
	rand.Read(b[:])
	return treesync.TmpPrefix + hex.EncodeToString(b[:])
}

func randomID() string {
	var b [16]byte
	rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

func randomGen() uint64 {
	for {
		var b [8]byte
		rand.Read(b[:])
		if g := uint64(b[0]) | uint64(b[1])<<8 | uint64(b[2])<<16 | uint64(b[3])<<24 |
			uint64(b[4])<<32 | uint64(b[5])<<40 | uint64(b[6])<<48 | uint64(b[7])<<56; g != 0 {
			return g
		}
	}
}

// writeFileAtomic replaces path with b durably: a temporary written and
// fsynced, renamed over path, the directory fsynced.
func writeFileAtomic(path string, b []byte) error {
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	tmp := path + ".tmp"
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return err
	}
	_, err = f.Write(b)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, path)
	}
	if err != nil {
		os.Remove(tmp)
		return err
	}
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}

// loadJSON reads a small state file; a missing or unreadable one gives
// false (the caller starts afresh).
func loadJSON(path string, v any) bool {
	b, err := os.ReadFile(path)
	if err != nil {
		return false
	}
	return json.Unmarshal(b, v) == nil
}

func errAt(op, rel string, err error) error {
	if rel == "" {
		rel = "."
	}
	return fmt.Errorf("%s %q: %w", op, rel, err)
}
