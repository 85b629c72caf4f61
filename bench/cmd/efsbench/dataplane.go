package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/efs"
	"github.com/aws/aws-sdk-go-v2/service/efs/types"

	"github.com/efsd/efsd/bench/internal/nfs4load"
	"github.com/efsd/efsd/bench/internal/nfsload"
	"github.com/efsd/efsd/bench/internal/procs"
	"github.com/efsd/efsd/bench/internal/report"
	"github.com/efsd/efsd/bench/internal/stats"
	"github.com/efsd/efsd/bench/internal/trees"
	"github.com/efsd/efsd/internal/sdkhttp"
)

// The NFS data-plane suite (issue #12 §1, issue #13): a mount target of
// efsd against nfs-ganesha (FSAL_VFS, NFSv3 and NFSv4.1 over TCP)
// exporting a directory of the same file system, driven by the same load
// generators (bench/internal/nfsload for NFSv3, bench/internal/nfs4load
// for NFSv4.1) over the same number of connections, alternated in one run.

const nfsSuite = "nfs"

// nfsConns is the connections each workload drives at once.
const nfsConns = 4

// Servers of the suite.
const (
	nfsEfsd    = "efsd"
	nfsGanesha = "nfs-ganesha"
)

// Protocol versions of the suite (--nfs-versions), each with its own
// workloads and table.
const (
	nfsV3  = "3"
	nfsV41 = "4.1"
)

var nfsAllVersions = []string{nfsV3, nfsV41}

// nfsTarget is a server's endpoints, one per version.
type nfsTarget struct {
	v3 nfsload.Endpoint
	v4 nfs4load.Endpoint
	// admin serves Go's profiles (efsd with --nfs-profile only; else "").
	admin string
}

// nfsReadyLimit bounds the wait for a server to take NFSv4 opens after
// its start (nfs-ganesha's grace period).
const nfsReadyLimit = 3 * time.Minute

// nfsWorkload is one workload of the suite, reported as a rate.
type nfsWorkload struct {
	Key  string // in the raw samples
	Name string
	Unit string // of its rate
	MB   bool   // the rate is MB/s (else operations per second)
}

// nfsWorkloads are the workloads of a version, in the order they run.
func (h *harness) nfsWorkloads(version string) []nfsWorkload {
	files, big, reads := h.nfsSizes()
	if version == nfsV41 {
		return []nfsWorkload{
			{"create", fmt.Sprintf("create, write and close %d files of 4 KiB", files), "files/s", false},
			{"seqwrite", fmt.Sprintf("sequential write of %d MiB (until COMMIT)", big>>20), "MB/s", true},
			{"seqread", fmt.Sprintf("sequential read of %d MiB", big>>20), "MB/s", true},
			{"randread", fmt.Sprintf("%d random 4 KiB reads", reads), "reads/s", false},
			{"readdirplus", fmt.Sprintf("READDIR with attributes and handles (readdirplus) of the %d-entry directory", files), "entries/s", false},
			{"getattr", fmt.Sprintf("LOOKUP + GETATTR (one COMPOUND) of its %d entries", files), "entries/s", false},
			{"rename", fmt.Sprintf("rename its %d files", files), "renames/s", false},
			{"remove", fmt.Sprintf("remove its %d files", files), "removes/s", false},
		}
	}
	return []nfsWorkload{
		{"create", fmt.Sprintf("create, write and close %d files of 4 KiB", files), "files/s", false},
		{"seqwrite", fmt.Sprintf("sequential write of %d MiB (until COMMIT)", big>>20), "MB/s", true},
		{"seqread", fmt.Sprintf("sequential read of %d MiB", big>>20), "MB/s", true},
		{"randread", fmt.Sprintf("%d random 4 KiB reads", reads), "reads/s", false},
		{"readdirplus", fmt.Sprintf("READDIRPLUS of the %d-entry directory", files), "entries/s", false},
		{"getattr", fmt.Sprintf("LOOKUP + GETATTR of its %d entries", files), "entries/s", false},
		{"rename", fmt.Sprintf("rename its %d files", files), "renames/s", false},
		{"remove", fmt.Sprintf("remove its %d files", files), "removes/s", false},
		{"untar", fmt.Sprintf("untar of %d files of 4 KiB through a FUSE mount (fuse-nfs)", files), "files/s", false},
	}
}

// nfsSizes: files of the small-file workloads, the big file's size, and
// the random reads.
func (h *harness) nfsSizes() (int, int64, int) {
	if h.quick {
		return 1000, 128 << 20, 2000
	}
	return 10000, 1 << 30, 20000
}

type nfsSample struct {
	Rep      int     `json:"rep"`
	Server   string  `json:"server"`
	Version  string  `json:"nfs_version"`
	Workload string  `json:"workload"`
	Wall     float64 `json:"wall_s"`
	Ops      int64   `json:"ops"`
	Bytes    int64   `json:"bytes"`
}

func (s nfsSample) rate(mb bool) float64 {
	if mb {
		return float64(s.Bytes) / 1e6 / s.Wall
	}
	return float64(s.Ops) / s.Wall
}

