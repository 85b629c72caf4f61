package remotesync

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/efsd/efsd/internal/chunks"
)

func testList(r *rand.Rand, n int) []chunks.Chunk {
	l := make([]chunks.Chunk, n)
	var off int64
	for i := range l {
		l[i].Length = 1 + r.IntN(chunks.MaxSize)
		l[i].Offset = off
		off += int64(l[i].Length)
		for j := range l[i].Hash {
			l[i].Hash[j] = byte(r.Uint32())
		}
	}
	return l
}

func renumber(l []chunks.Chunk) []chunks.Chunk {
	out := slices.Clone(l)
	var off int64
	for i := range out {
		out[i].Offset = off
		off += int64(out[i].Length)
	}
	return out
}

// Edits of every kind (insertions, deletions, replacements, moves,
// duplicates) come back as they were, and a local edit costs about the
// chunks it changed.
func TestListDeltaRoundTrip(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	for range 300 {
		base := testList(r, r.IntN(200))
		l := slices.Clone(base)
		for range r.IntN(5) {
			switch i := r.IntN(len(l) + 1); r.IntN(4) {
			case 0: // insert new chunks
				l = slices.Insert(l, i, testList(r, 1+r.IntN(3))...)
			case 1: // delete
				if i < len(l) {
					l = slices.Delete(l, i, min(len(l), i+1+r.IntN(3)))
				}
			case 2: // duplicate a run of base
				if len(base) > 0 {
					j := r.IntN(len(base))
					l = slices.Insert(l, i, base[j:min(len(base), j+1+r.IntN(4))]...)
				}
			case 3: // replace
				if i < len(l) {
					l[i] = testList(r, 1)[0]
				}
			}
		}
		l = renumber(l)
		d := encodeDelta(base, l)
		got, err := decodeDelta(base, d)
		if err != nil {
			t.Fatalf("decode: %v", err)
		}
		if !slices.Equal(got, l) && !(len(got) == 0 && len(l) == 0) {
			t.Fatalf("round trip: got %d chunks, want %d", len(got), len(l))
		}
	}

	base := testList(r, 8192) // a 1 GiB file's list
	l := slices.Clone(base)
	copy(l[4000:], testList(r, 10))
	d := encodeDelta(base, renumber(l))
	if len(d) > 12*chunkRec {
		t.Fatalf("ten chunks changed in 8192: a delta of %d bytes", len(d))
	}
}

