package chunks

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"
)

// The test transport: the source serves POST /chunks, whose body is the
// wanted chunks (hash, length: 36 bytes each, at most maxWant), answering
// with a stream of frames; HTTP/2 without TLS on loopback. The real one
// (mutual TLS, SigV4, the index exchange) is the next step of issue #10.
const maxWant = 4096

func chunkHandler(s *source) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPost || r.URL.Path != "/chunks" {
			http.NotFound(w, r)
			return
		}
		body, err := io.ReadAll(io.LimitReader(r.Body, maxWant*36+1))
		if err != nil || len(body)%36 != 0 || len(body) > maxWant*36 {
			http.Error(w, "bad chunk request", http.StatusBadRequest)
			return
		}
		want := make([]Chunk, 0, len(body)/36)
		for b := body; len(b) > 0; b = b[36:] {
			var c Chunk
			copy(c.Hash[:], b)
			c.Length = int(binary.BigEndian.Uint32(b[32:]))
			want = append(want, c)
		}
		e, err := NewEncoder(w)
		if err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		defer e.Close()
		w.Header().Set("Content-Type", "application/x-efsd-chunks")
		s.serve(want, e) // an error cuts the stream: the client sees it short
	})
}

// httpSupplier fetches chunks from a chunkHandler, counting the bytes that
// crossed in both directions.
type httpSupplier struct {
	c          *http.Client
	url        string
	sent, recv atomic.Int64
}

type countingReader struct {
	r io.Reader
	n *atomic.Int64
}

func (c countingReader) Read(b []byte) (int, error) {
	n, err := c.r.Read(b)
	c.n.Add(int64(n))
	return n, err
}

func (h *httpSupplier) Fetch(ctx context.Context, want []Chunk, deliver func(Hash, []byte) error) error {
	for len(want) > 0 {
		batch := want[:min(len(want), maxWant)]
		want = want[len(batch):]
		body := make([]byte, 0, len(batch)*36)
		for _, c := range batch {
			body = append(body, c.Hash[:]...)
			body = binary.BigEndian.AppendUint32(body, uint32(c.Length))
		}
		h.sent.Add(int64(len(body)))
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, h.url+"/chunks", bytes.NewReader(body))
		if err != nil {
			return err
		}
		resp, err := h.c.Do(req)
		if err != nil {
			return err
		}
		if resp.StatusCode != http.StatusOK || resp.ProtoMajor != 2 {
			resp.Body.Close()
			return fmt.Errorf("chunks: %s over %s", resp.Status, resp.Proto)
		}
		d, err := NewDecoder(countingReader{resp.Body, &h.recv})
		if err != nil {
			resp.Body.Close()
			return err
		}
		for range batch {
			hh, b, err := d.Next()
			if err == nil {
				err = deliver(hh, b)
			}
			if err != nil {
				d.Close()
				resp.Body.Close()
				return err
			}
		}
		d.Close()
		resp.Body.Close()
	}
	return nil
}

func h2cPair(t *testing.T, s *source) *httpSupplier {
	srv := httptest.NewUnstartedServer(chunkHandler(s))
	srv.Config.Protocols = new(http.Protocols)
	srv.Config.Protocols.SetUnencryptedHTTP2(true)
	srv.Start()
	t.Cleanup(srv.Close)
	tr := &http.Transport{Protocols: new(http.Protocols)}
	tr.Protocols.SetUnencryptedHTTP2(true)
	t.Cleanup(tr.CloseIdleConnections)
	return &httpSupplier{c: &http.Client{Transport: tr}, url: srv.URL}
}

// replicate makes dst hold src's regular files by chunk lists (directories
// created, deletions left to the caller's tree walk), then syncs.
func replicate(t *testing.T, s *source, ix *Index, dst string, sup Supplier) (total Stats, unchanged int) {
	t.Helper()
	err := filepath.WalkDir(s.root, func(p string, d fs.DirEntry, err error) error {
		if err != nil || p == s.root {
			return err
		}
		rel, _ := filepath.Rel(s.root, p)
		if d.IsDir() {
			return os.MkdirAll(filepath.Join(dst, rel), 0o755)
		}
		st, err := ix.Assemble(context.Background(), rel, s.list(t, rel), sup, nil)
		if err != nil {
			return err
		}
		if st.Unchanged {
			unchanged++
		}
		total.Local += st.Local
		total.Fetched += st.Fetched
		total.LocalBytes += st.LocalBytes
		total.FetchedBytes += st.FetchedBytes
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := ix.Sync(); err != nil {
		t.Fatal(err)
	}
	return total, unchanged
}

func sameTrees(t *testing.T, a, b string) {
	t.Helper()
	n := 0
	filepath.WalkDir(a, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		rel, _ := filepath.Rel(a, p)
		want, _ := os.ReadFile(p)
		mustEqualFile(t, filepath.Join(b, rel), want)
		n++
		return nil
	})
	if n == 0 {
		t.Fatal("empty tree")
	}
}

// End to end over HTTP/2 on loopback: an initial copy, then a pass after
// changes sends only the changed chunks; renamed and copied files cost no
// chunk bytes.
func TestTreeOverHTTP2(t *testing.T) {
	src, dst := t.TempDir(), t.TempDir()
	s := newSource(src)
	big := randBytes(70, 20<<20)
	writeFile(t, filepath.Join(src, "data/big.bin"), big)
	writeFile(t, filepath.Join(src, "data/log.txt"), textBytes(71, 3<<20))
	for i := range 50 {
		writeFile(t, filepath.Join(src, fmt.Sprintf("small/%02d", i)), randBytes(uint64(100+i), 4096))
	}
	writeFile(t, filepath.Join(src, "empty"), nil)
	sup := h2cPair(t, s)
	ix := openIndex(t, dst)

	st, _ := replicate(t, s, ix, dst, sup)
	sameTrees(t, src, dst)
	initial := sup.recv.Load()
	raw := int64(len(big) + 3<<20 + 50*4096)
	t.Logf("initial copy: %d chunks, %d bytes of content, %d bytes received (log compressed), %d sent", st.Fetched, st.FetchedBytes, initial, sup.sent.Load())
	if st.FetchedBytes != raw || initial >= raw {
		t.Fatalf("initial: %+v, %d on the wire for %d", st, initial, raw)
	}

	// Changes: 64 KiB overwritten in the middle of big, big renamed, log
	// copied, one small file rewritten.
	copy(big[10<<20:], randBytes(72, 64<<10))
	writeFile(t, filepath.Join(src, "data/big.bin"), big)
	os.Rename(filepath.Join(src, "data/big.bin"), filepath.Join(src, "data/renamed.bin"))
	log, _ := os.ReadFile(filepath.Join(src, "data/log.txt"))
	writeFile(t, filepath.Join(src, "copy/log.txt"), log)
	writeFile(t, filepath.Join(src, "small/07"), randBytes(200, 4096))
	sent0 := sup.sent.Load()

	st, unchanged := replicate(t, s, ix, dst, sup)
	os.Remove(filepath.Join(dst, "data/big.bin")) // the tree walk's deletion
	sameTrees(t, src, dst)
	recv := sup.recv.Load() - initial
	t.Logf("after changes: %d chunks fetched (%d bytes), %d bytes received, %d sent; %d chunks (%d bytes) local; %d files untouched",
		st.Fetched, st.FetchedBytes, recv, sup.sent.Load()-sent0, st.Local, st.LocalBytes, unchanged)
	if unchanged != 51 || st.Fetched > 5 || recv > 2*MaxSize+4096+10*headerSize {
		t.Fatalf("second pass fetched %+v, %d bytes on the wire", st, recv)
	}
}
