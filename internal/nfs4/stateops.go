package nfs4

import (
	"encoding/binary"
	"strconv"

	"github.com/buildbarn/go-xdr/pkg/protocols/nfsv4"
	"golang.org/x/sys/unix"

	"github.com/efsd/efsd/internal/fsview"
)

const (
	shareRead           = 1
	shareWrite          = 2
	resultLocktypePosix = 4
)

func isAnonymous(sid nfsv4.Stateid4) bool { return sid.Seqid == 0 && sid.Other == [12]byte{} }

func isBypass(sid nfsv4.Stateid4) bool {
	if sid.Seqid != ^uint32(0) {
		return false
	}
	for _, b := range sid.Other {
		if b != 0xff {
			return false
		}
	}
	return true
}

// findState resolves a stateid (s.mu held); nil with ok for the anonymous and bypass stateids.
func (cs *compound) findState(sid nfsv4.Stateid4) (*state, status) {
	s := cs.s
	if cs.minor == 1 && sid.Seqid == 1 && sid.Other == [12]byte{} {
		if cs.curSID == nil {
			return nil, errBadStateID
		}
		return cs.curSID, ok
	}
	if isAnonymous(sid) || isBypass(sid) {
		return nil, ok
	}
	if binary.BigEndian.Uint32(sid.Other[:4]) != s.epoch {
		if cs.minor == 0 {
			return nil, errStaleStateID
		}
		return nil, errBadStateID
	}
	st := s.states[sid.Other]
	if st == nil {
		return nil, errBadStateID
	}
	if cs.minor == 1 && st.c != cs.c {
		return nil, errBadStateID
	}
	if sid.Seqid != 0 || cs.minor == 0 {
		if sid.Seqid > st.seq {
			return nil, errBadStateID
		}
		if sid.Seqid < st.seq && cs.minor == 1 {
			return nil, errOldStateID
		}
		// 4.0: libnfs keeps the seqid of the first of several OPENs of a file under one
		// open-owner, and uses it after the others moved it on; an older seqid of a current
		// stateid is taken (RFC 7530 would answer NFS4ERR_OLD_STATEID).
	}
	st.c.renewed = cs.now
	return st, ok
}

// fileOf stats the current object, which must be a regular file.
func (cs *compound) regular() (unix.Statx_t, status) {
	if st := cs.needFH(); st != ok {
		return unix.Statx_t{}, st
	}
	if cs.cur.dir {
		return unix.Statx_t{}, errIsDir
	}
	st, err := cs.stat(cs.cur)
	if err != nil {
		return st, errStatus(err)
	}
	switch st.Mode & unix.S_IFMT {
	case unix.S_IFREG:
		return st, ok
	case unix.S_IFLNK:
		return st, errSymlink
	}
	if cs.minor == 0 {
		return st, errInval
	}
	return st, errWrongType
}

func keyOf(st *unix.Statx_t) fileKey { return fileKey{st.Ino, fsview.Generation(st)} }

// stateClient is the client an OPEN acts for: the session's (4.1) or the one the open owner names.
func (cs *compound) stateClient(clientID uint64) (*client, status) {
	if cs.minor == 1 {
		return cs.c, ok
	}
	c := cs.s.clients[clientID]
	if c == nil || !c.confirmed {
		return nil, errStaleClientID
	}
	if cs.now.Sub(c.renewed) > cs.s.opt.Lease {
		return nil, errExpired
	}
	c.renewed = cs.now
	cs.s.connClient[cs.call.Conn] = c.id
	return c, ok
}

// lockOwnerState finds the lock state of a 4.0 LOCK or LOCKU that names the anonymous stateid
// as its lock owner's (s.mu held). libnfs 4.0 keeps one lock owner for all its files, and after
// its first lock sends, for a file it has not locked yet, exist_lock_owner4 with a stateid it
// never got: the lock owner is the one its client (the one this connection acts for) last named.
func (cs *compound) lockOwnerState(k fileKey, create bool) (*state, status) {
	s := cs.s
	id, known := s.connClient[cs.call.Conn]
	c := s.clients[id]
	if !known || c == nil || c.lockOwner == nil {
		return nil, errBadStateID
	}
	c.renewed = cs.now
	key := stateKey(kindLock, c.id, c.lockOwner, k)
	if ls := c.states[key]; ls != nil || !create {
		if ls == nil {
			return nil, errBadStateID
		}
		return ls, ok
	}
	if len(c.states) >= maxClientStates {
		return nil, cs.resource()
	}
	var open *state
	for _, st := range c.states {
		if st.kind == kindOpen && st.f.key == k {
			open = st
			break
		}
	}
	if open == nil {
		var st status
		if open, st = cs.implicitOpen(c.id, k); st != ok {
			return nil, st
		}
	}
	ls := &state{other: s.newOther(), kind: kindLock, c: c, f: open.f, key: key, open: open,
		owner: append([]byte(nil), c.lockOwner...)}
	s.states[ls.other] = ls
	c.states[key] = ls
	return ls, ok
}

