package api_test

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/efs"
	"github.com/aws/aws-sdk-go-v2/service/efs/types"

	"github.com/efsd/efsd/internal/api"
	"github.com/efsd/efsd/internal/daemon"
	internalefs "github.com/efsd/efsd/internal/efs"
	"github.com/efsd/efsd/internal/efstest"
)

func fsDir(srv *efstest.Server, cred api.Credential, region, id string) string {
	return srv.Volumes().Path(internalefs.FSKey{Account: cred.Account, Region: region, ID: id})
}

// makeTree fills dir with every kind of entry replication must handle.
func makeTree(t *testing.T, dir string) {
	t.Helper()
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(os.MkdirAll(filepath.Join(dir, "docs", "deep", "er"), 0o755))
	must(os.WriteFile(filepath.Join(dir, "docs", "readme.txt"), []byte("hello replication\n"), 0o644))
	must(os.WriteFile(filepath.Join(dir, "docs", "deep", "er", "big.bin"), make([]byte, 3<<20), 0o600))
	must(os.WriteFile(filepath.Join(dir, "script.sh"), []byte("#!/bin/sh\necho hi\n"), 0o4755))
	must(os.Chmod(filepath.Join(dir, "script.sh"), 0o4755|os.ModeSetuid))
	must(os.Symlink("docs/readme.txt", filepath.Join(dir, "link")))
	must(os.Symlink("/etc/passwd", filepath.Join(dir, "abs-link")))
	must(os.Symlink("nowhere", filepath.Join(dir, "dangling")))
	must(os.Link(filepath.Join(dir, "docs", "readme.txt"), filepath.Join(dir, "hardlink.txt")))
	must(syscall.Mkfifo(filepath.Join(dir, "fifo"), 0o644))
	must(os.Mkdir(filepath.Join(dir, "private"), 0o750))
	must(os.WriteFile(filepath.Join(dir, "private", "owned"), []byte("x"), 0o640))
	must(os.Lchown(filepath.Join(dir, "private", "owned"), 1234, 5678))
	must(os.Lchown(filepath.Join(dir, "private"), 1234, 5678))
	old := time.Date(2020, 1, 2, 3, 4, 5, 6, time.UTC)
	must(os.Chtimes(filepath.Join(dir, "docs", "readme.txt"), old, old))
}

func describeReplication(t *testing.T, c *efs.Client, id string) *types.ReplicationConfigurationDescription {
	t.Helper()
	out, err := c.DescribeReplicationConfigurations(context.Background(), &efs.DescribeReplicationConfigurationsInput{FileSystemId: aws.String(id)})
	if err != nil {
		t.Fatalf("describe replication of %s: %v", id, err)
	}
	if len(out.Replications) != 1 || len(out.Replications[0].Destinations) != 1 {
		t.Fatalf("describe replication of %s: %+v", id, out.Replications)
	}
	return &out.Replications[0]
}

// waitReplicated waits until the configuration is ENABLED with a
// LastReplicatedTimestamp not before since, and the trees are identical.
func waitReplicated(t *testing.T, c *efs.Client, id, src, dst string, since time.Time) *types.ReplicationConfigurationDescription {
	t.Helper()
	var rep *types.ReplicationConfigurationDescription
	var diff string
	efstest.Eventually(t, 30*time.Second, "replication to catch up", func() bool {
		rep = describeReplication(t, c, id)
		d := rep.Destinations[0]
		if d.Status != types.ReplicationStatusEnabled || d.LastReplicatedTimestamp == nil || d.LastReplicatedTimestamp.Before(since) {
			return false
		}
		diff = efstest.TreeDiff(src, dst)
		return diff == ""
	})
	return rep
}

