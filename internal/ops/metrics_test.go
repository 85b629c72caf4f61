package ops_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/efs"
	"github.com/aws/aws-sdk-go-v2/service/efs/types"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	nfsc "github.com/willscott/go-nfs-client/nfs"
	"github.com/willscott/go-nfs-client/nfs/rpc"

	"github.com/efsd/efsd/internal/daemon"
	internalefs "github.com/efsd/efsd/internal/efs"
	"github.com/efsd/efsd/internal/efstest"
	"github.com/efsd/efsd/internal/efstest/nfsclient"
	"github.com/efsd/efsd/internal/ops"
	"github.com/efsd/efsd/internal/replication"
	"github.com/efsd/efsd/internal/treesync"
)

const region = "us-east-1"

// scrape is one parsed /metrics answer.
type scrape map[string]*dto.MetricFamily

func getMetrics(t *testing.T, addr string) scrape {
	t.Helper()
	resp, err := http.Get("http://" + addr + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("/metrics: %d", resp.StatusCode)
	}
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(resp.Body)
	if err != nil {
		t.Fatalf("parse /metrics: %v", err)
	}
	return fams
}

// value is the value of the series of name whose labels include want (a
// histogram's sample count), summed over the matching series; ok is false
// when none matches.
func (s scrape) value(name string, want map[string]string) (v float64, ok bool) {
	f := s[name]
	if f == nil {
		return 0, false
	}
next:
	for _, m := range f.Metric {
		have := map[string]string{}
		for _, l := range m.Label {
			have[l.GetName()] = l.GetValue()
		}
		for k, w := range want {
			if have[k] != w {
				continue next
			}
		}
		ok = true
		switch {
		case m.Counter != nil:
			v += m.Counter.GetValue()
		case m.Gauge != nil:
			v += m.Gauge.GetValue()
		case m.Histogram != nil:
			v += float64(m.Histogram.GetSampleCount())
		case m.Untyped != nil:
			v += m.Untyped.GetValue()
		}
	}
	return v, ok
}

func (s scrape) must(t *testing.T, name string, want map[string]string) float64 {
	t.Helper()
	v, ok := s.value(name, want)
	if !ok {
		t.Fatalf("no series %s%v", name, want)
	}
	return v
}

