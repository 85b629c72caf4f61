package nfs4

import (
	"encoding/binary"
	"math"
	"strconv"

	"golang.org/x/sys/unix"
)

// Attribute numbers (RFC 8881 section 5).
const (
	aSupportedAttrs    = 0
	aType              = 1
	aFHExpireType      = 2
	aChange            = 3
	aSize              = 4
	aLinkSupport       = 5
	aSymlinkSupport    = 6
	aNamedAttr         = 7
	aFSID              = 8
	aUniqueHandles     = 9
	aLeaseTime         = 10
	aRdattrError       = 11
	aACLSupport        = 13
	aCanSetTime        = 15
	aCaseInsensitive   = 16
	aCasePreserving    = 17
	aChownRestricted   = 18
	aFilehandle        = 19
	aFileid            = 20
	aFilesAvail        = 21
	aFilesFree         = 22
	aFilesTotal        = 23
	aHomogeneous       = 26
	aMaxFileSize       = 27
	aMaxLink           = 28
	aMaxName           = 29
	aMaxRead           = 30
	aMaxWrite          = 31
	aMode              = 33
	aNoTrunc           = 34
	aNumLinks          = 35
	aOwner             = 36
	aOwnerGroup        = 37
	aRawDev            = 41
	aSpaceAvail        = 42
	aSpaceFree         = 43
	aSpaceTotal        = 44
	aSpaceUsed         = 45
	aTimeAccess        = 47
	aTimeAccessSet     = 48
	aTimeDelta         = 51
	aTimeMetadata      = 52
	aTimeModify        = 53
	aTimeModifySet     = 54
	aMountedOnFileid   = 55
	aSuppattrExclcreat = 75
)

// bitmap is an attribute bitmap4.
type bitmap []uint32

func (b bitmap) has(n int) bool { return n/32 < len(b) && b[n/32]&(1<<(n%32)) != 0 }

func (b *bitmap) set(n int) {
	for len(*b) <= n/32 {
		*b = append(*b, 0)
	}
	(*b)[n/32] |= 1 << (n % 32)
}

func mkBitmap(attrs ...int) bitmap {
	var b bitmap
	for _, a := range attrs {
		b.set(a)
	}
	return b
}

// supported is what GETATTR answers; settable what SETATTR and OPEN/CREATE apply.
var (
	supported = mkBitmap(aSupportedAttrs, aType, aFHExpireType, aChange, aSize, aLinkSupport, aSymlinkSupport,
		aNamedAttr, aFSID, aUniqueHandles, aLeaseTime, aRdattrError, aACLSupport, aCanSetTime, aCaseInsensitive,
		aCasePreserving, aChownRestricted, aFilehandle, aFileid, aFilesAvail, aFilesFree, aFilesTotal, aHomogeneous,
		aMaxFileSize, aMaxLink, aMaxName, aMaxRead, aMaxWrite, aMode, aNoTrunc, aNumLinks, aOwner, aOwnerGroup,
		aRawDev, aSpaceAvail, aSpaceFree, aSpaceTotal, aSpaceUsed, aTimeAccess, aTimeAccessSet, aTimeDelta,
		aTimeMetadata, aTimeModify, aTimeModifySet, aMountedOnFileid, aSuppattrExclcreat)
	settable = mkBitmap(aSize, aMode, aOwner, aOwnerGroup, aTimeAccessSet, aTimeModifySet)
	// exclcreat: what an EXCLUSIVE4_1 create may carry (the times hold the verifier)
	exclcreat = mkBitmap(aSize, aMode, aOwner, aOwnerGroup)
)

// xdrw appends XDR.
type xdrw struct{ b []byte }

func (w *xdrw) u32(v uint32) { w.b = binary.BigEndian.AppendUint32(w.b, v) }
func (w *xdrw) u64(v uint64) { w.b = binary.BigEndian.AppendUint64(w.b, v) }
func (w *xdrw) bool(v bool) {
	if v {
		w.u32(1)
	} else {
		w.u32(0)
	}
}
func (w *xdrw) opaque(p []byte) {
	w.u32(uint32(len(p)))
	w.b = append(w.b, p...)
	for len(w.b)%4 != 0 {
		w.b = append(w.b, 0)
	}
}
func (w *xdrw) bitmap(b bitmap) {
	w.u32(uint32(len(b)))
	for _, v := range b {
		w.u32(v)
	}
}
func (w *xdrw) time(sec int64, nsec uint32) {
	w.u64(uint64(sec))
	w.u32(nsec)
}