type nfsRaw struct {
	Samples      []nfsSample `json:"samples"`
	DiskMBps     []float64   `json:"dd_conv_fsync_mb_per_s"`
	LocalUntar   []float64   `json:"local_untar_s"`
	UntarError   string      `json:"untar_error,omitempty"`
	Ganesha      string      `json:"ganesha_version,omitempty"`
	GaneshaError string      `json:"ganesha_error,omitempty"`
	Versions     []string    `json:"nfs_versions"`
	Blocks41     []string    `json:"nfs41_blocks,omitempty"` // per server: its NFSv4.1 WRITE and READ blocks
}

// blockSizes describes a WRITE and a READ block size.
func blockSizes(w, r int) string {
	if w == r {
		return fmt.Sprintf("%d KiB", w>>10)
	}
	return fmt.Sprintf("%d KiB WRITEs, %d KiB READs", w>>10, r>>10)
}

func (h *harness) nfsSuiteRun() (*suiteResult, error) {
	raw := &nfsRaw{Versions: h.nfsVersions}
	err := h.nfsRun(raw)
	return h.nfsReport(raw), err
}

func (h *harness) nfsRun(raw *nfsRaw) error {
	base := filepath.Join(h.mnt.Dir, "nfs")
	if err := os.MkdirAll(base, 0o755); err != nil {
		return err
	}
	defer os.RemoveAll(base)
	eps := map[string]nfsTarget{}
	ep, stopG, err := h.startGanesha(base, raw)
	if err != nil {
		raw.GaneshaError = err.Error()
		h.logf("nfs: nfs-ganesha cannot run (%v): measuring efsd alone", err)
	} else {
		defer stopG()
		eps[nfsGanesha] = ep
	}
	ep, s, err := h.startEfsdNFS(base)
	if s != nil {
		defer s.stop()
	}
	if err != nil {
		return fmt.Errorf("efsd: %w", err)
	}
	eps[nfsEfsd] = ep
	if h.nfsWants(nfsV41) {
		for name, e := range eps {
			ctx, cancel := context.WithTimeout(h.ctx, nfsReadyLimit)
			t0 := time.Now()
			err := nfs4load.WaitReady(ctx, e.v4, "")
			cancel()
			if err != nil {
				return fmt.Errorf("%s: NFSv4.1: %w", name, err)
			}
			h.logf("  %s takes NFSv4.1 opens (waited %.1fs)", name, time.Since(t0).Seconds())
			w, r, err := nfs4load.Blocks(h.ctx, e.v4)
			if err != nil {
				return fmt.Errorf("%s: NFSv4.1: %w", name, err)
			}
			raw.Blocks41 = append(raw.Blocks41, fmt.Sprintf("%s %s", name, blockSizes(w, r)))
		}
	}
	files, big, _ := h.nfsSizes()
	tarball := ""
	if !h.nfsWants(nfsV3) {
		raw.UntarError = "NFSv3 not run (--nfs-versions)"
	} else if h.fuseNFS == "" {
		raw.UntarError = "no fuse-nfs binary (build it as ../shared/tools/README.md says; put it on PATH or pass --fuse-nfs)"
	} else if tarball, err = h.untarTarball(files); err != nil {
		return err
	}
	for rep := range h.reps {
		order := []string{nfsEfsd, nfsGanesha}
		if rep%2 == 1 {
			order[0], order[1] = order[1], order[0]
		}
		for _, name := range order {
			e, ok := eps[name]
			if !ok {
				continue
			}
			if err := h.check(); err != nil {
				return err
			}
			if h.nfsWants(nfsV3) {
				if err := h.nfsWorkloadsOn(raw, rep, name, e.v3); err != nil {
					return fmt.Errorf("%s, rep %d: %w", name, rep, err)
				}
			}
			if tarball != "" {
				if err := h.untarThrough(raw, rep, name, e.v3, tarball, files); err != nil {
					return fmt.Errorf("%s, rep %d: untar: %w", name, rep, err)
				}
			}
			if h.nfsWants(nfsV41) {
				if err := h.nfs41WorkloadsOn(raw, rep, name, e); err != nil {
					return fmt.Errorf("%s, rep %d, NFSv4.1: %w", name, rep, err)
				}
			}
		}
		if tarball != "" {
			local := filepath.Join(base, fmt.Sprintf("local-untar-%d", rep))
			if err := os.MkdirAll(local, 0o755); err != nil {
				return err
			}
			res, err := h.runCmd(10*time.Minute, "tar", "-xf", tarball, "-C", local)
			if err != nil {
				return err
			}
			raw.LocalUntar = append(raw.LocalUntar, res.Wall)
			h.logf("  local untar of %d files: %.3fs", files, res.Wall)
		}
		// The disk's durable bandwidth, in the same run.
		out := filepath.Join(base, "dd.out")
		res, err := h.runCmd(5*time.Minute, "dd", "if=/dev/zero", "of="+out, "bs=1M", fmt.Sprintf("count=%d", big>>20), "conv=fsync")
		os.Remove(out)
		if err != nil {
			return fmt.Errorf("dd: %w", err)
		}
		raw.DiskMBps = append(raw.DiskMBps, float64(big)/1e6/res.Wall)
		h.logf("  dd conv=fsync of %d MiB: %.0f MB/s", big>>20, raw.DiskMBps[len(raw.DiskMBps)-1])
	}
	return nil
}

