package main

import (
	"context"
	"errors"
	"fmt"
	"math"
	"path/filepath"
	"runtime"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/efs"
	"github.com/aws/aws-sdk-go-v2/service/efs/types"

	"github.com/efsd/efsd/bench/internal/loadgen"
	"github.com/efsd/efsd/bench/internal/procs"
	"github.com/efsd/efsd/bench/internal/report"
	"github.com/efsd/efsd/bench/internal/stats"
)

var apiServers = []string{"efsd", "moto", "trivial"}

// apiCounts are the fixed operation counts of the API suite.
type apiCounts struct {
	FileSystems, Describe, Page, ListAll, Tag, ListTags int
	Timeout                                             time.Duration
}

func (h *harness) apiCounts() apiCounts {
	if h.quick {
		return apiCounts{FileSystems: 100, Describe: 200, Page: 100, ListAll: 10, Tag: 200, ListTags: 200, Timeout: 30 * time.Second}
	}
	return apiCounts{FileSystems: 1000, Describe: 2000, Page: 500, ListAll: 50, Tag: 2000, ListTags: 2000, Timeout: 2 * time.Minute}
}

// apiSample is one scenario run against one server in one repetition.
type apiSample struct {
	Rep         int     `json:"rep"`
	Server      string  `json:"server"`
	Scenario    string  `json:"scenario"`
	Concurrency int     `json:"concurrency"`
	OK          int     `json:"ok"`
	Errors      int     `json:"errors"`
	FirstError  string  `json:"first_error,omitempty"`
	TimedOut    bool    `json:"timed_out,omitempty"`
	Elapsed     float64 `json:"elapsed_s"`
	Throughput  float64 `json:"ops_per_s"`
	P50         float64 `json:"p50_s"`
	P99         float64 `json:"p99_s"`
	Max         float64 `json:"max_s"`
	ServerCPU   float64 `json:"server_cpu_s"`
	Requests    int     `json:"requests"` // HTTP requests (a listing is several)
	HarnessCPU  float64 `json:"harness_cpu_s"`
	// OtherCPU is the machine's busy CPU time over the scenario less the
	// server's and the harness's: other users, kernel threads.
	OtherCPU float64 `json:"other_cpu_s"`
	Steal    float64 `json:"steal_s"`
}

type apiServerRun struct {
	Rep     int     `json:"rep"`
	Server  string  `json:"server"`
	Startup float64 `json:"startup_s"`
	PeakRSS int64   `json:"peak_rss_bytes"`
	CPU     float64 `json:"cpu_s"`
}

type apiRaw struct {
	Counts  apiCounts      `json:"counts"`
	Samples []apiSample    `json:"samples"`
	Runs    []apiServerRun `json:"runs"`
}

type scenario struct {
	name  string
	count int
	// reqs is the number of HTTP requests per operation (a full listing
	// of n file systems is n/100 pages).
	reqs int
	op   func(c *efs.Client, ids []string, verify bool) loadgen.Op
}

