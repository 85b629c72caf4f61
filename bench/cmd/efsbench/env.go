package main

import (
	"bufio"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"time"

	"github.com/efsd/efsd/bench/internal/fsmount"
	"github.com/efsd/efsd/bench/internal/report"
)

// build compiles efsd, the trivial server and syncpass — by default from
// a clean export of the committed HEAD with this bench/ directory laid
// over it (so that work in progress elsewhere in the tree is neither
// measured nor able to break the build), or from the working tree — and
// locates moto.
func (h *harness) build() error {
	h.bin.efsd = filepath.Join(h.work, "bin", "efsd")
	h.bin.fixed = filepath.Join(h.work, "bin", "fixedserver")
	h.bin.syncpass = filepath.Join(h.work, "bin", "syncpass")
	dir := h.repo
	if h.source != "worktree" {
		rev := h.gitRev()
		dir = filepath.Join(h.work, "src")
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return err
		}
		script := fmt.Sprintf("git -C %q archive %q | tar -x -C %q && rm -rf %q && cp -a %q %q",
			h.repo, rev, dir, filepath.Join(dir, "bench"), filepath.Join(h.repo, "bench"), filepath.Join(dir, "bench"))
		if out, err := exec.CommandContext(h.ctx, "sh", "-c", script).CombinedOutput(); err != nil {
			return fmt.Errorf("export %s: %v\n%s", rev, err, out)
		}
		h.record(fmt.Sprintf("git archive %s | tar -x -C %s   # plus the working tree's bench/", rev, dir))
	}
	for _, b := range []struct{ out, pkg string }{
		{h.bin.efsd, "./cmd/efsd"}, {h.bin.fixed, "./bench/cmd/fixedserver"}, {h.bin.syncpass, "./bench/cmd/syncpass"},
	} {
		h.logf("go build -o %s %s (in %s)", b.out, b.pkg, dir)
		cmd := exec.CommandContext(h.ctx, "go", "build", "-o", b.out, b.pkg)
		cmd.Dir = dir
		if out, err := cmd.CombinedOutput(); err != nil {
			return fmt.Errorf("go build %s in %s: %v\n%s", b.pkg, dir, err, out)
		}
		h.record(fmt.Sprintf("cd %s && go build -o %s %s", dir, b.out, b.pkg))
	}
	// moto_server is usually a pyenv shim (a bash script that execs
	// pyenv, which execs the real script); start the real script so that
	// the shim's own start-up is not counted against moto.
	h.bin.moto, _ = exec.LookPath("moto_server")
	if out, err := exec.Command("pyenv", "which", "moto_server").Output(); err == nil {
		h.bin.moto = strings.TrimSpace(string(out))
	}
	if h.bin.moto != "" {
		if f, err := os.Open(h.bin.moto); err == nil {
			line, _ := bufio.NewReader(f).ReadString('\n')
			f.Close()
			if py, ok := strings.CutPrefix(strings.TrimSpace(line), "#!"); ok {
				h.bin.motoPython = strings.Fields(py)[0]
			}
		}
	}
	return nil
}

