package main

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/efs"
	"github.com/aws/aws-sdk-go-v2/service/efs/types"
	"golang.org/x/sys/unix"

	"github.com/efsd/efsd/bench/internal/netshape"
	"github.com/efsd/efsd/bench/internal/procs"
	"github.com/efsd/efsd/bench/internal/trees"
)

// The cross-deployment suite: efsd deployment A (us-east-1) replicating to
// deployment B (eu-west-1) against rsync pushing to its daemon, both
// through the same netshape link (the shaping and the byte meter).
const (
	regionA = "us-east-1"
	regionB = "eu-west-1"

	xdToolEfsd  = "efsd A → B"
	xdToolRsync = "rsync -a --delete → rsync --daemon"
	// xdToolRsyncSync is the durable anchor, on loopback only: the same
	// push with --fsync, so the daemon fsyncs every file it writes (efsd's
	// destination makes every pass durable before acknowledging it).
	xdToolRsyncSync = "rsync -a --delete --fsync → rsync --daemon"
	// xdToolPhysical is the disk's physical limit for a step's bytes
	// (durableWrite), on loopback only.
	xdToolPhysical = "physical limit"

	xdStepInitial = "initial copy"
	xdStepIncr    = "1% of files changed"
	xdStepMid     = "1 MiB changed mid-file"

	// xdTop is the directory the measured tree lives in, inside the
	// source file system or the staging directory: moving it into the
	// source is one rename, so a replication that already exists sees the
	// whole tree appear at once, as rsync sees a tree that exists.
	xdTop = "t"

	// xdRsyncUser is the rsync daemon's one user.
	xdRsyncUser = "efsbench"
)

// xdCondition is a shape of the link between the two sides.
type xdCondition struct {
	Name  string         `json:"name"`
	Shape netshape.Shape `json:"shape"`
}

func (h *harness) xdConditions() []xdCondition {
	var cs []xdCondition
	if h.xdLinks == nil || slices.Contains(h.xdLinks, "loopback") {
		cs = append(cs, xdCondition{"loopback", netshape.Shape{}})
	}
	if h.xdLinks == nil || slices.Contains(h.xdLinks, "shaped") {
		cs = append(cs, xdCondition{"50 ms RTT, 100 Mbit/s", netshape.Shape{Delay: 25 * time.Millisecond, Rate: 100_000_000 / 8}})
	}
	return cs
}

// xdBig is the large file of the mid-file change: 1 GiB (256 MiB with
// --quick).
func (h *harness) xdBig() *trees.Spec {
	size := int64(1 << 30)
	if h.quick {
		size = 256 << 20
	}
	s := trees.LargeFiles("big", 1, size)
	s.Desc = fmt.Sprintf("one file of %d MiB", size>>20)
	return s
}

type xdSample struct {
	Rep       int     `json:"rep"`
	Condition string  `json:"condition"`
	Tree      string  `json:"tree"`
	Step      string  `json:"step"`
	Tool      string  `json:"tool"`
	Wall      float64 `json:"wall_s"`
	WireFwd   int64   `json:"wire_bytes_a_to_b"` // counted by the proxy
	WireBack  int64   `json:"wire_bytes_b_to_a"`
	OwnCount  int64   `json:"own_count_bytes,omitempty"` // rsync --stats: sent + received
	Files     int64   `json:"files"`                     // files changed or copied
	DataBytes int64   `json:"data_bytes"`                // bytes of those files (or of the change)
	// CPU is the tool's processes' user+system CPU seconds over the step:
	// efsd's A and B; rsync's client and the daemon's process that served
	// it. Kernel threads (writeback) and the proxy are not in it.
	CPU float64 `json:"tool_cpu_s,omitempty"`
	// SyncAfter (rsync without --fsync) is how long one syncfs of the
	// destination's file system took right after rsync returned: what it
	// still owed to make its copy as durable as efsd's acknowledged pass.
	SyncAfter float64 `json:"syncfs_after_s,omitempty"`
}

func (s xdSample) wire() int64 { return s.WireFwd + s.WireBack }

// xdSetup is how long efsd took to set up a replication to B.
type xdSetup struct {
	Condition   string  `json:"condition"`
	Tree        string  `json:"tree"`
	DestExists  float64 `json:"destination_exists_s"` // Create → destination file system at B
	FirstPass   float64 `json:"first_pass_s"`         // Create → ENABLED, LastReplicatedTimestamp ≥ Create (empty source)
	WireCreated int64   `json:"wire_bytes"`           // both directions, Create → first pass
}

type xdRPOSample struct {
	Condition string `json:"condition"`
	rpoSample
}

type xdRaw struct {
	Trees      map[string]string `json:"trees"`
	Conditions []xdCondition     `json:"conditions"`
	Samples    []xdSample        `json:"samples"`
	Setups     []xdSetup         `json:"efsd_setups"`
	RPO        []xdRPOSample     `json:"rpo"`
	RPOWriter  rpoScenario       `json:"rpo_writer"`
	EfsdError  string            `json:"efsd_error,omitempty"`
}

func (r *xdRaw) pick(cond, tree, step, tool string) []xdSample {
	var out []xdSample
	for _, s := range r.Samples {
		if s.Condition == cond && s.Tree == tree && s.Step == step && s.Tool == tool {
			out = append(out, s)
		}
	}
	return out
}

// xdeploySuite runs the cross-deployment suite. The rsync half runs even
// when the efsd half cannot (an efsd without issue #10's peers): its error
// is reported and returned at the end.
func (h *harness) xdeploySuite() (*suiteResult, error) {
	raw := &xdRaw{Trees: map[string]string{}, Conditions: h.xdConditions()}
	err := h.xdeployRun(raw)
	if err == nil && raw.EfsdError != "" {
		err = errors.New("efsd half: " + raw.EfsdError)
	}
	return h.xdeployReport(raw), err
}

