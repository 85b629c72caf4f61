// Command efsbench benchmarks efsd against its peers, side by side, in one
// run: the API against moto (and a trivial Go server, the load
// generator's ceiling), replication throughput against rsync and cp,
// the recovery point under a steady writer, scale to a million files, and
// (asked for by name) replication between two deployments against rsync's
// daemon over a shaped link.
// It builds efsd, creates a dedicated ext4 file system for the data suites,
// runs every suite with alternating repetitions, and writes BENCHMARKS.md
// and raw JSON under bench/results/.
//
//	sudo go run ./bench/cmd/efsbench [--quick] [--suite api,replication,rpo,scale,nfs,xdeploy]
//
// See bench/README.md.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/efsd/efsd/bench/internal/fsmount"
	"github.com/efsd/efsd/bench/internal/procs"
	"github.com/efsd/efsd/bench/internal/report"
)

// allSuites are the suites there are, in the order they run;
// defaultSuites those a run without --suite runs. xdeploy (two efsd
// deployments replicating to each other, against rsync's daemon) is asked
// for by name: it needs issue #10's peers and takes about an hour.
var (
	allSuites     = []string{"api", "replication", "rpo", "scale", "nfs", "xdeploy"}
	defaultSuites = []string{"api", "replication", "rpo", "scale", "nfs"}
)

// harness is the state shared by the suites.
type harness struct {
	ctx   context.Context
	quick bool
	reps  int
	repo  string // module root
	work  string // scratch directory (logs, binaries)
	mnt   *fsmount.Mount
	bin   struct{ efsd, fixed, syncpass, moto, motoPython string }

	source     string   // "worktree", or the git revision efsd is built from ("head": HEAD)
	apiServers []string // servers the API suite drives

	// xdLinks and xdTrees, when set, restrict the xdeploy suite to those
	// link conditions and trees (to iterate on one measurement); such a
	// run's report is written aside, never into BENCHMARKS.md.
	xdLinks, xdTrees []string
	// xdProfile, when set, profiles A and B (CPU) for that long from the
	// start of each efsd initial copy, into the logs directory.
	xdProfile time.Duration
	// fuseNFS is the fuse-nfs binary the nfs suite mounts both servers
	// with for its untar ("" leaves the untar out).
	fuseNFS string
	// nfsVersions are the NFS versions the nfs suite measures (of
	// nfsAllVersions); a run of some only is written aside, never into
	// BENCHMARKS.md, since its section would lose the others' rows.
	nfsVersions []string
	// nfsProfile, when set, CPU-profiles efsd for that long from the start
	// of each of its NFSv4.1 workloads in the first repetition.
	nfsProfile time.Duration

	// quickConfig, in --quick mode only, is an efsd config file setting a
	// 1 s replication rescan interval, so that the data suites' no-op
	// passes come sooner.
	quickConfig string

	mu       sync.Mutex
	commands []string
	round    int // mutation rounds handed out

	raw map[string]any // per-suite raw results for the JSON file
}

type suiteResult struct {
	section report.Section
	goals   []report.Goal
	raw     any
}

func main() {
	os.Exit(run())
}

