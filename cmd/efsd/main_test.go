package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime/debug"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/efs"
	"github.com/aws/aws-sdk-go-v2/service/efs/types"

	"github.com/efsd/efsd/internal/api"
	"github.com/efsd/efsd/internal/efstest"
	"github.com/efsd/efsd/internal/efstest/deploy"
	"github.com/efsd/efsd/internal/gctune"
)

func TestHelpDocumentsEverySetting(t *testing.T) {
	var out bytes.Buffer
	m := &Main{Stdout: &out, Stderr: &out, Getenv: func(string) string { return "" }}
	if err := m.Run(context.Background(), []string{"--help"}); err == nil {
		t.Fatal("--help returned no error")
	}
	for _, s := range []string{"--listen", "--data-dir", "--config", "EFSD_LISTEN", "EFSD_DATA_DIR", "EFSD_CONFIG", "--log-format", "--log-level"} {
		if !strings.Contains(out.String(), s) {
			t.Errorf("help does not mention %s", s)
		}
	}
}

func TestRefusesNonLoopbackWithDevCredential(t *testing.T) {
	var out bytes.Buffer
	m := &Main{Stdout: &out, Stderr: &out, Getenv: func(string) string { return "" }}
	err := m.Run(context.Background(), []string{"--listen", "0.0.0.0:0", "--data-dir", t.TempDir()})
	if err == nil || !strings.Contains(err.Error(), "refusing") {
		t.Fatalf("got %v, want refusal", err)
	}
}

func TestConfigFileAccounts(t *testing.T) {
	dir := t.TempDir()
	cfgPath := filepath.Join(dir, "efsd.json")
	os.WriteFile(cfgPath, []byte(`{"accounts":[{"id":"123456789012","credentials":[{"accessKeyId":"AKIACONFIG","secretAccessKey":"s3cr3t"}]}],"transitionDelay":"10ms"}`), 0o600)
	var out bytes.Buffer
	ctx, cancel := context.WithCancel(context.Background())
	ready := make(chan string, 1)
	m := &Main{Stdout: &out, Stderr: &out, Getenv: func(k string) string {
		if k == "EFSD_CONFIG" {
			return cfgPath
		}
		return ""
	}, Ready: func(addr string) { ready <- addr }}
	done := make(chan error, 1)
	go func() { done <- m.Run(ctx, []string{"--listen", "127.0.0.1:0", "--data-dir", dir}) }()
	var addr string
	select {
	case addr = <-ready:
	case err := <-done:
		t.Fatalf("efsd exited: %v\n%s", err, out.String())
	case <-time.After(30 * time.Second):
		t.Fatal("efsd did not start")
	}
	c := client("http://"+addr, "AKIACONFIG", "s3cr3t")
	fs, err := c.CreateFileSystem(ctx, &efs.CreateFileSystemInput{CreationToken: aws.String("cfg")})
	if err != nil || aws.ToString(fs.OwnerId) != "123456789012" {
		t.Fatalf("create: %v %+v", err, fs)
	}
	// The development credential is off once accounts are configured.
	if _, err := client("http://"+addr, "test", "test").DescribeFileSystems(ctx, &efs.DescribeFileSystemsInput{}); err == nil {
		t.Fatal("development credential accepted with a config file")
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if strings.Contains(out.String(), "s3cr3t") {
		t.Fatal("secret written to the log")
	}
}

func client(url, key, secret string) *efs.Client {
	return efstest.NewClient(url, api.Credential{AccessKeyID: key, SecretAccessKey: secret}, "us-east-1")
}

// buildBinary returns the efsd binary, built once for all of this
// package's tests.
func buildBinary(t *testing.T) string {
	t.Helper()
	return deploy.Binary(t)
}

func TestMain(m *testing.M) { deploy.Main(m) }

// startBinary runs the built efsd and returns its process and API URL.
func startBinary(t *testing.T, bin, dataDir string, args ...string) (*exec.Cmd, string) {
	t.Helper()
	cmd := exec.Command(bin, append([]string{"--listen", "127.0.0.1:0", "--data-dir", dataDir}, args...)...)
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	urls := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stdout)
		re := regexp.MustCompile(`listening on (http://\S+)`)
		for sc.Scan() {
			if m := re.FindStringSubmatch(sc.Text()); m != nil {
				urls <- m[1]
			}
		}
	}()
	select {
	case u := <-urls:
		return cmd, u
	case <-time.After(30 * time.Second):
		t.Fatal("efsd did not print its address")
	}
	return nil, ""
}

