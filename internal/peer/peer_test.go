package peer

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/efsd/efsd/internal/efs"
	"github.com/efsd/efsd/internal/remotesync"
)

// fakeControl answers like the domain: it accepts configuration "rep-1"
// from peer "a" only.
type fakeControl struct{ events []string }

func (f *fakeControl) AcceptReplication(_ context.Context, peer string, req *efs.RemoteCreate) (*efs.RemoteDestination, error) {
	if peer != "a" || req.ID != "rep-1" {
		return nil, &efs.Error{Code: efs.FileSystemNotFound, Message: "no such file system"}
	}
	return &efs.RemoteDestination{Dest: efs.FSKey{Account: "1", Region: "eu-west-1", ID: "fs-1"}, State: efs.StateAvailable}, nil
}

func (f *fakeControl) PeerEvent(_ context.Context, peer, id, event string) error {
	f.events = append(f.events, peer+" "+id+" "+event)
	return nil
}

func (f *fakeControl) PeerQuery(_ context.Context, peer, id string) (string, error) {
	if peer == "a" && id == "rep-1" {
		return efs.PeerRecorded, nil
	}
	return efs.PeerUnknown, nil
}

// fakeReceivers echoes the body of configuration "rep-1" from peer "a".
type fakeReceivers struct{}

func (fakeReceivers) ServePeer(_ context.Context, peer, id, op string, body io.Reader, w io.Writer) error {
	if peer != "a" || id != "rep-1" {
		return efs.ErrReplicationGone
	}
	b, err := io.ReadAll(body)
	if err != nil {
		return err
	}
	_, err = w.Write(append([]byte(op+":"), b...))
	return err
}

type pair struct {
	a, b     *Identity
	srv      *Server
	addr     string
	client   *Client // a's client of b
	control  *fakeControl
	bSet     *Set
	endpoint string
}

func newIdentity(t *testing.T) *Identity {
	t.Helper()
	id, err := LoadIdentity(filepath.Join(t.TempDir(), "peer"))
	if err != nil {
		t.Fatal(err)
	}
	return id
}

// start runs b's peer endpoint knowing a, and a's client knowing b.
func start(t *testing.T, idle time.Duration) *pair {
	t.Helper()
	p := &pair{a: newIdentity(t), b: newIdentity(t), control: &fakeControl{}}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p.addr = ln.Addr().String()
	p.endpoint = "https://" + p.addr
	p.bSet, err = NewSet([]Config{{Name: "a", Endpoint: "https://127.0.0.1:1", Regions: []string{"us-east-1"}, CertSHA256: p.a.Fingerprint}},
		func(r string) bool { return r == "eu-west-1" })
	if err != nil {
		t.Fatal(err)
	}
	p.srv = NewServer(ServerOptions{Identity: p.b, Peers: p.bSet, Control: p.control, Receivers: fakeReceivers{}, IdleTimeout: idle})
	go p.srv.Serve(ln)
	t.Cleanup(func() { p.srv.Shutdown(context.Background()) })
	aSet, err := NewSet([]Config{{Name: "b", Endpoint: p.endpoint, Regions: []string{"eu-west-1"}, CertSHA256: p.b.Fingerprint}},
		func(r string) bool { return r == "us-east-1" })
	if err != nil {
		t.Fatal(err)
	}
	p.client = NewClient(p.a, aSet, nil)
	return p
}

func TestIdentityIsStable(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "peer")
	a, err := LoadIdentity(dir)
	if err != nil {
		t.Fatal(err)
	}
	b, err := LoadIdentity(dir)
	if err != nil {
		t.Fatal(err)
	}
	if a.Fingerprint != b.Fingerprint || len(a.Fingerprint) != 64 {
		t.Fatalf("fingerprints %s, %s", a.Fingerprint, b.Fingerprint)
	}
	fi, err := os.Stat(filepath.Join(dir, keyFile))
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("key file: %v %v", fi.Mode(), err)
	}
}

func TestPinnedPeersTalk(t *testing.T) {
	p := start(t, 0)
	ctx := context.Background()
	got, err := p.client.CreateDestination(ctx, "b", &efs.RemoteCreate{ID: "rep-1"})
	if err != nil || got.Dest.ID != "fs-1" {
		t.Fatalf("create: %+v %v", got, err)
	}
	// The domain's refusal comes back as the domain's error.
	_, err = p.client.CreateDestination(ctx, "b", &efs.RemoteCreate{ID: "rep-2"})
	var e *efs.Error
	if !errors.As(err, &e) || e.Code != efs.FileSystemNotFound {
		t.Fatalf("refusal: %v", err)
	}
	if err := p.client.Tell(ctx, "b", "rep-1", efs.PeerDeleteAll); err != nil || len(p.control.events) != 1 || p.control.events[0] != "a rep-1 delete-all" {
		t.Fatalf("tell: %v %v", err, p.control.events)
	}
	for id, want := range map[string]string{"rep-1": efs.PeerRecorded, "rep-2": efs.PeerUnknown} {
		if got, err := p.client.Query(ctx, "b", id); err != nil || got != want {
			t.Fatalf("query %s: %q %v, want %q", id, got, err, want)
		}
	}
	rc, err := p.client.Transport("b", "rep-1").RoundTrip(ctx, "put", strings.NewReader("data"))
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(rc)
	rc.Close()
	if string(b) != "put:data" {
		t.Fatalf("reply %q", b)
	}
	// Another configuration than the peer's: gone, as the receiver's error.
	_, err = p.client.Transport("b", "rep-9").RoundTrip(ctx, "put", strings.NewReader("data"))
	var re *remotesync.RemoteError
	if !errors.As(err, &re) || re.Code != remotesync.CodeGone {
		t.Fatalf("other configuration: %v", err)
	}
}

