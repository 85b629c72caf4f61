package crossdeploy_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/efs"
	"github.com/aws/aws-sdk-go-v2/service/efs/types"

	"github.com/efsd/efsd/internal/efstest"
	"github.com/efsd/efsd/internal/efstest/deploy"
)

// TestCreateAtSourceMakesDestinationAtPeer: a configuration created at A
// with Region=eu-west-1 makes a read-only destination at B, replicates
// the tree and its changes, and both deployments describe the same
// configuration: same IDs, ENABLED, the same LastReplicatedTimestamp,
// which is not in the future.
func TestCreateAtSourceMakesDestinationAtPeer(t *testing.T) {
	t.Parallel()
	p := newPair(t, false)
	src := createFS(t, p.ca, "cross-src")
	srcID := *src.FileSystemId
	srcDir := p.a.VolumePath(efstest.AccountA.Account, regionA, srcID)
	writeTree(t, srcDir, 1, 12)

	dstID := replicate(t, p.ca, srcID, types.DestinationToCreate{Region: aws.String(regionB)})
	_, dstDir := p.volumes(srcID, dstID)
	if _, err := describeFS(t, p.ca, dstID); err == nil {
		t.Fatalf("destination %s exists at A, the source's deployment", dstID)
	}
	dst := waitAvailable(t, p.cb, dstID)
	if got := dst.FileSystemProtection.ReplicationOverwriteProtection; got != types.ReplicationOverwriteProtectionReplicating {
		t.Fatalf("destination protection %s, want REPLICATING", got)
	}
	if !aws.ToBool(dst.Encrypted) || !strings.Contains(aws.ToString(dst.FileSystemArn), ":"+regionB+":") {
		t.Fatalf("destination %+v: want encrypted, in %s", dst, regionB)
	}
	// Read-only while replicating: its protection cannot be lifted and it
	// cannot be deleted.
	_, err := p.cb.UpdateFileSystemProtection(ctx(t), &efs.UpdateFileSystemProtectionInput{FileSystemId: aws.String(dstID),
		ReplicationOverwriteProtection: types.ReplicationOverwriteProtectionEnabled})
	wantCode(t, err, "ReplicationAlreadyExists")
	_, err = p.cb.DeleteFileSystem(ctx(t), &efs.DeleteFileSystemInput{FileSystemId: aws.String(dstID)})
	wantCode(t, err, "FileSystemInUse")

	converge(t, p.cb, dstID, srcDir, dstDir, time.Now(), 60*time.Second)
	for n := range 2 {
		change(t, srcDir, n)
		converge(t, p.cb, dstID, srcDir, dstDir, time.Now(), 30*time.Second)
	}

	// Both sides describe one configuration, whichever ID names it at B.
	var atA, atB *types.ReplicationConfigurationDescription
	poll(t, 20*time.Second, 100*time.Millisecond, "the same LastReplicatedTimestamp at both sides", func() (bool, string) {
		var errA, errB error
		atA, errA = replication(t, p.ca, srcID)
		atB, errB = replication(t, p.cb, dstID)
		if errA != nil || errB != nil {
			return false, "describe: " + joinErrs(errA, errB)
		}
		ta, tb := atA.Destinations[0].LastReplicatedTimestamp, atB.Destinations[0].LastReplicatedTimestamp
		return ta != nil && tb != nil && ta.Equal(*tb), "A " + fmtTime(ta) + ", B " + fmtTime(tb)
	})
	now := time.Now()
	for side, r := range map[string]*types.ReplicationConfigurationDescription{"A": atA, "B": atB} {
		d := r.Destinations[0]
		if aws.ToString(r.SourceFileSystemId) != srcID || aws.ToString(r.SourceFileSystemRegion) != regionA ||
			aws.ToString(r.SourceFileSystemArn) != aws.ToString(src.FileSystemArn) ||
			aws.ToString(r.OriginalSourceFileSystemArn) != aws.ToString(src.FileSystemArn) ||
			aws.ToString(d.FileSystemId) != dstID || aws.ToString(d.Region) != regionB || d.Status != types.ReplicationStatusEnabled {
			t.Errorf("%s describes %s %s %s %s → %s %s %s", side, aws.ToString(r.SourceFileSystemId), aws.ToString(r.SourceFileSystemRegion),
				aws.ToString(r.SourceFileSystemArn), aws.ToString(r.OriginalSourceFileSystemArn), aws.ToString(d.FileSystemId), aws.ToString(d.Region), d.Status)
		}
		if d.LastReplicatedTimestamp.After(now) {
			t.Errorf("%s: LastReplicatedTimestamp %v is after A's clock now %v", side, d.LastReplicatedTimestamp, now)
		}
	}
	if !atA.CreationTime.Equal(*atB.CreationTime) {
		t.Errorf("CreationTime A %v, B %v", atA.CreationTime, atB.CreationTime)
	}
	// At B the source's ID and ARN name the configuration too.
	for _, id := range []string{srcID, aws.ToString(src.FileSystemArn)} {
		r, err := replication(t, p.cb, id)
		if err != nil || aws.ToString(r.Destinations[0].FileSystemId) != dstID {
			t.Errorf("describe at B by %s: %+v %v", id, r, err)
		}
	}
}