func run() int {
	var (
		quick    = flag.Bool("quick", false, "smoke run: small trees and counts, 2 repetitions (~2–3 minutes)")
		suites   = flag.String("suite", strings.Join(defaultSuites, ","), "comma-separated suites to run, of "+strings.Join(allSuites, ","))
		reps     = flag.Int("reps", 0, "repetitions per suite (default 3, or 2 with --quick)")
		out      = flag.String("out", "", "Markdown report (default BENCHMARKS.md at the repo root; bench/results/BENCHMARKS-quick.md with --quick)")
		workDir  = flag.String("work", "", "scratch directory for the image, logs and binaries (default $TMPDIR/efsbench-PID)")
		imageGiB = flag.Int("image-gib", 0, "size of the dedicated file system's sparse image (default 60, 8 with --quick)")
		noMount  = flag.Bool("no-mount", false, "do not create a dedicated file system; use a directory under --work")
		timeout  = flag.Duration("timeout", 0, "hard limit for the whole run (default 90m, 15m with --quick)")
		keep     = flag.Bool("keep", false, "keep the scratch directory (logs) after the run")
		servers  = flag.String("api-servers", strings.Join(apiServers, ","), "servers the API suite drives (a subset of efsd,moto,trivial, e.g. to profile one)")
		xdLinks  = flag.String("xd-links", "", "xdeploy only over these links (of loopback,shaped); the report goes to bench/results/")
		xdTrees  = flag.String("xd-trees", "", "xdeploy only for these trees (of a,b,c,big); the report goes to bench/results/")
		fuseNFS  = flag.String("fuse-nfs", "", "nfs suite: the fuse-nfs binary to untar through (default: fuse-nfs on PATH; built as ../shared/tools/README.md says)")
		nfsProf  = flag.Duration("nfs-profile", 0, "nfs: CPU-profile efsd for this long from the start of each of its NFSv4.1 workloads in the first repetition (files in --work's logs/; the report goes to bench/results/)")
		nfsVers  = flag.String("nfs-versions", strings.Join(nfsAllVersions, ","), "nfs suite: the NFS versions to measure, of "+strings.Join(nfsAllVersions, ",")+"; fewer than all: the report goes to bench/results/")
		xdProf   = flag.Duration("xd-profile", 0, "xdeploy: CPU-profile both efsd deployments for this long from the start of each initial copy and of each change (files in --work's logs/)")
		source   = flag.String("efsd-source", "head", "build efsd from the committed HEAD (head), another git revision (e.g. main), or the working tree (worktree)")
	)
	flag.Parse()
	h := &harness{quick: *quick, reps: *reps, raw: map[string]any{}, source: *source}
	if h.source != "head" && h.source != "worktree" {
		if err := exec.Command("git", "rev-parse", "--verify", "--quiet", h.source+"^{commit}").Run(); err != nil {
			fmt.Fprintf(os.Stderr, "efsbench: --efsd-source must be head, worktree or a git revision; %q is none\n", h.source)
			return 2
		}
	}
	if h.reps <= 0 {
		h.reps = 3
		if h.quick {
			h.reps = 2
		}
	}
	h.xdProfile = *xdProf
	h.fuseNFS = *fuseNFS
	if h.fuseNFS == "" {
		h.fuseNFS, _ = exec.LookPath("fuse-nfs")
	}
	h.nfsVersions = strings.Split(*nfsVers, ",")
	h.nfsProfile = *nfsProf
	for _, v := range h.nfsVersions {
		if !slices.Contains(nfsAllVersions, v) {
			fmt.Fprintf(os.Stderr, "efsbench: unknown NFS version %q (have %s)\n", v, strings.Join(nfsAllVersions, ","))
			return 2
		}
	}
	if *xdLinks != "" {
		h.xdLinks = strings.Split(*xdLinks, ",")
	}
	if *xdTrees != "" {
		h.xdTrees = strings.Split(*xdTrees, ",")
	}
	for _, l := range h.xdLinks {
		if l != "loopback" && l != "shaped" {
			fmt.Fprintf(os.Stderr, "efsbench: unknown link %q (have loopback,shaped)\n", l)
			return 2
		}
	}
	h.apiServers = strings.Split(*servers, ",")
	for _, s := range h.apiServers {
		if !slices.Contains(apiServers, s) {
			fmt.Fprintf(os.Stderr, "efsbench: unknown API server %q\n", s)
			return 2
		}
	}
	want := strings.Split(*suites, ",")
	for _, s := range want {
		if !slices.Contains(allSuites, s) {
			fmt.Fprintf(os.Stderr, "efsbench: unknown suite %q (have %s)\n", s, strings.Join(allSuites, ","))
			return 2
		}
	}
	if *timeout == 0 {
		*timeout = 90 * time.Minute
		if h.quick {
			*timeout = 15 * time.Minute
		}
	}
	if *imageGiB == 0 {
		*imageGiB = 60
		if h.quick {
			*imageGiB = 8
		}
	}

	ctx, cancel := context.WithTimeout(context.Background(), *timeout)
	defer cancel()
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, os.Interrupt, syscall.SIGTERM)
	go func() {
		s := <-sig
		h.logf("received %v: stopping", s)
		cancel()
	}()
	h.ctx = ctx
	// Whatever happens, every process started is stopped by PID.
	defer procs.StopAll()

	var err error
	if h.repo, err = procs.ModuleRoot("efsbench"); err != nil {
		fmt.Fprintln(os.Stderr, "efsbench:", err)
		return 1
	}
	h.work = *workDir
	if h.work == "" {
		h.work = filepath.Join(os.TempDir(), fmt.Sprintf("efsbench-%d", os.Getpid()))
	}
	for _, d := range []string{"bin", "logs"} {
		if err := os.MkdirAll(filepath.Join(h.work, d), 0o755); err != nil {
			fmt.Fprintln(os.Stderr, "efsbench:", err)
			return 1
		}
	}
	if !*keep {
		defer os.RemoveAll(h.work)
	}
	if h.quick {
		h.quickConfig = filepath.Join(h.work, "efsd-quick.json")
		if err := os.WriteFile(h.quickConfig, []byte(`{"replicationRescanInterval": "1s"}`+"\n"), 0o644); err != nil {
			fmt.Fprintln(os.Stderr, "efsbench:", err)
			return 1
		}
	}
	started := time.Now()
	h.logf("efsbench: quick=%v reps=%d suites=%s work=%s", h.quick, h.reps, *suites, h.work)
	if err := h.build(); err != nil {
		fmt.Fprintln(os.Stderr, "efsbench:", err)
		return 1
	}

	// Every suite keeps efsd's data on the dedicated file system.
	{
		mntDir := filepath.Join(h.work, "mnt")
		if *noMount {
			h.mnt, err = fsmount.Fallback(mntDir, "--no-mount was given")
		} else {
			h.logf("creating a %d GiB ext4 file system with a journal on a loop device", *imageGiB)
			h.mnt, err = fsmount.Create(filepath.Join(h.work, "fs.img"), mntDir, *imageGiB, h.inodes())
			if err != nil {
				h.logf("dedicated file system not possible (%v); falling back to a directory", err)
				h.mnt, err = fsmount.Fallback(mntDir, err.Error())
			}
		}
		if err != nil {
			fmt.Fprintln(os.Stderr, "efsbench:", err)
			return 1
		}
		defer func() {
			procs.StopAll() // nothing may hold the mount
			if err := h.mnt.Close(); err != nil {
				h.logf("cleanup: %v", err)
			}
		}()
	}

	doc := h.newDoc(started, *timeout)
	failed := false
	for _, name := range allSuites {
		if !slices.Contains(want, name) {
			continue
		}
		if ctx.Err() != nil {
			doc.Notes = append(doc.Notes, fmt.Sprintf("Suite %s was not run: the run's time limit (%v) passed or it was interrupted.", name, *timeout))
			failed = true
			continue
		}
		h.logf("=== suite %s", name)
		t0, m0, own0 := time.Now(), procs.ReadMachine(), selfCPU()+childrenCPU()
		res, err := h.runSuite(name)
		procs.StopAll()
		wall, dm, own := time.Since(t0).Seconds(), procs.ReadMachine().Sub(m0), selfCPU()+childrenCPU()-own0
		other := max(0, dm.Busy-own)
		if err != nil {
			failed = true
			h.logf("suite %s failed: %v", name, err)
			doc.Notes = append(doc.Notes, fmt.Sprintf("Suite %s failed: %v (partial results, if any, are shown).", name, err))
		}
		if res != nil {
			res.section.Notes = append(res.section.Notes, fmt.Sprintf("Suite wall time: %s. Meanwhile the harness and everything it started used %.0f CPU-seconds; "+
				"anything else on the machine (other users, and kernel threads such as writeback and the journal, partly for this suite's own I/O) used %.0f CPU-seconds, "+
				"%.0f%% of the machine's %d CPUs; the hypervisor stole %.1f s.",
				time.Since(t0).Round(time.Second), own, other, 100*other/(wall*float64(runtime.NumCPU())), runtime.NumCPU(), dm.Steal))
			res.section.Suite = name
			for i := range res.goals {
				res.goals[i].Section = len(doc.Sections)
			}
			doc.Sections = append(doc.Sections, res.section)
			doc.Goals = append(doc.Goals, res.goals...)
			h.raw[name] = res.raw
		}
		h.logf("=== suite %s done in %s", name, time.Since(t0).Round(time.Second))
	}
	doc.Commands = h.commandList()
	doc.Facts = append(doc.Facts, [2]string{"Total wall time", time.Since(started).Round(time.Second).String()})

	// A run of some suites only, to the default BENCHMARKS.md, replaces
	// just those suites' sections there.
	partial := !slices.Equal(sortedCopy(want), sortedCopy(defaultSuites))
	if err := h.write(doc, *out, partial, *suites); err != nil {
		fmt.Fprintln(os.Stderr, "efsbench:", err)
		return 1
	}
	if failed {
		return 1
	}
	return 0
}

