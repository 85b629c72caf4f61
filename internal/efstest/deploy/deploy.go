// Package deploy runs real efsd processes for tests that need more than one
// deployment on a machine (replication between deployments, kill -9): each
// Deployment is the built efsd binary with a data directory, config file,
// API port and NFS port of its own. Proxy puts an in-process toxiproxy
// between a client and a deployment (or between two deployments) to add
// latency, cap bandwidth, cut connections, partition and reset; KillSchedule
// picks reproducible random moments to kill -9 a deployment; Connect makes
// two deployments peers (issue #10), optionally through a Proxy. Everything
// listens on loopback only.
package deploy

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/efs"

	"github.com/efsd/efsd/internal/api"
	"github.com/efsd/efsd/internal/efstest"
	"github.com/efsd/efsd/internal/efstest/ports"
)

// binary is the efsd binary built once per test binary.
var binary struct {
	once sync.Once
	dir  string
	path string
	err  error
}

// Main runs a package's tests and then removes the efsd binary they built;
// call it from TestMain. Without it the binary stays in the temporary
// directory.
func Main(m *testing.M) {
	code := m.Run()
	if binary.dir != "" {
		os.RemoveAll(binary.dir)
	}
	os.Exit(code)
}

// Binary builds cmd/efsd once per test binary and returns its path.
// EFSD_DEPLOY_RACE=1 builds it with the race detector. Short tests skip
// (saying so), as building and running processes is not short.
func Binary(t testing.TB) string {
	t.Helper()
	if testing.Short() {
		t.Skip("deploy: builds and runs efsd processes; not run with -short")
	}
	binary.once.Do(func() {
		binary.dir, binary.err = os.MkdirTemp("", "efsd-deploy-")
		if binary.err != nil {
			return
		}
		binary.path = filepath.Join(binary.dir, "efsd")
		args := []string{"build", "-o", binary.path}
		if os.Getenv("EFSD_DEPLOY_RACE") == "1" {
			args = append(args, "-race")
		}
		args = append(args, "github.com/efsd/efsd/cmd/efsd")
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
		defer cancel()
		if out, err := exec.CommandContext(ctx, "go", args...).CombinedOutput(); err != nil {
			binary.err = fmt.Errorf("build efsd: %w\n%s", err, out)
		}
	})
	if binary.err != nil {
		t.Fatal(binary.err)
	}
	return binary.path
}

// Config describes a deployment. The zero value serves every region to
// efstest.AccountA and efstest.AccountB.
type Config struct {
	// Name tells deployments apart in logs and failure messages.
	Name string
	// Regions the deployment serves; empty serves every region.
	Regions []string
	// Accounts with their keys; empty means efstest.AccountA and AccountB.
	Accounts []api.Credential
	// Settings adds or overrides keys of the config file ("transitionDelay",
	// "replicationRescanInterval"); the peer keys are Connect's.
	Settings map[string]any
}

// Deployment is one efsd process and the state it keeps between restarts.
type Deployment struct {
	Name       string
	DataDir    string
	ConfigPath string
	LogPath    string
	// URL of the API, e.g. http://127.0.0.1:40123; fixed across restarts.
	URL     string
	APIAddr string
	NFSPort int
	// AdminAddr serves /healthz, /readyz and /metrics (adminListen).
	AdminAddr string
	// PeerAddr is where the deployment accepts replication traffic from
	// its peers once Connect has set peerListen to it; chosen free like
	// the other ports, fixed across restarts.
	PeerAddr string
	Regions  []string
	Accounts []api.Credential

	t    testing.TB
	bin  string
	dir  string
	file map[string]any

	mu   sync.Mutex
	cmd  *exec.Cmd
	done chan struct{} // closed when the running process has exited
	err  error         // its exit status
	runs int
}

// Start starts a deployment with fresh directories and free ports and
// waits until its API listens. It is killed when the test ends; if the
// test failed, the tail of its log is printed.
func Start(t testing.TB, c Config) *Deployment {
	t.Helper()
	d := New(t, c)
	// A free port can be taken by another process between choosing it and
	// efsd binding it; nobody has seen this deployment's ports yet, so
	// choose again a few times.
	var err error
	for attempt := 0; attempt < 3; attempt++ {
		if err = d.start(); err == nil || !strings.Contains(err.Error(), "address already in use") {
			break
		}
		d.choosePorts()
		if err := d.writeConfig(); err != nil {
			t.Fatal(err)
		}
	}
	if err != nil {
		t.Fatalf("start %s: %v", d.Name, err)
	}
	return d
}

