package nfs4client

import (
	"bytes"
	"errors"
	"reflect"
	"slices"
	"testing"

	"github.com/buildbarn/go-xdr/pkg/protocols/nfsv4"
)

func TestAttrsRoundTrip(t *testing.T) {
	var all []uint32
	for bit := range attrField {
		all = append(all, bit)
	}
	slices.Sort(all)
	a := Attrs{
		Mask:            Bitmap(all...),
		SupportedAttrs:  Bitmap(0, 1, 33, 75),
		Type:            nfsv4.NF4REG,
		FHExpireType:    nfsv4.FH4_PERSISTENT,
		Change:          0x0102030405060708,
		Size:            1 << 40,
		LinkSupport:     true,
		SymlinkSupport:  true,
		FSID:            nfsv4.Fsid4{Major: 7, Minor: 8},
		UniqueHandles:   true,
		LeaseTime:       90,
		RdattrError:     nfsv4.NFS4ERR_ACCESS,
		Filehandle:      []byte{1, 2, 3, 4, 5},
		FileID:          42,
		MaxFileSize:     1 << 62,
		MaxName:         255,
		MaxRead:         1 << 20,
		MaxWrite:        1 << 20,
		Mode:            0o4755,
		NumLinks:        3,
		Owner:           "1000",
		OwnerGroup:      "éfs@domain",
		Rawdev:          nfsv4.Specdata4{Specdata1: 1, Specdata2: 2},
		SpaceAvail:      10,
		SpaceFree:       11,
		SpaceTotal:      12,
		SpaceUsed:       4096,
		TimeAccess:      nfsv4.Nfstime4{Seconds: -1, Nseconds: 999999999},
		TimeMetadata:    nfsv4.Nfstime4{Seconds: 1700000000, Nseconds: 1},
		TimeModify:      nfsv4.Nfstime4{Seconds: 1700000001, Nseconds: 2},
		MountedOnFileID: 43,
		SuppattrExcl:    Bitmap(33),
	}
	f, err := EncodeAttrs(a)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(f.Attrmask, a.Mask) {
		t.Fatalf("mask %x, want %x", f.Attrmask, a.Mask)
	}
	// The fattr4 survives XDR as a whole too, as GETATTR carries it.
	var b bytes.Buffer
	if _, err := f.WriteTo(&b); err != nil {
		t.Fatal(err)
	}
	var f2 nfsv4.Fattr4
	if _, err := f2.ReadFrom(&b); err != nil {
		t.Fatal(err)
	}
	got, err := DecodeAttrs(f2)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, a) {
		t.Fatalf("round trip:\n got %+v\nwant %+v", got, a)
	}

	// A subset, out of the order the fields are declared in: values go
	// in bit order.
	sub := Attrs{Mask: Bitmap(nfsv4.FATTR4_TIME_MODIFY, nfsv4.FATTR4_TYPE, nfsv4.FATTR4_OWNER), Type: nfsv4.NF4DIR, Owner: "root", TimeModify: nfsv4.Nfstime4{Seconds: 5}}
	f, err = EncodeAttrs(sub)
	if err != nil {
		t.Fatal(err)
	}
	want := []byte{0, 0, 0, 2, 0, 0, 0, 4, 'r', 'o', 'o', 't', 0, 0, 0, 0, 0, 0, 0, 5, 0, 0, 0, 0}
	if !bytes.Equal(f.AttrVals, want) {
		t.Fatalf("attr_vals %x, want %x", f.AttrVals, want)
	}
	if got, err := DecodeAttrs(f); err != nil || !reflect.DeepEqual(got, sub) {
		t.Fatalf("subset: %+v %v", got, err)
	}
}

func TestDecodeAttrsRejects(t *testing.T) {
	size := Bitmap(nfsv4.FATTR4_SIZE)
	for _, tc := range []struct {
		name string
		f    nfsv4.Fattr4
		want error
	}{
		{"unknown attribute", nfsv4.Fattr4{Attrmask: Bitmap(nfsv4.FATTR4_ACL), AttrVals: []byte{0, 0, 0, 0}}, ErrUnknownAttr},
		{"short value", nfsv4.Fattr4{Attrmask: size, AttrVals: []byte{0, 0, 0, 1}}, ErrMalformed},
		{"bytes left", nfsv4.Fattr4{Attrmask: size, AttrVals: make([]byte, 12)}, ErrMalformed},
		{"values without bits", nfsv4.Fattr4{AttrVals: make([]byte, 4)}, ErrMalformed},
		{"bad bool", nfsv4.Fattr4{Attrmask: Bitmap(nfsv4.FATTR4_LINK_SUPPORT), AttrVals: []byte{0, 0, 0, 2}}, ErrMalformed},
		{"huge bitmap", nfsv4.Fattr4{Attrmask: Bitmap(nfsv4.FATTR4_SUPPORTED_ATTRS), AttrVals: []byte{0xff, 0xff, 0xff, 0xff}}, ErrMalformed},
		{"long filehandle", nfsv4.Fattr4{Attrmask: Bitmap(nfsv4.FATTR4_FILEHANDLE), AttrVals: append([]byte{0, 0, 0, 129}, make([]byte, 132)...)}, ErrMalformed},
	} {
		if _, err := DecodeAttrs(tc.f); !errors.Is(err, tc.want) {
			t.Errorf("%s: %v, want %v", tc.name, err, tc.want)
		}
	}
}

func TestSetAttrsEncode(t *testing.T) {
	size, mode, owner := uint64(5), uint32(0o644), "1000"
	mtime := nfsv4.Nfstime4{Seconds: 3, Nseconds: 4}
	f, err := SetAttrs{Size: &size, Mode: &mode, Owner: &owner, MTime: &mtime}.Encode()
	if err != nil {
		t.Fatal(err)
	}
	if want := []uint32{1 << nfsv4.FATTR4_SIZE, 1<<(nfsv4.FATTR4_MODE-32) | 1<<(nfsv4.FATTR4_OWNER-32) | 1<<(nfsv4.FATTR4_TIME_MODIFY_SET-32)}; !slices.Equal(f.Attrmask, want) {
		t.Fatalf("mask %x, want %x", f.Attrmask, want)
	}
	want := []byte{
		0, 0, 0, 0, 0, 0, 0, 5, // size
		0, 0, 1, 0xa4, // mode
		0, 0, 0, 4, '1', '0', '0', '0', // owner
		0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 3, 0, 0, 0, 4, // SET_TO_CLIENT_TIME4 3.000000004
	}
	if !bytes.Equal(f.AttrVals, want) {
		t.Fatalf("attr_vals %x, want %x", f.AttrVals, want)
	}
	if f, err := (SetAttrs{}).Encode(); err != nil || len(f.Attrmask) != 0 || len(f.AttrVals) != 0 {
		t.Fatalf("empty: %+v %v", f, err)
	}
}

func TestBitmap(t *testing.T) {
	bm := Bitmap(nfsv4.FATTR4_TYPE, nfsv4.FATTR4_MODE, nfsv4.FATTR4_SUPPATTR_EXCLCREAT)
	if !slices.Equal(bm, []uint32{2, 2, 1 << 11}) {
		t.Fatalf("%x", bm)
	}
	if !Has(bm, nfsv4.FATTR4_MODE) || Has(bm, nfsv4.FATTR4_SIZE) || Has(bm, 200) {
		t.Fatal("Has")
	}
	if got := bitsOf(bm); !slices.Equal(got, []uint32{1, 33, 75}) {
		t.Fatal(got)
	}
}
