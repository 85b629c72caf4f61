package ops

import (
	"context"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/efsd/efsd/internal/efs"
	"github.com/efsd/efsd/internal/mounts"
	"github.com/efsd/efsd/internal/replication"
)

// Sources is the state the metrics read at scrape time. Nil fields are
// skipped.
type Sources struct {
	// Replications lists every replication configuration (efs.Service).
	Replications func(ctx context.Context) ([]*efs.Replication, error)
	// Notification reports on the replication engine's inotify use.
	Notification func() replication.Stats
	// Usages is the metered size of every file system (volume.Manager).
	Usages func() map[efs.FSKey]efs.Usage
	// MountTargets reports on every NFS server running (mounts.Manager).
	MountTargets func() []mounts.TargetStats
	// Now is the clock TimeSinceLastSync is measured with: the domain's,
	// which stamped LastReplicatedTimestamp.
	Now func() time.Time
}

// Metrics is one daemon's Prometheus registry: what it counts as things
// happen (API requests, replication passes, store commits) and what it
// reads from the daemon's state at each scrape. Each daemon has its own;
// nothing is registered globally.
type Metrics struct {
	reg *prometheus.Registry

	apiRequests *prometheus.CounterVec
	apiDuration *prometheus.HistogramVec

	commitDuration prometheus.Histogram
	commitWrites   prometheus.Counter
	commitFailures prometheus.Counter

	mu     sync.Mutex
	passes map[string]*passTotals // by replication configuration ID
}

// passTotals accumulates one configuration's passes; they are turned into
// metrics at scrape time, labelled with the configuration's file systems,
// and dropped once the configuration is gone.
type passTotals struct {
	ok, failed, scrubs, scrubsFailed         uint64
	filesCopied, bytesCopied, deleted        uint64
	sentChunks, sentBytes                    uint64
	scrubCompared, scrubBytes, scrubRepaired uint64
	durCount                                 uint64
	durSum                                   float64
	durBuckets                               []uint64 // per bucket of passBuckets, not cumulative
	born                                     time.Time
}

// passBuckets spans a pass that finds nothing to do (milliseconds) to a
// first copy of a large tree (an hour).
var passBuckets = []float64{.005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60, 300, 900, 3600}

// NewMetrics returns a registry holding the process's Go runtime and
// process metrics and efsd's own; Watch adds the scrape-time ones.
func NewMetrics() *Metrics {
	m := &Metrics{
		reg: prometheus.NewRegistry(),
		apiRequests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "efsd_api_requests_total",
			Help: "EFS API requests answered, by operation and HTTP status code.",
		}, []string{"operation", "code"}),
		apiDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "efsd_api_request_duration_seconds",
			Help:    "Time to answer an EFS API request, from its headers to its response, by operation.",
			Buckets: []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10},
		}, []string{"operation"}),
		commitDuration: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "efsd_store_commit_duration_seconds",
			Help:    "Time of one group commit of the store, BEGIN through the fsync of COMMIT.",
			Buckets: []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5},
		}),
		commitWrites: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "efsd_store_writes_total",
			Help: "Write transactions committed through group commits (several share one commit).",
		}),
		commitFailures: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "efsd_store_commit_failures_total",
			Help: "Group commits that failed as a whole.",
		}),
		passes: map[string]*passTotals{},
	}
	m.reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		m.apiRequests, m.apiDuration, m.commitDuration, m.commitWrites, m.commitFailures)
	return m
}

// Watch registers the metrics read from src at each scrape.
func (m *Metrics) Watch(src Sources) {
	if src.Now == nil {
		src.Now = time.Now
	}
	m.reg.MustRegister(&stateCollector{m: m, src: src})
}

// Handler serves the registry in Prometheus' text format.
func (m *Metrics) Handler() http.Handler {
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{Registry: m.reg, MaxRequestsInFlight: 4})
}

// Registry is the registry itself, for tests and embedding.
func (m *Metrics) Registry() *prometheus.Registry { return m.reg }

// ObserveRequest counts one API request (api.Config.Observe).
func (m *Metrics) ObserveRequest(op string, status int, d time.Duration) {
	m.apiRequests.WithLabelValues(op, strconv.Itoa(status)).Inc()
	m.apiDuration.WithLabelValues(op).Observe(d.Seconds())
}