func (h *harness) apiScenarios(n apiCounts) []scenario {
	pages := (n.FileSystems + 99) / 100
	return []scenario{
		{"DescribeFileSystems by id", n.Describe, 1, func(c *efs.Client, ids []string, verify bool) loadgen.Op {
			return func(ctx context.Context, i int) error {
				out, err := c.DescribeFileSystems(ctx, &efs.DescribeFileSystemsInput{FileSystemId: aws.String(ids[i%len(ids)])})
				if err == nil && verify && len(out.FileSystems) != 1 {
					err = fmt.Errorf("got %d file systems", len(out.FileSystems))
				}
				return err
			}
		}},
		{fmt.Sprintf("DescribeFileSystems, one 100-item page of %d", n.FileSystems), n.Page, 1, func(c *efs.Client, _ []string, verify bool) loadgen.Op {
			return func(ctx context.Context, i int) error {
				out, err := c.DescribeFileSystems(ctx, &efs.DescribeFileSystemsInput{MaxItems: aws.Int32(100)})
				if err == nil && verify && len(out.FileSystems) != 100 {
					err = fmt.Errorf("got %d file systems", len(out.FileSystems))
				}
				return err
			}
		}},
		{fmt.Sprintf("DescribeFileSystems, listing all %d (100 per page)", n.FileSystems), n.ListAll, pages, func(c *efs.Client, _ []string, verify bool) loadgen.Op {
			return func(ctx context.Context, i int) error {
				total := 0
				var marker *string
				for page := 0; page < pages+2; page++ {
					out, err := c.DescribeFileSystems(ctx, &efs.DescribeFileSystemsInput{MaxItems: aws.Int32(100), Marker: marker})
					if err != nil {
						return err
					}
					total += len(out.FileSystems)
					if marker = out.NextMarker; marker == nil {
						break
					}
				}
				if verify && total != n.FileSystems {
					return fmt.Errorf("listed %d file systems, want %d", total, n.FileSystems)
				}
				return nil
			}
		}},
		{"TagResource", n.Tag, 1, func(c *efs.Client, ids []string, _ bool) loadgen.Op {
			return func(ctx context.Context, i int) error {
				_, err := c.TagResource(ctx, &efs.TagResourceInput{ResourceId: aws.String(ids[i%len(ids)]),
					Tags: []types.Tag{{Key: aws.String(fmt.Sprintf("bench-%d", i%8)), Value: aws.String(fmt.Sprint(i))}}})
				return err
			}
		}},
		{"ListTagsForResource", n.ListTags, 1, func(c *efs.Client, ids []string, _ bool) loadgen.Op {
			return func(ctx context.Context, i int) error {
				_, err := c.ListTagsForResource(ctx, &efs.ListTagsForResourceInput{ResourceId: aws.String(ids[i%len(ids)])})
				return err
			}
		}},
	}
}

var concurrencies = []int{1, 16}

func (h *harness) apiSuite() (*suiteResult, error) {
	n := h.apiCounts()
	raw := &apiRaw{Counts: n}
	var runErr error
	for rep := range h.reps {
		for k := range h.apiServers {
			kind := h.apiServers[(k+rep)%len(h.apiServers)] // alternate the order
			if err := h.apiRun(rep, kind, n, raw); err != nil {
				runErr = errors.Join(runErr, fmt.Errorf("rep %d %s: %w", rep, kind, err))
				if h.ctx.Err() != nil {
					return h.apiReport(raw, n), runErr
				}
			}
		}
	}
	return h.apiReport(raw, n), runErr
}

func (h *harness) apiRun(rep int, kind string, n apiCounts, raw *apiRaw) error {
	var dataDir string
	if kind == "efsd" {
		dataDir = filepath.Join(h.mnt.Dir, "api", fmt.Sprintf("efsd-r%d", rep))
	}
	h.logf("api rep %d: %s", rep, kind)
	s, err := h.startServer(kind, fmt.Sprintf("api-%s-r%d", kind, rep), dataDir)
	if err != nil {
		return err
	}
	defer s.stop()
	verify := kind != "trivial"
	run := func(name string, conc, count, reqs int, c *efs.Client, op loadgen.Op) {
		m0, u0, h0 := procs.ReadMachine(), s.usage(), selfCPU()
		r := loadgen.Run(h.ctx, loadgen.Config{Count: count, Concurrency: conc, Timeout: n.Timeout}, op)
		m1, u1, h1 := procs.ReadMachine(), s.usage(), selfCPU()
		dm := m1.Sub(m0)
		smp := apiSample{Rep: rep, Server: kind, Scenario: name, Concurrency: conc, OK: r.OK, Errors: r.Errors,
			FirstError: r.FirstError, TimedOut: r.TimedOut, Elapsed: r.Elapsed, Throughput: r.Throughput(),
			P50: r.P(50), P99: r.P(99), Max: r.P(100), ServerCPU: u1.CPU - u0.CPU, Requests: (r.OK + r.Errors) * reqs,
			HarnessCPU: h1 - h0, OtherCPU: max(0, dm.Busy-(u1.CPU-u0.CPU)-(h1-h0)), Steal: dm.Steal}
		raw.Samples = append(raw.Samples, smp)
		h.logf("  %-55s c=%-2d %8.0f op/s p50 %7.2f ms p99 %7.2f ms errors %d %s", name, conc, smp.Throughput,
			smp.P50*1e3, smp.P99*1e3, smp.Errors, smp.FirstError)
	}

	// CreateFileSystem to n file systems, at each concurrency in its own
	// region (regions are isolated, so each starts from none).
	var ids []string
	for _, conc := range concurrencies {
		reg := map[int]string{1: "us-east-1", 16: "us-west-2"}[conc]
		var mu sync.Mutex
		var got []string
		c := s.client(reg)
		run(fmt.Sprintf("CreateFileSystem to %d file systems", n.FileSystems), conc, n.FileSystems, 1, c,
			func(ctx context.Context, i int) error {
				out, err := c.CreateFileSystem(ctx, &efs.CreateFileSystemInput{
					CreationToken: aws.String(fmt.Sprintf("bench-r%d-c%d-%d", rep, conc, i))})
				if err != nil {
					return err
				}
				id := aws.ToString(out.FileSystemId)
				if id == "" {
					id = fmt.Sprintf("fs-%08x", i) // the trivial server answers {}
				}
				mu.Lock()
				got = append(got, id)
				mu.Unlock()
				return nil
			})
		if reg == region {
			ids = got
		}
	}
	if len(ids) == 0 {
		return errors.New("no file system created")
	}
	for _, conc := range concurrencies {
		for _, sc := range h.apiScenarios(n) {
			if err := h.check(); err != nil {
				return err
			}
			run(sc.name, conc, sc.count, sc.reqs, s.client(region), sc.op(s.client(region), ids, verify))
		}
	}
	u := s.usage()
	raw.Runs = append(raw.Runs, apiServerRun{Rep: rep, Server: kind, Startup: s.startup.Seconds(), PeakRSS: u.PeakRSS, CPU: u.CPU})
	return nil
}

