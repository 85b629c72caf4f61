package main

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/service/efs"
	"github.com/aws/aws-sdk-go-v2/service/efs/types"

	"github.com/efsd/efsd/bench/internal/loadgen"
	"github.com/efsd/efsd/bench/internal/procs"
	"github.com/efsd/efsd/internal/sdkhttp"
)

// The development credential efsd accepts without accounts in its config.
const (
	devKey     = "test"
	devSecret  = "test"
	devAccount = "000000000000"
	region     = "us-east-1"
)

// account is a configured account and its one access key.
type account struct{ id, key, secret string }

var (
	accountA = account{"111111111111", "AKIAEFSATTACKA000001", "secret-of-account-a-0000000000000000000"}
	accountB = account{"222222222222", "AKIAEFSATTACKB000002", "secret-of-account-b-0000000000000000000"}
	devAcct  = account{devAccount, devKey, devSecret}
)

// efsdOpts is how one attack's efsd is started.
type efsdOpts struct {
	config map[string]any // config file keys; nfsPort is added
	nofile int            // RLIMIT_NOFILE (soft and hard); 0 leaves the inherited one
	uid    int            // run as this user and group; 0 runs as root
}

// instance is a running efsd.
type instance struct {
	h       *harness
	name    string
	proc    *procs.Proc
	url     string
	apiAddr string
	dataDir string
	config  string
	nfsPort int
	clients map[string]*efs.Client

	mu      sync.Mutex
	peakRSS int64
	stopMon chan struct{}
	monDone chan struct{}
}

func freePort() (int, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}

// prepare makes an attack's directory, data directory and config file
// (with a free, non-default NFS port), without starting efsd, so that
// `efsd network` can run first.
func (h *harness) prepare(name string, o efsdOpts) (*instance, error) {
	dir := filepath.Join(h.work, name)
	in := &instance{h: h, name: name, dataDir: filepath.Join(dir, "data"), config: filepath.Join(dir, "efsd.json"),
		clients: map[string]*efs.Client{}}
	if err := os.MkdirAll(in.dataDir, 0o700); err != nil {
		return nil, err
	}
	var err error
	if in.nfsPort, err = freePort(); err != nil {
		return nil, err
	}
	return in, in.writeConfig(o.config)
}

func (in *instance) writeConfig(cfg map[string]any) error {
	c := map[string]any{"nfsPort": in.nfsPort, "transitionDelay": "50ms"}
	for k, v := range cfg {
		c[k] = v
	}
	b, err := json.MarshalIndent(c, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(in.config, b, 0o644)
}

// network runs `efsd network` for an account in a region.
func (in *instance) network(acct, reg string) (*networkInfo, error) {
	ctx, cancel := context.WithTimeout(in.h.ctx, 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, in.h.efsd, "network", "--config", in.config, "--data-dir", in.dataDir, "--account", acct, "--region", reg)
	out, err := cmd.Output()
	if err != nil {
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			return nil, fmt.Errorf("efsd network: %v: %s", err, strings.TrimSpace(string(ee.Stderr)))
		}
		return nil, fmt.Errorf("efsd network: %w", err)
	}
	var n networkInfo
	if err := json.Unmarshal(out, &n); err != nil {
		return nil, fmt.Errorf("efsd network output: %w", err)
	}
	if len(n.Subnets) == 0 || len(n.Vpcs) == 0 {
		return nil, errors.New("efsd network: no VPC or subnet")
	}
	return &n, nil
}

// networkInfo is what `efsd network` prints.
type networkInfo struct {
	NfsPort int
	Vpcs    []struct{ VpcId, CidrBlock string }
	Subnets []struct{ SubnetId, CidrBlock, AvailabilityZone string }
}

