package main

import (
	"bytes"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"sort"
	"sync"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/efsd/efsd/bench/internal/report"
	"github.com/efsd/efsd/bench/internal/stats"
	"github.com/efsd/efsd/bench/internal/trees"
)

// rpoScenario is a writer: Count changes at Rate per second (0: as fast
// as possible, a burst).
type rpoScenario struct {
	Name  string  `json:"name"`
	Rate  float64 `json:"rate"`
	Count int     `json:"count"`
}

func (h *harness) rpoScenarios() []rpoScenario {
	if h.quick {
		return []rpoScenario{{"100 changes/s for 5 s", 100, 500}, {"burst of 500 changes", 0, 500}}
	}
	return []rpoScenario{
		{"10 changes/s for 20 s", 10, 200},
		{"100 changes/s for 30 s", 100, 3000},
		{"1,000 changes/s for 5 s", 1000, 5000},
		{"burst of 5,000 changes", 0, 5000},
	}
}

type rpoSample struct {
	Rep         int     `json:"rep"`
	Scenario    string  `json:"scenario"`
	Changes     int     `json:"changes"`
	WriterSecs  float64 `json:"writer_s"`
	AchievedHz  float64 `json:"achieved_rate"`
	P50         float64 `json:"p50_s"`
	P99         float64 `json:"p99_s"`
	Max         float64 `json:"max_s"`
	NotVisible  int     `json:"not_visible"`
	LagP50      float64 `json:"lrt_lag_p50_s"`
	LagP99      float64 `json:"lrt_lag_p99_s"`
	LagMax      float64 `json:"lrt_lag_max_s"`
	Passes      int     `json:"passes"`
	EfsdCPU     float64 `json:"efsd_cpu_s"`
	DrainLimit  float64 `json:"drain_limit_s"`
	LagSamples  int     `json:"lag_samples"`
	WriterLagMx float64 `json:"writer_behind_max_s"`
}

type rpoRaw struct {
	Tree      string        `json:"tree"`
	Scenarios []rpoScenario `json:"scenarios"`
	Samples   []rpoSample   `json:"samples"`
}

func (h *harness) rpoSuite() (*suiteResult, error) {
	spec := trees.SmallFiles("a", 10000, 4096, 100)
	if h.quick {
		spec = trees.SmallFiles("a", 1000, 4096, 10)
	}
	raw := &rpoRaw{Tree: spec.Desc, Scenarios: h.rpoScenarios()}
	err := h.rpoRun(spec, raw)
	return h.rpoReport(raw), err
}

func (h *harness) rpoRun(spec *trees.Spec, raw *rpoRaw) error {
	base := filepath.Join(h.mnt.Dir, "rpo")
	defer func() {
		os.RemoveAll(base)
		unix.Sync()
	}()
	s, err := h.startServer("efsd", "rpo", filepath.Join(base, "efsd"), "--log-level", "debug")
	if err != nil {
		return err
	}
	defer s.stop()
	srcID, err := h.createFS(s, "bench-rpo")
	if err != nil {
		return err
	}
	src := s.volumeDir(srcID)
	if err := trees.Build(src, spec, buildWorkers); err != nil {
		return err
	}
	unix.Sync()
	t0 := time.Now()
	dstID, err := h.replicate(s, srcID)
	if err != nil {
		return err
	}
	if _, err := h.waitCovered(s, srcID, t0, 10*time.Minute, 20*time.Millisecond); err != nil {
		return err
	}
	dst := s.volumeDir(dstID)
	det, err := newDetector(dst, spec.Dirs)
	if err != nil {
		return err
	}
	defer det.close()
	cursor, version := 0, 1000
	for rep := range h.reps {
		for _, sc := range raw.Scenarios {
			if err := h.check(); err != nil {
				return err
			}
			time.Sleep(time.Second) // let the previous scenario's passes end
			smp, err := h.rpoScenario(s, srcID, spec, src, det, sc, &cursor, &version)
			if err != nil {
				return fmt.Errorf("rep %d, %s: %w", rep, sc.Name, err)
			}
			smp.Rep = rep
			raw.Samples = append(raw.Samples, smp)
			h.logf("  rpo %-26s p50 %6.3fs p99 %6.3fs max %6.3fs not visible %d; LRT lag p50 %.3fs max %.3fs; %d passes",
				sc.Name, smp.P50, smp.P99, smp.Max, smp.NotVisible, smp.LagP50, smp.LagMax, smp.Passes)
		}
	}
	// The destination ends identical.
	if _, err := h.waitCovered(s, srcID, time.Now(), 5*time.Minute, 20*time.Millisecond); err != nil {
		return err
	}
	if err := trees.Diff(src, dst, trees.DiffOptions{Content: true, Meta: true}); err != nil {
		return fmt.Errorf("after the recovery-point runs: %w: %v", errNotIdentical, err)
	}
	return nil
}