func (h *harness) runSuite(name string) (*suiteResult, error) {
	switch name {
	case "api":
		return h.apiSuite()
	case "replication":
		return h.replicationSuite()
	case "rpo":
		return h.rpoSuite()
	case "scale":
		return h.scaleSuite()
	case "nfs":
		return h.nfsSuiteRun()
	case "xdeploy":
		return h.xdeploySuite()
	}
	return nil, fmt.Errorf("unknown suite %s", name)
}

// inodes sizes the dedicated file system's inode table for the largest
// scale tree: three copies (source, efsd's destination, rsync's) plus
// slack.
func (h *harness) inodes() int {
	n := slices.Max(h.scaleSizes())
	return max(3*n+n/2+500_000, 1_000_000)
}

func sortedCopy(xs []string) []string {
	c := slices.Clone(xs)
	slices.Sort(c)
	return slices.Compact(c)
}

// write writes the raw JSON and the Markdown report. The default
// BENCHMARKS.md of a full run is the whole document, keeping any block of a
// suite the run did not include (e.g. xdeploy, run on its own); for a run
// of some suites only, each suite's section is spliced into the existing
// BENCHMARKS.md in place of its previous one (or appended), with the run's
// facts and its goals, and the rest of the file is left alone.
func (h *harness) write(doc *report.Doc, out string, partial bool, suites string) error {
	resDir := filepath.Join(h.repo, "bench", "results")
	if err := os.MkdirAll(resDir, 0o755); err != nil {
		return err
	}
	stamp := time.Now().UTC().Format("20060102T150405Z")
	kind := "full"
	if h.quick {
		kind = "quick"
	}
	raw := map[string]any{"doc": doc, "suites": h.raw}
	b, err := report.JSON(raw)
	if err != nil {
		return err
	}
	jsonPath := filepath.Join(resDir, fmt.Sprintf("efsbench-%s-%s.json", kind, stamp))
	if err := os.WriteFile(jsonPath, b, 0o644); err != nil {
		return err
	}
	splice := false
	if out == "" {
		out = filepath.Join(h.repo, "BENCHMARKS.md")
		if h.quick {
			out = filepath.Join(resDir, "BENCHMARKS-quick.md")
		} else if h.xdLinks != nil || h.xdTrees != nil || h.nfsSubset(suites) {
			out = filepath.Join(resDir, "BENCHMARKS-subset.md")
		} else {
			splice = true
		}
	}
	rawNote := fmt.Sprintf("Raw results of this run: `%s` (bench/results/ is git-ignored).", relTo(h.repo, jsonPath))
	doc.Preamble = append(doc.Preamble, rawNote)
	text := doc.Markdown()
	if splice {
		old, err := os.ReadFile(out)
		if err != nil && !os.IsNotExist(err) {
			return err
		}
		switch {
		case partial && len(old) > 0:
			text = string(old)
			cmd := "sudo go run ./bench/cmd/efsbench --suite " + suites
			for i, sec := range doc.Sections {
				text = report.Splice(text, sec.Suite, doc.Block(i, fmt.Sprintf("Run on its own (`%s`, %s), not part of the "+
					"summary of goals at the top. %s", cmd, time.Now().UTC().Format("2006-01-02 15:04 MST"), rawNote)))
			}
		case !partial:
			// Keep the blocks of suites this run did not include.
			have := map[string]bool{}
			for _, sec := range doc.Sections {
				have[sec.Suite] = true
			}
			blocks := report.Blocks(string(old))
			for _, name := range allSuites {
				if block, ok := blocks[name]; ok && !have[name] {
					text = report.Splice(text, name, block)
				}
			}
		}
	}
	if err := os.WriteFile(out, []byte(text), 0o644); err != nil {
		return err
	}
	h.logf("wrote %s and %s", out, jsonPath)
	return nil
}