// graceCheck applies the grace period to an OPEN or LOCK (s.mu held).
func (cs *compound) graceCheck(c *client, reclaim bool) status {
	s := cs.s
	switch {
	case reclaim && !s.inGrace(cs.now):
		return errNoGrace
	case reclaim && (!c.reclaimable || c.reclaimComplete):
		return errReclaimBad
	case !reclaim && s.inGrace(cs.now):
		return errGrace
	}
	return ok
}

// holdState records (durably) that c holds state, so that it may reclaim after a restart (s.mu held).
func (s *Server) holdState(c *client) {
	if !s.recorded[c.owner] {
		s.recorded[c.owner] = true
		s.storeRecordLocked()
	}
}

func (s *Server) fileFor(k fileKey) *file {
	f := s.files[k]
	if f == nil {
		f = &file{key: k, opens: map[*state]struct{}{}}
		s.files[k] = f
	}
	return f
}

// open serves OPEN: CLAIM_NULL (by name, creating if asked), CLAIM_FH, and CLAIM_PREVIOUS (reclaim
// after a restart). No delegation is ever granted.
func (cs *compound) open(a *nfsv4.Open4args) (nfsv4.NfsResop4, status) {
	s := cs.s
	access, deny := a.ShareAccess&^nfsv4.OPEN4_SHARE_ACCESS_WANT_DELEG_MASK, a.ShareDeny
	if access == 0 || access > 3 || deny > 3 {
		return nil, errInval
	}
	if st := cs.needFH(); st != ok {
		return nil, st
	}
	s.mu.Lock()
	c, st := cs.stateClient(a.Owner.Clientid)
	if st == ok {
		_, reclaim := a.Claim.(*nfsv4.OpenClaim4_CLAIM_PREVIOUS)
		st = cs.graceCheck(c, reclaim)
	}
	s.mu.Unlock()
	if st != ok {
		return nil, st
	}
	dirObj := cs.cur
	var fileObj *object
	var cinfo nfsv4.ChangeInfo4
	var attrset bitmap
	created := false
	switch claim := a.Claim.(type) {
	case *nfsv4.OpenClaim4_CLAIM_NULL:
		if st := checkName(claim.File); st != ok {
			return nil, st
		}
		if !dirObj.dir {
			return nil, errNotDir
		}
		fileObj, cinfo, attrset, created, st = cs.openByName(claim.File, a.Openhow, access)
	case *nfsv4.OpenClaim4_CLAIM_FH, *nfsv4.OpenClaim4_CLAIM_PREVIOUS:
		if _, isCreate := a.Openhow.(*nfsv4.Openflag4_OPEN4_CREATE); isCreate {
			return nil, errInval
		}
		fileObj = dirObj
	default:
		return nil, errNotSupp
	}
	if st != ok {
		return nil, st
	}
	if access&shareWrite != 0 && fileObj.caller.ReadOnly {
		return nil, errROFS
	}
	cs.cur = fileObj
	var fst unix.Statx_t
	if fileObj.dir && cs.minor == 0 {
		// libnfs 4.0 OPENs what it changes the attributes of, directories included, for a
		// stateid to SETATTR with: it gets one (READ and WRITE still refuse a directory, and
		// SETATTR is checked against the caller's own permissions).
		var err error
		if fst, err = cs.stat(fileObj); err != nil {
			return nil, errStatus(err)
		}
	} else {
		if fst, st = cs.regular(); st != ok {
			return nil, st
		}
		if !created {
			if st := cs.checkOpenAccess(fileObj, access); st != ok {
				return nil, st
			}
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	f := s.fileFor(keyOf(&fst))
	key := stateKey(kindOpen, c.id, a.Owner.Owner, f.key)
	mine := c.states[key]
	for o := range f.opens {
		if o == mine {
			continue
		}
		if o.deny&access != 0 || deny&o.access != 0 {
			return nil, errShareDenied
		}
	}
	if mine == nil && len(c.states) >= maxClientStates {
		return nil, cs.resource()
	}
	if mine == nil {
		mine = &state{other: s.newOther(), kind: kindOpen, c: c, f: f, owner: append([]byte(nil), a.Owner.Owner...), key: key}
		s.states[mine.other] = mine
		c.states[key] = mine
		f.opens[mine] = struct{}{}
	}
	mine.access |= access
	mine.deny |= deny
	mine.seq++
	s.holdState(c)
	if _, reclaim := a.Claim.(*nfsv4.OpenClaim4_CLAIM_PREVIOUS); !reclaim && cs.minor == 0 && !c.reclaimComplete {
		c.reclaimComplete = true // 4.0 has no RECLAIM_COMPLETE: the first new OPEN ends the client's reclaims
		s.endGraceIfDone(cs.now)
	}
	cs.curSID = mine
	return &nfsv4.NfsResop4_OP_OPEN{Opopen: &nfsv4.Open4res_NFS4_OK{Resok4: nfsv4.Open4resok{
		Stateid: mine.stateid(), Cinfo: cinfo, Rflags: resultLocktypePosix, Attrset: attrset,
		Delegation: &nfsv4.OpenDelegation4_OPEN_DELEGATE_NONE{}}}}, ok
}

// checkOpenAccess checks, as the caller, that the file may be opened for access.
func (cs *compound) checkOpenAccess(o *object, access uint32) status {
	flags := uint64(unix.O_RDONLY)
	switch access {
	case shareWrite:
		flags = unix.O_WRONLY
	case shareRead | shareWrite:
		flags = unix.O_RDWR
	}
	err := as(o, func() error {
		fd, err := fsview.OpenBeneath(o.view.FD, o.comps, flags|unix.O_NOFOLLOW|unix.O_NONBLOCK|unix.O_NOCTTY)
		if err != nil {
			return err
		}
		fsview.CloseFD(fd)
		return nil
	})
	return errStatus(err)
}

// verifierTimes turns an exclusive create's verifier into the times that hold it (as knfsd does).
func verifierTimes(v [8]byte) []unix.Timespec {
	t := unix.Timespec{Sec: int64(binary.BigEndian.Uint32(v[:4])), Nsec: int64(binary.BigEndian.Uint32(v[4:]) % 1e9)}
	return []unix.Timespec{t, t}
}

// openByName opens (and creates, as asked) the entry name of the current directory.
func (cs *compound) openByName(name string, how nfsv4.Openflag4, access uint32) (*object, nfsv4.ChangeInfo4, bitmap, bool, status) {
	dir := cs.cur
	comps := append(append([]string(nil), dir.comps...), name)
	create, isCreate := how.(*nfsv4.Openflag4_OPEN4_CREATE)
	if !isCreate {
		pfd, err := fsview.OpenBeneath(dir.view.FD, dir.comps, unix.O_PATH|unix.O_DIRECTORY)
		if err != nil {
			return nil, nfsv4.ChangeInfo4{}, nil, false, errStatus(err)
		}
		defer fsview.CloseFD(pfd)
		var st, pst unix.Statx_t
		err = as(dir, func() error {
			var err error
			if pst, err = fsview.StatFD(pfd); err != nil {
				return err
			}
			st, err = fsview.StatAt(pfd, name)
			return err
		})
		if err != nil {
			return nil, nfsv4.ChangeInfo4{}, nil, false, errStatus(err)
		}
		cs.s.fs.RecordHandle(st.Ino, pst.Ino, name, false)
		return cs.object(dir.view, dir.ap, comps, &st), changeInfo(&pst, &pst), nil, false, ok
	}
	var sa *setAttrs
	exclusive, guarded := false, false
	var verf [8]byte
	st := ok
	switch h := create.How.(type) {
	case *nfsv4.Createhow4_UNCHECKED4:
		sa, st = decodeSetAttrs(h.Createattrs.Attrmask, h.Createattrs.AttrVals)
	case *nfsv4.Createhow4_GUARDED4:
		sa, st = decodeSetAttrs(h.Createattrs.Attrmask, h.Createattrs.AttrVals)
		guarded = true
	case *nfsv4.Createhow4_EXCLUSIVE4:
		sa, exclusive, verf = &setAttrs{}, true, h.Createverf
	case *nfsv4.Createhow4_EXCLUSIVE4_1:
		sa, st = decodeSetAttrs(h.ChCreateboth.CvaAttrs.Attrmask, h.ChCreateboth.CvaAttrs.AttrVals)
		exclusive, verf = true, h.ChCreateboth.CvaVerf
		if st == ok && (sa.atime != nil || sa.mtime != nil) {
			st = errInval
		}
	default:
		st = errInval
	}
	if st != ok {
		return nil, nfsv4.ChangeInfo4{}, nil, false, st
	}
	var fst unix.Statx_t
	var attrset bitmap
	newFD := -1
	defer func() { fsview.CloseFD(newFD) }()
	op := &entryOp{}
	op.make = func(pfd int) error {
		mode := uint32(0o644)
		if sa.mode != nil {
			mode = *sa.mode
		}
		fd, err := unix.Openat(pfd, name, unix.O_CREAT|unix.O_EXCL|unix.O_RDONLY|unix.O_NOFOLLOW|unix.O_NONBLOCK|unix.O_CLOEXEC, mode&0o777)
		switch {
		case err == unix.EEXIST && (guarded || exclusive):
			if exclusive {
				ex, serr := fsview.StatAt(pfd, name)
				want := verifierTimes(verf)
				if serr == nil && ex.Mtime.Sec == want[1].Sec && int64(ex.Mtime.Nsec) == want[1].Nsec &&
					ex.Atime.Sec == want[0].Sec && int64(ex.Atime.Nsec) == want[0].Nsec {
					fst = ex // a retransmission of the create that made it
					return nil
				}
			}
			return unix.EEXIST
		case err == unix.EEXIST:
			ex, serr := fsview.StatAt(pfd, name)
			if serr != nil {
				return serr
			}
			if sa.size != nil && *sa.size == 0 && ex.Mode&unix.S_IFMT == unix.S_IFREG {
				// UNCHECKED4 with size 0 truncates an existing file (O_TRUNC), as the caller
				tfd, err := unix.Openat(pfd, name, unix.O_WRONLY|unix.O_NOFOLLOW|unix.O_NONBLOCK|unix.O_CLOEXEC, 0)
				if err != nil {
					return err
				}
				err = unix.Ftruncate(tfd, 0)
				if err == nil {
					err = unix.Fsync(tfd)
				}
				fsview.CloseFD(tfd)
				if err != nil {
					return err
				}
				attrset.set(aSize)
			}
			fst = ex
			return nil
		case err != nil:
			return err
		}
		newFD, op.created = fd, name
		return nil
	}
	op.finish = func(pfd int) error {
		pfdFile, err := unix.Openat2(pfd, name, &unix.OpenHow{Flags: unix.O_PATH | unix.O_NOFOLLOW | unix.O_CLOEXEC, Resolve: fsview.ResolveFlags})
		if err != nil {
			return err
		}
		defer fsview.CloseFD(pfdFile)
		if exclusive {
			if err := unix.UtimesNanoAt(unix.AT_FDCWD, "/proc/self/fd/"+strconv.Itoa(pfdFile), verifierTimes(verf), 0); err != nil {
				return err
			}
		}
		if attrset, err = applyAttrs(pfdFile, sa, false, true); err != nil {
			return err
		}
		if err := unix.Fsync(newFD); err != nil {
			return err
		}
		fst, err = fsview.StatFD(pfdFile)
		return err
	}
	ci, st := cs.dirOp(op)
	created := op.created != ""
	if st != ok {
		return nil, ci, nil, false, st
	}
	return cs.object(dir.view, dir.ap, comps, &fst), ci, attrset, created, ok
}

// openState resolves the stateid of an open (s.mu held).
func (cs *compound) openState(sid nfsv4.Stateid4) (*state, status) {
	st, stat := cs.findState(sid)
	if stat != ok {
		return nil, stat
	}
	if st == nil || st.kind != kindOpen {
		return nil, errBadStateID
	}
	return st, ok
}

func (cs *compound) openConfirm(a *nfsv4.OpenConfirm4args) (nfsv4.NfsResop4, status) {
	s := cs.s
	s.mu.Lock()
	defer s.mu.Unlock()
	st, stat := cs.openState(a.OpenStateid)
	if stat != ok {
		return nil, stat
	}
	st.seq++
	return &nfsv4.NfsResop4_OP_OPEN_CONFIRM{OpopenConfirm: &nfsv4.OpenConfirm4res_NFS4_OK{Resok4: nfsv4.OpenConfirm4resok{OpenStateid: st.stateid()}}}, ok
}

func (cs *compound) openDowngrade(a *nfsv4.OpenDowngrade4args) (nfsv4.NfsResop4, status) {
	s := cs.s
	s.mu.Lock()
	defer s.mu.Unlock()
	st, stat := cs.openState(a.OpenStateid)
	if stat != ok {
		return nil, stat
	}
	access := a.ShareAccess &^ nfsv4.OPEN4_SHARE_ACCESS_WANT_DELEG_MASK
	if access == 0 || access&^st.access != 0 || a.ShareDeny&^st.deny != 0 {
		return nil, errInval
	}
	st.access, st.deny = access, a.ShareDeny
	st.seq++
	return &nfsv4.NfsResop4_OP_OPEN_DOWNGRADE{OpopenDowngrade: &nfsv4.OpenDowngrade4res_NFS4_OK{Resok4: nfsv4.OpenDowngrade4resok{OpenStateid: st.stateid()}}}, ok
}

func (cs *compound) close(a *nfsv4.Close4args) (nfsv4.NfsResop4, status) {
	s := cs.s
	s.mu.Lock()
	defer s.mu.Unlock()
	st, stat := cs.openState(a.OpenStateid)
	if stat != ok {
		return nil, stat
	}
	var locks []*state
	for _, o := range st.c.states {
		if o.kind == kindLock && o.open == st {
			if o.f.holds(o) {
				return nil, errLocksHeld
			}
			locks = append(locks, o)
		}
	}
	for _, l := range locks {
		s.dropState(l)
	}
	s.dropState(st)
	if cs.curSID == st {
		cs.curSID = nil
	}
	sid := st.stateid()
	sid.Seqid++
	return &nfsv4.NfsResop4_OP_CLOSE{Opclose: &nfsv4.Close4res_NFS4_OK{OpenStateid: sid}}, ok
}

// lock serves LOCK: byte-range locks, shared (READ_LT) or exclusive (WRITE_LT), of a lock owner on
// the current file; a conflicting lock of another owner answers NFS4ERR_DENIED with that lock.
// Locks are advisory, as POSIX locks are: READ and WRITE are not refused because of them.
func (cs *compound) lock(a *nfsv4.Lock4args) (nfsv4.NfsResop4, status) {
	fst, end, st := cs.lockTarget(a.Offset, a.Length)
	if st != ok {
		return nil, st
	}
	write := a.Locktype == nfsv4.WRITE_LT || a.Locktype == nfsv4.WRITEW_LT
	s := cs.s
	s.mu.Lock()
	defer s.mu.Unlock()
	var ls *state
	switch l := a.Locker.(type) {
	case *nfsv4.Locker4_TRUE:
		open, stat := cs.findState(l.OpenOwner.OpenStateid)
		if stat == errBadStateID && cs.minor == 0 && s.issued(l.OpenOwner.OpenStateid) {
			// libnfs 4.0 CLOSEs an open it shares with other OPENs of the file (one open-owner
			// for all of them), then locks through it: the lock gets an open of its own.
			open, stat = cs.implicitOpen(l.OpenOwner.LockOwner.Clientid, keyOf(&fst))
		}
		if stat != ok {
			return nil, stat
		}
		if open == nil || open.kind != kindOpen || open.f.key != keyOf(&fst) {
			return nil, errBadStateID
		}
		if cs.minor == 0 && l.OpenOwner.LockOwner.Clientid != open.c.id {
			return nil, errInval
		}
		if stat := cs.graceCheck(open.c, a.Reclaim); stat != ok {
			return nil, stat
		}
		if cs.minor == 0 {
			open.c.lockOwner = append(open.c.lockOwner[:0:0], l.OpenOwner.LockOwner.Owner...)
			s.connClient[cs.call.Conn] = open.c.id
		}
		key := stateKey(kindLock, open.c.id, l.OpenOwner.LockOwner.Owner, open.f.key)
		ls = open.c.states[key]
		if ls == nil && len(open.c.states) >= maxClientStates {
			return nil, cs.resource()
		}
		if ls == nil {
			ls = &state{other: s.newOther(), kind: kindLock, c: open.c, f: open.f, key: key, open: open,
				owner: append([]byte(nil), l.OpenOwner.LockOwner.Owner...)}
			s.states[ls.other] = ls
			open.c.states[key] = ls
		}
	case *nfsv4.Locker4_FALSE:
		found, stat := cs.findState(l.LockOwner.LockStateid)
		if stat == ok && found == nil && cs.minor == 0 && isAnonymous(l.LockOwner.LockStateid) {
			found, stat = cs.lockOwnerState(keyOf(&fst), true)
		}
		if stat != ok {
			return nil, stat
		}
		if found == nil || found.kind != kindLock || found.f.key != keyOf(&fst) {
			return nil, errBadStateID
		}
		if stat := cs.graceCheck(found.c, a.Reclaim); stat != ok {
			return nil, stat
		}
		ls = found
	default:
		return nil, errInval
	}
	// 4.1 requires an open that allows the lock's kind of access. 4.0 does not check: libnfs
	// creates files with read access only and write-locks through that open.
	if cs.minor == 1 && (write && ls.open.access&shareWrite == 0 || !write && ls.open.access&shareRead == 0) {
		return nil, errOpenMode
	}
	f := ls.f
	if other, conflict := f.conflict(ownerKey(ls.c.id, ls.owner), write, a.Offset, end); conflict {
		return &nfsv4.NfsResop4_OP_LOCK{Oplock: &nfsv4.Lock4res_NFS4ERR_DENIED{Denied: other.denied()}}, errDenied
	}
	if len(f.locks) >= maxFileLocks {
		return nil, cs.resource()
	}
	f.add(ls, write, a.Offset, end)
	ls.seq++
	cs.curSID = ls
	return &nfsv4.NfsResop4_OP_LOCK{Oplock: &nfsv4.Lock4res_NFS4_OK{Resok4: nfsv4.Lock4resok{LockStateid: ls.stateid()}}}, ok
}

// lockTarget checks a byte-range operation: the current object is a regular file (its stat is
// returned) and the range is valid (its end is returned).
func (cs *compound) lockTarget(off, length uint64) (unix.Statx_t, uint64, status) {
	fst, st := cs.regular()
	if st != ok {
		return fst, 0, st
	}
	end, st := lockEnd(off, length)
	return fst, end, st
}

// implicitOpen returns the open that locks of a 4.0 client take when the open they name was
// closed (s.mu held).
func (cs *compound) implicitOpen(clientID uint64, k fileKey) (*state, status) {
	s := cs.s
	c, st := cs.stateClient(clientID)
	if st != ok {
		return nil, st
	}
	owner := []byte("\x00efsd: opens closed under libnfs")
	key := stateKey(kindOpen, c.id, owner, k)
	if open := c.states[key]; open != nil {
		return open, ok
	}
	if len(c.states) >= maxClientStates {
		return nil, cs.resource()
	}
	f := s.fileFor(k)
	open := &state{other: s.newOther(), seq: 1, kind: kindOpen, c: c, f: f, owner: owner, key: key,
		access: 0} // no access of its own: I/O through its locks is the caller's, checked as stateless I/O
	s.states[open.other] = open
	c.states[key] = open
	f.opens[open] = struct{}{}
	return open, ok
}

func (cs *compound) lockt(a *nfsv4.Lockt4args) (nfsv4.NfsResop4, status) {
	fst, end, st := cs.lockTarget(a.Offset, a.Length)
	if st != ok {
		return nil, st
	}
	s := cs.s
	s.mu.Lock()
	defer s.mu.Unlock()
	clientID := a.Owner.Clientid
	if cs.minor == 1 {
		clientID = cs.c.id
	} else if c, stat := cs.stateClient(clientID); stat != ok {
		return nil, stat
	} else {
		clientID = c.id
	}
	if s.inGrace(cs.now) {
		return nil, errGrace
	}
	f := s.files[keyOf(&fst)]
	if f == nil {
		return &nfsv4.NfsResop4_OP_LOCKT{Oplockt: &nfsv4.Lockt4res_NFS4_OK{}}, ok
	}
	write := a.Locktype == nfsv4.WRITE_LT || a.Locktype == nfsv4.WRITEW_LT
	if other, conflict := f.conflict(ownerKey(clientID, a.Owner.Owner), write, a.Offset, end); conflict {
		return &nfsv4.NfsResop4_OP_LOCKT{Oplockt: &nfsv4.Lockt4res_NFS4ERR_DENIED{Denied: other.denied()}}, errDenied
	}
	return &nfsv4.NfsResop4_OP_LOCKT{Oplockt: &nfsv4.Lockt4res_NFS4_OK{}}, ok
}

func (cs *compound) locku(a *nfsv4.Locku4args) (nfsv4.NfsResop4, status) {
	fst, end, st := cs.lockTarget(a.Offset, a.Length)
	if st != ok {
		return nil, st
	}
	s := cs.s
	s.mu.Lock()
	defer s.mu.Unlock()
	ls, stat := cs.findState(a.LockStateid)
	if stat == ok && ls == nil && cs.minor == 0 && isAnonymous(a.LockStateid) {
		ls, stat = cs.lockOwnerState(keyOf(&fst), false)
	}
	if stat != ok {
		return nil, stat
	}
	if ls == nil || ls.kind != kindLock || ls.f.key != keyOf(&fst) {
		return nil, errBadStateID
	}
	ls.f.cut(ls, a.Offset, end)
	ls.seq++
	return &nfsv4.NfsResop4_OP_LOCKU{Oplocku: &nfsv4.Locku4res_NFS4_OK{LockStateid: ls.stateid()}}, ok
}

func (cs *compound) releaseLockOwner(a *nfsv4.ReleaseLockowner4args) status {
	s := cs.s
	s.mu.Lock()
	defer s.mu.Unlock()
	c, stat := cs.stateClient(a.LockOwner.Clientid)
	if stat != ok {
		return stat
	}
	var drop []*state
	for _, st := range c.states {
		if st.kind == kindLock && string(st.owner) == string(a.LockOwner.Owner) {
			if st.f.holds(st) {
				return errLocksHeld
			}
			drop = append(drop, st)
		}
	}
	for _, st := range drop {
		s.dropState(st)
	}
	return ok
}

func (cs *compound) testStateid(ids []nfsv4.Stateid4) (nfsv4.NfsResop4, status) {
	s := cs.s
	s.mu.Lock()
	defer s.mu.Unlock()
	codes := make([]nfsv4.Nfsstat4, len(ids))
	for i, id := range ids {
		st, stat := cs.findState(id)
		if stat == ok && st == nil {
			stat = errBadStateID
		}
		codes[i] = stat
	}
	return &nfsv4.NfsResop4_OP_TEST_STATEID{OptestStateid: &nfsv4.TestStateid4res_NFS4_OK{TsrResok4: nfsv4.TestStateid4resok{TsrStatusCodes: codes}}}, ok
}

func (cs *compound) freeStateid(id nfsv4.Stateid4) status {
	s := cs.s
	s.mu.Lock()
	defer s.mu.Unlock()
	st, stat := cs.findState(id)
	if stat != ok {
		return stat
	}
	if st == nil {
		return errBadStateID
	}
	if st.kind == kindOpen || st.f.holds(st) {
		return errLocksHeld
	}
	s.dropState(st)
	return ok
}

// ioState checks the stateid of a READ, WRITE or SETATTR of size against the current file; it
// reports whether the open it names grants the access (the file may then be opened as the server:
// permission was checked at OPEN, and an open file stays usable, as locally).
func (cs *compound) ioState(sid nfsv4.Stateid4, fst *unix.Statx_t, access uint32) (bool, status) {
	s := cs.s
	s.mu.Lock()
	defer s.mu.Unlock()
	st, stat := cs.findState(sid)
	if stat == errBadStateID && cs.minor == 0 && s.issued(sid) {
		// libnfs 4.0 OPENs a file several times under one open-owner (the same stateid each time)
		// and CLOSEs each: I/O through a stateid this server issued and a CLOSE ended is served as
		// a stateless one (the caller's own permission decides).
		return false, ok
	}
	if stat != ok || st == nil {
		return false, stat
	}
	if st.f.key != keyOf(fst) {
		return false, errBadStateID
	}
	open := st
	if st.kind == kindLock {
		open = st.open
	}
	if open.access&access == 0 {
		if cs.minor == 1 {
			return false, errOpenMode
		}
		// 4.0 lets a write-only open read. libnfs 4.0 creates files with read access only and
		// then writes through that open: such a write is served as a stateless one (the caller's
		// own permission decides), unless another open denies writes.
		if access == shareWrite {
			for o := range st.f.opens {
				if o != open && o.deny&shareWrite != 0 {
					return false, errLocked
				}
			}
		}
		return false, ok
	}
	return true, ok
}

// issued reports whether this run of the server issued the stateid (s.mu held).
func (s *Server) issued(sid nfsv4.Stateid4) bool {
	n := binary.BigEndian.Uint64(sid.Other[4:])
	return binary.BigEndian.Uint32(sid.Other[:4]) == s.epoch && n > 0 && n <= s.counter
}

// openFile opens the current file for I/O: as the server when granted by an open, else as the caller.
func (cs *compound) openFile(flags uint64, granted bool) (int, error) {
	o := cs.cur
	var fd int
	open := func() error {
		var err error
		fd, err = fsview.OpenBeneath(o.view.FD, o.comps, flags|unix.O_NOFOLLOW|unix.O_NONBLOCK|unix.O_NOCTTY)
		return err
	}
	var err error
	if granted {
		err = open()
	} else {
		err = as(o, open)
	}
	if err != nil {
		return -1, err
	}
	if err := unix.SetNonblock(fd, false); err != nil {
		fsview.CloseFD(fd)
		return -1, err
	}
	return fd, nil
}

func (cs *compound) read(a *nfsv4.Read4args) (nfsv4.NfsResop4, status) {
	fst, st := cs.regular()
	if st != ok {
		return nil, st
	}
	granted, st := cs.ioState(a.Stateid, &fst, shareRead)
	if st != ok {
		return nil, st
	}
	fd, err := cs.openFile(unix.O_RDONLY, granted)
	if err != nil {
		return nil, errStatus(err)
	}
	defer fsview.CloseFD(fd)
	buf := make([]byte, min(a.Count, maxIO))
	n := 0
	for n < len(buf) {
		k, err := unix.Pread(fd, buf[n:], int64(a.Offset)+int64(n))
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return nil, errStatus(err)
		}
		if k == 0 {
			break
		}
		n += k
	}
	after, err := fsview.StatFD(fd)
	eof := err == nil && a.Offset+uint64(n) >= after.Size
	return &nfsv4.NfsResop4_OP_READ{Opread: &nfsv4.Read4res_NFS4_OK{Resok4: nfsv4.Read4resok{Eof: eof, Data: buf[:n]}}}, ok
}

func (cs *compound) write(a *nfsv4.Write4args) (nfsv4.NfsResop4, status) {
	fst, st := cs.regular()
	if st != ok {
		return nil, st
	}
	if cs.cur.caller.ReadOnly {
		return nil, errROFS
	}
	if len(a.Data) > maxIO {
		return nil, errInval
	}
	granted, st := cs.ioState(a.Stateid, &fst, shareWrite)
	if st != ok {
		return nil, st
	}
	fd, err := cs.openFile(unix.O_WRONLY, granted)
	if err != nil {
		return nil, errStatus(err)
	}
	defer fsview.CloseFD(fd)
	n := 0
	for n < len(a.Data) {
		k, err := unix.Pwrite(fd, a.Data[n:], int64(a.Offset)+int64(n))
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			cs.s.fs.Changed()
			return nil, errStatus(err)
		}
		n += k
	}
	committed := a.Stable
	switch a.Stable {
	case nfsv4.UNSTABLE4:
	case nfsv4.DATA_SYNC4:
		err = unix.Fdatasync(fd)
	default:
		committed = nfsv4.FILE_SYNC4
		err = unix.Fsync(fd)
	}
	cs.s.fs.Changed()
	if err != nil {
		return nil, errStatus(err)
	}
	return &nfsv4.NfsResop4_OP_WRITE{Opwrite: &nfsv4.Write4res_NFS4_OK{Resok4: nfsv4.Write4resok{
		Count: uint32(n), Committed: committed, Writeverf: cs.s.verf}}}, ok
}