// change is one write whose arrival on the destination is awaited.
type change struct {
	want    []byte
	written time.Time // when the writer's close returned
	visible time.Time // when the destination first held want
}

func (h *harness) rpoScenario(s *server, srcID string, spec *trees.Spec, src string, det *detector, sc rpoScenario, cursor, version *int) (rpoSample, error) {
	smp := rpoSample{Scenario: sc.Name}
	drain := time.Minute
	if h.quick {
		drain = 20 * time.Second
	}
	smp.DrainLimit = drain.Seconds()
	logOff := fileSize(s.proc.Log)
	u0 := s.usage()

	// LastReplicatedTimestamp lag, sampled every 100 ms.
	var lags []float64
	stopLag := make(chan struct{})
	lagDone := make(chan struct{})
	go func() {
		defer close(lagDone)
		t := time.NewTicker(100 * time.Millisecond)
		defer t.Stop()
		for {
			select {
			case <-stopLag:
				return
			case <-t.C:
				if st, err := h.repState(s, srcID); err == nil && !st.LRT.IsZero() {
					lags = append(lags, time.Since(st.LRT).Seconds())
				}
			}
		}
	}()

	changes := make([]*change, 0, sc.Count)
	start := time.Now()
	var behind time.Duration
	for j := range sc.Count {
		if err := h.check(); err != nil {
			close(stopLag)
			<-lagDone
			return smp, err
		}
		if sc.Rate > 0 {
			due := start.Add(time.Duration(float64(j) / sc.Rate * float64(time.Second)))
			if d := time.Until(due); d > 0 {
				time.Sleep(d)
			} else {
				behind = max(behind, -d)
			}
		}
		idx := *cursor % spec.Files
		*cursor++
		*version++
		rel := spec.Entry(idx).Path
		c := &change{want: trees.Content(spec, idx, *version)}
		det.expect(rel, c) // before writing: efsd may copy it at once
		if err := trees.WriteVersion(src, spec, idx, *version); err != nil {
			close(stopLag)
			<-lagDone
			return smp, err
		}
		det.mu.Lock()
		c.written = time.Now()
		det.mu.Unlock()
		changes = append(changes, c)
	}
	smp.WriterSecs = time.Since(start).Seconds()
	smp.AchievedHz = float64(sc.Count) / smp.WriterSecs
	smp.WriterLagMx = behind.Seconds()
	// Wait for every change to arrive, or the drain limit.
	deadline := time.Now().Add(drain)
	for det.pending() > 0 && time.Now().Before(deadline) && h.ctx.Err() == nil {
		time.Sleep(20 * time.Millisecond)
	}
	close(stopLag)
	<-lagDone
	det.forget()
	u1 := s.usage()
	smp.EfsdCPU = u1.CPU - u0.CPU
	if recs, _, err := readPasses(s.proc.Log, logOff); err == nil {
		smp.Passes = len(recs)
	}

	det.mu.Lock()
	var delays []float64
	for _, c := range changes {
		if c.visible.IsZero() {
			smp.NotVisible++
			continue
		}
		delays = append(delays, max(0, c.visible.Sub(c.written).Seconds()))
	}
	det.mu.Unlock()
	smp.Changes = len(changes)
	sort.Float64s(delays)
	smp.P50, smp.P99, smp.Max = stats.PercentileSorted(delays, 50), stats.PercentileSorted(delays, 99), stats.PercentileSorted(delays, 100)
	if smp.NotVisible > 0 {
		smp.Max = math.Inf(1)
		if float64(smp.NotVisible) > 0.01*float64(smp.Changes) {
			smp.P99 = math.Inf(1)
		}
	}
	smp.LagSamples = len(lags)
	smp.LagP50, smp.LagP99, smp.LagMax = stats.Percentile(lags, 50), stats.Percentile(lags, 99), stats.Percentile(lags, 100)
	return smp, nil
}

