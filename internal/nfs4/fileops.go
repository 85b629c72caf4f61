package nfs4

import (
	"bytes"
	"encoding/binary"
	"errors"
	"strconv"
	"strings"

	"github.com/buildbarn/go-xdr/pkg/protocols/nfsv4"
	"golang.org/x/sys/unix"

	"github.com/efsd/efsd/internal/fsview"
)

// object is a resolved file handle: the export root it resolves from, the path below it, and
// who calls through it act as.
type object struct {
	raw    []byte
	h      fsview.Handle
	view   *fsview.View
	ap     *fsview.AccessPoint
	comps  []string
	caller fsview.Caller
	dir    bool
}

func (cs *compound) clientID() fsview.Identity {
	if cs.call.AuthSys {
		return cs.call.Cred
	}
	return fsview.Nobody
}

// object returns the object at comps below view (st its stat), recording its handle.
func (cs *compound) object(view *fsview.View, ap *fsview.AccessPoint, comps []string, st *unix.Statx_t) *object {
	h := fsview.Handle{Ino: st.Ino, Gen: fsview.Generation(st), APID: view.APID}
	return &object{raw: cs.s.fs.EncodeHandle(h), h: h, view: view, ap: ap, comps: comps,
		caller: cs.s.fs.Caller(view, ap, cs.clientID()), dir: st.Mode&unix.S_IFMT == unix.S_IFDIR}
}

func (cs *compound) needFH() status {
	if cs.cur == nil {
		return errNoFileHandle
	}
	if cs.cur.caller.Denied {
		return errAccess
	}
	return ok
}

// as runs fn as the identity calls through o act as.
func as(o *object, fn func() error) error { return fsview.RunAs(o.caller.ID, fn) }

func (cs *compound) putRootFH() status {
	v, err := cs.s.fs.RootView()
	if err != nil {
		return errStatus(err)
	}
	st, err := fsview.StatFD(v.FD)
	if err != nil {
		return errStatus(err)
	}
	cs.cur = cs.object(v, nil, nil, &st)
	return ok
}

func (cs *compound) putFH(raw []byte) status {
	fs := cs.s.fs
	h, err := fs.DecodeHandle(raw)
	if err != nil {
		return errBadHandle
	}
	v, ap, err := fs.ViewOf(h.APID)
	if err != nil {
		return errStale
	}
	comps, err := fs.Resolve(v, h.Ino, h.Gen)
	var se fsview.StoreError
	if errors.As(err, &se) {
		return errIO
	}
	if err != nil {
		return errStale
	}
	fd, err := fsview.OpenBeneath(v.FD, comps, unix.O_PATH|unix.O_NOFOLLOW)
	if err != nil {
		return errStale
	}
	st, err := fsview.StatFD(fd)
	fsview.CloseFD(fd)
	if err != nil {
		return errStale
	}
	cs.cur = cs.object(v, ap, comps, &st)
	return ok
}

// stat stats the current object (as the caller: search permission on the way is checked).
func (cs *compound) stat(o *object) (unix.Statx_t, error) {
	var st unix.Statx_t
	err := as(o, func() error {
		fd, err := fsview.OpenBeneath(o.view.FD, o.comps, unix.O_PATH|unix.O_NOFOLLOW)
		if err != nil {
			return err
		}
		defer fsview.CloseFD(fd)
		st, err = fsview.StatFD(fd)
		return err
	})
	return st, err
}

func checkName(name string) status {
	switch {
	case name == "":
		return errInval
	case len(name) > 255:
		return errNameTooLong
	case name == "." || name == ".." || strings.ContainsAny(name, "/\x00"):
		return errBadName
	}
	return ok
}

