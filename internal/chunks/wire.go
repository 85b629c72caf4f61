package chunks

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"

	"github.com/klauspost/compress/zstd"
)

// Codec says how a chunk's bytes are encoded on the wire.
type Codec uint8

const (
	CodecNone Codec = 0
	CodecZstd Codec = 1
)

// A frame on the wire is a 41-byte header — hash (32), codec (1), the
// chunk's length (4, big endian) and the payload's length (4) — followed by
// the payload. The payload is never longer than the chunk (a chunk that
// does not shrink is sent as it is), and the chunk never longer than
// MaxSize, so a decoder knows before reading a payload that it needs at
// most MaxSize bytes for it, whatever a peer claims.
const headerSize = 32 + 1 + 4 + 4

// probeSize is how much of a chunk the encoder compresses first to decide
// whether compressing the rest pays: zstd's fastest level spends about as
// long on incompressible data as on text, so the probe saves most of that
// on media, archives and encrypted files, which do not shrink. 16 KiB:
// chunks average 64 KiB, and a larger sample would compress much of each
// chunk twice.
const probeSize = 16 << 10

// Encoder writes chunks as frames, each compressed with zstd when a probe
// says it shrinks. Not safe for concurrent use.
type Encoder struct {
	w    io.Writer
	zenc *zstd.Encoder
	out  []byte
	// shared: zenc belongs to a Compressor.
	shared bool
	// Wire counts the bytes written; Raw the chunk bytes they carry.
	Wire, Raw int64
}

// NewEncoder writes frames to w.
func NewEncoder(w io.Writer) (*Encoder, error) {
	c, err := NewCompressor()
	if err != nil {
		return nil, err
	}
	return &Encoder{w: w, zenc: c.z}, nil
}

// Compressor is a zstd compressor that Encoders share: setting one up
// costs more than compressing a small file, and a sender opens a stream
// per file. Its EncodeAll is safe for concurrent use.
type Compressor struct{ z *zstd.Encoder }

// NewCompressor returns a Compressor; Close releases it.
func NewCompressor() (*Compressor, error) {
	z, err := zstd.NewWriter(nil, zstd.WithEncoderLevel(zstd.SpeedFastest), zstd.WithEncoderConcurrency(1), zstd.WithEncoderCRC(false))
	if err != nil {
		return nil, fmt.Errorf("zstd: %w", err)
	}
	return &Compressor{z: z}, nil
}

// Encoder writes frames to w with c; closing it leaves c open.
func (c *Compressor) Encoder(w io.Writer) *Encoder { return &Encoder{w: w, zenc: c.z, shared: true} }

// Close releases the compressor.
func (c *Compressor) Close() error { return c.z.Close() }

// Compress appends src, compressed as one zstd frame, to dst: for control
// messages, which shrink several-fold (names, field tags, nearby numbers).
// Safe for concurrent use.
func (c *Compressor) Compress(src, dst []byte) []byte { return c.z.EncodeAll(src, dst) }

// undeclaredMax bounds what a frame that does not declare its content
// size may decode to.
const undeclaredMax = 64 << 10

// Decompressor undoes Compressor.Compress for a peer that is not trusted:
// nothing decodes to more than its bound.
type Decompressor struct {
	z   *zstd.Decoder
	max int
}

// NewDecompressor returns a Decompressor whose output is at most max
// bytes; Close releases it.
func NewDecompressor(max int) (*Decompressor, error) {
	z, err := zstd.NewReader(nil,
		zstd.WithDecoderConcurrency(2),
		zstd.WithDecoderLowmem(true),
		zstd.WithDecoderMaxMemory(uint64(max)),
		zstd.WithDecoderMaxWindow(uint64(min(max, 8<<20))),
		zstd.WithDecodeAllCapLimit(true))
	if err != nil {
		return nil, fmt.Errorf("zstd: %w", err)
	}
	return &Decompressor{z: z, max: max}, nil
}

// DeclaredSize is the content size a zstd frame declares, or, for a frame
// that declares none, undeclaredMax (0 for what is not a frame): what
// Decompress will allocate for it, at most.
func DeclaredSize(src []byte) int {
	size, _, err := declaredSize(src)
	if err != nil {
		return 0
	}
	return int(min(size, 1<<62))
}

