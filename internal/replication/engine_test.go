package replication_test

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/efs"
	"github.com/aws/aws-sdk-go-v2/service/efs/types"

	"github.com/efsd/efsd/internal/daemon"
	internalefs "github.com/efsd/efsd/internal/efs"
	"github.com/efsd/efsd/internal/efstest"
)

const region = "us-east-1"

// setup starts a server with a replicated pair and returns the client,
// the source ID and both directories, once the first pass is done.
func setup(t *testing.T, opts ...efstest.Option) (*efstest.Server, *efs.Client, string, string, string) {
	t.Helper()
	srv := efstest.Start(t, opts...)
	c := srv.Client(efstest.AccountA, region)
	ctx := context.Background()
	out, err := c.CreateFileSystem(ctx, &efs.CreateFileSystemInput{CreationToken: aws.String("src"), Encrypted: aws.Bool(true)})
	if err != nil {
		t.Fatal(err)
	}
	src := *out.FileSystemId
	efstest.Eventually(t, 10*time.Second, "source available", func() bool {
		d, err := c.DescribeFileSystems(ctx, &efs.DescribeFileSystemsInput{FileSystemId: aws.String(src)})
		return err == nil && d.FileSystems[0].LifeCycleState == types.LifeCycleStateAvailable
	})
	srcDir := srv.Volumes().Path(internalefs.FSKey{Account: efstest.AccountA.Account, Region: region, ID: src})
	os.WriteFile(filepath.Join(srcDir, "seed"), []byte("seed"), 0o644)
	rep, err := c.CreateReplicationConfiguration(ctx, &efs.CreateReplicationConfigurationInput{SourceFileSystemId: aws.String(src),
		Destinations: []types.DestinationToCreate{{Region: aws.String(region)}}})
	if err != nil {
		t.Fatal(err)
	}
	dstDir := srv.Volumes().Path(internalefs.FSKey{Account: efstest.AccountA.Account, Region: region, ID: *rep.Destinations[0].FileSystemId})
	waitStatus(t, c, src, types.ReplicationStatusEnabled, "", func() bool { return efstest.TreeDiff(srcDir, dstDir) == "" })
	return srv, c, src, srcDir, dstDir
}

// waitStatus polls until the destination has the status (and a message
// containing msg), and cond holds.
func waitStatus(t *testing.T, c *efs.Client, src string, status types.ReplicationStatus, msg string, cond func() bool) *types.Destination {
	t.Helper()
	var d types.Destination
	efstest.Eventually(t, 30*time.Second, "replication status "+string(status), func() bool {
		out, err := c.DescribeReplicationConfigurations(context.Background(), &efs.DescribeReplicationConfigurationsInput{FileSystemId: aws.String(src)})
		if err != nil {
			t.Fatal(err)
		}
		d = out.Replications[0].Destinations[0]
		if d.Status != status || !strings.Contains(aws.ToString(d.StatusMessage), msg) {
			return false
		}
		if status == types.ReplicationStatusEnabled && (d.StatusMessage != nil || d.LastReplicatedTimestamp == nil) {
			return false
		}
		return cond == nil || cond()
	})
	return &d
}

func identical(src, dst string) func() bool {
	return func() bool { return efstest.TreeDiff(src, dst) == "" }
}

func TestDestinationNotWritablePausesThenRecovers(t *testing.T) {
	if err := exec.Command("chattr", "--help").Run(); err != nil && !strings.Contains(err.Error(), "exit status") {
		t.Skip("chattr not available")
	}
	_, c, src, srcDir, dstDir := setup(t)
	if out, err := exec.Command("chattr", "+i", dstDir).CombinedOutput(); err != nil {
		t.Skipf("cannot make the destination immutable here: %v %s", err, out)
	}
	t.Cleanup(func() { exec.Command("chattr", "-i", dstDir).Run() })
	os.WriteFile(filepath.Join(srcDir, "blocked"), []byte("cannot land"), 0o644)
	d := waitStatus(t, c, src, types.ReplicationStatusPaused, "not accessible", nil)
	t.Logf("PAUSED: %s", aws.ToString(d.StatusMessage))
	if strings.Contains(aws.ToString(d.StatusMessage), dstDir) {
		t.Fatalf("message shows host path: %s", aws.ToString(d.StatusMessage))
	}
	paused := d.LastReplicatedTimestamp
	if err := exec.Command("chattr", "-i", dstDir).Run(); err != nil {
		t.Fatal(err)
	}
	waitStatus(t, c, src, types.ReplicationStatusEnabled, "", identical(srcDir, dstDir))
	// Timestamps are whole seconds: the first good pass may share its second
	// with the last one before the pause, so wait for a later (rescan) pass.
	efstest.Eventually(t, 20*time.Second, "LastReplicatedTimestamp to advance after recovery", func() bool {
		out, err := c.DescribeReplicationConfigurations(context.Background(),
			&efs.DescribeReplicationConfigurationsInput{FileSystemId: aws.String(src)})
		if err != nil || len(out.Replications) == 0 {
			return false
		}
		d := out.Replications[0].Destinations[0]
		return d.Status == types.ReplicationStatusEnabled && d.LastReplicatedTimestamp.After(*paused)
	})
}

