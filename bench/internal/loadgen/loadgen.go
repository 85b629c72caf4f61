// Package loadgen drives a server with a fixed number of operations at a
// fixed concurrency, within a deadline, and records each operation's
// latency. Operations go through aws-sdk-go-v2 EFS clients signing with
// SigV4, with SDK retries off, so every server is driven identically and
// every failure is counted.
package loadgen

import (
	"context"
	"net"
	"net/http"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/service/efs"

	"github.com/efsd/efsd/bench/internal/stats"
	"github.com/efsd/efsd/internal/sdkhttp"
)

// Op is one operation; i is its index in [0, Count).
type Op func(ctx context.Context, i int) error

// Config bounds a run: Count operations at most, by Concurrency workers,
// and no longer than Timeout.
type Config struct {
	Count       int
	Concurrency int
	Timeout     time.Duration
}

// Result is what a run did. Latencies are of successful operations, in
// seconds, sorted.
type Result struct {
	OK, Errors int
	TimedOut   bool
	Elapsed    float64 // seconds, first start to last end
	Latencies  []float64
	FirstError string
}

// Throughput is successful operations per second.
func (r Result) Throughput() float64 { return stats.Ratio(float64(r.OK), r.Elapsed) }

// P returns the p-th latency percentile in seconds.
func (r Result) P(p float64) float64 { return stats.PercentileSorted(r.Latencies, p) }

// maxPrealloc bounds the latency slots a worker reserves up front.
const maxPrealloc = 1 << 16

// Run performs op Count times with Concurrency workers. Workers take the
// next index from a shared counter, so the run ends when all indices are
// taken or the timeout passes (operations in flight then are cancelled
// and counted as errors).
func Run(parent context.Context, c Config, op Op) Result {
	if c.Concurrency < 1 {
		c.Concurrency = 1
	}
	ctx, cancel := context.WithTimeout(parent, c.Timeout)
	defer cancel()
	var (
		next    atomic.Int64
		mu      sync.Mutex
		res     Result
		wg      sync.WaitGroup
		perWork = make([][]float64, c.Concurrency)
	)
	start := time.Now()
	for w := range c.Concurrency {
		wg.Add(1)
		go func() {
			defer wg.Done()
			// Preallocate for the expected share, bounded: a huge Count with
			// a Timeout is legal and must not reserve memory it never uses.
			lat := make([]float64, 0, min(c.Count/c.Concurrency+1, maxPrealloc))
			for ctx.Err() == nil {
				i := int(next.Add(1) - 1)
				if i >= c.Count {
					break
				}
				t := time.Now()
				err := op(ctx, i)
				d := time.Since(t).Seconds()
				if err == nil {
					lat = append(lat, d)
					continue
				}
				mu.Lock()
				res.Errors++
				if res.FirstError == "" {
					res.FirstError = err.Error()
				}
				mu.Unlock()
			}
			perWork[w] = lat
		}()
	}
	wg.Wait()
	res.Elapsed = time.Since(start).Seconds()
	res.TimedOut = ctx.Err() != nil && parent.Err() == nil
	for _, l := range perWork {
		res.Latencies = append(res.Latencies, l...)
	}
	slices.Sort(res.Latencies)
	res.OK = len(res.Latencies)
	return res
}

// newHTTPClient is the HTTP client every EFS client gets: keep-
// alive with enough idle connections for the highest concurrency, loopback
// only (the dialer refuses anything else), bodies sent as sdkhttp says.
func newHTTPClient() aws.HTTPClient {
	return sdkhttp.Buffered(awshttp.NewBuildableClient().
		WithTimeout(60 * time.Second).
		WithTransportOptions(func(t *http.Transport) {
			t.MaxIdleConns = 256
			t.MaxIdleConnsPerHost = 256
			t.Proxy = nil
		}).
		WithDialerOptions(func(d *net.Dialer) {
			d.Control = loopbackOnly
		}))
}

// Client returns an EFS client for endpoint (an http://127.x.y.z:port URL)
// in region, signing as key/secret, with SDK retries off.
func Client(endpoint, region, key, secret string) *efs.Client {
	return efs.New(efs.Options{
		BaseEndpoint: aws.String(endpoint),
		Region:       region,
		Credentials: aws.CredentialsProviderFunc(func(context.Context) (aws.Credentials, error) {
			return aws.Credentials{AccessKeyID: key, SecretAccessKey: secret}, nil
		}),
		RetryMaxAttempts: 1,
		HTTPClient:       newHTTPClient(),
	})
}