// A daemon's /metrics moves with real work: API requests through the SDK,
// a replication copying files written into its source, a mount target
// serving NFS calls, and the store committing.
func TestMetricsMove(t *testing.T) {
	srv := efstest.Start(t, efstest.WithConfig(func(c *daemon.Config) {
		c.AdminListen = "127.0.0.1:0"
		c.ReplicationRescanInterval = 200 * time.Millisecond
	}))
	admin := srv.AdminAddr()
	ctx := context.Background()
	c := srv.Client(efstest.AccountA, region)
	account := efstest.AccountA.Account

	before := getMetrics(t, admin)
	if _, ok := before.value("efsd_api_requests_total", map[string]string{"operation": "CreateFileSystem"}); ok {
		t.Fatal("CreateFileSystem counted before any request")
	}
	if _, ok := before.value("go_goroutines", nil); !ok {
		t.Fatal("no Go runtime metrics")
	}
	commitsBefore := before.must(t, "efsd_store_commit_duration_seconds", nil)

	createFS := func(token string) string {
		t.Helper()
		out, err := c.CreateFileSystem(ctx, &efs.CreateFileSystemInput{CreationToken: aws.String(token)})
		if err != nil {
			t.Fatal(err)
		}
		efstest.Eventually(t, 10*time.Second, token+" available", func() bool {
			d, err := c.DescribeFileSystems(ctx, &efs.DescribeFileSystemsInput{FileSystemId: out.FileSystemId})
			return err == nil && d.FileSystems[0].LifeCycleState == types.LifeCycleStateAvailable
		})
		return *out.FileSystemId
	}
	src := createFS("metrics-src")
	if _, err := c.DescribeFileSystems(ctx, &efs.DescribeFileSystemsInput{FileSystemId: aws.String("fs-0123456789abcdef0")}); err == nil {
		t.Fatal("describing a missing file system succeeded")
	}
	srcDir := srv.Volumes().Path(internalefs.FSKey{Account: account, Region: region, ID: src})
	first := bytes.Repeat([]byte("metrics "), 64<<10) // 512 KiB
	for i := range 3 {
		if err := os.WriteFile(filepath.Join(srcDir, fmt.Sprintf("f%d", i)), first, 0o644); err != nil {
			t.Fatal(err)
		}
	}

	after := getMetrics(t, admin)
	if v := after.must(t, "efsd_api_requests_total", map[string]string{"operation": "CreateFileSystem", "code": "201"}); v != 1 {
		t.Fatalf("CreateFileSystem 201 counted %v times, want 1", v)
	}
	if v := after.must(t, "efsd_api_requests_total", map[string]string{"operation": "DescribeFileSystems", "code": "404"}); v != 1 {
		t.Fatalf("DescribeFileSystems 404 counted %v times, want 1", v)
	}
	described := after.must(t, "efsd_api_requests_total", map[string]string{"operation": "DescribeFileSystems"})
	if h := after.must(t, "efsd_api_request_duration_seconds", map[string]string{"operation": "DescribeFileSystems"}); h != described || h < 2 {
		t.Fatalf("DescribeFileSystems: %v latency samples, %v requests", h, described)
	}
	if v := after.must(t, "efsd_store_commit_duration_seconds", nil); v <= commitsBefore {
		t.Fatalf("store commits did not move: %v then %v", commitsBefore, v)
	}
	if v := after.must(t, "efsd_store_writes_total", nil); v < 1 {
		t.Fatalf("store writes %v", v)
	}
	efstest.Eventually(t, 10*time.Second, "source size metered", func() bool {
		v, _ := getMetrics(t, admin).value("efsd_file_system_size_bytes", map[string]string{"file_system_id": src, "account": account})
		return v >= float64(3*len(first))
	})

	rep, err := c.CreateReplicationConfiguration(ctx, &efs.CreateReplicationConfigurationInput{SourceFileSystemId: aws.String(src),
		Destinations: []types.DestinationToCreate{{Region: aws.String(region)}}})
	if err != nil {
		t.Fatal(err)
	}
	dst := *rep.Destinations[0].FileSystemId
	repl := map[string]string{"file_system_id": src, "destination_file_system_id": dst}
	var synced scrape
	efstest.Eventually(t, 20*time.Second, "first replication pass in the metrics", func() bool {
		synced = getMetrics(t, admin)
		_, ok := synced.value("efsd_replication_time_since_last_sync_seconds", repl)
		return ok
	})
	lag := synced.must(t, "efsd_replication_time_since_last_sync_seconds", repl)
	if lag < 0 || lag > 30 {
		t.Fatalf("TimeSinceLastSync %v s just after a pass", lag)
	}
	if v := synced.must(t, "efsd_replication_status", map[string]string{"file_system_id": src, "status": "ENABLED"}); v != 1 {
		t.Fatalf("status ENABLED = %v", v)
	}
	if v := synced.must(t, "efsd_replication_status", map[string]string{"file_system_id": src, "status": "ERROR"}); v != 0 {
		t.Fatalf("status ERROR = %v", v)
	}
	copied := synced.must(t, "efsd_replication_bytes_copied_total", repl)
	if copied < float64(3*len(first)) {
		t.Fatalf("bytes copied %v, want at least %d", copied, 3*len(first))
	}
	if v := synced.must(t, "efsd_replication_files_copied_total", repl); v < 3 {
		t.Fatalf("files copied %v, want 3", v)
	}
	if v := synced.must(t, "efsd_replication_pass_duration_seconds", repl); v < 1 {
		t.Fatalf("%v pass durations", v)
	}
	if v := synced.must(t, "efsd_replication_passes_total", map[string]string{"file_system_id": src, "result": "ok"}); v < 1 {
		t.Fatalf("%v passes", v)
	}
	if v := synced.must(t, "efsd_replication_watched_file_systems", nil); v < 1 {
		t.Fatalf("%v watched file systems while a replication runs", v)
	}

	// More data: bytes copied grow by at least its size, and
	// TimeSinceLastSync stays small as passes keep completing.
	more := bytes.Repeat([]byte("more "), 200<<10) // 1000 KiB
	if err := os.WriteFile(filepath.Join(srcDir, "more"), more, 0o644); err != nil {
		t.Fatal(err)
	}
	efstest.Eventually(t, 20*time.Second, "new bytes replicated in the metrics", func() bool {
		v, _ := getMetrics(t, admin).value("efsd_replication_bytes_copied_total", repl)
		return v >= copied+float64(len(more))
	})
	if lag := getMetrics(t, admin).must(t, "efsd_replication_time_since_last_sync_seconds", repl); lag > 30 {
		t.Fatalf("TimeSinceLastSync %v s while passes complete", lag)
	}

	t.Run("NFS", func(t *testing.T) {
		if os.Geteuid() != 0 {
			t.Skip("the NFS data plane needs root")
		}
		n, err := srv.Service().DescribeNetwork(ctx, internalefs.Principal{Account: account, Region: region})
		if err != nil {
			t.Fatal(err)
		}
		mt, err := c.CreateMountTarget(ctx, &efs.CreateMountTargetInput{FileSystemId: aws.String(src), SubnetId: aws.String(n.Subnets[0].ID)})
		if err != nil {
			t.Fatal(err)
		}
		efstest.Eventually(t, 10*time.Second, "mount target available", func() bool {
			d, err := c.DescribeMountTargets(ctx, &efs.DescribeMountTargetsInput{MountTargetId: mt.MountTargetId})
			return err == nil && d.MountTargets[0].LifeCycleState == types.LifeCycleStateAvailable
		})
		mtl := map[string]string{"mount_target_id": *mt.MountTargetId, "file_system_id": src}
		writes := func(s scrape) float64 {
			v, _ := s.value("efsd_nfs_calls_total", map[string]string{"mount_target_id": *mt.MountTargetId, "procedure": "WRITE"})
			return v
		}
		if w := writes(getMetrics(t, admin)); w != 0 {
			t.Fatalf("%v NFS WRITEs before any", w)
		}

		addr := net.JoinHostPort(*mt.IpAddress, strconv.Itoa(srv.Mounts().Port()))
		rc, err := nfsclient.Dial(addr)
		if err != nil {
			t.Fatal(err)
		}
		defer rc.Close()
		target, err := (&nfsc.Mount{Client: rc}).Mount("/", rpc.NewAuthUnix("efsd-test", 0, 0).Auth())
		if err != nil {
			t.Fatal(err)
		}
		data := bytes.Repeat([]byte("over nfs "), 10_000) // 90 KB
		f, err := target.OpenFile("nfs.bin", 0o644)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := f.Write(data); err != nil {
			t.Fatal(err)
		}
		f.Close()
		r, err := target.Open("nfs.bin")
		if err != nil {
			t.Fatal(err)
		}
		got, err := io.ReadAll(r)
		r.Close()
		if err != nil || !bytes.Equal(got, data) {
			t.Fatalf("read back over NFS: %d bytes, %v", len(got), err)
		}

		s := getMetrics(t, admin)
		if w := writes(s); w < 1 {
			t.Fatalf("%v NFS WRITEs after writing a file", w)
		}
		if v := s.must(t, "efsd_nfs_calls_total", map[string]string{"mount_target_id": *mt.MountTargetId, "program": "mount", "procedure": "MNT"}); v != 1 {
			t.Fatalf("%v MOUNT MNT calls, want 1", v)
		}
		if v := s.must(t, "efsd_nfs_received_bytes_total", map[string]string{"mount_target_id": *mt.MountTargetId, "procedure": "WRITE"}); v < float64(len(data)) {
			t.Fatalf("WRITE received %v bytes, want at least %d", v, len(data))
		}
		if v := s.must(t, "efsd_nfs_sent_bytes_total", map[string]string{"mount_target_id": *mt.MountTargetId, "procedure": "READ"}); v < float64(len(data)) {
			t.Fatalf("READ sent %v bytes, want at least %d", v, len(data))
		}
		if v := s.must(t, "efsd_nfs_connections", mtl); v != 1 {
			t.Fatalf("%v NFS connections open, want 1", v)
		}
		if v := s.must(t, "efsd_nfs_connections_accepted_total", mtl); v < 1 {
			t.Fatalf("%v NFS connections accepted", v)
		}
		rc.Close()
		efstest.Eventually(t, 10*time.Second, "closed NFS connection to leave the gauge", func() bool {
			v, _ := getMetrics(t, admin).value("efsd_nfs_connections", mtl)
			return v == 0
		})
	})

	// A deleted configuration's series go with it.
	if _, err := c.DeleteReplicationConfiguration(ctx, &efs.DeleteReplicationConfigurationInput{SourceFileSystemId: aws.String(src)}); err != nil {
		t.Fatal(err)
	}
	efstest.Eventually(t, 20*time.Second, "deleted replication's series to go", func() bool {
		_, ok := getMetrics(t, admin).value("efsd_replication_bytes_copied_total", repl)
		return !ok
	})
}

