package fsview

import "golang.org/x/sys/unix"

// Rename renames from in directory fpfd to to in directory tpfd as id (the kernel checks the
// permissions), then keeps the handle table true (the moved file's new place; a replaced file's
// handle gone), makes the directories durable (NFS requires namespace changes on stable storage
// before the reply) and notifies. It is every front end's RENAME. Not to be called inside RunAs
// (which does not nest: the inner call restores the server's identity).
func (f *FS) Rename(id Identity, fpfd int, from string, tpfd int, to string) error {
	var src, dst, tdir unix.Statx_t
	existed := false
	err := RunAs(id, func() error {
		var err error
		if src, err = StatAt(fpfd, from); err != nil {
			return err
		}
		if dst, err = StatAt(tpfd, to); err == nil {
			existed = true
		}
		if tdir, err = StatFD(tpfd); err != nil {
			return err
		}
		return unix.Renameat(fpfd, from, tpfd, to)
	})
	if err != nil {
		return err
	}
	f.RecordHandle(src.Ino, tdir.Ino, to, true)
	if existed && dst.Ino != src.Ino && (dst.Mode&unix.S_IFMT == unix.S_IFDIR || dst.Nlink <= 1) {
		f.ForgetHandle(dst.Ino)
	}
	err = SyncDir(fpfd)
	if fdir, serr := StatFD(fpfd); err == nil && (serr != nil || fdir.Ino != tdir.Ino) {
		err = SyncDir(tpfd) // another directory (within one, one fsync is enough)
	}
	f.Changed()
	return err
}

// Remove removes name from directory pfd as id: a directory when dir is 1, anything else when
// it is 0, whichever it is when -1. It forgets the handle of what no longer exists, makes the
// directory durable and notifies.
func (f *FS) Remove(id Identity, pfd int, name string, dir int) error {
	var st unix.Statx_t
	err := RunAs(id, func() error {
		var err error
		if st, err = StatAt(pfd, name); err != nil {
			return err
		}
		isDir := st.Mode&unix.S_IFMT == unix.S_IFDIR
		flags := 0
		if dir == 1 || dir < 0 && isDir {
			flags = unix.AT_REMOVEDIR
		}
		return unix.Unlinkat(pfd, name, flags)
	})
	if err != nil {
		return err
	}
	if st.Mode&unix.S_IFMT == unix.S_IFDIR || st.Nlink <= 1 {
		f.ForgetHandle(st.Ino)
	}
	err = SyncDir(pfd)
	f.Changed()
	return err
}
