// Package chunks is the content transfer engine of replication between two
// efsd deployments ("ERP/1", issue #10): it cuts files into content-defined
// chunks named by their BLAKE3-256 hash, keeps at the destination an index
// of where each chunk's bytes already are, assembles a file there from its
// chunk list — bytes it already has are copied locally, only the missing
// ones come over the network — and encodes chunks for the wire.
//
// Content-defined boundaries (FastCDC) move with the data: an insertion in
// the middle of a file changes the one or two chunks around it, not every
// chunk after it as fixed-size blocks would. Naming chunks by a strong hash
// makes a rename or a copy at the source cost no data, because the
// destination finds the bytes under another name; and it makes resumption
// natural: what already landed is simply not missing any more.
//
// Nothing here trusts what it did not check: a chunk's bytes, from the
// wire or from a destination file that may have changed since it was
// indexed, are hashed before they are written; the wire decoder bounds
// every length before allocating; paths are resolved inside the
// destination root with treesync's confinement helpers.
package chunks

import (
	"encoding/hex"
	"errors"
	"fmt"
	"io"

	"github.com/zeebo/blake3"
)

// Chunk sizes come in two sets, chosen by the size of the file: both
// sides of a replication compute the same choice from the same size, so a
// file's chunks still match the chunks of its other copies.
//
// Files up to LargeFile are cut into chunks of 32 KiB to 512 KiB, 128 KiB
// on average: a 1 MiB overwrite in the middle of a file then resends about
// 1.3 MiB (measured over 60 files: 1.36 MiB mean; 1.6 MiB at a 256 KiB
// average, 3.7 MiB at 1 MiB), close to what rsync's rolling checksums
// send, for a list of 36 bytes per 128 KiB on the wire (a 1 GiB file's
// list is 288 KiB) and an index entry per 128 KiB at the receiver. Larger
// files take 256 KiB to 4 MiB, 1 MiB on average, so that the list of a
// huge file stays bounded (at most about 1 M chunks for 1 TiB). In both
// sets the minimum of a quarter and the maximum of four times the average
// are FastCDC's own defaults: the minimum skips boundary tests where a cut
// would make tiny chunks, the maximum bounds a chunk's memory.
const (
	// LargeFile is the largest size cut into the small set's chunks: at
	// most 512 Ki chunks (16 GiB / 32 KiB), within a list's bound.
	LargeFile = 16 << 30
	// MaxSize bounds a chunk of either set: what lists, the wire decoder
	// and CheckList accept (a decoder never allocates more for one).
	MaxSize = 4 << 20
)

// sizes is one set of FastCDC parameters: bounds, average, and the masks
// of normalized chunking (level 2: two more bits than the average below
// it, where a cut should be less likely, two fewer above).
type sizes struct {
	min, avg, max int
	maskS, maskL  uint64
}

// sizesFor is the set of a file of size bytes.
func sizesFor(size int64) sizes {
	if size > LargeFile {
		return sizes{min: 256 << 10, avg: 1 << 20, max: 4 << 20, maskS: 1<<(20+2) - 1, maskL: 1<<(20-2) - 1}
	}
	return sizes{min: 32 << 10, avg: 128 << 10, max: 512 << 10, maskS: 1<<(17+2) - 1, maskL: 1<<(17-2) - 1}
}

// Hash names a chunk: BLAKE3-256 of its bytes.
type Hash [32]byte

func (h Hash) String() string { return hex.EncodeToString(h[:]) }

// Sum is the hash of b.
func Sum(b []byte) Hash { return blake3.Sum256(b) }

// Chunk is one piece of a file: Length bytes at Offset whose hash is Hash.
type Chunk struct {
	Offset int64
	Length int
	Hash   Hash
}

// Split reads r to its end and calls fn with each chunk and its bytes, in
// order. The bytes are valid only during the call. An empty r has no chunk.
// size is the number of bytes r yields (the file's size): it chooses the
// chunk sizes, so the same content must be split with the same size
// wherever its chunks are to match.
func Split(r io.Reader, size int64, fn func(c Chunk, data []byte) error) error {
	ch := newChunker(r, sizesFor(size))
	for {
		off, data, err := ch.next()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return err
		}
		if err := fn(Chunk{Offset: off, Length: len(data), Hash: Sum(data)}, data); err != nil {
			return err
		}
	}
}

// List is the chunk list of r's content, size bytes (see Split).
func List(r io.Reader, size int64) ([]Chunk, error) {
	var l []Chunk
	err := Split(r, size, func(c Chunk, _ []byte) error { l = append(l, c); return nil })
	return l, err
}

// Size is the size of the file a valid list describes.
func Size(l []Chunk) int64 {
	if len(l) == 0 {
		return 0
	}
	c := l[len(l)-1]
	return c.Offset + int64(c.Length)
}

// CheckList refuses a list that does not describe a file: chunks must
// follow each other from offset 0 without gap or overlap, each 1 to
// MaxSize bytes long. (A list from a peer is hostile until checked.)
func CheckList(l []Chunk) error {
	var off int64
	for i, c := range l {
		if c.Offset != off {
			return fmt.Errorf("chunk %d at offset %d, want %d", i, c.Offset, off)
		}
		if c.Length < 1 || c.Length > MaxSize {
			return fmt.Errorf("chunk %d has length %d, want 1 to %d", i, c.Length, MaxSize)
		}
		off += int64(c.Length)
	}
	return nil
}