// --- report ---

func (raw *apiRaw) summary(server, scenario string, conc int, f func(apiSample) float64) stats.Summary {
	var xs []float64
	for _, s := range raw.Samples {
		if s.Server == server && s.Scenario == scenario && s.Concurrency == conc {
			xs = append(xs, f(s))
		}
	}
	return stats.Summarize(xs)
}

func (raw *apiRaw) runSummary(server string, f func(apiServerRun) float64) stats.Summary {
	var xs []float64
	for _, r := range raw.Runs {
		if r.Server == server {
			xs = append(xs, f(r))
		}
	}
	return stats.Summarize(xs)
}

func (raw *apiRaw) scenarioNames() []string {
	var names []string
	seen := map[string]bool{}
	for _, s := range raw.Samples {
		if !seen[s.Scenario] {
			seen[s.Scenario] = true
			names = append(names, s.Scenario)
		}
	}
	return names
}

func ms(x float64) string {
	if math.IsNaN(x) {
		return "n/a"
	}
	return stats.Num(x * 1e3)
}

func (h *harness) apiReport(raw *apiRaw, n apiCounts) *suiteResult {
	sec := report.Section{Title: "1. API: efsd vs moto",
		Intro: []string{
			fmt.Sprintf("One load generator (aws-sdk-go-v2, SigV4, SDK retries off, a shared keep-alive transport, errors counted) drives efsd, "+
				"moto_server and a trivial Go HTTP server that answers `{}` to everything (the load generator's own ceiling) identically. "+
				"Each repetition starts each server afresh (in rotating order), creates %d file systems at concurrency 1 (us-east-1) and "+
				"again at concurrency 16 (us-west-2), then runs the read and tag scenarios against the %d in us-east-1 at concurrency 1 and 16. "+
				"Every scenario has a fixed count (%d describes, %d pages, %d full listings, %d tags, %d tag listings) and a %v limit.",
				n.FileSystems, n.FileSystems, n.Describe, n.Page, n.ListAll, n.Tag, n.ListTags, n.Timeout),
			"efsd runs with no config file (defaults: SQLite with synchronous commits, an access log line per request) and its data directory " +
				"on the dedicated ext4 file system; moto keeps everything in memory. The load generator, the server under test and the kernel share " +
				"the machine's CPUs. Server CPU is utime+stime from /proc/PID/stat over the scenario, divided by HTTP requests; peak RSS is VmHWM " +
				"at the end of a repetition; start-up is from exec to the first successful signed DescribeFileSystems (polled every 2 ms).",
		}}
	names := raw.scenarioNames()
	tp := func(s apiSample) float64 { return s.Throughput }
	p50 := func(s apiSample) float64 { return s.P50 }
	p99 := func(s apiSample) float64 { return s.P99 }
	cpuReq := func(s apiSample) float64 { return stats.Ratio(s.ServerCPU, float64(s.Requests)) }
	for _, conc := range concurrencies {
		t := report.Table{Title: fmt.Sprintf("Throughput, operations per second, concurrency %d", conc),
			Header: []string{"Scenario", "efsd", "moto", "trivial server", "efsd ÷ moto", "efsd ÷ trivial"}}
		for _, sc := range names {
			e, m, tr := raw.summary("efsd", sc, conc, tp), raw.summary("moto", sc, conc, tp), raw.summary("trivial", sc, conc, tp)
			t.Rows = append(t.Rows, []string{sc, e.Format(stats.Num), m.Format(stats.Num), tr.Format(stats.Num),
				stats.Times(stats.Ratio(e.Median, m.Median)), stats.Times(stats.Ratio(e.Median, tr.Median))})
		}
		t.Notes = []string{"A listing of all file systems is one operation of several pages; the trivial server answers one empty page, so its listing and page rows only show the client's cost per request."}
		sec.Tables = append(sec.Tables, t)
	}
	for _, conc := range concurrencies {
		t := report.Table{Title: fmt.Sprintf("Latency per operation, ms, concurrency %d", conc),
			Header: []string{"Scenario", "efsd p50", "efsd p99", "moto p50", "moto p99", "trivial p99", "efsd p50 ÷ moto p50", "efsd p99 ÷ moto p99"}}
		for _, sc := range names {
			e50, e99 := raw.summary("efsd", sc, conc, p50), raw.summary("efsd", sc, conc, p99)
			m50, m99 := raw.summary("moto", sc, conc, p50), raw.summary("moto", sc, conc, p99)
			t.Rows = append(t.Rows, []string{sc, e50.Format(ms), e99.Format(ms), m50.Format(ms), m99.Format(ms),
				raw.summary("trivial", sc, conc, p99).Format(ms),
				stats.Num(stats.Ratio(e50.Median, m50.Median)), stats.Num(stats.Ratio(e99.Median, m99.Median))})
		}
		sec.Tables = append(sec.Tables, t)
	}
	{
		t := report.Table{Title: "Server CPU per HTTP request (ms) and errors",
			Header: []string{"Scenario", "Concurrency", "efsd CPU/req", "moto CPU/req", "efsd ÷ moto", "errors efsd / moto / trivial (sum over reps)"}}
		for _, conc := range concurrencies {
			for _, sc := range names {
				e, m := raw.summary("efsd", sc, conc, cpuReq), raw.summary("moto", sc, conc, cpuReq)
				t.Rows = append(t.Rows, []string{sc, fmt.Sprint(conc), e.Format(ms), m.Format(ms), stats.Times(stats.Ratio(e.Median, m.Median)),
					fmt.Sprintf("%d / %d / %d", raw.errorSum("efsd", sc, conc), raw.errorSum("moto", sc, conc), raw.errorSum("trivial", sc, conc))})
			}
		}
		t.Notes = []string{"CPU is read from /proc at 10 ms granularity (USER_HZ); per-request figures are total CPU over the scenario divided by its requests."}
		sec.Tables = append(sec.Tables, t)
	}
	{
		t := report.Table{Title: "Interference: CPU used by anything else on the machine during each scenario, % of all CPUs",
			Header: []string{"Scenario", "Concurrency", "while driving efsd", "while driving moto", "while driving the trivial server", "steal (s), efsd runs"}}
		other := func(s apiSample) float64 { return 100 * stats.Ratio(s.OtherCPU, s.Elapsed*float64(runtime.NumCPU())) }
		steal := func(s apiSample) float64 { return s.Steal }
		pct := func(x float64) string { return stats.Num(x) }
		for _, conc := range concurrencies {
			for _, sc := range names {
				t.Rows = append(t.Rows, []string{sc, fmt.Sprint(conc), raw.summary("efsd", sc, conc, other).Format(pct),
					raw.summary("moto", sc, conc, other).Format(pct), raw.summary("trivial", sc, conc, other).Format(pct),
					raw.summary("efsd", sc, conc, steal).Format(stats.Num)})
			}
		}
		t.Notes = []string{"Busy time from /proc/stat less the server's and the harness's own CPU: other users' processes and kernel threads " +
			"(network softirqs of this traffic run in the context of whichever task is on the CPU; writeback and journal threads for efsd's " +
			"commits count here). Steal is time the hypervisor gave to other guests. A large share here means the scenario competed for the CPUs."}
		sec.Tables = append(sec.Tables, t)
	}
	st := func(r apiServerRun) float64 { return r.Startup }
	rss := func(r apiServerRun) float64 { return float64(r.PeakRSS) }
	cpu := func(r apiServerRun) float64 { return r.CPU }
	{
		t := report.Table{Title: "Start-up, peak memory, total CPU per repetition",
			Header: []string{"Measure", "efsd", "moto", "trivial server", "efsd ÷ moto"}}
		for _, row := range []struct {
			name string
			f    func(apiServerRun) float64
			fmt  func(float64) string
		}{{"start-up to first signed request", st, stats.Seconds}, {"peak RSS (VmHWM)", rss, stats.MiB}, {"CPU seconds, whole repetition", cpu, stats.Num}} {
			e, m, tr := raw.runSummary("efsd", row.f), raw.runSummary("moto", row.f), raw.runSummary("trivial", row.f)
			t.Rows = append(t.Rows, []string{row.name, e.Format(row.fmt), m.Format(row.fmt), tr.Format(row.fmt), stats.Times(stats.Ratio(e.Median, m.Median))})
		}
		sec.Tables = append(sec.Tables, t)
	}
	{
		t := report.Table{Title: "Load generator CPU (the harness process) per operation, ms, concurrency 16",
			Header: []string{"Scenario", "driving efsd", "driving moto", "driving the trivial server"}}
		hc := func(s apiSample) float64 { return stats.Ratio(s.HarnessCPU, float64(s.OK+s.Errors)) }
		for _, sc := range names {
			t.Rows = append(t.Rows, []string{sc, raw.summary("efsd", sc, 16, hc).Format(ms), raw.summary("moto", sc, 16, hc).Format(ms), raw.summary("trivial", sc, 16, hc).Format(ms)})
		}
		t.Notes = []string{"With 2 CPUs shared, the client's own cost per request bounds every server's measured throughput; the trivial server shows that bound."}
		sec.Tables = append(sec.Tables, t)
	}
	return &suiteResult{section: sec, goals: h.apiGoals(raw, names), raw: raw}
}

