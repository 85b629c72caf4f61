package deploy

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	toxiproxy "github.com/Shopify/toxiproxy/v2"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"
)

// Direction is which way through a proxy a fault acts on.
type Direction string

// Directions: Upstream is from the client to the upstream (a request's
// bytes), Downstream the way back (a response's bytes).
const (
	Upstream   Direction = "upstream"
	Downstream Direction = "downstream"
)

var both = []Direction{Upstream, Downstream}

var quietToxics sync.Once

// Proxy is an in-process toxiproxy listening on a loopback port and
// forwarding to one upstream address. Faults are added as toxics, each
// removable on its own; every toxic applies to connections already open and
// to new ones.
type Proxy struct {
	// Addr is where clients connect (host:port); URL is http://Addr.
	Addr string
	URL  string

	t      testing.TB
	p      *toxiproxy.Proxy
	mu     sync.Mutex
	seq    int
	heals  []*time.Timer
	closed bool
}

// NewProxy starts a proxy on a free loopback port in front of upstream (a
// host:port or an http:// URL, e.g. a Deployment's URL). It stops when the
// test ends.
func NewProxy(t testing.TB, upstream string) *Proxy {
	t.Helper()
	upstream = strings.TrimPrefix(upstream, "http://")
	if !strings.HasPrefix(upstream, "127.") && !strings.HasPrefix(upstream, "localhost:") {
		t.Fatalf("deploy: proxy upstream %q is not on loopback", upstream)
	}
	// toxiproxy's toxics log through zerolog's global logger, to stdout;
	// silence them (efsd does not use zerolog).
	quietToxics.Do(func() { zerolog.SetGlobalLevel(zerolog.Disabled) })
	srv := toxiproxy.NewServer(toxiproxy.NewMetricsContainer(prometheus.NewRegistry()), zerolog.Nop())
	p := toxiproxy.NewProxy(srv, "efsd-"+t.Name(), "127.0.0.1:0", upstream)
	if err := p.Start(); err != nil {
		t.Fatalf("deploy: start proxy: %v", err)
	}
	px := &Proxy{Addr: p.Listen, URL: "http://" + p.Listen, t: t, p: p}
	t.Cleanup(px.close)
	return px
}

func (px *Proxy) close() {
	px.mu.Lock()
	px.closed = true
	for _, tm := range px.heals {
		tm.Stop()
	}
	px.mu.Unlock()
	px.p.Toxics.ResetToxics(context.Background())
	px.p.Stop()
}

// Toxic is one fault on a proxy.
type Toxic struct {
	px     *Proxy
	names  []string
	refuse bool // a closed port, reopened on Remove
	once   sync.Once
}

// Remove takes the fault away; removing twice is harmless.
func (tx *Toxic) Remove() {
	tx.once.Do(func() {
		for _, n := range tx.names {
			// A toxic already gone (RemoveAll) is not an error here.
			tx.px.p.Toxics.RemoveToxic(context.Background(), n)
		}
		if tx.refuse {
			tx.px.reopen()
		}
	})
}

// add installs a toxic of type typ on each direction with attributes and
// the probability toxicity (0..1] that a connection gets it.
func (px *Proxy) add(typ string, dirs []Direction, toxicity float32, attrs map[string]any) *Toxic {
	px.t.Helper()
	tx := &Toxic{px: px}
	for _, dir := range dirs {
		px.mu.Lock()
		px.seq++
		name := fmt.Sprintf("%s_%s_%d", typ, dir, px.seq)
		px.mu.Unlock()
		b, err := json.Marshal(map[string]any{"name": name, "type": typ, "stream": string(dir), "toxicity": toxicity, "attributes": attrs})
		if err != nil {
			px.t.Fatal(err)
		}
		if _, err := px.p.Toxics.AddToxicJson(strings.NewReader(string(b))); err != nil {
			tx.Remove()
			px.t.Fatalf("deploy: add %s toxic: %v", typ, err)
		}
		tx.names = append(tx.names, name)
	}
	return tx
}

