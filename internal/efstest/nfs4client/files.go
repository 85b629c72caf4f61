package nfs4client

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/buildbarn/go-xdr/pkg/protocols/nfsv4"
)

// File helpers name objects by path from the root file handle
// (PUTROOTFH, then a LOOKUP per component) when they change a directory,
// and by file handle when they act on the object itself. Each is one
// COMPOUND (two for an OPEN the server wants confirmed, or truncated
// without creating); NFS errors come back as *StatusError.

// lookupOps are the operations that make the directory at path current.
func lookupOps(path string) []nfsv4.NfsArgop4 {
	ops := []nfsv4.NfsArgop4{&nfsv4.NfsArgop4_OP_PUTROOTFH{}}
	for _, c := range strings.Split(path, "/") {
		if c != "" {
			ops = append(ops, &nfsv4.NfsArgop4_OP_LOOKUP{Oplookup: nfsv4.Lookup4args{Objname: c}})
		}
	}
	return ops
}

// PutFH is the PUTFH of fh.
func PutFH(fh []byte) nfsv4.NfsArgop4 {
	return &nfsv4.NfsArgop4_OP_PUTFH{Opputfh: nfsv4.Putfh4args{Object: fh}}
}

// FH is the file handle of the GETFH result r.
func FH(r nfsv4.NfsResop4) ([]byte, error) {
	op, err := as[*nfsv4.NfsResop4_OP_GETFH](r)
	if err != nil {
		return nil, err
	}
	ok, err := as[*nfsv4.Getfh4res_NFS4_OK](op.Opgetfh)
	if err != nil {
		return nil, err
	}
	return ok.Resok4.Object, nil
}

// last is the last result, which a successful COMPOUND has.
func last(res []nfsv4.NfsResop4) nfsv4.NfsResop4 {
	if len(res) == 0 {
		return nil
	}
	return res[len(res)-1]
}

// RootFH is the root file handle (PUTROOTFH, GETFH).
func (s *Session) RootFH(ctx context.Context) ([]byte, error) {
	return s.Lookup(ctx, "")
}

// Lookup is the file handle of path, "/"-separated from the root.
func (s *Session) Lookup(ctx context.Context, path string) ([]byte, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	res, err := s.do(ctx, "lookup", append(lookupOps(path), &nfsv4.NfsArgop4_OP_GETFH{}))
	if err != nil {
		return nil, err
	}
	return FH(last(res))
}

// OpenOpts says how Open opens.
type OpenOpts struct {
	Create bool // create the file when missing (UNCHECKED4 unless Guarded or Exclusive)
	// Guarded creates with GUARDED4: NFS4ERR_EXIST if the name exists.
	Guarded bool
	// Exclusive creates with EXCLUSIVE4_1 (4.1; Mode set at creation) or
	// EXCLUSIVE4 (4.0; Mode set by a SETATTR after) and Verifier, random
	// when zero: a retry with the same verifier opens the file created.
	Exclusive bool
	Verifier  nfsv4.Verifier4
	Mode      uint32 // of a created file
	Access    uint32 // OPEN4_SHARE_ACCESS_*; BOTH when 0
	Deny      uint32 // OPEN4_SHARE_DENY_*
	// Truncate sets the size to 0: in createattrs for UNCHECKED4, else
	// by a SETATTR after the OPEN.
	Truncate bool
	// Reclaim reopens FH with CLAIM_PREVIOUS, after a server restart,
	// within its grace period; the path is not used.
	Reclaim bool
	FH      []byte
	Owner   string // the open-owner; the client's own when empty
}

// Open is an open file: the state OPEN returned.
type Open struct {
	FH         []byte
	Stateid    nfsv4.Stateid4
	Owner      string // open-owner
	LockOwner  string // lock-owner of Lock; change it before the first Lock to use another
	Rflags     uint32 // OPEN4_RESULT_*
	Delegation nfsv4.OpenDelegationType4
}

// openOwner is the client's default open-owner; lockOwner its default
// lock-owner.
func (s *Session) openOwner() string { return s.ownerID + "/open" }
func (s *Session) lockOwner() string { return s.ownerID + "/lock" }

// ownerSeqid is the seqid to send for open-owner owner: its counter in
// 4.0, 0 in 4.1, where seqids are not used.
func (s *Session) ownerSeqid(owner string) uint32 {
	if s.minor != 0 {
		return 0
	}
	return s.ownerSeq[owner]
}