func (cs *compound) commit() (nfsv4.NfsResop4, status) {
	if st := cs.needFH(); st != ok {
		return nil, st
	}
	if cs.cur.dir {
		return nil, errIsDir
	}
	o := cs.cur
	fd, err := fsview.OpenBeneath(o.view.FD, o.comps, unix.O_RDONLY|unix.O_NOFOLLOW|unix.O_NONBLOCK|unix.O_NOCTTY)
	if err != nil {
		return nil, errStatus(err)
	}
	defer fsview.CloseFD(fd)
	if err := unix.Fsync(fd); err != nil {
		return nil, errStatus(err)
	}
	return &nfsv4.NfsResop4_OP_COMMIT{Opcommit: &nfsv4.Commit4res_NFS4_OK{Resok4: nfsv4.Commit4resok{Writeverf: cs.s.verf}}}, ok
}

// setattr serves SETATTR, as the caller (the kernel checks ownership), except a size change through
// an open granting writes.
func (cs *compound) setattr(a *nfsv4.Setattr4args) (nfsv4.NfsResop4, status) {
	res := func(st status, set bitmap) (nfsv4.NfsResop4, status) {
		if set == nil {
			set = bitmap{}
		}
		return &nfsv4.NfsResop4_OP_SETATTR{Opsetattr: nfsv4.Setattr4res{Status: st, Attrsset: set}}, st
	}
	if st := cs.needFH(); st != ok {
		return res(st, nil)
	}
	sa, st := decodeSetAttrs(a.ObjAttributes.Attrmask, a.ObjAttributes.AttrVals)
	if st != ok {
		return res(st, nil)
	}
	o := cs.cur
	if o.caller.ReadOnly {
		return res(errROFS, nil)
	}
	granted := false
	if sa.size != nil {
		fst, st := cs.regular()
		if st != ok {
			return res(st, nil)
		}
		if granted, st = cs.ioState(a.Stateid, &fst, shareWrite); st != ok {
			return res(st, nil)
		}
	}
	var set bitmap
	err := func() error {
		fd, err := fsview.OpenBeneath(o.view.FD, o.comps, unix.O_PATH|unix.O_NOFOLLOW)
		if err != nil {
			return err
		}
		defer fsview.CloseFD(fd)
		if sa.size != nil && granted {
			only := &setAttrs{size: sa.size}
			if _, err := applyAttrs(fd, only, false, false); err != nil {
				return err
			}
			rest := *sa
			rest.size = nil
			sa = &rest
		}
		return as(o, func() error {
			var err error
			set, err = applyAttrs(fd, sa, o.dir, false)
			return err
		})
	}()
	if err == nil {
		err = fsview.SyncObject(o.view.FD, o.comps)
	}
	cs.s.fs.Changed()
	if err != nil {
		return res(errStatus(err), nil)
	}
	if granted {
		set.set(aSize)
	}
	return res(ok, set)
}
