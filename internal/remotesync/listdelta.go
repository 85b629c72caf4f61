package remotesync

import (
	"encoding/binary"

	"github.com/efsd/efsd/internal/chunks"
)

// A changed file's chunk list goes as a delta against the list the
// receiver acknowledged for the same path when that is smaller: a 1 MiB
// edit in a 1 GiB file changes about ten of its 8192 chunks, and sending
// the whole list (288 KiB) would cost a quarter of the edit again. The
// delta names its base by a hash of the base's encoding; a receiver whose
// index holds another list for the path (or none) asks for the whole list
// instead (batchResp.Relist).

// Delta ops: a run of the base's chunks, or chunks given in full.
const (
	deltaCopy    = 1 // uvarint start, uvarint count
	deltaLiteral = 2 // uvarint count, then count × chunkRec
)

// listSum names a list: the hash of its encoding.
func listSum(l []chunks.Chunk) []byte {
	h := chunks.Sum(encodeList(l))
	return h[:]
}

// encodeDelta describes l by runs of base and literal chunks. A chunk of l
// found in base continues the run before it when it is the next of base,
// else starts a run at its first place in base.
func encodeDelta(base, l []chunks.Chunk) []byte {
	first := make(map[chunks.Hash]int, len(base))
	for i := len(base) - 1; i >= 0; i-- {
		first[base[i].Hash] = i
	}
	var out []byte
	var lits []chunks.Chunk
	start, count := 0, 0
	flushCopy := func() {
		if count > 0 {
			out = append(out, deltaCopy)
			out = binary.AppendUvarint(out, uint64(start))
			out = binary.AppendUvarint(out, uint64(count))
			count = 0
		}
	}
	flushLits := func() {
		if len(lits) > 0 {
			out = append(out, deltaLiteral)
			out = binary.AppendUvarint(out, uint64(len(lits)))
			out = append(out, encodeList(lits)...)
			lits = lits[:0]
		}
	}
	same := func(a, b chunks.Chunk) bool { return a.Hash == b.Hash && a.Length == b.Length }
	for _, c := range l {
		if count > 0 && start+count < len(base) && same(base[start+count], c) {
			count++
			continue
		}
		if i, ok := first[c.Hash]; ok && same(base[i], c) {
			flushCopy()
			flushLits()
			start, count = i, 1
			continue
		}
		flushCopy()
		lits = append(lits, c)
	}
	flushCopy()
	flushLits()
	return out
}

// decodeDelta rebuilds a list from its base and delta, refusing ops out
// of the base's bounds or a result longer than a file may have. The
// result is checked as any list is (chunks.CheckList).
func decodeDelta(base []chunks.Chunk, d []byte) ([]chunks.Chunk, error) {
	var l []chunks.Chunk
	var off int64
	add := func(c chunks.Chunk) {
		c.Offset = off
		off += int64(c.Length)
		l = append(l, c)
	}
	for len(d) > 0 {
		op := d[0]
		d = d[1:]
		a, n := binary.Uvarint(d)
		if n <= 0 {
			return nil, protof("chunk list delta: bad number")
		}
		d = d[n:]
		switch op {
		case deltaCopy:
			count, n := binary.Uvarint(d)
			if n <= 0 {
				return nil, protof("chunk list delta: bad number")
			}
			d = d[n:]
			if count == 0 || a > uint64(len(base)) || count > uint64(len(base))-a {
				return nil, protof("chunk list delta: run %d+%d of a list of %d", a, count, len(base))
			}
			if uint64(len(l))+count > maxFileChunks {
				return nil, protof("chunk list delta: more than %d chunks", maxFileChunks)
			}
			for _, c := range base[a : a+count] {
				add(c)
			}
		case deltaLiteral:
			if a == 0 || a > uint64(len(d)/chunkRec) || uint64(len(l))+a > maxFileChunks {
				return nil, protof("chunk list delta: %d literal chunks", a)
			}
			lits, err := decodeList(d[:a*chunkRec])
			if err != nil {
				return nil, err
			}
			for _, c := range lits {
				add(c)
			}
			d = d[a*chunkRec:]
		default:
			return nil, protof("chunk list delta: unknown op %d", op)
		}
	}
	if err := chunks.CheckList(l); err != nil {
		return nil, protof("chunk list delta: %v", err)
	}
	return l, nil
}
