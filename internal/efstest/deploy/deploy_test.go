package deploy

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/netip"
	"os"
	"sort"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/ratelimit"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	"github.com/aws/aws-sdk-go-v2/service/efs"
	"github.com/aws/aws-sdk-go-v2/service/efs/types"
	"github.com/aws/smithy-go/middleware"

	"github.com/efsd/efsd/internal/efstest"
)

func TestMain(m *testing.M) { Main(m) }

var acct = efstest.AccountA

// createAvailable creates a file system and waits until it is available.
func createAvailable(t *testing.T, c *efs.Client, token string) string {
	t.Helper()
	ctx := context.Background()
	fs, err := c.CreateFileSystem(ctx, &efs.CreateFileSystemInput{CreationToken: aws.String(token)})
	if err != nil {
		t.Fatalf("create %s: %v", token, err)
	}
	efstest.Eventually(t, 20*time.Second, "file system "+*fs.FileSystemId+" available", func() bool {
		out, err := c.DescribeFileSystems(ctx, &efs.DescribeFileSystemsInput{FileSystemId: fs.FileSystemId})
		return err == nil && out.FileSystems[0].LifeCycleState == types.LifeCycleStateAvailable
	})
	return *fs.FileSystemId
}

// TestTwoDeploymentsCoexist: two efsd processes on one machine, each with
// its own data directory, ports and region, each with a mount target that
// answers NFS NULL, in address ranges that do not overlap.
func TestTwoDeploymentsCoexist(t *testing.T) {
	regions := map[string]string{"a": "us-east-1", "b": "eu-west-1"}
	// b is prepared first and started later, as a deployment whose URL a
	// peer's config or a proxy must know before it runs.
	a := Start(t, Config{Name: "a", Regions: []string{regions["a"]}})
	b := New(t, Config{Name: "b", Regions: []string{regions["b"]}})
	toB := NewProxy(t, b.URL)
	b.Restart()
	deps := map[string]*Deployment{"a": a, "b": b}
	if _, err := efstest.NewClient(toB.URL, acct, regions["b"]).DescribeFileSystems(context.Background(), &efs.DescribeFileSystemsInput{}); err != nil {
		t.Fatalf("b through a proxy made before it ran: %v", err)
	}
	if a.URL == b.URL || a.NFSPort == b.NFSPort || a.DataDir == b.DataDir {
		t.Fatalf("deployments share an address or directory: %+v %+v", a, b)
	}
	ctx := context.Background()
	var vpcs []netip.Prefix
	var ips []string
	for _, name := range []string{"a", "b"} {
		d, region := deps[name], regions[name]
		c := d.Client(acct, region)
		id := createAvailable(t, c, "coexist-"+name)
		if _, err := os.Stat(d.VolumePath(acct.Account, region, id)); err != nil {
			t.Fatalf("%s: volume of %s: %v", name, id, err)
		}
		n := d.Network(acct.Account, region)
		if len(n.Vpcs) == 0 || len(n.Subnets) == 0 || n.NfsPort != d.NFSPort {
			t.Fatalf("%s: network %+v", name, n)
		}
		vpcs = append(vpcs, netip.MustParsePrefix(n.Vpcs[0].CidrBlock))
		mt, err := c.CreateMountTarget(ctx, &efs.CreateMountTargetInput{FileSystemId: &id, SubnetId: &n.Subnets[0].SubnetId})
		if err != nil {
			t.Fatalf("%s: create mount target: %v", name, err)
		}
		efstest.Eventually(t, 20*time.Second, name+" mount target available", func() bool {
			out, err := c.DescribeMountTargets(ctx, &efs.DescribeMountTargetsInput{MountTargetId: mt.MountTargetId})
			return err == nil && out.MountTargets[0].LifeCycleState == types.LifeCycleStateAvailable
		})
		addr := fmt.Sprintf("%s:%d", *mt.IpAddress, d.NFSPort)
		var nfsErr error
		efstest.Eventually(t, 10*time.Second, name+" NFS NULL at "+addr, func() bool {
			nfsErr = NFSNull(addr, 2*time.Second)
			return nfsErr == nil
		})
		ips = append(ips, addr)
		t.Logf("%s: %s serves %s, fs %s, VPC %s, mount target NFS at %s", name, d.URL, region, id, n.Vpcs[0].CidrBlock, addr)
		// The other region is not served here.
		other := regions[map[string]string{"a": "b", "b": "a"}[name]]
		if _, err := d.Client(acct, other).DescribeFileSystems(ctx, &efs.DescribeFileSystemsInput{}); err == nil {
			t.Errorf("%s answered for %s, which it does not serve", name, other)
		}
	}
	if vpcs[0].Overlaps(vpcs[1]) {
		t.Fatalf("the deployments' default VPCs overlap: %v %v", vpcs[0], vpcs[1])
	}
	// Each mount target is reachable only at its own deployment's port.
	if err := NFSNull(fmt.Sprintf("%s:%d", netip.MustParseAddrPort(ips[0]).Addr(), b.NFSPort), time.Second); err == nil {
		t.Errorf("a's mount target address answers on b's NFS port")
	}
	a.Stop()
	b.Stop()
}

