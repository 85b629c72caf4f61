// Package crossdeploy_test runs two efsd processes as peers (issue #10):
// deployment "a" serves us-east-1, "b" serves eu-west-1, and file systems
// of A are replicated to B over the peer link, sometimes through a proxy
// that adds faults. Every check goes through the EFS API with
// aws-sdk-go-v2 or looks at the file systems' directories on disk.
package crossdeploy_test

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/efs"
	"github.com/aws/aws-sdk-go-v2/service/efs/types"
	"github.com/aws/smithy-go"

	"github.com/efsd/efsd/internal/api"
	"github.com/efsd/efsd/internal/efstest"
	"github.com/efsd/efsd/internal/efstest/deploy"
)

func TestMain(m *testing.M) { deploy.Main(m) }

const (
	regionA = "us-east-1"
	regionB = "eu-west-1"
	// rescan is both deployments' replicationRescanInterval.
	rescan = time.Second
	// sentBytes counts chunk data a deployment sent to its peers.
	sentBytes = "efsd_replication_sent_bytes_total"
)

// pair is deployment a (us-east-1) and its peer b (eu-west-1), with
// clients of account A at both; px carries a's traffic to b when the pair
// was made proxied.
type pair struct {
	a, b   *deploy.Deployment
	px     *deploy.Proxy
	ca, cb *efs.Client
}

func newPair(t *testing.T, proxied bool) *pair {
	t.Helper()
	settings := map[string]any{"replicationRescanInterval": rescan.String(), "transitionDelay": "50ms"}
	p := &pair{
		a: deploy.New(t, deploy.Config{Name: "a", Regions: []string{regionA}, Settings: settings}),
		b: deploy.New(t, deploy.Config{Name: "b", Regions: []string{regionB}, Settings: settings}),
	}
	var o deploy.LinkOptions
	if proxied {
		p.px = deploy.NewProxy(t, p.b.PeerAddr)
		o.Proxy = p.px
	}
	deploy.Connect(t, p.a, p.b, o)
	p.ca = p.a.Client(efstest.AccountA, regionA)
	p.cb = p.b.Client(efstest.AccountA, regionB)
	return p
}

// ctx bounds one API call: a call that hangs fails the test rather than
// the package's timeout.
func ctx(t *testing.T) context.Context {
	c, cancel := context.WithTimeout(t.Context(), 60*time.Second)
	t.Cleanup(cancel)
	return c
}

// poll calls cond every interval until it returns true; past the deadline
// the test fails with what and the last state cond reported.
func poll(t *testing.T, timeout, interval time.Duration, what string, cond func() (bool, string)) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		ok, state := cond()
		if ok {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s; last: %s", timeout, what, state)
		}
		time.Sleep(interval)
	}
}

// apiError returns err's code and message, or fails if it is no API error.
func apiError(t *testing.T, err error) (string, string) {
	t.Helper()
	var ae smithy.APIError
	if !errors.As(err, &ae) {
		t.Fatalf("got %v, want an API error", err)
	}
	return ae.ErrorCode(), ae.ErrorMessage()
}

func wantCode(t *testing.T, err error, code string) string {
	t.Helper()
	if err == nil {
		t.Fatalf("call succeeded, want %s", code)
	}
	got, msg := apiError(t, err)
	if got != code {
		t.Fatalf("got %s (%s), want %s", got, msg, code)
	}
	return msg
}

// createFS creates a file system and waits until it is available.
func createFS(t *testing.T, c *efs.Client, token string) *types.FileSystemDescription {
	t.Helper()
	out, err := c.CreateFileSystem(ctx(t), &efs.CreateFileSystemInput{CreationToken: aws.String(token), Encrypted: aws.Bool(true)})
	if err != nil {
		t.Fatalf("create %s: %v", token, err)
	}
	return waitAvailable(t, c, *out.FileSystemId)
}

func waitAvailable(t *testing.T, c *efs.Client, id string) *types.FileSystemDescription {
	t.Helper()
	var fs *types.FileSystemDescription
	poll(t, 30*time.Second, 50*time.Millisecond, id+" available", func() (bool, string) {
		f, err := describeFS(t, c, id)
		if err != nil {
			return false, err.Error()
		}
		fs = f
		return f.LifeCycleState == types.LifeCycleStateAvailable, string(f.LifeCycleState)
	})
	return fs
}

func describeFS(t *testing.T, c *efs.Client, id string) (*types.FileSystemDescription, error) {
	out, err := c.DescribeFileSystems(ctx(t), &efs.DescribeFileSystemsInput{FileSystemId: aws.String(id)})
	if err != nil {
		return nil, err
	}
	if len(out.FileSystems) != 1 {
		return nil, fmt.Errorf("describe %s: %d file systems", id, len(out.FileSystems))
	}
	return &out.FileSystems[0], nil
}