// Attacks: strangers never get past the handshake; a wrong pin is refused
// by the client; oversized and stalled bodies are cut.
func TestStrangersAreRefused(t *testing.T) {
	p := start(t, 300*time.Millisecond)
	post := func(cert *tls.Certificate, path string, body io.Reader) (*http.Response, error) {
		cfg := &tls.Config{InsecureSkipVerify: true, MinVersion: tls.VersionTLS13, NextProtos: []string{"h2"}}
		if cert != nil {
			cfg.Certificates = []tls.Certificate{*cert}
		}
		c := &http.Client{Transport: &http.Transport{TLSClientConfig: cfg, ForceAttemptHTTP2: true}, Timeout: 5 * time.Second}
		return c.Post(p.endpoint+path, "application/json", body)
	}
	if _, err := post(nil, "/erp/v1/replications", strings.NewReader("{}")); err == nil {
		t.Fatal("a client without a certificate got a response")
	}
	stranger := newIdentity(t)
	if _, err := post(&stranger.Cert, "/erp/v1/replications", strings.NewReader("{}")); err == nil {
		t.Fatal("a client with an unpinned certificate got a response")
	}
	// The client refuses a server whose certificate is not the pinned one.
	aSet, _ := NewSet([]Config{{Name: "b", Endpoint: p.endpoint, Regions: []string{"eu-west-1"}, CertSHA256: stranger.Fingerprint}},
		func(string) bool { return false })
	if _, err := NewClient(p.a, aSet, nil).CreateDestination(context.Background(), "b", &efs.RemoteCreate{ID: "rep-1"}); !errors.Is(err, efs.ErrPeerUnreachable) ||
		!strings.Contains(err.Error(), "pinned") {
		t.Fatalf("wrong pin: %v", err)
	}
	// A peer's oversized control body is refused, and the endpoint serves on.
	resp, err := post(&p.a.Cert, "/erp/v1/replications", bytes.NewReader(bytes.Repeat([]byte(" "), maxControlBody+10)))
	if err != nil || resp.StatusCode != http.StatusBadRequest {
		t.Fatalf("oversized body: %v %v", resp, err)
	}
	resp.Body.Close()
	// A stalled sync body is cut after the idle timeout.
	pr, pw := io.Pipe()
	defer pw.Close()
	go pw.Write([]byte("partial"))
	done := make(chan error, 1)
	go func() {
		resp, err := post(&p.a.Cert, "/erp/v1/replications/rep-1/sync/put", pr)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				err = errors.New("stalled body accepted")
			}
		}
		done <- err
	}()
	select {
	case <-done:
	case <-time.After(4 * time.Second):
		t.Fatal("a stalled body was not cut")
	}
	if _, err := p.client.CreateDestination(context.Background(), "b", &efs.RemoteCreate{ID: "rep-1"}); err != nil {
		t.Fatalf("after the attacks: %v", err)
	}
}

