package chunks

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"sync"
	"testing"
)

// randBytes is n deterministic incompressible bytes.
func randBytes(seed uint64, n int) []byte {
	var s [32]byte
	s[0], s[1] = byte(seed), byte(seed>>8)
	b := make([]byte, n)
	rand.NewChaCha8(s).Read(b)
	return b
}

// textBytes is n deterministic compressible bytes.
func textBytes(seed uint64, n int) []byte {
	words := []string{"replication ", "efsd ", "chunk ", "file system ", "mount target ", "durable ", "rename\n", "the "}
	r := rand.New(rand.NewPCG(seed, 1))
	var b bytes.Buffer
	for b.Len() < n {
		b.WriteString(words[r.IntN(len(words))])
		fmt.Fprintf(&b, "%d ", r.IntN(1000))
	}
	return b.Bytes()[:n]
}

func writeFile(t testing.TB, path string, b []byte) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
}

func listOf(t testing.TB, b []byte) []Chunk {
	t.Helper()
	l, err := List(bytes.NewReader(b), int64(len(b)))
	if err != nil {
		t.Fatal(err)
	}
	return l
}

// source serves chunks from the files of a source tree: the sending
// side's half of the test transport. Bytes are re-hashed before they
// are sent (the file may have changed since it was listed).
type source struct {
	root string
	mu   sync.Mutex
	at   map[Hash]Loc
}

func newSource(root string) *source { return &source{root: root, at: map[Hash]Loc{}} }

// list chunks the source file rel and remembers where its chunks are.
func (s *source) list(t testing.TB, rel string) []Chunk {
	t.Helper()
	f, err := os.Open(filepath.Join(s.root, rel))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		t.Fatal(err)
	}
	l, err := List(f, st.Size())
	if err != nil {
		t.Fatal(err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, c := range l {
		s.at[c.Hash] = Loc{Path: rel, Offset: c.Offset, Length: c.Length}
	}
	return l
}

// serve encodes the wanted chunks to e.
func (s *source) serve(want []Chunk, e *Encoder) error {
	buf := make([]byte, MaxSize)
	for _, c := range want {
		s.mu.Lock()
		loc, ok := s.at[c.Hash]
		s.mu.Unlock()
		if !ok {
			return fmt.Errorf("source has no chunk %s", c.Hash)
		}
		f, err := os.Open(filepath.Join(s.root, loc.Path))
		if err != nil {
			return err
		}
		b := buf[:loc.Length]
		_, err = f.ReadAt(b, loc.Offset)
		f.Close()
		if err != nil {
			return err
		}
		if Sum(b) != c.Hash {
			return fmt.Errorf("source chunk %s changed", c.Hash)
		}
		if err := e.Write(c.Hash, b); err != nil {
			return err
		}
	}
	return nil
}

// pipeSupplier carries chunks from a source through the wire encoding over
// an io.Pipe, counting the bytes that crossed. failAfter > 0 cuts the
// stream after that many chunks (a broken connection).
type pipeSupplier struct {
	src       *source
	failAfter int
	mu        sync.Mutex
	wire      int64
	chunks    int
}

func (p *pipeSupplier) Fetch(ctx context.Context, want []Chunk, deliver func(Hash, []byte) error) error {
	pr, pw := io.Pipe()
	go func() {
		e, err := NewEncoder(pw)
		if err == nil {
			w := want
			if p.failAfter > 0 && len(w) > p.failAfter {
				w = w[:p.failAfter]
			}
			err = p.src.serve(w, e)
			e.Close()
			if err == nil && len(w) < len(want) {
				err = fmt.Errorf("connection reset after %d chunks", len(w))
			}
		}
		pw.CloseWithError(err)
	}()
	defer pr.Close()
	d, err := NewDecoder(pr)
	if err != nil {
		return err
	}
	defer d.Close()
	defer func() {
		p.mu.Lock()
		p.wire += d.Wire
		p.mu.Unlock()
	}()
	for range want {
		h, b, err := d.Next()
		if err != nil {
			return err
		}
		p.mu.Lock()
		p.chunks++
		p.mu.Unlock()
		if err := deliver(h, b); err != nil {
			return err
		}
	}
	return nil
}

func (p *pipeSupplier) counts() (int, int64) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.chunks, p.wire
}

func openIndex(t testing.TB, dir string) *Index {
	t.Helper()
	ix, err := OpenIndex(dir)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ix.Close() })
	if err := ix.Scan(context.Background()); err != nil {
		t.Fatal(err)
	}
	return ix
}

func mustEqualFile(t testing.TB, path string, want []byte) {
	t.Helper()
	got, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("%s: %d bytes differ from the %d wanted", path, len(got), len(want))
	}
}
