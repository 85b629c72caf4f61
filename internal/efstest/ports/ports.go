// Package ports hands tests TCP ports to give servers they start, when
// the port must be known before the server runs (a peer's address in the
// other side's config, a port kept across restarts).
//
// A port found free by binding port 0 is an ephemeral port: the kernel
// may hand it out again to any later bind to port 0 — another server of
// the same test, started or restarted meanwhile, listening on "port 0" —
// and the test fails with "address already in use". So ports come from
// below the kernel's ephemeral range, which port-0 binds never use, each
// checked free and never handed out twice by this process. Several test
// processes start at random places in that range.
package ports

import (
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
)

// The allocator is process-wide, as ports are: every test of the process
// draws from it.
var (
	mu         sync.Mutex
	next       int
	low, limit int // [low, limit): below the ephemeral range
)

// lowest is the bottom of the range ports are taken from.
const lowest = 10000

// Free returns a TCP port free on 127.0.0.1 now, outside the ephemeral
// range, that this process never returned before.
func Free(t testing.TB) int {
	t.Helper()
	mu.Lock()
	defer mu.Unlock()
	if limit == 0 {
		low, limit = lowest, ephemeralLow()
		if limit-low < 1000 {
			t.Fatalf("ports: the ephemeral range starts at %d, leaving too few ports below it", limit)
		}
		next = low + rand.IntN(limit-low)
	}
	for range limit - low {
		p := next
		if next++; next == limit {
			next = low
		}
		ln, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", p))
		if err != nil {
			continue
		}
		ln.Close()
		return p
	}
	t.Fatalf("ports: no free port in [%d, %d)", low, limit)
	return 0
}

// ephemeralLow is the first port of the kernel's ephemeral range (32768
// when it cannot be read).
func ephemeralLow() int {
	b, err := os.ReadFile("/proc/sys/net/ipv4/ip_local_port_range")
	if err != nil {
		return 32768
	}
	f := strings.Fields(string(b))
	if len(f) != 2 {
		return 32768
	}
	n, err := strconv.Atoi(f[0])
	if err != nil || n <= lowest {
		return 32768
	}
	return n
}
