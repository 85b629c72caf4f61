package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/efs"
	"github.com/aws/aws-sdk-go-v2/service/efs/types"

	"github.com/efsd/efsd/bench/internal/loadgen"
	"github.com/efsd/efsd/bench/internal/procs"
)

// The development credential efsd accepts without a config file; moto and
// the trivial server accept anything.
const (
	devKey     = "test"
	devSecret  = "test"
	devAccount = "000000000000"
	region     = "us-east-1"
)

// server is a started API server.
type server struct {
	kind    string // efsd, moto, trivial
	proc    *procs.Proc
	url     string
	dataDir string        // efsd only
	startup time.Duration // exec to the first successful signed request
	clients map[string]*efs.Client
}

func (s *server) client(region string) *efs.Client {
	if c, ok := s.clients[region]; ok {
		return c
	}
	c := loadgen.Client(s.url, region, devKey, devSecret)
	s.clients[region] = c
	return c
}

// usage reads the server's CPU time and memory (zero if it has exited).
func (s *server) usage() procs.Usage {
	u, _ := procs.ReadUsage(s.proc.PID)
	return u
}

func (s *server) stop() error { return s.proc.Stop(15 * time.Second) }

func freePort() (int, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}

// startServer starts one of the API servers on a free loopback port and
// waits for its first successful signed request.
func (h *harness) startServer(kind, name, dataDir string, extra ...string) (*server, error) {
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	var bin string
	var args []string
	switch kind {
	case "efsd":
		bin = h.bin.efsd
		args = append([]string{"--listen", addr, "--data-dir", dataDir, "--log-format", "json"}, extra...)
		if h.quickConfig != "" && len(extra) > 0 { // the data suites
			args = append(args, "--config", h.quickConfig)
		}
	case "moto":
		if h.bin.moto == "" {
			return nil, errors.New("moto_server not found")
		}
		bin = h.bin.moto
		args = []string{"-H", "127.0.0.1", "-p", fmt.Sprint(port)}
	case "trivial":
		bin = h.bin.fixed
		args = []string{"-listen", addr}
	default:
		return nil, fmt.Errorf("unknown server %s", kind)
	}
	h.record(genericCommand(bin, args, port, dataDir))
	logPath := filepath.Join(h.work, "logs", name+".log")
	p, err := procs.Start(bin, logPath, nil, args...)
	if err != nil {
		return nil, err
	}
	s := &server{kind: kind, proc: p, url: "http://" + addr, dataDir: dataDir, clients: map[string]*efs.Client{}}
	h.logf("  started %s (pid %d) on %s, log %s", kind, p.PID, addr, logPath)
	if err := h.waitReady(s, region, 60*time.Second); err != nil {
		s.stop()
		return nil, fmt.Errorf("%s: %w (log: %s)", name, err, logPath)
	}
	return s, nil
}

// genericCommand renders a command line for the report with the port and
// per-repetition directories generalised.
func genericCommand(bin string, args []string, port int, dataDir string) string {
	line := bin + " " + strings.Join(args, " ")
	line = strings.ReplaceAll(line, fmt.Sprint(port), "PORT")
	if dataDir != "" {
		line = strings.ReplaceAll(line, dataDir, filepath.Join(filepath.Dir(dataDir), "DATA_DIR"))
	}
	return line
}

// waitReady polls with a signed DescribeFileSystems in region (one the
// server serves) every 2 ms until one succeeds, and records the time since
// exec.
func (h *harness) waitReady(s *server, region string, limit time.Duration) error {
	c := s.client(region)
	deadline := time.Now().Add(limit)
	var last error
	for time.Now().Before(deadline) {
		if err := h.check(); err != nil {
			return err
		}
		if s.proc.Exited() {
			return fmt.Errorf("exited during start-up: %v", last)
		}
		ctx, cancel := context.WithTimeout(h.ctx, 2*time.Second)
		_, err := c.DescribeFileSystems(ctx, &efs.DescribeFileSystemsInput{MaxItems: aws.Int32(1)})
		cancel()
		if err == nil {
			s.startup = time.Since(s.proc.Start)
			return nil
		}
		last = err
		time.Sleep(2 * time.Millisecond)
	}
	return fmt.Errorf("no successful request within %v: %v", limit, last)
}

// --- efsd data-suite helpers ---

func (s *server) volumeDir(id string) string { return s.volumeDirIn(region, id) }

// volumeDirIn is where efsd keeps the files of file system id of region.
func (s *server) volumeDirIn(region, id string) string {
	return filepath.Join(s.dataDir, "volumes", devAccount, region, id)
}

