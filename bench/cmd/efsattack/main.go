// Command efsattack reruns, at full scale and from outside, the attacks of
// issue #8 against the real efsd binary, and prints which defences held.
// Each attack starts its own efsd (built from the working tree) on
// loopback, attacks it through its API and NFS ports the way the finding
// was made, checks that a normal client is still served, and stops it.
//
//	sudo go run ./bench/cmd/efsattack [--quick] [--only nfs-bomb,stalled-uploads,...]
//	sudo scripts/attack [flags]
//
// It exits non-zero if any attack was not held. See ATTACKS.md.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/efsd/efsd/bench/internal/procs"
)

// attack is one attack of the suite.
type attack struct {
	name string
	run  func(h *harness) result
}

var attacks = []attack{
	{"nfs-bomb", (*harness).nfsBomb},
	{"stalled-uploads", (*harness).stalledUploads},
	{"fd-exhaustion", (*harness).fdExhaustion},
	{"inotify", (*harness).inotifyExhaustion},
	{"cross-account", (*harness).crossAccount},
	{"ap-escape", (*harness).accessPointEscape},
	{"loopback-scan", (*harness).loopbackScan},
	{"path-fuzz", (*harness).pathFuzz},
}

// result is one row of the table.
type result struct {
	name    string
	scale   string
	held    bool
	figures []string // "peak RSS 41 MB", ...
	why     []string // what failed, when not held
	elapsed time.Duration
}

func (r *result) fail(format string, args ...any) {
	r.held = false
	r.why = append(r.why, fmt.Sprintf(format, args...))
}

func (r *result) fig(format string, args ...any) {
	r.figures = append(r.figures, fmt.Sprintf(format, args...))
}

// harness is what every attack shares.
type harness struct {
	ctx        context.Context
	quick      bool
	repo       string
	work       string
	efsd       string // binary
	rev        string // git revision efsd is built from; "" for the working tree
	rssCeiling int64  // bytes
}

func main() {
	if len(os.Args) == 2 && os.Args[1] == probeInotifyArg {
		os.Exit(probeInotify())
	}
	if len(os.Args) == 4 && os.Args[1] == holdArg {
		os.Exit(holdMain(os.Args[2], os.Args[3]))
	}
	os.Exit(run())
}

func run() int {
	names := make([]string, len(attacks))
	for i, a := range attacks {
		names[i] = a.name
	}
	var (
		quick   = flag.Bool("quick", false, "scaled-down smoke run (a few minutes)")
		only    = flag.String("only", "", "comma-separated attacks to run (default all): "+strings.Join(names, ","))
		workDir = flag.String("work", "", "scratch directory (default $TMPDIR/efsattack-PID)")
		keep    = flag.Bool("keep", false, "keep the scratch directory (efsd logs) afterwards")
		ceiling = flag.Int("rss-ceiling-mb", 300, "efsd's resident memory may not exceed this during an attack (MB, 10^6 bytes)")
		timeout = flag.Duration("timeout", 0, "hard limit for the whole run (default 40m, 10m with --quick)")
		rev     = flag.String("efsd-rev", "", "build efsd from a clean export of this git revision (e.g. main) instead of the working tree")
	)
	flag.Parse()
	want := names
	if *only != "" {
		want = strings.Split(*only, ",")
		for _, n := range want {
			if !slices.Contains(names, n) {
				fmt.Fprintf(os.Stderr, "efsattack: unknown attack %q (have %s)\n", n, strings.Join(names, ","))
				return 2
			}
		}
	}
	if os.Geteuid() != 0 {
		fmt.Fprintln(os.Stderr, "efsattack: run as root (sudo): efsd's NFS data plane needs root, and the attacks raise descriptor limits")
		return 2
	}
	if *timeout == 0 {
		*timeout = 40 * time.Minute
		if *quick {
			*timeout = 10 * time.Minute
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), *timeout)
	defer cancel()
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, os.Interrupt, syscall.SIGTERM)
	go func() {
		s := <-sig
		logf("received %v: stopping", s)
		cancel()
	}()
	// Whatever happens, every efsd started is stopped by its PID.
	defer procs.StopAll()

	h := &harness{ctx: ctx, quick: *quick, rssCeiling: int64(*ceiling) * 1e6, rev: *rev}
	var err error
	if h.repo, err = procs.ModuleRoot("efsattack"); err != nil {
		fmt.Fprintln(os.Stderr, "efsattack:", err)
		return 1
	}
	h.work = *workDir
	if h.work == "" {
		h.work = filepath.Join(os.TempDir(), fmt.Sprintf("efsattack-%d", os.Getpid()))
	}
	if err := os.MkdirAll(filepath.Join(h.work, "bin"), 0o755); err != nil {
		fmt.Fprintln(os.Stderr, "efsattack:", err)
		return 1
	}
	// The inotify attack runs efsd and a probe as an unprivileged user,
	// which must reach both binaries.
	os.Chmod(h.work, 0o755)
	if !*keep {
		defer os.RemoveAll(h.work)
	}
	// The attacker holds thousands of connections (tens of thousands
	// through its holder processes, each with this limit).
	if err := raiseNofile(); err != nil {
		fmt.Fprintln(os.Stderr, "efsattack:", err)
		return 1
	}
	if err := h.build(); err != nil {
		fmt.Fprintln(os.Stderr, "efsattack:", err)
		return 1
	}

	started := time.Now()
	var results []result
	for _, a := range attacks {
		if !slices.Contains(want, a.name) {
			continue
		}
		if ctx.Err() != nil {
			results = append(results, result{name: a.name, why: []string{"not run: the time limit passed or the run was interrupted"}})
			continue
		}
		logf("=== attack %s", a.name)
		t0 := time.Now()
		r := a.run(h)
		procs.StopAll()
		r.name, r.elapsed = a.name, time.Since(t0)
		if ctx.Err() != nil && r.held {
			r.fail("interrupted: %v", ctx.Err())
		}
		status := "held"
		if !r.held {
			status = "FAILED: " + strings.Join(r.why, "; ")
		}
		logf("=== attack %s: %s (%s)", a.name, status, r.elapsed.Round(time.Second))
		results = append(results, r)
	}
	fmt.Print(h.report(results, started))
	for _, r := range results {
		if !r.held {
			return 1
		}
	}
	return 0
}