func TestReplicationToNewDestination(t *testing.T) {
	srv := efstest.Start(t)
	c := srv.Client(efstest.AccountA, region)
	ctx := context.Background()
	src := createFS(t, c, "source", func(in *efs.CreateFileSystemInput) {
		in.Tags = []types.Tag{tag("Name", "prod-data"), tag("team", "x")}
		in.PerformanceMode = types.PerformanceModeMaxIo
		in.Encrypted = aws.Bool(true)
	})
	srcDir := fsDir(srv, efstest.AccountA, region, *src.FileSystemId)
	makeTree(t, srcDir)

	before := time.Now()
	out, err := c.CreateReplicationConfiguration(ctx, &efs.CreateReplicationConfigurationInput{
		SourceFileSystemId: src.FileSystemId,
		Destinations:       []types.DestinationToCreate{{Region: aws.String(region)}},
	})
	if err != nil {
		t.Fatal(err)
	}
	d := out.Destinations[0]
	if aws.ToString(out.SourceFileSystemId) != *src.FileSystemId || aws.ToString(out.SourceFileSystemArn) != *src.FileSystemArn ||
		aws.ToString(out.OriginalSourceFileSystemArn) != *src.FileSystemArn || aws.ToString(out.SourceFileSystemRegion) != region ||
		aws.ToString(out.SourceFileSystemOwnerId) != efstest.AccountA.Account || out.CreationTime == nil || out.CreationTime.Before(before.Add(-time.Second)) {
		t.Fatalf("create answer: %+v", out)
	}
	if d.Status != types.ReplicationStatusEnabling || !strings.HasPrefix(aws.ToString(d.FileSystemId), "fs-") ||
		aws.ToString(d.Region) != region || aws.ToString(d.OwnerId) != efstest.AccountA.Account || d.LastReplicatedTimestamp != nil {
		t.Fatalf("create answer destination: %+v", d)
	}
	dstID := *d.FileSystemId
	dstDir := fsDir(srv, efstest.AccountA, region, dstID)

	rep := waitReplicated(t, c, *src.FileSystemId, srcDir, dstDir, before)
	if _, err := os.Lstat(filepath.Join(dstDir, "fifo")); !os.IsNotExist(err) {
		t.Fatalf("FIFO replicated: %v", err)
	}
	first := *rep.Destinations[0].LastReplicatedTimestamp

	// The new destination, as EFS makes it.
	dst := describe(t, c, dstID)
	if !aws.ToBool(dst.Encrypted) || dst.PerformanceMode != types.PerformanceModeMaxIo || dst.ThroughputMode != types.ThroughputModeBursting ||
		dst.FileSystemProtection.ReplicationOverwriteProtection != types.ReplicationOverwriteProtectionReplicating ||
		aws.ToString(dst.Name) != "prod-data" || dst.LifeCycleState != types.LifeCycleStateAvailable {
		t.Fatalf("destination file system: %+v", dst)
	}
	// Seen from the destination too, and by ARN.
	if got := describeReplication(t, c, dstID); aws.ToString(got.SourceFileSystemId) != *src.FileSystemId {
		t.Fatalf("by destination: %+v", got)
	}
	describeReplication(t, c, *src.FileSystemArn)

	// Continuous: changes flow by themselves, deletes and renames included.
	changeAt := time.Now()
	os.WriteFile(filepath.Join(srcDir, "new.txt"), []byte("new"), 0o644)
	os.WriteFile(filepath.Join(srcDir, "docs", "readme.txt"), []byte("changed, and the hard link with it\n"), 0o644)
	os.Remove(filepath.Join(srcDir, "link"))
	os.Rename(filepath.Join(srcDir, "docs", "deep"), filepath.Join(srcDir, "moved"))
	os.RemoveAll(filepath.Join(srcDir, "private"))
	rep = waitReplicated(t, c, *src.FileSystemId, srcDir, dstDir, changeAt)
	if !rep.Destinations[0].LastReplicatedTimestamp.After(first) {
		t.Fatal("LastReplicatedTimestamp did not advance")
	}

	// While replicating: the destination's protection is fixed and neither side can be deleted.
	_, err = c.UpdateFileSystemProtection(ctx, &efs.UpdateFileSystemProtectionInput{FileSystemId: aws.String(dstID),
		ReplicationOverwriteProtection: types.ReplicationOverwriteProtectionEnabled})
	if ae := wantAPIError(t, err, "ReplicationAlreadyExists"); !strings.Contains(ae.ErrorMessage(), "replication destination") {
		t.Fatalf("message: %s", ae.ErrorMessage())
	}
	for _, id := range []string{*src.FileSystemId, dstID} {
		_, err = c.DeleteFileSystem(ctx, &efs.DeleteFileSystemInput{FileSystemId: aws.String(id)})
		if ae := wantAPIError(t, err, "FileSystemInUse"); !strings.Contains(ae.ErrorMessage(), "replication") {
			t.Fatalf("message: %s", ae.ErrorMessage())
		}
	}

	// Delete: DELETING, then gone; the destination is writable again and keeps its data.
	if _, err := c.DeleteReplicationConfiguration(ctx, &efs.DeleteReplicationConfigurationInput{SourceFileSystemId: src.FileSystemId}); err != nil {
		t.Fatal(err)
	}
	waitReplicationGone(t, c, *src.FileSystemId)
	dst = describe(t, c, dstID)
	if dst.FileSystemProtection.ReplicationOverwriteProtection != types.ReplicationOverwriteProtectionEnabled {
		t.Fatalf("destination protection after delete: %s", dst.FileSystemProtection.ReplicationOverwriteProtection)
	}
	if diff := efstest.TreeDiff(srcDir, dstDir); diff != "" {
		t.Fatalf("destination lost data: %s", diff)
	}
	_, err = c.DescribeReplicationConfigurations(ctx, &efs.DescribeReplicationConfigurationsInput{FileSystemId: aws.String(dstID)})
	wantAPIError(t, err, "ReplicationNotFound")
	// Changes no longer flow.
	os.WriteFile(filepath.Join(srcDir, "after.txt"), []byte("after"), 0o644)
	if _, err := c.UpdateFileSystemProtection(ctx, &efs.UpdateFileSystemProtectionInput{FileSystemId: aws.String(dstID),
		ReplicationOverwriteProtection: types.ReplicationOverwriteProtectionDisabled}); err != nil {
		t.Fatalf("destination protection not changeable after delete: %v", err)
	}
	if _, err := c.DeleteFileSystem(ctx, &efs.DeleteFileSystemInput{FileSystemId: src.FileSystemId}); err != nil {
		t.Fatalf("source not deletable after the configuration is gone: %v", err)
	}
}