// createFS creates a file system and waits until it is available.
func (h *harness) createFS(s *server, token string) (string, error) {
	c := s.client(region)
	out, err := c.CreateFileSystem(h.ctx, &efs.CreateFileSystemInput{CreationToken: aws.String(token)})
	if err != nil {
		return "", fmt.Errorf("create file system: %w", err)
	}
	id := *out.FileSystemId
	return id, h.poll(30*time.Second, 20*time.Millisecond, "file system "+id+" available", func() (bool, error) {
		d, err := c.DescribeFileSystems(h.ctx, &efs.DescribeFileSystemsInput{FileSystemId: aws.String(id)})
		if err != nil {
			return false, err
		}
		return len(d.FileSystems) == 1 && d.FileSystems[0].LifeCycleState == types.LifeCycleStateAvailable, nil
	})
}

// deleteFS deletes a file system and waits until it is gone (efsd has
// removed its directory).
func (h *harness) deleteFS(s *server, id string) error {
	c := s.client(region)
	if _, err := c.DeleteFileSystem(h.ctx, &efs.DeleteFileSystemInput{FileSystemId: aws.String(id)}); err != nil {
		return fmt.Errorf("delete file system %s: %w", id, err)
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

// replicate creates a replication configuration to a new destination in
// the same region and returns the destination's ID.
func (h *harness) replicate(s *server, src string) (string, error) {
	out, err := s.client(region).CreateReplicationConfiguration(h.ctx, &efs.CreateReplicationConfigurationInput{
		SourceFileSystemId: aws.String(src),
		Destinations:       []types.DestinationToCreate{{Region: aws.String(region)}},
	})
	if err != nil {
		return "", fmt.Errorf("create replication configuration: %w", err)
	}
	return *out.Destinations[0].FileSystemId, nil
}

// unreplicate deletes the replication configuration of src and waits
// until it is gone.
func (h *harness) unreplicate(s *server, src string) error {
	c := s.client(region)
	if _, err := c.DeleteReplicationConfiguration(h.ctx, &efs.DeleteReplicationConfigurationInput{
		SourceFileSystemId: aws.String(src)}); err != nil {
		return fmt.Errorf("delete replication configuration: %w", err)
	}
	return h.poll(2*time.Minute, 20*time.Millisecond, "replication of "+src+" deleted", func() (bool, error) {
		_, err := c.DescribeReplicationConfigurations(h.ctx, &efs.DescribeReplicationConfigurationsInput{FileSystemId: aws.String(src)})
		var nf *types.ReplicationNotFound
		if errors.As(err, &nf) {
			return true, nil
		}
		return false, err
	})
}

// repState is the destination's state as DescribeReplicationConfigurations
// reports it.
type repState struct {
	Status  types.ReplicationStatus
	Message string
	LRT     time.Time // zero if none yet
}

func (h *harness) repState(s *server, src string) (repState, error) {
	out, err := s.client(region).DescribeReplicationConfigurations(h.ctx,
		&efs.DescribeReplicationConfigurationsInput{FileSystemId: aws.String(src)})
	if err != nil {
		return repState{}, err
	}
	if len(out.Replications) != 1 || len(out.Replications[0].Destinations) != 1 {
		return repState{}, errors.New("unexpected DescribeReplicationConfigurations shape")
	}
	d := out.Replications[0].Destinations[0]
	st := repState{Status: d.Status, Message: aws.ToString(d.StatusMessage)}
	if d.LastReplicatedTimestamp != nil {
		st.LRT = *d.LastReplicatedTimestamp
	}
	return st, nil
}

// covered is what waitCovered observed.
type covered struct {
	At        time.Time // when the poll saw ENABLED and LRT ≥ since
	EnabledAt time.Time // when ENABLED was first seen
	LRT       time.Time
	Polls     int
}

// waitCovered polls every interval until the destination is ENABLED and
// its LastReplicatedTimestamp is not before since (the API carries
// milliseconds, truncated, so since is truncated likewise: a pass that
// started after since always qualifies).
func (h *harness) waitCovered(s *server, src string, since time.Time, limit, interval time.Duration) (covered, error) {
	var cv covered
	want := since.Truncate(time.Millisecond)
	var last repState
	deadline := time.Now().Add(limit)
	for {
		if err := h.check(); err != nil {
			return cv, err
		}
		st, err := h.repState(s, src)
		now := time.Now()
		cv.Polls++
		if err == nil {
			last = st
			if st.Status == types.ReplicationStatusEnabled {
				if cv.EnabledAt.IsZero() {
					cv.EnabledAt = now
				}
				if !st.LRT.IsZero() && !st.LRT.Before(want) {
					cv.At, cv.LRT = now, st.LRT
					return cv, nil
				}
			}
		}
		if now.After(deadline) {
			return cv, fmt.Errorf("replication of %s not covering %s within %v (last status %s %q, LRT %s, err %v)",
				src, since.Format(time.RFC3339Nano), limit, last.Status, last.Message, last.LRT.Format(time.RFC3339Nano), err)
		}
		time.Sleep(interval)
	}
}

// poll calls cond every interval until it is true, it fails with a
// non-retryable error, or limit passes; a harness failure ends it too.
func (h *harness) poll(limit, interval time.Duration, what string, cond func() (bool, error)) error {
	return procs.Poll(limit, interval, what, h.check, cond)
}

// passRecord is one "replication pass" line of efsd's debug log.
type passRecord struct {
	End                    time.Time
	Duration               time.Duration // from the pass's start (its LastReplicatedTimestamp, to the nanosecond)
	Copied, Bytes, Deleted int64
}

// Start is when the pass started.
func (r passRecord) Start() time.Time { return r.End.Add(-r.Duration) }

// readPasses returns the replication pass lines of an efsd JSON log from
// byte offset off, and the offset after the last complete line.
func readPasses(logPath string, off int64) ([]passRecord, int64, error) {
	f, err := os.Open(logPath)
	if err != nil {
		return nil, off, err
	}
	defer f.Close()
	if _, err := f.Seek(off, 0); err != nil {
		return nil, off, err
	}
	var out []passRecord
	r := bufio.NewReaderSize(f, 1<<16)
	for {
		line, err := r.ReadBytes('\n')
		if err != nil {
			break // an incomplete last line is read next time
		}
		off += int64(len(line))
		var rec struct {
			Time    time.Time `json:"time"`
			Msg     string    `json:"msg"`
			Copied  int64     `json:"copied"`
			Bytes   int64     `json:"bytes"`
			Deleted int64     `json:"deleted"`
			Dur     int64     `json:"duration"` // nanoseconds (slog's JSON handler)
		}
		if json.Unmarshal(line, &rec) != nil || rec.Msg != "replication pass" {
			continue
		}
		out = append(out, passRecord{End: rec.Time, Duration: time.Duration(rec.Dur), Copied: rec.Copied, Bytes: rec.Bytes, Deleted: rec.Deleted})
	}
	return out, off, nil
}

func fileSize(p string) int64 {
	fi, err := os.Stat(p)
	if err != nil {
		return 0
	}
	return fi.Size()
}

// --- anchors: external commands ---

// cmdResult is one run of an external command.
type cmdResult struct {
	Wall   float64 `json:"wall_s"`
	CPU    float64 `json:"cpu_s"`
	MaxRSS int64   `json:"max_rss_bytes"`
}

// command records a command line and prepares it in a process group of its
// own, killed whole when ctx ends or the harness dies; its standard error
// is collected for error messages.
func (h *harness) command(ctx context.Context, name string, args ...string) (*exec.Cmd, *strings.Builder) {
	h.record(name + " " + strings.Join(args, " "))
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	stderr := new(strings.Builder)
	cmd.Stderr = stderr
	return cmd, stderr
}

// runCmdOutput runs a command like runCmd and returns its standard output.
func (h *harness) runCmdOutput(limit time.Duration, name string, args ...string) ([]byte, error) {
	ctx, cancel := context.WithTimeout(h.ctx, limit)
	defer cancel()
	cmd, stderr := h.command(ctx, name, args...)
	out, err := cmd.Output()
	if err != nil {
		return out, fmt.Errorf("%s: %v: %s", name, err, strings.TrimSpace(stderr.String()))
	}
	return out, nil
}

// runCmd runs a command to completion (killed, with its process group, if
// the harness's deadline or limit passes) and returns its wall time, its
// CPU time including the children it waited for, and the peak RSS of the
// largest of its processes (sampled from /proc every 20 ms).
func (h *harness) runCmd(limit time.Duration, name string, args ...string) (cmdResult, error) {
	ctx, cancel := context.WithTimeout(h.ctx, limit)
	defer cancel()
	cmd, stderr := h.command(ctx, name, args...)
	t0 := time.Now()
	if err := cmd.Start(); err != nil {
		return cmdResult{}, err
	}
	peak := procs.WatchTree(cmd.Process.Pid, 20*time.Millisecond)
	err := cmd.Wait()
	wall := time.Since(t0).Seconds()
	rss, _ := peak.Stop()
	if err != nil {
		return cmdResult{}, fmt.Errorf("%s %s: %v: %s", name, strings.Join(args, " "), err, strings.TrimSpace(stderr.String()))
	}
	return cmdResult{Wall: wall, CPU: procs.ChildCPU(cmd.ProcessState), MaxRSS: rss}, nil
}