// fastRetries makes the SDK retry up to attempts times with a short fixed
// backoff and counts the attempts that reach the wire.
func fastRetries(attempts int, count *atomic.Int64) func(*efs.Options) {
	return func(o *efs.Options) {
		o.RetryMaxAttempts = attempts
		o.Retryer = retry.NewStandard(func(so *retry.StandardOptions) {
			so.MaxAttempts = attempts
			so.RateLimiter = ratelimit.None
			so.Backoff = retry.BackoffDelayerFunc(func(int, error) (time.Duration, error) { return 50 * time.Millisecond, nil })
		})
		o.APIOptions = append(o.APIOptions, func(st *middleware.Stack) error {
			return st.Finalize.Insert(middleware.FinalizeMiddlewareFunc("countAttempts",
				func(ctx context.Context, in middleware.FinalizeInput, next middleware.FinalizeHandler) (middleware.FinalizeOutput, middleware.Metadata, error) {
					count.Add(1)
					return next.HandleFinalize(ctx, in)
				}), "Retry", middleware.After)
		})
	}
}

func median(ds []time.Duration) time.Duration {
	s := append([]time.Duration(nil), ds...)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	return s[len(s)/2]
}

// TestProxyFaults: SDK calls through the proxy see each fault, and work
// again once it is removed.
func TestProxyFaults(t *testing.T) {
	d := Start(t, Config{Name: "faults", Regions: []string{"us-east-1"}})
	ctx := context.Background()
	describe := func(c *efs.Client) (time.Duration, error) {
		start := time.Now()
		_, err := c.DescribeFileSystems(ctx, &efs.DescribeFileSystemsInput{})
		return time.Since(start), err
	}

	t.Run("latency", func(t *testing.T) {
		px := NewProxy(t, d.URL)
		c := efstest.NewClient(px.URL, acct, "us-east-1")
		var base []time.Duration
		for range 5 {
			el, err := describe(c)
			if err != nil {
				t.Fatal(err)
			}
			base = append(base, el)
		}
		const lat, jit = 60 * time.Millisecond, 10 * time.Millisecond
		tx := px.Latency(lat, jit)
		var slow []time.Duration
		for range 5 {
			el, err := describe(c)
			if err != nil {
				t.Fatal(err)
			}
			slow = append(slow, el)
			if el < 2*(lat-jit) {
				t.Errorf("a call took %v with %v±%v each way; want ≥ %v", el, lat, jit, 2*(lat-jit))
			}
		}
		tx.Remove()
		el, err := describe(c)
		if err != nil || el >= lat {
			t.Errorf("after removal: %v, %v", el, err)
		}
		t.Logf("DescribeFileSystems median %v plain, %v with %v±%v one-way latency, %v after removal", median(base), median(slow), lat, jit, el)
	})

	t.Run("bandwidth", func(t *testing.T) {
		px := NewProxy(t, d.URL)
		// A 512 KiB body: the server reads it all to check its hash.
		pad := bytes.Repeat([]byte(" "), 512<<10)
		body := func(token string) []byte { return fmt.Appendf(nil, `{"CreationToken":%q%s}`, token, pad) }
		send := func(token string) time.Duration {
			req := efstest.SignedRequest(t, px.URL, acct, "us-east-1", http.MethodPost, "/2015-02-01/file-systems", body(token))
			start := time.Now()
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			out := efstest.ReadBody(t, resp)
			if resp.StatusCode != http.StatusCreated {
				t.Fatalf("status %d: %s", resp.StatusCode, out)
			}
			return time.Since(start)
		}
		plain := send("bw-plain")
		const mbit = 10
		tx := px.Bandwidth(mbit)
		capped := send("bw-capped")
		tx.Remove()
		// 512 KiB at 10 Mbit/s is 0.42 s.
		size := len(body("bw-capped"))
		want := time.Duration(float64(size*8) / (mbit * 1e6) * float64(time.Second))
		if capped < want*8/10 {
			t.Errorf("%d bytes at %d Mbit/s took %v; want about %v", size, mbit, capped, want)
		}
		t.Logf("%d KiB request: %v plain, %v at %d Mbit/s (ideal %v)", size>>10, plain, capped, mbit, want)
	})

	t.Run("cut after N bytes", func(t *testing.T) {
		px := NewProxy(t, d.URL)
		var attempts atomic.Int64
		c := efstest.NewClient(px.URL, acct, "us-east-1", fastRetries(200, &attempts))
		tx := px.CutAfter(100, Upstream) // the request dies in its headers
		done := make(chan error, 1)
		go func() {
			_, err := c.CreateFileSystem(ctx, &efs.CreateFileSystemInput{CreationToken: aws.String("cut")})
			done <- err
		}()
		efstest.Eventually(t, 10*time.Second, "the SDK to retry the cut request", func() bool {
			select {
			case err := <-done:
				t.Fatalf("the call ended after %d attempts while every connection was cut: %v", attempts.Load(), err)
			default:
			}
			return attempts.Load() >= 3
		})
		select {
		case err := <-done:
			t.Fatalf("the call ended while every connection was cut: %v", err)
		default:
		}
		tx.Remove()
		select {
		case err := <-done:
			if err != nil {
				t.Fatalf("the call failed after the cut was removed: %v", err)
			}
		case <-time.After(10 * time.Second):
			t.Fatal("the call did not finish after the cut was removed")
		}
		t.Logf("CreateFileSystem succeeded on attempt %d after connections were cut at 100 bytes", attempts.Load())
	})

	for _, mode := range []PartitionMode{Drop, Refuse} {
		name := map[PartitionMode]string{Drop: "partition drop", Refuse: "partition refuse"}[mode]
		t.Run(name, func(t *testing.T) {
			px := NewProxy(t, d.URL)
			c := efstest.NewClient(px.URL, acct, "us-east-1")
			if _, err := describe(c); err != nil {
				t.Fatal(err)
			}
			const length, timeout = 2 * time.Second, 700 * time.Millisecond
			healAt := time.Now().Add(length)
			px.Partition(mode, length)
			cctx, cancel := context.WithTimeout(ctx, timeout)
			start := time.Now()
			_, err := c.DescribeFileSystems(cctx, &efs.DescribeFileSystemsInput{})
			failed := time.Since(start)
			cancel()
			if err == nil {
				t.Fatal("a call went through the partition")
			}
			if failed > timeout+500*time.Millisecond {
				t.Fatalf("the call failed only after %v; the client's timeout is %v", failed, timeout)
			}
			var recovered time.Time
			efstest.Eventually(t, length+10*time.Second, "calls to work after the partition", func() bool {
				cctx, cancel := context.WithTimeout(ctx, timeout)
				defer cancel()
				_, err := c.DescribeFileSystems(cctx, &efs.DescribeFileSystemsInput{})
				recovered = time.Now()
				return err == nil
			})
			if recovered.Before(healAt) {
				t.Fatalf("a call went through %v before the partition healed", healAt.Sub(recovered))
			}
			t.Logf("%s: call failed after %v (%v); calls work %v after the %v partition healed",
				name, failed.Round(time.Millisecond), errKind(err), recovered.Sub(healAt).Round(time.Millisecond), length)
		})
	}

	t.Run("reset storm", func(t *testing.T) {
		px := NewProxy(t, d.URL)
		c := efstest.NewClient(px.URL, acct, "us-east-1")
		const storm = 500 * time.Millisecond
		end := time.Now().Add(storm)
		px.Resets(1).RemoveAfter(storm)
		resets := 0
		for i := 0; i < 1000 && time.Now().Add(50*time.Millisecond).Before(end); i++ {
			if _, err := describe(c); err == nil {
				t.Fatalf("call %d went through a reset storm", i)
			}
			resets++
		}
		efstest.Eventually(t, 5*time.Second, "calls to work after the storm", func() bool {
			_, err := describe(c)
			return err == nil
		})
		t.Logf("%d calls reset during a %v storm; calls work after it", resets, storm)
	})
}