// seqidUsed reports whether a 4.0 operation that carried an owner's
// seqid and returned st moved the seqid on: every status but those of
// RFC 7530 section 9.1.7, with which the server did not look at it.
func seqidUsed(st nfsv4.Nfsstat4) bool {
	switch st {
	case nfsv4.NFS4ERR_STALE_CLIENTID, nfsv4.NFS4ERR_STALE_STATEID, nfsv4.NFS4ERR_BAD_STATEID,
		nfsv4.NFS4ERR_BAD_SEQID, nfsv4.NFS4ERR_BADXDR, nfsv4.NFS4ERR_RESOURCE,
		nfsv4.NFS4ERR_NOFILEHANDLE, nfsv4.NFS4ERR_MOVED:
		return false
	}
	return true
}

// bumpOwner moves owner's 4.0 seqid on if the operation at index i of
// res was evaluated and used it.
func (s *Session) bumpOwner(owner string, res []nfsv4.NfsResop4, i int) {
	if s.minor == 0 && i < len(res) && seqidUsed(OpStatus(res[i])) {
		s.ownerSeq[owner]++
	}
}

// Open opens name in the directory dirPath (CLAIM_NULL), or reclaims
// opts.FH (CLAIM_PREVIOUS). In 4.0 it confirms the open when the server
// asks (OPEN4_RESULT_CONFIRM). When the OPEN succeeded but a step after
// it failed, the open comes back with the error, for the test to close.
func (s *Session) Open(ctx context.Context, dirPath, name string, opts OpenOpts) (*Open, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	ctx, cancel := withDeadline(ctx)
	defer cancel()
	owner := opts.Owner
	if owner == "" {
		owner = s.openOwner()
	}
	access := opts.Access
	if access == 0 {
		access = nfsv4.OPEN4_SHARE_ACCESS_BOTH
	}
	var ops []nfsv4.NfsArgop4
	var claim nfsv4.OpenClaim4
	if opts.Reclaim {
		if opts.FH == nil {
			return nil, errors.New("nfs4client: Open: Reclaim needs FH")
		}
		ops = []nfsv4.NfsArgop4{PutFH(opts.FH)}
		claim = &nfsv4.OpenClaim4_CLAIM_PREVIOUS{DelegateType: nfsv4.OPEN_DELEGATE_NONE}
	} else {
		ops = lookupOps(dirPath)
		claim = &nfsv4.OpenClaim4_CLAIM_NULL{File: name}
	}
	how, after, err := s.openHow(opts)
	if err != nil {
		return nil, err
	}
	openAt := len(ops)
	ops = append(ops, &nfsv4.NfsArgop4_OP_OPEN{Opopen: nfsv4.Open4args{
		Seqid:       s.ownerSeqid(owner),
		ShareAccess: access,
		ShareDeny:   opts.Deny,
		Owner:       nfsv4.StateOwner4{Clientid: s.clientID, Owner: []byte(owner)},
		Openhow:     how,
		Claim:       claim,
	}}, &nfsv4.NfsArgop4_OP_GETFH{})
	res, err := s.do(ctx, "open", ops)
	s.bumpOwner(owner, res, openAt)
	if err != nil {
		return nil, err
	}
	op, err := as[*nfsv4.NfsResop4_OP_OPEN](res[openAt])
	if err != nil {
		return nil, err
	}
	ok, err := as[*nfsv4.Open4res_NFS4_OK](op.Opopen)
	if err != nil {
		return nil, err
	}
	fh, err := FH(last(res))
	if err != nil {
		return nil, err
	}
	o := &Open{FH: fh, Stateid: ok.Resok4.Stateid, Owner: owner, LockOwner: s.lockOwner(), Rflags: ok.Resok4.Rflags}
	if ok.Resok4.Delegation != nil {
		o.Delegation = ok.Resok4.Delegation.GetDelegationType()
	}
	if o.Rflags&nfsv4.OPEN4_RESULT_CONFIRM != 0 {
		if s.minor != 0 {
			return o, fmt.Errorf("%w: OPEN4_RESULT_CONFIRM in NFSv4.%d", ErrMalformed, s.minor)
		}
		if err := s.openConfirm(ctx, o); err != nil {
			return o, err
		}
	}
	if after != nil {
		if err := s.setAttr(ctx, o.FH, o.Stateid, *after); err != nil {
			return o, err
		}
	}
	return o, nil
}