func (h *harness) xdeployRun(raw *xdRaw) error {
	base := filepath.Join(h.mnt.Dir, "xdeploy")
	defer func() {
		os.RemoveAll(base)
		unix.Sync()
	}()
	if err := os.MkdirAll(base, 0o755); err != nil {
		return err
	}
	link := netshape.NewLink(netshape.Shape{})
	specs := append(h.replicationTrees(), h.xdBig())
	if h.xdTrees != nil {
		specs = slices.DeleteFunc(specs, func(s *trees.Spec) bool { return !slices.Contains(h.xdTrees, s.Name) })
	}

	rd, err := h.startRsyncd(base, specs)
	if err != nil {
		return err
	}
	defer rd.proc.Stop(5 * time.Second)
	rproxy, err := link.Proxy(rd.addr, false)
	if err != nil {
		return err
	}
	defer rproxy.Close()
	rd.url = "rsync://" + xdRsyncUser + "@" + rproxy.Addr()

	x, err := h.startPair(base, link)
	if err != nil {
		raw.EfsdError = err.Error()
		h.logf("xdeploy: the efsd half cannot run: %v", err)
		h.logf("xdeploy: measuring rsync's daemon alone")
	} else {
		defer x.stop()
	}
	fail := func(err error) {
		raw.EfsdError = err.Error()
		h.logf("xdeploy: efsd half failed, measuring rsync alone from here: %v", err)
		x.stop()
		x = nil
	}

	for _, spec := range specs {
		raw.Trees[spec.Name] = spec.Desc
		item := &xdItem{spec: spec, stage: filepath.Join(base, "stage-"+spec.Name)}
		if x != nil {
			if item.srcID, err = h.createFSIn(x.a, regionA, "xdeploy-"+spec.Name); err != nil {
				fail(err)
			} else {
				item.src = x.a.volumeDirIn(regionA, item.srcID)
			}
		}
		h.logf("xdeploy (%s): building %s", spec.Name, spec.Desc)
		if err := trees.Build(filepath.Join(item.stage, xdTop), spec, buildWorkers); err != nil {
			return err
		}
		unix.Sync()
		for _, cond := range raw.Conditions {
			link.SetShape(cond.Shape)
			h.logf("xdeploy (%s): link %s (%s)", spec.Name, cond.Name, cond.Shape)
			for rep := range h.reps {
				blocks := []func() error{
					func() error {
						if x == nil {
							return nil
						}
						if err := h.xdEfsdBlock(raw, x, item, cond, rep); err != nil {
							fail(fmt.Errorf("tree (%s), %s, rep %d: %w", spec.Name, cond.Name, rep, err))
						}
						return nil
					},
					func() error { return h.xdRsyncBlock(raw, rd, link, item, cond, rep, false) },
				}
				if cond.Shape == (netshape.Shape{}) {
					blocks = append(blocks, func() error { return h.xdRsyncBlock(raw, rd, link, item, cond, rep, true) },
						func() error { return h.xdPhysical(raw, base, item, cond, rep) })
				}
				if rep%2 == 1 {
					blocks[0], blocks[1] = blocks[1], blocks[0]
				}
				for _, b := range blocks {
					if err := h.check(); err != nil {
						return err
					}
					if err := b(); err != nil {
						return fmt.Errorf("tree (%s), %s, rep %d: %w", spec.Name, cond.Name, rep, err)
					}
				}
			}
			if spec.Name == "a" && x != nil {
				if err := h.xdRPO(raw, x, item, cond); err != nil {
					fail(fmt.Errorf("recovery point, %s: %w", cond.Name, err))
				}
			}
		}
		if x != nil && item.srcID != "" {
			if err := h.deleteFSIn(x.a, regionA, item.srcID); err != nil {
				fail(err)
			}
		}
		os.RemoveAll(item.stage)
		unix.Sync()
	}
	return nil
}

// xdPhysical measures the physical limit of the repetition's steps on
// B's disk (durableWrite of their bytes): the initial copy's whole tree,
// and the bytes rsync's change of this repetition wrote.
func (h *harness) xdPhysical(raw *xdRaw, dir string, it *xdItem, cond xdCondition, rep int) error {
	steps := []struct {
		step  string
		bytes int64
	}{{xdStepInitial, it.spec.TotalBytes()}}
	for _, s := range raw.pick(cond.Name, it.spec.Name, xdChangeStep(it.spec), xdToolRsync) {
		if s.Rep == rep {
			steps = append(steps, struct {
				step  string
				bytes int64
			}{s.Step, s.DataBytes})
		}
	}
	for _, st := range steps {
		w, _, err := durableWrite(dir, st.bytes)
		if err != nil {
			return err
		}
		raw.Samples = append(raw.Samples, xdSample{Rep: rep, Condition: cond.Name, Tree: it.spec.Name, Step: st.step,
			Tool: xdToolPhysical, Wall: w, DataBytes: st.bytes})
		h.logf("  physical limit, %s (%d bytes): %.3fs", st.step, st.bytes, w)
	}
	return nil
}

// xdItem is one tree of the suite: its staging directory (where it lives
// between efsd measurements) and its source file system at A.
type xdItem struct {
	spec  *trees.Spec
	stage string // holds xdTop when the tree is not in the source
	srcID string // source file system at A ("" without efsd)
	src   string // its directory
	round int    // mutations so far, for rsync's and efsd's changes alike
	// The recovery-point writer's next file and version: kept across its
	// runs, so that every change of the run writes bytes the file has
	// never held (a repeated version would be "visible" at once).
	rpoCursor, rpoVersion int
}