func errKind(err error) string {
	switch {
	case errors.Is(err, context.DeadlineExceeded):
		return "deadline exceeded"
	default:
		s := err.Error()
		if len(s) > 80 {
			s = s[len(s)-80:]
		}
		return s
	}
}

// TestKillScheduleReplays: the same seed draws the same delays and victims.
func TestKillScheduleReplays(t *testing.T) {
	a, b := NewKillScheduleSeed(42, 10*time.Millisecond, 500*time.Millisecond), NewKillScheduleSeed(42, 10*time.Millisecond, 500*time.Millisecond)
	c := NewKillScheduleSeed(43, 10*time.Millisecond, 500*time.Millisecond)
	differ := false
	for range 100 {
		x, y, z := a.Next(), b.Next(), c.Next()
		if x != y || a.Pick(2) != b.Pick(2) {
			t.Fatal("one seed drew two schedules")
		}
		c.Pick(2)
		if x < 10*time.Millisecond || x > 500*time.Millisecond {
			t.Fatalf("delay %v outside the bounds", x)
		}
		differ = differ || x != z
	}
	if !differ {
		t.Fatal("two seeds drew the same schedule")
	}
}

// TestKill9AtRandomMomentsKeepsAcknowledged: a deployment killed with
// SIGKILL at seeded random moments while file systems are being created,
// and restarted each time, keeps every creation it acknowledged.
func TestKill9AtRandomMomentsKeepsAcknowledged(t *testing.T) {
	d := Start(t, Config{Name: "kill9", Regions: []string{"us-east-1"}})
	// Half the rounds create through a proxy, which outlives the process
	// behind it: it dials the deployment anew for each connection.
	px := NewProxy(t, d.URL)
	ks := NewKillSchedule(t, 50*time.Millisecond, 400*time.Millisecond)
	ctx := context.Background()
	var acked []string
	const rounds = 4
	for round := range rounds {
		c := d.Client(acct, "us-east-1")
		if round%2 == 1 {
			c = efstest.NewClient(px.URL, acct, "us-east-1")
		}
		stop := make(chan struct{})
		done := make(chan []string)
		go func() {
			var ids []string
			for i := 0; i < 10000; i++ {
				select {
				case <-stop:
					done <- ids
					return
				default:
				}
				fs, err := c.CreateFileSystem(ctx, &efs.CreateFileSystemInput{CreationToken: aws.String(fmt.Sprintf("r%d-%d", round, i))})
				if err != nil {
					break // the process died mid-call: not acknowledged
				}
				ids = append(ids, *fs.FileSystemId)
			}
			<-stop
			done <- ids
		}()
		wait, _ := ks.KillAfter(d, nil)
		close(stop)
		ids := <-done
		acked = append(acked, ids...)
		t.Logf("round %d: killed after %v with %d creations acknowledged", round, wait, len(ids))
		d.Restart()
	}
	if len(acked) == 0 {
		t.Fatal("no creation was acknowledged before any kill")
	}
	c := d.Client(acct, "us-east-1")
	for _, id := range acked {
		if _, err := c.DescribeFileSystems(ctx, &efs.DescribeFileSystemsInput{FileSystemId: aws.String(id)}); err != nil {
			t.Fatalf("%s acknowledged before a kill -9 and lost: %v", id, err)
		}
	}
	d.Stop()
	t.Logf("%d acknowledged file systems kept over %d kill -9s", len(acked), rounds)
}