// lookup serves LOOKUP. At the file system's root, "fsap-…" names an access point's root (the
// mount path /fsap-… of NFSv3), when that access point exists.
func (cs *compound) lookup(name string) status {
	if st := cs.needFH(); st != ok {
		return st
	}
	if st := checkName(name); st != ok {
		return st
	}
	o := cs.cur
	if !o.dir {
		return errNotDir
	}
	fs := cs.s.fs
	if o.view.APID == "" && len(o.comps) == 0 && strings.HasPrefix(name, "fsap-") {
		if !fs.Access(name).Mount {
			if _, ok := fs.Export().AccessPoint(name); ok && fs.Export().AccessPoint != nil {
				return errAccess
			}
		}
		if v, ap, err := fs.AccessPointView(name, true); err == nil {
			root, _ := fs.RootView()
			if err := fs.RecordChain(root, v.Comps); err != nil {
				return errStatus(err)
			}
			st, err := fsview.StatFD(v.FD)
			if err != nil {
				return errStatus(err)
			}
			cs.cur = cs.object(v, &ap, nil, &st)
			return ok
		} else if !errors.Is(err, fsview.ErrNoAccessPoint) {
			return errStatus(err)
		}
	}
	comps := append(append([]string(nil), o.comps...), name)
	var st, pst unix.Statx_t
	err := as(o, func() error {
		pfd, err := fsview.OpenBeneath(o.view.FD, o.comps, unix.O_PATH|unix.O_DIRECTORY)
		if err != nil {
			return err
		}
		defer fsview.CloseFD(pfd)
		if err := unix.Faccessat2(pfd, "", unix.X_OK, unix.AT_EACCESS|unix.AT_EMPTY_PATH); err != nil && err != unix.ENOSYS {
			return err
		}
		if pst, err = fsview.StatFD(pfd); err != nil {
			return err
		}
		st, err = fsview.StatAt(pfd, name)
		return err
	})
	if err != nil {
		return errStatus(err)
	}
	fs.RecordHandle(st.Ino, pst.Ino, name, false)
	cs.cur = cs.object(o.view, o.ap, comps, &st)
	return ok
}

func (cs *compound) lookupp() status {
	if st := cs.needFH(); st != ok {
		return st
	}
	o := cs.cur
	if !o.dir {
		return errNotDir
	}
	if len(o.comps) == 0 {
		return errNoEnt // an export root has no parent (the pseudo-root is the root)
	}
	comps := o.comps[:len(o.comps)-1]
	fd, err := fsview.OpenBeneath(o.view.FD, comps, unix.O_PATH|unix.O_DIRECTORY)
	if err != nil {
		return errStatus(err)
	}
	st, err := fsview.StatFD(fd)
	fsview.CloseFD(fd)
	if err != nil {
		return errStatus(err)
	}
	cs.cur = cs.object(o.view, o.ap, comps, &st)
	return ok
}

// attrsOf gathers what encodeAttrs needs for o.
func (cs *compound) attrsOf(o *object, st *unix.Statx_t, req bitmap) *fileAttrs {
	a := &fileAttrs{st: st, fsid: cs.s.fsid, lease: uint32(cs.s.opt.Lease.Seconds())}
	if req.has(aFilehandle) {
		a.fh = o.raw
	}
	for _, n := range []int{aFilesAvail, aFilesFree, aFilesTotal, aSpaceAvail, aSpaceFree, aSpaceTotal} {
		if req.has(n) {
			var sf unix.Statfs_t
			if unix.Fstatfs(o.view.FD, &sf) == nil {
				if o.caller.ReadOnly {
					sf.Bavail, sf.Ffree = 0, 0
				}
				a.sf = &sf
			}
			break
		}
	}
	return a
}

func (cs *compound) getattr(req []uint32) (nfsv4.NfsResop4, status) {
	if st := cs.needFH(); st != ok {
		return nil, st
	}
	st, err := cs.stat(cs.cur)
	if err != nil {
		return nil, errStatus(err)
	}
	mask, vals := encodeAttrs(bitmap(req), cs.attrsOf(cs.cur, &st, bitmap(req)))
	return &nfsv4.NfsResop4_OP_GETATTR{Opgetattr: &nfsv4.Getattr4res_NFS4_OK{Resok4: nfsv4.Getattr4resok{
		ObjAttributes: nfsv4.Fattr4{Attrmask: mask, AttrVals: vals}}}}, ok
}