func protection(t *testing.T, c *efs.Client, id string) types.ReplicationOverwriteProtection {
	t.Helper()
	fs, err := describeFS(t, c, id)
	if err != nil {
		t.Fatal(err)
	}
	return fs.FileSystemProtection.ReplicationOverwriteProtection
}

func setProtection(t *testing.T, c *efs.Client, id string, p types.ReplicationOverwriteProtection) {
	t.Helper()
	if _, err := c.UpdateFileSystemProtection(ctx(t), &efs.UpdateFileSystemProtectionInput{FileSystemId: aws.String(id), ReplicationOverwriteProtection: p}); err != nil {
		t.Fatalf("protection of %s to %s: %v", id, p, err)
	}
}

// replicate creates a configuration of src with one destination and
// returns the destination's file system ID.
func replicate(t *testing.T, c *efs.Client, src string, dst types.DestinationToCreate) string {
	t.Helper()
	out, err := c.CreateReplicationConfiguration(ctx(t), &efs.CreateReplicationConfigurationInput{
		SourceFileSystemId: aws.String(src), Destinations: []types.DestinationToCreate{dst}})
	if err != nil {
		t.Fatalf("create replication of %s to %s/%s: %v", src, aws.ToString(dst.Region), aws.ToString(dst.FileSystemId), err)
	}
	if len(out.Destinations) != 1 || out.Destinations[0].FileSystemId == nil {
		t.Fatalf("create replication of %s: destinations %+v", src, out.Destinations)
	}
	return *out.Destinations[0].FileSystemId
}

// replication describes the configuration id (either side's ID) names.
func replication(t *testing.T, c *efs.Client, id string) (*types.ReplicationConfigurationDescription, error) {
	out, err := c.DescribeReplicationConfigurations(ctx(t), &efs.DescribeReplicationConfigurationsInput{FileSystemId: aws.String(id)})
	if err != nil {
		return nil, err
	}
	if len(out.Replications) != 1 || len(out.Replications[0].Destinations) != 1 {
		return nil, fmt.Errorf("describe replication of %s: %+v", id, out.Replications)
	}
	return &out.Replications[0], nil
}

// destination is the one destination of the configuration id names, or
// a failure description.
func destination(t *testing.T, c *efs.Client, id string) (*types.Destination, string) {
	r, err := replication(t, c, id)
	if err != nil {
		return nil, err.Error()
	}
	d := &r.Destinations[0]
	ts := "no LastReplicatedTimestamp"
	if d.LastReplicatedTimestamp != nil {
		ts = d.LastReplicatedTimestamp.UTC().Format(time.RFC3339Nano)
	}
	return d, fmt.Sprintf("%s %q, %s", d.Status, aws.ToString(d.StatusMessage), ts)
}

// waitStatus waits until the configuration id names has status at c and
// returns its destination.
func waitStatus(t *testing.T, c *efs.Client, id string, status types.ReplicationStatus, timeout time.Duration) *types.Destination {
	t.Helper()
	var d *types.Destination
	poll(t, timeout, 100*time.Millisecond, "replication of "+id+" "+string(status), func() (bool, string) {
		var state string
		d, state = destination(t, c, id)
		return d != nil && d.Status == status, state
	})
	return d
}

// waitGone waits until the configuration id names is ReplicationNotFound
// at c.
func waitGone(t *testing.T, c *efs.Client, id, side string) {
	t.Helper()
	poll(t, 30*time.Second, 100*time.Millisecond, "replication of "+id+" gone at "+side, func() (bool, string) {
		_, err := replication(t, c, id)
		if err == nil {
			_, state := destination(t, c, id)
			return false, state
		}
		code, msg := apiError(t, err)
		return code == "ReplicationNotFound", code + ": " + msg
	})
}

// converge waits until B has made durable a pass that started after
// since (its LastReplicatedTimestamp, on A's clock, is later) and then
// requires the trees to be identical: every change made at the source
// before since must be at the destination.
func converge(t *testing.T, c *efs.Client, dstID, srcDir, dstDir string, since time.Time, timeout time.Duration) {
	t.Helper()
	poll(t, timeout, 200*time.Millisecond, "a pass started after "+since.Format(time.RFC3339Nano)+" at the destination", func() (bool, string) {
		d, state := destination(t, c, dstID)
		return d != nil && d.Status == types.ReplicationStatusEnabled && d.LastReplicatedTimestamp != nil &&
			d.LastReplicatedTimestamp.After(since), state
	})
	if diff := efstest.TreeDiff(srcDir, dstDir); diff != "" {
		t.Fatalf("trees differ after a pass that started after the last change:\n%s", diff)
	}
}

