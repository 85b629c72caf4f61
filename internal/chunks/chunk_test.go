package chunks

import (
	"bytes"
	fastcdc "github.com/jotfs/fastcdc-go"
	"testing"
)

// An insertion in the middle of a file changes only the chunks around it:
// boundaries are content-defined, not offsets.
func TestBoundariesStableUnderInsert(t *testing.T) {
	orig := randBytes(1, 32<<20)
	ins := append(append(append([]byte{}, orig[:16<<20]...), randBytes(2, 1000)...), orig[16<<20:]...)
	a, b := listOf(t, orig), listOf(t, ins)
	if err := CheckList(a); err != nil {
		t.Fatal(err)
	}
	if Size(a) != int64(len(orig)) || Size(b) != int64(len(ins)) {
		t.Fatalf("sizes %d, %d", Size(a), Size(b))
	}
	sz := sizesFor(int64(len(orig)))
	have := map[Hash]bool{}
	for _, c := range a {
		have[c.Hash] = true
		if c.Length > sz.max || (c.Length < sz.min && c.Offset+int64(c.Length) != int64(len(orig))) {
			t.Fatalf("chunk of %d bytes", c.Length)
		}
	}
	changed := 0
	for _, c := range b {
		if !have[c.Hash] {
			changed++
		}
	}
	t.Logf("%d chunks (avg %d KiB), %d changed by a 1000-byte insert", len(a), len(orig)/len(a)>>10, changed)
	if changed < 1 || changed > 2 {
		t.Fatalf("%d chunks changed, want 1 or 2", changed)
	}
	if avg := len(orig) / len(a); avg < sz.avg/2 || avg > 2*sz.avg {
		t.Fatalf("%d chunks for 32 MiB: average far from %d", len(a), sz.avg)
	}
}

// A 1 MiB overwrite in the middle of a 64 MiB file changes, on average
// over files, at most 2 MiB of chunks: what replication resends for it.
// (1.5 MiB on these files; 2.3 MiB with the 1 MiB average chunks every
// file had before. One file varies with where its cuts fall: 1.2 to 3 MiB
// over more files, 1.6 MiB on average.)
func TestMidFileOverwriteCost(t *testing.T) {
	const size, edit, files = 64 << 20, 1 << 20, 4
	total := 0
	for seed := uint64(10); seed < 10+files; seed++ {
		orig := randBytes(seed, size)
		mod := bytes.Clone(orig)
		copy(mod[size/2-edit/2:], randBytes(seed+100, edit))
		have := map[Hash]bool{}
		for _, c := range listOf(t, orig) {
			have[c.Hash] = true
		}
		changed := 0
		for _, c := range listOf(t, mod) {
			if !have[c.Hash] {
				changed += c.Length
			}
		}
		t.Logf("file %d: %d KiB of chunks changed by a %d KiB overwrite", seed, changed>>10, edit>>10)
		total += changed
	}
	if mean := total / files; mean > 2*edit {
		t.Fatalf("%d KiB of chunks changed by a 1 MiB overwrite on average, want at most 2048 KiB", mean>>10)
	}
}

func TestCheckListRefusesNonFiles(t *testing.T) {
	for name, l := range map[string][]Chunk{
		"gap":     {{Offset: 0, Length: 10}, {Offset: 11, Length: 10}},
		"overlap": {{Offset: 0, Length: 10}, {Offset: 5, Length: 10}},
		"start":   {{Offset: 1, Length: 10}},
		"empty":   {{Offset: 0, Length: 0}},
		"huge":    {{Offset: 0, Length: MaxSize + 1}},
	} {
		if CheckList(l) == nil {
			t.Errorf("%s: accepted", name)
		}
	}
	if err := CheckList(nil); err != nil {
		t.Errorf("empty file: %v", err)
	}
}

// BenchmarkChunkHash measures FastCDC chunking plus BLAKE3 of every chunk.
func BenchmarkChunkHash(b *testing.B) {
	data := randBytes(3, 64<<20)
	b.SetBytes(int64(len(data)))
	b.ResetTimer()
	for b.Loop() {
		if err := Split(bytes.NewReader(data), int64(len(data)), func(Chunk, []byte) error { return nil }); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkParts separates the two costs of BenchmarkChunkHash.
func BenchmarkParts(b *testing.B) {
	data := randBytes(3, 64<<20)
	b.Run("fastcdc", func(b *testing.B) {
		b.SetBytes(int64(len(data)))
		for b.Loop() {
			sz := sizesFor(int64(len(data)))
			ch, err := fastcdc.NewChunker(bytes.NewReader(data), fastcdc.Options{MinSize: sz.min, AverageSize: sz.avg, MaxSize: sz.max, BufSize: 2 * sz.max})
			if err != nil {
				b.Fatal(err)
			}
			for {
				if _, err := ch.Next(); err != nil {
					break
				}
			}
		}
	})
	b.Run("cut", func(b *testing.B) {
		b.SetBytes(int64(len(data)))
		sz := sizesFor(int64(len(data)))
		for b.Loop() {
			for rest := data; len(rest) > 0; {
				rest = rest[cut(rest, &sz):]
			}
		}
	})
	b.Run("blake3", func(b *testing.B) {
		b.SetBytes(int64(len(data)))
		for b.Loop() {
			Sum(data)
		}
	})
}
