package nfs4client

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"math/bits"

	"github.com/buildbarn/go-xdr/pkg/protocols/nfsv4"
	"github.com/buildbarn/go-xdr/pkg/runtime"
)

// Attrs is a decoded fattr4 (RFC 5661 section 5). Only the attributes in
// Mask were sent; the others are zero.
type Attrs struct {
	Mask []uint32 // bitmap4 of the attributes present

	SupportedAttrs  []uint32        // FATTR4_SUPPORTED_ATTRS
	Type            nfsv4.NfsFtype4 // FATTR4_TYPE
	FHExpireType    uint32          // FATTR4_FH_EXPIRE_TYPE
	Change          uint64          // FATTR4_CHANGE
	Size            uint64          // FATTR4_SIZE
	LinkSupport     bool            // FATTR4_LINK_SUPPORT
	SymlinkSupport  bool            // FATTR4_SYMLINK_SUPPORT
	NamedAttr       bool            // FATTR4_NAMED_ATTR
	FSID            nfsv4.Fsid4     // FATTR4_FSID
	UniqueHandles   bool            // FATTR4_UNIQUE_HANDLES
	LeaseTime       uint32          // FATTR4_LEASE_TIME, seconds
	RdattrError     nfsv4.Nfsstat4  // FATTR4_RDATTR_ERROR
	Filehandle      []byte          // FATTR4_FILEHANDLE
	FileID          uint64          // FATTR4_FILEID
	MaxFileSize     uint64          // FATTR4_MAXFILESIZE
	MaxName         uint32          // FATTR4_MAXNAME
	MaxRead         uint64          // FATTR4_MAXREAD
	MaxWrite        uint64          // FATTR4_MAXWRITE
	Mode            uint32          // FATTR4_MODE
	NumLinks        uint32          // FATTR4_NUMLINKS
	Owner           string          // FATTR4_OWNER
	OwnerGroup      string          // FATTR4_OWNER_GROUP
	Rawdev          nfsv4.Specdata4 // FATTR4_RAWDEV
	SpaceAvail      uint64          // FATTR4_SPACE_AVAIL
	SpaceFree       uint64          // FATTR4_SPACE_FREE
	SpaceTotal      uint64          // FATTR4_SPACE_TOTAL
	SpaceUsed       uint64          // FATTR4_SPACE_USED
	TimeAccess      nfsv4.Nfstime4  // FATTR4_TIME_ACCESS
	TimeMetadata    nfsv4.Nfstime4  // FATTR4_TIME_METADATA
	TimeModify      nfsv4.Nfstime4  // FATTR4_TIME_MODIFY
	MountedOnFileID uint64          // FATTR4_MOUNTED_ON_FILEID
	SuppattrExcl    []uint32        // FATTR4_SUPPATTR_EXCLCREAT
}