// TestSumMetric: samples of one family are summed over label sets, and
// neither a family whose name extends it nor a quoted '}' confuses it.
func TestSumMetric(t *testing.T) {
	text := `# HELP efsd_x_total x
# TYPE efsd_x_total counter
efsd_x_total{replication_id="r1",peer="b}"} 10
efsd_x_total{replication_id="r\"2"} 2.5
efsd_x_total_seconds 100
efsd_x_totally 1000
efsd_y 7
`
	v, ok, err := sumMetric(strings.NewReader(text), "efsd_x_total")
	if err != nil || !ok || v != 12.5 {
		t.Fatalf("efsd_x_total: %v %v %v, want 12.5", v, ok, err)
	}
	if v, ok, err := sumMetric(strings.NewReader(text), "efsd_y"); err != nil || !ok || v != 7 {
		t.Fatalf("efsd_y: %v %v %v", v, ok, err)
	}
	if _, ok, err := sumMetric(strings.NewReader(text), "efsd_z"); err != nil || ok {
		t.Fatalf("efsd_z found: %v", err)
	}
	if _, _, err := sumMetric(strings.NewReader(`efsd_x_total{a="b 1`+"\n"), "efsd_x_total"); err == nil {
		t.Fatal("unterminated labels accepted")
	}
}