// access serves ACCESS: the kernel answers for the caller's identity (faccessat2 AT_EACCESS).
func (cs *compound) access(want uint32) (nfsv4.NfsResop4, status) {
	if st := cs.needFH(); st != ok {
		return nil, st
	}
	o := cs.cur
	supported := want & (nfsv4.ACCESS4_READ | nfsv4.ACCESS4_LOOKUP | nfsv4.ACCESS4_MODIFY | nfsv4.ACCESS4_EXTEND |
		nfsv4.ACCESS4_DELETE | nfsv4.ACCESS4_EXECUTE)
	var granted uint32
	err := as(o, func() error {
		fd, err := fsview.OpenBeneath(o.view.FD, o.comps, unix.O_PATH|unix.O_NOFOLLOW)
		if err != nil {
			return err
		}
		defer fsview.CloseFD(fd)
		can := func(mode uint32) bool {
			return unix.Faccessat2(fd, "", mode, unix.AT_EACCESS|unix.AT_EMPTY_PATH) == nil
		}
		if want&nfsv4.ACCESS4_READ != 0 && can(unix.R_OK) {
			granted |= nfsv4.ACCESS4_READ
		}
		if o.dir {
			if want&nfsv4.ACCESS4_LOOKUP != 0 && can(unix.X_OK) {
				granted |= nfsv4.ACCESS4_LOOKUP
			}
			if !o.caller.ReadOnly && can(unix.W_OK|unix.X_OK) {
				granted |= want & (nfsv4.ACCESS4_MODIFY | nfsv4.ACCESS4_EXTEND | nfsv4.ACCESS4_DELETE)
			}
		} else {
			if want&nfsv4.ACCESS4_EXECUTE != 0 && can(unix.X_OK) {
				granted |= nfsv4.ACCESS4_EXECUTE
			}
			if !o.caller.ReadOnly && can(unix.W_OK) {
				granted |= want & (nfsv4.ACCESS4_MODIFY | nfsv4.ACCESS4_EXTEND)
			}
		}
		return nil
	})
	if err != nil {
		return nil, errStatus(err)
	}
	return &nfsv4.NfsResop4_OP_ACCESS{Opaccess: &nfsv4.Access4res_NFS4_OK{Resok4: nfsv4.Access4resok{
		Supported: supported, Access: granted & supported}}}, ok
}

func (cs *compound) readlink() (nfsv4.NfsResop4, status) {
	if st := cs.needFH(); st != ok {
		return nil, st
	}
	o := cs.cur
	var target []byte
	err := as(o, func() error {
		fd, err := fsview.OpenBeneath(o.view.FD, o.comps, unix.O_PATH|unix.O_NOFOLLOW)
		if err != nil {
			return err
		}
		defer fsview.CloseFD(fd)
		st, err := fsview.StatFD(fd)
		if err != nil {
			return err
		}
		if st.Mode&unix.S_IFMT != unix.S_IFLNK {
			return unix.EINVAL
		}
		buf := make([]byte, 4096)
		n, err := unix.Readlinkat(fd, "", buf)
		target = buf[:max(n, 0)]
		return err
	})
	if errors.Is(err, unix.EINVAL) {
		return nil, errInval
	}
	if err != nil {
		return nil, errStatus(err)
	}
	return &nfsv4.NfsResop4_OP_READLINK{Opreadlink: &nfsv4.Readlink4res_NFS4_OK{Resok4: nfsv4.Readlink4resok{Link: target}}}, ok
}

