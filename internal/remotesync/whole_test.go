package remotesync

import (
	"context"
	"errors"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/efsd/efsd/internal/chunks"
)

// settled waits until every file under dir was last changed long enough
// ago (twice racyWindow) for a pass to send it whole: a test's files are
// brand new.
func settled(t testing.TB, dir string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		var newest int64
		err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			var st unix.Stat_t
			if err := unix.Lstat(path, &st); err != nil {
				return err
			}
			newest = max(newest, st.Ctim.Nano())
			return nil
		})
		must(t, err)
		if time.Now().UnixNano()-newest > 2*int64(racyWindow(newest)) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatal("files still too recent")
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// A first copy to an empty destination sends the larger files whole — not
// the copies among them (sent once) — and keeps the lists the receiver
// cut: the next passes send nothing, then a delta.
func TestWholeFirstCopy(t *testing.T) {
	t.Parallel()
	p := newPair(t)
	files := map[string][]byte{
		"a":        randBytes(1, 5<<20),
		"b/c":      randBytes(2, 9<<20+17),
		"dup1":     randBytes(3, 3<<20),
		"d/dup2":   randBytes(3, 3<<20),
		"samesize": randBytes(4, 3<<20), // the copies' size, other bytes
		"s":        randBytes(5, 10<<10),
	}
	var total int64
	for name, b := range files {
		writeFile(t, p.src+"/"+name, b, 0o644, old)
		total += int64(len(b))
	}
	settled(t, p.src)

	st := p.mustPass(nil, PassOptions{})
	t.Logf("first copy: %d files whole, %d chunks, %d bytes sent of %d, %d on the wire", st.FilesWhole, st.ChunksSent, st.BytesSent, total, st.WireBytes)
	if !st.Full || st.FilesWhole != 3 || st.FilesCopied != int64(len(files)) {
		t.Fatalf("first copy: %+v", st)
	}
	if once := total - 3<<20; st.BytesSent < once || st.BytesSent > once+64<<10 {
		t.Fatalf("%d bytes sent, want the files' %d with the copy once", st.BytesSent, once)
	}
	for _, name := range []string{"a", "b/c", "samesize", "dup1"} {
		want, err := chunks.List(bytesReader(files[name]), int64(len(files[name])))
		must(t, err)
		if got := p.s.st.Entries[name]; got == nil || !slices.Equal(got.List, want) || got.Racy {
			t.Fatalf("%s: the sender's state does not hold its list", name)
		}
	}

	if st := p.mustPass(nil, PassOptions{}); st.BytesSent != 0 || st.Full || st.FilesWhole != 0 {
		t.Fatalf("pass without change: %+v", st)
	}

	b := files["b/c"]
	copy(b[4<<20:], randBytes(7, 100<<10))
	writeFile(t, p.src+"/b/c", b, 0o644, old)
	writeFile(t, p.src+"/new", randBytes(8, 2<<20), 0o644, old)
	settled(t, p.src)
	st = p.mustPass(nil, PassOptions{})
	t.Logf("edit and a new file: %d whole, %d bytes sent, %d local chunks", st.FilesWhole, st.BytesSent, st.ChunksLocal)
	if st.FilesWhole != 0 || st.Full || st.BytesSent > 2<<20+1<<20 || st.ChunksLocal < 100 {
		t.Fatalf("delta after the first copy: %+v", st)
	}
}

// markWhole offers whole the files it can: not one written a moment ago
// (the check after reading could miss a write during the read), not a
// hard-link group, not small ones, not probable copies; and a file of a
// copy's size with other bytes is.
func TestMarkWhole(t *testing.T) {
	t.Parallel()
	p := newPair(t)
	for name, seed := range map[string]uint64{"a": 1, "copy1": 2, "copy2": 2, "other": 3, "linked": 4} {
		writeFile(t, p.src+"/"+name, randBytes(seed, 1<<20), 0o644, old)
	}
	must(t, os.Link(p.src+"/linked", p.src+"/linked2"))
	writeFile(t, p.src+"/small", randBytes(5, inlineMax), 0o644, old)
	settled(t, p.src)
	writeFile(t, p.src+"/recent", randBytes(6, 1<<20), 0o644, old)
	written := time.Now() // the clock markWhole sees: "recent" was just written
	fd, err := unix.Open(p.src, unix.O_RDONLY|unix.O_DIRECTORY, 0)
	must(t, err)
	defer unix.Close(fd)
	ps := &pass{s: p.s, ctx: context.Background(), rootFd: fd, cur: map[string]*srcEntry{},
		wallClock: func() time.Time { return written }}
	must(t, ps.walk())
	ps.markWhole()
	for name, want := range map[string]bool{"a": true, "other": true, "copy1": false, "copy2": false,
		"linked": false, "small": false, "recent": false} {
		if e := ps.cur[name]; e == nil || e.whole != want {
			t.Errorf("%s: whole %v, want %v", name, e != nil && e.whole, want)
		}
	}
}

