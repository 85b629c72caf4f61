package loadgen

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"runtime"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/efs"
)

func TestRunCountsAndBounds(t *testing.T) {
	var calls atomic.Int64
	r := Run(context.Background(), Config{Count: 100, Concurrency: 4, Timeout: 10 * time.Second},
		func(_ context.Context, i int) error {
			calls.Add(1)
			if i%10 == 0 {
				return errors.New("boom")
			}
			return nil
		})
	if calls.Load() != 100 || r.OK != 90 || r.Errors != 10 || r.FirstError != "boom" || r.TimedOut {
		t.Fatalf("calls %d, result %+v", calls.Load(), r)
	}
	if len(r.Latencies) != 90 || r.P(100) < r.P(0) {
		t.Fatal("latencies not sorted or missing")
	}
}

func TestRunDeadline(t *testing.T) {
	r := Run(context.Background(), Config{Count: 1 << 30, Concurrency: 2, Timeout: 50 * time.Millisecond},
		func(ctx context.Context, _ int) error {
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-time.After(time.Millisecond):
				return nil
			}
		})
	if !r.TimedOut || r.OK == 0 || r.Elapsed > 5 {
		t.Fatalf("result %+v", r)
	}
}

// A huge Count bounded by a Timeout must not reserve memory by Count: it
// used to preallocate Count/Concurrency slots (4 GiB per worker here).
func TestRunHugeCountAllocatesByUse(t *testing.T) {
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	r := Run(context.Background(), Config{Count: 1 << 30, Concurrency: 2, Timeout: 20 * time.Millisecond},
		func(ctx context.Context, _ int) error { return ctx.Err() })
	runtime.ReadMemStats(&after)
	if grew := after.TotalAlloc - before.TotalAlloc; grew > 64<<20 {
		t.Fatalf("a run of %d operations allocated %d MiB", r.OK, grew>>20)
	}
}

func TestClientSignsAndReachesLoopback(t *testing.T) {
	var auth atomic.Value
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		auth.Store(r.Header.Get("Authorization"))
		w.Header().Set("Content-Type", "application/json")
		w.Write([]byte(`{"FileSystems":[]}`))
	}))
	defer srv.Close()
	c := Client(srv.URL, "us-east-1", "test", "test")
	if _, err := c.DescribeFileSystems(context.Background(), &efs.DescribeFileSystemsInput{MaxItems: aws.Int32(100)}); err != nil {
		t.Fatal(err)
	}
	if a, _ := auth.Load().(string); len(a) < 16 || a[:16] != "AWS4-HMAC-SHA256" {
		t.Fatalf("not SigV4-signed: %q", a)
	}
}

func TestLoopbackOnly(t *testing.T) {
	for addr, ok := range map[string]bool{"127.0.0.1:80": true, "127.3.4.5:1": true, "[::1]:80": true,
		"10.0.0.1:80": false, "example.com:80": false} {
		if err := loopbackOnly("tcp", addr, nil); (err == nil) != ok {
			t.Errorf("%s: err %v", addr, err)
		}
	}
}