// detector watches the destination's directories with inotify and notes
// when each awaited change is there: efsd renames a finished temporary
// over the real name, which is an IN_MOVED_TO event; a sweep every 100 ms
// rechecks whatever is still pending, in case an event was missed.
type detector struct {
	fd   int
	root string
	wds  map[int32]string

	mu   sync.Mutex
	want map[string]*change // by relative path
	stop chan struct{}
	done chan struct{}
}

func newDetector(root string, dirs []string) (*detector, error) {
	fd, err := unix.InotifyInit1(unix.IN_CLOEXEC | unix.IN_NONBLOCK)
	if err != nil {
		return nil, fmt.Errorf("inotify: %w", err)
	}
	d := &detector{fd: fd, root: root, wds: map[int32]string{}, want: map[string]*change{},
		stop: make(chan struct{}), done: make(chan struct{})}
	for _, rel := range append([]string{""}, dirs...) {
		wd, err := unix.InotifyAddWatch(fd, filepath.Join(root, rel), unix.IN_MOVED_TO|unix.IN_CLOSE_WRITE|unix.IN_CREATE)
		if err != nil {
			unix.Close(fd)
			return nil, fmt.Errorf("inotify watch %s: %w", rel, err)
		}
		d.wds[int32(wd)] = rel
	}
	go d.run()
	return d, nil
}

func (d *detector) close() {
	close(d.stop)
	<-d.done
	unix.Close(d.fd)
}

func (d *detector) expect(rel string, c *change) {
	d.mu.Lock()
	d.want[rel] = c
	d.mu.Unlock()
}

func (d *detector) pending() int {
	d.mu.Lock()
	defer d.mu.Unlock()
	return len(d.want)
}

// forget drops whatever is still pending (it stays not visible).
func (d *detector) forget() {
	d.mu.Lock()
	clear(d.want)
	d.mu.Unlock()
}

// check reads rel on the destination and, if it holds the awaited bytes,
// marks the change visible at now.
func (d *detector) check(rel string, now time.Time) {
	d.mu.Lock()
	c, ok := d.want[rel]
	d.mu.Unlock()
	if !ok {
		return
	}
	b, err := os.ReadFile(filepath.Join(d.root, rel))
	if err != nil || !bytes.Equal(b, c.want) {
		return
	}
	d.mu.Lock()
	if d.want[rel] == c {
		c.visible = now
		delete(d.want, rel)
	}
	d.mu.Unlock()
}

func (d *detector) run() {
	defer close(d.done)
	buf := make([]byte, 64<<10)
	lastSweep := time.Now()
	fds := []unix.PollFd{{Fd: int32(d.fd), Events: unix.POLLIN}}
	for {
		select {
		case <-d.stop:
			return
		default:
		}
		n, _ := unix.Poll(fds, 50)
		if n > 0 {
			k, err := unix.Read(d.fd, buf)
			now := time.Now()
			for off := 0; err == nil && off+unix.SizeofInotifyEvent <= k; {
				ev := (*unix.InotifyEvent)(unsafe.Pointer(&buf[off]))
				name := ""
				if ev.Len > 0 {
					nb := buf[off+unix.SizeofInotifyEvent : off+unix.SizeofInotifyEvent+int(ev.Len)]
					name = string(bytes.TrimRight(nb, "\x00"))
				}
				off += unix.SizeofInotifyEvent + int(ev.Len)
				if dir, ok := d.wds[ev.Wd]; ok && name != "" {
					d.check(filepath.Join(dir, name), now)
				}
			}
		}
		if time.Since(lastSweep) >= 100*time.Millisecond {
			lastSweep = time.Now()
			d.mu.Lock()
			rels := make([]string, 0, len(d.want))
			for rel := range d.want {
				rels = append(rels, rel)
			}
			d.mu.Unlock()
			for _, rel := range rels {
				d.check(rel, time.Now())
			}
		}
	}
}

