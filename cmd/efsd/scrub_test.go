package main

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/efs"
	"github.com/aws/aws-sdk-go-v2/service/efs/types"

	"github.com/efsd/efsd/internal/efstest"
)

// TestScrubCommand corrupts a destination file behind efsd's back, keeping
// its size and mtime, and runs `efsd scrub` against the real binary: it
// shows progress and a summary, and the file is repaired. No other pass
// runs meanwhile (no rescan within the test, and the destination is not
// watched), so the repair is the scrub's.
func TestScrubCommand(t *testing.T) {
	bin := buildBinary(t)
	dataDir := t.TempDir()
	conf := filepath.Join(t.TempDir(), "efsd.json")
	if err := os.WriteFile(conf, []byte(`{"replicationRescanInterval": "1h", "replicationScrubInterval": "0"}`), 0o600); err != nil {
		t.Fatal(err)
	}
	_, url := startBinary(t, bin, dataDir, "--config", conf)
	ctx := context.Background()
	c := client(url, "test", "test")
	src, err := c.CreateFileSystem(ctx, &efs.CreateFileSystemInput{CreationToken: aws.String("s"), Encrypted: aws.Bool(true)})
	if err != nil {
		t.Fatal(err)
	}
	vol := func(id string) string { return filepath.Join(dataDir, "volumes", "000000000000", "us-east-1", id) }
	waitFor(t, "source available", func() bool {
		out, err := c.DescribeFileSystems(ctx, &efs.DescribeFileSystemsInput{FileSystemId: src.FileSystemId})
		return err == nil && out.FileSystems[0].LifeCycleState == types.LifeCycleStateAvailable
	})
	srcDir := vol(*src.FileSystemId)
	old := time.Date(2020, 1, 2, 3, 4, 5, 0, time.UTC)
	for i := range 20 {
		p := filepath.Join(srcDir, "d", "f"+strconv.Itoa(i))
		os.MkdirAll(filepath.Dir(p), 0o755)
		if err := os.WriteFile(p, bytes.Repeat([]byte{byte('a' + i)}, 64<<10), 0o644); err != nil {
			t.Fatal(err)
		}
		os.Chtimes(p, old, old)
	}
	rep, err := c.CreateReplicationConfiguration(ctx, &efs.CreateReplicationConfigurationInput{SourceFileSystemId: src.FileSystemId,
		Destinations: []types.DestinationToCreate{{Region: aws.String("us-east-1")}}})
	if err != nil {
		t.Fatal(err)
	}
	dstDir := vol(*rep.Destinations[0].FileSystemId)
	waitFor(t, "the first pass", func() bool {
		out, err := c.DescribeReplicationConfigurations(ctx, &efs.DescribeReplicationConfigurationsInput{FileSystemId: src.FileSystemId})
		return err == nil && out.Replications[0].Destinations[0].LastReplicatedTimestamp != nil && efstest.TreeDiff(srcDir, dstDir) == ""
	})

	victim := filepath.Join(dstDir, "d", "f7")
	if err := os.WriteFile(victim, bytes.Repeat([]byte{'#'}, 64<<10), 0); err != nil {
		t.Fatal(err)
	}
	os.Chtimes(victim, old, old)

	out, err := exec.Command(bin, "scrub", "--data-dir", dataDir, *src.FileSystemId).CombinedOutput()
	if err != nil {
		t.Fatalf("efsd scrub: %v\n%s", err, out)
	}
	t.Logf("efsd scrub:\n%s", out)
	for _, re := range []string{
		`(?m)^scrubbing rep-\S+ \(` + *src.FileSystemId + ` → ` + *rep.Destinations[0].FileSystemId + `\): \d+ files compared, .* read in .* \(.* MB/s\), [01] difference\(s\) repaired$`,
		`(?m)^scrubbed rep-\S+ \(.*\): 20 files compared, 2\.7 MB read in \S+ \(.* MB/s\), 1 difference\(s\) repaired$`,
		`(?m)^scrub done: 1 configuration\(s\), 20 files compared, 2\.7 MB read in \S+ \(.*\), 1 difference\(s\) repaired$`,
	} {
		if !regexp.MustCompile(re).Match(out) {
			t.Errorf("output lacks %s", re)
		}
	}
	if d := efstest.TreeDiff(srcDir, dstDir); d != "" {
		t.Fatalf("not repaired: %s", d)
	}
}

// TestScrubCommandWithoutDaemon: a clear error when no efsd runs.
func TestScrubCommandWithoutDaemon(t *testing.T) {
	var out bytes.Buffer
	m := &Main{Stdout: &out, Stderr: &out, Getenv: func(string) string { return "" }}
	err := m.Run(context.Background(), []string{"scrub", "--data-dir", t.TempDir()})
	if err == nil || !regexp.MustCompile(`is it running`).MatchString(err.Error()) {
		t.Fatalf("err = %v", err)
	}
}
