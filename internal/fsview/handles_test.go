package fsview

import (
	"crypto/rand"
	"strings"
	"testing"
)

const testFSID = "fs-0123456789abcdef0"

func testKey() []byte {
	k := make([]byte, HandleKeySize)
	_, _ = rand.Read(k)
	return k
}

func TestHandleEncoding(t *testing.T) {
	key := testKey()
	codec := NewHandleCodec(key, testFSID)
	for _, ap := range []string{"", "fsap-0123456789abcdef0", "fsap-01234567", strings.Repeat("x", maxAPIDLen)} {
		h := Handle{Ino: 1<<63 + 5, Gen: 1234567890123456789, APID: ap}
		b := codec.Encode(h)
		if len(b) > MaxHandleSize || len(b)%4 != 0 {
			t.Errorf("handle for %q is %d bytes", ap, len(b))
		}
		got, err := codec.Decode(b)
		if err != nil || got != h {
			t.Errorf("decode(encode(%+v)) = %+v, %v", h, got, err)
		}
	}
	if b := codec.Encode(Handle{Ino: 7, APID: strings.Repeat("x", maxAPIDLen+1)}); b != nil {
		t.Errorf("handle for an access point ID too long to carry: %x, want none", b)
	}
	if n := len(codec.Encode(Handle{APID: "fsap-0123456789abcdef0"})); n != 56 {
		t.Errorf("an EFS access point's handle is %d bytes, want 56", n)
	}
	good := codec.Encode(Handle{Ino: 7, APID: "fsap-12"}) // 18 + 7 + 3 of padding + 16
	bad := [][]byte{nil, {2}, good[:len(good)-4], append(append([]byte{}, good...), 0, 0, 0, 0)}
	v1 := append([]byte{}, good...)
	v1[0] = 1
	bad = append(bad, v1)
	for i := range good {
		b := append([]byte{}, good...)
		b[i] ^= 0x80
		bad = append(bad, b)
	}
	// The same handle under another key, or for another file system, does not verify.
	bad = append(bad, NewHandleCodec(testKey(), testFSID).Encode(Handle{Ino: 7, APID: "fsap-12"}))
	for _, fsID := range []string{"fs-0123456789abcdef1", "111111111111/us-east-1/" + testFSID, testFSID + "\x00"} {
		bad = append(bad, NewHandleCodec(key, fsID).Encode(Handle{Ino: 7, APID: "fsap-12"}))
	}
	for _, b := range bad {
		if _, err := codec.Decode(b); err == nil {
			t.Errorf("decode(%x) succeeded", b)
		}
	}
	for _, loc := range []string{"12/name", "1/a b"} {
		if _, _, ok := parseLocator(loc); !ok {
			t.Errorf("parseLocator(%q) failed", loc)
		}
	}
	for _, loc := range []string{"", "12", "/x", "12/", "x/y", "12/..", "12/a/b"} {
		if _, _, ok := parseLocator(loc); ok {
			t.Errorf("parseLocator(%q) succeeded", loc)
		}
	}
}