// readdir serves READDIR with the directory's own offsets (getdents d_off) as cookies, so that a
// client resumes where it stopped without the server keeping a listing.
func (cs *compound) readdir(a *nfsv4.Readdir4args) (nfsv4.NfsResop4, status) {
	if st := cs.needFH(); st != ok {
		return nil, st
	}
	o := cs.cur
	if !o.dir {
		return nil, errNotDir
	}
	if a.Cookie == 1 || a.Cookie == 2 {
		return nil, nfsv4.NFS4ERR_BAD_COOKIE
	}
	maxcount := min(int(a.Maxcount), maxIO)
	if maxcount < 64 {
		return nil, nfsv4.NFS4ERR_TOOSMALL
	}
	req := bitmap(a.AttrRequest)
	type ent struct {
		name string
		off  uint64
	}
	var ents []ent
	eof := false
	var pst unix.Statx_t
	err := as(o, func() error {
		fd, err := fsview.OpenBeneath(o.view.FD, o.comps, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW)
		if err != nil {
			return err
		}
		defer fsview.CloseFD(fd)
		if pst, err = fsview.StatFD(fd); err != nil {
			return err
		}
		if _, err := unix.Seek(fd, int64(a.Cookie), 0); err != nil {
			return err
		}
		buf := make([]byte, 32<<10)
		budget := maxcount / 16 // entries of at least 16 bytes each
		for len(ents) < budget {
			n, err := unix.Getdents(fd, buf)
			if err != nil {
				return err
			}
			if n == 0 {
				eof = true
				break
			}
			for p := 0; p < n; {
				// linux_dirent64: d_ino, d_off, d_reclen, d_type, d_name (NUL-terminated)
				reclen := int(binary.LittleEndian.Uint16(buf[p+16:]))
				if reclen < 20 || p+reclen > n {
					return unix.EIO
				}
				off := binary.LittleEndian.Uint64(buf[p+8:])
				nameb := buf[p+19 : p+reclen]
				if i := bytes.IndexByte(nameb, 0); i >= 0 {
					nameb = nameb[:i]
				}
				p += reclen
				if name := string(nameb); name != "." && name != ".." {
					ents = append(ents, ent{name, off})
				}
			}
		}
		return nil
	})
	if err != nil {
		return nil, errStatus(err)
	}
	// Encode entries while they fit in maxcount.
	size := 8 + 4 + 4 + 4 // verifier, value_follows, eof, status
	var head, tail *nfsv4.Entry4
	n := 0
	for _, e := range ents {
		comps := append(append([]string(nil), o.comps...), e.name)
		var st unix.Statx_t
		var rdErr status
		serr := as(o, func() error {
			var err error
			fd, err := fsview.OpenBeneath(o.view.FD, o.comps, unix.O_PATH|unix.O_DIRECTORY)
			if err != nil {
				return err
			}
			defer fsview.CloseFD(fd)
			st, err = fsview.StatAt(fd, e.name)
			return err
		})
		if serr != nil {
			if errors.Is(serr, unix.ENOENT) {
				continue // removed meanwhile
			}
			rdErr = errStatus(serr)
		}
		var mask bitmap
		var vals []byte
		if rdErr != ok {
			if !req.has(aRdattrError) {
				return nil, rdErr
			}
			mask, vals = encodeAttrs(mkBitmap(aRdattrError), &fileAttrs{st: &st, rdErr: uint32(rdErr)})
		} else {
			child := cs.object(o.view, o.ap, comps, &st)
			if req.has(aFilehandle) {
				cs.s.fs.RecordHandle(st.Ino, pst.Ino, e.name, false)
			}
			mask, vals = encodeAttrs(req, cs.attrsOf(child, &st, req))
		}
		esize := 4 + 8 + 4 + (len(e.name)+3)&^3 + 4 + 4*len(mask) + 4 + len(vals)
		if size+esize > maxcount {
			if n == 0 {
				return nil, nfsv4.NFS4ERR_TOOSMALL
			}
			eof = false
			break
		}
		size += esize
		en := &nfsv4.Entry4{Cookie: e.off, Name: e.name, Attrs: nfsv4.Fattr4{Attrmask: mask, AttrVals: vals}}
		if tail == nil {
			head = en
		} else {
			tail.Nextentry = en
		}
		tail = en
		n++
		if n == len(ents) {
			break
		}
	}
	if n < len(ents) {
		eof = false
	}
	return &nfsv4.NfsResop4_OP_READDIR{Opreaddir: &nfsv4.Readdir4res_NFS4_OK{Resok4: nfsv4.Readdir4resok{
		Reply: nfsv4.Dirlist4{Entries: head, Eof: eof}}}}, ok
}