// openHow is OPEN's openflag4 for opts, and the attributes to set by a
// SETATTR after the OPEN when createattrs cannot carry them.
func (s *Session) openHow(opts OpenOpts) (nfsv4.Openflag4, *SetAttrs, error) {
	mode := opts.Mode
	zero := uint64(0)
	attrs := SetAttrs{Mode: &mode}
	var after *SetAttrs
	if opts.Truncate && (!opts.Create || opts.Guarded || opts.Exclusive) {
		after = &SetAttrs{Size: &zero}
	}
	if !opts.Create {
		return &nfsv4.Openflag4_default{Opentype: nfsv4.OPEN4_NOCREATE}, after, nil
	}
	if opts.Truncate && after == nil {
		attrs.Size = &zero
	}
	fattr, err := attrs.Encode()
	if err != nil {
		return nil, nil, err
	}
	var how nfsv4.Createhow4
	switch {
	case opts.Exclusive:
		verf := opts.Verifier
		if verf == (nfsv4.Verifier4{}) {
			if _, err := rand.Read(verf[:]); err != nil {
				return nil, nil, fmt.Errorf("nfs4client: verifier: %w", err)
			}
		}
		if s.minor == 0 {
			how = &nfsv4.Createhow4_EXCLUSIVE4{Createverf: verf}
			if opts.Mode != 0 {
				if after == nil {
					after = &SetAttrs{}
				}
				after.Mode = &mode
			}
		} else {
			how = &nfsv4.Createhow4_EXCLUSIVE4_1{ChCreateboth: nfsv4.Creatverfattr{CvaVerf: verf, CvaAttrs: fattr}}
		}
	case opts.Guarded:
		how = &nfsv4.Createhow4_GUARDED4{Createattrs: fattr}
	default:
		how = &nfsv4.Createhow4_UNCHECKED4{Createattrs: fattr}
	}
	return &nfsv4.Openflag4_OPEN4_CREATE{How: how}, after, nil
}

// openConfirm confirms a 4.0 open (OPEN_CONFIRM) and takes its stateid.
func (s *Session) openConfirm(ctx context.Context, o *Open) error {
	res, err := s.do(ctx, "open_confirm", []nfsv4.NfsArgop4{PutFH(o.FH), &nfsv4.NfsArgop4_OP_OPEN_CONFIRM{OpopenConfirm: nfsv4.OpenConfirm4args{
		OpenStateid: o.Stateid, Seqid: s.ownerSeqid(o.Owner),
	}}})
	s.bumpOwner(o.Owner, res, 1)
	if err != nil {
		return err
	}
	op, err := as[*nfsv4.NfsResop4_OP_OPEN_CONFIRM](res[1])
	if err != nil {
		return err
	}
	ok, err := as[*nfsv4.OpenConfirm4res_NFS4_OK](op.OpopenConfirm)
	if err != nil {
		return err
	}
	o.Stateid = ok.Resok4.OpenStateid
	return nil
}

// Close closes o (CLOSE) and forgets the lock state of its open-owner
// on the file.
func (s *Session) Close(ctx context.Context, o *Open) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	res, err := s.do(ctx, "close", []nfsv4.NfsArgop4{PutFH(o.FH), &nfsv4.NfsArgop4_OP_CLOSE{Opclose: nfsv4.Close4args{
		Seqid: s.ownerSeqid(o.Owner), OpenStateid: o.Stateid,
	}}})
	s.bumpOwner(o.Owner, res, 1)
	if err != nil {
		return err
	}
	op, err := as[*nfsv4.NfsResop4_OP_CLOSE](res[1])
	if err != nil {
		return err
	}
	ok, err := as[*nfsv4.Close4res_NFS4_OK](op.Opclose)
	if err != nil {
		return err
	}
	o.Stateid = ok.OpenStateid
	for k, l := range s.locks {
		if k.fh == string(o.FH) && l.openOwner == o.Owner {
			delete(s.locks, k)
		}
	}
	return nil
}