// nfsWorkloadsOn runs every workload once on e, in a directory of its own.
func (h *harness) nfsWorkloadsOn(raw *nfsRaw, rep int, server string, e nfsload.Endpoint) error {
	files, big, reads := h.nfsSizes()
	dir := fmt.Sprintf("r%d", rep)
	small, bigName := dir+"/small", dir+"/big"
	if err := nfsload.Setup(e, small); err != nil {
		return err
	}
	add := func(key string, r nfsload.Result, err error) error {
		if err != nil {
			return fmt.Errorf("%s: %w", key, err)
		}
		raw.Samples = append(raw.Samples, nfsSample{Rep: rep, Server: server, Version: nfsV3, Workload: key, Wall: r.Wall.Seconds(), Ops: r.Ops, Bytes: r.Bytes})
		h.logf("  %s %s: %d in %.3fs (%.0f/s, %.1f MB/s)", server, key, r.Ops, r.Wall.Seconds(), r.PerSecond(), r.MBps())
		return nil
	}
	r, err := nfsload.CreateFiles(e, small, files, 4096, nfsConns)
	if err := add("create", r, err); err != nil {
		return err
	}
	r, err = nfsload.WriteFile(e, bigName, big, nfsConns)
	if err := add("seqwrite", r, err); err != nil {
		return err
	}
	r, err = nfsload.ReadFile(e, bigName, big, nfsConns)
	if err := add("seqread", r, err); err != nil {
		return err
	}
	r, err = nfsload.ReadRandom(e, bigName, big, reads, nfsConns)
	if err := add("randread", r, err); err != nil {
		return err
	}
	r, names, err := nfsload.ListDir(e, small)
	if err == nil && len(names) != files {
		err = fmt.Errorf("listed %d names, made %d files", len(names), files)
	}
	if err := add("readdirplus", r, err); err != nil {
		return err
	}
	r, err = nfsload.Getattrs(e, small, names, nfsConns)
	if err := add("getattr", r, err); err != nil {
		return err
	}
	r, err = nfsload.RenameAll(e, small, names, ".r", nfsConns)
	if err := add("rename", r, err); err != nil {
		return err
	}
	for i := range names {
		names[i] += ".r"
	}
	r, err = nfsload.RemoveAll(e, small, names, nfsConns)
	if err := add("remove", r, err); err != nil {
		return err
	}
	_, err = nfsload.RemoveAll(e, dir, []string{"big"}, 1)
	return err
}

// nfs41WorkloadsOn runs every NFSv4.1 workload once on e, in a directory
// of its own, with nfs4load: the NFSv3 workloads' sizes and connections.
func (h *harness) nfs41WorkloadsOn(raw *nfsRaw, rep int, server string, t nfsTarget) error {
	files, big, reads := h.nfsSizes()
	ctx, e := h.ctx, t.v4
	dir := fmt.Sprintf("r%d-v41", rep)
	small, bigName := dir+"/small", dir+"/big"
	if err := nfs4load.Setup(ctx, e, small); err != nil {
		return err
	}
	// Each workload of the first repetition at efsd is profiled with
	// --nfs-profile: the profile starts with it, and add waits for it.
	var profiled func()
	profile := func(key string) {
		if t.admin != "" && rep == 0 && key != "" {
			profiled = h.nfsProfileOf(t.admin, "nfs41-"+key)
		}
	}
	profile("create")
	add := func(key string, r nfs4load.Result, err error) error {
		if profiled != nil {
			profiled()
			profiled = nil
		}
		if err != nil {
			return fmt.Errorf("%s: %w", key, err)
		}
		defer profile(nextNFS41[key])
		raw.Samples = append(raw.Samples, nfsSample{Rep: rep, Server: server, Version: nfsV41, Workload: key, Wall: r.Wall.Seconds(), Ops: r.Ops, Bytes: r.Bytes})
		h.logf("  %s NFSv4.1 %s: %d in %.3fs (%.0f/s, %.1f MB/s)", server, key, r.Ops, r.Wall.Seconds(), r.PerSecond(), r.MBps())
		return nil
	}
	r, err := nfs4load.CreateFiles(ctx, e, small, files, 4096, nfsConns)
	if err := add("create", r, err); err != nil {
		return err
	}
	r, err = nfs4load.WriteFile(ctx, e, bigName, big, nfsConns)
	if err := add("seqwrite", r, err); err != nil {
		return err
	}
	r, err = nfs4load.ReadFile(ctx, e, bigName, big, nfsConns)
	if err := add("seqread", r, err); err != nil {
		return err
	}
	r, err = nfs4load.ReadRandom(ctx, e, bigName, big, reads, nfsConns)
	if err := add("randread", r, err); err != nil {
		return err
	}
	r, names, err := nfs4load.ListDir(ctx, e, small, 4096)
	if err == nil && len(names) != files {
		err = fmt.Errorf("listed %d names, made %d files", len(names), files)
	}
	if err := add("readdirplus", r, err); err != nil {
		return err
	}
	r, err = nfs4load.Getattrs(ctx, e, small, names, 4096, nfsConns)
	if err := add("getattr", r, err); err != nil {
		return err
	}
	r, err = nfs4load.RenameAll(ctx, e, small, names, ".r", nfsConns)
	if err := add("rename", r, err); err != nil {
		return err
	}
	for i := range names {
		names[i] += ".r"
	}
	r, err = nfs4load.RemoveAll(ctx, e, small, names, nfsConns)
	if err := add("remove", r, err); err != nil {
		return err
	}
	_, err = nfs4load.RemoveAll(ctx, e, dir, []string{"big"}, 1)
	return err
}

