package peer

import (
	"context"
	"crypto/rand"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/efsd/efsd/internal/remotesync"
)

// receiverOf serves every configuration with one remotesync.Receiver.
type receiverOf struct{ r *remotesync.Receiver }

func (x receiverOf) ServePeer(ctx context.Context, _, _, op string, body io.Reader, w io.Writer) error {
	return x.r.Serve(ctx, op, body, w)
}

// BenchmarkInitialOverTLS times a first pass of incompressible files
// from a Sender through the peer client and server (mutual TLS, HTTP/2)
// to a Receiver, both in this process: the whole path of a replication
// between deployments but the network. One file of 256 MiB, and 16 of
// 16 MiB (several files in flight at once, as tree (b) of the benchmarks).
func BenchmarkInitialOverTLS(b *testing.B) {
	b.Run("1x256MiB", func(b *testing.B) { benchInitialOverTLS(b, 1, 256<<20) })
	b.Run("16x16MiB", func(b *testing.B) { benchInitialOverTLS(b, 16, 16<<20) })
}

func benchInitialOverTLS(b *testing.B, files, size int) {
	src := b.TempDir()
	data := make([]byte, size)
	for i := range files {
		rand.Read(data)
		if err := os.WriteFile(filepath.Join(src, fmt.Sprintf("f%02d", i)), data, 0o644); err != nil {
			b.Fatal(err)
		}
	}
	a, bid := newIdentityB(b), newIdentityB(b)
	bSet, err := NewSet([]Config{{Name: "a", Endpoint: "https://127.0.0.1:1", Regions: []string{"us-east-1"}, CertSHA256: a.Fingerprint}},
		func(r string) bool { return r == "eu-west-1" })
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(files * size))
	b.ResetTimer()
	for range b.N {
		b.StopTimer()
		dst := b.TempDir()
		r, err := remotesync.NewReceiver(dst, filepath.Join(b.TempDir(), "recv"), remotesync.ReceiverOptions{})
		if err != nil {
			b.Fatal(err)
		}
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			b.Fatal(err)
		}
		srv := NewServer(ServerOptions{Identity: bid, Peers: bSet, Control: &fakeControl{}, Receivers: receiverOf{r}, IdleTimeout: time.Minute})
		go srv.Serve(ln)
		aSet, err := NewSet([]Config{{Name: "b", Endpoint: "https://" + ln.Addr().String(), Regions: []string{"eu-west-1"}, CertSHA256: bid.Fingerprint}},
			func(r string) bool { return r == "us-east-1" })
		if err != nil {
			b.Fatal(err)
		}
		c := NewClient(a, aSet, nil)
		s, err := remotesync.NewSender(src, filepath.Join(b.TempDir(), "sent"), remotesync.SenderOptions{})
		if err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
		if _, err := s.Pass(b.Context(), c.Transport("b", "rep-1"), remotesync.PassOptions{Start: time.Now()}); err != nil {
			b.Fatal(err)
		}
		b.StopTimer()
		s.Close()
		r.Close()
		srv.Shutdown(context.Background())
		os.RemoveAll(dst)
		b.StartTimer()
	}
}

func newIdentityB(b *testing.B) *Identity {
	id, err := LoadIdentity(filepath.Join(b.TempDir(), "peer"))
	if err != nil {
		b.Fatal(err)
	}
	return id
}