// change makes the item's change in the tree under root: 1% of the files,
// or 1 MiB in the middle of the large file. It returns the files changed
// and the bytes written. It first waits (untimed) for the wall clock's
// next second: rsync's quick check compares mtimes to the second, so a
// file rewritten at the same size within the second of its previous
// version would be skipped (rightly, by rsync's rules; it happens in real
// life too) and the copy would not be identical.
func (h *harness) xdChange(it *xdItem, root string, rep int) ([]string, int64, error) {
	now := time.Now()
	time.Sleep(now.Truncate(time.Second).Add(time.Second + 10*time.Millisecond).Sub(now))
	if it.spec.Name == "big" {
		it.round++
		size := it.spec.Entry(0).Size
		off := size/2 - 512<<10 // centred on the middle, across a MiB boundary
		if err := trees.WriteRange(root, it.spec, 0, 1000+it.round, off, 1<<20); err != nil {
			return nil, 0, err
		}
		return []string{it.spec.Entry(0).Path}, 1 << 20, nil
	}
	// Every tool of a repetition changes the same files (the pick), each
	// with bytes they never held (the version).
	changed, err := trees.MutatePicked(root, it.spec, rep, 1+h.nextRound(), 0.01, buildWorkers)
	if err != nil {
		return nil, 0, err
	}
	var n int64
	for _, i := range trees.Pick(it.spec, rep, 0.01) {
		n += it.spec.Entry(i).Size
	}
	return changed, n, nil
}

func xdChangeStep(spec *trees.Spec) string {
	if spec.Name == "big" {
		return xdStepMid
	}
	return xdStepIncr
}

// --- the rsync half ---

// rsyncd is the rsync daemon the harness started.
type rsyncd struct {
	proc     *procs.Proc
	password string            // of the daemon's one user, made for the run
	addr     string            // where it listens
	url      string            // rsync:// URL of the proxy in front of it
	modules  map[string]string // module name → path
}

// startRsyncd starts `rsync --daemon` on a free loopback port with a
// config of its own: one module per tree, writable, preserving owners
// when the harness is root, no chroot and no symlink munging (so that
// the copy is the tree as it is). Its modules take writes as root, so
// they need a password, made for the run and known only to the harness
// (a secrets file of mode 0600), lest another local user write files as
// root through it.
func (h *harness) startRsyncd(base string, specs []*trees.Spec) (*rsyncd, error) {
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	rd := &rsyncd{addr: fmt.Sprintf("127.0.0.1:%d", port), modules: map[string]string{}, password: rand.Text()}
	secrets := filepath.Join(h.work, "rsyncd.secrets")
	if err := os.WriteFile(secrets, []byte(xdRsyncUser+":"+rd.password+"\n"), 0o600); err != nil {
		return nil, err
	}
	var conf strings.Builder
	conf.WriteString("# written by efsbench for the xdeploy suite\nuse chroot = no\nmunge symlinks = no\nnumeric ids = yes\n" +
		"reverse lookup = no\nmax connections = 8\nhosts allow = 127.0.0.1\nstrict modes = yes\n")
	fmt.Fprintf(&conf, "auth users = %s\nsecrets file = %s\n", xdRsyncUser, secrets)
	fmt.Fprintf(&conf, "log file = %s\nlock file = %s\n", filepath.Join(h.work, "logs", "rsyncd-transfers.log"),
		filepath.Join(h.work, "rsyncd.lock")) // max connections needs one; not the system's
	for _, s := range specs {
		p := filepath.Join(base, "rsync-"+s.Name)
		rd.modules[s.Name] = p
		fmt.Fprintf(&conf, "\n[%s]\n\tpath = %s\n\tread only = no\n", s.Name, p)
		if os.Geteuid() == 0 {
			conf.WriteString("\tuid = 0\n\tgid = 0\n")
		}
	}
	confPath := filepath.Join(h.work, "rsyncd.conf")
	if err := os.WriteFile(confPath, []byte(conf.String()), 0o644); err != nil {
		return nil, err
	}
	args := []string{"--daemon", "--no-detach", "--config=" + confPath, "--address=127.0.0.1", fmt.Sprintf("--port=%d", port)}
	h.record("rsync " + strings.ReplaceAll(strings.Join(args, " "), fmt.Sprint(port), "PORT"))
	logPath := filepath.Join(h.work, "logs", "rsyncd.log")
	p, err := procs.Start("rsync", logPath, nil, args...)
	if err != nil {
		return nil, err
	}
	rd.proc = p
	h.logf("  started rsync --daemon (pid %d) on %s, log %s", p.PID, rd.addr, logPath)
	// Ready when it greets: "@RSYNCD: <version>".
	err = h.poll(30*time.Second, 10*time.Millisecond, "rsync daemon greeting", func() (bool, error) {
		if p.Exited() {
			return false, fmt.Errorf("rsync --daemon exited (log: %s)", logPath)
		}
		c, err := net.DialTimeout("tcp", rd.addr, time.Second)
		if err != nil {
			return false, nil
		}
		defer c.Close()
		c.SetReadDeadline(time.Now().Add(2 * time.Second))
		b := make([]byte, 9)
		n, _ := c.Read(b)
		return string(b[:n]) == "@RSYNCD: ", nil
	})
	if err != nil {
		p.Stop(5 * time.Second)
		return nil, err
	}
	return rd, nil
}

var rsyncStat = regexp.MustCompile(`(?m)^Total bytes (sent|received): ([0-9,]+)`)