// changeInfo is a directory's change attribute before and after a modification.
func changeInfo(before, after *unix.Statx_t) nfsv4.ChangeInfo4 {
	return nfsv4.ChangeInfo4{Atomic: false, Before: change(before), After: change(after)}
}

// parentDir opens the current object, which must be a writable directory, for a namespace change,
// and stats it (for change_info's before).
func (cs *compound) parentDir() (int, unix.Statx_t, status) {
	if st := cs.needFH(); st != ok {
		return -1, unix.Statx_t{}, st
	}
	o := cs.cur
	if !o.dir {
		return -1, unix.Statx_t{}, errNotDir
	}
	if o.caller.ReadOnly {
		return -1, unix.Statx_t{}, errROFS
	}
	pfd, err := fsview.OpenBeneath(o.view.FD, o.comps, unix.O_PATH|unix.O_DIRECTORY)
	if err != nil {
		return -1, unix.Statx_t{}, errStatus(err)
	}
	before, err := fsview.StatFD(pfd)
	if err != nil {
		fsview.CloseFD(pfd)
		return -1, unix.Statx_t{}, errStatus(err)
	}
	return pfd, before, ok
}

// afterChange is the change info of directory pfd from before to now.
func afterChange(pfd int, before *unix.Statx_t) nfsv4.ChangeInfo4 {
	after, _ := fsview.StatFD(pfd)
	return changeInfo(before, &after)
}

// entryOp is a namespace change in the current directory, in steps: make (as the caller) makes
// or changes the entry; if it created one, it sets created (and dir), and the new entry's handle
// is recorded (as the server: the handle store is not the caller's), then finish (as the caller,
// if set) completes it; the directory is made durable and replication told.
type entryOp struct {
	make    func(pfd int) error
	created string // the entry make created, "" for none
	dir     bool   // it is a directory
	finish  func(pfd int) error
}

// dirOp runs op and returns the directory's change info.
func (cs *compound) dirOp(op *entryOp) (nfsv4.ChangeInfo4, status) {
	pfd, before, st := cs.parentDir()
	if st != ok {
		return nfsv4.ChangeInfo4{}, st
	}
	defer fsview.CloseFD(pfd)
	o := cs.cur
	err := as(o, func() error { return op.make(pfd) })
	if err == nil && op.created != "" {
		err = cs.s.fs.RecordNew(pfd, op.created, op.dir)
		if err == nil && op.finish != nil {
			err = as(o, func() error { return op.finish(pfd) })
		}
	}
	if err != nil {
		return nfsv4.ChangeInfo4{}, errStatus(err)
	}
	err = fsview.SyncDir(pfd)
	cs.s.fs.Changed()
	return afterChange(pfd, &before), errStatus(err)
}