func firstLine(name string, args ...string) string {
	out, err := exec.Command(name, args...).CombinedOutput()
	if err != nil {
		return "unavailable"
	}
	l, _, _ := strings.Cut(strings.TrimSpace(string(out)), "\n")
	return strings.TrimSpace(l)
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

// gitRev is the revision efsd is built from (not for worktree).
func (h *harness) gitRev() string {
	if h.source == "head" {
		return "HEAD"
	}
	return h.source
}

func (h *harness) efsdCommit() string {
	if h.source != "worktree" {
		c := firstLine("git", "-C", h.repo, "log", "-1", "--format=%H %s", h.gitRev())
		note := " (built from a clean export of this commit"
		if h.source != "head" {
			note += ", --efsd-source " + h.source
		}
		return c + note + ", with this working tree's bench/; uncommitted work elsewhere in the tree is not measured)"
	}
	c := firstLine("git", "-C", h.repo, "log", "-1", "--format=%H %s")
	if out, err := exec.Command("git", "-C", h.repo, "status", "--porcelain", "--untracked-files=no").Output(); err == nil && len(strings.TrimSpace(string(out))) > 0 {
		c += " plus uncommitted changes in the working tree (built with --efsd-source worktree)"
	}
	return c
}

func (h *harness) motoVersion() string {
	if h.bin.motoPython == "" {
		return "moto_server not found"
	}
	return "moto " + firstLine(h.bin.motoPython, "-c", "import moto; print(moto.__version__)") +
		" (" + firstLine(h.bin.motoPython, "--version") + ", werkzeug development server)"
}

func (h *harness) newDoc(started time.Time, timeout time.Duration) *report.Doc {
	kernel, _ := os.ReadFile("/proc/sys/kernel/osrelease")
	mode := "full"
	cmdline := "sudo go run ./bench/cmd/efsbench"
	if h.quick {
		mode = "quick (smoke run: reduced sizes and counts, and efsd in the data suites with replicationRescanInterval 1s; not for comparison)"
		cmdline += " --quick"
	}
	d := &report.Doc{
		Title: "efsd benchmarks",
		Preamble: []string{
			"Produced by one command, run as root from the repository root (it builds efsd, creates a dedicated " +
				"file system on a loop device, runs every suite against efsd and its anchor in the same run, " +
				"alternating, and stops every process it started by PID):",
			"```sh\n" + cmdline + "        # or: bench/run.sh" + map[bool]string{true: " --quick", false: ""}[h.quick] + "\n```",
			"See [bench/README.md](bench/README.md) for what each suite measures and how. Every figure is the median " +
				"over the repetitions with the minimum–maximum in parentheses, unless the table says otherwise. " +
				"Ratios are of medians. Nothing but loopback (127.0.0.1) carries traffic.",
		},
		Facts: [][2]string{
			{"Date", started.UTC().Format("2006-01-02 15:04 MST")},
			{"Mode", fmt.Sprintf("%s, %d repetitions per measurement, time limit %v", mode, h.reps, timeout)},
			{"CPU", fmt.Sprintf("%s, %d logical CPUs (nproc)", readFileLine("/proc/cpuinfo", "model name"), runtime.NumCPU())},
			{"Memory", memTotal()},
			{"Kernel", "Linux " + strings.TrimSpace(string(kernel))},
			{"Root file system", fsmount.RootFS("/")},
			{"Data file system", "see the data suites (created at run time)"},
			{"Go", firstLine("go", "version")},
			{"efsd", h.efsdCommit()},
			{"moto", h.motoVersion()},
			{"rsync", firstLine("rsync", "--version")},
			{"cp", firstLine("cp", "--version")},
			{"aws-sdk-go-v2 (load generator)", sdkVersion(h.repo)},
		},
	}
	if h.mnt != nil {
		d.Facts[6][1] = h.mnt.Desc
	}
	return d
}

func sdkVersion(repo string) string {
	cmd := exec.Command("go", "list", "-m", "-f", "{{.Path}} {{.Version}}",
		"github.com/aws/aws-sdk-go-v2", "github.com/aws/aws-sdk-go-v2/service/efs")
	cmd.Dir = repo
	out, err := cmd.Output()
	if err != nil {
		return "unknown"
	}
	return strings.Join(strings.Fields(strings.ReplaceAll(string(out), "\n", ", ")), " ")
}

func memTotal() string {
	v := readFileLine("/proc/meminfo", "MemTotal")
	var kb int64
	if _, err := fmt.Sscanf(v, "%d kB", &kb); err != nil {
		return v
	}
	return fmt.Sprintf("%.1f GiB (MemTotal %s)", float64(kb)/(1<<20), v)
}