// rsyncPush runs `rsync -a --delete --stats SRC/ rsync://PROXY/MODULE/`
// and returns its wall time and its own count of bytes sent + received.
func (h *harness) rsyncPush(rd *rsyncd, src, module string, fsync bool) (wall float64, own int64, cpu float64, err error) {
	ctx, cancel := context.WithTimeout(h.ctx, 30*time.Minute)
	defer cancel()
	args := []string{"-a", "--delete", "--stats", src + "/", rd.url + "/" + module + "/"}
	shown := "rsync -a --delete --stats"
	if fsync {
		args = append([]string{"--fsync"}, args...)
		shown = "rsync --fsync -a --delete --stats"
	}
	cmd, stderr := h.command(ctx, "rsync", args...)
	cmd.Env = append(os.Environ(), "RSYNC_PASSWORD="+rd.password)
	h.record("RSYNC_PASSWORD=… " + shown + " SRC/ rsync://" + xdRsyncUser + "@127.0.0.1:PROXY_PORT/MODULE/")
	var out strings.Builder
	cmd.Stdout = &out
	t0 := time.Now()
	err = cmd.Run()
	wall = time.Since(t0).Seconds()
	if err != nil {
		return 0, 0, 0, fmt.Errorf("rsync %s: %v: %s", strings.Join(args, " "), err, strings.TrimSpace(stderr.String()))
	}
	own, err = rsyncOwnCount(out.String())
	return wall, own, procs.ChildCPU(cmd.ProcessState), err
}

// daemonCPU is the rsync daemon's CPU seconds with the children it
// reaped, once it has none left (the one that served the last push
// may still be exiting when the client returns).
func (rd *rsyncd) daemonCPU() (float64, error) {
	if err := procs.WaitChildless(rd.proc.PID, 30*time.Second); err != nil {
		return 0, err
	}
	return procs.ReadFamilyCPU(rd.proc.PID)
}

// syncfs makes the file system holding dir durable (one syncfs, what
// efsd's receiver does at a commit) and returns how long it took.
func syncfs(dir string) (float64, error) {
	fd, err := unix.Open(dir, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return 0, err
	}
	defer unix.Close(fd)
	t0 := time.Now()
	if err := unix.Syncfs(fd); err != nil {
		return 0, fmt.Errorf("syncfs %s: %w", dir, err)
	}
	return time.Since(t0).Seconds(), nil
}

// rsyncOwnCount adds up the "Total bytes sent" and "Total bytes received"
// lines of rsync's --stats output.
func rsyncOwnCount(stats string) (int64, error) {
	ms := rsyncStat.FindAllStringSubmatch(stats, -1)
	if len(ms) != 2 {
		return 0, fmt.Errorf("rsync --stats: %d byte totals in its output, want 2", len(ms))
	}
	var own int64
	for _, m := range ms {
		n, err := strconv.ParseInt(strings.ReplaceAll(m[2], ",", ""), 10, 64)
		if err != nil {
			return 0, fmt.Errorf("rsync --stats: %w", err)
		}
		own += n
	}
	return own, nil
}

// xdRsyncBlock: an initial push of the tree to an empty module, then the
// item's change and a push of it; with fsync, rsync's --fsync.
func (h *harness) xdRsyncBlock(raw *xdRaw, rd *rsyncd, link *netshape.Link, it *xdItem, cond xdCondition, rep int, fsync bool) error {
	tool, name := xdToolRsync, "rsync"
	if fsync {
		tool, name = xdToolRsyncSync, "rsync --fsync"
	}
	spec := it.spec
	dst := rd.modules[spec.Name]
	if err := os.RemoveAll(dst); err != nil {
		return err
	}
	if err := os.MkdirAll(dst, 0o755); err != nil {
		return err
	}
	defer func() {
		os.RemoveAll(dst)
		unix.Sync()
	}()
	push := func(step string, files, data int64) error {
		d0, err := rd.daemonCPU()
		if err != nil {
			return err
		}
		f0, b0 := link.Bytes()
		wall, own, cpu, err := h.rsyncPush(rd, it.stage, spec.Name, fsync)
		if err != nil {
			return err
		}
		f1, b1 := link.Bytes()
		var after float64
		if !fsync {
			if after, err = syncfs(dst); err != nil {
				return err
			}
		}
		d1, err := rd.daemonCPU()
		if err != nil {
			return err
		}
		raw.Samples = append(raw.Samples, xdSample{Rep: rep, Condition: cond.Name, Tree: spec.Name, Step: step, Tool: tool,
			Wall: wall, WireFwd: f1 - f0, WireBack: b1 - b0, OwnCount: own, Files: files, DataBytes: data,
			CPU: cpu + d1 - d0, SyncAfter: after})
		h.logf("  %s %s: %.3fs (then syncfs %.3fs), %.2f CPU-s, %s on the wire (rsync's own count %s)",
			name, step, wall, after, cpu+d1-d0, mb(f1-f0+b1-b0), mb(own))
		return nil
	}
	unix.Sync()
	if err := push(xdStepInitial, int64(spec.Files), spec.TotalBytes()); err != nil {
		return err
	}
	if err := xdIdentical(it.stage, dst, spec, nil); err != nil {
		return fmt.Errorf("%s's initial copy: %w", name, err)
	}
	unix.Sync()
	changed, n, err := h.xdChange(it, filepath.Join(it.stage, xdTop), rep)
	if err != nil {
		return err
	}
	if err := push(xdChangeStep(spec), int64(len(changed)), n); err != nil {
		return err
	}
	return xdIdentical(it.stage, dst, spec, prefixed(changed))
}

func prefixed(rels []string) []string {
	out := make([]string, len(rels))
	for i, r := range rels {
		out[i] = xdTop + "/" + r
	}
	return out
}