// Read reads up to count bytes of fh at off.
func (s *Session) Read(ctx context.Context, fh []byte, stateid nfsv4.Stateid4, off uint64, count uint32) (data []byte, eof bool, err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	res, err := s.do(ctx, "read", []nfsv4.NfsArgop4{PutFH(fh), &nfsv4.NfsArgop4_OP_READ{Opread: nfsv4.Read4args{Stateid: stateid, Offset: off, Count: count}}})
	if err != nil {
		return nil, false, err
	}
	op, err := as[*nfsv4.NfsResop4_OP_READ](res[1])
	if err != nil {
		return nil, false, err
	}
	ok, err := as[*nfsv4.Read4res_NFS4_OK](op.Opread)
	if err != nil {
		return nil, false, err
	}
	if len(ok.Resok4.Data) > int(count) {
		return nil, false, fmt.Errorf("%w: READ of %d bytes returned %d", ErrMalformed, count, len(ok.Resok4.Data))
	}
	return ok.Resok4.Data, ok.Resok4.Eof, nil
}

// Write writes data to fh at off; it returns how much the server wrote,
// how stably, and its write verifier.
func (s *Session) Write(ctx context.Context, fh []byte, stateid nfsv4.Stateid4, off uint64, data []byte, stable nfsv4.StableHow4) (count uint32, committed nfsv4.StableHow4, verf nfsv4.Verifier4, err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	res, err := s.do(ctx, "write", []nfsv4.NfsArgop4{PutFH(fh), &nfsv4.NfsArgop4_OP_WRITE{Opwrite: nfsv4.Write4args{Stateid: stateid, Offset: off, Stable: stable, Data: data}}})
	if err != nil {
		return 0, 0, verf, err
	}
	op, err := as[*nfsv4.NfsResop4_OP_WRITE](res[1])
	if err != nil {
		return 0, 0, verf, err
	}
	ok, err := as[*nfsv4.Write4res_NFS4_OK](op.Opwrite)
	if err != nil {
		return 0, 0, verf, err
	}
	r := ok.Resok4
	if int(r.Count) > len(data) {
		return 0, 0, verf, fmt.Errorf("%w: WRITE of %d bytes wrote %d", ErrMalformed, len(data), r.Count)
	}
	return r.Count, r.Committed, r.Writeverf, nil
}

// Commit commits count bytes of fh at off (0, 0: all) and returns the
// write verifier.
func (s *Session) Commit(ctx context.Context, fh []byte, off uint64, count uint32) (nfsv4.Verifier4, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	res, err := s.do(ctx, "commit", []nfsv4.NfsArgop4{PutFH(fh), &nfsv4.NfsArgop4_OP_COMMIT{Opcommit: nfsv4.Commit4args{Offset: off, Count: count}}})
	if err != nil {
		return nfsv4.Verifier4{}, err
	}
	op, err := as[*nfsv4.NfsResop4_OP_COMMIT](res[1])
	if err != nil {
		return nfsv4.Verifier4{}, err
	}
	ok, err := as[*nfsv4.Commit4res_NFS4_OK](op.Opcommit)
	if err != nil {
		return nfsv4.Verifier4{}, err
	}
	return ok.Resok4.Writeverf, nil
}

// Lock locks [off, off+length) of o's file for o.LockOwner (length
// NFS4_UINT64_MAX: to the end). The owner's first lock on the file
// carries o's open stateid (open_to_lock_owner4), later ones the lock
// stateid (exist_lock_owner4). A conflict returns the holder's lock and
// a *StatusError NFS4ERR_DENIED.
func (s *Session) Lock(ctx context.Context, o *Open, lockType nfsv4.NfsLockType4, off, length uint64, reclaim bool) (nfsv4.Stateid4, *nfsv4.Lock4denied, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	owner := o.LockOwner
	if owner == "" {
		owner = s.lockOwner()
	}
	key := lockKey{owner, string(o.FH)}
	st := s.locks[key]
	var locker nfsv4.Locker4
	if st == nil {
		locker = &nfsv4.Locker4_TRUE{OpenOwner: nfsv4.OpenToLockOwner4{
			OpenSeqid:   s.ownerSeqid(o.Owner),
			OpenStateid: o.Stateid,
			LockOwner:   nfsv4.StateOwner4{Clientid: s.clientID, Owner: []byte(owner)},
		}}
	} else {
		locker = &nfsv4.Locker4_FALSE{LockOwner: nfsv4.ExistLockOwner4{LockStateid: st.stateid, LockSeqid: st.seqid}}
	}
	res, err := s.do(ctx, "lock", []nfsv4.NfsArgop4{PutFH(o.FH), &nfsv4.NfsArgop4_OP_LOCK{Oplock: nfsv4.Lock4args{
		Locktype: lockType, Reclaim: reclaim, Offset: off, Length: length, Locker: locker,
	}}})
	if st == nil {
		s.bumpOwner(o.Owner, res, 1)
	} else if s.minor == 0 && len(res) > 1 && seqidUsed(OpStatus(res[1])) {
		st.seqid++
	}
	if len(res) < 2 {
		return nfsv4.Stateid4{}, nil, err
	}
	op, aerr := as[*nfsv4.NfsResop4_OP_LOCK](res[1])
	if aerr != nil {
		return nfsv4.Stateid4{}, nil, aerr
	}
	switch r := op.Oplock.(type) {
	case *nfsv4.Lock4res_NFS4_OK:
		if st == nil {
			st = &lockState{openOwner: o.Owner}
			if s.minor == 0 {
				st.seqid = 1 // the new lock-owner's lock_seqid was 0
			}
			s.locks[key] = st
		}
		st.stateid = r.Resok4.LockStateid
		return st.stateid, nil, err
	case *nfsv4.Lock4res_NFS4ERR_DENIED:
		return nfsv4.Stateid4{}, &r.Denied, err
	}
	return nfsv4.Stateid4{}, nil, err
}