// xdrr reads XDR from a bounded slice; any overrun marks it bad.
type xdrr struct {
	b   []byte
	bad bool
}

func (r *xdrr) u32() uint32 {
	if len(r.b) < 4 {
		r.bad, r.b = true, nil
		return 0
	}
	v := binary.BigEndian.Uint32(r.b)
	r.b = r.b[4:]
	return v
}
func (r *xdrr) u64() uint64 { return uint64(r.u32())<<32 | uint64(r.u32()) }
func (r *xdrr) opaque(max int) []byte {
	n := int(r.u32())
	p := (n + 3) &^ 3
	if r.bad || n > max || p > len(r.b) {
		r.bad, r.b = true, nil
		return nil
	}
	v := r.b[:n]
	r.b = r.b[p:]
	return v
}

// fileAttrs is what GETATTR encodes for one object.
type fileAttrs struct {
	st      *unix.Statx_t
	fsid    uint64
	fh      []byte // the object's handle (aFilehandle)
	sf      *unix.Statfs_t
	lease   uint32
	rdErr   uint32 // rdattr_error (READDIR)
	mounted uint64 // mounted_on_fileid
}

// ftype is the nfs_ftype4 of a st_mode.
func ftype(mode uint16) uint32 {
	switch uint32(mode) & unix.S_IFMT {
	case unix.S_IFREG:
		return 1
	case unix.S_IFDIR:
		return 2
	case unix.S_IFBLK:
		return 3
	case unix.S_IFCHR:
		return 4
	case unix.S_IFLNK:
		return 5
	case unix.S_IFSOCK:
		return 6
	case unix.S_IFIFO:
		return 7
	}
	return 1
}

// change is the change attribute: the ctime in ns, which every modification moves (Linux's
// i_version is not visible to user space).
func change(st *unix.Statx_t) uint64 {
	return uint64(st.Ctime.Sec)*1e9 + uint64(st.Ctime.Nsec)
}

