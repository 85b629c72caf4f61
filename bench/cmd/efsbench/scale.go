package main

import (
	"fmt"
	"math"
	"os"
	"path/filepath"
	"time"

	"golang.org/x/sys/unix"

	"github.com/efsd/efsd/bench/internal/report"
	"github.com/efsd/efsd/bench/internal/stats"
	"github.com/efsd/efsd/bench/internal/trees"
)

const (
	phaseMemory   = "peak memory"
	phaseBuild    = "build (harness, 16 goroutines)"
	toolEfsdRSS   = "efsd VmHWM over restart, catch-up, 1%-change and no-op passes"
	toolEfsdInit  = "efsd VmHWM over its initial replication"
	toolHarnessTr = "harness"
)

func (h *harness) scaleSizes() []int {
	if h.quick {
		return []int{10000}
	}
	return []int{10_000, 100_000, 1_000_000}
}

func sizeName(n int) string {
	switch {
	case n >= 1_000_000 && n%1_000_000 == 0:
		return fmt.Sprintf("%dM", n/1_000_000)
	case n >= 1000 && n%1000 == 0:
		return fmt.Sprintf("%dk", n/1000)
	}
	return fmt.Sprint(n)
}

func (h *harness) scaleSuite() (*suiteResult, error) {
	raw := &dataRaw{Trees: map[string]string{}}
	sizes := h.scaleSizes()
	var err error
	for i, n := range sizes {
		spec := trees.Scale(sizeName(n), n)
		raw.Trees[spec.Name] = spec.Desc
		// The largest trees stay until the file system is unmounted:
		// deleting a million files costs more than it tells.
		if err = h.scaleTree(spec, raw, i < len(sizes)-1); err != nil {
			err = fmt.Errorf("scale %s: %w", spec.Name, err)
			break
		}
	}
	return h.scaleReport(raw, sizes), err
}

func (h *harness) scaleTree(spec *trees.Spec, raw *dataRaw, remove bool) error {
	base := filepath.Join(h.mnt.Dir, "scale-"+spec.Name)
	dataDir := filepath.Join(base, "efsd")
	if remove {
		defer func() {
			os.RemoveAll(base)
			unix.Sync()
		}()
	}
	add := func(rep int, phase, tool string, wall, cpu float64, files, bytes, rss int64) {
		raw.add(dataSample{Suite: "scale", Rep: rep, Tree: spec.Name, Phase: phase, Tool: tool, Wall: wall, CPU: cpu, Files: files, Bytes: bytes, PeakRSS: rss})
	}
	s, err := h.startServer("efsd", "scale-"+spec.Name+"-initial", dataDir, "--log-level", "debug")
	if err != nil {
		return err
	}
	defer s.stop()
	srcID, err := h.createFS(s, "bench-scale-"+spec.Name)
	if err != nil {
		return err
	}
	src := s.volumeDir(srcID)
	h.logf("scale %s: building %s", spec.Name, spec.Desc)
	c0, t0 := selfCPU(), time.Now()
	if err := trees.Build(src, spec, buildWorkers); err != nil {
		return err
	}
	unix.Sync()
	add(-1, phaseBuild, toolHarnessTr, time.Since(t0).Seconds(), selfCPU()-c0, int64(spec.Files), spec.TotalBytes(), 0)
	h.logf("scale %s: built in %s", spec.Name, time.Since(t0).Round(time.Millisecond))

	// Initial replication (for information; the suite is about what
	// follows).
	u0 := s.usage()
	t0 = time.Now()
	dstID, err := h.replicate(s, srcID)
	if err != nil {
		return err
	}
	cv, err := h.waitCovered(s, srcID, t0, 60*time.Minute, 20*time.Millisecond)
	if err != nil {
		return err
	}
	u1 := s.usage()
	add(-1, phaseInitial, toolEfsd, cv.At.Sub(t0).Seconds(), u1.CPU-u0.CPU, int64(spec.Files), spec.TotalBytes(), u1.PeakRSS)
	h.logf("scale %s: efsd initial replication %s, VmHWM %d MiB", spec.Name, cv.At.Sub(t0).Round(time.Millisecond), u1.PeakRSS>>20)
	dst := s.volumeDir(dstID)
	if err := trees.Diff(src, dst, trees.DiffOptions{Meta: true}); err != nil {
		return fmt.Errorf("after initial replication: %w: %v", errNotIdentical, err)
	}
	if err := s.stop(); err != nil {
		return err
	}
	rdst := filepath.Join(base, "rsync")
	unix.Sync()
	res, err := h.runCmd(60*time.Minute, "rsync", "-a", "--delete", src+"/", rdst+"/")
	if err != nil {
		return err
	}
	add(-1, phaseInitial, toolRsync, res.Wall, res.CPU, int64(spec.Files), spec.TotalBytes(), res.MaxRSS)
	h.logf("scale %s: rsync initial %.3fs", spec.Name, res.Wall)

	for rep := range h.reps {
		blocks := []func() error{
			func() error { return h.scaleEfsdBlock(raw, spec, rep, dataDir, srcID, dstID) },
			func() error { return h.scaleRsyncBlock(raw, spec, rep, src, rdst) },
		}
		if rep%2 == 1 {
			blocks[0], blocks[1] = blocks[1], blocks[0]
		}
		for _, b := range blocks {
			if err := h.check(); err != nil {
				return err
			}
			if err := b(); err != nil {
				return fmt.Errorf("rep %d: %w", rep, err)
			}
		}
	}
	return nil
}