// ObserveCommit counts one group commit (sqlite.Store.ObserveCommits).
func (m *Metrics) ObserveCommit(writes int, d time.Duration, err error) {
	m.commitDuration.Observe(d.Seconds())
	if err != nil {
		m.commitFailures.Inc()
		return
	}
	m.commitWrites.Add(float64(writes))
}

// ObservePass counts one replication pass (replication.Options.OnPass).
func (m *Metrics) ObservePass(p replication.Pass) {
	m.mu.Lock()
	defer m.mu.Unlock()
	t := m.passes[p.ID]
	if t == nil {
		t = &passTotals{durBuckets: make([]uint64, len(passBuckets)), born: time.Now()}
		m.passes[p.ID] = t
	}
	switch {
	case p.Err != nil:
		t.failed++
	default:
		t.ok++
	}
	if p.Scrub {
		t.scrubs++
		if p.Err != nil {
			t.scrubsFailed++
		}
		t.scrubCompared += uint64(max(p.Stats.FilesCompared, 0))
		t.scrubBytes += uint64(max(p.Stats.BytesCompared+p.Stats.BytesCopied, 0))
		t.scrubRepaired += uint64(max(p.Stats.Differences, 0))
	}
	t.filesCopied += uint64(max(p.Stats.FilesCopied, 0))
	t.bytesCopied += uint64(max(p.Stats.BytesCopied, 0))
	t.sentChunks += uint64(max(p.ChunksSent, 0))
	t.sentBytes += uint64(max(p.BytesSent, 0))
	t.deleted += uint64(max(p.Stats.Deleted, 0))
	s := p.Duration.Seconds()
	t.durCount++
	t.durSum += s
	for i, b := range passBuckets {
		if s <= b {
			t.durBuckets[i]++
			break
		}
	}
}

// replicationStatuses are the values efsd_replication_status reports, one
// series each, so that an alert can match status="ERROR" == 1.
var replicationStatuses = []string{efs.RepEnabling, efs.RepEnabled, efs.RepPaused, efs.RepError, efs.RepDeleting}

func desc(name, help string, labels ...string) *prometheus.Desc {
	return prometheus.NewDesc(name, help, labels, nil)
}

