package crossdeploy_test

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/efs"
	"github.com/aws/aws-sdk-go-v2/service/efs/types"

	"github.com/efsd/efsd/internal/efstest"
)

// TestDisasterDrillAndFailback: A is lost; at B the operator deletes the
// local side of the configuration (LOCAL_CONFIGURATION_ONLY), B's file
// system becomes writable and is written. A comes back: its configuration
// shows ERROR saying the destination deleted it, and A never writes to B
// again. Failback: A's file system takes protection DISABLED, B replicates
// into it, and only the differences cross the link.
func TestDisasterDrillAndFailback(t *testing.T) {
	t.Parallel()
	p := newPair(t, false)
	src := createFS(t, p.ca, "drill-src")
	srcID := *src.FileSystemId
	srcDir := p.a.VolumePath(efstest.AccountA.Account, regionA, srcID)
	writeTree(t, srcDir, 30, 10)
	// Enough data that a full copy is easy to tell from the differences.
	for i, name := range []string{"big1.bin", "big2.bin", "big3.bin", "big4.bin"} {
		writeRandom(t, staging(p.a), filepath.Join(srcDir, name), 2<<20, uint64(31+i))
	}
	dstID := replicate(t, p.ca, srcID, types.DestinationToCreate{Region: aws.String(regionB)})
	_, dstDir := p.volumes(srcID, dstID)
	converge(t, p.cb, dstID, srcDir, dstDir, time.Now(), 90*time.Second)

	// Disaster: A is gone.
	p.a.Kill()
	if _, err := p.cb.DeleteReplicationConfiguration(ctx(t), &efs.DeleteReplicationConfigurationInput{
		SourceFileSystemId: aws.String(dstID), DeletionMode: types.DeletionModeLocalConfigurationOnly}); err != nil {
		t.Fatalf("LOCAL_CONFIGURATION_ONLY at B with A down: %v", err)
	}
	_, err := replication(t, p.cb, dstID)
	wantCode(t, err, "ReplicationNotFound")
	poll(t, 10*time.Second, 50*time.Millisecond, "B's file system writable", func() (bool, string) {
		got := protection(t, p.cb, dstID)
		return got == types.ReplicationOverwriteProtectionEnabled, string(got)
	})
	// B is written: a file rewritten, one added, one removed.
	must(t, os.WriteFile(filepath.Join(dstDir, "d1/e0/f004.bin"), []byte("written at B during the disaster\n"), 0o644))
	must(t, os.WriteFile(filepath.Join(dstDir, "new-at-b"), []byte("B is the source now\n"), 0o600))
	must(t, os.Remove(filepath.Join(dstDir, "d0/e1/f003.bin")))
	ref := filepath.Join(t.TempDir(), "ref")
	if out, err := exec.Command("cp", "-a", dstDir, ref).CombinedOutput(); err != nil {
		t.Fatalf("copy B's tree: %v: %s", err, out)
	}

	// A comes back and learns its configuration was deleted at B.
	p.a.Restart()
	var msg string
	poll(t, 30*time.Second, 100*time.Millisecond, "A's configuration ERROR", func() (bool, string) {
		d, state := destination(t, p.ca, srcID)
		if d == nil {
			return false, state
		}
		msg = aws.ToString(d.StatusMessage)
		return d.Status == types.ReplicationStatusError, state
	})
	if l := strings.ToLower(msg); !strings.Contains(l, "destination") || !strings.Contains(l, "delet") {
		t.Errorf("A's ERROR message %q does not say the destination side deleted the configuration", msg)
	}
	t.Logf("A after it came back: ERROR %q", msg)
	// Nothing reaches B any more, though A's file system changes.
	change(t, srcDir, 1)
	end := time.Now().Add(3*rescan + 500*time.Millisecond)
	for time.Now().Before(end) {
		if d := efstest.TreeDiff(ref, dstDir); d != "" {
			t.Fatalf("B's file system changed after the local deletion:\n%s", d)
		}
		time.Sleep(250 * time.Millisecond)
	}
	if got := protection(t, p.cb, dstID); got != types.ReplicationOverwriteProtectionEnabled {
		t.Fatalf("B's protection %s after A came back", got)
	}

	// Failback. A's side is deleted there (its describe said so), A's file
	// system opened to overwriting, and B replicates into it.
	if _, err := p.ca.DeleteReplicationConfiguration(ctx(t), &efs.DeleteReplicationConfigurationInput{SourceFileSystemId: aws.String(srcID)}); err != nil {
		t.Fatalf("delete A's ERROR side: %v", err)
	}
	waitGone(t, p.ca, srcID, "A")
	setProtection(t, p.ca, srcID, types.ReplicationOverwriteProtectionDisabled)
	before := sent(t, p.b)
	back := replicate(t, p.cb, dstID, types.DestinationToCreate{FileSystemId: aws.String(srcID), Region: aws.String(regionA)})
	if back != srcID {
		t.Fatalf("failback destination %s, want A's %s", back, srcID)
	}
	if got := protection(t, p.ca, srcID); got != types.ReplicationOverwriteProtectionReplicating {
		t.Errorf("A's protection %s during failback, want REPLICATING", got)
	}
	converge(t, p.ca, srcID, dstDir, srcDir, time.Now(), 90*time.Second)
	if d := efstest.TreeDiff(ref, dstDir); d != "" {
		t.Fatalf("failback changed B, its source:\n%s", d)
	}
	r, err := replication(t, p.ca, srcID)
	if err != nil {
		t.Fatal(err)
	}
	if aws.ToString(r.SourceFileSystemId) != dstID || aws.ToString(r.SourceFileSystemRegion) != regionB {
		t.Errorf("A describes the failback as from %s in %s", aws.ToString(r.SourceFileSystemId), aws.ToString(r.SourceFileSystemRegion))
	}
	t.Logf("failback OriginalSourceFileSystemArn %s (A's file system is %s)", aws.ToString(r.OriginalSourceFileSystemArn), aws.ToString(src.FileSystemArn))
	// 8 MiB of the tree are the same on both sides; the differences are a
	// few kilobytes.
	delta := sent(t, p.b) - before
	t.Logf("failback sent %.0f bytes from B", delta)
	if delta > 1<<20 {
		t.Fatalf("failback sent %.0f bytes for a few KiB of differences in an 8 MiB tree: the whole tree, not the differences", delta)
	}
}