// Unlock unlocks [off, off+length) of o's file for o.LockOwner (LOCKU).
func (s *Session) Unlock(ctx context.Context, o *Open, lockType nfsv4.NfsLockType4, off, length uint64) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	owner := o.LockOwner
	if owner == "" {
		owner = s.lockOwner()
	}
	st := s.locks[lockKey{owner, string(o.FH)}]
	if st == nil {
		return fmt.Errorf("nfs4client: Unlock: lock-owner %q has no lock on the file", owner)
	}
	res, err := s.do(ctx, "locku", []nfsv4.NfsArgop4{PutFH(o.FH), &nfsv4.NfsArgop4_OP_LOCKU{Oplocku: nfsv4.Locku4args{
		Locktype: lockType, Seqid: st.seqid, LockStateid: st.stateid, Offset: off, Length: length,
	}}})
	if s.minor == 0 && len(res) > 1 && seqidUsed(OpStatus(res[1])) {
		st.seqid++
	}
	if err != nil {
		return err
	}
	op, err := as[*nfsv4.NfsResop4_OP_LOCKU](res[1])
	if err != nil {
		return err
	}
	ok, err := as[*nfsv4.Locku4res_NFS4_OK](op.Oplocku)
	if err != nil {
		return err
	}
	st.stateid = ok.LockStateid
	return nil
}

// TestLock asks whether lock-owner owner (the client's own when empty)
// could lock [off, off+length) of fh (LOCKT). A conflict is the
// holder's lock, with a nil error.
func (s *Session) TestLock(ctx context.Context, fh []byte, owner string, lockType nfsv4.NfsLockType4, off, length uint64) (*nfsv4.Lock4denied, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if owner == "" {
		owner = s.lockOwner()
	}
	res, err := s.do(ctx, "lockt", []nfsv4.NfsArgop4{PutFH(fh), &nfsv4.NfsArgop4_OP_LOCKT{Oplockt: nfsv4.Lockt4args{
		Locktype: lockType, Offset: off, Length: length, Owner: nfsv4.StateOwner4{Clientid: s.clientID, Owner: []byte(owner)},
	}}})
	if len(res) > 1 {
		if op, ok := res[1].(*nfsv4.NfsResop4_OP_LOCKT); ok {
			if d, ok := op.Oplockt.(*nfsv4.Lockt4res_NFS4ERR_DENIED); ok {
				return &d.Denied, nil
			}
		}
	}
	return nil, err
}

// Lease reads the server's lease time (FATTR4_LEASE_TIME of the root).
func (s *Session) Lease(ctx context.Context) (time.Duration, error) {
	root, err := s.RootFH(ctx)
	if err != nil {
		return 0, err
	}
	a, err := s.GetAttr(ctx, root, nfsv4.FATTR4_LEASE_TIME)
	if err != nil {
		return 0, err
	}
	if !a.Has(nfsv4.FATTR4_LEASE_TIME) {
		return 0, fmt.Errorf("%w: no lease_time in GETATTR reply", ErrMalformed)
	}
	return time.Duration(a.LeaseTime) * time.Second, nil
}