// start starts efsd as prepared and waits for its API to answer.
func (in *instance) start(o efsdOpts) error {
	h := in.h
	port, err := freePort()
	if err != nil {
		return err
	}
	in.apiAddr = fmt.Sprintf("127.0.0.1:%d", port)
	in.url = "http://" + in.apiAddr
	args := []string{"--listen", in.apiAddr, "--data-dir", in.dataDir, "--config", in.config, "--log-format", "json"}
	bin := h.efsd
	if o.uid != 0 {
		if err := chownTree(filepath.Dir(in.dataDir), o.uid); err != nil {
			return err
		}
		id := strconv.Itoa(o.uid)
		args = append([]string{"--reuid=" + id, "--regid=" + id, "--clear-groups", "--", bin}, args...)
		bin = "setpriv"
	}
	if o.nofile > 0 {
		args = append([]string{fmt.Sprintf("--nofile=%d:%d", o.nofile, o.nofile), "--", bin}, args...)
		bin = "prlimit"
	}
	logPath := filepath.Join(filepath.Dir(in.dataDir), "efsd.log")
	p, err := procs.Start(bin, logPath, nil, args...)
	if err != nil {
		return err
	}
	in.proc = p
	logf("  started efsd (pid %d) API %s NFS port %d, log %s", p.PID, in.apiAddr, in.nfsPort, logPath)
	deadline := time.Now().Add(60 * time.Second)
	var last error
	for time.Now().Before(deadline) {
		if err := h.check(); err != nil {
			return err
		}
		if p.Exited() {
			return fmt.Errorf("efsd exited during start-up: %s", tail(logPath))
		}
		if _, last = in.describe(in.client(firstAccount(o), region)); last == nil {
			in.monitor()
			return nil
		}
		time.Sleep(20 * time.Millisecond)
	}
	return fmt.Errorf("efsd did not answer within 60s: %v", last)
}

func firstAccount(o efsdOpts) account {
	if accts, ok := o.config["accounts"].([]map[string]any); ok && len(accts) > 0 {
		for _, a := range []account{accountA, accountB} {
			if accts[0]["id"] == a.id {
				return a
			}
		}
	}
	return devAcct
}

// accountsConfig is the config file's accounts key for the given accounts.
func accountsConfig(as ...account) []map[string]any {
	var out []map[string]any
	for _, a := range as {
		out = append(out, map[string]any{"id": a.id, "credentials": []map[string]string{{"accessKeyId": a.key, "secretAccessKey": a.secret}}})
	}
	return out
}

func chownTree(dir string, uid int) error {
	return filepath.Walk(dir, func(p string, _ os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		return os.Lchown(p, uid, uid)
	})
}

// tail returns the last lines of a log, for an error message.
func tail(path string) string {
	b, _ := os.ReadFile(path)
	s := strings.TrimSpace(string(b))
	if len(s) > 600 {
		s = "…" + s[len(s)-600:]
	}
	return s
}

// startEfsd prepares and starts an attack's efsd.
func (h *harness) startEfsd(name string, o efsdOpts) (*instance, error) {
	in, err := h.prepare(name, o)
	if err != nil {
		return nil, err
	}
	return in, in.start(o)
}

// monitor samples efsd's resident memory every 100 ms until stop.
func (in *instance) monitor() {
	in.stopMon, in.monDone = make(chan struct{}), make(chan struct{})
	go func() {
		defer close(in.monDone)
		t := time.NewTicker(100 * time.Millisecond)
		defer t.Stop()
		for {
			if u, err := procs.ReadUsage(in.proc.PID); err == nil {
				in.mu.Lock()
				in.peakRSS = max(in.peakRSS, u.RSS, u.PeakRSS)
				in.mu.Unlock()
			}
			select {
			case <-in.stopMon:
				return
			case <-t.C:
			}
		}
	}()
}

// peak is the highest resident memory seen so far (VmRSS samples and VmHWM).
func (in *instance) peak() int64 {
	if u, err := procs.ReadUsage(in.proc.PID); err == nil {
		in.mu.Lock()
		in.peakRSS = max(in.peakRSS, u.RSS, u.PeakRSS)
		in.mu.Unlock()
	}
	in.mu.Lock()
	defer in.mu.Unlock()
	return in.peakRSS
}

// alive reports whether efsd is still running, and how it ended if not.
func (in *instance) alive() (bool, string) {
	if !in.proc.Exited() {
		return true, ""
	}
	return false, "efsd exited: " + tail(filepath.Join(filepath.Dir(in.dataDir), "efsd.log"))
}

func (in *instance) stop() {
	if in == nil || in.proc == nil {
		return
	}
	if in.stopMon != nil {
		close(in.stopMon)
		<-in.monDone
		in.stopMon = nil
	}
	if err := in.proc.Stop(10 * time.Second); err != nil {
		logf("  %v", err)
	}
}

func (in *instance) client(a account, reg string) *efs.Client {
	k := a.key + "/" + reg
	if c, ok := in.clients[k]; ok {
		return c
	}
	c := loadgen.Client(in.url, reg, a.key, a.secret)
	in.clients[k] = c
	return c
}

// normalSource is the normal API client's source address. The attackers
// connect from 127.0.0.1; the normal client is another host, as a real
// one would be, so that a server capping connections per client address
// can tell them apart.
const normalSource = "127.0.0.2"