// Pass counters are read at scrape time, labelled with the configuration's
// file systems; a configuration that is no longer listed loses its series,
// unless its first pass came after the listing; a failing listing is
// reported rather than hidden.
func TestReplicationSeries(t *testing.T) {
	now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	var reps []*internalefs.Replication
	var listErr error
	var during func()
	m := ops.NewMetrics()
	m.Watch(ops.Sources{Now: func() time.Time { return now }, Replications: func(context.Context) ([]*internalefs.Replication, error) {
		if during != nil {
			during()
		}
		return reps, listErr
	}})
	get := func() scrape {
		t.Helper()
		fams, err := m.Registry().Gather()
		if err != nil {
			t.Fatal(err)
		}
		s := scrape{}
		for _, f := range fams {
			s[f.GetName()] = f
		}
		return s
	}
	reps = []*internalefs.Replication{{ID: "r1", Source: internalefs.FSKey{ID: "fs-src"}, Dest: internalefs.FSKey{ID: "fs-dst"},
		Status: internalefs.RepEnabled, LastReplicatedAt: now.Add(-90 * time.Second)}}
	r1 := map[string]string{"replication_id": "r1", "file_system_id": "fs-src", "destination_file_system_id": "fs-dst"}
	m.ObservePass(replication.Pass{ID: "r1", Duration: 20 * time.Millisecond, Stats: treesync.Stats{FilesCopied: 2, BytesCopied: 300}})
	m.ObservePass(replication.Pass{ID: "r1", Duration: 3 * time.Second, Err: errors.New("source gone")})
	m.ObservePass(replication.Pass{ID: "r1", Scrub: true, Duration: time.Second,
		Stats: treesync.Stats{FilesCompared: 5, BytesCompared: 1000, Differences: 1, FilesCopied: 1, BytesCopied: 10}})
	s := get()
	if v := s.must(t, "efsd_replication_time_since_last_sync_seconds", r1); v != 90 {
		t.Fatalf("TimeSinceLastSync %v, want 90", v)
	}
	for name, want := range map[string]float64{"efsd_replication_files_copied_total": 3, "efsd_replication_bytes_copied_total": 310,
		"efsd_replication_scrub_files_compared_total": 5, "efsd_replication_scrub_bytes_read_total": 1010,
		"efsd_replication_scrub_differences_total": 1, "efsd_replication_pass_duration_seconds": 3} {
		if v := s.must(t, name, r1); v != want {
			t.Errorf("%s = %v, want %v", name, v, want)
		}
	}
	if v := s.must(t, "efsd_replication_passes_total", map[string]string{"replication_id": "r1", "result": "error"}); v != 1 {
		t.Errorf("failed passes %v", v)
	}
	h := s["efsd_replication_pass_duration_seconds"].Metric[0].Histogram
	if sum := h.GetSampleSum(); sum < 4.019 || sum > 4.021 {
		t.Errorf("pass duration sum %v, want 4.02", sum)
	}
	want := map[float64]uint64{0.01: 0, 0.025: 1, 1: 2, 2.5: 2, 5: 3}
	for _, b := range h.Bucket {
		if w, ok := want[b.GetUpperBound()]; ok && b.GetCumulativeCount() != w {
			t.Errorf("bucket %v: %d, want %d", b.GetUpperBound(), b.GetCumulativeCount(), w)
		}
	}
	if v := s.must(t, "efsd_replication_status", map[string]string{"replication_id": "r1", "status": "ENABLED"}); v != 1 {
		t.Errorf("ENABLED %v", v)
	}
	if v := s.must(t, "efsd_replication_status", nil); v != 1 {
		t.Errorf("statuses sum to %v, want 1", v)
	}

	// r1 is deleted; r2's first pass lands while the listing runs.
	reps = nil
	during = func() { m.ObservePass(replication.Pass{ID: "r2", Stats: treesync.Stats{BytesCopied: 7}}) }
	if _, ok := get().value("efsd_replication_bytes_copied_total", r1); ok {
		t.Fatal("deleted configuration still reported")
	}
	during = nil
	// r1's totals were dropped, not merely hidden: listed again, it starts
	// from zero (the memory of deleted configurations is released).
	reps = []*internalefs.Replication{{ID: "r2", Status: internalefs.RepEnabling}, {ID: "r1", Status: internalefs.RepEnabled}}
	s = get()
	if v := s.must(t, "efsd_replication_bytes_copied_total", map[string]string{"replication_id": "r1"}); v != 0 {
		t.Fatalf("deleted configuration's totals kept: %v bytes", v)
	}
	if v := s.must(t, "efsd_replication_bytes_copied_total", map[string]string{"replication_id": "r2"}); v != 7 {
		t.Fatalf("new configuration's first pass lost: %v bytes", v)
	}
	if _, ok := s.value("efsd_replication_time_since_last_sync_seconds", nil); ok {
		t.Fatal("TimeSinceLastSync before any completed pass")
	}
	if v := s.must(t, "efsd_metrics_source_errors", map[string]string{"source": "replications"}); v != 0 {
		t.Fatalf("source errors %v", v)
	}
	listErr = errors.New("store down")
	if v := get().must(t, "efsd_metrics_source_errors", map[string]string{"source": "replications"}); v != 1 {
		t.Fatalf("failed listing reported as %v", v)
	}
}