// declaredSize reads a frame's header: its declared content size, or
// undeclaredMax if it declares none (declared false).
func declaredSize(src []byte) (size uint64, declared bool, err error) {
	var h zstd.Header
	if err := h.Decode(src); err != nil {
		return 0, false, err
	}
	if !h.HasFCS {
		return undeclaredMax, false, nil
	}
	return h.FrameContentSize, true, nil
}

// Decompress decodes one zstd frame. What it allocates, and what the frame
// may decode to, is the content size the frame declares (Compress's do,
// but for a few hundred bytes or less), at most the bound; a frame that
// declares none may decode to undeclaredMax bytes (or the bound, if
// smaller). Safe for concurrent use.
func (d *Decompressor) Decompress(src []byte) ([]byte, error) {
	size, declared, err := declaredSize(src)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrFrameData, err)
	}
	if !declared {
		size = min(size, uint64(d.max))
	}
	if size < 1 || size > uint64(d.max) {
		return nil, fmt.Errorf("%w: a frame of %d bytes, want 1 to %d", ErrFrameLength, size, d.max)
	}
	b, err := d.z.DecodeAll(src, make([]byte, 0, size))
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrFrameData, err)
	}
	return b, nil
}

// Close releases the decompressor.
func (d *Decompressor) Close() { d.z.Close() }

// Write sends one chunk (h must be Sum(data); 1 to MaxSize bytes).
func (e *Encoder) Write(h Hash, data []byte) error {
	if len(data) < 1 || len(data) > MaxSize {
		return fmt.Errorf("chunk of %d bytes: want 1 to %d", len(data), MaxSize)
	}
	codec, payload := CodecNone, data
	if e.pays(data) {
		e.out = e.zenc.EncodeAll(data, e.out[:0])
		if len(e.out) < len(data) {
			codec, payload = CodecZstd, e.out
		}
	}
	var hdr [headerSize]byte
	copy(hdr[:32], h[:])
	hdr[32] = byte(codec)
	binary.BigEndian.PutUint32(hdr[33:], uint32(len(data)))
	binary.BigEndian.PutUint32(hdr[37:], uint32(len(payload)))
	if _, err := e.w.Write(hdr[:]); err != nil {
		return err
	}
	if _, err := e.w.Write(payload); err != nil {
		return err
	}
	e.Wire += int64(headerSize + len(payload))
	e.Raw += int64(len(data))
	return nil
}

// WriteBare sends data (1 to MaxSize bytes) as a bare frame: its codec (1
// byte), for a compressed payload the payload's length (4), then the
// payload — no hash and no length of its own: the reader knows the length
// from elsewhere and hashes what it gets (a batch's inline files). An
// uncompressed frame costs one byte.
func (e *Encoder) WriteBare(data []byte) error {
	if len(data) < 1 || len(data) > MaxSize {
		return fmt.Errorf("bare frame of %d bytes: want 1 to %d", len(data), MaxSize)
	}
	hdr := []byte{byte(CodecNone)}
	payload := data
	if e.pays(data) {
		e.out = e.zenc.EncodeAll(data, e.out[:0])
		if len(e.out)+4 < len(data) {
			payload = e.out
			hdr = binary.BigEndian.AppendUint32([]byte{byte(CodecZstd)}, uint32(len(payload)))
		}
	}
	if _, err := e.w.Write(hdr); err != nil {
		return err
	}
	if _, err := e.w.Write(payload); err != nil {
		return err
	}
	e.Wire += int64(len(hdr) + len(payload))
	e.Raw += int64(len(data))
	return nil
}

// pays compresses a sample from the middle of data and says whether it
// shrank by at least an eighth.
func (e *Encoder) pays(data []byte) bool {
	if len(data) < 512 {
		return false
	}
	s := data
	if len(s) > probeSize {
		mid := len(s)/2 - probeSize/2
		s = s[mid : mid+probeSize]
	}
	e.out = e.zenc.EncodeAll(s, e.out[:0])
	return len(e.out) < len(s)-len(s)/8
}

// Close releases the compressor, unless it is a Compressor's.
func (e *Encoder) Close() error {
	if e.shared {
		return nil
	}
	return e.zenc.Close()
}