// DefaultAttrs are the attributes GetAttr asks for when given none.
var DefaultAttrs = []uint32{
	nfsv4.FATTR4_TYPE, nfsv4.FATTR4_CHANGE, nfsv4.FATTR4_SIZE, nfsv4.FATTR4_FILEID, nfsv4.FATTR4_MODE,
	nfsv4.FATTR4_NUMLINKS, nfsv4.FATTR4_OWNER, nfsv4.FATTR4_OWNER_GROUP, nfsv4.FATTR4_TIME_MODIFY,
}

// GetAttr reads attrs of fh (DefaultAttrs when none). The server may
// leave out attributes it does not support, never add others.
func (s *Session) GetAttr(ctx context.Context, fh []byte, attrs ...uint32) (Attrs, error) {
	if len(attrs) == 0 {
		attrs = DefaultAttrs
	}
	req := Bitmap(attrs...)
	s.mu.Lock()
	defer s.mu.Unlock()
	res, err := s.do(ctx, "getattr", []nfsv4.NfsArgop4{PutFH(fh), &nfsv4.NfsArgop4_OP_GETATTR{Opgetattr: nfsv4.Getattr4args{AttrRequest: req}}})
	if err != nil {
		return Attrs{}, err
	}
	op, err := as[*nfsv4.NfsResop4_OP_GETATTR](res[1])
	if err != nil {
		return Attrs{}, err
	}
	ok, err := as[*nfsv4.Getattr4res_NFS4_OK](op.Opgetattr)
	if err != nil {
		return Attrs{}, err
	}
	return decodeRequested(ok.Resok4.ObjAttributes, req)
}

// decodeRequested decodes f, which must hold only attributes of req.
func decodeRequested(f nfsv4.Fattr4, req []uint32) (Attrs, error) {
	for _, bit := range bitsOf(f.Attrmask) {
		if !Has(req, bit) {
			return Attrs{}, fmt.Errorf("%w: attribute %d sent but not asked for", ErrMalformed, bit)
		}
	}
	return DecodeAttrs(f)
}

// SetAttr sets attributes of fh (SETATTR); stateid is an open's or lock's
// for a size change, else the zero (anonymous) stateid will do.
func (s *Session) SetAttr(ctx context.Context, fh []byte, stateid nfsv4.Stateid4, attrs SetAttrs) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.setAttr(ctx, fh, stateid, attrs)
}

func (s *Session) setAttr(ctx context.Context, fh []byte, stateid nfsv4.Stateid4, attrs SetAttrs) error {
	f, err := attrs.Encode()
	if err != nil {
		return err
	}
	_, err = s.do(ctx, "setattr", []nfsv4.NfsArgop4{PutFH(fh), &nfsv4.NfsArgop4_OP_SETATTR{Opsetattr: nfsv4.Setattr4args{Stateid: stateid, ObjAttributes: f}}})
	return err
}

// create makes name in dirPath (CREATE) and returns its file handle.
func (s *Session) create(ctx context.Context, tag, dirPath, name string, typ nfsv4.Createtype4, attrs SetAttrs) ([]byte, error) {
	f, err := attrs.Encode()
	if err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	res, err := s.do(ctx, tag, append(lookupOps(dirPath),
		&nfsv4.NfsArgop4_OP_CREATE{Opcreate: nfsv4.Create4args{Objtype: typ, Objname: name, Createattrs: f}},
		&nfsv4.NfsArgop4_OP_GETFH{}))
	if err != nil {
		return nil, err
	}
	return FH(last(res))
}

// Mkdir makes the directory name in dirPath.
func (s *Session) Mkdir(ctx context.Context, dirPath, name string, mode uint32) ([]byte, error) {
	return s.create(ctx, "mkdir", dirPath, name, &nfsv4.Createtype4_NF4DIR{}, SetAttrs{Mode: &mode})
}

// Symlink makes name in dirPath a symbolic link to target.
func (s *Session) Symlink(ctx context.Context, dirPath, name, target string) ([]byte, error) {
	return s.create(ctx, "symlink", dirPath, name, &nfsv4.Createtype4_NF4LNK{Linkdata: []byte(target)}, SetAttrs{})
}

