package api_test

import (
	"bufio"
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	"github.com/aws/aws-sdk-go-v2/service/efs"

	"github.com/efsd/efsd/internal/api"
	"github.com/efsd/efsd/internal/daemon"
	"github.com/efsd/efsd/internal/efstest"
)

// heapInUse is the live heap after a collection.
func heapInUse() uint64 {
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return ms.HeapAlloc
}

// stall opens a connection from address from, sends head and then body
// (as much as the server takes), and never finishes the request. The
// returned channel is closed once the server has closed the connection.
func stall(t *testing.T, addr, from, head string, body []byte) <-chan struct{} {
	closed := make(chan struct{})
	d := net.Dialer{Timeout: 5 * time.Second, LocalAddr: &net.TCPAddr{IP: net.ParseIP(from)}}
	conn, err := d.Dial("tcp", addr)
	if err != nil {
		t.Errorf("dial from %s: %v", from, err)
		close(closed)
		return closed
	}
	t.Cleanup(func() { conn.Close() })
	go func() {
		defer close(closed)
		// Bounded: the test closes the connection when it ends.
		conn.SetDeadline(time.Now().Add(30 * time.Second))
		if _, err := io.WriteString(conn, head); err == nil && len(body) > 0 {
			conn.Write(body)
		}
		io.Copy(io.Discard, conn) // until the server closes it (or the deadline)
	}()
	return closed
}

// The attack, scaled down: 1,000 uploads announcing 1 MiB and
// stalling held 1.2 GB for good, and idle connections exhausted
// descriptors. Here 200 uploads from 127.0.0.2 send all but the last byte
// of 1 MiB and stall, and 300 connections from 127.0.0.3 send nothing.
// The server's heap stays under a ceiling; the idle connections over the
// per-client cap are closed at once and every other one by the deadlines;
// an SDK client on 127.0.0.1 keeps being answered throughout.
func TestSlowUploadsAndIdleConnections(t *testing.T) {
	if testing.Short() {
		t.Skip("opens 500 connections")
	}
	const (
		uploads, idle     = 200, 300
		perClient         = 150
		readHeaderTimeout = 2 * time.Second
		readTimeout       = 3 * time.Second
		ceiling           = 48 << 20 // the 200 uploads held about 240 MiB
	)
	srv := efstest.Start(t, efstest.WithConfig(func(c *daemon.Config) {
		c.APILimits = api.Limits{MaxConns: 400, MaxConnsPerClient: perClient, BodyMemory: 8 << 20,
			ReadHeaderTimeout: readHeaderTimeout, ReadTimeout: readTimeout, WriteTimeout: 5 * time.Second}
	}))
	c := srv.Client(efstest.AccountA, region)
	ctx := context.Background()
	if _, err := c.DescribeFileSystems(ctx, &efs.DescribeFileSystemsInput{}); err != nil {
		t.Fatal(err)
	}
	base := heapInUse()

	head := uploadHeaders(t, efstest.AccountA, region, 1<<20, "", false, time.Now())
	body := []byte(`{"CreationToken":"` + strings.Repeat("x", 1<<20-20) + ``)[:1<<20-1]
	start := time.Now()
	stalled := make([]<-chan struct{}, uploads)
	idled := make([]<-chan struct{}, idle)
	var wg sync.WaitGroup
	for i := range uploads + idle {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if i < uploads {
				stalled[i] = stall(t, srv.Addr(), "127.0.0.2", head, body)
			} else {
				idled[i-uploads] = stall(t, srv.Addr(), "127.0.0.3", "", nil)
			}
		}()
	}
	wg.Wait()
	countClosed := func(chs []<-chan struct{}) (n int) {
		for _, ch := range chs {
			select {
			case <-ch:
				n++
			default:
			}
		}
		return n
	}
	// Over the per-client cap: closed at accept, long before any timeout.
	efstest.Eventually(t, readHeaderTimeout/2, "idle connections over the cap to be closed", func() bool {
		return countClosed(idled) >= idle-perClient
	})

	// While they stall: the heap stays low and the SDK client is answered.
	var peak uint64
	for i := 0; time.Since(start) < readHeaderTimeout-300*time.Millisecond || i < 3; i++ {
		if _, err := c.CreateFileSystem(ctx, &efs.CreateFileSystemInput{CreationToken: aws.String("during-" + strconv.Itoa(i))}); err != nil {
			t.Fatalf("SDK client refused during the attack: %v", err)
		}
		if _, err := c.DescribeFileSystems(ctx, &efs.DescribeFileSystemsInput{}); err != nil {
			t.Fatalf("SDK client refused during the attack: %v", err)
		}
		if h := heapInUse(); h > base {
			peak = max(peak, h-base)
		}
	}
	t.Logf("heap above baseline at most %d KiB while stalled; %d of %d idle connections still open",
		peak>>10, idle-countClosed(idled), idle)
	if peak > ceiling {
		t.Fatalf("heap grew by %d MiB under stalled uploads, ceiling %d MiB", peak>>20, ceiling>>20)
	}

	// The deadlines close every connection.
	deadline := time.After(readTimeout + 5*time.Second)
	for i, ch := range append(stalled, idled...) {
		select {
		case <-ch:
		case <-deadline:
			t.Fatalf("connection %d of %d still open %v after the attack began", i, uploads+idle, time.Since(start))
		}
	}
	if _, err := c.DescribeFileSystems(ctx, &efs.DescribeFileSystemsInput{}); err != nil {
		t.Fatal(err)
	}
}