// create serves CREATE: directories and symbolic links (the other types are not served).
func (cs *compound) create(a *nfsv4.Create4args) (nfsv4.NfsResop4, status) {
	if st := checkName(a.Objname); st != ok {
		return nil, st
	}
	switch a.Objtype.(type) {
	case *nfsv4.Createtype4_NF4DIR, *nfsv4.Createtype4_NF4LNK:
	default:
		return nil, errBadType // devices, sockets and FIFOs are not served
	}
	sa, st := decodeSetAttrs(a.Createattrs.Attrmask, a.Createattrs.AttrVals)
	if st != ok {
		return nil, st
	}
	var child unix.Statx_t
	var applied bitmap
	op := &entryOp{created: a.Objname}
	op.make = func(pfd int) error {
		switch t := a.Objtype.(type) {
		case *nfsv4.Createtype4_NF4DIR:
			mode := uint32(0o755)
			if sa.mode != nil {
				mode = *sa.mode
			}
			op.dir = true
			return unix.Mkdirat(pfd, a.Objname, mode&0o777)
		case *nfsv4.Createtype4_NF4LNK:
			if len(t.Linkdata) == 0 || len(t.Linkdata) > 4095 {
				return unix.EINVAL
			}
			return unix.Symlinkat(string(t.Linkdata), pfd, a.Objname)
		}
		return unix.EINVAL
	}
	op.finish = func(pfd int) error {
		fd, err := unix.Openat2(pfd, a.Objname, &unix.OpenHow{Flags: unix.O_PATH | unix.O_NOFOLLOW | unix.O_CLOEXEC, Resolve: fsview.ResolveFlags})
		if err != nil {
			return err
		}
		defer fsview.CloseFD(fd)
		if applied, err = applyAttrs(fd, sa, op.dir, true); err != nil {
			return err
		}
		child, err = fsview.StatFD(fd)
		return err
	}
	ci, st := cs.dirOp(op)
	if st != ok {
		return nil, st
	}
	o := cs.cur
	cs.cur = cs.object(o.view, o.ap, append(append([]string(nil), o.comps...), a.Objname), &child)
	return &nfsv4.NfsResop4_OP_CREATE{Opcreate: &nfsv4.Create4res_NFS4_OK{Resok4: nfsv4.Create4resok{Cinfo: ci, Attrset: applied}}}, ok
}

// applyAttrs applies sa to the object open (O_PATH) at fd, as the caller. created: the object was
// just made (the mode is then exact: the setgid bit a directory inherits is kept).
func applyAttrs(fd int, sa *setAttrs, dir, created bool) (bitmap, error) {
	var done bitmap
	st, err := fsview.StatFD(fd)
	if err != nil {
		return nil, err
	}
	link := st.Mode&unix.S_IFMT == unix.S_IFLNK
	if sa.uid != nil || sa.gid != nil {
		uid, gid := -1, -1
		if sa.uid != nil {
			uid = int(*sa.uid)
			done.set(aOwner)
		}
		if sa.gid != nil {
			gid = int(*sa.gid)
			done.set(aOwnerGroup)
		}
		if err := unix.Fchownat(fd, "", uid, gid, unix.AT_EMPTY_PATH); err != nil {
			return nil, err
		}
	}
	if sa.mode != nil && !link {
		mode := *sa.mode
		if created && dir {
			mode |= uint32(st.Mode) & unix.S_ISGID
		}
		if err := fsview.ChmodFD(fd, mode); err != nil {
			return nil, err
		}
		done.set(aMode)
	} else if sa.mode != nil {
		done.set(aMode)
	}
	if sa.size != nil {
		if st.Mode&unix.S_IFMT != unix.S_IFREG {
			if dir {
				return nil, unix.EISDIR
			}
			return nil, unix.EINVAL
		}
		wfd, err := unix.Open("/proc/self/fd/"+strconv.Itoa(fd), unix.O_WRONLY|unix.O_CLOEXEC, 0) // the magic link names this very inode
		if err != nil {
			return nil, err
		}
		err = unix.Ftruncate(wfd, int64(*sa.size))
		if err == nil {
			err = unix.Fsync(wfd)
		}
		fsview.CloseFD(wfd)
		if err != nil {
			return nil, err
		}
		done.set(aSize)
	}
	if sa.atime != nil || sa.mtime != nil {
		ts := []unix.Timespec{{Nsec: unix.UTIME_OMIT}, {Nsec: unix.UTIME_OMIT}}
		if sa.atime != nil {
			ts[0] = *sa.atime
			done.set(aTimeAccessSet)
		}
		if sa.mtime != nil {
			ts[1] = *sa.mtime
			done.set(aTimeModifySet)
		}
		err := unix.UtimesNanoAt(fd, "", ts, unix.AT_EMPTY_PATH)
		if err == unix.EINVAL || err == unix.ENOENT {
			err = unix.UtimesNanoAt(unix.AT_FDCWD, "/proc/self/fd/"+strconv.Itoa(fd), ts, 0)
		}
		if err != nil {
			return nil, err
		}
	}
	return done, nil
}

