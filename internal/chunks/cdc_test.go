package chunks

import (
	"bytes"
	"errors"
	"io"
	"slices"
	"sync"
	"testing"

	fastcdc "github.com/jotfs/fastcdc-go"
)

// The chunker cuts where fastcdc-go with each set's options cuts: the sets
// are FastCDC as published.
func TestChunkerMatchesFastCDC(t *testing.T) {
	for _, set := range []struct {
		name string
		sz   sizes
	}{{"small", sizesFor(LargeFile)}, {"large", sizesFor(LargeFile + 1)}} {
		sz := set.sz
		for i, data := range [][]byte{nil, randBytes(80, 100), randBytes(81, sz.min+1), randBytes(82, 23<<20), textBytes(83, 9<<20), make([]byte, 9<<20)} {
			ref, err := fastcdc.NewChunker(bytes.NewReader(data), fastcdc.Options{MinSize: sz.min, AverageSize: sz.avg, MaxSize: sz.max,
				Normalization: sz.level, BufSize: 2 * sz.max})
			if err != nil {
				t.Fatal(err)
			}
			var want []Chunk
			for {
				c, err := ref.Next()
				if errors.Is(err, io.EOF) {
					break
				}
				if err != nil {
					t.Fatal(err)
				}
				want = append(want, Chunk{Offset: int64(c.Offset), Length: c.Length, Hash: Sum(c.Data)})
			}
			got := listWith(t, data, sz)
			if len(got) != len(want) {
				t.Fatalf("%s set, input %d: %d chunks, fastcdc-go %d", set.name, i, len(got), len(want))
			}
			for k := range got {
				if got[k] != want[k] {
					t.Fatalf("%s set, input %d, chunk %d: %+v, fastcdc-go %+v", set.name, i, k, got[k], want[k])
				}
			}
		}
	}
}

// List chooses the set from the size it is given: a file above LargeFile
// is cut as the large set cuts, others as the small set cuts, and no
// chunk is longer than its set's maximum.
func TestListChoosesSetBySize(t *testing.T) {
	data := randBytes(85, 24<<20)
	for _, size := range []int64{int64(len(data)), LargeFile, LargeFile + 1, 1 << 50} {
		sz := sizesFor(size)
		l, err := List(bytes.NewReader(data), size)
		if err != nil {
			t.Fatal(err)
		}
		if want := listWith(t, data, sz); !slices.Equal(l, want) {
			t.Fatalf("size %d: not cut with the set of max %d", size, sz.max)
		}
		for _, c := range l {
			if c.Length > sz.max {
				t.Fatalf("size %d: chunk of %d bytes, set max %d", size, c.Length, sz.max)
			}
		}
	}
	if small, large := sizesFor(LargeFile), sizesFor(LargeFile+1); small.avg != 64<<10 || small.level != 1 || large.avg != 1<<20 || large.max != MaxSize {
		t.Fatalf("sets %+v, %+v", small, large)
	}
}

// listWith is the list of b cut with the set sz.
func listWith(t testing.TB, b []byte, sz sizes) []Chunk {
	t.Helper()
	return listFrom(t, newChunker(bytes.NewReader(b), sz, int64(len(b)), nil))
}

// listFrom is the list ch cuts.
func listFrom(t testing.TB, ch *chunker) []Chunk {
	t.Helper()
	var l []Chunk
	for {
		off, data, err := ch.next()
		if errors.Is(err, io.EOF) {
			return l
		}
		if err != nil {
			t.Fatal(err)
		}
		l = append(l, Chunk{Offset: off, Length: len(data), Hash: Sum(data)})
	}
}

// Chunking is safe for concurrent use (run with -race).
func TestSplitConcurrent(t *testing.T) {
	data := randBytes(84, 3<<20)
	want := listOf(t, data)
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			l, err := List(bytes.NewReader(data), int64(len(data)))
			if err != nil || len(l) != len(want) || l[len(l)-1] != want[len(want)-1] {
				t.Errorf("concurrent list differs: %v", err)
			}
		})
	}
	wg.Wait()
}

// A chunker's buffer taken from a pool, used by a larger file before, or
// grown from nothing for a size not given, cuts as a buffer of its own.
func TestChunkerBuffers(t *testing.T) {
	var pool sync.Pool
	for i, size := range []int{5 << 20, 100 << 10, 3<<20 + 7, 70 << 10, chunkerBuf, chunkerBuf + 1, 64<<10 - 1, 9 << 20} {
		data := randBytes(uint64(90+i), size)
		sz := sizesFor(int64(size))
		want := listWith(t, data, sz)
		ch := newChunker(bytes.NewReader(data), sz, int64(size), &pool)
		if got := listFrom(t, ch); !slices.Equal(got, want) {
			t.Fatalf("size %d, pooled buffer: cut differently", size)
		}
		ch.release(&pool)
		if got := listFrom(t, newChunker(bytes.NewReader(data), sz, -1, nil)); !slices.Equal(got, want) {
			t.Fatalf("size %d, size unknown: cut differently", size)
		}
	}
}