// scaleEfsdBlock restarts efsd on the replicated pair (so VmHWM covers
// only what follows), waits for the catch-up pass a restart makes, then
// measures a 1%-change pass and the no-op passes after it; then, with
// the server stopped, treesync alone (syncpass).
func (h *harness) scaleEfsdBlock(raw *dataRaw, spec *trees.Spec, rep int, dataDir, srcID, dstID string) error {
	s, err := h.startServer("efsd", fmt.Sprintf("scale-%s-r%d", spec.Name, rep), dataDir, "--log-level", "debug")
	if err != nil {
		return err
	}
	defer s.stop()
	src, dst := s.volumeDir(srcID), s.volumeDir(dstID)
	if _, err := h.waitCovered(s, srcID, s.proc.Start, 30*time.Minute, 20*time.Millisecond); err != nil {
		return err
	}
	if err := h.efsdIncremental(raw, "scale", spec, rep, s, srcID, src, dst); err != nil {
		return err
	}
	u := s.usage()
	raw.add(dataSample{Suite: "scale", Rep: rep, Tree: spec.Name, Phase: phaseMemory, Tool: toolEfsdRSS, PeakRSS: u.PeakRSS, Wall: math.NaN(), CPU: math.NaN()})
	h.logf("scale %s: efsd VmHWM %d MiB", spec.Name, u.PeakRSS>>20)
	if err := s.stop(); err != nil {
		return err
	}
	return h.noopPasses(raw, "scale", spec, rep, src, dst)
}

func (h *harness) scaleRsyncBlock(raw *dataRaw, spec *trees.Spec, rep int, src, rdst string) error {
	add := func(phase, tool string, r cmdResult, files, bytes int64) {
		raw.add(dataSample{Suite: "scale", Rep: rep, Tree: spec.Name, Phase: phase, Tool: tool, Wall: r.Wall, CPU: r.CPU, Files: files, Bytes: bytes, PeakRSS: r.MaxRSS})
	}
	unix.Sync()
	round := h.nextRound()
	changed, err := trees.Mutate(src, spec, round, 0.01, buildWorkers)
	if err != nil {
		return err
	}
	var cbytes int64
	for _, i := range trees.Pick(spec, round, 0.01) {
		cbytes += spec.Entry(i).Size
	}
	res, err := h.runCmd(30*time.Minute, "rsync", "-a", "--delete", src+"/", rdst+"/")
	if err != nil {
		return err
	}
	add(phaseIncr, toolRsync, res, int64(len(changed)), cbytes)
	unix.Sync()
	res, err = h.runCmd(30*time.Minute, "rsync", "-a", "--delete", src+"/", rdst+"/")
	if err != nil {
		return err
	}
	add(phaseNoop, toolRsync, res, int64(spec.Files+len(spec.Dirs)), 0)
	h.logf("scale %s: rsync 1%% %.3fs, no-op %.3fs", spec.Name, raw.Samples[len(raw.Samples)-2].Wall, res.Wall)
	for range h.iterations() {
		c0, w0 := selfCPU(), time.Now()
		n, err := trees.StatWalk(src)
		w, c := time.Since(w0).Seconds(), selfCPU()-c0
		if err != nil {
			return err
		}
		add(phaseNoop, toolStatWalk, cmdResult{Wall: w, CPU: c}, int64(n), 0)
	}
	return nil
}