// attrField gives, for each attribute this client can decode and
// encode, a pointer to its field in an Attrs; the pointer's type tells
// the XDR encoding. fattr4's values carry no lengths, so an attribute
// missing here cannot be skipped: decoding stops with an error.
var attrField = map[uint32]func(a *Attrs) any{
	nfsv4.FATTR4_SUPPORTED_ATTRS:    func(a *Attrs) any { return &a.SupportedAttrs },
	nfsv4.FATTR4_TYPE:               func(a *Attrs) any { return &a.Type },
	nfsv4.FATTR4_FH_EXPIRE_TYPE:     func(a *Attrs) any { return &a.FHExpireType },
	nfsv4.FATTR4_CHANGE:             func(a *Attrs) any { return &a.Change },
	nfsv4.FATTR4_SIZE:               func(a *Attrs) any { return &a.Size },
	nfsv4.FATTR4_LINK_SUPPORT:       func(a *Attrs) any { return &a.LinkSupport },
	nfsv4.FATTR4_SYMLINK_SUPPORT:    func(a *Attrs) any { return &a.SymlinkSupport },
	nfsv4.FATTR4_NAMED_ATTR:         func(a *Attrs) any { return &a.NamedAttr },
	nfsv4.FATTR4_FSID:               func(a *Attrs) any { return &a.FSID },
	nfsv4.FATTR4_UNIQUE_HANDLES:     func(a *Attrs) any { return &a.UniqueHandles },
	nfsv4.FATTR4_LEASE_TIME:         func(a *Attrs) any { return &a.LeaseTime },
	nfsv4.FATTR4_RDATTR_ERROR:       func(a *Attrs) any { return &a.RdattrError },
	nfsv4.FATTR4_FILEHANDLE:         func(a *Attrs) any { return &a.Filehandle },
	nfsv4.FATTR4_FILEID:             func(a *Attrs) any { return &a.FileID },
	nfsv4.FATTR4_MAXFILESIZE:        func(a *Attrs) any { return &a.MaxFileSize },
	nfsv4.FATTR4_MAXNAME:            func(a *Attrs) any { return &a.MaxName },
	nfsv4.FATTR4_MAXREAD:            func(a *Attrs) any { return &a.MaxRead },
	nfsv4.FATTR4_MAXWRITE:           func(a *Attrs) any { return &a.MaxWrite },
	nfsv4.FATTR4_MODE:               func(a *Attrs) any { return &a.Mode },
	nfsv4.FATTR4_NUMLINKS:           func(a *Attrs) any { return &a.NumLinks },
	nfsv4.FATTR4_OWNER:              func(a *Attrs) any { return &a.Owner },
	nfsv4.FATTR4_OWNER_GROUP:        func(a *Attrs) any { return &a.OwnerGroup },
	nfsv4.FATTR4_RAWDEV:             func(a *Attrs) any { return &a.Rawdev },
	nfsv4.FATTR4_SPACE_AVAIL:        func(a *Attrs) any { return &a.SpaceAvail },
	nfsv4.FATTR4_SPACE_FREE:         func(a *Attrs) any { return &a.SpaceFree },
	nfsv4.FATTR4_SPACE_TOTAL:        func(a *Attrs) any { return &a.SpaceTotal },
	nfsv4.FATTR4_SPACE_USED:         func(a *Attrs) any { return &a.SpaceUsed },
	nfsv4.FATTR4_TIME_ACCESS:        func(a *Attrs) any { return &a.TimeAccess },
	nfsv4.FATTR4_TIME_METADATA:      func(a *Attrs) any { return &a.TimeMetadata },
	nfsv4.FATTR4_TIME_MODIFY:        func(a *Attrs) any { return &a.TimeModify },
	nfsv4.FATTR4_MOUNTED_ON_FILEID:  func(a *Attrs) any { return &a.MountedOnFileID },
	nfsv4.FATTR4_SUPPATTR_EXCLCREAT: func(a *Attrs) any { return &a.SuppattrExcl },
}

// ErrUnknownAttr is wrapped when a fattr4 holds an attribute this
// client cannot decode (see Attrs for those it can).
var ErrUnknownAttr = errors.New("attribute unknown to this client")

// maxAttrString bounds owner strings; maxBitmapWords bounds bitmaps
// inside attributes, far above the 3 words NFSv4.2 needs.
const (
	maxAttrString  = 4096
	maxBitmapWords = 8
)

// Bitmap returns the bitmap4 with the given attribute bits set.
func Bitmap(attrs ...uint32) []uint32 {
	var bm []uint32
	for _, a := range attrs {
		for uint32(len(bm)) <= a/32 {
			bm = append(bm, 0)
		}
		bm[a/32] |= 1 << (a % 32)
	}
	return bm
}

// Has reports whether attribute bit attr is set in bm.
func Has(bm []uint32, attr uint32) bool {
	return attr/32 < uint32(len(bm)) && bm[attr/32]&(1<<(attr%32)) != 0
}

