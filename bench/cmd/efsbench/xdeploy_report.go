package main

import (
	"fmt"
	"math"

	"github.com/efsd/efsd/bench/internal/netshape"
	"github.com/efsd/efsd/bench/internal/report"
	"github.com/efsd/efsd/bench/internal/stats"
	"github.com/efsd/efsd/bench/internal/trees"
)

const xdSuite = "5 Across deployments"

func (h *harness) xdeployReport(raw *xdRaw) *suiteResult {
	specs := append(h.replicationTrees(), h.xdBig())
	sec := report.Section{Title: "5. Across deployments: efsd A (us-east-1) → B (eu-west-1) vs rsync's daemon",
		Intro: []string{
			"Two efsd deployments on this machine, each with its own data directory and ports: A serves us-east-1, B eu-west-1; each names the " +
				"other in `peers` with its certificate's SHA-256 (from `efsd peer-id`). A file system is created at A and replicated with " +
				"`CreateReplicationConfiguration … Destinations=[{Region: eu-west-1}]`, which creates the destination at B. The anchor is " +
				"`rsync -a --delete --stats SRC/ rsync://USER@HOST:PORT/MODULE/` pushing to an `rsync --daemon` the harness starts with its own " +
				"rsyncd.conf (a module per tree, no chroot, no symlink munging, numeric ids, running as root so owners are kept, a password made for the run).",
			"Both tools cross the same in-process TCP proxy (`bench/internal/netshape`): A's peer endpoint for B, B's for A and rsync's URL " +
				"all point at proxies on one link, so the two directions' bandwidth is shared as on one path, and the bytes are counted there, " +
				"both directions, for both tools (TLS and HTTP/2 framing for efsd, the rsync protocol for rsync). **Loopback**: the proxy " +
				"forwards at once (it still copies through user space). **Shaped**: 25 ms added each way (50 ms RTT) and a token bucket of " +
				"100 Mbit/s per direction (32 KiB deep); the proxy stops reading when 256 KiB wait beyond what is in flight, so TCP holds the " +
				"sender back. The proxy terminates TCP on both sides, so slow start and loss recovery over a real 50 ms path are not modelled: " +
				"every request/response round trip and every byte pay the link, TCP's window does not.",
			"Trees: as in suite 2, plus one large file for the mid-file change (" + h.xdBig().Desc + "). Each tree lives in a directory `t` " +
				"of a staging directory on the data file system. **efsd**: a new replication of A's source file system, empty, is created and " +
				"awaited (destination at B, first pass durable: shown apart, not counted); then `t` is moved into the source with one rename and " +
				"the initial copy is timed from the rename to the end of the pass after which B's copy is identical (names, types, sizes, " +
				"modes, owners, mtimes, every byte): A logs each pass once B acknowledged it durable, and the copy is checked after each " +
				"new line (the pass credited is the newest logged when the check began). A's LastReplicatedTimestamp (whole seconds, as " +
				"EFS reports it) must then cover the rename (not timed); a mismatch of the copy or a timestamp not covering fails the suite. Then the change (1% of the " +
				"files rewritten in place with new bytes — in each repetition the same files for every tool —, or 1 MiB overwritten in place centred on the middle of the large file, across a MiB boundary) is timed " +
				"from the end of the writes likewise. Then the configuration is deleted at A (ALL_CONFIGURATIONS, both sides awaited), the " +
				"destination deleted at B, and `t` moved back. **rsync**: the staging directory is pushed to an empty module (initial), the same " +
				"kind of change is made and pushed again; each copy is checked identical. Repetitions alternate which tool goes first; `sync` " +
				"runs before each initial copy; wire bytes are the proxy's count from the step's start to its end. On loopback, a third " +
				"tool is measured for context, not held to a goal: the same rsync push with `--fsync` (the daemon fsyncs every file it " +
				"writes), a durable anchor beside plain rsync's, whose copy may still be in the page cache when it returns; efsd's " +
				"destination acknowledges a pass only once it is durable. After every plain rsync push the harness also times one syncfs of " +
				"the module's file system: rsync's time plus that is its copy made as durable as efsd's, the way efsd's receiver does it " +
				"(one syncfs at commit), shown in a second table per link with each tool's CPU time. Also on loopback, the physical limit of each step, as in suite 2: " +
				"the step's bytes (the whole tree, or the bytes the change wrote) written in 1 MiB writes to one new file on the data " +
				"file system, then fdatasync — what the disk takes to make those bytes durable, without the metadata of many files; " +
				"it varies several-fold with the writeback under way, so it is a measured reference, not a floor.",
		}}
	if raw.EfsdError != "" {
		sec.Intro = append(sec.Intro, "**The efsd half did not run to the end**: "+raw.EfsdError)
	}
	var goals []report.Goal
	for _, cond := range raw.Conditions {
		t := report.Table{Title: fmt.Sprintf("Link: %s (%s)", cond.Name, cond.Shape),
			Header: []string{"Tree", "Step", "efsd time", "rsync time", "efsd ÷ rsync", "efsd on the wire", "rsync on the wire", "efsd ÷ rsync (bytes)",
				"rsync --fsync time", "efsd ÷ rsync --fsync", "physical limit", "efsd ÷ physical limit", "Goal"}}
		for _, spec := range specs {
			steps := []string{xdStepInitial, xdChangeStep(spec)}
			for _, step := range steps {
				e, r := raw.pick(cond.Name, spec.Name, step, xdToolEfsd), raw.pick(cond.Name, spec.Name, step, xdToolRsync)
				if len(e) == 0 && len(r) == 0 {
					continue
				}
				ew, rw := summarize(e, func(s xdSample) float64 { return s.Wall }), summarize(r, func(s xdSample) float64 { return s.Wall })
				eb, rb := summarize(e, func(s xdSample) float64 { return float64(s.wire()) }), summarize(r, func(s xdSample) float64 { return float64(s.wire()) })
				tr, br := stats.Ratio(ew.Median, rw.Median), stats.Ratio(eb.Median, rb.Median)
				phys := raw.pick(cond.Name, spec.Name, step, xdToolPhysical)
				ps := summarize(phys, func(s xdSample) float64 { return s.Wall })
				durable := summarize(r, func(s xdSample) float64 { return s.Wall + s.SyncAfter })
				g := h.xdGoal(cond, spec, step, ew, rw, eb, rb, tr, br, ps.Median, durable.Median)
				st := "—"
				if g != nil {
					goals = append(goals, *g)
					st = g.Status
				}
				dw, dr := "—", "—"
				if d := raw.pick(cond.Name, spec.Name, step, xdToolRsyncSync); len(d) > 0 {
					ds := summarize(d, func(s xdSample) float64 { return s.Wall })
					dw, dr = ds.Format(stats.Seconds), stats.Times(ew.Median/ds.Median)
				}
				pw, pr := "—", "—"
				if len(phys) > 0 {
					pw, pr = ps.Format(stats.Seconds), stats.Times(ew.Median/ps.Median)
				}
				t.Rows = append(t.Rows, []string{spec.Name, step, ew.Format(stats.Seconds), rw.Format(stats.Seconds),
					stats.Times(tr), eb.Format(mbytes), rb.Format(mbytes), stats.Times(br), dw, dr, pw, pr, st})
			}
		}
		t.Notes = append(t.Notes, h.xdMeterNote(raw, cond))
		sec.Tables = append(sec.Tables, t, xdDurableTable(raw, cond, specs))
	}

	// Set-up of each efsd replication (not counted above).
	if len(raw.Setups) > 0 {
		t := report.Table{Title: "efsd: setting up a replication to B (before each initial copy; not counted in it)",
			Header: []string{"Link", "CreateReplicationConfiguration → destination at B", "→ first pass durable (empty source)", "on the wire"}}
		for _, cond := range raw.Conditions {
			var ex, fp, wb []float64
			for _, s := range raw.Setups {
				if s.Condition == cond.Name {
					ex, fp, wb = append(ex, s.DestExists), append(fp, s.FirstPass), append(wb, float64(s.WireCreated))
				}
			}
			if len(ex) > 0 {
				t.Rows = append(t.Rows, []string{cond.Name, stats.Summarize(ex).Format(stats.Seconds),
					stats.Summarize(fp).Format(stats.Seconds), stats.Summarize(wb).Format(mbytes)})
			}
		}
		sec.Tables = append(sec.Tables, t)
	}

	// Recovery point.
	w := raw.RPOWriter
	if w.Name == "" {
		w = h.xdRPOWriter()
	}
	t := report.Table{Title: "Recovery point across deployments: " + w.Name + " on tree (a), A's source → B's destination",
		Header: []string{"Link", "achieved rate /s", "p50", "p99", "max", "not visible within limit", "LRT lag at A p50", "Goal"}}
	t.Notes = []string{"The rpo suite's writer and watcher (suite 3) with the writer on A's source directory and the inotify watcher on B's " +
		"destination directory: the delay is from the writer's close() until B's file holds the new bytes. efsd only: rsync has no " +
		"continuous mode (each run is a full pass started from outside), so it has no recovery point of its own to compare; with a run " +
		"every N seconds it would be N plus one pass."}
	for _, cond := range raw.Conditions {
		var xs []rpoSample
		for _, s := range raw.RPO {
			if s.Condition == cond.Name {
				xs = append(xs, s.rpoSample)
			}
		}
		col := func(f func(rpoSample) float64) stats.Summary {
			v := make([]float64, len(xs))
			for i, s := range xs {
				v[i] = f(s)
			}
			return stats.Summarize(v)
		}
		p50, p99 := col(func(s rpoSample) float64 { return s.P50 }), col(func(s rpoSample) float64 { return s.P99 })
		st := "shown for information"
		if cond.Name == "loopback" {
			g := report.Goal{Suite: xdSuite, Goal: "recovery point A → B at 100 changes/s, loopback: p50 < 1 s and p99 < 5 s"}
			if !p50.Valid() {
				g.Status, g.Note = report.NotMeasured, "the efsd half did not run"
			} else {
				ok := p50.Max < 1 && p99.Max < 5
				g.Measured = fmt.Sprintf("p50 %s, p99 %s (every repetition checked)", p50.Format(secInf), p99.Format(secInf))
				g.Status = report.Status(ok)
				if !ok {
					g.Note = fmt.Sprintf("worst repetition: p50 %s, p99 %s", secInf(p50.Max), secInf(p99.Max))
				}
			}
			goals = append(goals, g)
			st = g.Status
		}
		if len(xs) == 0 {
			t.Rows = append(t.Rows, []string{cond.Name, "—", "—", "—", "—", "—", "—", st})
			continue
		}
		t.Rows = append(t.Rows, []string{cond.Name,
			col(func(s rpoSample) float64 { return s.AchievedHz }).Format(stats.Num),
			p50.Format(secInf), p99.Format(secInf),
			col(func(s rpoSample) float64 { return s.Max }).Format(secInf),
			col(func(s rpoSample) float64 { return float64(s.NotVisible) }).Format(stats.Num),
			col(func(s rpoSample) float64 { return s.LagP50 }).Format(stats.Seconds), st})
	}
	sec.Tables = append(sec.Tables, t)
	return &suiteResult{section: sec, goals: goals, raw: raw}
}