// replicated makes a file system at A holding a tree of files files
// (writeTree with seed), replicates it to a new one at B and waits until
// B's copy is identical.
func (p *pair) replicated(t *testing.T, token string, seed uint64, files int) (srcID, dstID, srcDir, dstDir string) {
	t.Helper()
	srcID = *createFS(t, p.ca, token).FileSystemId
	srcDir = p.a.VolumePath(efstest.AccountA.Account, regionA, srcID)
	writeTree(t, srcDir, seed, files)
	dstID = replicate(t, p.ca, srcID, types.DestinationToCreate{Region: aws.String(regionB)})
	_, dstDir = p.volumes(srcID, dstID)
	converge(t, p.cb, dstID, srcDir, dstDir, time.Now(), 60*time.Second)
	return srcID, dstID, srcDir, dstDir
}

// volumes are the directories of src at A and dst at B (account A).
func (p *pair) volumes(src, dst string) (string, string) {
	return p.a.VolumePath(efstest.AccountA.Account, regionA, src), p.b.VolumePath(efstest.AccountA.Account, regionB, dst)
}

// writeTree fills dir with a small tree: directories, files of a few
// sizes, a symlink, a hard link, odd modes.
func writeTree(t *testing.T, dir string, seed uint64, files int) {
	t.Helper()
	rng := rand.New(rand.NewPCG(seed, seed+1))
	for i := range files {
		sub := filepath.Join(dir, fmt.Sprintf("d%d", i%3), fmt.Sprintf("e%d", i%2))
		if err := os.MkdirAll(sub, 0o755); err != nil {
			t.Fatal(err)
		}
		data := make([]byte, rng.IntN(64<<10))
		for j := range data {
			data[j] = byte(rng.Uint32())
		}
		if err := os.WriteFile(filepath.Join(sub, fmt.Sprintf("f%03d.bin", i)), data, 0o640); err != nil {
			t.Fatal(err)
		}
	}
	must(t, os.Symlink("d0/e0/f000.bin", filepath.Join(dir, "link")))
	must(t, os.Link(filepath.Join(dir, "d0/e0/f000.bin"), filepath.Join(dir, "hard")))
	must(t, os.WriteFile(filepath.Join(dir, "setgid"), []byte("mode bits\n"), 0o644))
	must(t, os.Chmod(filepath.Join(dir, "setgid"), 0o2750))
}

// change edits a tree written by writeTree: a file rewritten, one
// appended to, one removed, a new directory.
func change(t *testing.T, dir string, n int) {
	t.Helper()
	must(t, os.WriteFile(filepath.Join(dir, "d1/e1/f001.bin"), []byte(strings.Repeat(fmt.Sprintf("change %d\n", n), 100+n)), 0o600))
	f, err := os.OpenFile(filepath.Join(dir, "d0/e0/f000.bin"), os.O_APPEND|os.O_WRONLY, 0)
	must(t, err)
	fmt.Fprintf(f, "appended %d\n", n)
	must(t, f.Close())
	os.Remove(filepath.Join(dir, "d2/e0/f002.bin"))
	must(t, os.MkdirAll(filepath.Join(dir, fmt.Sprintf("new%d/deeper", n)), 0o700))
	must(t, os.WriteFile(filepath.Join(dir, fmt.Sprintf("new%d/deeper/file", n)), []byte("new\n"), 0o644))
}

// writeRandom writes size random bytes to path through a temporary file
// in staging (on the same file system, outside every volume), renamed
// into place, so the file appears whole.
func writeRandom(t *testing.T, staging, path string, size int, seed uint64) {
	t.Helper()
	rng := rand.New(rand.NewPCG(seed, ^seed))
	buf := make([]byte, 1<<20)
	tmp := filepath.Join(staging, filepath.Base(path)+".staging")
	f, err := os.Create(tmp)
	must(t, err)
	for left := size; left > 0; left -= len(buf) {
		for i := 0; i < len(buf); i += 8 {
			v := rng.Uint64()
			for j := 0; j < 8; j++ {
				buf[i+j] = byte(v >> (8 * j))
			}
		}
		if _, err := f.Write(buf[:min(left, len(buf))]); err != nil {
			t.Fatal(err)
		}
	}
	must(t, f.Close())
	must(t, os.Rename(tmp, path))
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// sent is what d has sent to its peers so far (0 before the first chunk).
func sent(t *testing.T, d *deploy.Deployment) float64 {
	t.Helper()
	v, _ := d.Metric(t, sentBytes)
	return v
}

// staging is a directory beside d's data directory (same file system).
func staging(d *deploy.Deployment) string { return filepath.Dir(d.DataDir) }

func roleOf(c api.Credential) string { return "arn:aws:iam::" + c.Account + ":role/efs-replication" }