func joinErrs(errs ...error) string {
	var s []string
	for _, err := range errs {
		if err != nil {
			s = append(s, err.Error())
		}
	}
	return strings.Join(s, "; ")
}

func fmtTime(t *time.Time) string {
	if t == nil {
		return "none"
	}
	return t.UTC().Format(time.RFC3339Nano)
}

// TestExistingDestinationAndErrorsFromPeer: B's refusals reach A's caller
// with B's code and message and leave nothing behind; an existing
// destination at B is claimed by ID once its protection is DISABLED and
// made identical; cross-account needs the destination's policy.
func TestExistingDestinationAndErrorsFromPeer(t *testing.T) {
	t.Parallel()
	p := newPair(t, true)
	srcID := *createFS(t, p.ca, "existing-src").FileSystemId
	dstID := *createFS(t, p.cb, "existing-dst").FileSystemId
	srcDir, dstDir := p.volumes(srcID, dstID)
	writeTree(t, srcDir, 2, 8)
	writeTree(t, dstDir, 3, 5) // other contents of the same names, and more
	must(t, os.WriteFile(filepath.Join(dstDir, "stale"), []byte("only at B\n"), 0o644))
	nothingLeft := func(when string) {
		t.Helper()
		_, err := replication(t, p.ca, srcID)
		wantCode(t, err, "ReplicationNotFound")
		_, err = replication(t, p.cb, dstID)
		wantCode(t, err, "ReplicationNotFound")
		out, err := p.cb.DescribeFileSystems(ctx(t), &efs.DescribeFileSystemsInput{})
		if err != nil || len(out.FileSystems) != 1 {
			t.Fatalf("%s: B's file systems %+v %v, want only %s", when, out, err, dstID)
		}
	}
	create := func(dst types.DestinationToCreate) error {
		_, err := p.ca.CreateReplicationConfiguration(ctx(t), &efs.CreateReplicationConfigurationInput{
			SourceFileSystemId: aws.String(srcID), Destinations: []types.DestinationToCreate{dst}})
		return err
	}

	msg := wantCode(t, create(types.DestinationToCreate{FileSystemId: aws.String("fs-0123456789abcdef0"), Region: aws.String(regionB)}), "FileSystemNotFound")
	t.Logf("unknown destination: %s", msg)
	nothingLeft("unknown destination")

	msg = wantCode(t, create(types.DestinationToCreate{FileSystemId: aws.String(dstID), Region: aws.String(regionB)}), "BadRequest")
	if !strings.Contains(msg, "ENABLED") {
		t.Errorf("protection refusal %q does not name the current value ENABLED", msg)
	}
	nothingLeft("protection ENABLED")

	// B unreachable at creation: the call fails and nothing is left.
	setProtection(t, p.cb, dstID, types.ReplicationOverwriteProtectionDisabled)
	cut := p.px.Partition(deploy.Refuse, 0)
	err := create(types.DestinationToCreate{FileSystemId: aws.String(dstID), Region: aws.String(regionB)})
	code := "none"
	if err != nil {
		code, msg = apiError(t, err)
	}
	if err == nil || !strings.Contains(msg, "destination deployment 'b' unreachable") {
		t.Fatalf("create with B unreachable: %v", err)
	}
	t.Logf("B unreachable at creation: %s: %s", code, msg)
	cut.Remove()
	nothingLeft("B unreachable")
	if got := protection(t, p.cb, dstID); got != types.ReplicationOverwriteProtectionDisabled {
		t.Fatalf("protection at B after a failed creation: %s", got)
	}

	if err := create(types.DestinationToCreate{FileSystemId: aws.String(dstID), Region: aws.String(regionB)}); err != nil {
		t.Fatalf("existing destination with protection DISABLED: %v", err)
	}
	if got := protection(t, p.cb, dstID); got != types.ReplicationOverwriteProtectionReplicating {
		t.Errorf("claimed destination protection %s, want REPLICATING", got)
	}
	converge(t, p.cb, dstID, srcDir, dstDir, time.Now(), 60*time.Second)

	t.Run("cross-account", func(t *testing.T) {
		// Account B's source at A into account A's file system at B.
		cBA := p.a.Client(efstest.AccountB, regionA)
		xsrc := *createFS(t, cBA, "x-src").FileSystemId
		xdst := createFS(t, p.cb, "x-dst")
		xsrcDir := p.a.VolumePath(efstest.AccountB.Account, regionA, xsrc)
		xdstDir := p.b.VolumePath(efstest.AccountA.Account, regionB, *xdst.FileSystemId)
		writeTree(t, xsrcDir, 4, 6)
		setProtection(t, p.cb, *xdst.FileSystemId, types.ReplicationOverwriteProtectionDisabled)
		role := roleOf(efstest.AccountB)
		in := &efs.CreateReplicationConfigurationInput{SourceFileSystemId: aws.String(xsrc), Destinations: []types.DestinationToCreate{
			{FileSystemId: xdst.FileSystemArn, Region: aws.String(regionB), RoleArn: aws.String(role)}}}
		_, err := cBA.CreateReplicationConfiguration(ctx(t), in)
		msg := wantCode(t, err, "FileSystemNotFound")
		if !strings.Contains(msg, role) || !strings.Contains(msg, *xdst.FileSystemArn) || !strings.Contains(msg, "policy") {
			t.Fatalf("refusal without the destination's policy: %q", msg)
		}
		_, err = replication(t, cBA, xsrc)
		wantCode(t, err, "ReplicationNotFound")

		if _, err := p.cb.PutFileSystemPolicy(ctx(t), &efs.PutFileSystemPolicyInput{FileSystemId: xdst.FileSystemId,
			Policy: aws.String(destinationPolicy("arn:aws:iam::"+efstest.AccountB.Account+":root", *xdst.FileSystemArn))}); err != nil {
			t.Fatal(err)
		}
		out, err := cBA.CreateReplicationConfiguration(ctx(t), in)
		if err != nil {
			t.Fatalf("cross-account with the destination's policy: %v", err)
		}
		if d := out.Destinations[0]; aws.ToString(d.FileSystemId) != *xdst.FileSystemId || aws.ToString(d.RoleArn) != role ||
			aws.ToString(d.OwnerId) != efstest.AccountA.Account {
			t.Errorf("destination %+v", d)
		}
		converge(t, p.cb, *xdst.FileSystemId, xsrcDir, xdstDir, time.Now(), 60*time.Second)
	})
}