// Deltas from a hostile peer are refused before anything is allocated
// beyond their bounds.
func TestListDeltaHostile(t *testing.T) {
	base := testList(rand.New(rand.NewPCG(3, 4)), 10)
	u := binary.AppendUvarint
	lit := encodeList(base[:1])
	for name, d := range map[string][]byte{
		"run past the end":      u(u([]byte{deltaCopy}, 5), 6),
		"empty run":             u(u([]byte{deltaCopy}, 0), 0),
		"huge run":              u(u([]byte{deltaCopy}, 1), 1<<62),
		"start overflows":       u(u([]byte{deltaCopy}, 1<<63), 1<<63),
		"literals not there":    append(u([]byte{deltaLiteral}, 2), lit...),
		"huge literal count":    append(u([]byte{deltaLiteral}, 1<<40), lit...),
		"zero literals":         u([]byte{deltaLiteral}, 0),
		"truncated number":      {deltaCopy, 0x80},
		"unknown op":            u([]byte{9}, 1),
		"zero-length literal":   append(u([]byte{deltaLiteral}, 1), make([]byte, chunkRec)...),
		"too many chunks total": bytes.Repeat(u(u([]byte{deltaCopy}, 0), 10), maxFileChunks/10+1),
	} {
		if _, err := decodeDelta(base, d); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

// replyWatch is a transport that notes whether a batch reply asked for
// whole lists.
type replyWatch struct {
	pipeTransport
	relisted atomic.Int64
}

func (w *replyWatch) RoundTrip(ctx context.Context, op string, body io.Reader) (io.ReadCloser, error) {
	rc, err := w.pipeTransport.RoundTrip(ctx, op, body)
	if err != nil || op != OpBatch {
		return rc, err
	}
	b, _ := io.ReadAll(rc)
	if strings.Contains(string(b), `"relist"`) {
		w.relisted.Add(1)
	}
	return io.NopCloser(bytes.NewReader(b)), nil
}

// A changed file's list goes as a delta: editing 1 MiB of a 64 MiB file
// puts little more than the changed chunks on the wire. A receiver whose
// index does not hold the delta's base asks for the whole list, and the
// pass still converges.
func TestListDeltaOnTheWire(t *testing.T) {
	t.Parallel()
	p := newPair(t)
	big := randBytes(5, 64<<20)
	writeFile(t, p.src+"/big", big, 0o644, old)
	p.mustPass(nil, PassOptions{})

	edit := func(seed uint64) {
		copy(big[20<<20:], randBytes(seed, 1<<20))
		f, err := os.OpenFile(p.src+"/big", os.O_WRONLY, 0)
		must(t, err)
		_, err = f.WriteAt(big[20<<20:21<<20], 20<<20)
		must(t, err)
		must(t, f.Close())
	}
	edit(6)
	w := &replyWatch{pipeTransport: pipeTransport{p.r}}
	st := p.mustPass(w, PassOptions{})
	t.Logf("edit: %d bytes of chunk frames, %d on the wire", st.BytesSent, st.WireBytes)
	// The whole list would be 512 chunks × 36 bytes, base64: 24 KiB.
	if over := st.WireBytes - st.BytesSent; over > 6<<10 || w.relisted.Load() != 0 {
		t.Fatalf("edit: %d bytes on the wire besides chunk frames, %d relists", over, w.relisted.Load())
	}

	p.r.ix.Remove("big") // the receiver no longer knows the base
	edit(7)
	st = p.mustPass(w, PassOptions{})
	if w.relisted.Load() != 1 || st.FilesCopied != 1 {
		t.Fatalf("without the base: %d relists, %+v", w.relisted.Load(), st)
	}
}

// opCount counts a transport's requests by operation.
type opCount struct {
	Transport
	mu sync.Mutex
	n  map[string]int
}

func (c *opCount) RoundTrip(ctx context.Context, op string, body io.Reader) (io.ReadCloser, error) {
	c.mu.Lock()
	c.n[op]++
	c.mu.Unlock()
	return c.Transport.RoundTrip(ctx, op, body)
}

// A tree of more entries than a batch holds goes in several batches, the
// chunks of one in flight while the next is sent, and lands identical;
// then a change to a file of each batch does too.
func TestManyBatches(t *testing.T) {
	t.Parallel()
	p := newPair(t)
	for d := range 30 {
		dir := fmt.Sprintf("%s/d%02d", p.src, d)
		must(t, os.Mkdir(dir, 0o755))
		for f := range 300 {
			writeFile(t, fmt.Sprintf("%s/f%03d", dir, f), randBytes(uint64(d*1000+f), 1+f%7*100), 0o644, old)
		}
	}
	c := &opCount{Transport: pipeTransport{p.r}, n: map[string]int{}}
	st := p.mustPass(c, PassOptions{})
	if c.n[OpBatch] < 2 || st.FilesCopied != 9000 {
		t.Fatalf("%d batches, %+v", c.n[OpBatch], st)
	}
	writeFile(t, p.src+"/d00/f000", randBytes(1, 5000), 0o644, old.Add(time.Second))
	writeFile(t, p.src+"/d29/f299", randBytes(2, 5000), 0o644, old.Add(time.Second))
	st = p.mustPass(c, PassOptions{})
	if st.FilesCopied != 2 {
		t.Fatalf("change: %+v", st)
	}
}