// Readlink is the target of the symbolic link fh.
func (s *Session) Readlink(ctx context.Context, fh []byte) (string, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	res, err := s.do(ctx, "readlink", []nfsv4.NfsArgop4{PutFH(fh), &nfsv4.NfsArgop4_OP_READLINK{}})
	if err != nil {
		return "", err
	}
	op, err := as[*nfsv4.NfsResop4_OP_READLINK](res[1])
	if err != nil {
		return "", err
	}
	ok, err := as[*nfsv4.Readlink4res_NFS4_OK](op.Opreadlink)
	if err != nil {
		return "", err
	}
	return string(ok.Resok4.Link), nil
}

// Remove removes name from dirPath (REMOVE): a file, a link or an empty
// directory.
func (s *Session) Remove(ctx context.Context, dirPath, name string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	_, err := s.do(ctx, "remove", append(lookupOps(dirPath), &nfsv4.NfsArgop4_OP_REMOVE{Opremove: nfsv4.Remove4args{Target: name}}))
	return err
}

// Rename renames fromDir/fromName to toDir/toName (SAVEFH, RENAME).
func (s *Session) Rename(ctx context.Context, fromDir, fromName, toDir, toName string) error {
	ops := append(lookupOps(fromDir), &nfsv4.NfsArgop4_OP_SAVEFH{})
	ops = append(ops, lookupOps(toDir)...)
	ops = append(ops, &nfsv4.NfsArgop4_OP_RENAME{Oprename: nfsv4.Rename4args{Oldname: fromName, Newname: toName}})
	s.mu.Lock()
	defer s.mu.Unlock()
	_, err := s.do(ctx, "rename", ops)
	return err
}

// DirEntry is one entry READDIR returned.
type DirEntry struct {
	Name   string
	Cookie uint64
	Attrs  Attrs
}

// READDIR's dircount and maxcount. Variables so that tests can make
// pages small and listings take several calls.
var (
	readDirCount uint32 = 8 << 10
	readDirMax   uint32 = 32 << 10
)

// maxReadDirCalls bounds a listing, so that a server whose cookies go
// round in circles fails the test instead of hanging it.
const maxReadDirCalls = 100000

// ReadDir lists the directory fh with attrs of each entry (type and
// fileid when none), following cookies over as many READDIRs as it
// takes. "." and ".." are not NFSv4 entries: a server sending them is
// an error.
func (s *Session) ReadDir(ctx context.Context, fh []byte, attrs ...uint32) ([]DirEntry, error) {
	if len(attrs) == 0 {
		attrs = []uint32{nfsv4.FATTR4_TYPE, nfsv4.FATTR4_FILEID}
	}
	req := Bitmap(attrs...)
	ctx, cancel := withDeadline(ctx)
	defer cancel()
	var out []DirEntry
	var cookie uint64
	var verf nfsv4.Verifier4
	for range maxReadDirCalls {
		s.mu.Lock()
		res, err := s.do(ctx, "readdir", []nfsv4.NfsArgop4{PutFH(fh), &nfsv4.NfsArgop4_OP_READDIR{Opreaddir: nfsv4.Readdir4args{
			Cookie: cookie, Cookieverf: verf, Dircount: readDirCount, Maxcount: readDirMax, AttrRequest: req,
		}}})
		s.mu.Unlock()
		if err != nil {
			return out, err
		}
		op, err := as[*nfsv4.NfsResop4_OP_READDIR](res[1])
		if err != nil {
			return out, err
		}
		ok, err := as[*nfsv4.Readdir4res_NFS4_OK](op.Opreaddir)
		if err != nil {
			return out, err
		}
		n := 0
		for e := ok.Resok4.Reply.Entries; e != nil; e = e.Nextentry {
			if e.Name == "." || e.Name == ".." || e.Name == "" {
				return out, fmt.Errorf("%w: READDIR entry %q", ErrMalformed, e.Name)
			}
			a, err := decodeRequested(e.Attrs, req)
			if err != nil {
				return out, fmt.Errorf("READDIR entry %q: %w", e.Name, err)
			}
			out = append(out, DirEntry{Name: e.Name, Cookie: e.Cookie, Attrs: a})
			cookie = e.Cookie
			n++
		}
		if ok.Resok4.Reply.Eof {
			return out, nil
		}
		if n == 0 {
			return out, fmt.Errorf("%w: READDIR returned no entry and no eof", ErrMalformed)
		}
		verf = ok.Resok4.Cookieverf
	}
	return out, fmt.Errorf("nfs4client: READDIR: no eof after %d calls", maxReadDirCalls)
}