// --- report ---

func (h *harness) rpoReport(raw *rpoRaw) *suiteResult {
	sec := report.Section{Title: "3. Recovery point: how far behind the destination is",
		Intro: []string{
			fmt.Sprintf("Tree: %s, replicated by efsd at its default settings (20 ms settle after inotify, 5 s rescan) to a new "+
				"destination; the data file system is the dedicated one. A writer rewrites files of the source in place (4 KiB, "+
				"new bytes each time, never the same file twice in a run) at a steady rate, or as fast as it can (burst). For each change, "+
				"the delay is from the writer's close() returning until the destination file holds exactly the new bytes, as seen by an inotify "+
				"watcher on the destination's directories (efsd renames finished copies into place) plus a 100 ms re-check sweep. "+
				"LastReplicatedTimestamp lag is now − LastReplicatedTimestamp, sampled every 100 ms through the API while the writer runs "+
				"and until its changes have arrived. Each row: median over repetitions of the per-repetition figure (min–max).", raw.Tree),
		}}
	t := report.Table{Title: "Delay until a change is visible and identical on the destination",
		Header: []string{"Writer", "achieved rate /s", "p50", "p99", "max", "not visible within limit", "LRT lag p50", "LRT lag p99", "LRT lag max", "passes per run"}}
	for _, sc := range raw.Scenarios {
		col := func(f func(rpoSample) float64) stats.Summary {
			var xs []float64
			for _, s := range raw.Samples {
				if s.Scenario == sc.Name {
					xs = append(xs, f(s))
				}
			}
			return stats.Summarize(xs)
		}
		nv := col(func(s rpoSample) float64 { return float64(s.NotVisible) })
		t.Rows = append(t.Rows, []string{sc.Name,
			col(func(s rpoSample) float64 { return s.AchievedHz }).Format(stats.Num),
			col(func(s rpoSample) float64 { return s.P50 }).Format(secInf),
			col(func(s rpoSample) float64 { return s.P99 }).Format(secInf),
			col(func(s rpoSample) float64 { return s.Max }).Format(secInf),
			nv.Format(stats.Num),
			col(func(s rpoSample) float64 { return s.LagP50 }).Format(stats.Seconds),
			col(func(s rpoSample) float64 { return s.LagP99 }).Format(stats.Seconds),
			col(func(s rpoSample) float64 { return s.LagMax }).Format(stats.Seconds),
			col(func(s rpoSample) float64 { return float64(s.Passes) }).Format(stats.Num),
		})
	}
	t.Notes = []string{"Real EFS replication promises a recovery point objective of 15 minutes for most file systems."}
	sec.Tables = append(sec.Tables, t)

	// Goal: at 100 changes/s, p50 < 1 s and p99 < 5 s.
	var goals []report.Goal
	for _, sc := range raw.Scenarios {
		if sc.Rate != 100 {
			continue
		}
		var p50s, p99s []float64
		for _, s := range raw.Samples {
			if s.Scenario == sc.Name {
				p50s, p99s = append(p50s, s.P50), append(p99s, s.P99)
			}
		}
		p50, p99 := stats.Summarize(p50s), stats.Summarize(p99s)
		ok := p50.Valid() && p50.Max < 1 && p99.Max < 5
		note := ""
		if !ok {
			note = fmt.Sprintf("worst repetition: p50 %s, p99 %s", secInf(p50.Max), secInf(p99.Max))
		}
		goals = append(goals, report.Goal{Suite: "3 Recovery point", Goal: "at 100 changes/s on tree (a), default settings: p50 < 1 s and p99 < 5 s",
			Measured: fmt.Sprintf("p50 %s, p99 %s (every repetition checked)", p50.Format(secInf), p99.Format(secInf)),
			Status:   report.Status(ok), Note: note})
	}
	if len(goals) == 0 {
		goals = append(goals, report.Goal{Suite: "3 Recovery point", Goal: "p50 < 1 s and p99 < 5 s at 100 changes/s", Status: report.NotMeasured})
	}
	return &suiteResult{section: sec, goals: goals, raw: raw}
}

func secInf(x float64) string {
	if math.IsInf(x, 1) {
		return "∞ (not visible)"
	}
	return stats.Seconds(x)
}