// xdDurableTable sets each step's time beside what makes the copy as
// durable as efsd's (rsync, then one syncfs of its destination), and the
// CPU each tool's processes spent on it.
func xdDurableTable(raw *xdRaw, cond xdCondition, specs []*trees.Spec) report.Table {
	t := report.Table{Title: fmt.Sprintf("Durable copies and CPU, link: %s", cond.Name),
		Header: []string{"Tree", "Step", "efsd time (durable)", "rsync time", "syncfs after rsync", "rsync then syncfs",
			"efsd ÷ (rsync then syncfs)", "efsd CPU (A + B)", "rsync CPU (client + daemon)", "efsd ÷ rsync (CPU)"},
		Notes: []string{"efsd acknowledges a pass only once B made it durable (one syncfs at commit); rsync returns with its copy " +
			"possibly still in the page cache. \"rsync then syncfs\" adds what one syncfs of the module's file system took right " +
			"after rsync returned: the same guarantee as efsd's, reached the same way. CPU is user + system time of the tools' " +
			"own processes over the step (from /proc: efsd's two deployments; rsync's client and the daemon's process that served " +
			"it, once reaped); the proxy's and the kernel's writeback threads' are in neither."}}
	for _, spec := range specs {
		for _, step := range []string{xdStepInitial, xdChangeStep(spec)} {
			e, r := raw.pick(cond.Name, spec.Name, step, xdToolEfsd), raw.pick(cond.Name, spec.Name, step, xdToolRsync)
			if len(e) == 0 && len(r) == 0 {
				continue
			}
			ew := summarize(e, func(s xdSample) float64 { return s.Wall })
			rw := summarize(r, func(s xdSample) float64 { return s.Wall })
			sa := summarize(r, func(s xdSample) float64 { return s.SyncAfter })
			rd := summarize(r, func(s xdSample) float64 { return s.Wall + s.SyncAfter })
			ec := summarize(e, func(s xdSample) float64 { return s.CPU })
			rc := summarize(r, func(s xdSample) float64 { return s.CPU })
			t.Rows = append(t.Rows, []string{spec.Name, step, ew.Format(stats.Seconds), rw.Format(stats.Seconds),
				sa.Format(stats.Seconds), rd.Format(stats.Seconds), stats.Times(stats.Ratio(ew.Median, rd.Median)),
				ec.Format(cpuSeconds), rc.Format(cpuSeconds), stats.Times(stats.Ratio(ec.Median, rc.Median))})
		}
	}
	return t
}