// destinationPolicy is the destination file system policy of AWS's
// "Replicating EFS file systems across AWS accounts".
func destinationPolicy(principal, arn string) string {
	return `{"Version":"2012-10-17","Statement":[{"Sid":"AllowSourceAccountReplicationActions","Effect":"Allow",` +
		`"Principal":{"AWS":"` + principal + `"},"Action":["elasticfilesystem:DescribeFileSystems",` +
		`"elasticfilesystem:CreateReplicationConfiguration","elasticfilesystem:DescribeReplicationConfigurations",` +
		`"elasticfilesystem:DeleteReplicationConfiguration","elasticfilesystem:ReplicationWrite"],"Resource":"` + arn + `"}]}`
}

// TestDeleteAtEitherSide: ALL_CONFIGURATIONS at A, or at B with the
// source's ID (Terraform's order), removes both sides; B's file system
// keeps its data, becomes writable and is no longer written by A. Asked at
// B while A is down, the configuration stays DELETING until A is back.
func TestDeleteAtEitherSide(t *testing.T) {
	t.Parallel()
	p := newPair(t, false)
	for i, at := range []string{"source", "destination with the source's ID", "destination while A is down"} {
		srcID := *createFS(t, p.ca, "del-src-"+string(rune('a'+i))).FileSystemId
		srcDir := p.a.VolumePath(efstest.AccountA.Account, regionA, srcID)
		writeTree(t, srcDir, uint64(10+i), 6)
		dstID := replicate(t, p.ca, srcID, types.DestinationToCreate{Region: aws.String(regionB)})
		_, dstDir := p.volumes(srcID, dstID)
		converge(t, p.cb, dstID, srcDir, dstDir, time.Now(), 60*time.Second)

		c := p.ca
		if i > 0 {
			c = p.cb
		}
		if i == 2 {
			p.a.Kill()
		}
		if _, err := c.DeleteReplicationConfiguration(ctx(t), &efs.DeleteReplicationConfigurationInput{SourceFileSystemId: aws.String(srcID)}); err != nil {
			t.Fatalf("delete at the %s: %v", at, err)
		}
		if i == 2 {
			// B waits for A, DELETING, and then finishes with it.
			for end := time.Now().Add(3 * rescan); time.Now().Before(end); time.Sleep(100 * time.Millisecond) {
				if d, state := destination(t, p.cb, dstID); d == nil || d.Status != types.ReplicationStatusDeleting {
					t.Fatalf("B with A down, after the deletion: %s, want DELETING until A is back", state)
				}
			}
			p.a.Restart()
		}
		waitGone(t, p.ca, srcID, "A")
		waitGone(t, p.cb, dstID, "B")
		poll(t, 20*time.Second, 100*time.Millisecond, "B's file system writable", func() (bool, string) {
			got := protection(t, p.cb, dstID)
			return got == types.ReplicationOverwriteProtectionEnabled, string(got)
		})
		if d := efstest.TreeDiff(srcDir, dstDir); d != "" {
			t.Fatalf("delete at the %s: B's data changed:\n%s", at, d)
		}
		if i == 0 {
			// Replication has stopped: what is written at B stays, what
			// is written at A does not arrive.
			must(t, os.WriteFile(filepath.Join(dstDir, "written-at-b"), []byte("b\n"), 0o644))
			must(t, os.WriteFile(filepath.Join(srcDir, "written-at-a"), []byte("a\n"), 0o644))
			end := time.Now().Add(3 * rescan)
			for time.Now().Before(end) {
				if _, err := os.Stat(filepath.Join(dstDir, "written-at-b")); err != nil {
					t.Fatalf("a file written at B after the deletion: %v", err)
				}
				if _, err := os.Stat(filepath.Join(dstDir, "written-at-a")); err == nil {
					t.Fatal("a file written at A after the deletion reached B")
				}
				time.Sleep(100 * time.Millisecond)
			}
		}
		// Both file systems can be deleted now.
		for _, d := range []struct {
			c  *efs.Client
			id string
		}{{p.ca, srcID}, {p.cb, dstID}} {
			if _, err := d.c.DeleteFileSystem(ctx(t), &efs.DeleteFileSystemInput{FileSystemId: aws.String(d.id)}); err != nil {
				t.Errorf("delete file system %s after the configuration: %v", d.id, err)
			}
		}
	}
}