// nfsSubset reports whether the run measures the nfs suite for some NFS
// versions only, or profiles it (which slows what it measures).
func (h *harness) nfsSubset(suites string) bool {
	return slices.Contains(strings.Split(suites, ","), "nfs") &&
		(h.nfsProfile > 0 || !slices.Equal(sortedCopy(h.nfsVersions), sortedCopy(nfsAllVersions)))
}

// nextRound hands out mutation rounds, so that no two mutations of a run
// pick the same files with the same contents.
func (h *harness) nextRound() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.round++
	return h.round
}

// record remembers a command line for the report (once).
func (h *harness) record(cmd string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if !slices.Contains(h.commands, cmd) {
		h.commands = append(h.commands, cmd)
	}
}

func (h *harness) commandList() []string {
	h.mu.Lock()
	defer h.mu.Unlock()
	return slices.Clone(h.commands)
}

func (h *harness) logf(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "%s %s\n", time.Now().Format("15:04:05.000"), fmt.Sprintf(format, args...))
}

// check returns the context's error, so loops end at the run's deadline.
func (h *harness) check() error {
	if err := h.ctx.Err(); err != nil {
		return fmt.Errorf("stopped: %w", err)
	}
	return nil
}

var errNotIdentical = errors.New("destination not identical to source")

func relTo(base, p string) string {
	if r, err := filepath.Rel(base, p); err == nil {
		return r
	}
	return p
}