// waitReplicationGone waits, as Terraform does, for the configuration to
// be absent on two polls in a row, failing if it is ever ENABLED again.
func waitReplicationGone(t *testing.T, c *efs.Client, id string) {
	t.Helper()
	absent := 0
	efstest.Eventually(t, 10*time.Second, "replication configuration to disappear", func() bool {
		out, err := c.DescribeReplicationConfigurations(context.Background(), &efs.DescribeReplicationConfigurationsInput{FileSystemId: aws.String(id)})
		if err != nil {
			if !strings.Contains(err.Error(), "ReplicationNotFound") && !strings.Contains(err.Error(), "FileSystemNotFound") {
				t.Fatalf("describe while deleting: %v", err)
			}
			absent++
			return absent >= 2
		}
		absent = 0
		if s := out.Replications[0].Destinations[0].Status; s != types.ReplicationStatusDeleting {
			t.Fatalf("status %s during deletion, want DELETING", s)
		}
		return false
	})
}

func TestReplicationCrossRegionTerraformDelete(t *testing.T) {
	srv := efstest.Start(t)
	east := srv.Client(efstest.AccountA, "us-east-1")
	west := srv.Client(efstest.AccountA, "eu-west-1")
	ctx := context.Background()
	src := createFS(t, east, "cross-region")
	srcDir := fsDir(srv, efstest.AccountA, "us-east-1", *src.FileSystemId)
	os.WriteFile(filepath.Join(srcDir, "a"), []byte("a"), 0o644)

	out, err := east.CreateReplicationConfiguration(ctx, &efs.CreateReplicationConfigurationInput{
		SourceFileSystemId: src.FileSystemId,
		Destinations:       []types.DestinationToCreate{{Region: aws.String("eu-west-1"), KmsKeyId: aws.String("alias/replica")}},
	})
	if err != nil {
		t.Fatal(err)
	}
	dstID := *out.Destinations[0].FileSystemId
	dstDir := fsDir(srv, efstest.AccountA, "eu-west-1", dstID)
	waitReplicated(t, east, *src.FileSystemId, srcDir, dstDir, time.Time{})

	dst := describe(t, west, dstID)
	if !strings.HasPrefix(aws.ToString(dst.KmsKeyId), "arn:aws:kms:eu-west-1:111111111111:key/") {
		t.Fatalf("destination key %s", aws.ToString(dst.KmsKeyId))
	}
	// Each region describes its own side; the destination region resolves the source's ID too.
	for _, q := range []string{dstID, *src.FileSystemId} {
		if got := describeReplication(t, west, q); aws.ToString(got.Destinations[0].Region) != "eu-west-1" ||
			aws.ToString(got.SourceFileSystemRegion) != "us-east-1" {
			t.Fatalf("west view by %s: %+v", q, got)
		}
	}
	list, err := west.DescribeReplicationConfigurations(ctx, &efs.DescribeReplicationConfigurationsInput{})
	if err != nil || len(list.Replications) != 1 {
		t.Fatalf("west list: %v %+v", err, list)
	}
	_, err = srv.Client(efstest.AccountA, "ap-south-1").DescribeReplicationConfigurations(ctx,
		&efs.DescribeReplicationConfigurationsInput{FileSystemId: src.FileSystemId})
	wantAPIError(t, err, "FileSystemNotFound")
	_, err = west.DeleteReplicationConfiguration(ctx, &efs.DeleteReplicationConfigurationInput{SourceFileSystemId: src.FileSystemId,
		DeletionMode: types.DeletionModeLocalConfigurationOnly})
	if err != nil {
		// LOCAL_CONFIGURATION_ONLY is legal cross-region; undo is impossible, so test it on its own below.
		t.Fatal(err)
	}
	// The source side now reports the configuration broken; the destination side is gone and writable.
	east2 := describeReplication(t, east, *src.FileSystemId)
	if east2.Destinations[0].Status != types.ReplicationStatusError || aws.ToString(east2.Destinations[0].StatusMessage) == "" {
		t.Fatalf("source side after local delete at destination: %+v", east2.Destinations[0])
	}
	_, err = west.DescribeReplicationConfigurations(ctx, &efs.DescribeReplicationConfigurationsInput{FileSystemId: aws.String(dstID)})
	wantAPIError(t, err, "ReplicationNotFound")
	if got := describe(t, west, dstID); got.FileSystemProtection.ReplicationOverwriteProtection != types.ReplicationOverwriteProtectionEnabled {
		t.Fatalf("destination protection %s", got.FileSystemProtection.ReplicationOverwriteProtection)
	}
	if _, err := east.DeleteReplicationConfiguration(ctx, &efs.DeleteReplicationConfigurationInput{SourceFileSystemId: src.FileSystemId}); err != nil {
		t.Fatal(err)
	}
	waitReplicationGone(t, east, *src.FileSystemId)

	// Terraform's delete: first in the destination region with the source's ID, then in the source region.
	src2 := createFS(t, east, "cross-region-2")
	if _, err := east.CreateReplicationConfiguration(ctx, &efs.CreateReplicationConfigurationInput{
		SourceFileSystemId: src2.FileSystemId,
		Destinations:       []types.DestinationToCreate{{Region: aws.String("eu-west-1")}},
	}); err != nil {
		t.Fatal(err)
	}
	efstest.Eventually(t, 10*time.Second, "ENABLED", func() bool {
		return describeReplication(t, east, *src2.FileSystemId).Destinations[0].Status == types.ReplicationStatusEnabled
	})
	if _, err := west.DeleteReplicationConfiguration(ctx, &efs.DeleteReplicationConfigurationInput{SourceFileSystemId: src2.FileSystemId}); err != nil {
		t.Fatal(err)
	}
	waitReplicationGone(t, west, *src2.FileSystemId)
	waitReplicationGone(t, east, *src2.FileSystemId)
	_, err = east.DeleteReplicationConfiguration(ctx, &efs.DeleteReplicationConfigurationInput{SourceFileSystemId: src2.FileSystemId})
	wantAPIError(t, err, "ReplicationNotFound")
}