var (
	repLabels = []string{"replication_id", "file_system_id", "destination_file_system_id"}

	dTimeSinceSync = desc("efsd_replication_time_since_last_sync_seconds",
		"Seconds since the replication's LastReplicatedTimestamp (EFS's TimeSinceLastSync): every change to the source before then is on the destination. Absent until the first pass completes.", repLabels...)
	dLastSync = desc("efsd_replication_last_sync_timestamp_seconds",
		"LastReplicatedTimestamp as a Unix time. Absent until the first pass completes.", repLabels...)
	dRepStatus = desc("efsd_replication_status",
		"1 for the replication's current status, 0 for the others.", append(repLabels, "status")...)
	dPasses = desc("efsd_replication_passes_total",
		"Replication passes finished since efsd started, by result (ok, error).", append(repLabels, "result")...)
	dFilesCopied = desc("efsd_replication_files_copied_total",
		"Files copied to the destination since efsd started.", repLabels...)
	dBytesCopied = desc("efsd_replication_bytes_copied_total",
		"Bytes of file data copied to the destination since efsd started.", repLabels...)
	dSentChunks = desc("efsd_replication_sent_chunks_total",
		"Chunks sent to a peer deployment holding the destination, since efsd started.", repLabels...)
	dSentBytes = desc("efsd_replication_sent_bytes_total",
		"Bytes of chunk data sent to a peer deployment holding the destination (after compression), since efsd started.", repLabels...)
	dDeleted = desc("efsd_replication_entries_deleted_total",
		"Entries deleted from the destination because they left the source, since efsd started.", repLabels...)
	dPassDuration = desc("efsd_replication_pass_duration_seconds",
		"Duration of replication passes (scrubs included) since efsd started.", repLabels...)
	dScrubs = desc("efsd_replication_scrubs_total",
		"Scrubs (passes comparing every file by content) finished since efsd started, by result (ok, error).", append(repLabels, "result")...)
	dScrubFiles = desc("efsd_replication_scrub_files_compared_total",
		"Files compared by content in scrubs.", repLabels...)
	dScrubBytes = desc("efsd_replication_scrub_bytes_read_total",
		"Bytes read from the source by scrubs (compared or copied).", repLabels...)
	dScrubRepaired = desc("efsd_replication_scrub_differences_total",
		"Differences scrubs found on the destination and repaired.", repLabels...)

	dInotifyInstances = desc("efsd_replication_inotify_instances",
		"inotify instances open for change notification (0 or 1).")
	dWatchedFS = desc("efsd_replication_watched_file_systems",
		"Source file systems subscribed to change notification.")
	dWatchedDirs = desc("efsd_replication_watched_directories",
		"inotify watches held (one per source directory).")
	dWatchLimited = desc("efsd_replication_watch_limited_file_systems",
		"Source file systems with directories left unwatched by a cap; their changes are found by the periodic rescan.")
	dWatchLimitHits = desc("efsd_replication_watch_limit_hits_total",
		"Times a source file system became limited by a watch cap.")
	dQueueOverflows = desc("efsd_replication_inotify_queue_overflows_total",
		"Overflows of the kernel's inotify event queue (each wakes every worker).")
	dInotifyFailures = desc("efsd_replication_inotify_init_failures_total",
		"Failed attempts to open the inotify instance.")
	dMaxWatches = desc("efsd_replication_max_watches",
		"Cap on inotify watches of the whole process.")
	dMaxWatchesFS = desc("efsd_replication_max_watches_per_file_system",
		"Cap on inotify watches of one source file system.")

	fsLabels = []string{"account", "region", "file_system_id"}
	dFSSize  = desc("efsd_file_system_size_bytes",
		"Metered size of the file system (SizeInBytes.Value), as last measured.", fsLabels...)
	dFSSizeAt = desc("efsd_file_system_size_timestamp_seconds",
		"When the file system's size was last measured (SizeInBytes.Timestamp), as a Unix time.", fsLabels...)

	mtLabels   = []string{"account", "region", "mount_target_id", "file_system_id"}
	procLabels = append(append([]string{}, mtLabels...), "program", "procedure")
	dNFSCalls  = desc("efsd_nfs_calls_total",
		"RPC calls received by the mount target's NFS server, by program (nfs, mount, other) and procedure. Counters start when the server does.", procLabels...)
	dNFSIn = desc("efsd_nfs_received_bytes_total",
		"Bytes of the RPC call records received, by program and procedure.", procLabels...)
	dNFSOut = desc("efsd_nfs_sent_bytes_total",
		"Bytes of the RPC reply records sent, by program and procedure.", procLabels...)
	dNFSConns = desc("efsd_nfs_connections",
		"NFS client connections open at the mount target.", mtLabels...)
	dNFSAccepted = desc("efsd_nfs_connections_accepted_total",
		"NFS client connections accepted at the mount target.", mtLabels...)
	dNFSRefused = desc("efsd_nfs_connections_refused_total",
		"NFS client connections closed at accept: over a connection cap or refused by the mount target's security groups.", mtLabels...)
	dNFSAcceptErrors = desc("efsd_nfs_accept_errors_total",
		"Temporary accept failures at the mount target (e.g. out of descriptors), retried.", mtLabels...)

	dScrapeErrors = desc("efsd_metrics_source_errors",
		"1 when a source of this scrape failed (e.g. the store did not answer), by source.", "source")
)

// stateCollector reads the daemon's state at each scrape.
type stateCollector struct {
	m   *Metrics
	src Sources
}

// Describe sends no descriptors: the collector is unchecked, as the series
// it yields depend on the daemon's state.
func (c *stateCollector) Describe(chan<- *prometheus.Desc) {}

// scrapeTimeout bounds the store query of one scrape.
const scrapeTimeout = 5 * time.Second