// Errors of a decoder facing a frame it must refuse.
var (
	ErrFrameLength = errors.New("chunk frame: bad length")
	ErrFrameCodec  = errors.New("chunk frame: unknown codec")
	ErrFrameHash   = errors.New("chunk frame: bytes do not match their hash")
	ErrFrameData   = errors.New("chunk frame: undecodable payload")
)

// Decoder reads frames from a peer, who is not trusted: lengths are
// bounded before anything is allocated (two buffers of at most MaxSize
// for the decoder's life), a zstd payload may not decode to more than the chunk
// length its header claims (a decompression bomb stops there), and the
// decoded bytes must match the hash. Not safe for concurrent use.
type Decoder struct {
	r       io.Reader
	zdec    *zstd.Decoder
	in, out []byte
	// Wire counts the bytes read.
	Wire int64
	// Unverified leaves the hash check to the caller (Index.Assemble
	// checks every chunk it is given): hashing each byte twice costs as
	// much as decoding it.
	Unverified bool
}

// NewDecoder reads frames from r.
func NewDecoder(r io.Reader) (*Decoder, error) {
	z, err := zstd.NewReader(nil,
		zstd.WithDecoderConcurrency(1),
		zstd.WithDecoderLowmem(true),
		zstd.WithDecoderMaxMemory(MaxSize),
		zstd.WithDecoderMaxWindow(MaxSize),
		zstd.WithDecodeAllCapLimit(true))
	if err != nil {
		return nil, fmt.Errorf("zstd: %w", err)
	}
	return &Decoder{r: r, zdec: z}, nil
}

// Next returns the next chunk, verified (unless Unverified): its hash and bytes, valid until
// the next call. io.EOF at a frame boundary ends the stream; a stream cut
// inside a frame is io.ErrUnexpectedEOF.
func (d *Decoder) Next() (Hash, []byte, error) {
	var hdr [headerSize]byte
	n, err := io.ReadFull(d.r, hdr[:])
	d.Wire += int64(n)
	if err != nil {
		return Hash{}, nil, err
	}
	var h Hash
	copy(h[:], hdr[:32])
	codec := Codec(hdr[32])
	size := binary.BigEndian.Uint32(hdr[33:])
	plen := binary.BigEndian.Uint32(hdr[37:])
	if size < 1 || size > MaxSize || plen < 1 || plen > size {
		return h, nil, fmt.Errorf("%w: chunk %d, payload %d bytes", ErrFrameLength, size, plen)
	}
	switch codec {
	case CodecNone:
		if plen != size {
			return h, nil, fmt.Errorf("%w: uncompressed payload of %d bytes for a chunk of %d", ErrFrameLength, plen, size)
		}
	case CodecZstd:
	default:
		return h, nil, fmt.Errorf("%w %d", ErrFrameCodec, codec)
	}
	payload, err := d.payload(int(plen))
	if err != nil {
		return h, nil, err
	}
	data := payload
	if codec == CodecZstd {
		// The capacity limits what DecodeAll may produce: one byte more
		// than claimed, to tell a longer payload from an exact one.
		limit := min(int(size)+1, MaxSize)
		if cap(d.out) < limit {
			d.out = make([]byte, growTo(cap(d.out), limit))
		}
		data, err = d.zdec.DecodeAll(payload, d.out[:0:limit])
		if err != nil {
			return h, nil, fmt.Errorf("%w: %w", ErrFrameData, err)
		}
		if len(data) != int(size) || &data[0] != &d.out[0] {
			return h, nil, fmt.Errorf("%w: decodes to %d bytes, header says %d", ErrFrameLength, len(data), size)
		}
	}
	if !d.Unverified && Sum(data) != h {
		return h, nil, fmt.Errorf("%w %s", ErrFrameHash, h)
	}
	return h, data, nil
}

// NextBare reads a bare frame (Encoder.WriteBare) of size bytes (1 to
// MaxSize, known to the caller): the bytes, valid until the next call, not
// verified against anything.
func (d *Decoder) NextBare(size int) ([]byte, error) {
	codec, plen, err := d.bareHeader(size)
	if err != nil {
		return nil, err
	}
	payload, err := d.payload(plen)
	if err != nil {
		return nil, err
	}
	if codec == CodecNone {
		return payload, nil
	}
	return d.inflate(payload, size)
}