func TestSetRules(t *testing.T) {
	fp := strings.Repeat("a", 64)
	local := func(r string) bool { return r == "us-east-1" }
	for _, bad := range [][]Config{
		{{Name: "b", Endpoint: "http://h:1", Regions: []string{"eu-west-1"}, CertSHA256: fp}},
		{{Name: "b", Endpoint: "https://h:1", Regions: []string{"us-east-1"}, CertSHA256: fp}},
		{{Name: "b", Endpoint: "https://h:1", Regions: []string{"eu-west-1"}, CertSHA256: "xyz"}},
		{{Name: "b", Endpoint: "https://h:1", Regions: []string{"eu-west-1"}, CertSHA256: fp},
			{Name: "c", Endpoint: "https://h:2", Regions: []string{"eu-west-1"}, CertSHA256: strings.Repeat("b", 64)}},
		{{Name: "b", Endpoint: "https://h:1", Regions: []string{"eu-west-1"}, CertSHA256: fp, NextCertSHA256: fp}},
		{{Name: "b", Endpoint: "https://h:1", Regions: []string{"eu-west-1"}, CertSHA256: fp, NextCertSHA256: "XYZ"}},
		// A peer's next pin is another peer's current one.
		{{Name: "b", Endpoint: "https://h:1", Regions: []string{"eu-west-1"}, CertSHA256: fp, NextCertSHA256: strings.Repeat("b", 64)},
			{Name: "c", Endpoint: "https://h:2", Regions: []string{"ap-south-1"}, CertSHA256: strings.Repeat("b", 64)}},
	} {
		if _, err := NewSet(bad, local); err == nil {
			t.Errorf("accepted %+v", bad)
		}
	}
	s, err := NewSet([]Config{
		{Name: "b", Endpoint: "https://h:1", Regions: []string{"eu-west-1"}, Accounts: []string{"1"}, CertSHA256: fp},
		{Name: "c", Endpoint: "https://h:2", Regions: []string{"eu-west-1"}, Accounts: []string{"2"}, CertSHA256: strings.Repeat("b", 64)},
	}, local)
	if err != nil {
		t.Fatal(err)
	}
	if n, ok := s.Route("2", "eu-west-1"); !ok || n != "c" {
		t.Fatalf("route: %s %v", n, ok)
	}
	if _, ok := s.Route("3", "eu-west-1"); ok {
		t.Fatal("routed an account no peer serves")
	}
}

// A rotation: the next identity is made once and presented only after it
// is promoted; the old one is kept as the previous; a peer pinning both
// takes either, and only those; an interrupted promotion is completed by
// running it again.
func TestIdentityRotation(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "peer")
	cur, err := LoadIdentity(dir)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := PromoteIdentity(dir); err == nil {
		t.Fatal("promoted without a next identity")
	}
	next, err := NextIdentity(dir)
	if err != nil {
		t.Fatal(err)
	}
	again, err := NextIdentity(dir)
	if err != nil || again.Fingerprint != next.Fingerprint || next.Fingerprint == cur.Fingerprint {
		t.Fatalf("next %s, then %s (%v); current %s", next.Fingerprint, again.Fingerprint, err, cur.Fingerprint)
	}
	if still, err := LoadIdentity(dir); err != nil || still.Fingerprint != cur.Fingerprint {
		t.Fatalf("made a next identity and the current one changed: %v", err)
	}

	set, err := NewSet([]Config{{Name: "a", Endpoint: "https://h:1", Regions: []string{"us-east-1"},
		CertSHA256: cur.Fingerprint, NextCertSHA256: next.Fingerprint}}, func(string) bool { return false })
	if err != nil {
		t.Fatal(err)
	}
	for fp, want := range map[string]bool{cur.Fingerprint: true, next.Fingerprint: true, newIdentity(t).Fingerprint: false} {
		if _, ok := set.byFingerprint(fp); ok != want {
			t.Errorf("byFingerprint(%s) = %v, want %v", fp, ok, want)
		}
	}

	// Interrupted after the key was copied: the pair does not load.
	key, err := os.ReadFile(filepath.Join(dir, nextDir, keyFile))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Join(dir, previousDir), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := copyPair(dir, filepath.Join(dir, previousDir)); err != nil {
		t.Fatal(err)
	}
	if err := writeFile(filepath.Join(dir, keyFile), key, 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := LoadIdentity(dir); err == nil {
		t.Fatal("a half-promoted identity loaded")
	}
	got, err := PromoteIdentity(dir)
	if err != nil || got.Fingerprint != next.Fingerprint {
		t.Fatalf("promoted %v (%v), want %s", got, err, next.Fingerprint)
	}
	if now, err := LoadIdentity(dir); err != nil || now.Fingerprint != next.Fingerprint {
		t.Fatalf("after promotion: %v", err)
	}
	prev, err := LoadIdentity(filepath.Join(dir, previousDir))
	if err != nil || prev.Fingerprint != cur.Fingerprint {
		t.Fatalf("previous: %v (%v), want %s", prev, err, cur.Fingerprint)
	}
	if _, err := os.Stat(filepath.Join(dir, nextDir)); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("next identity left after promotion: %v", err)
	}
	if fi, err := os.Stat(filepath.Join(dir, keyFile)); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("promoted key file: %v %v", fi, err)
	}
}

// A client pinning a peer's current and next certificates talks to it
// before and after the peer presents the next one.
func TestClientTakesNextPin(t *testing.T) {
	p := start(t, 0)
	other := newIdentity(t)
	aSet, err := NewSet([]Config{{Name: "b", Endpoint: p.endpoint, Regions: []string{"eu-west-1"},
		CertSHA256: other.Fingerprint, NextCertSHA256: p.b.Fingerprint}}, func(string) bool { return false })
	if err != nil {
		t.Fatal(err)
	}
	if _, err := NewClient(p.a, aSet, nil).CreateDestination(context.Background(), "b", &efs.RemoteCreate{ID: "rep-1"}); err != nil {
		t.Fatalf("b presents the pinned next certificate: %v", err)
	}
}