// xdIdentical checks dst against src (both holding xdTop) as the other
// suites do: everything's metadata, and every byte (for trees over 20,000
// files, the bytes of the files changed).
func xdIdentical(src, dst string, spec *trees.Spec, changed []string) error {
	full := spec.Files <= 20_000
	if err := trees.Diff(src, dst, trees.DiffOptions{Content: full, Meta: true}); err != nil {
		return fmt.Errorf("%w: %v", errNotIdentical, err)
	}
	if !full && len(changed) > 0 {
		if err := trees.SameFiles(src, dst, changed); err != nil {
			return fmt.Errorf("%w: %v", errNotIdentical, err)
		}
	}
	return nil
}

func mb(n int64) string { return fmt.Sprintf("%.3f MB", float64(n)/1e6) }

// --- the efsd half ---

// xdPair is the two efsd deployments and the proxies between them.
type xdPair struct {
	a, b         *server
	link         *netshape.Link
	proxAB       *netshape.Proxy // A's peer endpoint for B
	proxBA       *netshape.Proxy // B's peer endpoint for A
	fpA, fpB     string
	peerA, peerB string // peerListen addresses
	// adminA, adminB serve Go's profiles (--xd-profile only; else "").
	adminA, adminB string
}

// profile fetches a CPU profile and an execution trace of A and of B
// over the next d (all at once) into the run's logs directory, named after
// what is measured; it returns at once and wait waits for them. Without
// --xd-profile it does nothing.
func (h *harness) profile(x *xdPair, name string, d time.Duration) (wait func()) {
	var wg sync.WaitGroup
	for side, addr := range map[string]string{"a": x.adminA, "b": x.adminB} {
		if addr == "" {
			continue
		}
		for kind, ext := range map[string]string{"profile": "pprof", "trace": "trace"} {
			wg.Go(func() {
				url := fmt.Sprintf("http://%s/debug/pprof/%s?seconds=%d", addr, kind, int(d.Seconds()))
				path := filepath.Join(h.work, "logs", fmt.Sprintf("%s-%s.%s", name, side, ext))
				if err := fetchTo(url, path); err != nil {
					h.logf("  %s %s: %v", kind, path, err)
					return
				}
				h.logf("  %s of %s: %s", kind, side, path)
			})
		}
	}
	return wg.Wait
}

func fetchTo(url, path string) error {
	resp, err := http.Get(url)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("%s: %s", url, resp.Status)
	}
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if _, err := io.Copy(f, resp.Body); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

func (x *xdPair) stop() {
	if x == nil {
		return
	}
	for _, s := range []*server{x.a, x.b} {
		if s != nil {
			s.stop()
		}
	}
	for _, p := range []*netshape.Proxy{x.proxAB, x.proxBA} {
		if p != nil {
			p.Close()
		}
	}
}

var fingerprint = regexp.MustCompile(`^[0-9a-f]{64}$`)

// peerID runs `efsd peer-id --data-dir DIR`, which makes the deployment's
// peer identity if missing and prints its certificate's SHA-256.
func (h *harness) peerID(dir string) (string, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", err
	}
	out, err := h.runCmdOutput(30*time.Second, h.bin.efsd, "peer-id", "--data-dir", dir)
	fp := strings.TrimSpace(string(out))
	if err != nil || !fingerprint.MatchString(fp) {
		why := fmt.Sprintf("output %q", truncate(fp, 100))
		if err != nil { // its last line says why (the usage text comes before)
			msg := strings.TrimSpace(err.Error())
			why = truncate(msg[strings.LastIndexByte(msg, '\n')+1:], 200)
		}
		return "", fmt.Errorf("`efsd peer-id --data-dir DIR` did not print a certificate fingerprint (%s): "+
			"this efsd has no cross-deployment replication (issue #10: peer-id, peerListen, peers), so the efsd half of the "+
			"xdeploy suite cannot run", why)
	}
	return fp, nil
}

func truncate(s string, n int) string {
	if len(s) > n {
		return s[:n] + "…"
	}
	return s
}

// xdPeer is one entry of the config's peers list (issue #10's contract).
type xdPeer struct {
	Name              string   `json:"name"`
	Endpoint          string   `json:"endpoint"`
	Regions           []string `json:"regions"`
	CertificateSha256 string   `json:"certificateSha256"`
}

type xdConfig struct {
	Regions           []string `json:"regions"`
	PeerListen        string   `json:"peerListen"`
	Peers             []xdPeer `json:"peers"`
	ReplicationRescan string   `json:"replicationRescanInterval,omitempty"`
	AdminListen       string   `json:"adminListen,omitempty"`
	AdminProfiling    bool     `json:"adminProfiling,omitempty"`
}

// startPair makes both identities, writes each deployment's config naming
// the other (A reaches B, and B reaches A, through proxies on link), and
// starts A and B.
func (h *harness) startPair(base string, link *netshape.Link) (x *xdPair, err error) {
	x = &xdPair{link: link}
	defer func() {
		if err != nil {
			x.stop()
		}
	}()
	dirA, dirB := filepath.Join(base, "efsd-a"), filepath.Join(base, "efsd-b")
	if x.fpA, err = h.peerID(dirA); err != nil {
		return nil, err
	}
	if x.fpB, err = h.peerID(dirB); err != nil {
		return nil, err
	}
	pa, err := freePort()
	if err != nil {
		return nil, err
	}
	pb, err := freePort()
	if err != nil {
		return nil, err
	}
	x.peerA, x.peerB = fmt.Sprintf("127.0.0.1:%d", pa), fmt.Sprintf("127.0.0.1:%d", pb)
	// A dials B: A's bytes travel forward. B dials A: B's bytes travel back.
	if x.proxAB, err = link.Proxy(x.peerB, false); err != nil {
		return nil, err
	}
	if x.proxBA, err = link.Proxy(x.peerA, true); err != nil {
		return nil, err
	}
	rescan := ""
	if h.quick {
		rescan = "1s"
	}
	cfgA := xdConfig{Regions: []string{regionA}, PeerListen: x.peerA, ReplicationRescan: rescan,
		Peers: []xdPeer{{Name: "b", Endpoint: "https://" + x.proxAB.Addr(), Regions: []string{regionB}, CertificateSha256: x.fpB}}}
	cfgB := xdConfig{Regions: []string{regionB}, PeerListen: x.peerB, ReplicationRescan: rescan,
		Peers: []xdPeer{{Name: "a", Endpoint: "https://" + x.proxBA.Addr(), Regions: []string{regionA}, CertificateSha256: x.fpA}}}
	if h.xdProfile > 0 {
		for _, c := range []*xdConfig{&cfgA, &cfgB} {
			p, err := freePort()
			if err != nil {
				return nil, err
			}
			c.AdminListen, c.AdminProfiling = fmt.Sprintf("127.0.0.1:%d", p), true
		}
		x.adminA, x.adminB = cfgA.AdminListen, cfgB.AdminListen
	}
	if x.a, err = h.startDeployment("xdeploy-a", dirA, cfgA); err != nil {
		return nil, err
	}
	if x.b, err = h.startDeployment("xdeploy-b", dirB, cfgB); err != nil {
		return nil, err
	}
	return x, nil
}