// report renders the facts of the run and the table.
func (h *harness) report(results []result, started time.Time) string {
	var b strings.Builder
	mode := "full scale"
	if h.quick {
		mode = "quick (scaled down; not the issue's scale)"
	}
	kernel, _ := os.ReadFile("/proc/sys/kernel/osrelease")
	fmt.Fprintf(&b, "\nefsattack, %s, %s; total %s\n", mode, started.UTC().Format("2006-01-02 15:04 MST"), time.Since(started).Round(time.Second))
	fmt.Fprintf(&b, "machine: %s, %d CPUs, %s, Linux %s\n", cpuModel(), runtime.NumCPU(), memTotal(), strings.TrimSpace(string(kernel)))
	fmt.Fprintf(&b, "efsd: %s\n\n", h.efsdCommit())
	b.WriteString("| Attack | Scale | Result | Figures |\n|---|---|---|---|\n")
	for _, r := range results {
		st := "held"
		if !r.held {
			st = "**FAILED**: " + strings.Join(r.why, "; ")
		}
		fmt.Fprintf(&b, "| %s | %s | %s | %s |\n", r.name, cell(r.scale), cell(st), cell(strings.Join(r.figures, "; ")))
	}
	return b.String()
}

func cell(s string) string {
	return strings.ReplaceAll(strings.ReplaceAll(s, "|", `\|`), "\n", " ")
}

func logf(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "%s %s\n", time.Now().Format("15:04:05.000"), fmt.Sprintf(format, args...))
}

// build compiles efsd from the working tree, and copies this program
// where the unprivileged inotify probe can run it.
func (h *harness) build() error {
	h.efsd = filepath.Join(h.work, "bin", "efsd")
	dir := h.repo
	if h.rev != "" {
		dir = filepath.Join(h.work, "src")
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return err
		}
		script := fmt.Sprintf("git -C %q archive %q | tar -x -C %q", h.repo, h.rev, dir)
		if out, err := exec.CommandContext(h.ctx, "sh", "-c", script).CombinedOutput(); err != nil {
			return fmt.Errorf("export %s: %v\n%s", h.rev, err, out)
		}
	}
	logf("go build -o %s ./cmd/efsd (in %s)", h.efsd, dir)
	cmd := exec.CommandContext(h.ctx, "go", "build", "-o", h.efsd, "./cmd/efsd")
	cmd.Dir = dir
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("go build ./cmd/efsd: %v\n%s", err, out)
	}
	self, err := os.Executable()
	if err != nil {
		return err
	}
	b, err := os.ReadFile(self)
	if err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(h.work, "bin", "efsattack"), b, 0o755)
}

func (h *harness) efsdCommit() string {
	rev := "HEAD"
	if h.rev != "" {
		rev = h.rev
	}
	out, err := exec.Command("git", "-C", h.repo, "log", "-1", "--format=%h %s", rev).Output()
	if err != nil {
		return "unknown commit"
	}
	c := strings.TrimSpace(string(out))
	if h.rev != "" {
		return fmt.Sprintf("built from a clean export of %s (%s)", h.rev, c)
	}
	// Uncommitted changes that can change efsd (not bench/, not documents).
	if st, err := exec.Command("git", "-C", h.repo, "status", "--porcelain", "--untracked-files=no", "--", ".", ":!bench", ":!*.md").Output(); err == nil && len(strings.TrimSpace(string(st))) > 0 {
		c += " plus uncommitted changes"
	}
	return "built from the working tree at " + c
}

// raiseNofile raises the soft descriptor limit to the hard one (raising
// the hard limit needs CAP_SYS_RESOURCE, which containers often lack).
func raiseNofile() error {
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		return err
	}
	lim.Cur = lim.Max
	if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		return fmt.Errorf("raise the attacker's RLIMIT_NOFILE to %d: %w", lim.Max, err)
	}
	return nil
}

// nofile is the attacker's descriptor limit.
func nofile() int {
	var lim syscall.Rlimit
	syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim)
	return int(lim.Cur)
}

func readFileLine(path, prefix string) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return "unknown"
	}
	for _, l := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(l, prefix) {
			_, v, _ := strings.Cut(l, ":")
			return strings.TrimSpace(v)
		}
	}
	return "unknown"
}

func cpuModel() string { return readFileLine("/proc/cpuinfo", "model name") }

func memTotal() string {
	var kb int64
	if _, err := fmt.Sscanf(readFileLine("/proc/meminfo", "MemTotal"), "%d kB", &kb); err != nil {
		return "memory unknown"
	}
	return fmt.Sprintf("%.1f GiB RAM", float64(kb)/(1<<20))
}

// check returns the run's context error, so loops end at the deadline.
func (h *harness) check() error {
	if err := h.ctx.Err(); err != nil {
		return fmt.Errorf("stopped: %w", err)
	}
	return nil
}

// pick returns full, or quick in a quick run.
func pick[T any](h *harness, full, quick T) T {
	if h.quick {
		return quick
	}
	return full
}