func (c *stateCollector) Collect(ch chan<- prometheus.Metric) {
	gauge := func(d *prometheus.Desc, v float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, labels...)
	}
	counter := func(d *prometheus.Desc, v uint64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, float64(v), labels...)
	}
	if c.src.Replications != nil {
		listed := time.Now()
		ctx, cancel := context.WithTimeout(context.Background(), scrapeTimeout)
		reps, err := c.src.Replications(ctx)
		cancel()
		failed := 0.0
		if err != nil {
			failed = 1
		} else {
			c.collectReplications(reps, listed, gauge, counter, ch)
		}
		gauge(dScrapeErrors, failed, "replications")
	}
	if c.src.Notification != nil {
		st := c.src.Notification()
		gauge(dInotifyInstances, float64(st.Instances))
		gauge(dWatchedFS, float64(st.WatchedFileSystems))
		gauge(dWatchedDirs, float64(st.WatchedDirs))
		gauge(dWatchLimited, float64(st.WatchLimitedFileSystems))
		counter(dWatchLimitHits, st.WatchLimitHits)
		counter(dQueueOverflows, st.QueueOverflows)
		counter(dInotifyFailures, st.InotifyInitFailures)
		gauge(dMaxWatches, float64(st.MaxWatches))
		gauge(dMaxWatchesFS, float64(st.MaxWatchesPerFileSystem))
	}
	if c.src.Usages != nil {
		for k, u := range c.src.Usages() {
			gauge(dFSSize, float64(u.Bytes), k.Account, k.Region, k.ID)
			if !u.At.IsZero() {
				gauge(dFSSizeAt, float64(u.At.UnixNano())/1e9, k.Account, k.Region, k.ID)
			}
		}
	}
	if c.src.MountTargets != nil {
		for _, t := range c.src.MountTargets() {
			l := []string{t.Account, t.Region, t.MountTargetID, t.FileSystemID}
			for _, p := range t.NFS.Procs {
				if p.Calls == 0 {
					continue // 29 slots per mount target: only those called
				}
				pl := append(append([]string{}, l...), p.Program, p.Procedure)
				counter(dNFSCalls, p.Calls, pl...)
				counter(dNFSIn, p.BytesIn, pl...)
				counter(dNFSOut, p.BytesOut, pl...)
			}
			gauge(dNFSConns, float64(t.NFS.Conns.Open), l...)
			counter(dNFSAccepted, t.NFS.Conns.Accepted, l...)
			counter(dNFSRefused, t.NFS.Conns.Refused, l...)
			counter(dNFSAcceptErrors, t.NFS.Conns.AcceptErrors, l...)
		}
	}
}

func (c *stateCollector) collectReplications(reps []*efs.Replication, listed time.Time, gauge func(*prometheus.Desc, float64, ...string),
	counter func(*prometheus.Desc, uint64, ...string), ch chan<- prometheus.Metric) {
	now := c.src.Now()
	// The totals are copied under the lock, so that workers finishing
	// passes never wait for the scrape's consumer.
	m := c.m
	totals := make(map[string]passTotals, len(reps))
	seen := make(map[string]bool, len(reps))
	m.mu.Lock()
	for _, r := range reps {
		seen[r.ID] = true
		if t := m.passes[r.ID]; t != nil {
			tc := *t
			tc.durBuckets = append([]uint64(nil), t.durBuckets...)
			totals[r.ID] = tc
		}
	}
	// A configuration that is gone takes its counters with it (one whose
	// first pass came after the listing may just be too new to be listed).
	for id, t := range m.passes {
		if !seen[id] && t.born.Before(listed) {
			delete(m.passes, id)
		}
	}
	m.mu.Unlock()
	for _, r := range reps {
		l := []string{r.ID, r.Source.ID, r.Dest.ID}
		if !r.LastReplicatedAt.IsZero() {
			gauge(dTimeSinceSync, max(now.Sub(r.LastReplicatedAt).Seconds(), 0), l...)
			gauge(dLastSync, float64(r.LastReplicatedAt.UnixNano())/1e9, l...)
		}
		for _, s := range replicationStatuses {
			v := 0.0
			if r.Status == s {
				v = 1
			}
			gauge(dRepStatus, v, append(l, s)...)
		}
		t, ok := totals[r.ID]
		if !ok {
			t.durBuckets = make([]uint64, len(passBuckets))
		}
		counter(dPasses, t.ok, append(l, "ok")...)
		counter(dPasses, t.failed, append(l, "error")...)
		counter(dFilesCopied, t.filesCopied, l...)
		counter(dBytesCopied, t.bytesCopied, l...)
		counter(dSentChunks, t.sentChunks, l...)
		counter(dSentBytes, t.sentBytes, l...)
		counter(dDeleted, t.deleted, l...)
		counter(dScrubs, t.scrubs-t.scrubsFailed, append(l, "ok")...)
		counter(dScrubs, t.scrubsFailed, append(l, "error")...)
		counter(dScrubFiles, t.scrubCompared, l...)
		counter(dScrubBytes, t.scrubBytes, l...)
		counter(dScrubRepaired, t.scrubRepaired, l...)
		buckets := make(map[float64]uint64, len(passBuckets))
		var cum uint64
		for i, b := range passBuckets {
			cum += t.durBuckets[i]
			buckets[b] = cum
		}
		ch <- prometheus.MustNewConstHistogram(dPassDuration, t.durCount, t.durSum, buckets, l...)
	}
}