// startDeployment writes cfg and starts efsd with it on a free port,
// ready when a signed request in its (only) region succeeds.
func (h *harness) startDeployment(name, dataDir string, cfg xdConfig) (*server, error) {
	return h.startConfigured(name, dataDir, cfg.Regions[0], cfg)
}

// startConfigured writes cfg (JSON) as efsd's config file and starts efsd
// with it on a free port, ready when a signed request in region succeeds.
func (h *harness) startConfigured(name, dataDir, region string, cfg any) (*server, error) {
	b, err := json.MarshalIndent(cfg, "", "  ")
	if err != nil {
		return nil, err
	}
	cfgPath := filepath.Join(h.work, name+".json")
	if err := os.WriteFile(cfgPath, append(b, '\n'), 0o644); err != nil {
		return nil, err
	}
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	args := []string{"--listen", addr, "--data-dir", dataDir, "--log-format", "json", "--log-level", "debug", "--config", cfgPath}
	h.record(genericCommand(h.bin.efsd, args, port, dataDir) + "   # config: " + compactJSON(b))
	logPath := filepath.Join(h.work, "logs", name+".log")
	p, err := procs.Start(h.bin.efsd, logPath, nil, args...)
	if err != nil {
		return nil, err
	}
	s := &server{kind: "efsd", proc: p, url: "http://" + addr, dataDir: dataDir, clients: map[string]*efs.Client{}}
	h.logf("  started efsd %s (pid %d) on %s, serving %s, log %s", name, p.PID, addr, region, logPath)
	if err := h.waitReady(s, region, 60*time.Second); err != nil {
		s.stop()
		return nil, fmt.Errorf("%s: %w (log: %s)", name, err, logPath)
	}
	return s, nil
}

func compactJSON(b []byte) string {
	var v any
	if json.Unmarshal(b, &v) != nil {
		return string(b)
	}
	c, _ := json.Marshal(v)
	return string(c)
}

// createFSIn is createFS in a region.
func (h *harness) createFSIn(s *server, region, token string) (string, error) {
	c := s.client(region)
	out, err := c.CreateFileSystem(h.ctx, &efs.CreateFileSystemInput{CreationToken: aws.String(token)})
	if err != nil {
		return "", fmt.Errorf("create file system in %s: %w", region, err)
	}
	id := aws.ToString(out.FileSystemId)
	return id, h.poll(30*time.Second, 20*time.Millisecond, "file system "+id+" available", func() (bool, error) {
		d, err := c.DescribeFileSystems(h.ctx, &efs.DescribeFileSystemsInput{FileSystemId: aws.String(id)})
		if err != nil {
			return false, err
		}
		return len(d.FileSystems) == 1 && d.FileSystems[0].LifeCycleState == types.LifeCycleStateAvailable, nil
	})
}

// deleteFSIn is deleteFS in a region.
func (h *harness) deleteFSIn(s *server, region, id string) error {
	c := s.client(region)
	if _, err := c.DeleteFileSystem(h.ctx, &efs.DeleteFileSystemInput{FileSystemId: aws.String(id)}); err != nil {
		return fmt.Errorf("delete file system %s in %s: %w", id, region, err)
	}
	return h.poll(5*time.Minute, 50*time.Millisecond, "file system "+id+" deleted", func() (bool, error) {
		_, err := c.DescribeFileSystems(h.ctx, &efs.DescribeFileSystemsInput{FileSystemId: aws.String(id)})
		var nf *types.FileSystemNotFound
		if errors.As(err, &nf) {
			return true, nil
		}
		return false, err
	})
}