// TestSourceFailureShownAtDestination: a pass that fails at A for a reason
// of A's own (its source's data is missing) shows at B as A reports it,
// not as a source unheard from, though A's retries back off well past B's
// silence (3 × rescan); both sides return to ENABLED once the data is
// back.
func TestSourceFailureShownAtDestination(t *testing.T) {
	t.Parallel()
	p := newPair(t, false)
	srcID, dstID, srcDir, dstDir := p.replicated(t, "status-src", 3, 6)

	must(t, os.Rename(srcDir, srcDir+".away"))
	const missing = "The source file system's data is missing"
	const fromA = "The source deployment 'a' reports: " + missing
	atA := func() (bool, string) {
		d, state := destination(t, p.ca, srcID)
		return d != nil && d.Status == types.ReplicationStatusError && strings.HasPrefix(aws.ToString(d.StatusMessage), missing), state
	}
	atB := func() (bool, string) {
		d, state := destination(t, p.cb, dstID)
		return d != nil && d.Status == types.ReplicationStatusError && strings.HasPrefix(aws.ToString(d.StatusMessage), fromA), state
	}
	poll(t, 30*time.Second, 100*time.Millisecond, "A: ERROR "+missing, atA)
	poll(t, 30*time.Second, 100*time.Millisecond, "B: ERROR "+fromA, atB)
	// A's retries back off (0.1 s doubling): within 15 s one waits 6.4 s,
	// twice B's silence. B must go on saying what A reported.
	for end := time.Now().Add(15 * time.Second); time.Now().Before(end); time.Sleep(200 * time.Millisecond) {
		if ok, state := atB(); !ok {
			t.Fatalf("B while A's source is missing: %s", state)
		}
	}
	if _, err := os.Stat(filepath.Join(dstDir, "d0/e0/f000.bin")); err != nil {
		t.Errorf("B's copy lost data while A's source was missing: %v", err)
	}

	must(t, os.Rename(srcDir+".away", srcDir))
	back := time.Now()
	waitStatus(t, p.ca, srcID, types.ReplicationStatusEnabled, 60*time.Second)
	converge(t, p.cb, dstID, srcDir, dstDir, back, 60*time.Second)
}
