package netlimit

import (
	"errors"
	"io"
	"net"
	"net/netip"
	"os"
	"sync"
	"syscall"
	"testing"
	"time"
)

// serve accepts on l until it is closed, holding every connection open and
// sending each a greeting byte so that the client knows it was served.
func serve(t *testing.T, l net.Listener) <-chan net.Conn {
	t.Helper()
	got := make(chan net.Conn, 1024)
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				close(got)
				return
			}
			_, _ = c.Write([]byte{1})
			got <- c
		}
	}()
	t.Cleanup(func() { _ = l.Close() })
	return got
}

// dial connects from the source address src and reports whether the server
// served the connection (greeting byte) or closed it.
func dial(t *testing.T, addr string, src string) (net.Conn, bool) {
	t.Helper()
	d := net.Dialer{Timeout: 5 * time.Second}
	if src != "" {
		d.LocalAddr = &net.TCPAddr{IP: net.ParseIP(src)}
	}
	c, err := d.Dial("tcp", addr)
	if err != nil {
		t.Fatalf("dial: %v", err)
	}
	t.Cleanup(func() { _ = c.Close() })
	_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
	var b [1]byte
	_, err = io.ReadFull(c, b[:])
	if err != nil && !errors.Is(err, io.EOF) && !errors.Is(err, syscall.ECONNRESET) {
		t.Fatalf("read: %v", err)
	}
	return c, err == nil
}

func listen(t *testing.T, o Options) (*Listener, <-chan net.Conn) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	l := Listen(ln, o)
	return l, serve(t, l)
}

func TestCapsOverallAndPerClient(t *testing.T) {
	l, got := listen(t, Options{MaxConns: 3, MaxConnsPerClient: 2})
	addr := l.Addr().String()
	for i := range 2 {
		if _, ok := dial(t, addr, "127.0.0.1"); !ok {
			t.Fatalf("connection %d from 127.0.0.1 refused within the caps", i)
		}
	}
	if _, ok := dial(t, addr, "127.0.0.1"); ok {
		t.Fatal("a third connection from one client was served over MaxConnsPerClient=2")
	}
	if _, ok := dial(t, addr, "127.0.0.2"); !ok {
		t.Fatal("another client was refused below MaxConns")
	}
	if _, ok := dial(t, addr, "127.0.0.3"); ok {
		t.Fatal("a fourth connection was served over MaxConns=3")
	}
	if s := l.Stats(); s.Open != 3 || s.Accepted != 3 || s.Refused != 2 {
		t.Fatalf("stats = %+v, want 3 open, 3 accepted, 2 refused", s)
	}
	// Closing a served connection frees its slots.
	c := <-got
	_ = c.Close()
	_ = c.Close() // twice frees once
	deadline := time.Now().Add(5 * time.Second)
	for l.Stats().Open != 2 {
		if time.Now().After(deadline) {
			t.Fatalf("open = %d after a close, want 2", l.Stats().Open)
		}
		time.Sleep(5 * time.Millisecond)
	}
	if _, ok := dial(t, addr, "127.0.0.4"); !ok {
		t.Fatal("a slot freed by Close was not reused")
	}
}

func TestAdmitBySourceAddress(t *testing.T) {
	allowed := netip.MustParsePrefix("127.0.16.0/20")
	var mu sync.Mutex
	var seen []netip.Addr
	l, _ := listen(t, Options{Admit: func(a netip.Addr) bool {
		mu.Lock()
		seen = append(seen, a)
		mu.Unlock()
		return allowed.Contains(a)
	}})
	if _, ok := dial(t, l.Addr().String(), "127.0.0.1"); ok {
		t.Fatal("a client outside the admitted range was served")
	}
	if _, ok := dial(t, l.Addr().String(), "127.0.16.9"); !ok {
		t.Fatal("a client inside the admitted range was refused")
	}
	mu.Lock()
	defer mu.Unlock()
	if len(seen) != 2 || seen[0] != netip.MustParseAddr("127.0.0.1") || seen[1] != netip.MustParseAddr("127.0.16.9") {
		t.Fatalf("Admit saw %v", seen)
	}
}

// flakyListener fails its first accepts with an error, then delegates.
type flakyListener struct {
	net.Listener
	mu    sync.Mutex
	fails int
	err   error
}

func (f *flakyListener) Accept() (net.Conn, error) {
	f.mu.Lock()
	if f.fails > 0 {
		f.fails--
		f.mu.Unlock()
		return nil, f.err
	}
	f.mu.Unlock()
	return f.Listener.Accept()
}

func TestAcceptSurvivesDescriptorExhaustion(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	emfile := &net.OpError{Op: "accept", Net: "tcp", Err: os.NewSyscallError("accept4", syscall.EMFILE)}
	l := Listen(&flakyListener{Listener: ln, fails: 4, err: emfile}, Options{})
	serve(t, l)
	if _, ok := dial(t, l.Addr().String(), ""); !ok {
		t.Fatal("not served after accept failed with EMFILE")
	}
	if s := l.Stats(); s.AcceptErrors != 4 {
		t.Fatalf("AcceptErrors = %d, want 4", s.AcceptErrors)
	}
}

func TestAcceptEndsWhenClosed(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	l := Listen(ln, Options{})
	done := make(chan error, 1)
	go func() {
		_, err := l.Accept()
		done <- err
	}()
	_ = l.Close()
	select {
	case err := <-done:
		if !errors.Is(err, net.ErrClosed) {
			t.Fatalf("Accept after Close = %v, want net.ErrClosed", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Accept did not return after Close")
	}
}