// Has reports whether the server sent attribute attr.
func (a *Attrs) Has(attr uint32) bool { return Has(a.Mask, attr) }

// bitsOf lists the bits set in bm, lowest first: the order of fattr4's
// values.
func bitsOf(bm []uint32) []uint32 {
	var out []uint32
	for i, w := range bm {
		for w != 0 {
			b := uint32(bits.TrailingZeros32(w))
			out = append(out, uint32(i)*32+b)
			w &^= 1 << b
		}
	}
	return out
}

// DecodeAttrs decodes a fattr4; its values must fill attr_vals exactly.
func DecodeAttrs(f nfsv4.Fattr4) (Attrs, error) {
	a := Attrs{Mask: append([]uint32(nil), f.Attrmask...)}
	r := bytes.NewReader(f.AttrVals)
	for _, bit := range bitsOf(f.Attrmask) {
		field, ok := attrField[bit]
		if !ok {
			return a, fmt.Errorf("fattr4: attribute %d: %w", bit, ErrUnknownAttr)
		}
		if err := readAttr(r, field(&a)); err != nil {
			return a, fmt.Errorf("%w: fattr4: attribute %d: %v", ErrMalformed, bit, err)
		}
	}
	if r.Len() != 0 {
		return a, fmt.Errorf("%w: fattr4: %d bytes after the attributes of %v", ErrMalformed, r.Len(), bitsOf(f.Attrmask))
	}
	return a, nil
}

// EncodeAttrs encodes the attributes of a in a.Mask as a fattr4 (as a
// server would send them; tests use it to check DecodeAttrs).
func EncodeAttrs(a Attrs) (nfsv4.Fattr4, error) {
	var b bytes.Buffer
	for _, bit := range bitsOf(a.Mask) {
		field, ok := attrField[bit]
		if !ok {
			return nfsv4.Fattr4{}, fmt.Errorf("fattr4: attribute %d: %w", bit, ErrUnknownAttr)
		}
		if err := writeAttr(&b, field(&a)); err != nil {
			return nfsv4.Fattr4{}, fmt.Errorf("fattr4: attribute %d: %w", bit, err)
		}
	}
	return nfsv4.Fattr4{Attrmask: trimBitmap(a.Mask), AttrVals: b.Bytes()}, nil
}

// trimBitmap drops trailing zero words, which a bitmap4 need not carry.
func trimBitmap(bm []uint32) []uint32 {
	for len(bm) > 0 && bm[len(bm)-1] == 0 {
		bm = bm[:len(bm)-1]
	}
	return append([]uint32(nil), bm...)
}

func readAttr(r io.Reader, p any) error {
	var err error
	switch p := p.(type) {
	case *[]uint32:
		var n uint32
		if n, _, err = runtime.ReadUnsignedInt(r); err != nil {
			return err
		}
		if n > maxBitmapWords {
			return fmt.Errorf("bitmap of %d words", n)
		}
		*p = make([]uint32, n)
		for i := range *p {
			if (*p)[i], _, err = runtime.ReadUnsignedInt(r); err != nil {
				return err
			}
		}
	case *nfsv4.NfsFtype4:
		var v int32
		v, _, err = runtime.ReadInt(r)
		*p = nfsv4.NfsFtype4(v)
	case *nfsv4.Nfsstat4:
		var v int32
		v, _, err = runtime.ReadInt(r)
		*p = nfsv4.Nfsstat4(v)
	case *uint32:
		*p, _, err = runtime.ReadUnsignedInt(r)
	case *uint64:
		*p, _, err = runtime.ReadUnsignedHyper(r)
	case *bool:
		*p, _, err = runtime.ReadBool(r)
	case *string:
		*p, _, err = runtime.ReadUTF8String(r, maxAttrString)
	case *[]byte:
		*p, _, err = runtime.ReadVariableLengthOpaque(r, nfsv4.NFS4_FHSIZE)
	case *nfsv4.Fsid4:
		_, err = p.ReadFrom(r)
	case *nfsv4.Nfstime4:
		_, err = p.ReadFrom(r)
	case *nfsv4.Specdata4:
		_, err = p.ReadFrom(r)
	default:
		return fmt.Errorf("no decoder for %T", p)
	}
	if errors.Is(err, io.EOF) {
		err = io.ErrUnexpectedEOF // the attribute was announced in the bitmap
	}
	return err
}