// New prepares a deployment — directories, ports, config file — without
// starting it, so that its URL can be handed to a proxy or a peer's config
// before it runs. Start it with Restart.
func New(t testing.TB, c Config) *Deployment {
	t.Helper()
	bin := Binary(t)
	if c.Name == "" {
		c.Name = "efsd"
	}
	if len(c.Accounts) == 0 {
		c.Accounts = []api.Credential{efstest.AccountA, efstest.AccountB}
	}
	dir := t.TempDir()
	d := &Deployment{
		Name: c.Name, DataDir: filepath.Join(dir, "data"), ConfigPath: filepath.Join(dir, "efsd.json"),
		LogPath: filepath.Join(dir, "efsd.log"), Regions: c.Regions, Accounts: c.Accounts, t: t, bin: bin, dir: dir,
	}
	t.Cleanup(func() {
		if d.Running() {
			d.Kill()
		}
		if t.Failed() && d.runs > 0 {
			t.Logf("deployment %s log (%s), last lines:\n%s", d.Name, d.LogPath, tail(d.LogPath, 60))
		}
	})
	d.choosePorts()
	d.file = configFile(d, c)
	if err := d.writeConfig(); err != nil {
		t.Fatal(err)
	}
	return d
}

func (d *Deployment) choosePorts() {
	d.APIAddr = fmt.Sprintf("127.0.0.1:%d", ports.Free(d.t))
	d.NFSPort = ports.Free(d.t)
	d.URL = "http://" + d.APIAddr
	d.AdminAddr = fmt.Sprintf("127.0.0.1:%d", ports.Free(d.t))
	d.PeerAddr = fmt.Sprintf("127.0.0.1:%d", ports.Free(d.t))
	if d.file != nil {
		d.file["listen"], d.file["nfsPort"], d.file["adminListen"] = d.APIAddr, d.NFSPort, d.AdminAddr
		if _, ok := d.file["peerListen"]; ok {
			d.file["peerListen"] = d.PeerAddr
		}
	}
}

// Configure changes keys of the config file; the change takes effect at
// the next Restart. listen, dataDir, nfsPort, adminListen and peerListen
// are the harness's (Connect sets peerListen).
func (d *Deployment) Configure(settings map[string]any) {
	d.t.Helper()
	for k, v := range settings {
		switch k {
		case "listen", "dataDir", "nfsPort", "adminListen", "peerListen":
			d.t.Fatalf("deploy: %s is chosen by the harness", k)
		}
		d.file[k] = v
	}
	if err := d.writeConfig(); err != nil {
		d.t.Fatal(err)
	}
}

func configFile(d *Deployment, c Config) map[string]any {
	var accounts []map[string]any
	for _, a := range c.Accounts {
		accounts = append(accounts, map[string]any{"id": a.Account,
			"credentials": []map[string]string{{"accessKeyId": a.AccessKeyID, "secretAccessKey": a.SecretAccessKey}}})
	}
	f := map[string]any{
		"listen":          d.APIAddr,
		"dataDir":         d.DataDir,
		"nfsPort":         d.NFSPort,
		"adminListen":     d.AdminAddr,
		"accounts":        accounts,
		"transitionDelay": "50ms",
		"meterInterval":   "100ms",
		"logLevel":        "debug",
	}
	if len(c.Regions) > 0 {
		f["regions"] = c.Regions
	}
	for k, v := range c.Settings {
		f[k] = v
	}
	return f
}