func TestReplicationToExistingDestination(t *testing.T) {
	srv := efstest.Start(t)
	c := srv.Client(efstest.AccountA, region)
	ctx := context.Background()
	src := createFS(t, c, "src")
	dst := createFS(t, c, "dst")
	srcDir := fsDir(srv, efstest.AccountA, region, *src.FileSystemId)
	dstDir := fsDir(srv, efstest.AccountA, region, *dst.FileSystemId)
	makeTree(t, srcDir)
	os.WriteFile(filepath.Join(dstDir, "extra.txt"), []byte("only here"), 0o644)
	os.MkdirAll(filepath.Join(dstDir, "docs"), 0o700)
	os.WriteFile(filepath.Join(dstDir, "docs", "readme.txt"), []byte("stale"), 0o600)
	// Same size and mtime as the source's, other bytes: rewritten (issue
	// #9); same size, mtime and bytes: kept, inode and all.
	// The mtimes are old, as in any real tree: no "recently modified"
	// heuristic can catch these.
	sameMeta := func(rel string, data []byte) {
		t.Helper()
		mtime := time.Date(2019, 5, 6, 7, 8, 9, 10, time.UTC)
		if err := os.Chtimes(filepath.Join(srcDir, rel), mtime, mtime); err != nil {
			t.Fatal(err)
		}
		p := filepath.Join(dstDir, rel)
		os.MkdirAll(filepath.Dir(p), 0o755)
		if err := os.WriteFile(p, data, 0o600); err != nil {
			t.Fatal(err)
		}
		os.Chtimes(p, mtime, mtime)
	}
	sameMeta("docs/deep/er/big.bin", bytes.Repeat([]byte{'x'}, 3<<20))
	sameMeta("script.sh", []byte("#!/bin/sh\necho ho\n"))
	sameMeta("private/owned", []byte("x"))
	keptIno := inode(t, filepath.Join(dstDir, "private", "owned"))

	create := func(dstRef string) error {
		_, err := c.CreateReplicationConfiguration(ctx, &efs.CreateReplicationConfigurationInput{SourceFileSystemId: src.FileSystemId,
			Destinations: []types.DestinationToCreate{{FileSystemId: aws.String(dstRef)}}})
		return err
	}
	ae := wantAPIError(t, create(*dst.FileSystemId), "BadRequest")
	if !strings.Contains(ae.ErrorMessage(), "DISABLED") {
		t.Fatalf("message: %s", ae.ErrorMessage())
	}
	if _, err := c.UpdateFileSystemProtection(ctx, &efs.UpdateFileSystemProtectionInput{FileSystemId: dst.FileSystemId,
		ReplicationOverwriteProtection: types.ReplicationOverwriteProtectionDisabled}); err != nil {
		t.Fatal(err)
	}
	if err := create(*dst.FileSystemArn); err != nil {
		t.Fatal(err)
	}
	waitReplicated(t, c, *src.FileSystemId, srcDir, dstDir, time.Time{})
	if inode(t, filepath.Join(dstDir, "private", "owned")) != keptIno {
		t.Error("an identical file of the existing destination was rewritten")
	}
	if got := describe(t, c, *dst.FileSystemId); got.FileSystemProtection.ReplicationOverwriteProtection != types.ReplicationOverwriteProtectionReplicating {
		t.Fatalf("protection %s", got.FileSystemProtection.ReplicationOverwriteProtection)
	}

	// Encrypted source to an unencrypted destination.
	enc := createFS(t, c, "enc", func(in *efs.CreateFileSystemInput) { in.Encrypted = aws.Bool(true) })
	plain := createFS(t, c, "plain")
	c.UpdateFileSystemProtection(ctx, &efs.UpdateFileSystemProtectionInput{FileSystemId: plain.FileSystemId,
		ReplicationOverwriteProtection: types.ReplicationOverwriteProtectionDisabled})
	_, err := c.CreateReplicationConfiguration(ctx, &efs.CreateReplicationConfigurationInput{SourceFileSystemId: enc.FileSystemId,
		Destinations: []types.DestinationToCreate{{FileSystemId: plain.FileSystemId}}})
	wantAPIError(t, err, "ConflictException")
}