func writeAttr(w io.Writer, p any) error {
	var err error
	switch p := p.(type) {
	case *[]uint32:
		_, err = nfsv4.WriteBitmap4(w, *p)
	case *nfsv4.NfsFtype4:
		_, err = runtime.WriteInt(w, int32(*p))
	case *nfsv4.Nfsstat4:
		_, err = runtime.WriteInt(w, int32(*p))
	case *uint32:
		_, err = runtime.WriteUnsignedInt(w, *p)
	case *uint64:
		_, err = runtime.WriteUnsignedHyper(w, *p)
	case *bool:
		_, err = runtime.WriteBool(w, *p)
	case *string:
		_, err = runtime.WriteUTF8String(w, maxAttrString, *p)
	case *[]byte:
		_, err = runtime.WriteVariableLengthOpaque(w, nfsv4.NFS4_FHSIZE, *p)
	case *nfsv4.Fsid4:
		_, err = p.WriteTo(w)
	case *nfsv4.Nfstime4:
		_, err = p.WriteTo(w)
	case *nfsv4.Specdata4:
		_, err = p.WriteTo(w)
	default:
		return fmt.Errorf("no encoder for %T", p)
	}
	return err
}

// SetAttrs are the attributes SETATTR (and OPEN's and CREATE's
// createattrs) can set; nil fields are left alone.
type SetAttrs struct {
	Size       *uint64
	Mode       *uint32
	Owner      *string
	OwnerGroup *string
	ATime      *nfsv4.Nfstime4 // time_access_set to this client time
	MTime      *nfsv4.Nfstime4 // time_modify_set to this client time
}

// Encode encodes s as a fattr4, attributes in bit order.
func (s SetAttrs) Encode() (nfsv4.Fattr4, error) {
	var b bytes.Buffer
	var err error
	var bitsSet []uint32
	if s.Size != nil {
		bitsSet = append(bitsSet, nfsv4.FATTR4_SIZE)
		_, err = runtime.WriteUnsignedHyper(&b, *s.Size)
	}
	if s.Mode != nil && err == nil {
		bitsSet = append(bitsSet, nfsv4.FATTR4_MODE)
		_, err = runtime.WriteUnsignedInt(&b, *s.Mode)
	}
	if s.Owner != nil && err == nil {
		bitsSet = append(bitsSet, nfsv4.FATTR4_OWNER)
		_, err = runtime.WriteUTF8String(&b, maxAttrString, *s.Owner)
	}
	if s.OwnerGroup != nil && err == nil {
		bitsSet = append(bitsSet, nfsv4.FATTR4_OWNER_GROUP)
		_, err = runtime.WriteUTF8String(&b, maxAttrString, *s.OwnerGroup)
	}
	for _, t := range []struct {
		bit uint32
		v   *nfsv4.Nfstime4
	}{{nfsv4.FATTR4_TIME_ACCESS_SET, s.ATime}, {nfsv4.FATTR4_TIME_MODIFY_SET, s.MTime}} {
		if t.v != nil && err == nil {
			bitsSet = append(bitsSet, t.bit)
			st := nfsv4.Settime4_SET_TO_CLIENT_TIME4{Time: *t.v}
			_, err = st.WriteTo(&b)
		}
	}
	if err != nil {
		return nfsv4.Fattr4{}, fmt.Errorf("fattr4: %w", err)
	}
	return nfsv4.Fattr4{Attrmask: Bitmap(bitsSet...), AttrVals: b.Bytes()}, nil
}