// The first files of a replication whose first pass found the source
// empty (a delta pass, the receiver holding no file) are sent whole too.
func TestWholeIntoEmptyDestination(t *testing.T) {
	t.Parallel()
	p := newPair(t)
	must(t, os.Mkdir(p.src+"/d", 0o755))
	if st := p.mustPass(nil, PassOptions{}); !st.Full || st.FilesWhole != 0 {
		t.Fatalf("first pass: %+v", st)
	}
	writeFile(t, p.src+"/d/a", randBytes(11, 2<<20), 0o644, old)
	writeFile(t, p.src+"/b", randBytes(12, 3<<20), 0o644, old)
	settled(t, p.src)
	st := p.mustPass(nil, PassOptions{})
	if st.Full || st.FilesWhole != 2 || st.FilesCopied != 2 {
		t.Fatalf("second pass: %+v", st)
	}
	// Once the receiver holds files, new ones are chunked (they may be
	// copies of what it holds).
	writeFile(t, p.src+"/c", randBytes(13, 2<<20), 0o644, old)
	settled(t, p.src)
	if st := p.mustPass(nil, PassOptions{}); st.FilesWhole != 0 || st.FilesCopied != 1 {
		t.Fatalf("third pass: %+v", st)
	}
}

// A delta offering files whole to a receiver that lost its state starts
// again as a full listing: the receiver holds a file, so nothing goes
// whole, and the bytes it holds under another name do not cross.
func TestWholeThenFullListing(t *testing.T) {
	t.Parallel()
	p := newPair(t)
	must(t, os.Mkdir(p.src+"/d", 0o755))
	p.mustPass(nil, PassOptions{})
	a, b := randBytes(14, 4<<20), randBytes(15, 3<<20)
	writeFile(t, p.src+"/d/a", a, 0o644, old)
	writeFile(t, p.src+"/b", b, 0o644, old)
	must(t, p.r.Close())
	writeFile(t, p.dst+"/elsewhere", a, 0o644, old)
	must(t, os.Remove(p.rcState))
	must(t, os.Remove(p.rcState+".index")) // rebuilt by scanning: it finds "elsewhere"
	p.r = nil
	p.openReceiver()
	settled(t, p.src)
	st := p.mustPass(nil, PassOptions{})
	t.Logf("%+v", st)
	if !st.Full || st.FilesWhole != 0 || st.FilesCopied != 2 || st.BytesSent > int64(len(b))+64<<10 {
		t.Fatalf("pass after the receiver lost its state: %+v", st)
	}
}

func bytesReader(b []byte) io.Reader { return &sliceReader{b} }

type sliceReader struct{ b []byte }

func (s *sliceReader) Read(p []byte) (int, error) {
	if len(s.b) == 0 {
		return 0, io.EOF
	}
	n := copy(p, s.b)
	s.b = s.b[n:]
	return n, nil
}

// hookTransport runs before(op) ahead of each request.
type hookTransport struct {
	Transport
	before func(op string)
}

func (h hookTransport) RoundTrip(ctx context.Context, op string, body io.Reader) (io.ReadCloser, error) {
	h.before(op)
	return h.Transport.RoundTrip(ctx, op, body)
}

// A file written while it is sent whole ends the pass with
// ErrSourceChanged, nothing under its real name; the next pass sends what
// it holds then.
func TestWholeChangedWhileSent(t *testing.T) {
	t.Parallel()
	p := newPair(t)
	writeFile(t, p.src+"/a", randBytes(9, 3<<20), 0o644, old)
	settled(t, p.src)
	changed := false
	tr := hookTransport{pipeTransport{p.r}, func(op string) {
		if op == OpChunks && !changed {
			changed = true
			f, err := os.OpenFile(p.src+"/a", os.O_WRONLY|os.O_APPEND, 0)
			must(t, err)
			_, err = f.Write([]byte("more"))
			must(t, err)
			must(t, f.Close())
		}
	}}
	st, err := p.pass(tr, PassOptions{})
	if !errors.Is(err, ErrSourceChanged) || !changed {
		t.Fatalf("pass: %v (%+v), want ErrSourceChanged", err, st)
	}
	if _, err := os.Lstat(p.dst + "/a"); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("a file under its real name: %v", err)
	}
	p.mustPass(tr, PassOptions{})
}

// A first copy cut in the middle of a file sent whole resumes from what
// landed: the next pass sends the file's list (the receiver wants it: it
// holds part of it) and only the chunks it lacks.
func TestWholeInterruptedResumes(t *testing.T) {
	t.Parallel()
	p := newPair(t)
	const size = 16 << 20
	writeFile(t, p.src+"/big", randBytes(10, size), 0o644, old)
	settled(t, p.src)
	tr := &cutTransport{r: p.r, budget: 6 << 20}
	st, err := p.pass(tr, PassOptions{})
	if err == nil {
		t.Fatal("pass through a cut connection succeeded")
	}
	if _, err := os.Lstat(p.dst + "/big"); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("a file under its real name: %v", err)
	}
	first := st.BytesSent
	tr.mu.Lock()
	tr.budget = -1
	tr.mu.Unlock()
	st = p.mustPass(tr, PassOptions{})
	t.Logf("cut after %d bytes sent; then %d bytes, %d whole, %d chunks local", first, st.BytesSent, st.FilesWhole, st.ChunksLocal)
	// What landed (all but the chunker's read-ahead and the frame in
	// flight when the connection broke) is not sent again.
	if st.FilesWhole != 0 || st.BytesSent > size-3<<20 {
		t.Fatalf("resumed pass: %+v", st)
	}
}