func TestReplicationRejections(t *testing.T) {
	srv := efstest.Start(t, efstest.WithConfig(func(c *daemon.Config) { c.FileSystemQuota = 10 }))
	c := srv.Client(efstest.AccountA, region)
	raw := srv.UnvalidatedClient(efstest.AccountA, region)
	ctx := context.Background()
	a := createFS(t, c, "a")
	b := createFS(t, c, "b")
	c.UpdateFileSystemProtection(ctx, &efs.UpdateFileSystemProtectionInput{FileSystemId: b.FileSystemId,
		ReplicationOverwriteProtection: types.ReplicationOverwriteProtectionDisabled})
	free := createFS(t, c, "free")
	c.UpdateFileSystemProtection(ctx, &efs.UpdateFileSystemProtectionInput{FileSystemId: free.FileSystemId,
		ReplicationOverwriteProtection: types.ReplicationOverwriteProtectionDisabled})
	if _, err := c.CreateReplicationConfiguration(ctx, &efs.CreateReplicationConfigurationInput{SourceFileSystemId: a.FileSystemId,
		Destinations: []types.DestinationToCreate{{FileSystemId: b.FileSystemId}}}); err != nil {
		t.Fatal(err)
	}
	create := func(cl *efs.Client, srcID *string, dests ...types.DestinationToCreate) error {
		_, err := cl.CreateReplicationConfiguration(ctx, &efs.CreateReplicationConfigurationInput{SourceFileSystemId: srcID, Destinations: dests})
		return err
	}
	for _, tc := range []struct {
		name string
		err  error
		code string
	}{
		{"no destination", create(raw, free.FileSystemId), "ValidationException"},
		{"two destinations", create(raw, free.FileSystemId, types.DestinationToCreate{Region: aws.String(region)}, types.DestinationToCreate{Region: aws.String("eu-west-1")}), "BadRequest"},
		{"source already a source", create(c, a.FileSystemId, types.DestinationToCreate{Region: aws.String(region)}), "ReplicationAlreadyExists"},
		{"source already a destination", create(c, b.FileSystemId, types.DestinationToCreate{Region: aws.String(region)}), "ReplicationAlreadyExists"},
		{"destination already a destination", create(c, free.FileSystemId, types.DestinationToCreate{FileSystemId: b.FileSystemId}), "ReplicationAlreadyExists"},
		{"destination already a source", create(c, free.FileSystemId, types.DestinationToCreate{FileSystemId: a.FileSystemId}), "ReplicationAlreadyExists"},
		{"destination is the source", create(c, free.FileSystemId, types.DestinationToCreate{FileSystemId: free.FileSystemId}), "BadRequest"},
		{"unknown source", create(c, aws.String("fs-0123456789abcdef0"), types.DestinationToCreate{Region: aws.String(region)}), "FileSystemNotFound"},
		{"unknown destination", create(c, free.FileSystemId, types.DestinationToCreate{FileSystemId: aws.String("fs-0123456789abcdef0")}), "FileSystemNotFound"},
		{"unknown region", create(raw, free.FileSystemId, types.DestinationToCreate{Region: aws.String("xx-nowhere-1")}), "BadRequest"},
		{"AZ outside the region", create(c, free.FileSystemId, types.DestinationToCreate{Region: aws.String("eu-west-1"), AvailabilityZoneName: aws.String("us-east-1a")}), "UnsupportedAvailabilityZone"},
		{"unknown AZ", create(c, free.FileSystemId, types.DestinationToCreate{AvailabilityZoneName: aws.String("mars-1a")}), "UnsupportedAvailabilityZone"},
		{"bad KMS key", create(raw, free.FileSystemId, types.DestinationToCreate{Region: aws.String(region), KmsKeyId: aws.String("bad")}), "ValidationException"},
		{"bad region pattern", create(raw, free.FileSystemId, types.DestinationToCreate{Region: aws.String(strings.Repeat("x", 100))}), "ValidationException"},
	} {
		t.Run(tc.name, func(t *testing.T) { wantAPIError(t, tc.err, tc.code) })
	}

	// A source that is not available yet (a server whose file systems take a minute to create).
	slowSrv := efstest.Start(t, efstest.WithConfig(func(c *daemon.Config) { c.TransitionDelay = time.Minute }))
	slow := slowSrv.Client(efstest.AccountA, region)
	pending, err := slow.CreateFileSystem(ctx, &efs.CreateFileSystemInput{CreationToken: aws.String("pending")})
	if err != nil {
		t.Fatal(err)
	}
	wantAPIError(t, create(slow, pending.FileSystemId, types.DestinationToCreate{Region: aws.String(region)}), "IncorrectFileSystemLifeCycleState")

	// The six KMS key forms are accepted for a new destination; One Zone by AZ alone or with its region.
	const uuid = "1234abcd-12ab-34cd-56ef-1234567890ab"
	for i, dest := range []types.DestinationToCreate{
		{Region: aws.String(region), KmsKeyId: aws.String(uuid)},
		{Region: aws.String("eu-west-1"), KmsKeyId: aws.String("mrk-" + strings.Repeat("a", 32))},
		{Region: aws.String("eu-west-2"), KmsKeyId: aws.String("alias/projectKey1")},
		{Region: aws.String("eu-west-3"), KmsKeyId: aws.String("arn:aws:kms:us-west-2:111111111111:key/" + uuid)},
		{Region: aws.String("ap-south-1"), KmsKeyId: aws.String("arn:aws:kms:us-west-2:111111111111:key/mrk-" + strings.Repeat("b", 32))},
		{Region: aws.String("ap-south-2"), KmsKeyId: aws.String("arn:aws:kms:us-west-2:111111111111:alias/projectKey1")},
		{AvailabilityZoneName: aws.String("eu-central-1b")},
		{Region: aws.String("sa-east-1"), AvailabilityZoneName: aws.String("sa-east-1a")},
	} {
		s := createFS(t, srv.Client(efstest.AccountA, "us-west-2"), "kms-"+string(rune('a'+i)))
		_, err := srv.Client(efstest.AccountA, "us-west-2").CreateReplicationConfiguration(ctx, &efs.CreateReplicationConfigurationInput{
			SourceFileSystemId: s.FileSystemId, Destinations: []types.DestinationToCreate{dest}})
		if err != nil {
			t.Fatalf("destination %d (%+v): %v", i, dest, err)
		}
		if dest.AvailabilityZoneName != nil {
			rep := describeReplication(t, srv.Client(efstest.AccountA, "us-west-2"), *s.FileSystemId)
			r := aws.ToString(rep.Destinations[0].Region)
			got := describe(t, srv.Client(efstest.AccountA, r), *rep.Destinations[0].FileSystemId)
			if aws.ToString(got.AvailabilityZoneName) != *dest.AvailabilityZoneName || got.PerformanceMode != types.PerformanceModeGeneralPurpose {
				t.Fatalf("One Zone destination: %+v", got)
			}
			bp, _ := srv.Client(efstest.AccountA, r).DescribeBackupPolicy(ctx, &efs.DescribeBackupPolicyInput{FileSystemId: got.FileSystemId})
			if bp == nil || bp.BackupPolicy.Status != types.StatusEnabled {
				t.Fatalf("One Zone destination backups: %+v", bp)
			}
		}
	}

	// Quota of the destination account and region.
	for i := 0; ; i++ {
		_, err := c.CreateFileSystem(ctx, &efs.CreateFileSystemInput{CreationToken: aws.String("fill-" + string(rune('a'+i)))})
		if err != nil {
			wantAPIError(t, err, "FileSystemLimitExceeded")
			break
		}
		if i > 10 {
			t.Fatal("quota never reached")
		}
	}
	wantAPIError(t, create(c, free.FileSystemId, types.DestinationToCreate{Region: aws.String(region)}), "FileSystemLimitExceeded")

	// Describe and delete errors.
	_, err = c.DescribeReplicationConfigurations(ctx, &efs.DescribeReplicationConfigurationsInput{FileSystemId: free.FileSystemId})
	wantAPIError(t, err, "ReplicationNotFound")
	_, err = c.DescribeReplicationConfigurations(ctx, &efs.DescribeReplicationConfigurationsInput{FileSystemId: aws.String("fs-0123456789abcdef0")})
	wantAPIError(t, err, "FileSystemNotFound")
	_, err = c.DeleteReplicationConfiguration(ctx, &efs.DeleteReplicationConfigurationInput{SourceFileSystemId: free.FileSystemId})
	wantAPIError(t, err, "ReplicationNotFound")
	_, err = c.DeleteReplicationConfiguration(ctx, &efs.DeleteReplicationConfigurationInput{SourceFileSystemId: aws.String("fs-0123456789abcdef0")})
	wantAPIError(t, err, "FileSystemNotFound")
	_, err = c.DeleteReplicationConfiguration(ctx, &efs.DeleteReplicationConfigurationInput{SourceFileSystemId: a.FileSystemId,
		DeletionMode: types.DeletionModeLocalConfigurationOnly})
	wantAPIError(t, err, "BadRequest")
	_, err = raw.DeleteReplicationConfiguration(ctx, &efs.DeleteReplicationConfigurationInput{SourceFileSystemId: a.FileSystemId, DeletionMode: "BOGUS"})
	wantAPIError(t, err, "ValidationException")
}

