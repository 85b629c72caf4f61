package chunks

import (
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"runtime"
	"testing"

	"github.com/klauspost/compress/zstd"
)

// Chunks round-trip; compressible ones cross compressed, incompressible
// ones as they are.
func TestWireRoundTripChoosesCodec(t *testing.T) {
	text, noise := textBytes(1, 1<<20), randBytes(2, 1<<20)
	var buf bytes.Buffer
	e, err := NewEncoder(&buf)
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	for _, b := range [][]byte{text, noise, {42}} {
		if err := e.Write(Sum(b), b); err != nil {
			t.Fatal(err)
		}
	}
	if e.Wire != int64(buf.Len()) {
		t.Fatalf("counted %d, wrote %d", e.Wire, buf.Len())
	}
	frames := buf.Bytes()
	if frames[32] != byte(CodecZstd) {
		t.Fatal("text not compressed")
	}
	textWire := headerSize + int(binary.BigEndian.Uint32(frames[37:]))
	if frames[textWire+32] != byte(CodecNone) {
		t.Fatal("noise compressed")
	}
	t.Logf("1 MiB of text: %d bytes on the wire; 1 MiB of noise: %d", textWire, headerSize+len(noise))
	if textWire > len(text)/2 {
		t.Fatalf("text frame of %d bytes", textWire)
	}
	d, err := NewDecoder(&buf)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	for _, want := range [][]byte{text, noise, {42}} {
		h, b, err := d.Next()
		if err != nil || h != Sum(want) || !bytes.Equal(b, want) {
			t.Fatalf("frame: %v", err)
		}
	}
	if _, _, err := d.Next(); err != io.EOF {
		t.Fatalf("end: %v", err)
	}
}

func frame(h Hash, codec Codec, size, plen uint32, payload []byte) []byte {
	b := append([]byte{}, h[:]...)
	b = append(b, byte(codec))
	b = binary.BigEndian.AppendUint32(b, size)
	b = binary.BigEndian.AppendUint32(b, plen)
	return append(b, payload...)
}

// decodeAlloc decodes one frame and returns the error and the bytes
// allocated meanwhile.
func decodeAlloc(t *testing.T, f []byte) (error, uint64) {
	t.Helper()
	d, err := NewDecoder(bytes.NewReader(f))
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	var m0, m1 runtime.MemStats
	runtime.ReadMemStats(&m0)
	_, _, err = d.Next()
	runtime.ReadMemStats(&m1)
	return err, m1.TotalAlloc - m0.TotalAlloc
}

// A hostile peer's frames are refused, without allocating by the lengths
// it claims and without inflating a decompression bomb.
func TestWireRefusesHostileFrames(t *testing.T) {
	good := textBytes(3, 100<<10)
	h := Sum(good)
	var z bytes.Buffer
	zw, _ := zstd.NewWriter(&z, zstd.WithEncoderLevel(zstd.SpeedFastest), zstd.WithWindowSize(1<<20))
	zw.Write(good)
	zw.Close()
	short := append([]byte{}, z.Bytes()...)

	// A bomb: 256 MiB of zeros, a few KiB compressed, claiming to be 1 MiB.
	z.Reset()
	zw.Reset(&z)
	zeros := make([]byte, 1<<20)
	for range 256 {
		zw.Write(zeros)
	}
	zw.Close()
	bomb := z.Bytes()
	t.Logf("bomb: %d bytes of zstd for 256 MiB", len(bomb))

	for _, c := range []struct {
		name  string
		f     []byte
		want  error
		alloc uint64
	}{
		{"huge claimed length", frame(h, CodecNone, 0xffffffff, 0xffffffff, nil), ErrFrameLength, 64 << 10},
		{"payload longer than chunk", frame(h, CodecZstd, 1000, 1<<20, nil), ErrFrameLength, 64 << 10},
		{"zero length", frame(h, CodecNone, 0, 0, nil), ErrFrameLength, 64 << 10},
		{"raw payload not the chunk's length", frame(h, CodecNone, 100, 50, good[:50]), ErrFrameLength, 64 << 10},
		{"bad codec", frame(h, 7, 100, 100, good[:100]), ErrFrameCodec, 64 << 10},
		{"wrong hash", frame(Sum([]byte("other")), CodecNone, uint32(len(good)), uint32(len(good)), good), ErrFrameHash, 2 * MaxSize},
		{"zstd wrong hash", frame(Sum([]byte("other")), CodecZstd, uint32(len(good)), uint32(len(short)), short), ErrFrameHash, 3 * MaxSize},
		{"zstd shorter than claimed", frame(h, CodecZstd, uint32(len(good))+1, uint32(len(short)), short), ErrFrameLength, 3 * MaxSize},
		{"zstd bomb", frame(h, CodecZstd, 1<<20, uint32(len(bomb)), bomb), nil, 3 * MaxSize},
		{"zstd garbage", frame(h, CodecZstd, 1000, 100, good[:100]), ErrFrameData, 3 * MaxSize},
		{"truncated", frame(h, CodecNone, 1000, 1000, good[:10]), io.ErrUnexpectedEOF, 2 * MaxSize},
	} {
		err, alloc := decodeAlloc(t, c.f)
		if err == nil || (c.want != nil && !errors.Is(err, c.want)) {
			t.Errorf("%s: %v, want %v", c.name, err, c.want)
		}
		if alloc > c.alloc {
			t.Errorf("%s: allocated %d bytes", c.name, alloc)
		}
		t.Logf("%s: refused (%v) after allocating %d bytes", c.name, err, alloc)
	}
}

