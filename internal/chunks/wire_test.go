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