func cpuSeconds(v float64) string {
	if math.IsNaN(v) {
		return "n/a"
	}
	return stats.Num(v) + " CPU-s"
}

func summarize(xs []xdSample, f func(xdSample) float64) stats.Summary {
	v := make([]float64, len(xs))
	for i, s := range xs {
		v[i] = f(s)
	}
	return stats.Summarize(v)
}

func mbytes(b float64) string {
	if math.IsNaN(b) {
		return "n/a"
	}
	return stats.Num(b/1e6) + " MB"
}

// xdGoal is the goal a row is held to, if any: initial copy no slower than
// rsync's daemon; the 1% change ≤ 0.5× rsync's time; the mid-file change ≤
// 1.2× rsync's bytes on the wire.
func (h *harness) xdGoal(cond xdCondition, spec *trees.Spec, step string, ew, rw, eb, rb stats.Summary, tr, br, phys, durable float64) *report.Goal {
	where := fmt.Sprintf("(%s), %s", spec.Name, cond.Name)
	var g report.Goal
	switch {
	case step == xdStepInitial && spec.Name != "big":
		g = report.Goal{Suite: xdSuite, Goal: "initial copy " + where + ": no slower than rsync's daemon",
			Measured: fmt.Sprintf("%s× rsync (efsd %s, rsync %s)", stats.Num(tr), stats.Seconds(ew.Median), stats.Seconds(rw.Median))}
		if durable > rw.Median && cond.Shape == (netshape.Shape{}) {
			g.Measured += fmt.Sprintf("; rsync then syncfs (as durable as efsd's) %s, efsd %s× it", stats.Seconds(durable), stats.Num(ew.Median/durable))
		}
		if phys > 0 {
			g.Measured += fmt.Sprintf("; physical limit %s, efsd %s× it", stats.Seconds(phys), stats.Num(ew.Median/phys))
		}
		g.Status, g.Note = report.Status(tr <= 1), missBy(tr, 1.0000001, false)
	case step == xdStepIncr:
		g = report.Goal{Suite: xdSuite, Goal: "1% of files changed " + where + ": ≤ 0.5× rsync's time",
			Measured: fmt.Sprintf("%s× rsync (efsd %s, rsync %s)", stats.Num(tr), stats.Seconds(ew.Median), stats.Seconds(rw.Median))}
		g.Status, g.Note = report.Status(tr <= 0.5), missBy(tr, 0.5000001, false)
	case step == xdStepMid:
		g = report.Goal{Suite: xdSuite, Goal: "1 MiB changed mid-file " + where + ": bytes on the wire ≤ 1.2× rsync's",
			Measured: fmt.Sprintf("%s× rsync (efsd %s, rsync %s)", stats.Num(br), mbytes(eb.Median), mbytes(rb.Median))}
		g.Status, g.Note = report.Status(br <= 1.2), missBy(br, 1.2000001, false)
	default:
		return nil
	}
	if !ew.Valid() || !rw.Valid() {
		g.Status, g.Note = report.NotMeasured, "efsd or rsync has no sample"
		g.Measured = fmt.Sprintf("efsd %s on the wire in %s; rsync %s in %s", mbytes(eb.Median), stats.Seconds(ew.Median),
			mbytes(rb.Median), stats.Seconds(rw.Median))
	}
	return &g
}

// xdMeterNote compares the proxy's count with rsync's own (--stats: bytes
// sent + received, the protocol's payload), as a check of the meter.
func (h *harness) xdMeterNote(raw *xdRaw, cond xdCondition) string {
	var rs, ds []float64
	for _, s := range raw.Samples {
		if s.Condition == cond.Name && s.Tool == xdToolRsync && s.OwnCount > 0 {
			rs = append(rs, float64(s.wire())/float64(s.OwnCount))
			ds = append(ds, float64(s.wire()-s.OwnCount))
		}
	}
	if len(rs) == 0 {
		return "Meter check: no rsync sample."
	}
	r := stats.Summarize(rs)
	return fmt.Sprintf("Meter check: over %d rsync runs the proxy counted %s bytes more than rsync's own total (--stats: bytes sent + "+
		"received), i.e. %.4f× (%.4f–%.4f); the proxy also sees the daemon's greeting, module negotiation and exit status, which rsync does not count.",
		len(rs), stats.Summarize(ds).Format(stats.Num), r.Median, r.Min, r.Max)
}