// normalClient is an EFS client connecting from normalSource.
func (in *instance) normalClient(a account) *efs.Client {
	k := "normal/" + a.key
	if c, ok := in.clients[k]; ok {
		return c
	}
	hc := awshttp.NewBuildableClient().
		WithTimeout(30 * time.Second).
		WithTransportOptions(func(t *http.Transport) { t.Proxy = nil }).
		WithDialerOptions(func(d *net.Dialer) {
			d.Control = loadgen.LoopbackOnly
			d.LocalAddr = &net.TCPAddr{IP: net.ParseIP(normalSource)}
		})
	c := efs.New(efs.Options{
		BaseEndpoint: aws.String(in.url),
		Region:       region,
		Credentials: aws.CredentialsProviderFunc(func(context.Context) (aws.Credentials, error) {
			return aws.Credentials{AccessKeyID: a.key, SecretAccessKey: a.secret}, nil
		}),
		RetryMaxAttempts: 1,
		HTTPClient:       sdkhttp.Buffered(hc),
	})
	in.clients[k] = c
	return c
}

// describe is the normal client's call: one signed DescribeFileSystems,
// with its latency.
func (in *instance) describe(c *efs.Client) (time.Duration, error) {
	ctx, cancel := context.WithTimeout(in.h.ctx, 10*time.Second)
	defer cancel()
	t := time.Now()
	_, err := c.DescribeFileSystems(ctx, &efs.DescribeFileSystemsInput{MaxItems: aws.Int32(1)})
	return time.Since(t), err
}

// normalAPI retries the normal client's call until it succeeds or limit
// passes, and returns the time to the first success.
func (in *instance) normalAPI(a account, limit time.Duration) (time.Duration, error) {
	c := in.normalClient(a)
	t0 := time.Now()
	var last error
	for time.Since(t0) < limit {
		if err := in.h.check(); err != nil {
			return 0, err
		}
		if _, last = in.describe(c); last == nil {
			return time.Since(t0), nil
		}
		time.Sleep(200 * time.Millisecond)
	}
	return 0, fmt.Errorf("no API answer within %v: %v", limit, last)
}

// poll calls cond every interval until it is true, it fails with a
// non-retryable error, or limit passes; a harness failure ends it too.
func (h *harness) poll(limit, interval time.Duration, what string, cond func() (bool, error)) error {
	return procs.Poll(limit, interval, what, h.check, cond)
}

// createFS creates a file system and waits until it is available.
func (in *instance) createFS(c *efs.Client, token string) (string, error) {
	out, err := c.CreateFileSystem(in.h.ctx, &efs.CreateFileSystemInput{CreationToken: aws.String(token)})
	if err != nil {
		return "", fmt.Errorf("create file system: %w", err)
	}
	id := *out.FileSystemId
	return id, in.h.poll(30*time.Second, 20*time.Millisecond, "file system "+id+" available", func() (bool, error) {
		d, err := c.DescribeFileSystems(in.h.ctx, &efs.DescribeFileSystemsInput{FileSystemId: aws.String(id)})
		if err != nil {
			return false, err
		}
		return len(d.FileSystems) == 1 && d.FileSystems[0].LifeCycleState == types.LifeCycleStateAvailable, nil
	})
}

// mountTarget creates a mount target in subnet and returns its NFS
// address once it is available.
func (in *instance) mountTarget(c *efs.Client, fsID, subnet string, groups ...string) (string, string, error) {
	input := &efs.CreateMountTargetInput{FileSystemId: aws.String(fsID), SubnetId: aws.String(subnet)}
	if len(groups) > 0 {
		input.SecurityGroups = groups
	}
	out, err := c.CreateMountTarget(in.h.ctx, input)
	if err != nil {
		return "", "", fmt.Errorf("create mount target: %w", err)
	}
	err = in.mountTargetAvailable(c, *out.MountTargetId, 30*time.Second)
	return net.JoinHostPort(*out.IpAddress, strconv.Itoa(in.nfsPort)), *out.MountTargetId, err
}

func (in *instance) mountTargetAvailable(c *efs.Client, id string, limit time.Duration) error {
	return in.h.poll(limit, 50*time.Millisecond, "mount target "+id+" available", func() (bool, error) {
		ctx, cancel := context.WithTimeout(in.h.ctx, 10*time.Second)
		defer cancel()
		d, err := c.DescribeMountTargets(ctx, &efs.DescribeMountTargetsInput{MountTargetId: aws.String(id)})
		if err != nil {
			return false, err
		}
		return len(d.MountTargets) == 1 && d.MountTargets[0].LifeCycleState == types.LifeCycleStateAvailable, nil
	})
}

