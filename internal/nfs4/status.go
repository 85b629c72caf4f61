package nfs4

import (
	"errors"

	"github.com/buildbarn/go-xdr/pkg/protocols/nfsv4"
	"golang.org/x/sys/unix"

	"github.com/efsd/efsd/internal/fsview"
)

type status = nfsv4.Nfsstat4

const (
	ok                   = nfsv4.NFS4_OK
	errPerm              = nfsv4.NFS4ERR_PERM
	errNoEnt             = nfsv4.NFS4ERR_NOENT
	errIO                = nfsv4.NFS4ERR_IO
	errAccess            = nfsv4.NFS4ERR_ACCESS
	errExist             = nfsv4.NFS4ERR_EXIST
	errXDev              = nfsv4.NFS4ERR_XDEV
	errNotDir            = nfsv4.NFS4ERR_NOTDIR
	errIsDir             = nfsv4.NFS4ERR_ISDIR
	errInval             = nfsv4.NFS4ERR_INVAL
	errFBig              = nfsv4.NFS4ERR_FBIG
	errNoSpc             = nfsv4.NFS4ERR_NOSPC
	errROFS              = nfsv4.NFS4ERR_ROFS
	errMLink             = nfsv4.NFS4ERR_MLINK
	errNameTooLong       = nfsv4.NFS4ERR_NAMETOOLONG
	errNotEmpty          = nfsv4.NFS4ERR_NOTEMPTY
	errDQuot             = nfsv4.NFS4ERR_DQUOT
	errStale             = nfsv4.NFS4ERR_STALE
	errBadHandle         = nfsv4.NFS4ERR_BADHANDLE
	errNotSupp           = nfsv4.NFS4ERR_NOTSUPP
	errServerFault       = nfsv4.NFS4ERR_SERVERFAULT
	errBadType           = nfsv4.NFS4ERR_BADTYPE
	errDenied            = nfsv4.NFS4ERR_DENIED
	errExpired           = nfsv4.NFS4ERR_EXPIRED
	errLocked            = nfsv4.NFS4ERR_LOCKED
	errGrace             = nfsv4.NFS4ERR_GRACE
	errShareDenied       = nfsv4.NFS4ERR_SHARE_DENIED
	errWrongSec          = nfsv4.NFS4ERR_WRONGSEC
	errClidInUse         = nfsv4.NFS4ERR_CLID_INUSE
	errNoFileHandle      = nfsv4.NFS4ERR_NOFILEHANDLE
	errMinorVersMismatch = nfsv4.NFS4ERR_MINOR_VERS_MISMATCH
	errStaleClientID     = nfsv4.NFS4ERR_STALE_CLIENTID
	errStaleStateID      = nfsv4.NFS4ERR_STALE_STATEID
	errOldStateID        = nfsv4.NFS4ERR_OLD_STATEID
	errBadStateID        = nfsv4.NFS4ERR_BAD_STATEID
	errBadSeqID          = nfsv4.NFS4ERR_BAD_SEQID
	errNotSame           = nfsv4.NFS4ERR_NOT_SAME
	errLockRange         = nfsv4.NFS4ERR_LOCK_RANGE
	errSymlink           = nfsv4.NFS4ERR_SYMLINK
	errRestoreFH         = nfsv4.NFS4ERR_RESTOREFH
	errAttrNotSupp       = nfsv4.NFS4ERR_ATTRNOTSUPP
	errNoGrace           = nfsv4.NFS4ERR_NO_GRACE
	errReclaimBad        = nfsv4.NFS4ERR_RECLAIM_BAD
	errBadXDR            = nfsv4.NFS4ERR_BADXDR
	errLocksHeld         = nfsv4.NFS4ERR_LOCKS_HELD
	errOpenMode          = nfsv4.NFS4ERR_OPENMODE
	errBadOwner          = nfsv4.NFS4ERR_BADOWNER
	errBadName           = nfsv4.NFS4ERR_BADNAME
	errBadRange          = nfsv4.NFS4ERR_BAD_RANGE
	errOpIllegal         = nfsv4.NFS4ERR_OP_ILLEGAL
	errBadSession        = nfsv4.NFS4ERR_BADSESSION
	errBadSlot           = nfsv4.NFS4ERR_BADSLOT
	errSeqMisordered     = nfsv4.NFS4ERR_SEQ_MISORDERED
	errSequencePos       = nfsv4.NFS4ERR_SEQUENCE_POS
	errRetryUncached     = nfsv4.NFS4ERR_RETRY_UNCACHED_REP
	errTooManyOps        = nfsv4.NFS4ERR_TOO_MANY_OPS
	errOpNotInSession    = nfsv4.NFS4ERR_OP_NOT_IN_SESSION
	errClientIDBusy      = nfsv4.NFS4ERR_CLIENTID_BUSY
	errNotOnlyOp         = nfsv4.NFS4ERR_NOT_ONLY_OP
	errRepTooBig         = nfsv4.NFS4ERR_REP_TOO_BIG
	errReqTooBig         = nfsv4.NFS4ERR_REQ_TOO_BIG
	errCompleteAlready   = nfsv4.NFS4ERR_COMPLETE_ALREADY
	errDeadSession       = nfsv4.NFS4ERR_DEADSESSION
	errWrongType         = nfsv4.NFS4ERR_WRONG_TYPE
)

// errStatus maps an error of a file system operation to its nfsstat4, as knfsd does.
func errStatus(err error) status {
	if err == nil {
		return ok
	}
	if errors.Is(err, fsview.ErrStale) || errors.Is(err, fsview.ErrNoAccessPoint) {
		return errStale
	}
	if errors.Is(err, fsview.ErrBadHandle) || errors.Is(err, fsview.ErrForgedHandle) {
		return errBadHandle
	}
	var errno unix.Errno
	if !errors.As(err, &errno) {
		return errServerFault
	}
	switch errno {
	case unix.EPERM:
		return errPerm
	case unix.ENOENT:
		return errNoEnt
	case unix.EIO:
		return errIO
	case unix.ENXIO:
		return nfsv4.NFS4ERR_NXIO
	case unix.EACCES:
		return errAccess
	case unix.EEXIST:
		return errExist
	case unix.EXDEV:
		return errXDev
	case unix.ENOTDIR:
		return errNotDir
	case unix.EISDIR:
		return errIsDir
	case unix.EINVAL:
		return errInval
	case unix.EFBIG:
		return errFBig
	case unix.ENOSPC:
		return errNoSpc
	case unix.EROFS:
		return errROFS
	case unix.EMLINK:
		return errMLink
	case unix.ENAMETOOLONG:
		return errNameTooLong
	case unix.ENOTEMPTY:
		return errNotEmpty
	case unix.EDQUOT:
		return errDQuot
	case unix.ESTALE:
		return errStale
	case unix.ELOOP:
		return errSymlink
	case unix.EOPNOTSUPP:
		return errNotSupp
	case unix.EBUSY:
		return nfsv4.NFS4ERR_FILE_OPEN
	}
	return errIO
}