// --- report ---

func (h *harness) scaleReport(raw *dataRaw, sizes []int) *suiteResult {
	sec := report.Section{Title: "4. Scale: 10k, 100k and 1M files",
		Intro: []string{
			"Trees: small files (0–2 KiB, mean 1 KiB), 1,000 per directory, on the dedicated file system. Each tree is built once, " +
				"replicated once by efsd and copied once by rsync (both shown for information), then reused. Per repetition (alternating): " +
				"efsd is restarted on the replicated pair — so that its VmHWM covers only what follows — and makes its catch-up pass; 1% of the files are " +
				"rewritten and timed until covered (as in suite 2); the no-op rescan passes that follow are timed from efsd's log; efsd's peak RSS " +
				"(VmHWM) is read; then, with the server stopped, treesync.Sync runs with nothing to do (bench/cmd/syncpass, no server). The rsync block rewrites " +
				"another 1% and runs `rsync -a --delete`, then runs it again with nothing changed, then a bare stat walk of the source.",
			"efsd runs at its defaults, so its volume meter also walks the file systems (source and destination) in the background " +
				"to update SizeInBytes (every 5 s, or less often for trees that take long to walk); that walk shares the CPUs and the memory measured here.",
		}}
	names := make([]string, len(sizes))
	for i, n := range sizes {
		names[i] = sizeName(n)
	}
	med := func(tree, phase, tool string, f func(dataSample) float64) stats.Summary {
		return raw.summary(tree, phase, tool, f)
	}
	{
		t := report.Table{Title: "Time of a pass",
			Header: []string{"Files", "efsd 1% change (outside)", "efsd 1% pass alone (log)", "rsync 1% change", "efsd ÷ rsync (1%)",
				"efsd no-op pass (server log)", "treesync no-op alone", "rsync no-op", "stat walk", "treesync ÷ stat walk"}}
		for _, n := range names {
			e, r := med(n, phaseIncr, toolEfsd, wall), med(n, phaseIncr, toolRsync, wall)
			ts, sw := med(n, phaseNoop, toolTreesync, wall), med(n, phaseNoop, toolStatWalk, wall)
			t.Rows = append(t.Rows, []string{n, e.Format(stats.Seconds), med(n, phaseIncr, toolEfsdPass, wall).Format(stats.Seconds),
				r.Format(stats.Seconds), stats.Times(stats.Ratio(e.Median, r.Median)),
				med(n, phaseNoop, toolEfsdPass, wall).Format(stats.Seconds), ts.Format(stats.Seconds),
				med(n, phaseNoop, toolRsync, wall).Format(stats.Seconds), sw.Format(stats.Seconds), stats.Times(stats.Ratio(ts.Median, sw.Median))})
		}
		t.Notes = []string{"\"pass alone (log)\" is the pass that covered the change, i.e. the first to start after the writes ended. " +
			"A pass woken by the first writes may already be running, and copy most of the changed files, before it (efsd's log shows " +
			"each pass's copy count); on large trees that is why the time from outside is much larger than the covering pass."}
		sec.Tables = append(sec.Tables, t)
	}
	{
		t := report.Table{Title: "Time per file (µs), to read growth",
			Header: []string{"Files", "efsd 1% change, per changed file", "rsync 1% change, per changed file", "efsd no-op pass, per entry", "treesync no-op, per entry", "rsync no-op, per entry", "stat walk, per entry"}}
		per := func(s dataSample) float64 { return stats.Ratio(s.Wall, float64(s.Files)) * 1e6 }
		for _, n := range names {
			f := func(phase, tool string) string { return med(n, phase, tool, per).Format(stats.Num) }
			t.Rows = append(t.Rows, []string{n, f(phaseIncr, toolEfsd), f(phaseIncr, toolRsync), f(phaseNoop, toolEfsdPass),
				f(phaseNoop, toolTreesync), f(phaseNoop, toolRsync), f(phaseNoop, toolStatWalk)})
		}
		sec.Tables = append(sec.Tables, t)
	}
	{
		t := report.Table{Title: "Peak memory",
			Header: []string{"Files", "efsd during passes (VmHWM)", "rsync 1% / no-op (largest process)", "efsd during initial replication", "rsync initial (largest process)"}}
		for _, n := range names {
			rs := raw.summaryAny(n, []string{phaseIncr, phaseNoop}, toolRsync, peakRSS)
			t.Rows = append(t.Rows, []string{n, med(n, phaseMemory, toolEfsdRSS, peakRSS).Format(stats.MiB), rs.Format(stats.MiB),
				med(n, phaseInitial, toolEfsd, peakRSS).Format(stats.MiB), med(n, phaseInitial, toolRsync, peakRSS).Format(stats.MiB)})
		}
		sec.Tables = append(sec.Tables, t)
	}
	{
		t := report.Table{Title: "Once per tree (for information)",
			Header: []string{"Files", "build by the harness", "efsd initial replication (durable)", "rsync -a --delete initial", "efsd CPU s", "rsync CPU s"}}
		for _, n := range names {
			t.Rows = append(t.Rows, []string{n, med(n, phaseBuild, toolHarnessTr, wall).Format(stats.Seconds),
				med(n, phaseInitial, toolEfsd, wall).Format(stats.Seconds), med(n, phaseInitial, toolRsync, wall).Format(stats.Seconds),
				med(n, phaseInitial, toolEfsd, cpuSec).Format(stats.Num), med(n, phaseInitial, toolRsync, cpuSec).Format(stats.Num)})
		}
		sec.Tables = append(sec.Tables, t)
	}
	return &suiteResult{section: sec, goals: h.scaleGoals(raw, sizes), raw: raw}
}

