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
// Files up to LargeFile are cut into chunks of 16 KiB to 256 KiB, 64 KiB
// on average, with normalization level 1: a 1 MiB overwrite in the middle
// of a file then resends 1.15 MB on average, 1.26 MB at most (24 edits of
// 12 files of 64 MiB), less than rsync's rolling checksums cost for it
// (1.41 MB for a 1 GiB file). The same sizes at level 2 cost 1.21 MB on
// average but 1.48 MB at worst, and 128 KiB chunks at level 2 1.41 MB,
// up to 2.16 MB: the stronger the normalization, the longer cuts take to
// fall back into step after an edit, since a cut depends on the distance
// from the chunk's start. A changed file's list crosses as a delta, so
// the smaller chunks cost the wire nothing; they cost an index entry per
// 64 KiB at the receiver. Larger files take 256 KiB to 4 MiB, 1 MiB on
// average (level 2), so that the list of a huge file stays bounded (at
// most about 1 M chunks for 1 TiB). In both sets the minimum of a quarter
// and the maximum of four times the average are FastCDC's own defaults:
// the minimum skips boundary tests where a cut would make tiny chunks, the
// maximum bounds a chunk's memory.
const (
	// LargeFile is the largest size cut into the small set's chunks: at
	// most 1 Mi chunks (16 GiB / 16 KiB), a list's bound.
	LargeFile = 16 << 30
	// MaxSize bounds a chunk of either set: what lists, the wire decoder
	// and CheckList accept (a decoder never allocates more for one).
	MaxSize = 4 << 20
)

// sizes is one set of FastCDC parameters: bounds, average, and the masks
// of normalized chunking (level n: n more bits than the average below it,
// where a cut should be less likely, n fewer above).
type sizes struct {
	min, avg, max int
	level         int
	maskS, maskL  uint64
}

// sizesFor is the set of a file of size bytes.
func sizesFor(size int64) sizes {
	if size > LargeFile {
		return sizes{min: 256 << 10, avg: 1 << 20, max: 4 << 20, level: 2, maskS: 1<<(20+2) - 1, maskL: 1<<(20-2) - 1}
	}
	return sizes{min: 16 << 10, avg: 64 << 10, max: 256 << 10, level: 1, maskS: 1<<(16+1) - 1, maskL: 1<<(16-1) - 1}
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
	ch := newChunker(r, sizesFor(size), size, nil)
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