// encodeAttrs encodes the requested attributes it can (those of supported) and returns the mask of
// those encoded.
func encodeAttrs(req bitmap, a *fileAttrs) (bitmap, []byte) {
	var mask bitmap
	w := &xdrw{}
	st := a.st
	for n := 0; n < 32*len(req); n++ {
		if !req.has(n) || !supported.has(n) {
			continue
		}
		if a.sf == nil && n >= aFilesAvail && n <= aFilesTotal || a.sf == nil && n >= aSpaceAvail && n <= aSpaceTotal {
			continue
		}
		if n == aFilehandle && a.fh == nil {
			continue
		}
		mask.set(n)
		switch n {
		case aSupportedAttrs:
			w.bitmap(supported)
		case aType:
			w.u32(ftype(st.Mode))
		case aFHExpireType:
			w.u32(0) // FH4_PERSISTENT
		case aChange:
			w.u64(change(st))
		case aSize:
			w.u64(st.Size)
		case aLinkSupport:
			w.bool(true)
		case aSymlinkSupport:
			w.bool(true)
		case aNamedAttr:
			w.bool(false)
		case aFSID:
			w.u64(a.fsid)
			w.u64(0)
		case aUniqueHandles:
			w.bool(true)
		case aLeaseTime:
			w.u32(a.lease)
		case aRdattrError:
			w.u32(a.rdErr)
		case aACLSupport:
			w.u32(0)
		case aCanSetTime, aCasePreserving, aChownRestricted, aHomogeneous, aNoTrunc:
			w.bool(true)
		case aCaseInsensitive:
			w.bool(false)
		case aFilehandle:
			w.opaque(a.fh)
		case aFileid:
			w.u64(st.Ino)
		case aFilesAvail:
			w.u64(a.sf.Ffree)
		case aFilesFree:
			w.u64(a.sf.Ffree)
		case aFilesTotal:
			w.u64(a.sf.Files)
		case aMaxFileSize:
			w.u64(math.MaxInt64)
		case aMaxLink:
			w.u32(65000)
		case aMaxName:
			w.u32(255)
		case aMaxRead, aMaxWrite:
			w.u64(maxIO)
		case aMode:
			w.u32(uint32(st.Mode) & 07777)
		case aNumLinks:
			w.u32(st.Nlink)
		case aOwner:
			w.opaque([]byte(strconv.FormatUint(uint64(st.Uid), 10)))
		case aOwnerGroup:
			w.opaque([]byte(strconv.FormatUint(uint64(st.Gid), 10)))
		case aRawDev:
			w.u32(st.Rdev_major)
			w.u32(st.Rdev_minor)
		case aSpaceAvail:
			w.u64(a.sf.Bavail * uint64(a.sf.Bsize))
		case aSpaceFree:
			w.u64(a.sf.Bfree * uint64(a.sf.Bsize))
		case aSpaceTotal:
			w.u64(a.sf.Blocks * uint64(a.sf.Bsize))
		case aSpaceUsed:
			w.u64(st.Blocks * 512)
		case aTimeAccess:
			w.time(st.Atime.Sec, st.Atime.Nsec)
		case aTimeDelta:
			w.time(0, 1)
		case aTimeMetadata:
			w.time(st.Ctime.Sec, st.Ctime.Nsec)
		case aTimeModify:
			w.time(st.Mtime.Sec, st.Mtime.Nsec)
		case aMountedOnFileid:
			if a.mounted != 0 {
				w.u64(a.mounted)
			} else {
				w.u64(st.Ino)
			}
		case aSuppattrExclcreat:
			w.bitmap(exclcreat)
		default:
			// write-only attributes (time_*_set) are not returned
			mask[n/32] &^= 1 << (n % 32)
		}
	}
	return mask, w.b
}

// setAttrs is what a client asks SETATTR, OPEN or CREATE to apply.
type setAttrs struct {
	mask         bitmap // the attributes given
	size         *uint64
	mode         *uint32
	uid, gid     *uint32
	atime, mtime *unix.Timespec // UTIME_NOW for SET_TO_SERVER_TIME4
}

// decodeSetAttrs decodes a fattr4 a client sends. It fails with NFS4ERR_ATTRNOTSUPP for attributes
// that cannot be set, NFS4ERR_BADOWNER for owners that are not numeric, NFS4ERR_BADXDR for bytes
// that do not decode.
func decodeSetAttrs(mask []uint32, vals []byte) (*setAttrs, status) {
	sa := &setAttrs{mask: bitmap(mask)}
	r := &xdrr{b: vals}
	for n := 0; n < 32*len(mask); n++ {
		if !sa.mask.has(n) {
			continue
		}
		if !settable.has(n) {
			return nil, errAttrNotSupp
		}
		switch n {
		case aSize:
			v := r.u64()
			sa.size = &v
		case aMode:
			v := r.u32() & 07777
			sa.mode = &v
		case aOwner, aOwnerGroup:
			s := r.opaque(1024)
			if r.bad {
				return nil, errBadXDR
			}
			id, err := strconv.ParseUint(string(s), 10, 32)
			if err != nil {
				return nil, errBadOwner
			}
			v := uint32(id)
			if n == aOwner {
				sa.uid = &v
			} else {
				sa.gid = &v
			}
		case aTimeAccessSet, aTimeModifySet:
			ts := &unix.Timespec{Nsec: unix.UTIME_NOW}
			if r.u32() == 1 { // SET_TO_CLIENT_TIME4
				sec, nsec := int64(r.u64()), r.u32()
				if nsec >= 1e9 {
					return nil, errInval
				}
				ts = &unix.Timespec{Sec: sec, Nsec: int64(nsec)}
			}
			if n == aTimeAccessSet {
				sa.atime = ts
			} else {
				sa.mtime = ts
			}
		}
		if r.bad {
			return nil, errBadXDR
		}
	}
	if r.bad || len(r.b) != 0 {
		return nil, errBadXDR
	}
	return sa, ok
}