// replicateToB creates the replication of srcID at A to a new file system
// in eu-west-1 (deployment B), waits until A's configuration names the
// destination and B has it, then until the first pass is durable (the
// source holds nothing yet). It returns the destination's ID.
func (h *harness) replicateToB(raw *xdRaw, x *xdPair, it *xdItem, cond xdCondition) (string, error) {
	ca := x.a.client(regionA)
	f0, b0 := x.link.Bytes()
	t0 := time.Now()
	out, err := ca.CreateReplicationConfiguration(h.ctx, &efs.CreateReplicationConfigurationInput{
		SourceFileSystemId: aws.String(it.srcID),
		Destinations:       []types.DestinationToCreate{{Region: aws.String(regionB)}},
	})
	if err != nil {
		return "", fmt.Errorf("create replication configuration to %s: %w", regionB, err)
	}
	var dstID string
	if len(out.Destinations) == 1 {
		dstID = aws.ToString(out.Destinations[0].FileSystemId)
	}
	err = h.poll(2*time.Minute, 10*time.Millisecond, "destination of "+it.srcID+" named at A", func() (bool, error) {
		if dstID != "" {
			return true, nil
		}
		d, err := ca.DescribeReplicationConfigurations(h.ctx, &efs.DescribeReplicationConfigurationsInput{FileSystemId: aws.String(it.srcID)})
		if err != nil {
			return false, err
		}
		if len(d.Replications) == 1 && len(d.Replications[0].Destinations) == 1 {
			dstID = aws.ToString(d.Replications[0].Destinations[0].FileSystemId)
		}
		return dstID != "", nil
	})
	if err != nil {
		return "", err
	}
	cb := x.b.client(regionB)
	err = h.poll(2*time.Minute, 10*time.Millisecond, "destination "+dstID+" at B", func() (bool, error) {
		d, err := cb.DescribeFileSystems(h.ctx, &efs.DescribeFileSystemsInput{FileSystemId: aws.String(dstID)})
		var nf *types.FileSystemNotFound
		if errors.As(err, &nf) {
			return false, nil
		}
		return err == nil && len(d.FileSystems) == 1, err
	})
	if err != nil {
		return "", err
	}
	exists := time.Since(t0)
	if _, err := h.waitCovered(x.a, it.srcID, t0, 5*time.Minute, 10*time.Millisecond); err != nil {
		return dstID, err
	}
	f1, b1 := x.link.Bytes()
	raw.Setups = append(raw.Setups, xdSetup{Condition: cond.Name, Tree: it.spec.Name, DestExists: exists.Seconds(),
		FirstPass: time.Since(t0).Seconds(), WireCreated: f1 - f0 + b1 - b0})
	return dstID, nil
}

// unreplicateB deletes the configuration at A (both sides), waits until
// neither A nor B has it, and deletes the destination file system at B.
func (h *harness) unreplicateB(x *xdPair, srcID, dstID string) error {
	ca, cb := x.a.client(regionA), x.b.client(regionB)
	if _, err := ca.DeleteReplicationConfiguration(h.ctx, &efs.DeleteReplicationConfigurationInput{
		SourceFileSystemId: aws.String(srcID), DeletionMode: types.DeletionModeAllConfigurations}); err != nil {
		return fmt.Errorf("delete replication configuration: %w", err)
	}
	for _, side := range []struct {
		c  *efs.Client
		id string
	}{{ca, srcID}, {cb, dstID}} {
		err := h.poll(2*time.Minute, 20*time.Millisecond, "replication of "+side.id+" deleted", func() (bool, error) {
			_, err := side.c.DescribeReplicationConfigurations(h.ctx, &efs.DescribeReplicationConfigurationsInput{FileSystemId: aws.String(side.id)})
			var nf *types.ReplicationNotFound
			if errors.As(err, &nf) {
				return true, nil
			}
			return false, err
		})
		if err != nil {
			return err
		}
	}
	return h.deleteFSIn(x.b, regionB, dstID)
}

// xdEfsdBlock: a new replication from A's (empty) source to B; the tree
// moved into the source with one rename and timed until A reports a pass
// that started after it and B's copy is identical; then the item's change,
// timed likewise; then the configuration and the destination deleted and
// the tree moved back to its staging directory.
func (h *harness) xdEfsdBlock(raw *xdRaw, x *xdPair, it *xdItem, cond xdCondition, rep int) error {
	spec := it.spec
	staged, inSrc := filepath.Join(it.stage, xdTop), filepath.Join(it.src, xdTop)
	dstID, err := h.replicateToB(raw, x, it, cond)
	if err != nil {
		return err
	}
	moved := false
	defer func() {
		if moved {
			os.Rename(inSrc, staged) // best effort on a failure path
		}
	}()
	dst := x.b.volumeDirIn(regionB, dstID)
	add := func(step string, wall float64, fwd, back, files, data int64, cpu float64) {
		raw.Samples = append(raw.Samples, xdSample{Rep: rep, Condition: cond.Name, Tree: spec.Name, Step: step, Tool: xdToolEfsd,
			Wall: wall, WireFwd: fwd, WireBack: back, Files: files, DataBytes: data, CPU: cpu})
		h.logf("  efsd %s: %.3fs, %.2f CPU-s, %s on the wire", step, wall, cpu, mb(fwd+back))
	}
	// cpu is A's and B's CPU seconds so far (read again once a step's
	// pass is found: they idle by then).
	cpu := func() (float64, error) {
		ua, err := procs.ReadUsage(x.a.proc.PID)
		if err != nil {
			return 0, err
		}
		ub, err := procs.ReadUsage(x.b.proc.PID)
		return ua.CPU + ub.CPU, err
	}

	unix.Sync()
	f0, b0 := x.link.Bytes()
	off := fileSize(x.a.proc.Log)
	link := strings.Fields(cond.Name)[0]
	profiled := sync.OnceFunc(h.profile(x, fmt.Sprintf("xdeploy-%s-%s-initial-%d", spec.Name, link, rep), h.xdProfile))
	defer profiled()
	c0, err := cpu()
	if err != nil {
		return err
	}
	t0 := time.Now()
	if err := os.Rename(staged, inSrc); err != nil {
		return err
	}
	moved = true
	pass, err := h.waitIdenticalPass(x.a, off, t0, 30*time.Minute, func() error { return xdIdentical(it.src, dst, spec, nil) })
	end := pass.End
	if err != nil {
		return fmt.Errorf("B after the initial copy: %w", err)
	}
	f1, b1 := x.link.Bytes()
	c1, err := cpu()
	if err != nil {
		return err
	}
	// The timestamp A reports must then cover the change (not timed: it
	// is whole seconds, as EFS reports it).
	if _, err := h.waitCovered(x.a, it.srcID, t0, 30*time.Minute, 20*time.Millisecond); err != nil {
		return err
	}
	add(xdStepInitial, end.Sub(t0).Seconds(), f1-f0, b1-b0, int64(spec.Files), spec.TotalBytes(), c1-c0)

	unix.Sync()
	profiled() // one CPU profile at a time
	defer h.profile(x, fmt.Sprintf("xdeploy-%s-%s-change-%d", spec.Name, link, rep), h.xdProfile)()
	f0, b0 = x.link.Bytes()
	// From before the writes: a pass may start while they are made.
	if c0, err = cpu(); err != nil {
		return err
	}
	changed, n, err := h.xdChange(it, inSrc, rep)
	if err != nil {
		return err
	}
	off = fileSize(x.a.proc.Log)
	tc := time.Now()
	pass, err = h.waitIdenticalPass(x.a, off, tc, 10*time.Minute, func() error { return xdIdentical(it.src, dst, spec, prefixed(changed)) })
	end = pass.End
	if err != nil {
		return fmt.Errorf("B after the change: %w", err)
	}
	f1, b1 = x.link.Bytes()
	if c1, err = cpu(); err != nil {
		return err
	}
	if _, err := h.waitCovered(x.a, it.srcID, tc, 10*time.Minute, 20*time.Millisecond); err != nil {
		return err
	}
	add(xdChangeStep(spec), end.Sub(tc).Seconds(), f1-f0, b1-b0, int64(len(changed)), n, c1-c0)

	if err := h.unreplicateB(x, it.srcID, dstID); err != nil {
		return err
	}
	if err := os.Rename(inSrc, staged); err != nil {
		return err
	}
	moved = false
	unix.Sync()
	return nil
}

