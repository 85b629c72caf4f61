package chunks

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"golang.org/x/sys/unix"
)

func receive(t *testing.T, ix *Index, dir, rel string, size int64, r io.Reader, maxChunks int, o *AssembleOptions) ([]Chunk, Stats, error) {
	t.Helper()
	pfd, err := unix.Open(dir, unix.O_RDONLY|unix.O_DIRECTORY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(pfd)
	return ix.ReceiveAt(context.Background(), pfd, rel, size, r, maxChunks, o)
}

// A file received whole is cut as its source would cut it (the same list),
// indexed, and serves its chunks to a later assembly (a copy costs no
// fetch); a stream shorter or longer than announced, or cut into more
// chunks than allowed, lands under no real name.
func TestReceiveWhole(t *testing.T) {
	dst := t.TempDir()
	ix := openIndex(t, dst)
	data := randBytes(20, 9<<20+123)
	l, st, err := receive(t, ix, dst, "f", int64(len(data)), bytes.NewReader(data), 1<<20, nil)
	if err != nil {
		t.Fatal(err)
	}
	if want := listOf(t, data); !slices.Equal(l, want) {
		t.Fatalf("list of %d chunks, the source's has %d", len(l), len(want))
	}
	if st.Fetched != len(l) || st.FetchedBytes != int64(len(data)) {
		t.Fatalf("stats %+v", st)
	}
	mustEqualFile(t, filepath.Join(dst, "f"), data)
	noTemporaries(t, dst)
	if got, ok := ix.Lookup("f"); !ok || !slices.Equal(got, l) {
		t.Fatal("not indexed")
	}
	cst, err := ix.Assemble(context.Background(), "copy", l, nil, nil)
	if err != nil || cst.Local != len(l) {
		t.Fatalf("copy from the received file: %+v, %v", cst, err)
	}

	for _, c := range []struct {
		name      string
		size      int64
		r         io.Reader
		maxChunks int
		want      error
	}{
		{"short", int64(len(data)) + 1, bytes.NewReader(data), 1 << 20, io.ErrUnexpectedEOF},
		{"long", int64(len(data)) - 1, bytes.NewReader(data), 1 << 20, nil},
		{"too many chunks", int64(len(data)), bytes.NewReader(data), 3, ErrTooManyChunks},
		{"failing", int64(len(data)), io.MultiReader(bytes.NewReader(data[:1<<20]), iotestErr{}), 1 << 20, errTest},
	} {
		_, _, err := receive(t, ix, dst, "bad", c.size, c.r, c.maxChunks, nil)
		if err == nil || c.want != nil && !errors.Is(err, c.want) {
			t.Errorf("%s: %v, want %v", c.name, err, c.want)
		}
		if _, err := os.Lstat(filepath.Join(dst, "bad")); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("%s: the real name exists (%v)", c.name, err)
		}
	}
	pfd, err := unix.Open(dst, unix.O_RDONLY|unix.O_DIRECTORY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(pfd)
	if !HasTemp(pfd, "bad") || HasTemp(pfd, "f") {
		t.Fatal("HasTemp: want the failed receipt's temporary, and none of the completed one")
	}
	// The failed receipt's temporary serves the next assembly of "bad".
	l2 := listOf(t, data)
	st2, err := ix.Assemble(context.Background(), "bad", l2, nil, nil)
	if err != nil || st2.Resumed == 0 {
		t.Fatalf("resume from the partial: %+v, %v", st2, err)
	}
}

var errTest = errors.New("test: the stream broke")

type iotestErr struct{}

func (iotestErr) Read([]byte) (int, error) { return 0, errTest }

// BenchmarkReceive measures ReceiveAt on one stream: a file cut, hashed
// and written to a temporary (the page cache) and renamed; its
// durability (fdatasync) is left to a staged publish, as a pass does. A
// 64 MiB file, and 160 KiB ones (tree (c)'s average size).
func BenchmarkReceive(b *testing.B) {
	for _, size := range []int{64 << 20, 160 << 10} {
		b.Run(fmt.Sprintf("%dKiB", size>>10), func(b *testing.B) {
			dst := b.TempDir()
			ix := openIndex(b, dst)
			data := randBytes(4, size)
			pfd, err := unix.Open(dst, unix.O_RDONLY|unix.O_DIRECTORY, 0)
			if err != nil {
				b.Fatal(err)
			}
			defer unix.Close(pfd)
			b.SetBytes(int64(len(data)))
			for b.Loop() {
				_, st, err := ix.ReceiveAt(context.Background(), pfd, "f", int64(len(data)), bytes.NewReader(data), 1<<20, &AssembleOptions{Defer: true})
				if err != nil {
					b.Fatal(err)
				}
				if err := unix.Unlinkat(pfd, st.Staged.tmp, 0); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