func (raw *apiRaw) errorSum(server, scenario string, conc int) int {
	n := 0
	for _, s := range raw.Samples {
		if s.Server == server && s.Scenario == scenario && s.Concurrency == conc {
			n += s.Errors
		}
	}
	return n
}

func (h *harness) apiGoals(raw *apiRaw, names []string) []report.Goal {
	const suite = "1 API"
	var goals []report.Goal
	if len(names) == 0 {
		return []report.Goal{{Suite: suite, Goal: "all API goals", Status: report.NotMeasured}}
	}
	tp := func(s apiSample) float64 { return s.Throughput }
	p50 := func(s apiSample) float64 { return s.P50 }
	p99 := func(s apiSample) float64 { return s.P99 }

	// Throughput ≥ 10× moto at concurrency 16, in every scenario: report the worst.
	worst, worstName := math.Inf(1), ""
	var detail []string
	for _, sc := range names {
		r := stats.Ratio(raw.summary("efsd", sc, 16, tp).Median, raw.summary("moto", sc, 16, tp).Median)
		detail = append(detail, fmt.Sprintf("%s %s", shortName(sc), stats.Times(r)))
		if r < worst || math.IsNaN(r) {
			worst, worstName = r, sc
		}
	}
	goals = append(goals, report.Goal{Suite: suite, Goal: "throughput at concurrency 16 ≥ 10× moto's (every scenario)",
		Measured: fmt.Sprintf("worst %s (%s); %s", stats.Times(worst), shortName(worstName), joinShort(detail)),
		Status:   report.Status(worst >= 10), Note: missBy(worst, 10, true)})

	// Within reach of the trivial server's ceiling: ≥ 50% of it on the
	// cheapest read (DescribeFileSystems by id) at concurrency 16.
	desc := names[min(1, len(names)-1)]
	for _, sc := range names {
		if sc == "DescribeFileSystems by id" {
			desc = sc
		}
	}
	rt := stats.Ratio(raw.summary("efsd", desc, 16, tp).Median, raw.summary("trivial", desc, 16, tp).Median)
	goals = append(goals, report.Goal{Suite: suite, Goal: "throughput within reach of the trivial server's ceiling (taken as ≥ 50% of it, DescribeFileSystems by id, concurrency 16)",
		Measured: fmt.Sprintf("%.1f%% of the trivial server (efsd %s/s, trivial %s/s)", rt*100,
			stats.Num(raw.summary("efsd", desc, 16, tp).Median), stats.Num(raw.summary("trivial", desc, 16, tp).Median)), Status: report.Status(rt >= 0.5), Note: missBy(rt, 0.5, true)})

	// p99 at concurrency 16 < 1/10 of moto's, every scenario.
	worst, worstName = 0, ""
	detail = nil
	for _, sc := range names {
		r := stats.Ratio(raw.summary("efsd", sc, 16, p99).Median, raw.summary("moto", sc, 16, p99).Median)
		detail = append(detail, fmt.Sprintf("%s %s", shortName(sc), stats.Num(r)))
		if r > worst || math.IsNaN(r) {
			worst, worstName = r, sc
		}
	}
	goals = append(goals, report.Goal{Suite: suite, Goal: "p99 latency at concurrency 16 < 0.1× moto's (every scenario)",
		Measured: fmt.Sprintf("worst %s× (%s); %s", stats.Num(worst), shortName(worstName), joinShort(detail)),
		Status:   report.Status(worst < 0.1), Note: missBy(worst, 0.1, false)})

	// A 100-item page with n present: p50 < 1/10 of moto's (concurrency 1).
	for _, sc := range names {
		if len(sc) > 30 && sc[:30] == "DescribeFileSystems, one 100-i" {
			r := stats.Ratio(raw.summary("efsd", sc, 1, p50).Median, raw.summary("moto", sc, 1, p50).Median)
			goals = append(goals, report.Goal{Suite: suite, Goal: "a 100-item page with 1,000 file systems: p50 < 0.1× moto's (concurrency 1)",
				Measured: fmt.Sprintf("%s× (efsd %s ms, moto %s ms)", stats.Num(r), ms(raw.summary("efsd", sc, 1, p50).Median), ms(raw.summary("moto", sc, 1, p50).Median)),
				Status:   report.Status(r < 0.1), Note: missBy(r, 0.1, false)})
		}
	}
	st := func(r apiServerRun) float64 { return r.Startup }
	rss := func(r apiServerRun) float64 { return float64(r.PeakRSS) }
	e, m := raw.runSummary("efsd", st).Median, raw.runSummary("moto", st).Median
	r := stats.Ratio(e, m)
	goals = append(goals, report.Goal{Suite: suite, Goal: "start-up < 0.1× moto's",
		Measured: fmt.Sprintf("%s× (efsd %s, moto %s)", stats.Num(r), stats.Seconds(e), stats.Seconds(m)), Status: report.Status(r < 0.1), Note: missBy(r, 0.1, false)})
	e, m = raw.runSummary("efsd", rss).Median, raw.runSummary("moto", rss).Median
	r = stats.Ratio(e, m)
	goals = append(goals, report.Goal{Suite: suite, Goal: "peak memory < 0.5× moto's",
		Measured: fmt.Sprintf("%s× (efsd %s, moto %s)", stats.Num(r), stats.MiB(e), stats.MiB(m)), Status: report.Status(r < 0.5), Note: missBy(r, 0.5, false)})
	return goals
}

// missBy says how far a ratio is from its goal, or nothing if met.
func missBy(got, goal float64, atLeast bool) string {
	if math.IsNaN(got) {
		return "not measured"
	}
	if atLeast && got >= goal || !atLeast && got < goal {
		return ""
	}
	if atLeast {
		return fmt.Sprintf("missed by %s (%.0f%% of the goal)", stats.Times(goal/got), 100*got/goal)
	}
	return fmt.Sprintf("missed by %s (%s against %s)", stats.Times(got/goal), stats.Num(got), stats.Num(goal))
}

func shortName(sc string) string {
	switch {
	case sc == "DescribeFileSystems by id":
		return "describe-by-id"
	case len(sc) > 24 && sc[:24] == "DescribeFileSystems, one":
		return "page"
	case len(sc) > 24 && sc[:24] == "DescribeFileSystems, lis":
		return "list-all"
	case len(sc) > 16 && sc[:16] == "CreateFileSystem":
		return "create"
	case sc == "TagResource":
		return "tag"
	case sc == "ListTagsForResource":
		return "list-tags"
	}
	return sc
}

func joinShort(xs []string) string {
	out := ""
	for i, x := range xs {
		if i > 0 {
			out += ", "
		}
		out += x
	}
	return out
}