// nextNFS41 is the NFSv4.1 workload after each, to profile it.
var nextNFS41 = map[string]string{"create": "seqwrite", "seqwrite": "seqread", "seqread": "randread", "randread": "readdirplus",
	"readdirplus": "getattr", "getattr": "rename", "rename": "remove"}

// nfsProfileOf starts a CPU profile of efsd (its admin listener at admin)
// for --nfs-profile's duration into the run's logs directory, named after
// what is measured; wait waits for it. Go's profiler samples only CPU
// in use, so a profile longer than the workload is that workload's.
func (h *harness) nfsProfileOf(admin, name string) (wait func()) {
	done := make(chan struct{})
	go func() {
		defer close(done)
		url := fmt.Sprintf("http://%s/debug/pprof/profile?seconds=%d", admin, int(h.nfsProfile.Seconds()))
		path := filepath.Join(h.work, "logs", "efsd-"+name+".pprof")
		if err := fetchTo(url, path); err != nil {
			h.logf("  profile %s: %v", path, err)
			return
		}
		h.logf("  CPU profile of efsd: %s", path)
	}()
	// The profile has begun once the request is in; give it a moment.
	time.Sleep(50 * time.Millisecond)
	return func() { <-done }
}

// nfsWants reports whether --nfs-versions asks for version.
func (h *harness) nfsWants(version string) bool { return slices.Contains(h.nfsVersions, version) }

// untarTarball writes a tar of files files of 4 KiB in 100 directories
// (as tree (a) of the replication suite) into the scratch directory.
func (h *harness) untarTarball(files int) (string, error) {
	src := filepath.Join(h.mnt.Dir, "nfs", "untar-src")
	if err := trees.Build(src, trees.SmallFiles("untar", files, 4096, 100), buildWorkers); err != nil {
		return "", err
	}
	defer os.RemoveAll(src)
	tarball := filepath.Join(h.work, "untar.tar")
	if _, err := h.runCmd(5*time.Minute, "tar", "-cf", tarball, "-C", src, "."); err != nil {
		return "", err
	}
	return tarball, nil
}

// untarThrough mounts e with fuse-nfs and untars tarball into it, timed
// from tar's start to its exit.
func (h *harness) untarThrough(raw *nfsRaw, rep int, server string, e nfsload.Endpoint, tarball string, files int) error {
	dir := fmt.Sprintf("r%d/untar", rep)
	if err := nfsload.Setup(e, dir); err != nil {
		return err
	}
	mnt := filepath.Join(h.work, "fuse-"+server)
	if err := os.MkdirAll(mnt, 0o755); err != nil {
		return err
	}
	nfsHost, nfsPort, _ := net.SplitHostPort(e.NFS)
	_, mountPort, _ := net.SplitHostPort(e.Mount)
	url := fmt.Sprintf("nfs://%s%s?version=3&nfsport=%s&mountport=%s", nfsHost, e.Export, nfsPort, mountPort)
	h.record(h.fuseNFS + " -n 'nfs://HOST/EXPORT?version=3&nfsport=PORT&mountport=PORT' -m MOUNTPOINT   # then tar -xf TARBALL -C MOUNTPOINT/DIR; umount MOUNTPOINT")
	// fuse-nfs forks into the background once mounted; it ends when the
	// mount point is unmounted, and is then stopped by its PID if not.
	if _, err := h.runCmd(time.Minute, h.fuseNFS, "-n", url, "-m", mnt); err != nil {
		return err
	}
	defer func() {
		pids := fusePIDs(mnt)
		_, _ = h.runCmd(time.Minute, "umount", mnt)
		for _, pid := range pids {
			if p, err := os.FindProcess(pid); err == nil {
				_ = p.Signal(syscall.SIGTERM)
			}
		}
	}()
	if err := h.poll(30*time.Second, 20*time.Millisecond, "fuse-nfs mounted at "+mnt, func() (bool, error) {
		b, err := os.ReadFile("/proc/self/mounts")
		return err == nil && strings.Contains(string(b), " "+mnt+" "), err
	}); err != nil {
		return err
	}
	res, err := h.runCmd(30*time.Minute, "tar", "-xf", tarball, "-C", filepath.Join(mnt, dir))
	if err != nil {
		return err
	}
	raw.Samples = append(raw.Samples, nfsSample{Rep: rep, Server: server, Workload: "untar", Wall: res.Wall, Ops: int64(files), Bytes: int64(files) * 4096})
	h.logf("  %s untar through fuse-nfs: %d files in %.3fs", server, files, res.Wall)
	return nil
}