func (d *Deployment) writeConfig() error {
	b, err := json.MarshalIndent(d.file, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(d.ConfigPath, b, 0o600)
}

// readyWriter appends the process's output to its log and reports the
// first "listening on" line.
type readyWriter struct {
	f     *os.File
	mu    sync.Mutex
	line  []byte
	ready chan struct{}
	seen  bool
}

func (w *readyWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if !w.seen {
		w.line = append(w.line, p...)
		if bytes.Contains(w.line, []byte("efsd listening on ")) {
			w.seen = true
			close(w.ready)
			w.line = nil
		} else if len(w.line) > 64<<10 {
			w.line = w.line[len(w.line)-1024:]
		}
	}
	return w.f.Write(p)
}

// start runs the process and waits for it to listen or exit.
func (d *Deployment) start() error {
	f, err := os.OpenFile(d.LogPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return err
	}
	d.runs++
	fmt.Fprintf(f, "---- %s run %d at %s ----\n", d.Name, d.runs, time.Now().UTC().Format(time.RFC3339Nano))
	w := &readyWriter{f: f, ready: make(chan struct{})}
	cmd := exec.Command(d.bin, "--config", d.ConfigPath)
	cmd.Stdout, cmd.Stderr = w, w
	if err := cmd.Start(); err != nil {
		f.Close()
		return err
	}
	done := make(chan struct{})
	d.mu.Lock()
	d.cmd, d.done, d.err = cmd, done, nil
	d.mu.Unlock()
	go func() {
		err := cmd.Wait()
		f.Close()
		d.mu.Lock()
		d.err = err
		d.mu.Unlock()
		close(done)
	}()
	select {
	case <-w.ready:
		return nil
	case <-done:
		d.mu.Lock()
		d.cmd = nil
		d.mu.Unlock()
		return fmt.Errorf("efsd exited before listening (%v):\n%s", d.exitErr(), tail(d.LogPath, 20))
	case <-time.After(60 * time.Second):
		d.Kill()
		return fmt.Errorf("efsd did not listen within 60s:\n%s", tail(d.LogPath, 20))
	}
}

func (d *Deployment) exitErr() error {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.err
}

// PID is the running process's ID, 0 when none runs.
func (d *Deployment) PID() int {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.cmd == nil {
		return 0
	}
	return d.cmd.Process.Pid
}

// Running reports whether the process is up (started and not exited).
func (d *Deployment) Running() bool {
	d.mu.Lock()
	cmd, done := d.cmd, d.done
	d.mu.Unlock()
	if cmd == nil {
		return false
	}
	select {
	case <-done:
		return false
	default:
		return true
	}
}

// signal sends sig and waits up to wait for the process to exit; it
// returns the exit error and whether it exited in time.
func (d *Deployment) signal(sig syscall.Signal, wait time.Duration) (error, bool) {
	d.mu.Lock()
	cmd, done := d.cmd, d.done
	d.mu.Unlock()
	if cmd == nil {
		return nil, true
	}
	cmd.Process.Signal(sig)
	select {
	case <-done:
	case <-time.After(wait):
		return nil, false
	}
	d.mu.Lock()
	d.cmd = nil
	err := d.err
	d.mu.Unlock()
	return err, true
}

// Stop sends SIGTERM and waits for a clean exit (status 0); a process that
// does not exit within 30s is killed and the test fails.
func (d *Deployment) Stop() {
	d.t.Helper()
	err, ok := d.signal(syscall.SIGTERM, 30*time.Second)
	if !ok {
		d.Kill()
		d.t.Fatalf("%s did not exit within 30s of SIGTERM", d.Name)
	}
	if err != nil {
		d.t.Fatalf("%s exited with %v after SIGTERM:\n%s", d.Name, err, tail(d.LogPath, 20))
	}
}

// Kill sends SIGKILL (kill -9) and waits until the process is gone.
// A process that had already exited on its own fails the test: a crash
// must not pass for a kill.
func (d *Deployment) Kill() {
	d.t.Helper()
	if !d.Running() && d.PID() == 0 {
		return
	}
	err, ok := d.signal(syscall.SIGKILL, 30*time.Second)
	if !ok {
		d.t.Fatalf("%s survived SIGKILL for 30s", d.Name)
	}
	var ee *exec.ExitError
	if !errors.As(err, &ee) || !ee.Sys().(syscall.WaitStatus).Signaled() || ee.Sys().(syscall.WaitStatus).Signal() != syscall.SIGKILL {
		d.t.Errorf("%s had exited on its own (%v) before kill -9:\n%s", d.Name, err, tail(d.LogPath, 20))
	}
}

// Restart starts the process (again) on the same data directory, config
// and ports; a running process is stopped with SIGTERM first.
func (d *Deployment) Restart() {
	d.t.Helper()
	if d.Running() {
		d.Stop()
	}
	// The API port was free a moment ago; a kill -9 leaves no listener
	// behind, but retry briefly in case the kernel is still releasing it.
	deadline := time.Now().Add(10 * time.Second)
	for {
		err := d.start()
		if err == nil {
			return
		}
		if !strings.Contains(err.Error(), "address already in use") || time.Now().After(deadline) {
			d.t.Fatalf("restart %s: %v", d.Name, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// Client returns an EFS client of this deployment's API signing as cred
// in region, SDK retries off (see efstest.NewClient).
func (d *Deployment) Client(cred api.Credential, region string, opts ...func(*efs.Options)) *efs.Client {
	return efstest.NewClient(d.URL, cred, region, opts...)
}

// VolumePath is where the file system id of account in region keeps its
// files on disk.
func (d *Deployment) VolumePath(account, region, id string) string {
	return filepath.Join(d.DataDir, "volumes", account, region, id)
}

// Subnet is one subnet of an account's default VPC, as `efsd network`
// prints it.
type Subnet struct {
	SubnetId         string
	VpcId            string
	AvailabilityZone string
	CidrBlock        string
}

// Network is the default VPC of an account in a region as `efsd network`
// prints it.
type Network struct {
	Account string
	Region  string
	NfsPort int
	Vpcs    []struct {
		VpcId     string
		CidrBlock string
		IsDefault bool
	}
	Subnets []Subnet
}

// Network runs `efsd network` on the deployment's data directory (it
// works while the deployment runs) for account in region.
func (d *Deployment) Network(account, region string) Network {
	d.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var stdout, stderr bytes.Buffer
	cmd := exec.CommandContext(ctx, d.bin, "network", "--config", d.ConfigPath, "--account", account, "--region", region)
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		d.t.Fatalf("%s: efsd network: %v\n%s", d.Name, err, stderr.String())
	}
	var n Network
	if err := json.Unmarshal(stdout.Bytes(), &n); err != nil {
		d.t.Fatalf("%s: efsd network printed %q: %v", d.Name, stdout.String(), err)
	}
	return n
}

// tail returns the last n lines of the file at path.
func tail(path string, n int) string {
	f, err := os.Open(path)
	if err != nil {
		return err.Error()
	}
	defer f.Close()
	var lines []string
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		lines = append(lines, sc.Text())
		if len(lines) > n {
			lines = lines[1:]
		}
	}
	return strings.Join(lines, "\n")
}

var errRPC = errors.New("nfs: not an accepted RPC reply")

// NFSNull sends the NFSv3 NULL procedure to addr over TCP and checks that
// an accepted, successful reply comes back within timeout.
func NFSNull(addr string, timeout time.Duration) error {
	c, err := net.DialTimeout("tcp", addr, timeout)
	if err != nil {
		return err
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(timeout))
	const xid = 0x5eed
	// xid, CALL, rpcvers 2, prog NFS, vers 3, proc NULL, AUTH_NULL cred and verifier.
	words := []uint32{xid, 0, 2, 100003, 3, 0, 0, 0, 0, 0}
	msg := make([]byte, 4+4*len(words))
	be32(msg, 0x80000000|uint32(4*len(words)))
	for i, w := range words {
		be32(msg[4+4*i:], w)
	}
	if _, err := c.Write(msg); err != nil {
		return err
	}
	var hdr [4]byte
	if _, err := io.ReadFull(c, hdr[:]); err != nil {
		return fmt.Errorf("read record mark: %w", err)
	}
	n := int(get32(hdr[:]) & 0x7fffffff)
	if n < 24 || n > 1024 {
		return fmt.Errorf("%w: record of %d bytes", errRPC, n)
	}
	body := make([]byte, n)
	if _, err := io.ReadFull(c, body); err != nil {
		return fmt.Errorf("read reply: %w", err)
	}
	// xid, REPLY(1), MSG_ACCEPTED(0), verifier flavor, verifier length (0), accept_stat SUCCESS(0)
	if get32(body) != xid || get32(body[4:]) != 1 || get32(body[8:]) != 0 || get32(body[16:]) != 0 || get32(body[20:]) != 0 {
		return fmt.Errorf("%w: % x", errRPC, body)
	}
	return nil
}

func be32(b []byte, v uint32) { b[0], b[1], b[2], b[3] = byte(v>>24), byte(v>>16), byte(v>>8), byte(v) }
func get32(b []byte) uint32 {
	return uint32(b[0])<<24 | uint32(b[1])<<16 | uint32(b[2])<<8 | uint32(b[3])
}