// TestKill9LosesNothingAcknowledged kills the real binary with SIGKILL
// right after a burst of acknowledged writes and checks every one of them
// after a restart.
func TestKill9LosesNothingAcknowledged(t *testing.T) {
	bin := buildBinary(t)
	dataDir := t.TempDir()
	cmd, url := startBinary(t, bin, dataDir)
	ctx := context.Background()
	c := client(url, "test", "test")
	var ids []string
	for i := range 20 {
		fs, err := c.CreateFileSystem(ctx, &efs.CreateFileSystemInput{CreationToken: aws.String("k" + string(rune('a'+i))),
			Tags: []types.Tag{{Key: aws.String("n"), Value: aws.String(string(rune('a' + i)))}}})
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, *fs.FileSystemId)
	}
	if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	cmd.Wait()

	_, url = startBinary(t, bin, dataDir)
	c = client(url, "test", "test")
	for i, id := range ids {
		out, err := c.DescribeFileSystems(ctx, &efs.DescribeFileSystemsInput{FileSystemId: aws.String(id)})
		if err != nil {
			t.Fatalf("%s lost after kill -9: %v", id, err)
		}
		if got := out.FileSystems[0].Tags; len(got) != 1 || *got[0].Value != string(rune('a'+i)) {
			t.Fatalf("%s tags after kill -9: %+v", id, got)
		}
	}
	// Pending creations finish after the restart.
	deadline := time.Now().Add(10 * time.Second)
	for _, id := range ids {
		for {
			out, err := c.DescribeFileSystems(ctx, &efs.DescribeFileSystemsInput{FileSystemId: aws.String(id)})
			if err == nil && out.FileSystems[0].LifeCycleState == types.LifeCycleStateAvailable {
				if _, err := os.Stat(filepath.Join(dataDir, "volumes", "000000000000", "us-east-1", id)); err != nil {
					t.Fatalf("%s available without its data directory: %v", id, err)
				}
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s never became available after restart", id)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
}

// TestKill9MidReplicationResumes kills the real binary with SIGKILL while
// the first replication pass is copying, restarts it, and checks that the
// configuration resumes, converges, and did not recopy files that had
// already landed.
func TestKill9MidReplicationResumes(t *testing.T) {
	bin := buildBinary(t)
	dataDir := t.TempDir()
	cmd, url := startBinary(t, bin, dataDir)
	ctx := context.Background()
	c := client(url, "test", "test")
	src, err := c.CreateFileSystem(ctx, &efs.CreateFileSystemInput{CreationToken: aws.String("big"), Encrypted: aws.Bool(true)})
	if err != nil {
		t.Fatal(err)
	}
	vol := func(id string) string { return filepath.Join(dataDir, "volumes", "000000000000", "us-east-1", id) }
	waitFor(t, "source available", func() bool {
		out, err := c.DescribeFileSystems(ctx, &efs.DescribeFileSystemsInput{FileSystemId: src.FileSystemId})
		return err == nil && out.FileSystems[0].LifeCycleState == types.LifeCycleStateAvailable
	})
	srcDir := vol(*src.FileSystemId)
	const files = 4000
	for i := range files {
		dir := filepath.Join(srcDir, "d"+strconv.Itoa(i%40))
		os.MkdirAll(dir, 0o755)
		if err := os.WriteFile(filepath.Join(dir, "f"+strconv.Itoa(i)), bytes.Repeat([]byte{byte(i)}, 32<<10), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	rep, err := c.CreateReplicationConfiguration(ctx, &efs.CreateReplicationConfigurationInput{SourceFileSystemId: src.FileSystemId,
		Destinations: []types.DestinationToCreate{{Region: aws.String("us-east-1")}}})
	if err != nil {
		t.Fatal(err)
	}
	dstDir := vol(*rep.Destinations[0].FileSystemId)

	// Kill as soon as some files have landed.
	landed := func() map[string]uint64 {
		out := map[string]uint64{}
		filepath.WalkDir(dstDir, func(p string, d os.DirEntry, err error) error {
			if err == nil && d.Type().IsRegular() && !strings.HasPrefix(d.Name(), ".efsd-tmp") {
				var st syscall.Stat_t
				if syscall.Stat(p, &st) == nil {
					out[p] = st.Ino
				}
			}
			return nil
		})
		return out
	}
	var before map[string]uint64
	waitFor(t, "the first files to land", func() bool {
		before = landed()
		return len(before) >= 50
	})
	cmd.Process.Signal(syscall.SIGKILL)
	cmd.Wait()
	before = landed() // what is on disk at the moment of death
	if len(before) >= files {
		t.Skipf("the first pass finished (%d files) before the kill; nothing to resume", len(before))
	}
	_, url = startBinary(t, bin, dataDir)
	c = client(url, "test", "test")
	waitFor(t, "replication to complete after restart", func() bool {
		out, err := c.DescribeReplicationConfigurations(ctx, &efs.DescribeReplicationConfigurationsInput{FileSystemId: src.FileSystemId})
		if err != nil {
			t.Fatal(err)
		}
		d := out.Replications[0].Destinations[0]
		return d.Status == types.ReplicationStatusEnabled && d.LastReplicatedTimestamp != nil
	})
	if diff := efstest.TreeDiff(srcDir, dstDir); diff != "" {
		t.Fatalf("destination differs after resume: %s", diff)
	}
	recopied := 0
	after := landed()
	for p, ino := range before {
		if after[p] != ino {
			recopied++
		}
	}
	if recopied > 0 {
		t.Fatalf("%d of %d files that had landed before the kill were copied again", recopied, len(before))
	}
	t.Logf("killed with %d of %d files landed; none recopied", len(before), files)
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestNetworkCommand(t *testing.T) {
	dir := t.TempDir()
	var out bytes.Buffer
	m := &Main{Stdout: &out, Stderr: &out, Getenv: func(string) string { return "" }}
	if err := m.Run(context.Background(), []string{"network", "--data-dir", dir, "--region", "eu-west-1"}); err != nil {
		t.Fatalf("%v\n%s", err, out.String())
	}
	var n struct {
		Account, Region string
		NfsPort         int
		Subnets         []struct{ SubnetId, AvailabilityZone, CidrBlock string }
		SecurityGroups  []struct{ GroupId, GroupName string }
	}
	if err := json.Unmarshal(out.Bytes(), &n); err != nil {
		t.Fatalf("%v: %s", err, out.String())
	}
	if n.Account != "000000000000" || n.Region != "eu-west-1" || n.NfsPort != 2049 || len(n.Subnets) != 3 ||
		n.Subnets[0].AvailabilityZone != "eu-west-1a" || !strings.HasPrefix(n.Subnets[0].CidrBlock, "127.") ||
		len(n.SecurityGroups) != 1 || n.SecurityGroups[0].GroupName != "default" {
		t.Fatalf("network: %+v", n)
	}
	// The same IDs on every call: the network is stored.
	first := out.String()
	out.Reset()
	if err := m.Run(context.Background(), []string{"network", "--data-dir", dir, "--region", "eu-west-1"}); err != nil {
		t.Fatal(err)
	}
	if out.String() != first {
		t.Fatalf("network changed between calls:\n%s\n%s", first, out.String())
	}
}

// A config listing accounts without credentials left efsd with no
// credential, so it silently accepted the development one and did not say
// so. Such a config is now refused.
func TestRefusesAccountWithoutCredentials(t *testing.T) {
	dir := t.TempDir()
	cfgPath := filepath.Join(dir, "efsd.json")
	os.WriteFile(cfgPath, []byte(`{"accounts":[{"id":"123456789012","credentials":[]}]}`), 0o600)
	var out bytes.Buffer
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	m := &Main{Stdout: &out, Stderr: &out, Getenv: func(string) string { return "" },
		Ready: func(string) { cancel() }}
	err := m.Run(ctx, []string{"--config", cfgPath, "--listen", "127.0.0.1:0", "--data-dir", dir})
	if err == nil || !strings.Contains(err.Error(), "account 123456789012 lists no credentials") {
		t.Fatalf("got %v, want the account refused\n%s", err, out.String())
	}
}

func TestAPILimitKeys(t *testing.T) {
	dir := t.TempDir()
	write := func(s string) string {
		p := filepath.Join(dir, "efsd.json")
		os.WriteFile(p, []byte(s), 0o600)
		return p
	}
	fc, err := LoadFileConfig(write(`{"apiMaxConnections":50,"apiMaxConnectionsPerClient":5,"apiBodyMemoryMiB":8,"apiReadTimeout":"3s","apiIdleTimeout":"4s"}`))
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := fc.daemonConfig()
	if err != nil {
		t.Fatal(err)
	}
	l := cfg.APILimits
	if l.MaxConns != 50 || l.MaxConnsPerClient != 5 || l.BodyMemory != 8<<20 || l.ReadTimeout != 3*time.Second || l.IdleTimeout != 4*time.Second {
		t.Fatalf("limits %+v", l)
	}
	for _, bad := range []string{`{"apiMaxConnections":-1}`, `{"apiReadTimeout":"soon"}`, `{"apiBodyMemoryMiB":-2}`} {
		fc, err := LoadFileConfig(write(bad))
		if err == nil {
			_, err = fc.daemonConfig()
		}
		if err == nil {
			t.Errorf("%s accepted", bad)
		}
	}
}

// efsd tunes the collector's target unless the operator chose one.
func TestTuneGC(t *testing.T) {
	defer debug.SetGCPercent(debug.SetGCPercent(100))
	if tu := tuneGC(func(k string) string { return map[string]string{"GOGC": "50"}[k] }); tu != nil {
		tu.Stop()
		t.Errorf("GOGC=50 set: tuned anyway (to %d)", tu.Percent())
	}
	if got := debug.SetGCPercent(100); got != 100 {
		t.Errorf("with GOGC set the target became %d", got)
	}
	tu := tuneGC(func(string) string { return "" })
	if tu == nil {
		t.Fatal("GOGC unset: not tuned")
	}
	defer tu.Stop()
	if got := debug.SetGCPercent(tu.Percent()); got != tu.Percent() || got < gctune.MinPercent || got > gctune.MaxPercent {
		t.Errorf("GOGC unset: target %d (tuner %d), want %d–%d", got, tu.Percent(), gctune.MinPercent, gctune.MaxPercent)
	}
}