// fusePIDs finds the fuse-nfs daemons serving the mount point mnt (a
// directory of this run's own): the processes whose arguments name it.
func fusePIDs(mnt string) []int {
	var pids []int
	ents, _ := os.ReadDir("/proc")
	for _, en := range ents {
		pid, err := strconv.Atoi(en.Name())
		if err != nil {
			continue
		}
		b, err := os.ReadFile(filepath.Join("/proc", en.Name(), "cmdline"))
		if err != nil {
			continue
		}
		args := strings.Split(string(b), "\x00")
		for i := 0; i+1 < len(args); i++ {
			if (args[i] == "-m" || args[i] == "--mountpoint") && args[i+1] == mnt {
				pids = append(pids, pid)
			}
		}
	}
	return pids
}

// startGanesha starts nfs-ganesha (and rpcbind, which it needs, unless one
// runs) exporting a directory of base over NFSv3 and NFSv4.1 on free
// loopback ports.
func (h *harness) startGanesha(base string, raw *nfsRaw) (nfsTarget, func(), error) {
	bin, err := exec.LookPath("ganesha.nfsd")
	if err != nil {
		return nfsTarget{}, nil, errors.New("nfs-ganesha is not installed (apt-get install nfs-ganesha nfs-ganesha-vfs rpcbind)")
	}
	if v, err := exec.Command(bin, "-v").CombinedOutput(); err == nil {
		raw.Ganesha = strings.TrimSpace(strings.SplitN(string(v), "\n", 2)[0])
	}
	var stops []func()
	stop := func() {
		for i := len(stops) - 1; i >= 0; i-- {
			stops[i]()
		}
	}
	// ganesha registers its programs with the portmapper and exits without one.
	if c, err := net.DialTimeout("tcp", "127.0.0.1:111", time.Second); err == nil {
		c.Close()
	} else {
		rb, err := exec.LookPath("rpcbind")
		if err != nil {
			return nfsTarget{}, nil, errors.New("rpcbind is not installed (apt-get install rpcbind)")
		}
		p, err := procs.Start(rb, filepath.Join(h.work, "logs", "rpcbind.log"), nil, "-f", "-w")
		if err != nil {
			return nfsTarget{}, nil, fmt.Errorf("rpcbind: %w", err)
		}
		stops = append(stops, func() { p.Stop(5 * time.Second) })
		if err := h.poll(10*time.Second, 20*time.Millisecond, "rpcbind listening", func() (bool, error) {
			c, err := net.DialTimeout("tcp", "127.0.0.1:111", time.Second)
			if err == nil {
				c.Close()
			}
			return err == nil, nil
		}); err != nil {
			stop()
			return nfsTarget{}, nil, err
		}
	}
	var ports [4]int
	for i := range ports {
		if ports[i], err = freePort(); err != nil {
			stop()
			return nfsTarget{}, nil, err
		}
	}
	export := filepath.Join(base, "ganesha-export")
	recovery := filepath.Join(h.work, "ganesha-recovery")
	for _, d := range []string{export, recovery} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			stop()
			return nfsTarget{}, nil, err
		}
	}
	conf := fmt.Sprintf(`# written by efsbench for the nfs suite
NFS_CORE_PARAM {
	Protocols = 3, 4;
	NFS_Port = %d;
	MNT_Port = %d;
	NLM_Port = %d;
	Rquota_Port = %d;
	Bind_addr = 127.0.0.1;
	Enable_NLM = false;
	Enable_RQUOTA = false;
}
NFSV4 {
	Minor_Versions = 1;
	RecoveryBackend = fs;
	RecoveryRoot = %s;
	Only_Numeric_Owners = true;
}
NFS_KRB5 { Active_krb5 = false; }
EXPORT {
	Export_Id = 1;
	Path = %s;
	Pseudo = %s;
	Access_Type = RW;
	Squash = No_Root_Squash;
	Protocols = 3, 4;
	Transports = TCP;
	SecType = sys;
	FSAL { Name = VFS; }
}
LOG { Default_Log_Level = WARN; }
`, ports[0], ports[1], ports[2], ports[3], recovery, export, ganeshaPseudo)
	confPath := filepath.Join(h.work, "ganesha.conf")
	if err := os.WriteFile(confPath, []byte(conf), 0o644); err != nil {
		stop()
		return nfsTarget{}, nil, err
	}
	args := []string{"-F", "-f", confPath, "-L", filepath.Join(h.work, "logs", "ganesha.log"), "-p", filepath.Join(h.work, "ganesha.pid")}
	h.record(bin + " " + strings.Join(args, " ") + "   # config: NFSv3 and NFSv4.1 over TCP, FSAL_VFS export of a directory on the same file system as efsd's data at pseudo path " + ganeshaPseudo + ", no root squash, no delegations (the default), an empty recovery directory of its own")
	p, err := procs.Start(bin, filepath.Join(h.work, "logs", "ganesha.out"), nil, args...)
	if err != nil {
		stop()
		return nfsTarget{}, nil, fmt.Errorf("ganesha: %w", err)
	}
	stops = append(stops, func() { p.Stop(15 * time.Second) })
	e := nfsload.Endpoint{NFS: "127.0.0.1:" + strconv.Itoa(ports[0]), Mount: "127.0.0.1:" + strconv.Itoa(ports[1]), Export: export}
	if err := h.waitNFS(e, p); err != nil {
		stop()
		return nfsTarget{}, nil, fmt.Errorf("ganesha: %w (log: %s)", err, filepath.Join(h.work, "logs"))
	}
	h.logf("  started nfs-ganesha (pid %d): NFS %s, MOUNT %s, export %s (NFSv4: %s)", p.PID, e.NFS, e.Mount, export, ganeshaPseudo)
	return nfsTarget{v3: e, v4: nfs4load.Endpoint{Addr: e.NFS, Path: ganeshaPseudo}}, stop, nil
}