func TestReplicationCrossAccount(t *testing.T) {
	srv := efstest.Start(t)
	a := srv.Client(efstest.AccountA, region)
	b := srv.Client(efstest.AccountB, "eu-west-1")
	ctx := context.Background()
	src := createFS(t, a, "xa-src")
	dst := createFS(t, b, "xa-dst")
	os.WriteFile(filepath.Join(fsDir(srv, efstest.AccountA, region, *src.FileSystemId), "f"), []byte("cross"), 0o644)
	if _, err := b.UpdateFileSystemProtection(ctx, &efs.UpdateFileSystemProtectionInput{FileSystemId: dst.FileSystemId,
		ReplicationOverwriteProtection: types.ReplicationOverwriteProtectionDisabled}); err != nil {
		t.Fatal(err)
	}
	create := func(d types.DestinationToCreate) error {
		_, err := a.CreateReplicationConfiguration(ctx, &efs.CreateReplicationConfigurationInput{SourceFileSystemId: src.FileSystemId,
			Destinations: []types.DestinationToCreate{d}})
		return err
	}
	role := "arn:aws:iam::111111111111:role/efs-replication"
	wantAPIError(t, create(types.DestinationToCreate{Region: aws.String("eu-west-1"), FileSystemId: dst.FileSystemId, RoleArn: aws.String(role)}), "FileSystemNotFound")
	ae := wantAPIError(t, create(types.DestinationToCreate{FileSystemId: dst.FileSystemArn}), "BadRequest")
	if ae.ErrorMessage() != "No RoleArn provided.  RoleArn is required for cross-account replication." {
		t.Fatalf("message %q", ae.ErrorMessage())
	}
	wantAPIError(t, create(types.DestinationToCreate{FileSystemId: dst.FileSystemArn, RoleArn: aws.String("arn:aws:iam::222222222222:role/x")}), "BadRequest")
	// An account this server does not have is refused as any destination
	// that does not consent is (crossaccount_test.go).
	wantAPIError(t, create(types.DestinationToCreate{FileSystemId: aws.String("arn:aws:elasticfilesystem:eu-west-1:333333333333:file-system/fs-0123456789abcdef0"),
		RoleArn: aws.String(role)}), "FileSystemNotFound")
	wantAPIError(t, create(types.DestinationToCreate{FileSystemId: dst.FileSystemArn, RoleArn: aws.String(role)}), "FileSystemNotFound")
	if _, err := b.PutFileSystemPolicy(ctx, &efs.PutFileSystemPolicyInput{FileSystemId: dst.FileSystemId,
		Policy: aws.String(destinationPolicy("arn:aws:iam::"+efstest.AccountA.Account+":root", *dst.FileSystemArn))}); err != nil {
		t.Fatal(err)
	}
	if err := create(types.DestinationToCreate{FileSystemId: dst.FileSystemArn, RoleArn: aws.String(role)}); err != nil {
		t.Fatal(err)
	}
	waitReplicated(t, a, *src.FileSystemId, fsDir(srv, efstest.AccountA, region, *src.FileSystemId),
		fsDir(srv, efstest.AccountB, "eu-west-1", *dst.FileSystemId), time.Time{})
	got := describeReplication(t, b, *dst.FileSystemId)
	if aws.ToString(got.Destinations[0].OwnerId) != efstest.AccountB.Account || aws.ToString(got.SourceFileSystemOwnerId) != efstest.AccountA.Account ||
		aws.ToString(got.Destinations[0].RoleArn) != role {
		t.Fatalf("destination account view: %+v", got)
	}
	// Nobody else sees it.
	list, err := srv.Client(efstest.AccountB, region).DescribeReplicationConfigurations(ctx, &efs.DescribeReplicationConfigurationsInput{})
	if err != nil || len(list.Replications) != 0 {
		t.Fatalf("account B in %s sees %v (%v)", region, list, err)
	}
}

