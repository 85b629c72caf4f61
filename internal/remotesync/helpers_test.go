package remotesync

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// old is a fixed mtime well outside any racy window.
var old = time.Date(2021, 3, 4, 5, 6, 7, 123456789, time.UTC)

// pipeTransport hands requests straight to a Receiver, as the peer server
// does: the reply is buffered, an error becomes a RemoteError.
type pipeTransport struct{ r *Receiver }

func (p pipeTransport) RoundTrip(ctx context.Context, op string, body io.Reader) (io.ReadCloser, error) {
	var out bytes.Buffer
	if err := p.r.Serve(ctx, op, body, &out); err != nil {
		return nil, &RemoteError{Code: ErrorCode(err), Message: err.Error()}
	}
	return io.NopCloser(&out), nil
}

// cutTransport is a connection that breaks after budget bytes of request
// bodies (the receiver sees its body cut short), then refuses everything
// until reset.
type cutTransport struct {
	r      *Receiver
	mu     sync.Mutex
	budget int64 // <0: unlimited
}

type cutReader struct {
	r io.Reader
	t *cutTransport
}

var errCut = errors.New("connection reset (test)")

func (c cutReader) Read(b []byte) (int, error) {
	// The bytes are reserved before reading: concurrent requests share
	// one budget, as streams share one connection.
	c.t.mu.Lock()
	left := c.t.budget
	if left == 0 {
		c.t.mu.Unlock()
		return 0, errCut
	}
	if left > 0 {
		if int64(len(b)) > left {
			b = b[:left]
		}
		c.t.budget -= int64(len(b))
	}
	c.t.mu.Unlock()
	n, err := c.r.Read(b)
	if left > 0 {
		c.t.mu.Lock()
		if c.t.budget >= 0 {
			c.t.budget += int64(len(b) - n)
		}
		c.t.mu.Unlock()
	}
	return n, err
}

func (c *cutTransport) RoundTrip(ctx context.Context, op string, body io.Reader) (io.ReadCloser, error) {
	var out bytes.Buffer
	if err := c.r.Serve(ctx, op, cutReader{body, c}, &out); err != nil {
		if errors.Is(err, errCut) {
			return nil, err
		}
		return nil, &RemoteError{Code: ErrorCode(err), Message: err.Error()}
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.budget == 0 {
		return nil, errCut // the reply was lost
	}
	return io.NopCloser(&out), nil
}

// h2cTransport carries requests over HTTP/2 (cleartext, loopback) to a
// handler serving a Receiver the way the peer server will.
type h2cTransport struct {
	c   *http.Client
	url string
}

func newH2C(t *testing.T, r *Receiver) *h2cTransport {
	t.Helper()
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		op := strings.TrimPrefix(req.URL.Path, "/sync/")
		if req.Method != http.MethodPost || !slices.Contains(Ops, op) {
			http.NotFound(w, req)
			return
		}
		var out bytes.Buffer
		if err := r.Serve(req.Context(), op, req.Body, &out); err != nil {
			w.WriteHeader(http.StatusConflict)
			json.NewEncoder(w).Encode(RemoteError{Code: ErrorCode(err), Message: err.Error()})
			return
		}
		w.Write(out.Bytes())
	}))
	srv.Config.Protocols = new(http.Protocols)
	srv.Config.Protocols.SetUnencryptedHTTP2(true)
	srv.Start()
	t.Cleanup(srv.Close)
	tr := &http.Transport{Protocols: new(http.Protocols)}
	tr.Protocols.SetUnencryptedHTTP2(true)
	t.Cleanup(tr.CloseIdleConnections)
	return &h2cTransport{c: &http.Client{Transport: tr}, url: srv.URL}
}

func (h *h2cTransport) RoundTrip(ctx context.Context, op string, body io.Reader) (io.ReadCloser, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, h.url+"/sync/"+op, body)
	if err != nil {
		return nil, err
	}
	resp, err := h.c.Do(req)
	if err != nil {
		return nil, err
	}
	if resp.ProtoMajor != 2 {
		resp.Body.Close()
		return nil, fmt.Errorf("%s over %s", op, resp.Proto)
	}
	if resp.StatusCode != http.StatusOK {
		defer resp.Body.Close()
		var re RemoteError
		if err := json.NewDecoder(io.LimitReader(resp.Body, 1<<20)).Decode(&re); err != nil {
			return nil, fmt.Errorf("%s: %s", op, resp.Status)
		}
		return nil, &re
	}
	return resp.Body, nil
}

// randBytes is n deterministic incompressible bytes.
func randBytes(seed uint64, n int) []byte {
	var s [32]byte
	s[0], s[1] = byte(seed), byte(seed>>8)
	b := make([]byte, n)
	rand.NewChaCha8(s).Read(b)
	return b
}