// BareReader reads a bare frame of size bytes, like NextBare, as a
// reader: one that does not compress is read from the stream as the
// caller reads it, not copied through the decoder's buffer first (a file
// sent whole goes straight to the chunker's buffer). It must be read to
// its end (io.EOF) before the next frame; the stream ending first is
// io.ErrUnexpectedEOF.
func (d *Decoder) BareReader(size int) (io.Reader, error) {
	codec, plen, err := d.bareHeader(size)
	if err != nil {
		return nil, err
	}
	if codec == CodecNone {
		return &bareReader{d: d, left: plen}, nil
	}
	payload, err := d.payload(plen)
	if err != nil {
		return nil, err
	}
	data, err := d.inflate(payload, size)
	if err != nil {
		return nil, err
	}
	return bytes.NewReader(data), nil
}

// bareReader reads an uncompressed bare frame's payload from the stream.
type bareReader struct {
	d    *Decoder
	left int
}

func (b *bareReader) Read(p []byte) (int, error) {
	if b.left == 0 {
		return 0, io.EOF
	}
	if len(p) > b.left {
		p = p[:b.left]
	}
	n, err := b.d.r.Read(p)
	b.left -= n
	b.d.Wire += int64(n)
	if err == io.EOF {
		if b.left == 0 {
			err = nil
		} else {
			err = io.ErrUnexpectedEOF
		}
	}
	return n, err
}

// bareHeader reads a bare frame's header for a frame of size bytes: its
// codec and the payload's length.
func (d *Decoder) bareHeader(size int) (Codec, int, error) {
	if size < 1 || size > MaxSize {
		return 0, 0, fmt.Errorf("%w: bare frame of %d bytes", ErrFrameLength, size)
	}
	var codec [1]byte
	n, err := io.ReadFull(d.r, codec[:])
	d.Wire += int64(n)
	if err != nil {
		if err == io.EOF {
			err = io.ErrUnexpectedEOF
		}
		return 0, 0, err
	}
	plen := size
	switch Codec(codec[0]) {
	case CodecNone:
	case CodecZstd:
		var l [4]byte
		n, err := io.ReadFull(d.r, l[:])
		d.Wire += int64(n)
		if err != nil {
			return 0, 0, io.ErrUnexpectedEOF
		}
		plen = int(binary.BigEndian.Uint32(l[:]))
		if plen < 1 || plen >= size {
			return 0, 0, fmt.Errorf("%w: compressed payload of %d bytes for %d", ErrFrameLength, plen, size)
		}
	default:
		return 0, 0, fmt.Errorf("%w %d", ErrFrameCodec, codec[0])
	}
	return Codec(codec[0]), plen, nil
}

// inflate decodes a bare frame's compressed payload, which must decode to
// exactly size bytes.
func (d *Decoder) inflate(payload []byte, size int) ([]byte, error) {
	limit := min(size+1, MaxSize)
	if cap(d.out) < limit {
		d.out = make([]byte, growTo(cap(d.out), limit))
	}
	data, err := d.zdec.DecodeAll(payload, d.out[:0:limit])
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrFrameData, err)
	}
	if len(data) != size || &data[0] != &d.out[0] {
		return nil, fmt.Errorf("%w: decodes to %d bytes, want %d", ErrFrameLength, len(data), size)
	}
	return data, nil
}

// payload reads a frame's payload of n bytes (at most MaxSize, checked by
// the caller) into the decoder's buffer; the stream ending first is
// io.ErrUnexpectedEOF.
func (d *Decoder) payload(n int) ([]byte, error) {
	if cap(d.in) < n {
		d.in = make([]byte, growTo(cap(d.in), n))
	}
	b := d.in[:n]
	got, err := io.ReadFull(d.r, b)
	d.Wire += int64(got)
	if err == io.EOF {
		err = io.ErrUnexpectedEOF
	}
	return b, err
}

// growTo is the size of a buffer grown from have to hold need bytes:
// doubling, at most MaxSize, so that small chunks cost small buffers and a
// stream of big ones a few reallocations.
func growTo(have, need int) int {
	return min(max(need, 2*have, 64<<10), MaxSize)
}

// Close releases the decompressor.
func (d *Decoder) Close() { d.zdec.Close() }