func TestFailoverAndFailback(t *testing.T) {
	srv := efstest.Start(t)
	c := srv.Client(efstest.AccountA, region)
	ctx := context.Background()
	// Encrypted, as EFS makes every new destination: failing back into an
	// unencrypted primary would be a ConflictException.
	primary := createFS(t, c, "primary", func(in *efs.CreateFileSystemInput) { in.Encrypted = aws.Bool(true) })
	pDir := fsDir(srv, efstest.AccountA, region, *primary.FileSystemId)
	for i := range 50 {
		p := filepath.Join(pDir, "file-"+string(rune('a'+i%26))+string(rune('a'+i/26)))
		os.WriteFile(p, []byte(strings.Repeat("x", i*100)), 0o644)
		mtime := time.Date(2019, 5, 6, 7, 8, 9, 10, time.UTC) // old, as in any real tree
		os.Chtimes(p, mtime, mtime)
	}
	out, err := c.CreateReplicationConfiguration(ctx, &efs.CreateReplicationConfigurationInput{SourceFileSystemId: primary.FileSystemId,
		Destinations: []types.DestinationToCreate{{Region: aws.String(region)}}})
	if err != nil {
		t.Fatal(err)
	}
	replica := *out.Destinations[0].FileSystemId
	rDir := fsDir(srv, efstest.AccountA, region, replica)
	waitReplicated(t, c, *primary.FileSystemId, pDir, rDir, time.Time{})

	// Failover: delete the configuration and write to the replica.
	if _, err := c.DeleteReplicationConfiguration(ctx, &efs.DeleteReplicationConfigurationInput{SourceFileSystemId: primary.FileSystemId}); err != nil {
		t.Fatal(err)
	}
	waitReplicationGone(t, c, *primary.FileSystemId)
	os.WriteFile(filepath.Join(rDir, "written-after-failover"), []byte("new data"), 0o644)
	os.WriteFile(filepath.Join(rDir, "file-aa"), []byte("changed at the replica"), 0o644)
	// Rewritten at the replica keeping size and mtime (cp -p, tar -x): the
	// primary's copy has the same size and mtime but old bytes (issue #9).
	restored := filepath.Join(rDir, "file-ab")
	fi, _ := os.Stat(restored)
	os.WriteFile(restored, bytes.Repeat([]byte("y"), int(fi.Size())), 0o644)
	os.Chtimes(restored, fi.ModTime(), fi.ModTime())

	inodes := map[string]uint64{}
	entries, _ := os.ReadDir(pDir)
	for _, e := range entries {
		var st syscall.Stat_t
		syscall.Stat(filepath.Join(pDir, e.Name()), &st)
		inodes[e.Name()] = st.Ino
	}

	// Failback: replicate the replica into the primary (protection DISABLED first).
	if _, err := c.UpdateFileSystemProtection(ctx, &efs.UpdateFileSystemProtectionInput{FileSystemId: primary.FileSystemId,
		ReplicationOverwriteProtection: types.ReplicationOverwriteProtectionDisabled}); err != nil {
		t.Fatal(err)
	}
	back, err := c.CreateReplicationConfiguration(ctx, &efs.CreateReplicationConfigurationInput{SourceFileSystemId: aws.String(replica),
		Destinations: []types.DestinationToCreate{{FileSystemId: primary.FileSystemId}}})
	if err != nil {
		t.Fatal(err)
	}
	if aws.ToString(back.OriginalSourceFileSystemArn) != *primary.FileSystemArn {
		t.Fatalf("OriginalSourceFileSystemArn = %s, want the primary %s", aws.ToString(back.OriginalSourceFileSystemArn), *primary.FileSystemArn)
	}
	waitReplicated(t, c, replica, rDir, pDir, time.Time{})
	// Only the differences moved: untouched files keep their inodes.
	kept := 0
	for name, ino := range inodes {
		var st syscall.Stat_t
		syscall.Stat(filepath.Join(pDir, name), &st)
		changed := name == "file-aa" || name == "file-ab"
		if !changed && st.Ino == ino {
			kept++
		}
		if changed && st.Ino == ino {
			t.Fatalf("changed file %s was not rewritten", name)
		}
	}
	if kept != len(inodes)-2 {
		t.Fatalf("%d of %d unchanged files were rewritten during failback", len(inodes)-2-kept, len(inodes)-2)
	}
}

func inode(t *testing.T, path string) uint64 {
	t.Helper()
	var st syscall.Stat_t
	if err := syscall.Stat(path, &st); err != nil {
		t.Fatal(err)
	}
	return st.Ino
}
