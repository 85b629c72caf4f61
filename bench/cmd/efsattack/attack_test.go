package main

import (
	"strings"
	"testing"
)

// The MOUNT call of the record-size bomb is the 48 bytes of the finding.
func TestMountCallIs48Bytes(t *testing.T) {
	if n := len(callHeader(1, progMount, 3, 1, true, 0).opaque([]byte("/"))); n != 48 {
		t.Fatalf("MOUNT call is %d bytes", n)
	}
	if rec := record([]byte{1, 2, 3, 4}); len(rec) != 8 || rec[0] != 0x80 || rec[3] != 4 {
		t.Fatalf("record marker %x", rec)
	}
}

func TestPathVariants(t *testing.T) {
	vs := pathVariants("/2015-02-01/file-systems/fs-1")
	want := []string{"//2015-02-01/file-systems/fs-1", "/2015-02-01/./file-systems/fs-1", "/2015-02-01/file-systems/../fs-1",
		"/2015-02-01//fs-1", "/2015-02-01/file-systems/fs-1/", "/2015-02-01/file-systems/fs-1/.."}
	for _, w := range want {
		found := false
		for _, v := range vs {
			found = found || v == w
		}
		if !found {
			t.Errorf("missing variant %s in %s", w, strings.Join(vs, " "))
		}
	}
}

func TestXDRReader(t *testing.T) {
	b := xdrw{}.u32(7).opaque([]byte("abcde")).u32(9)
	r := &xdrr{b: b}
	if r.u32() != 7 || string(r.opaque()) != "abcde" || r.u32() != 9 || r.err != nil {
		t.Fatal("round trip failed")
	}
	if r.u32(); r.err == nil {
		t.Fatal("read past the end did not fail")
	}
	huge := &xdrr{b: xdrw{}.u32(0xFFFFFFFF)}
	if huge.opaque() != nil || huge.err == nil {
		t.Fatal("an opaque claiming 4 GiB was accepted")
	}
}