func must(t testing.TB, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// writeFile writes path with raw st_mode permission bits and an mtime.
func writeFile(t testing.TB, path string, content []byte, mode uint32, mtime time.Time) {
	t.Helper()
	must(t, os.MkdirAll(filepath.Dir(path), 0o755))
	os.Remove(path)
	must(t, os.WriteFile(path, content, 0o600))
	must(t, unix.Chmod(path, mode))
	setMtime(t, path, mtime)
}

func setMtime(t testing.TB, path string, mtime time.Time) {
	t.Helper()
	ts := []unix.Timespec{{Nsec: unix.UTIME_OMIT}, unix.NsecToTimespec(mtime.UnixNano())}
	must(t, unix.UtimesNanoAt(unix.AT_FDCWD, path, ts, unix.AT_SYMLINK_NOFOLLOW))
}

type node struct {
	mode       fs.FileMode
	uid, gid   uint32
	size       int64
	mtime      int64
	ctime      int64
	target     string
	ino, nlink uint64
}

// scan lists root with Lstat, skipping sockets, FIFOs and devices (not
// replicated) and, where tmpOK, temporaries.
func scan(t testing.TB, root string) map[string]node {
	t.Helper()
	m := map[string]node{}
	err := filepath.WalkDir(root, func(p string, _ fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		fi, err := os.Lstat(p)
		if err != nil {
			return err
		}
		if fi.Mode()&(fs.ModeSocket|fs.ModeNamedPipe|fs.ModeDevice|fs.ModeCharDevice) != 0 {
			return nil
		}
		st := fi.Sys().(*syscall.Stat_t)
		rel, _ := filepath.Rel(root, p)
		n := node{mode: fi.Mode(), uid: st.Uid, gid: st.Gid, mtime: fi.ModTime().UnixNano(), ctime: st.Ctim.Nano(), ino: st.Ino, nlink: uint64(st.Nlink)}
		switch {
		case fi.Mode().IsRegular():
			n.size = fi.Size()
		case fi.Mode()&fs.ModeSymlink != 0:
			if n.target, err = os.Readlink(p); err != nil {
				return err
			}
		}
		m[rel] = n
		return nil
	})
	must(t, err)
	return m
}

func linkedWith(m map[string]node) map[string][]string {
	byIno := map[uint64][]string{}
	for p, n := range m {
		if n.mode.IsRegular() {
			byIno[n.ino] = append(byIno[n.ino], p)
		}
	}
	out := map[string][]string{}
	for _, ps := range byIno {
		slices.Sort(ps)
		for _, p := range ps {
			out[p] = ps
		}
	}
	return out
}

// assertIdentical fails unless dst reproduces src: names, types, modes,
// owners, sizes, mtimes (ns, the root's too), symlink targets, contents,
// hard-link structure; and dst holds no temporaries.
func assertIdentical(t testing.TB, src, dst string) {
	t.Helper()
	sm, dm := scan(t, src), scan(t, dst)
	sl, dl := linkedWith(sm), linkedWith(dm)
	n := 0
	for p, s := range sm {
		if n > 10 {
			t.Fatal("too many differences")
		}
		d, ok := dm[p]
		switch {
		case !ok:
			t.Errorf("%s: missing in dst", p)
		case s.mode != d.mode:
			t.Errorf("%s: mode %v, want %v", p, d.mode, s.mode)
		case s.uid != d.uid || s.gid != d.gid:
			t.Errorf("%s: owner %d:%d, want %d:%d", p, d.uid, d.gid, s.uid, s.gid)
		case s.size != d.size:
			t.Errorf("%s: size %d, want %d", p, d.size, s.size)
		case s.mtime != d.mtime:
			t.Errorf("%s: mtime %v, want %v", p, time.Unix(0, d.mtime), time.Unix(0, s.mtime))
		case s.target != d.target:
			t.Errorf("%s: symlink target %q, want %q", p, d.target, s.target)
		case s.mode.IsRegular() && !slices.Equal(sl[p], dl[p]):
			t.Errorf("%s: linked with %v, want %v", p, dl[p], sl[p])
		case s.mode.IsRegular():
			a, err1 := os.ReadFile(filepath.Join(src, p))
			b, err2 := os.ReadFile(filepath.Join(dst, p))
			if err1 != nil || err2 != nil || !bytes.Equal(a, b) {
				t.Errorf("%s: content differs (%v, %v)", p, err1, err2)
			} else {
				continue
			}
		default:
			continue
		}
		n++
	}
	for p := range dm {
		if _, ok := sm[p]; !ok {
			t.Errorf("%s: extra in dst", p)
		}
	}
}

// pair is a source tree, a destination tree and the two ends.
type pair struct {
	t                  *testing.T
	src, dst           string
	sendState, rcState string
	s                  *Sender
	r                  *Receiver
	commits            []time.Time
}

func newPair(t *testing.T) *pair {
	t.Helper()
	base := t.TempDir()
	p := &pair{t: t, src: base + "/src", dst: base + "/dst", sendState: base + "/state/send", rcState: base + "/state/recv"}
	must(t, os.Mkdir(p.src, 0o755))
	must(t, os.Mkdir(p.dst, 0o755))
	p.openSender()
	p.openReceiver()
	t.Cleanup(func() {
		p.s.Close()
		p.r.Close()
	})
	return p
}

func (p *pair) openSender() {
	if p.s != nil {
		p.s.Close()
	}
	s, err := NewSender(p.src, p.sendState, SenderOptions{Workers: 2})
	must(p.t, err)
	p.s = s
}

func (p *pair) openReceiver() {
	if p.r != nil {
		must(p.t, p.r.Close())
	}
	r, err := NewReceiver(p.dst, p.rcState, ReceiverOptions{OnCommit: func(start time.Time) error {
		p.commits = append(p.commits, start)
		return nil
	}})
	must(p.t, err)
	p.r = r
}

func (p *pair) pass(tr Transport, o PassOptions) (Stats, error) {
	if tr == nil {
		tr = pipeTransport{p.r}
	}
	return p.s.Pass(context.Background(), tr, o)
}

func (p *pair) mustPass(tr Transport, o PassOptions) Stats {
	p.t.Helper()
	st, err := p.pass(tr, o)
	if err != nil {
		p.t.Fatalf("pass: %v", err)
	}
	assertIdentical(p.t, p.src, p.dst)
	if p.t.Failed() {
		p.t.FailNow()
	}
	return st
}