func TestDestinationFullPausesThenRecovers(t *testing.T) {
	_, c, src, srcDir, dstDir := setup(t)
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size=512k,mode=0755", "tmpfs", dstDir).CombinedOutput(); err != nil {
		t.Skipf("cannot mount a small file system here: %v %s", err, out)
	}
	t.Cleanup(func() { exec.Command("umount", "-l", dstDir).Run() })
	// The mounted file system is empty: the next pass copies everything back.
	os.WriteFile(filepath.Join(srcDir, "big"), make([]byte, 2<<20), 0o644)
	d := waitStatus(t, c, src, types.ReplicationStatusPaused, "out of space", nil)
	t.Logf("PAUSED: %s", aws.ToString(d.StatusMessage))
	os.Remove(filepath.Join(srcDir, "big"))
	waitStatus(t, c, src, types.ReplicationStatusEnabled, "", identical(srcDir, dstDir))
}

func TestSourceVanishedErrorsThenRecovers(t *testing.T) {
	_, c, src, srcDir, dstDir := setup(t)
	if err := os.Rename(srcDir, srcDir+".away"); err != nil {
		t.Fatal(err)
	}
	d := waitStatus(t, c, src, types.ReplicationStatusError, "source file system's data is missing", nil)
	t.Logf("ERROR: %s", aws.ToString(d.StatusMessage))
	// The destination keeps what it had.
	if _, err := os.Stat(filepath.Join(dstDir, "seed")); err != nil {
		t.Fatalf("destination lost data while the source was missing: %v", err)
	}
	if err := os.Rename(srcDir+".away", srcDir); err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(srcDir, "back"), []byte("back"), 0o644)
	waitStatus(t, c, src, types.ReplicationStatusEnabled, "", identical(srcDir, dstDir))
}

func TestReplicationResumesAfterRestart(t *testing.T) {
	srv, _, src, srcDir, dstDir := setup(t)
	before := waitStatus(t, srv.Client(efstest.AccountA, region), src, types.ReplicationStatusEnabled, "", nil)
	srv.Restart()
	c := srv.Client(efstest.AccountA, region)
	after := waitStatus(t, c, src, types.ReplicationStatusEnabled, "", nil)
	if after.LastReplicatedTimestamp.Before(*before.LastReplicatedTimestamp) {
		t.Fatal("LastReplicatedTimestamp went back after restart")
	}
	changed := time.Now()
	os.WriteFile(filepath.Join(srcDir, "after-restart"), []byte("x"), 0o644)
	waitStatus(t, c, src, types.ReplicationStatusEnabled, "", func() bool {
		d := waitStatus(t, c, src, types.ReplicationStatusEnabled, "", nil)
		return !d.LastReplicatedTimestamp.Before(changed) && efstest.TreeDiff(srcDir, dstDir) == ""
	})
}

func TestManagerNotifyWakesWorker(t *testing.T) {
	// Without inotify and with an hour between rescans, only Notify can
	// carry the change within the test's deadline.
	srv, c, src, srcDir, dstDir := setup(t, efstest.WithConfig(func(c *daemon.Config) {
		c.ReplicationNoWatch = true
		c.ReplicationRescanInterval = time.Hour
	}))
	os.WriteFile(filepath.Join(srcDir, "notified"), []byte("n"), 0o644)
	srv.Replication().Notify(internalefs.FSKey{Account: efstest.AccountA.Account, Region: region, ID: src})
	waitStatus(t, c, src, types.ReplicationStatusEnabled, "", identical(srcDir, dstDir))
}

