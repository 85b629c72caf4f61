package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"time"

	"golang.org/x/sys/unix"

	"github.com/efsd/efsd/bench/internal/report"
	"github.com/efsd/efsd/bench/internal/stats"
	"github.com/efsd/efsd/bench/internal/trees"
)

// Tools and measurements of the data suites.
const (
	toolEfsd       = "efsd, from outside"
	toolEfsdLRT    = "efsd, until LastReplicatedTimestamp covers it (whole seconds, as EFS reports it)"
	toolEfsdPass   = "efsd pass alone (server log: pass start → end)"
	toolEfsdFirst  = "efsd first pass after a change (server log)"
	toolTreesync   = "efsd's treesync.Sync alone (syncpass, no server)"
	toolRsync      = "rsync -a --delete"
	toolRsyncFsync = "rsync -a --delete --fsync"
	toolCp         = "cp -a"
	toolRsyncSync  = "rsync -a --delete, then sync -f (durable)"
	toolCpSync     = "cp -a, then sync -f (durable)"
	toolStatWalk   = "bare stat walk of the source (readdir + lstat)"
	toolPhysical   = "physical limit: the step's bytes written to one new file, then fdatasync"

	phaseInitial = "initial"
	phaseIncr    = "incremental (1% of files changed)"
	phaseNoop    = "no-op (nothing changed)"
)

// dataSample is one measurement of the data suites.
type dataSample struct {
	Suite   string  `json:"suite"`
	Rep     int     `json:"rep"`
	Tree    string  `json:"tree"`
	Phase   string  `json:"phase"`
	Tool    string  `json:"tool"`
	Wall    float64 `json:"wall_s"`
	CPU     float64 `json:"cpu_s"` // NaN: not measured
	Files   int64   `json:"files"` // files handled (copied, changed or scanned)
	Bytes   int64   `json:"bytes"`
	PeakRSS int64   `json:"peak_rss_bytes,omitempty"`
}

type dataRaw struct {
	Trees   map[string]string `json:"trees"`
	Samples []dataSample      `json:"samples"`
}

func (r *dataRaw) add(s dataSample) { r.Samples = append(r.Samples, s) }

func (r *dataRaw) summary(tree, phase, tool string, f func(dataSample) float64) stats.Summary {
	var xs []float64
	for _, s := range r.Samples {
		if s.Tree == tree && s.Phase == phase && s.Tool == tool {
			xs = append(xs, f(s))
		}
	}
	return stats.Summarize(xs)
}

func wall(s dataSample) float64    { return s.Wall }
func cpuSec(s dataSample) float64  { return s.CPU }
func filesPS(s dataSample) float64 { return stats.Ratio(float64(s.Files), s.Wall) }
func mbPS(s dataSample) float64    { return stats.Ratio(float64(s.Bytes)/1e6, s.Wall) }
func peakRSS(s dataSample) float64 { return float64(s.PeakRSS) }

func (h *harness) replicationTrees() []*trees.Spec {
	if h.quick {
		return []*trees.Spec{trees.SmallFiles("a", 1000, 4096, 10), trees.LargeFiles("b", 4, 16<<20), trees.Mixed("c", 500, 40<<20)}
	}
	return []*trees.Spec{trees.SmallFiles("a", 10000, 4096, 100), trees.LargeFiles("b", 20, 64<<20), trees.Mixed("c", 5000, 800<<20)}
}

// buildWorkers is how many goroutines write a tree.
const buildWorkers = 16

func (h *harness) replicationSuite() (*suiteResult, error) {
	raw := &dataRaw{Trees: map[string]string{}}
	specs := h.replicationTrees()
	var err error
	for _, spec := range specs {
		raw.Trees[spec.Name] = spec.Desc
		if err = h.replicationTree(spec, raw); err != nil {
			err = fmt.Errorf("tree (%s): %w", spec.Name, err)
			break
		}
	}
	return h.replicationReport(raw, specs), err
}