// ganeshaPseudo is the export's NFSv4 path.
const ganeshaPseudo = "/export"

// waitNFS waits until e can be mounted.
func (h *harness) waitNFS(e nfsload.Endpoint, p *procs.Proc) error {
	return h.poll(60*time.Second, 50*time.Millisecond, "NFS at "+e.NFS, func() (bool, error) {
		if p != nil && p.Exited() {
			return false, errors.New("exited during start-up")
		}
		c, err := nfsload.Connect(e)
		if err != nil {
			return false, nil
		}
		c.Close()
		return true, nil
	})
}

// startEfsdNFS starts efsd with its NFS port free, makes a file system
// and a mount target, and returns the mount target's endpoints (NFSv3 and
// NFSv4.1 on the same port; NFSv4's root is the file system's).
func (h *harness) startEfsdNFS(base string) (nfsTarget, *server, error) {
	port, err := freePort()
	if err != nil {
		return nfsTarget{}, nil, err
	}
	cfg := map[string]any{"nfsPort": port}
	admin := ""
	if h.nfsProfile > 0 {
		p, err := freePort()
		if err != nil {
			return nfsTarget{}, nil, err
		}
		admin = fmt.Sprintf("127.0.0.1:%d", p)
		cfg["adminListen"], cfg["adminProfiling"] = admin, true
	}
	s, err := h.startConfigured("nfs-efsd", filepath.Join(base, "efsd"), region, cfg)
	if err != nil {
		return nfsTarget{}, nil, err
	}
	id, err := h.createFS(s, "nfs-bench")
	if err != nil {
		return nfsTarget{}, s, err
	}
	ec := ec2.New(ec2.Options{BaseEndpoint: aws.String(s.url), Region: region, RetryMaxAttempts: 1,
		HTTPClient: sdkhttp.New(),
		Credentials: aws.CredentialsProviderFunc(func(context.Context) (aws.Credentials, error) {
			return aws.Credentials{AccessKeyID: devKey, SecretAccessKey: devSecret}, nil
		})})
	sn, err := ec.DescribeSubnets(h.ctx, &ec2.DescribeSubnetsInput{})
	if err != nil || len(sn.Subnets) == 0 {
		return nfsTarget{}, s, fmt.Errorf("describe subnets: %v", err)
	}
	c := s.client(region)
	mt, err := c.CreateMountTarget(h.ctx, &efs.CreateMountTargetInput{FileSystemId: &id, SubnetId: sn.Subnets[0].SubnetId})
	if err != nil {
		return nfsTarget{}, s, fmt.Errorf("create mount target: %w", err)
	}
	if err := h.poll(30*time.Second, 20*time.Millisecond, "mount target available", func() (bool, error) {
		out, err := c.DescribeMountTargets(h.ctx, &efs.DescribeMountTargetsInput{MountTargetId: mt.MountTargetId})
		if err != nil {
			return false, err
		}
		return out.MountTargets[0].LifeCycleState == types.LifeCycleStateAvailable, nil
	}); err != nil {
		return nfsTarget{}, s, err
	}
	addr := net.JoinHostPort(*mt.IpAddress, strconv.Itoa(port))
	e := nfsload.Endpoint{NFS: addr, Mount: addr, Export: "/"}
	if err := h.waitNFS(e, s.proc); err != nil {
		return nfsTarget{}, s, err
	}
	h.logf("  efsd mount target %s of %s: NFS and MOUNT at %s", *mt.MountTargetId, id, addr)
	return nfsTarget{v3: e, v4: nfs4load.Endpoint{Addr: addr}, admin: admin}, s, nil
}