// link serves LINK: a new name newName in the current directory for the saved object.
func (cs *compound) link(newName string) (nfsv4.NfsResop4, status) {
	if st := checkName(newName); st != ok {
		return nil, st
	}
	src, st := cs.savedObject(false)
	if st != ok {
		return nil, st
	}
	sfd, err := fsview.OpenBeneath(src.view.FD, src.comps, unix.O_PATH|unix.O_NOFOLLOW)
	if err != nil {
		return nil, errStatus(err)
	}
	defer fsview.CloseFD(sfd)
	ci, st := cs.dirOp(&entryOp{make: func(pfd int) error {
		// linkat(AT_EMPTY_PATH) needs CAP_DAC_READ_SEARCH; the descriptor's magic link does not,
		// and names this very inode. (The handle table keeps the name the inode was known by.)
		return unix.Linkat(unix.AT_FDCWD, "/proc/self/fd/"+strconv.Itoa(sfd), pfd, newName, unix.AT_SYMLINK_FOLLOW)
	}})
	if st != ok {
		return nil, st
	}
	return &nfsv4.NfsResop4_OP_LINK{Oplink: &nfsv4.Link4res_NFS4_OK{Resok4: nfsv4.Link4resok{Cinfo: ci}}}, ok
}

func (cs *compound) remove(name string) (nfsv4.NfsResop4, status) {
	if st := checkName(name); st != ok {
		return nil, st
	}
	pfd, before, st := cs.parentDir()
	if st != ok {
		return nil, st
	}
	defer fsview.CloseFD(pfd)
	if err := cs.s.fs.Remove(cs.cur.caller.ID, pfd, name, -1); err != nil {
		return nil, errStatus(err)
	}
	return &nfsv4.NfsResop4_OP_REMOVE{Opremove: &nfsv4.Remove4res_NFS4_OK{Resok4: nfsv4.Remove4resok{Cinfo: afterChange(pfd, &before)}}}, ok
}

// saved returns the saved object of a two-object operation (LINK, RENAME), which must be in the
// current object's export root, and be a directory or not as dir says.
func (cs *compound) savedObject(dir bool) (*object, status) {
	if st := cs.needFH(); st != ok {
		return nil, st
	}
	src := cs.saved
	switch {
	case src == nil:
		return nil, errNoFileHandle
	case dir && !src.dir:
		return nil, errNotDir
	case !dir && src.dir:
		return nil, errIsDir
	case src.view != cs.cur.view:
		return nil, errXDev
	}
	return src, ok
}

// rename serves RENAME from the saved directory to the current one.
func (cs *compound) rename(from, to string) (nfsv4.NfsResop4, status) {
	if st := checkName(from); st != ok {
		return nil, st
	}
	if st := checkName(to); st != ok {
		return nil, st
	}
	src, st := cs.savedObject(true)
	if st != ok {
		return nil, st
	}
	sfd, err := fsview.OpenBeneath(src.view.FD, src.comps, unix.O_PATH|unix.O_DIRECTORY)
	if err != nil {
		return nil, errStatus(err)
	}
	defer fsview.CloseFD(sfd)
	sbefore, err := fsview.StatFD(sfd)
	if err != nil {
		return nil, errStatus(err)
	}
	tfd, tbefore, st := cs.parentDir()
	if st != ok {
		return nil, st
	}
	defer fsview.CloseFD(tfd)
	if err := cs.s.fs.Rename(cs.cur.caller.ID, sfd, from, tfd, to); err != nil {
		return nil, errStatus(err)
	}
	return &nfsv4.NfsResop4_OP_RENAME{Oprename: &nfsv4.Rename4res_NFS4_OK{Resok4: nfsv4.Rename4resok{
		SourceCinfo: afterChange(sfd, &sbefore), TargetCinfo: afterChange(tfd, &tbefore)}}}, ok
}