// When the body budget is taken, a request is refused with a
// ThrottlingException the SDK retries, before its body is read.
func TestBodyBudgetThrottles(t *testing.T) {
	srv := efstest.Start(t, efstest.WithConfig(func(c *daemon.Config) {
		c.APILimits = api.Limits{BodyMemory: 4 << 20, ReadTimeout: 10 * time.Second}
	}))
	head := uploadHeaders(t, efstest.AccountA, region, 1<<20, "", false, time.Now())
	// One client address may hold a quarter of the budget, 1 MiB. Two
	// uploads of 1 MiB from it: one takes the share and stalls, the other
	// is refused at once, which proves the share is held.
	answers := make(chan *http.Response, 2)
	for range 2 {
		conn := dialFrom(t, srv.Addr(), "127.0.0.1")
		conn.SetDeadline(time.Now().Add(20 * time.Second))
		go func() {
			if _, err := io.WriteString(conn, head+"{"); err != nil {
				return
			}
			if resp, err := http.ReadResponse(bufio.NewReader(conn), nil); err == nil {
				answers <- resp
			}
		}()
	}
	select {
	case resp := <-answers:
		resp.Request, _ = http.NewRequest("POST", "/", nil)
		if code := awsShaped(t, "second upload", resp); code != "ThrottlingException" || resp.StatusCode != 429 {
			t.Fatalf("second upload: %d %s", resp.StatusCode, code)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("neither upload was refused")
	}
	_, err := srv.Client(efstest.AccountA, region).CreateFileSystem(context.Background(), &efs.CreateFileSystemInput{CreationToken: aws.String("t")})
	wantAPIError(t, err, "ThrottlingException")
	if !retry.IsErrorThrottles(retry.DefaultThrottles).IsErrorThrottle(err).Bool() {
		t.Fatalf("the SDK does not treat %v as throttling", err)
	}
	// Another address is served, and a request without a body needs none.
	resp := rawExchange(t, srv.Addr(), "127.0.0.2", strings.Replace(head, "Content-Length: 1048576", "Content-Length: 2", 1)+"{}", 5*time.Second)
	if code := awsShaped(t, "other address", resp); code != "InvalidSignatureException" {
		t.Fatalf("other address: %s, want its (bad) signature checked", code)
	}
	if _, err := srv.Client(efstest.AccountA, region).DescribeFileSystems(context.Background(), &efs.DescribeFileSystemsInput{}); err != nil {
		t.Fatal(err)
	}
}

// The API listener's overall cap: connections past it are closed at
// accept, and a slot frees when a connection closes.
func TestConnectionCap(t *testing.T) {
	srv := efstest.Start(t, efstest.WithConfig(func(c *daemon.Config) {
		c.APILimits = api.Limits{MaxConns: 20, MaxConnsPerClient: 20}
	}))
	var held []net.Conn
	for range 20 {
		conn := dialFrom(t, srv.Addr(), "127.0.0.2")
		held = append(held, conn)
	}
	// Make sure all 20 are accepted: one request on each.
	for i, conn := range held {
		conn.SetDeadline(time.Now().Add(5 * time.Second))
		io.WriteString(conn, "GET /2015-02-01/file-systems HTTP/1.1\r\nHost: efsd\r\n\r\n")
		resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
		if err != nil {
			t.Fatalf("connection %d: %v", i, err)
		}
		resp.Body.Close()
	}
	over := dialFrom(t, srv.Addr(), "127.0.0.3")
	over.SetDeadline(time.Now().Add(5 * time.Second))
	var ne net.Error
	if n, err := over.Read(make([]byte, 1)); err == nil || n > 0 || errors.As(err, &ne) && ne.Timeout() {
		t.Fatalf("connection over the cap: read %d, %v; want it closed at once", n, err)
	}
	held[0].Close()
	efstest.Eventually(t, 5*time.Second, "a freed slot to serve again", func() bool {
		conn := dialFrom(t, srv.Addr(), "127.0.0.3")
		conn.SetDeadline(time.Now().Add(2 * time.Second))
		io.WriteString(conn, "GET /2015-02-01/file-systems HTTP/1.1\r\nHost: efsd\r\n\r\n")
		resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
		conn.Close()
		return err == nil && resp.StatusCode == http.StatusForbidden
	})
}