// Latency delays every byte by latency ± jitter in each direction, like a
// link with that one-way delay: a request and its response take at least
// 2×latency longer.
func (px *Proxy) Latency(latency, jitter time.Duration) *Toxic {
	return px.add("latency", both, 1, map[string]any{"latency": latency.Milliseconds(), "jitter": jitter.Milliseconds()})
}

// Bandwidth caps each direction of each connection at mbitPerSecond
// megabits (10^6 bits) a second.
func (px *Proxy) Bandwidth(mbitPerSecond float64) *Toxic {
	// toxiproxy's rate is in KB/s (10^3 bytes).
	rate := int64(mbitPerSecond * 1e6 / 8 / 1e3)
	if rate < 1 {
		rate = 1
	}
	return px.add("bandwidth", both, 1, map[string]any{"rate": rate})
}

// CutAfter closes every connection once n bytes have gone through it in
// dir: a request (Upstream) or response (Downstream) cut off mid-way.
func (px *Proxy) CutAfter(n int64, dir Direction) *Toxic {
	return px.add("limit_data", []Direction{dir}, 1, map[string]any{"bytes": n})
}

// Drop silently drops every byte going dir, on the connections already
// open and on new ones, as a one-way partition does: with Downstream,
// requests on an open connection reach the upstream, which acts on them,
// but their answers are lost (a new connection cannot complete a TLS
// handshake). Connections it stalled are closed when it is removed.
func (px *Proxy) Drop(dir Direction) *Toxic {
	return px.add("timeout", []Direction{dir}, 1, map[string]any{"timeout": 0})
}

// Resets resets (TCP RST) a connection as soon as data arrives on it,
// for a fraction (0..1] of connections: a storm of resets at 1.
func (px *Proxy) Resets(fraction float32) *Toxic {
	return px.add("reset_peer", []Direction{Upstream}, fraction, map[string]any{"timeout": 0})
}

// PartitionMode is how a partition looks to the two sides.
type PartitionMode int

const (
	// Drop accepts connections and silently drops every byte both ways,
	// as a cable pulled mid-path does: calls hang until their timeouts.
	// Connections that were stalled are closed when it heals.
	Drop PartitionMode = iota
	// Refuse closes the proxy's port and every open connection: calls
	// fail at once with connection refused.
	Refuse
)

// Partition cuts the link for d (0: until healed) and returns a Toxic
// whose Remove heals it early.
func (px *Proxy) Partition(mode PartitionMode, d time.Duration) *Toxic {
	px.t.Helper()
	var tx *Toxic
	switch mode {
	case Drop:
		tx = px.add("timeout", both, 1, map[string]any{"timeout": 0})
	case Refuse:
		px.p.Stop()
		tx = &Toxic{px: px, refuse: true}
	}
	if d > 0 {
		tx.RemoveAfter(d)
	}
	return tx
}

// RemoveAfter removes the fault once d has passed: a storm of resets for
// 5 s is px.Resets(1).RemoveAfter(5 * time.Second).
func (tx *Toxic) RemoveAfter(d time.Duration) *Toxic {
	tx.px.mu.Lock()
	defer tx.px.mu.Unlock()
	if !tx.px.closed {
		tx.px.heals = append(tx.px.heals, time.AfterFunc(d, tx.Remove))
	}
	return tx
}

// RemoveAll takes every fault away and reopens a refused port.
func (px *Proxy) RemoveAll() {
	px.p.Toxics.ResetToxics(context.Background())
	px.reopen()
}

// reopen starts a stopped proxy again on the same port.
func (px *Proxy) reopen() {
	px.mu.Lock()
	defer px.mu.Unlock()
	if px.closed {
		return
	}
	if err := px.p.Start(); err != nil && err != toxiproxy.ErrProxyAlreadyStarted {
		px.t.Errorf("deploy: reopen proxy on %s: %v", px.Addr, err)
	}
}