// Bare frames round-trip at one byte of overhead for what does not
// compress; a hostile one (unknown codec, a payload claiming as much as
// the data, a payload inflating beyond the size the reader expects, a
// stream cut short) is refused.
func TestBareFrames(t *testing.T) {
	text, noise := textBytes(3, 64<<10), randBytes(4, 4096)
	var buf bytes.Buffer
	e, err := NewEncoder(&buf)
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	for _, b := range [][]byte{text, noise, {7}} {
		if err := e.WriteBare(b); err != nil {
			t.Fatal(err)
		}
	}
	if e.Wire != int64(buf.Len()) || buf.Len() > len(text)/2+len(noise)+1+1+5 {
		t.Fatalf("counted %d, wrote %d for %d bytes", e.Wire, buf.Len(), len(text)+len(noise)+1)
	}
	good := bytes.Clone(buf.Bytes())
	d, err := NewDecoder(&buf)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	for _, want := range [][]byte{text, noise, {7}} {
		if b, err := d.NextBare(len(want)); err != nil || !bytes.Equal(b, want) {
			t.Fatalf("bare frame of %d bytes: %v", len(want), err)
		}
	}
	if err := e.WriteBare(nil); err == nil {
		t.Fatal("empty bare frame written")
	}
	// The same frames as readers (an uncompressed one read from the
	// stream as it is consumed).
	d2, err := NewDecoder(bytes.NewReader(good))
	if err != nil {
		t.Fatal(err)
	}
	defer d2.Close()
	for _, want := range [][]byte{text, noise, {7}} {
		r, err := d2.BareReader(len(want))
		if err != nil {
			t.Fatal(err)
		}
		if b, err := io.ReadAll(r); err != nil || !bytes.Equal(b, want) {
			t.Fatalf("bare frame of %d bytes as a reader: %v", len(want), err)
		}
	}
	if d2.Wire != int64(len(good)) {
		t.Fatalf("read %d bytes as readers, counted %d", len(good), d2.Wire)
	}

	zlen := int(binary.BigEndian.Uint32(good[1:5]))
	for name, c := range map[string]struct {
		body []byte
		size int
		want error
	}{
		"unknown codec":        {[]byte{9, 1}, 1, ErrFrameCodec},
		"payload as long":      {append([]byte{byte(CodecZstd)}, binary.BigEndian.AppendUint32(nil, 100)...), 100, ErrFrameLength},
		"inflating beyond":     {good[:5+zlen], len(text) / 2, ErrFrameData},
		"size above MaxSize":   {[]byte{0}, MaxSize + 1, ErrFrameLength},
		"cut in the payload":   {[]byte{0, 1, 2}, 10, io.ErrUnexpectedEOF},
		"cut in the length":    {[]byte{byte(CodecZstd), 0}, 10, io.ErrUnexpectedEOF},
		"nothing where needed": {nil, 10, io.ErrUnexpectedEOF},
	} {
		d, err := NewDecoder(bytes.NewReader(c.body))
		if err != nil {
			t.Fatal(err)
		}
		if _, err := d.NextBare(c.size); !errors.Is(err, c.want) {
			t.Errorf("%s: %v, want %v", name, err, c.want)
		}
		d.Close()
		d, err = NewDecoder(bytes.NewReader(c.body))
		if err != nil {
			t.Fatal(err)
		}
		r, err := d.BareReader(c.size)
		if err == nil {
			_, err = io.ReadAll(r)
		}
		if !errors.Is(err, c.want) {
			t.Errorf("%s, as a reader: %v, want %v", name, err, c.want)
		}
		d.Close()
	}
}

// A Decompressor gives back what Compress made, and refuses a frame that
// declares, or decodes to, more than its bound.
func TestDecompressorBound(t *testing.T) {
	c, err := NewCompressor()
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	d, err := NewDecompressor(1 << 20)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	for _, n := range []int{10, 300, 1 << 20} {
		src := textBytes(uint64(n), n)
		if got, err := d.Decompress(c.Compress(src, nil)); err != nil || !bytes.Equal(got, src) {
			t.Fatalf("%d bytes: %v", n, err)
		}
	}
	if _, err := d.Decompress(c.Compress(make([]byte, 1<<20+1), nil)); !errors.Is(err, ErrFrameLength) {
		t.Fatalf("above the bound: %v", err)
	}
	// A frame that does not declare its size may decode to undeclaredMax.
	var unsized bytes.Buffer
	w, err := zstd.NewWriter(&unsized)
	if err != nil {
		t.Fatal(err)
	}
	w.Write([]byte("x"))
	w.Flush()
	w.Write(make([]byte, undeclaredMax))
	w.Close()
	if _, err := d.Decompress(unsized.Bytes()); err == nil {
		t.Fatal("an undeclared frame above its bound decoded")
	}
	if _, err := d.Decompress([]byte("not zstd")); !errors.Is(err, ErrFrameData) {
		t.Fatalf("garbage: %v", err)
	}
}
