package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/efsd/efsd/bench/internal/loadgen"
)

// stalledUploads: connections that send a complete, signed-looking
// CreateFileSystem header announcing a 1 MiB body, then trickle a byte
// every few seconds (half of them) or send nothing more (the other
// half). A server that waits for bodies without a deadline, or buffers
// what it is promised, runs out of memory or connections.
func (h *harness) stalledUploads() result {
	phases := pick(h, []int{1000, 7000}, []int{100, 300})
	window := pick(h, 2*time.Minute, 20*time.Second)
	r := result{held: true, scale: fmt.Sprintf("%v connections, Content-Length 1 MiB, half trickling 1 byte/2 s, half stalled; closes watched for %v", phases, window)}
	in, err := h.startEfsd("stalled-uploads", efsdOpts{})
	if err != nil {
		r.fail("setup: %v", err)
		return r
	}
	defer in.stop()
	for _, n := range phases {
		if h.check() != nil {
			break
		}
		h.stalledPhase(in, n, window, &r)
		if ok, why := in.alive(); !ok {
			r.fail("%s", why)
			break
		}
	}
	r.fig("peak RSS %s", mb(in.peak()))
	if p := in.peak(); p > h.rssCeiling {
		r.fail("peak RSS %s above the %s ceiling", mb(p), mb(h.rssCeiling))
	}
	return r
}

func (h *harness) stalledPhase(in *instance, n int, window time.Duration, r *result) {
	ctx, cancel := context.WithTimeout(h.ctx, window+2*time.Minute)
	defer cancel()
	header := func() []byte {
		now := time.Now().UTC()
		sig := make([]byte, 32)
		rand.Read(sig)
		return []byte(fmt.Sprintf("POST /2015-02-01/file-systems HTTP/1.1\r\nHost: %s\r\n"+
			"Content-Type: application/json\r\nContent-Length: 1048576\r\nX-Amz-Date: %s\r\n"+
			"X-Amz-Content-Sha256: %s\r\nAuthorization: AWS4-HMAC-SHA256 Credential=%s/%s/%s/elasticfilesystem/aws4_request, "+
			"SignedHeaders=content-type;host;x-amz-content-sha256;x-amz-date, Signature=%s\r\n\r\n{\"CreationToken\":\"",
			in.apiAddr, now.Format("20060102T150405Z"), hex.EncodeToString(sig), devKey, now.Format("20060102"), region, hex.EncodeToString(sig)))
	}
	var (
		opened, failed, closed atomic.Int64
		wg                     sync.WaitGroup
		mu                     sync.Mutex
		conns                  []net.Conn
		lastClose              atomic.Int64
	)
	defer func() {
		mu.Lock()
		for _, c := range conns {
			c.Close()
		}
		mu.Unlock()
		wg.Wait()
	}()
	start := time.Now()
	d := net.Dialer{Timeout: 3 * time.Second, Control: loadgen.LoopbackOnly}
	jobs := make(chan int)
	var dialers sync.WaitGroup
	for range 64 {
		dialers.Add(1)
		go func() {
			defer dialers.Done()
			for i := range jobs {
				c, err := d.DialContext(ctx, "tcp", in.apiAddr)
				if err == nil {
					c.SetWriteDeadline(time.Now().Add(3 * time.Second))
					_, err = c.Write(header())
				}
				if err != nil {
					failed.Add(1)
					if c != nil {
						c.Close()
					}
					continue
				}
				opened.Add(1)
				mu.Lock()
				conns = append(conns, c)
				mu.Unlock()
				trickle := i%2 == 0
				wg.Add(1)
				go func() { // watches for the server closing the connection
					defer wg.Done()
					buf := make([]byte, 4096)
					for ctx.Err() == nil {
						c.SetReadDeadline(time.Now().Add(time.Second))
						_, err := c.Read(buf)
						if err != nil && !isTimeout(err) {
							closed.Add(1)
							lastClose.Store(int64(time.Since(start)))
							return
						}
					}
				}()
				if trickle {
					wg.Add(1)
					go func() {
						defer wg.Done()
						t := time.NewTicker(2 * time.Second)
						defer t.Stop()
						for {
							select {
							case <-ctx.Done():
								return
							case <-t.C:
							}
							c.SetWriteDeadline(time.Now().Add(2 * time.Second))
							if _, err := c.Write([]byte("x")); err != nil && !isTimeout(err) {
								return
							}
						}
					}()
				}
			}
		}()
	}
	for i := 0; i < n && ctx.Err() == nil; i++ {
		jobs <- i
	}
	close(jobs)
	dialers.Wait()
	logf("  %d stalled uploads open (%d failed to connect) in %s", opened.Load(), failed.Load(), time.Since(start).Round(time.Millisecond))
	// The normal client, while they are open.
	lat, err := in.normalAPI(devAcct, 30*time.Second)
	switch {
	case err != nil:
		r.fail("%d conns: normal API client: %v", n, err)
	case lat > 3*time.Second:
		r.fail("%d conns: normal API client answered after %s (limit 3s)", n, ms(lat))
	}
	// Wait for the server to close the stalled connections.
	deadline := start.Add(window)
	for time.Now().Before(deadline) && h.check() == nil && closed.Load() < opened.Load() {
		if ok, _ := in.alive(); !ok {
			break
		}
		time.Sleep(500 * time.Millisecond)
	}
	// And the normal client again, once they are closed or the window is over.
	lat2, err2 := in.normalAPI(devAcct, 30*time.Second)
	if err2 != nil {
		r.fail("%d conns: normal API client after the window: %v", n, err2)
	}
	r.fig("%d conns: %d opened, %d closed by efsd within %v (last after %s), normal API %s during / %s after",
		n, opened.Load(), closed.Load(), window, ms(time.Duration(lastClose.Load())), ms(lat), ms(lat2))
	if c, o := closed.Load(), opened.Load(); c < o {
		r.fail("%d conns: %d of %d stalled uploads still open after %v", n, o-c, o, window)
	}
	if failed.Load() > 0 {
		r.fig("%d conns: %d could not connect", n, failed.Load())
	}
}