// TestLinkWritesPeerConfig: link gives each side a peerListen at its own
// PeerAddr and an entry for the other with its regions, fingerprint and
// endpoint (the proxy's for A→B); linking again replaces, a third
// deployment adds.
func TestLinkWritesPeerConfig(t *testing.T) {
	a := New(t, Config{Name: "a", Regions: []string{"us-east-1"}})
	b := New(t, Config{Name: "b", Regions: []string{"eu-west-1"}})
	c := New(t, Config{Name: "c", Regions: []string{"ap-south-1"}})
	px := NewProxy(t, b.PeerAddr)
	fp := func(c byte) string { return strings.Repeat(string(c), 64) }
	link(t, a, b, LinkOptions{Proxy: px, AccountsAtB: []string{acct.Account}}, fp('a'), fp('b'))
	link(t, a, b, LinkOptions{Proxy: px, AccountsAtB: []string{acct.Account}}, fp('a'), fp('b'))
	link(t, a, c, LinkOptions{}, fp('a'), fp('c'))
	read := func(d *Deployment) map[string]any {
		b, err := os.ReadFile(d.ConfigPath)
		if err != nil {
			t.Fatal(err)
		}
		var m map[string]any
		if err := json.Unmarshal(b, &m); err != nil {
			t.Fatal(err)
		}
		return m
	}
	ca, cb := read(a), read(b)
	if ca["peerListen"] != a.PeerAddr || cb["peerListen"] != b.PeerAddr || a.PeerAddr == b.PeerAddr {
		t.Fatalf("peerListen %v %v", ca["peerListen"], cb["peerListen"])
	}
	if ca["adminListen"] != a.AdminAddr || a.AdminAddr == a.APIAddr || a.PeerAddr == a.AdminAddr {
		t.Fatalf("ports: %+v", a)
	}
	got, _ := json.Marshal(ca["peers"])
	want, _ := json.Marshal([]map[string]any{
		{"name": "b", "endpoint": "https://" + px.Addr, "regions": []string{"eu-west-1"}, "accounts": []string{acct.Account}, "certificateSha256": fp('b')},
		{"name": "c", "endpoint": "https://" + c.PeerAddr, "regions": []string{"ap-south-1"}, "certificateSha256": fp('c')},
	})
	if string(got) != string(want) {
		t.Fatalf("a's peers\n got %s\nwant %s", got, want)
	}
	got, _ = json.Marshal(cb["peers"])
	want, _ = json.Marshal([]map[string]any{{"name": "a", "endpoint": "https://" + a.PeerAddr, "regions": []string{"us-east-1"}, "certificateSha256": fp('a')}})
	if string(got) != string(want) {
		t.Fatalf("b's peers\n got %s\nwant %s", got, want)
	}
}

// TestAdminListener: every deployment serves /metrics at AdminAddr.
func TestAdminListener(t *testing.T) {
	d := Start(t, Config{Name: "admin", Regions: []string{"us-east-1"}})
	var v float64
	var ok bool
	efstest.Eventually(t, 10*time.Second, "efsd_replication_max_watches at "+d.AdminAddr, func() bool {
		v, ok = d.Metric(t, "efsd_replication_max_watches")
		return ok
	})
	if v <= 0 {
		t.Fatalf("efsd_replication_max_watches = %v", v)
	}
	d.Stop()
}