// replicationTree measures one tree: a source file system built once,
// then per repetition (alternating which goes first) an efsd block and an
// anchors block.
func (h *harness) replicationTree(spec *trees.Spec, raw *dataRaw) error {
	base := filepath.Join(h.mnt.Dir, "repl-"+spec.Name)
	dataDir := filepath.Join(base, "efsd")
	defer func() {
		os.RemoveAll(base)
		unix.Sync()
	}()
	s, err := h.startServer("efsd", "repl-"+spec.Name+"-setup", dataDir, "--log-level", "debug")
	if err != nil {
		return err
	}
	srcID, err := h.createFS(s, "bench-src-"+spec.Name)
	if err != nil {
		s.stop()
		return err
	}
	src := s.volumeDir(srcID)
	if err := s.stop(); err != nil {
		return err
	}
	h.logf("replication (%s): building %s", spec.Name, spec.Desc)
	t0 := time.Now()
	if err := trees.Build(src, spec, buildWorkers); err != nil {
		return err
	}
	unix.Sync()
	h.logf("replication (%s): built in %s", spec.Name, time.Since(t0).Round(time.Millisecond))
	for rep := range h.reps {
		blocks := []func() error{
			func() error { return h.efsdBlock(raw, "replication", spec, rep, dataDir, srcID) },
			func() error { return h.anchorBlock(raw, spec, rep, src, filepath.Join(base, "anchors")) },
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

// efsdBlock: start efsd on the data directory holding the source; time
// the initial replication into a new destination, an incremental pass
// after 1% of files changed, and the no-op passes that follow; then delete
// the configuration, time treesync alone with the server stopped, and
// delete the destination.
func (h *harness) efsdBlock(raw *dataRaw, suite string, spec *trees.Spec, rep int, dataDir, srcID string) error {
	name := fmt.Sprintf("%s-%s-r%d", suite, spec.Name, rep)
	s, err := h.startServer("efsd", name, dataDir, "--log-level", "debug")
	if err != nil {
		return err
	}
	defer s.stop()
	src := s.volumeDir(srcID)
	nFiles, nBytes := int64(spec.Files), spec.TotalBytes()
	add := func(phase, tool string, wall, cpu float64, files, bytes int64) {
		raw.add(dataSample{Suite: suite, Rep: rep, Tree: spec.Name, Phase: phase, Tool: tool, Wall: wall, CPU: cpu, Files: files, Bytes: bytes})
	}
	// Initial replication, from CreateReplicationConfiguration until the
	// end of the pass after which the destination is identical (and
	// durable: efsd logs a pass once it is).
	unix.Sync()
	logOff := fileSize(s.proc.Log)
	u0 := s.usage()
	t0 := time.Now()
	dstID, err := h.replicate(s, srcID)
	if err != nil {
		return err
	}
	dst := s.volumeDir(dstID)
	pass, err := h.waitIdenticalPass(s, logOff, t0, 30*time.Minute, func() error {
		return trees.Diff(src, dst, trees.DiffOptions{Content: true, Meta: true})
	})
	if err != nil {
		return fmt.Errorf("after initial replication: %w: %v", errNotIdentical, err)
	}
	u1 := s.usage()
	// The timestamp the API reports must then cover the call.
	cv, err := h.waitCovered(s, srcID, t0, 30*time.Minute, 5*time.Millisecond)
	if err != nil {
		return err
	}
	add(phaseInitial, toolEfsd, pass.End.Sub(t0).Seconds(), u1.CPU-u0.CPU, nFiles, nBytes)
	add(phaseInitial, toolEfsdLRT, cv.At.Sub(t0).Seconds(), math.NaN(), nFiles, nBytes)
	add(phaseInitial, toolEfsdPass, pass.Duration.Seconds(), math.NaN(), nFiles, nBytes)
	h.logf("  efsd initial: %s (pass alone %s; covered by LastReplicatedTimestamp after %s)", pass.End.Sub(t0).Round(time.Millisecond),
		pass.Duration.Round(time.Millisecond), cv.At.Sub(t0).Round(time.Millisecond))

	// Incremental: 1% of the files changed, from the end of the change
	// until a pass that started after it has finished.
	if err := h.efsdIncremental(raw, suite, spec, rep, s, srcID, src, dst); err != nil {
		return err
	}

	if err := h.unreplicate(s, srcID); err != nil {
		return err
	}
	if err := s.stop(); err != nil {
		return err
	}
	// The pass itself, without the server.
	if err := h.noopPasses(raw, suite, spec, rep, src, dst); err != nil {
		return err
	}
	// Give the destination back.
	s2, err := h.startServer("efsd", name+"-cleanup", dataDir, "--log-level", "debug")
	if err != nil {
		return err
	}
	defer s2.stop()
	if err := h.deleteFS(s2, dstID); err != nil {
		return err
	}
	unix.Sync()
	return s2.stop()
}

func (h *harness) iterations() int {
	if h.quick {
		return 2
	}
	return 3
}

// efsdIncremental changes 1% of the source's files with efsd running and
// replicating, measures until the change is covered, then waits for the
// no-op passes that follow.
func (h *harness) efsdIncremental(raw *dataRaw, suite string, spec *trees.Spec, rep int, s *server, srcID, src, dst string) error {
	add := func(phase, tool string, wall, cpu float64, files, bytes int64) {
		raw.add(dataSample{Suite: suite, Rep: rep, Tree: spec.Name, Phase: phase, Tool: tool, Wall: wall, CPU: cpu, Files: files, Bytes: bytes})
	}
	unix.Sync()
	// The anchors of this repetition change the same files (see
	// trees.MutatePicked).
	u0 := s.usage()
	changed, err := trees.MutatePicked(src, spec, rep, 1+h.nextRound(), 0.01, buildWorkers)
	if err != nil {
		return err
	}
	logOff := fileSize(s.proc.Log)
	tc := time.Now()
	pass, err := h.waitIdenticalPass(s, logOff, tc, 10*time.Minute, func() error { return identical(src, dst, spec, changed) })
	if err != nil {
		return fmt.Errorf("after incremental pass: %w", err)
	}
	u1 := s.usage()
	cv, err := h.waitCovered(s, srcID, tc, 10*time.Minute, 5*time.Millisecond)
	if err != nil {
		return err
	}
	var cbytes int64
	for _, i := range trees.Pick(spec, rep, 0.01) {
		cbytes += spec.Entry(i).Size
	}
	add(phaseIncr, toolEfsd, pass.End.Sub(tc).Seconds(), u1.CPU-u0.CPU, int64(len(changed)), cbytes)
	add(phaseIncr, toolEfsdLRT, cv.At.Sub(tc).Seconds(), math.NaN(), int64(len(changed)), cbytes)
	add(phaseIncr, toolEfsdPass, pass.Duration.Seconds(), math.NaN(), int64(len(changed)), cbytes)
	h.logf("  efsd incremental (%d files): %s (pass alone %s)", len(changed), pass.End.Sub(tc).Round(time.Millisecond), pass.Duration.Round(time.Millisecond))

	// No-op passes: the rescan passes that follow. The first after a
	// change content-checks the files changed within the last ~3 s (the
	// racy window); a pass is steady once the pass before it started
	// more than 3.5 s after the change.
	entries := int64(spec.Files + len(spec.Dirs))
	limit := 80*time.Second + 4*cv.At.Sub(tc)
	passes, err := h.collectPasses(s, pass.End, limit, func(ps []timedPass) bool {
		for k := 1; k < len(ps); k++ {
			if ps[k].noop() && ps[k-1].Start.After(tc.Add(3500*time.Millisecond)) {
				return true
			}
		}
		return false
	})
	if err != nil {
		return err
	}
	first := true
	for k, p := range passes {
		if !p.noop() {
			continue
		}
		if first {
			add(phaseNoop, toolEfsdFirst, p.End.Sub(p.Start).Seconds(), math.NaN(), entries, 0)
			first = false
		}
		if k > 0 && passes[k-1].Start.After(tc.Add(3500*time.Millisecond)) {
			add(phaseNoop, toolEfsdPass, p.End.Sub(p.Start).Seconds(), math.NaN(), entries, 0)
			break
		}
	}
	return nil
}

// timedPass is a pass seen in efsd's log.
type timedPass struct {
	Start, End time.Time
	passRecord
}

func (p timedPass) noop() bool { return p.Copied == 0 && p.Deleted == 0 }

// collectPasses follows efsd's log for the passes that start after
// `after`, until done returns true or limit passes.
func (h *harness) collectPasses(s *server, after time.Time, limit time.Duration, done func([]timedPass) bool) ([]timedPass, error) {
	off := fileSize(s.proc.Log)
	var out []timedPass
	deadline := time.Now().Add(limit)
	for time.Now().Before(deadline) {
		if err := h.check(); err != nil {
			return out, err
		}
		recs, noff, err := readPasses(s.proc.Log, off)
		if err != nil {
			return out, err
		}
		off = noff
		for _, r := range recs {
			if r.Start().After(after) {
				out = append(out, timedPass{Start: r.Start(), End: r.End, passRecord: r})
			}
		}
		if done(out) {
			return out, nil
		}
		time.Sleep(20 * time.Millisecond)
	}
	return out, fmt.Errorf("no steady no-op pass seen within the limit (%d passes)", len(out))
}

// anchorBlock: rsync (plain and --fsync) and cp -a of the same tree on
// the same file system; then an incremental rsync after 1% changed; then
// rsync with nothing changed and a bare stat walk.
func (h *harness) anchorBlock(raw *dataRaw, spec *trees.Spec, rep int, src, dir string) error {
	add := func(phase, tool string, r cmdResult, files, bytes int64) {
		raw.add(dataSample{Suite: "replication", Rep: rep, Tree: spec.Name, Phase: phase, Tool: tool, Wall: r.Wall, CPU: r.CPU, Files: files, Bytes: bytes, PeakRSS: r.MaxRSS})
	}
	defer func() {
		os.RemoveAll(dir)
		unix.Sync()
	}()
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	nFiles, nBytes := int64(spec.Files), spec.TotalBytes()
	dRsync, dFsync, dCp := filepath.Join(dir, "rsync"), filepath.Join(dir, "rsync-fsync"), filepath.Join(dir, "cp")
	limit := 30 * time.Minute
	type run struct {
		tool string
		args []string
	}
	for _, r := range []run{
		{toolRsync, []string{"rsync", "-a", "--delete", src + "/", dRsync + "/"}},
		{toolRsyncFsync, []string{"rsync", "-a", "--delete", "--fsync", src + "/", dFsync + "/"}},
		{toolCp, []string{"cp", "-a", src, dCp}},
	} {
		unix.Sync()
		res, err := h.runCmd(limit, r.args[0], r.args[1:]...)
		if err != nil {
			return err
		}
		add(phaseInitial, r.tool, res, nFiles, nBytes)
		h.logf("  %s initial: %.3fs", r.tool, res.Wall)
		// The same copy made durable: flush its file system (syncfs).
		durable := map[string]string{toolRsync: toolRsyncSync, toolCp: toolCpSync}[r.tool]
		if durable != "" {
			dst := r.args[len(r.args)-1]
			fl, err := h.runCmd(limit, "sync", "-f", dst)
			if err != nil {
				return err
			}
			add(phaseInitial, durable, cmdResult{Wall: res.Wall + fl.Wall, CPU: res.CPU + fl.CPU, MaxRSS: res.MaxRSS}, nFiles, nBytes)
		}
	}
	if err := h.physical(raw, spec, rep, phaseInitial, dir, nFiles, nBytes); err != nil {
		return err
	}
	for _, d := range []string{dRsync, dFsync, dCp} {
		if err := trees.Diff(src, d, trees.DiffOptions{Meta: true}); err != nil {
			return fmt.Errorf("anchor copy %s: %w: %v", d, errNotIdentical, err)
		}
	}
	// Incremental.
	unix.Sync()
	changed, err := trees.MutatePicked(src, spec, rep, 1+h.nextRound(), 0.01, buildWorkers)
	if err != nil {
		return err
	}
	var cbytes int64
	for _, i := range trees.Pick(spec, rep, 0.01) {
		cbytes += spec.Entry(i).Size
	}
	for _, r := range []run{
		{toolRsync, []string{"rsync", "-a", "--delete", src + "/", dRsync + "/"}},
		{toolRsyncFsync, []string{"rsync", "-a", "--delete", "--fsync", src + "/", dFsync + "/"}},
	} {
		res, err := h.runCmd(limit, r.args[0], r.args[1:]...)
		if err != nil {
			return err
		}
		add(phaseIncr, r.tool, res, int64(len(changed)), cbytes)
		h.logf("  %s incremental: %.3fs", r.tool, res.Wall)
	}
	if err := h.physical(raw, spec, rep, phaseIncr, dir, int64(len(changed)), cbytes); err != nil {
		return err
	}
	// No-op.
	entries := int64(spec.Files + len(spec.Dirs))
	unix.Sync()
	for _, r := range []run{
		{toolRsync, []string{"rsync", "-a", "--delete", src + "/", dRsync + "/"}},
		{toolRsyncFsync, []string{"rsync", "-a", "--delete", "--fsync", src + "/", dFsync + "/"}},
	} {
		res, err := h.runCmd(limit, r.args[0], r.args[1:]...)
		if err != nil {
			return err
		}
		add(phaseNoop, r.tool, res, entries, 0)
	}
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

// physical records what this disk takes to hold a step's bytes durably
// (durableWrite).
func (h *harness) physical(raw *dataRaw, spec *trees.Spec, rep int, phase, dir string, files, n int64) error {
	w, c, err := durableWrite(dir, n)
	if err != nil {
		return err
	}
	raw.add(dataSample{Suite: "replication", Rep: rep, Tree: spec.Name, Phase: phase, Tool: toolPhysical, Wall: w, CPU: c, Files: files, Bytes: n})
	h.logf("  physical limit, %s (%d bytes): %.3fs", phase, n, w)
	return nil
}

// durableWrite times n bytes written in 1 MiB writes of incompressible
// data to one new file in dir, then fdatasync: what the disk takes to hold
// them durably. Many files add their metadata on top; writeback already
// under way, or the host's cache, can make a copy measured at another
// moment faster. It returns wall and CPU seconds.
func durableWrite(dir string, n int64) (wall, cpu float64, err error) {
	unix.Sync()
	path := filepath.Join(dir, "physical")
	defer os.Remove(path)
	buf := make([]byte, 1<<20)
	for i := range buf {
		buf[i] = byte(uint32(i) * 2654435761 >> 24) // no runs for the disk or a compressing layer to shorten
	}
	c0, w0 := selfCPU(), time.Now()
	f, err := os.OpenFile(path, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o644)
	if err != nil {
		return 0, 0, err
	}
	for left := n; left > 0; {
		k := min(left, int64(len(buf)))
		if _, err := f.Write(buf[:k]); err != nil {
			f.Close()
			return 0, 0, err
		}
		left -= k
	}
	if err := unix.Fdatasync(int(f.Fd())); err != nil {
		f.Close()
		return 0, 0, fmt.Errorf("fdatasync %s: %w", path, err)
	}
	if err := f.Close(); err != nil {
		return 0, 0, err
	}
	return time.Since(w0).Seconds(), selfCPU() - c0, nil
}

// --- report ---

func (h *harness) replicationReport(raw *dataRaw, specs []*trees.Spec) *suiteResult {
	sec := report.Section{Title: "2. Replication throughput: efsd vs rsync and cp",
		Intro: []string{
			"Data file system: " + h.mnt.Desc + ". The trees are written by the harness (deterministic contents), " +
				"into a source file system's directory on that file system; every copy goes to the same file system. " +
				"`sync` runs before each timed step; source pages stay cached (warm), as they are for a replication that follows its writers.",
			"efsd runs with its defaults (no config file; `--log-level debug` only to log each pass: efsd logs a `replication pass` line, " +
				"with the pass's duration, once the pass is durable at the destination). **Initial**: from CreateReplicationConfiguration " +
				"(new destination in the same region) until the end of the pass after which the destination is identical (names, types, sizes, " +
				"modes, owners, mtimes and every byte): after each new pass line the copy is checked, and the pass credited is the newest logged " +
				"when the check began. It includes creating the destination file system (a replication's new destination is provisioned at " +
				"once, without the transitionDelay other file systems take) and efsd's durability (contents fsynced in batches via syncfs). " +
				"DescribeReplicationConfigurations, polled every 5 ms, must then show a LastReplicatedTimestamp covering the call: that time is " +
				"shown on its own line, for information — the API gives whole seconds, as EFS does, so it is up to a second later, when a pass " +
				"starting in the next second has ended. **Incremental**: 1% of the files are rewritten in place (same sizes, new bytes) with efsd " +
				"running; timed likewise from the end of the writes (includes the 20 ms settle delay after inotify). \"Pass alone\" is the credited " +
				"pass's duration from the log. **No-op**: efsd's treesync.Sync called on the same trees by `bench/cmd/syncpass` (built from the " +
				"same source as efsd) with the server stopped, with a change record filled by one untimed pass as efsd's worker keeps one — the " +
				"pass itself — and, through the server, the rescan passes that follow the change (5 s apart by default), each pass's duration " +
				"from its `replication pass` line.",
			"Anchors: `rsync -a --delete SRC/ DST/` (plain: not durable when it returns), `rsync -a --delete --fsync` (fsync per file), " +
				"`cp -a SRC DST` (initial only); for the initial copy also plain rsync and cp -a each followed by `sync -f DST` (syncfs of the " +
				"file system: the same copy made durable, as efsd's is; the initial-copy goals compare with cp -a then sync -f and with plain rsync); then rsync again after 1% changed (in each repetition the same files as efsd's change, with new bytes), and with " +
				"nothing changed; and a bare stat walk of the source (readdir + lstat of every entry, in-process Go), the least any " +
				"change detection must do. treesync walks both trees, so about 2× a one-tree walk is its floor.",
			"Physical limit: the step's bytes (the whole tree for the initial copy, the changed files for the incremental one) written by the harness " +
				"in 1 MiB writes to one new file on the same file system, then fdatasync: what this disk takes to make those bytes durable, " +
				"without the metadata of many files, measured beside the copies. It is not a strict floor: on a VM it varies several-fold with " +
				"the writeback already under way and the host's cache, so a copy measured at another moment can beat it. \"÷ physical limit\" is each row's time over it.",
			"files/s and MB/s: files (or entries scanned, for no-op rows) and bytes (MB = 10⁶ bytes) of the step divided by its time. " +
				"CPU: utime+stime of efsd from /proc over the step (including the API polling), of rsync/cp including their children (rusage), " +
				"of the harness (stat walk) or of syncpass (treesync alone) for those rows. n/a: not measurable for that row.",
		}}
	for _, spec := range specs {
		anchorInit := toolRsync
		t := report.Table{Title: fmt.Sprintf("Tree (%s): %s", spec.Name, raw.Trees[spec.Name]),
			Header: []string{"Step", "Tool", "Time", "files/s", "MB/s", "CPU s", "÷ anchor", "÷ cp -a, sync -f", "÷ physical limit"}}
		rows := []struct{ phase, tool, anchor string }{
			{phaseInitial, toolEfsd, anchorInit},
			{phaseInitial, toolEfsdPass, anchorInit},
			{phaseInitial, toolEfsdLRT, anchorInit},
			{phaseInitial, toolRsync, anchorInit},
			{phaseInitial, toolRsyncSync, anchorInit},
			{phaseInitial, toolRsyncFsync, anchorInit},
			{phaseInitial, toolCp, anchorInit},
			{phaseInitial, toolCpSync, anchorInit},
			{phaseInitial, toolPhysical, anchorInit},
			{phaseIncr, toolEfsd, toolRsync},
			{phaseIncr, toolEfsdPass, toolRsync},
			{phaseIncr, toolEfsdLRT, toolRsync},
			{phaseIncr, toolRsync, toolRsync},
			{phaseIncr, toolRsyncFsync, toolRsync},
			{phaseIncr, toolPhysical, toolRsync},
			{phaseNoop, toolTreesync, toolStatWalk},
			{phaseNoop, toolEfsdPass, toolStatWalk},
			{phaseNoop, toolEfsdFirst, toolStatWalk},
			{phaseNoop, toolRsync, toolStatWalk},
			{phaseNoop, toolRsyncFsync, toolStatWalk},
			{phaseNoop, toolStatWalk, toolStatWalk},
		}
		for _, r := range rows {
			w := raw.summary(spec.Name, r.phase, r.tool, wall)
			if !w.Valid() {
				continue
			}
			ratio := "—"
			if r.anchor != "" {
				a := raw.summary(spec.Name, r.phase, r.anchor, wall)
				ratio = stats.Times(stats.Ratio(w.Median, a.Median)) + " " + shortTool(r.anchor)
			}
			fps, mbs := raw.summary(spec.Name, r.phase, r.tool, filesPS), raw.summary(spec.Name, r.phase, r.tool, mbPS)
			fpsS, mbsS := fps.Format(stats.Num), mbs.Format(stats.Num)
			if r.phase == phaseNoop {
				mbsS = "—"
			}
			// Against the durable copy and the disk's limit (where the
			// step has bytes to write).
			vs := func(tool string) string {
				a := raw.summary(spec.Name, r.phase, tool, wall)
				if !a.Valid() {
					return "—"
				}
				return stats.Times(stats.Ratio(w.Median, a.Median))
			}
			cpSync, phys := "—", "—"
			if r.phase == phaseInitial {
				cpSync = vs(toolCpSync)
			}
			if r.phase != phaseNoop {
				phys = vs(toolPhysical)
			}
			t.Rows = append(t.Rows, []string{r.phase, r.tool, w.Format(stats.Seconds), fpsS, mbsS,
				raw.summary(spec.Name, r.phase, r.tool, cpuSec).Format(stats.Num), ratio, cpSync, phys})
		}
		sec.Tables = append(sec.Tables, t)
	}
	return &suiteResult{section: sec, goals: h.replicationGoals(raw, specs), raw: raw}
}

func shortTool(t string) string {
	switch t {
	case toolRsync:
		return "rsync"
	case toolCp:
		return "cp -a"
	case toolStatWalk:
		return "stat walk"
	}
	return t
}

func (h *harness) replicationGoals(raw *dataRaw, specs []*trees.Spec) []report.Goal {
	const suite = "2 Replication"
	var goals []report.Goal
	med := func(tree, phase, tool string) float64 { return raw.summary(tree, phase, tool, wall).Median }
	// Issue #12 §3: the initial copy against a durable anchor (cp -a, then
	// sync -f) and against plain rsync, whose copy may not be on disk yet.
	for _, spec := range specs {
		e := med(spec.Name, phaseInitial, toolEfsd)
		p := med(spec.Name, phaseInitial, toolPhysical)
		c := med(spec.Name, phaseInitial, toolCpSync)
		r := stats.Ratio(e, c)
		goals = append(goals, report.Goal{Suite: suite, Goal: fmt.Sprintf("initial replication of (%s), durable, ≤ 1.0× `cp -a` then `sync -f`", spec.Name),
			Measured: fmt.Sprintf("%s× (efsd %s, cp -a then sync -f %s; physical limit %s, efsd %s× it)", stats.Num(r), stats.Seconds(e), stats.Seconds(c),
				stats.Seconds(p), stats.Num(stats.Ratio(e, p))),
			Status: report.Status(r <= 1), Note: missBy(r, 1.0000001, false)})
		a := med(spec.Name, phaseInitial, toolRsync)
		r = stats.Ratio(e, a)
		goals = append(goals, report.Goal{Suite: suite, Goal: fmt.Sprintf("initial replication of (%s), durable, ≤ 1.0× plain rsync", spec.Name),
			Measured: fmt.Sprintf("%s× rsync (efsd %s, rsync %s, rsync --fsync %s)", stats.Num(r), stats.Seconds(e), stats.Seconds(a), stats.Seconds(med(spec.Name, phaseInitial, toolRsyncFsync))),
			Status:   report.Status(r <= 1), Note: missBy(r, 1.0000001, false)})
	}
	for _, spec := range specs {
		e, a := med(spec.Name, phaseIncr, toolEfsd), med(spec.Name, phaseIncr, toolRsync)
		r := stats.Ratio(e, a)
		goals = append(goals, report.Goal{Suite: suite, Goal: fmt.Sprintf("incremental pass (1%% changed) of (%s) ≤ 0.5× rsync's time", spec.Name),
			Measured: fmt.Sprintf("%s× rsync (efsd %s from outside, pass alone %s; rsync %s; physical limit %s)", stats.Num(r), stats.Seconds(e),
				stats.Seconds(med(spec.Name, phaseIncr, toolEfsdPass)), stats.Seconds(a), stats.Seconds(med(spec.Name, phaseIncr, toolPhysical))),
			Status: report.Status(r <= 0.5), Note: missBy(r, 0.5000001, false)})
	}
	for _, spec := range specs {
		e, w := med(spec.Name, phaseNoop, toolTreesync), med(spec.Name, phaseNoop, toolStatWalk)
		r := stats.Ratio(e, w)
		goals = append(goals, report.Goal{Suite: suite, Goal: fmt.Sprintf("no-op pass of (%s) ≤ 2× a bare stat walk", spec.Name),
			Measured: fmt.Sprintf("%s× (treesync alone %s, in the server %s; stat walk %s; rsync %s)", stats.Num(r), stats.Seconds(e),
				stats.Seconds(med(spec.Name, phaseNoop, toolEfsdPass)), stats.Seconds(w), stats.Seconds(med(spec.Name, phaseNoop, toolRsync))),
			Status: report.Status(r <= 2), Note: missBy(r, 2.0000001, false)})
	}
	return goals
}

// identical checks that dst is identical to src: names, types, sizes,
// modes, owners and mtimes of everything, and the bytes of every file —
// or, for trees over 20,000 files, the bytes of the files just changed.
func identical(src, dst string, spec *trees.Spec, changed []string) error {
	full := spec.Files <= 20_000
	if err := trees.Diff(src, dst, trees.DiffOptions{Content: full, Meta: true}); err != nil {
		return fmt.Errorf("%w: %v", errNotIdentical, err)
	}
	if !full {
		if err := trees.SameFiles(src, dst, changed); err != nil {
			return fmt.Errorf("%w: %v", errNotIdentical, err)
		}
	}
	return nil
}

// noopPasses runs treesync.Sync with nothing to do, iterations() times,
// in the syncpass helper (the server is stopped), and records each pass.
func (h *harness) noopPasses(raw *dataRaw, suite string, spec *trees.Spec, rep int, src, dst string) error {
	unix.Sync()
	// With a record of its own, as efsd's worker has, filled by a pass
	// that is not timed (it compares every file's content).
	rec := filepath.Join(h.work, fmt.Sprintf("syncpass-%s-%s-r%d.record", suite, spec.Name, rep))
	os.Remove(rec)
	out, err := h.runCmdOutput(30*time.Minute, h.bin.syncpass, "-src", src, "-dst", dst, "-record", rec, "-warmup", "1", "-n", fmt.Sprint(h.iterations()))
	if err != nil {
		return fmt.Errorf("syncpass: %w", err)
	}
	dec := json.NewDecoder(bytes.NewReader(out))
	for {
		var p struct {
			Wall      float64 `json:"wall_s"`
			CPU       float64 `json:"cpu_s"`
			Copied    int64   `json:"copied"`
			Deleted   int64   `json:"deleted"`
			Unchanged int64   `json:"unchanged"`
		}
		if err := dec.Decode(&p); err == io.EOF {
			return nil
		} else if err != nil {
			return fmt.Errorf("syncpass output: %w", err)
		}
		if p.Copied != 0 || p.Deleted != 0 {
			return fmt.Errorf("no-op pass copied %d and deleted %d", p.Copied, p.Deleted)
		}
		raw.add(dataSample{Suite: suite, Rep: rep, Tree: spec.Name, Phase: phaseNoop, Tool: toolTreesync, Wall: p.Wall, CPU: p.CPU, Files: p.Unchanged})
	}
}