func (h *harness) nfsReport(raw *nfsRaw) *suiteResult {
	files, big, _ := h.nfsSizes()
	res := &suiteResult{raw: raw}
	sec := &res.section
	sec.Title = "6. NFS data plane: efsd's mount target vs nfs-ganesha"
	ganesha := raw.Ganesha
	if ganesha == "" {
		ganesha = "nfs-ganesha"
	}
	sec.Intro = []string{
		fmt.Sprintf("One efsd (a file system with a mount target; NFSv3, MOUNT and NFSv4.1 on one port) and %s with FSAL_VFS exporting a directory "+
			"over NFSv3 and NFSv4.1 (pseudo path %s, no delegations; its grace period after start ends at once, since its recovery directory, "+
			"new for the run, names no client, and both servers are checked to take NFSv4 opens before anything is measured), "+
			"both keeping their files on the dedicated file system (below), started and stopped by PID by the harness. "+
			"Each version's workloads run in a directory of their own per repetition, NFSv3's first; repetitions "+
			"alternate which server goes first.", ganesha, ganeshaPseudo),
		fmt.Sprintf("**NFSv3.** Both servers are driven by the same load generator (`bench/internal/nfsload`, go-nfs-client) as root (AUTH_SYS 0/0), over %d TCP connections "+
			"at once (go-nfs-client makes one call at a time per connection). Calls are made as a Linux client makes them: files are created UNCHECKED; data is "+
			"written UNSTABLE in blocks of the server's preferred size (FSINFO wtpref, at most 1 MiB) and committed once; "+
			"a file's create, write and close is CREATE, WRITE, COMMIT.", nfsConns),
		fmt.Sprintf("Workloads, in this order: %d files of 4 KiB created; one file of %d MiB written sequentially (each connection a "+
			"contiguous quarter), timed until its COMMIT answered; read back sequentially; 4 KiB reads at random aligned offsets; "+
			"the directory listed with READDIRPLUS (go-nfs-client pages through it on one connection); each entry looked up and "+
			"GETATTRed; each file renamed in place; each removed. The disk's durable bandwidth is measured in the same run "+
			"(`dd if=/dev/zero bs=1M count=%d conv=fsync`, once per repetition). Then, with a fuse-nfs binary (libnfs, NFSv3; "+
			"built from ../shared/tools/), a tar of %d files of 4 KiB in 100 directories is unpacked through a FUSE mount of each "+
			"server, timed from tar's start to its exit, and unpacked on the local file system for comparison.", files, big>>20, big>>20, files),
	}
	if raw.GaneshaError != "" {
		sec.Notes = append(sec.Notes, "nfs-ganesha was not measured: "+raw.GaneshaError+".")
	}
	num := stats.Num
	// rows adds a version's workloads to tbl with their goals, and
	// returns efsd's sequential write.
	rows := func(version string, tbl *report.Table) stats.Summary {
		summ := func(server string, w nfsWorkload) stats.Summary {
			var xs []float64
			for _, s := range raw.Samples {
				v := s.Version
				if v == "" {
					v = nfsV3
				}
				if s.Server == server && v == version && s.Workload == w.Key {
					xs = append(xs, s.rate(w.MB))
				}
			}
			return stats.Summarize(xs)
		}
		var seqWrite stats.Summary
		for _, w := range h.nfsWorkloads(version) {
			e, g := summ(nfsEfsd, w), summ(nfsGanesha, w)
			if w.Key == "seqwrite" {
				seqWrite = e
			}
			ratio := stats.Ratio(e.Median, g.Median)
			goal := report.Goal{Suite: nfsSuite, Goal: "NFSv" + version + " " + w.Name + ": ≥ 1.0× nfs-ganesha's throughput"}
			switch {
			case !e.Valid() || !g.Valid():
				goal.Status, goal.Measured, goal.Note = report.NotMeasured, "efsd "+e.Format(num)+" "+w.Unit, "nfs-ganesha has no sample"
			default:
				goal.Measured = fmt.Sprintf("%s× (efsd %s %s, nfs-ganesha %s)", stats.Num(ratio), num(e.Median), w.Unit, num(g.Median))
				goal.Status, goal.Note = report.Status(ratio >= 1), missBy(ratio, 1, true)
			}
			res.goals = append(res.goals, goal)
			tbl.Rows = append(tbl.Rows, []string{w.Name + " (" + w.Unit + ")", e.Format(num), g.Format(num), stats.Num(ratio) + "×", goal.Status})
		}
		return seqWrite
	}
	header := []string{"Workload", "efsd", nfsGanesha, "efsd ÷ ganesha", "Goal"}
	disk := stats.Summarize(raw.DiskMBps)
	if h.nfsWants(nfsV3) {
		tbl := report.Table{Title: "NFSv3: throughput (median of the repetitions, range in brackets)", Header: header}
		seqWrite := rows(nfsV3, &tbl)
		dr := stats.Ratio(seqWrite.Median, disk.Median)
		dg := report.Goal{Suite: nfsSuite, Goal: fmt.Sprintf("NFSv3 sequential write of %d MiB: ≥ 80%% of the disk's durable bandwidth (dd conv=fsync)", big>>20),
			Measured: fmt.Sprintf("%s of dd (efsd %s MB/s, dd %s MB/s)", pct(dr), num(seqWrite.Median), num(disk.Median))}
		dg.Status, dg.Note = report.Status(dr >= 0.8), missBy(dr, 0.8, true)
		if !seqWrite.Valid() || !disk.Valid() {
			dg.Status, dg.Note = report.NotMeasured, "no sample"
		}
		var untar []float64
		for _, x := range raw.Samples {
			if x.Server == nfsEfsd && x.Workload == "untar" {
				untar = append(untar, x.Wall)
			}
		}
		eu, lu := stats.Summarize(untar), stats.Summarize(raw.LocalUntar)
		ur := stats.Ratio(eu.Median, lu.Median)
		ug := report.Goal{Suite: nfsSuite, Goal: fmt.Sprintf("untar of %d small files through NFS (fuse-nfs) ≤ 5× the local untar", files),
			Measured: fmt.Sprintf("%s× (efsd %s, local %s)", stats.Num(ur), stats.Seconds(eu.Median), stats.Seconds(lu.Median))}
		ug.Status, ug.Note = report.Status(ur <= 5), missBy(ur, 5, false)
		if !eu.Valid() || !lu.Valid() {
			ug.Status, ug.Measured, ug.Note = report.NotMeasured, "", raw.UntarError
		}
		res.goals = append(res.goals, dg, ug)
		tbl.Rows = append(tbl.Rows, []string{"dd conv=fsync (MB/s): the disk's durable bandwidth", disk.Format(num), "", "", ""},
			[]string{"efsd's sequential write ÷ dd", pct(dr), "", "", dg.Status},
			[]string{"local untar of the same tar (s)", lu.Format(stats.Seconds), "", "", ""},
			[]string{"efsd's untar through fuse-nfs ÷ the local untar", stats.Num(ur) + "×", "", "", ug.Status})
		sec.Tables = append(sec.Tables, tbl)
	}
	if h.nfsWants(nfsV41) {
		tbl := report.Table{Title: "NFSv4.1: throughput (median of the repetitions, range in brackets)", Header: header}
		seqWrite := rows(nfsV41, &tbl)
		tbl.Rows = append(tbl.Rows, []string{"efsd's NFSv4.1 sequential write ÷ dd (for information)", pct(stats.Ratio(seqWrite.Median, disk.Median)), "", "", ""})
		tbl.Notes = []string{
			fmt.Sprintf("The NFSv4.1 load generator (`bench/internal/nfs4load`, on the project's test client `internal/efstest/nfs4client`) "+
				"drives both servers alike, as root (AUTH_SYS 0/0), over %d TCP connections at once, each with its own client ID and session "+
				"(EXCHANGE_ID, CREATE_SESSION, RECLAIM_COMPLETE) and one call at a time (slot 0), as the NFSv3 rows. Every call is the COMPOUND "+
				"a Linux NFSv4.1 client sends, behind a SEQUENCE: a create is PUTFH OPEN (UNCHECKED4, CLAIM_NULL) GETFH ACCESS GETATTR, "+
				"then PUTFH WRITE (UNSTABLE4) GETATTR, PUTFH COMMIT, and PUTFH CLOSE GETATTR (Linux would send a small file's only WRITE "+
				"FILE_SYNC at close, without COMMIT; it is UNSTABLE and COMMIT here, as in the NFSv3 rows); WRITEs and READs are in "+
				"blocks of the server's maxwrite and maxread, at most 1 MiB and what the session carries; each connection OPENs the "+
				"file it reads or writes; the listing is READDIR asking what Linux asks for a readdirplus (rdattr_error, file handle, "+
				"type, change, size, fsid, fileid, mode, numlinks, owner, group, rawdev, space used, times, mounted_on_fileid), its "+
				"count doubling from 4 KiB up to the read size as Linux's does, on one connection; a stat of a name is one PUTFH LOOKUP "+
				"GETFH GETATTR; a rename PUTFH SAVEFH PUTFH RENAME; a remove PUTFH REMOVE. What is read is checked: every byte of "+
				"every READ (the big file's content does not repeat with a power-of-two period), and the type and size of every "+
				"entry listed or looked up; COMMIT's write verifier must be the WRITEs'. The same sizes as NFSv3, in a directory "+
				"of their own. No untar: the FUSE clients at hand (libnfs 4.0 under fuse-nfs) speak NFSv4.0 only and cannot send "+
				"an NFSv4 WRITE above about 3.9 KB, and no kernel client can be mounted here.", nfsConns),
		}
		if len(raw.Blocks41) > 0 {
			slices.Sort(raw.Blocks41)
			tbl.Notes = append(tbl.Notes, "Blocks of the WRITEs and READs: "+strings.Join(raw.Blocks41, "; ")+".")
		}
		sec.Tables = append(sec.Tables, tbl)
	}
	return res
}

func pct(r float64) string { return fmt.Sprintf("%.0f%%", 100*r) }