func TestInotifyWakesWorker(t *testing.T) {
	srv, c, src, srcDir, dstDir := setup(t, efstest.WithConfig(func(c *daemon.Config) { c.ReplicationRescanInterval = time.Hour }))
	os.MkdirAll(filepath.Join(srcDir, "new", "deeper"), 0o755)
	os.WriteFile(filepath.Join(srcDir, "new", "deeper", "f"), []byte("watched"), 0o644)
	waitStatus(t, c, src, types.ReplicationStatusEnabled, "", identical(srcDir, dstDir))
	efstest.Eventually(t, 10*time.Second, "new directories watched", func() bool { return srv.Replication().Stats().WatchedDirs == 3 })
	// A directory created after the first pass is watched too.
	os.WriteFile(filepath.Join(srcDir, "new", "deeper", "g"), []byte("watched too"), 0o644)
	waitStatus(t, c, src, types.ReplicationStatusEnabled, "", identical(srcDir, dstDir))
}

// LastReplicatedTimestamp is whole seconds; a change carried by a pass
// that started in the same second as the write must still be covered by
// the reported timestamp within about a second, not at the next rescan
// (an hour here).
func TestTimestampCoversChangeWithinASecond(t *testing.T) {
	_, c, src, srcDir, _ := setup(t, efstest.WithConfig(func(c *daemon.Config) { c.ReplicationRescanInterval = time.Hour }))
	for i := range 3 {
		wrote := time.Now()
		os.WriteFile(filepath.Join(srcDir, "f"+strconv.Itoa(i)), []byte("covered"), 0o644)
		efstest.Eventually(t, 5*time.Second, "LastReplicatedTimestamp to cover a write", func() bool {
			out, err := c.DescribeReplicationConfigurations(context.Background(),
				&efs.DescribeReplicationConfigurationsInput{FileSystemId: aws.String(src)})
			if err != nil || len(out.Replications) == 0 {
				return false
			}
			lrt := out.Replications[0].Destinations[0].LastReplicatedTimestamp
			return lrt != nil && !lrt.Before(wrote)
		})
	}
}

func TestDescribeReplicationPagination(t *testing.T) {
	srv := efstest.Start(t)
	c := srv.Client(efstest.AccountA, region)
	ctx := context.Background()
	var want []string
	for i := range 3 {
		out, err := c.CreateFileSystem(ctx, &efs.CreateFileSystemInput{CreationToken: aws.String("p" + string(rune('a'+i)))})
		if err != nil {
			t.Fatal(err)
		}
		efstest.Eventually(t, 10*time.Second, "available", func() bool {
			d, err := c.DescribeFileSystems(ctx, &efs.DescribeFileSystemsInput{FileSystemId: out.FileSystemId})
			return err == nil && d.FileSystems[0].LifeCycleState == types.LifeCycleStateAvailable
		})
		if _, err := c.CreateReplicationConfiguration(ctx, &efs.CreateReplicationConfigurationInput{SourceFileSystemId: out.FileSystemId,
			Destinations: []types.DestinationToCreate{{Region: aws.String("eu-west-1")}}}); err != nil {
			t.Fatal(err)
		}
		want = append(want, *out.FileSystemId)
	}
	var got []string
	pages := 0
	p := efs.NewDescribeReplicationConfigurationsPaginator(c, &efs.DescribeReplicationConfigurationsInput{MaxResults: aws.Int32(2)})
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			t.Fatal(err)
		}
		pages++
		for _, r := range page.Replications {
			got = append(got, *r.SourceFileSystemId)
		}
	}
	if pages != 2 || strings.Join(got, ",") != strings.Join(want, ",") {
		t.Fatalf("%d pages: %v, want %v", pages, got, want)
	}
	empty, err := srv.Client(efstest.AccountB, region).DescribeReplicationConfigurations(ctx, &efs.DescribeReplicationConfigurationsInput{})
	if err != nil || empty.Replications == nil || len(empty.Replications) != 0 {
		t.Fatalf("empty account: %v %+v", err, empty)
	}
}