func (r *dataRaw) summaryAny(tree string, phases []string, tool string, f func(dataSample) float64) stats.Summary {
	var xs []float64
	for _, s := range r.Samples {
		if s.Tree == tree && s.Tool == tool {
			for _, p := range phases {
				if s.Phase == p {
					xs = append(xs, f(s))
				}
			}
		}
	}
	return stats.Summarize(xs)
}

// growth is the exponent k in time ∝ files^k between the smallest and the
// largest tree.
func growth(t0, t1 float64, n0, n1 int) float64 {
	if t0 <= 0 || t1 <= 0 || n0 == n1 {
		return math.NaN()
	}
	return math.Log(t1/t0) / math.Log(float64(n1)/float64(n0))
}

func (h *harness) scaleGoals(raw *dataRaw, sizes []int) []report.Goal {
	const suite = "4 Scale"
	var goals []report.Goal
	lo, hi := sizes[0], sizes[len(sizes)-1]
	nlo, nhi := sizeName(lo), sizeName(hi)
	m := func(tree, phase, tool string) float64 { return raw.summary(tree, phase, tool, wall).Median }
	for _, g := range []struct{ what, phase, tool string }{
		{"no-op pass (in the server)", phaseNoop, toolEfsdPass},
		{"1%-change pass (from outside)", phaseIncr, toolEfsd},
	} {
		k := growth(m(nlo, g.phase, g.tool), m(nhi, g.phase, g.tool), lo, hi)
		rk := growth(m(nlo, g.phase, toolRsync), m(nhi, g.phase, toolRsync), lo, hi)
		goals = append(goals, report.Goal{Suite: suite, Goal: fmt.Sprintf("%s: growth no worse than linear, %s → %s files (exponent ≤ 1.1, allowing noise)", g.what, nlo, nhi),
			Measured: fmt.Sprintf("exponent %.2f (%s → %s; rsync %.2f)", k, stats.Seconds(m(nlo, g.phase, g.tool)), stats.Seconds(m(nhi, g.phase, g.tool)), rk),
			Status:   report.Status(k <= 1.1), Note: missBy(k, 1.1000001, false)})
	}
	rss := raw.summary(nhi, phaseMemory, toolEfsdRSS, peakRSS)
	target := 300.0 * (1 << 20)
	st := report.Status(rss.Valid() && rss.Max < target)
	if hi < 1_000_000 {
		st = report.NotMeasured
	}
	goals = append(goals, report.Goal{Suite: suite, Goal: "efsd under 300 MiB of memory at 1M files (no-op and 1%-change passes)",
		Measured: fmt.Sprintf("%s at %s files (worst repetition %s); %s during the initial replication", rss.Format(stats.MiB), nhi, stats.MiB(rss.Max),
			stats.MiB(raw.summary(nhi, phaseInitial, toolEfsd, peakRSS).Median)),
		Status: st, Note: missBy(rss.Max/target, 1.0000001, false)})
	return goals
}