// volume is the directory of a file system's files.
func (in *instance) volume(acct, reg, fsID string) string {
	return filepath.Join(in.dataDir, "volumes", acct, reg, fsID)
}

// nfsTarget is a file system with a mount target and a known file, which
// the normal client mounts and reads from local, an address inside the
// VPC (the attackers connect from 127.0.0.1).
type nfsTarget struct {
	fsID, mtID, addr string
	local            string
	content          []byte
}

// insideVPC returns the last usable address of a VPC's range: inside it,
// and no mount target's (they take the first free addresses of subnets).
func insideVPC(cidr string) (string, *net.IPNet, error) {
	_, vpc, err := net.ParseCIDR(cidr)
	if err != nil || vpc.IP.To4() == nil {
		return "", nil, fmt.Errorf("VPC range %q: not an IPv4 range (%v)", cidr, err)
	}
	last := make(net.IP, 4)
	binary.BigEndian.PutUint32(last, binary.BigEndian.Uint32(vpc.IP.To4())|^binary.BigEndian.Uint32(net.IP(vpc.Mask).To4())-1)
	return last.String(), vpc, nil
}

const probeFile = "probe.txt"

// setupNFS creates a file system with a mount target in the account's
// startWithMount starts an attack's efsd and gives the development account
// a file system with a mount target in its default VPC.
func (h *harness) startWithMount(name string, o efsdOpts) (*instance, *nfsTarget, error) {
	in, err := h.startEfsd(name, o)
	if err != nil {
		return nil, nil, err
	}
	n, err := in.network(devAccount, region)
	if err == nil {
		var t *nfsTarget
		if t, err = in.setupNFS(devAcct, n); err == nil {
			return in, t, nil
		}
	}
	in.stop()
	return nil, nil, err
}

// first subnet and a file the normal client reads.
func (in *instance) setupNFS(a account, n *networkInfo) (*nfsTarget, error) {
	local, _, err := insideVPC(n.Vpcs[0].CidrBlock)
	if err != nil {
		return nil, err
	}
	c := in.client(a, region)
	fsID, err := in.createFS(c, "attack-nfs")
	if err != nil {
		return nil, err
	}
	t := &nfsTarget{fsID: fsID, local: local, content: []byte("a normal client reads this file over NFS\n")}
	if err := os.WriteFile(filepath.Join(in.volume(a.id, region, fsID), probeFile), t.content, 0o644); err != nil {
		return nil, err
	}
	t.addr, t.mtID, err = in.mountTarget(c, fsID, n.Subnets[0].SubnetId)
	return t, err
}

// normalNFS mounts the file system's root over NFSv3 and reads the probe
// file, as a normal client does, within limit; it returns the time taken.
func (t *nfsTarget) normalNFS(h *harness, limit time.Duration) (time.Duration, error) {
	t0 := time.Now()
	var last error
	for time.Since(t0) < limit {
		if err := h.check(); err != nil {
			return 0, err
		}
		if last = t.mountAndRead(t.local, min(limit-time.Since(t0)+time.Second, 10*time.Second)); last == nil {
			return time.Since(t0), nil
		}
		time.Sleep(200 * time.Millisecond)
	}
	return 0, fmt.Errorf("no NFS mount and read within %v: %v", limit, last)
}

func (t *nfsTarget) mountAndRead(local string, timeout time.Duration) error {
	c, err := dialRPC(t.addr, local, timeout)
	if err != nil {
		return err
	}
	defer c.Close()
	root, err := c.mount("/")
	if err != nil {
		return err
	}
	st, fh, err := c.lookup(root, probeFile)
	if err != nil {
		return err
	}
	if st != nfsOK {
		return fmt.Errorf("LOOKUP %s: %s", probeFile, nfsStatus(st))
	}
	st, data, err := c.read(fh, 0, 4096)
	if err != nil {
		return err
	}
	if st != nfsOK {
		return fmt.Errorf("READ %s: %s", probeFile, nfsStatus(st))
	}
	if string(data) != string(t.content) {
		return fmt.Errorf("READ %s returned %q", probeFile, data)
	}
	return nil
}

func mb(b int64) string { return fmt.Sprintf("%.0f MB", float64(b)/1e6) }

func ms(d time.Duration) string {
	if d < 10*time.Millisecond {
		return fmt.Sprintf("%.1f ms", float64(d)/1e6)
	}
	return d.Round(time.Millisecond).String()
}