// waitIdenticalPass times efsd like a command: until the end of the pass
// after which the destination is identical. efsd logs a pass
// ("replication pass", at debug level) once its destination is durable
// (for a peer's, once the peer acknowledged it so); after each new line
// the copy is checked, and the pass credited is the newest one logged when
// the check began (a pass ending during the check is not credited early).
// LastReplicatedTimestamp cannot time it: the API gives whole seconds.
func (h *harness) waitIdenticalPass(s *server, off int64, since time.Time, limit time.Duration, identical func() error) (passRecord, error) {
	deadline := time.Now().Add(limit)
	var last passRecord
	var lastErr error
	for time.Now().Before(deadline) {
		if err := h.check(); err != nil {
			return last, err
		}
		recs, noff, err := readPasses(s.proc.Log, off)
		if err != nil {
			return last, err
		}
		off = noff
		fresh := false
		for _, r := range recs {
			if r.End.After(since) {
				last, fresh = r, true
			}
		}
		if fresh {
			if lastErr = identical(); lastErr == nil {
				return last, nil
			}
		}
		time.Sleep(5 * time.Millisecond)
	}
	return last, fmt.Errorf("no pass left the destination identical within %v: %v", limit, lastErr)
}

// xdRPOWriter is the recovery-point writer: 100 changes/s.
func (h *harness) xdRPOWriter() rpoScenario {
	if h.quick {
		return rpoScenario{"100 changes/s for 5 s", 100, 500}
	}
	return rpoScenario{"100 changes/s for 30 s", 100, 3000}
}

// xdRPO measures the recovery point across the deployments on tree (a):
// a replication to B covering the tree, then per repetition the rpo
// suite's writer at 100 changes/s on A's source and its watcher on B's
// destination.
func (h *harness) xdRPO(raw *xdRaw, x *xdPair, it *xdItem, cond xdCondition) error {
	spec := it.spec
	raw.RPOWriter = h.xdRPOWriter()
	staged, inSrc := filepath.Join(it.stage, xdTop), filepath.Join(it.src, xdTop)
	if err := os.Rename(staged, inSrc); err != nil {
		return err
	}
	defer os.Rename(inSrc, staged)
	t0 := time.Now()
	dstID, err := h.replicateToB(raw, x, it, cond)
	if err != nil {
		return err
	}
	raw.Setups = raw.Setups[:len(raw.Setups)-1] // not an empty source: not a setup sample
	if _, err := h.waitCovered(x.a, it.srcID, t0, 10*time.Minute, 20*time.Millisecond); err != nil {
		return err
	}
	dst := filepath.Join(x.b.volumeDirIn(regionB, dstID), xdTop)
	det, err := newDetector(dst, spec.Dirs)
	if err != nil {
		return err
	}
	if it.rpoVersion == 0 {
		it.rpoVersion = 100_000 // above every version the mutations use
	}
	for rep := range h.reps {
		if err := h.check(); err != nil {
			det.close()
			return err
		}
		time.Sleep(time.Second) // let the previous run's passes end
		smp, err := h.rpoScenario(x.a, it.srcID, spec, inSrc, det, raw.RPOWriter, &it.rpoCursor, &it.rpoVersion)
		if err != nil {
			det.close()
			return fmt.Errorf("rep %d: %w", rep, err)
		}
		smp.Rep = rep
		raw.RPO = append(raw.RPO, xdRPOSample{Condition: cond.Name, rpoSample: smp})
		h.logf("  rpo A → B (%s): p50 %.3fs p99 %.3fs max %.3fs, not visible %d", cond.Name, smp.P50, smp.P99, smp.Max, smp.NotVisible)
	}
	det.close()
	if _, err := h.waitCovered(x.a, it.srcID, time.Now(), 5*time.Minute, 20*time.Millisecond); err != nil {
		return err
	}
	if err := xdIdentical(it.src, x.b.volumeDirIn(regionB, dstID), spec, nil); err != nil {
		return fmt.Errorf("B after the recovery-point runs: %w", err)
	}
	return h.unreplicateB(x, it.srcID, dstID)
}
