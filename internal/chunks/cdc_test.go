package chunks

import (
	"bytes"
	"errors"
	"io"
	"sync"
	"testing"

	fastcdc "github.com/jotfs/fastcdc-go"
)

// The chunker cuts where fastcdc-go (with this package's options) cuts:
// lists made before it replaced the library stay valid.
func TestChunkerMatchesFastCDC(t *testing.T) {
	for i, data := range [][]byte{nil, randBytes(80, 100), randBytes(81, MinSize+1), randBytes(82, 23<<20), textBytes(83, 9<<20), make([]byte, 9<<20)} {
		ref, err := fastcdc.NewChunker(bytes.NewReader(data), fastcdc.Options{MinSize: MinSize, AverageSize: AvgSize, MaxSize: MaxSize, BufSize: 2 * MaxSize})
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
		got := listOf(t, data)
		if len(got) != len(want) {
			t.Fatalf("input %d: %d chunks, fastcdc-go %d", i, len(got), len(want))
		}
		for k := range got {
			if got[k] != want[k] {
				t.Fatalf("input %d, chunk %d: %+v, fastcdc-go %+v", i, k, got[k], want[k])
			}
		}
	}
}

// Chunking is safe for concurrent use (run with -race).
func TestSplitConcurrent(t *testing.T) {
	data := randBytes(84, 3<<20)
	want := listOf(t, data)
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			l, err := List(bytes.NewReader(data))
			if err != nil || len(l) != len(want) || l[len(l)-1] != want[len(want)-1] {
				t.Errorf("concurrent list differs: %v", err)
			}
		})
	}
	wg.Wait()
}
