package api_test

import (
	"context"
	"os"
	"path/filepath"
	"regexp"
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

func TestFileSystemLifecycle(t *testing.T) {
	srv := efstest.Start(t)
	c := srv.Client(efstest.AccountA, region)
	ctx := context.Background()

	fs := createFS(t, c, "lifecycle", func(in *efs.CreateFileSystemInput) {
		in.Tags = []types.Tag{{Key: aws.String("Name"), Value: aws.String("data")}, {Key: aws.String("team"), Value: aws.String("dr")}}
	})
	id := *fs.FileSystemId
	if !regexp.MustCompile(`^fs-[0-9a-f]{17}$`).MatchString(id) {
		t.Fatalf("id %q is not a long EFS id", id)
	}
	wantARN := "arn:aws:elasticfilesystem:us-east-1:111111111111:file-system/" + id
	if aws.ToString(fs.FileSystemArn) != wantARN || aws.ToString(fs.OwnerId) != "111111111111" {
		t.Fatalf("arn/owner = %s/%s", aws.ToString(fs.FileSystemArn), aws.ToString(fs.OwnerId))
	}
	if aws.ToString(fs.Name) != "data" || fs.PerformanceMode != types.PerformanceModeGeneralPurpose ||
		fs.ThroughputMode != types.ThroughputModeBursting || aws.ToBool(fs.Encrypted) {
		t.Fatalf("defaults wrong: %+v", fs)
	}
	if fs.FileSystemProtection == nil || fs.FileSystemProtection.ReplicationOverwriteProtection != types.ReplicationOverwriteProtectionEnabled {
		t.Fatalf("protection = %+v, want ENABLED", fs.FileSystemProtection)
	}
	if fs.CreationTime == nil || time.Since(*fs.CreationTime) > time.Minute {
		t.Fatalf("creation time %v", fs.CreationTime)
	}

	// Describe by ARN and by creation token find the same file system.
	if got := describe(t, c, wantARN); *got.FileSystemId != id {
		t.Fatalf("by ARN: %s", *got.FileSystemId)
	}
	byToken, err := c.DescribeFileSystems(ctx, &efs.DescribeFileSystemsInput{CreationToken: aws.String("lifecycle")})
	if err != nil || len(byToken.FileSystems) != 1 || *byToken.FileSystems[0].FileSystemId != id {
		t.Fatalf("by token: %v %+v", err, byToken)
	}
	none, err := c.DescribeFileSystems(ctx, &efs.DescribeFileSystemsInput{CreationToken: aws.String("nope")})
	if err != nil || len(none.FileSystems) != 0 {
		t.Fatalf("unknown token: %v %+v", err, none)
	}

	// The file system's data lives in its directory, and SizeInBytes meters it.
	dir := srv.Volumes().Path(internalefs.FSKey{Account: "111111111111", Region: region, ID: id})
	if err := os.WriteFile(filepath.Join(dir, "blob"), make([]byte, 1<<20), 0o644); err != nil {
		t.Fatal(err)
	}
	efstest.Eventually(t, 10*time.Second, "SizeInBytes to count the new file", func() bool {
		d := describe(t, c, id)
		return d.SizeInBytes.Value >= 1<<20 && aws.ToInt64(d.SizeInBytes.ValueInStandard) == d.SizeInBytes.Value &&
			d.SizeInBytes.Timestamp != nil && !d.SizeInBytes.Timestamp.Before(*fs.CreationTime)
	})

	if _, err := c.DeleteFileSystem(ctx, &efs.DeleteFileSystemInput{FileSystemId: aws.String(id)}); err != nil {
		t.Fatal(err)
	}
	efstest.Eventually(t, 10*time.Second, "file system to be gone", func() bool {
		_, err := c.DescribeFileSystems(ctx, &efs.DescribeFileSystemsInput{FileSystemId: aws.String(id)})
		return err != nil && strings.Contains(err.Error(), "FileSystemNotFound")
	})
	_, err = c.DescribeFileSystems(ctx, &efs.DescribeFileSystemsInput{FileSystemId: aws.String(id)})
	wantAPIError(t, err, "FileSystemNotFound")
	if _, err := os.Stat(dir); !os.IsNotExist(err) {
		t.Fatalf("data directory still there after delete: %v", err)
	}
	_, err = c.DeleteFileSystem(ctx, &efs.DeleteFileSystemInput{FileSystemId: aws.String(id)})
	wantAPIError(t, err, "FileSystemNotFound")
}

func TestCreateFileSystemRules(t *testing.T) {
	srv := efstest.Start(t, efstest.WithConfig(func(c *daemon.Config) { c.FileSystemQuota = 3 }))
	c := srv.Client(efstest.AccountA, region)
	ctx := context.Background()

	first := createFS(t, c, "dup")
	_, err := c.CreateFileSystem(ctx, &efs.CreateFileSystemInput{CreationToken: aws.String("dup")})
	ae := wantAPIError(t, err, "FileSystemAlreadyExists")
	var exists *types.FileSystemAlreadyExists
	if e, ok := ae.(*types.FileSystemAlreadyExists); !ok || aws.ToString(e.FileSystemId) != *first.FileSystemId {
		t.Fatalf("FileSystemAlreadyExists = %#v (%T), want FileSystemId %s", exists, ae, *first.FileSystemId)
	}

	for _, tc := range []struct {
		name string
		in   efs.CreateFileSystemInput
		code string
	}{
		{"provisioned without throughput", efs.CreateFileSystemInput{ThroughputMode: types.ThroughputModeProvisioned}, "BadRequest"},
		{"throughput without provisioned", efs.CreateFileSystemInput{ProvisionedThroughputInMibps: aws.Float64(10)}, "BadRequest"},
		{"throughput above limit", efs.CreateFileSystemInput{ThroughputMode: types.ThroughputModeProvisioned, ProvisionedThroughputInMibps: aws.Float64(5000)}, "ThroughputLimitExceeded"},
		{"kms without encryption", efs.CreateFileSystemInput{KmsKeyId: aws.String("alias/mine")}, "BadRequest"},
		{"maxIO with elastic", efs.CreateFileSystemInput{PerformanceMode: types.PerformanceModeMaxIo, ThroughputMode: types.ThroughputModeElastic}, "BadRequest"},
		{"AZ of another region", efs.CreateFileSystemInput{AvailabilityZoneName: aws.String("eu-west-1a")}, "UnsupportedAvailabilityZone"},
		{"One Zone maxIO", efs.CreateFileSystemInput{AvailabilityZoneName: aws.String("us-east-1a"), PerformanceMode: types.PerformanceModeMaxIo}, "BadRequest"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			in := tc.in
			in.CreationToken = aws.String(tc.name)
			_, err := c.CreateFileSystem(ctx, &in)
			wantAPIError(t, err, tc.code)
		})
	}

	createFS(t, c, "second")
	createFS(t, c, "third")
	_, err = c.CreateFileSystem(ctx, &efs.CreateFileSystemInput{CreationToken: aws.String("fourth")})
	wantAPIError(t, err, "FileSystemLimitExceeded")
	// The quota is per account: another account still has room.
	createFS(t, srv.Client(efstest.AccountB, region), "fourth")
}

func TestOneZoneAndEncryption(t *testing.T) {
	srv := efstest.Start(t)
	c := srv.Client(efstest.AccountA, region)
	ctx := context.Background()

	oz := createFS(t, c, "onezone", func(in *efs.CreateFileSystemInput) { in.AvailabilityZoneName = aws.String("us-east-1b") })
	if aws.ToString(oz.AvailabilityZoneName) != "us-east-1b" || aws.ToString(oz.AvailabilityZoneId) != "use1-az2" {
		t.Fatalf("AZ = %s / %s", aws.ToString(oz.AvailabilityZoneName), aws.ToString(oz.AvailabilityZoneId))
	}
	bp, err := c.DescribeBackupPolicy(ctx, &efs.DescribeBackupPolicyInput{FileSystemId: oz.FileSystemId})
	if err != nil || bp.BackupPolicy.Status != types.StatusEnabled {
		t.Fatalf("One Zone backup = %+v, %v; want ENABLED", bp, err)
	}
	regional := createFS(t, c, "regional")
	bp, err = c.DescribeBackupPolicy(ctx, &efs.DescribeBackupPolicyInput{FileSystemId: regional.FileSystemId})
	if err != nil || bp.BackupPolicy.Status != types.StatusDisabled {
		t.Fatalf("regional backup = %+v, %v; want DISABLED", bp, err)
	}

	const uuid = "1234abcd-12ab-34cd-56ef-1234567890ab"
	for token, tc := range map[string]struct{ key, want string }{
		"default": {"", "arn:aws:kms:us-east-1:111111111111:key/"},
		"uuid":    {uuid, "arn:aws:kms:us-east-1:111111111111:key/" + uuid},
		"alias":   {"alias/projectKey1", "arn:aws:kms:us-east-1:111111111111:key/"}, // the key the alias names
		"arn":     {"arn:aws:kms:us-west-2:444455556666:key/" + uuid, "arn:aws:kms:us-west-2:444455556666:key/" + uuid},
	} {
		out, err := c.CreateFileSystem(ctx, &efs.CreateFileSystemInput{CreationToken: aws.String(token), Encrypted: aws.Bool(true),
			KmsKeyId: optionalString(tc.key)})
		if err != nil {
			t.Fatal(err)
		}
		if !aws.ToBool(out.Encrypted) || !strings.HasPrefix(aws.ToString(out.KmsKeyId), tc.want) {
			t.Errorf("%s: KmsKeyId = %s, want prefix %s", token, aws.ToString(out.KmsKeyId), tc.want)
		}
	}
}

func optionalString(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}

func TestDescribeFileSystemsPagination(t *testing.T) {
	srv := efstest.Start(t)
	c := srv.Client(efstest.AccountA, region)
	ctx := context.Background()
	var ids []string
	for i := range 7 {
		out, err := c.CreateFileSystem(ctx, &efs.CreateFileSystemInput{CreationToken: aws.String("page-" + string(rune('a'+i)))})
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, *out.FileSystemId)
	}
	p1, err := c.DescribeFileSystems(ctx, &efs.DescribeFileSystemsInput{MaxItems: aws.Int32(3)})
	if err != nil {
		t.Fatal(err)
	}
	if len(p1.FileSystems) != 3 || p1.NextMarker == nil || *p1.FileSystems[0].FileSystemId != ids[0] {
		t.Fatalf("page 1: %d items, next %v", len(p1.FileSystems), p1.NextMarker)
	}
	// Between pages: delete one already seen and one not yet seen, create one.
	if _, err := c.DeleteFileSystem(ctx, &efs.DeleteFileSystemInput{FileSystemId: aws.String(ids[1])}); err != nil {
		t.Fatal(err)
	}
	waitGone(t, c, ids[1])
	if _, err := c.DeleteFileSystem(ctx, &efs.DeleteFileSystemInput{FileSystemId: aws.String(ids[4])}); err != nil {
		t.Fatal(err)
	}
	waitGone(t, c, ids[4])
	extra, err := c.CreateFileSystem(ctx, &efs.CreateFileSystemInput{CreationToken: aws.String("page-extra")})
	if err != nil {
		t.Fatal(err)
	}
	var rest []string
	pager := efs.NewDescribeFileSystemsPaginator(c, &efs.DescribeFileSystemsInput{MaxItems: aws.Int32(3), Marker: p1.NextMarker})
	for pager.HasMorePages() {
		page, err := pager.NextPage(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if aws.ToString(page.Marker) == "" {
			t.Fatal("response does not echo the request's Marker")
		}
		for _, fs := range page.FileSystems {
			rest = append(rest, *fs.FileSystemId)
		}
	}
	want := []string{ids[3], ids[5], ids[6], *extra.FileSystemId}
	if strings.Join(rest, ",") != strings.Join(want, ",") {
		t.Fatalf("rest = %v, want %v", rest, want)
	}
	all, err := c.DescribeFileSystems(ctx, &efs.DescribeFileSystemsInput{})
	if err != nil || len(all.FileSystems) != 6 || all.NextMarker != nil {
		t.Fatalf("default page: %v, %d items, next %v", err, len(all.FileSystems), all.NextMarker)
	}
	_, err = c.DescribeFileSystems(ctx, &efs.DescribeFileSystemsInput{Marker: aws.String("bogus")})
	wantAPIError(t, err, "BadRequest")
}

func waitGone(t *testing.T, c *efs.Client, id string) {
	t.Helper()
	efstest.Eventually(t, 10*time.Second, id+" to be deleted", func() bool {
		_, err := c.DescribeFileSystems(context.Background(), &efs.DescribeFileSystemsInput{FileSystemId: aws.String(id)})
		return err != nil && strings.Contains(err.Error(), "FileSystemNotFound")
	})
}

func TestUpdateFileSystem(t *testing.T) {
	clock := &offsetClock{}
	srv := efstest.Start(t, efstest.WithConfig(func(c *daemon.Config) {
		c.Now = clock.Now
		c.TransitionDelay = 400 * time.Millisecond // long enough to act while updating
	}))
	c := srv.Client(efstest.AccountA, region)
	ctx := context.Background()
	fs := createFS(t, c, "update")
	id := fs.FileSystemId

	out, err := c.UpdateFileSystem(ctx, &efs.UpdateFileSystemInput{FileSystemId: id,
		ThroughputMode: types.ThroughputModeProvisioned, ProvisionedThroughputInMibps: aws.Float64(128)})
	if err != nil {
		t.Fatal(err)
	}
	if out.LifeCycleState != types.LifeCycleStateUpdating || aws.ToFloat64(out.ProvisionedThroughputInMibps) != 128 {
		t.Fatalf("update answer: %s %v", out.LifeCycleState, out.ProvisionedThroughputInMibps)
	}
	// While updating, another update is refused.
	_, err = c.UpdateFileSystem(ctx, &efs.UpdateFileSystemInput{FileSystemId: id, ProvisionedThroughputInMibps: aws.Float64(256)})
	wantAPIError(t, err, "IncorrectFileSystemLifeCycleState")
	waitState(t, c, *id, types.LifeCycleStateAvailable)

	// Increases are always allowed; decreases and mode changes wait out the cooldown.
	if _, err := c.UpdateFileSystem(ctx, &efs.UpdateFileSystemInput{FileSystemId: id, ProvisionedThroughputInMibps: aws.Float64(512)}); err != nil {
		t.Fatal(err)
	}
	waitState(t, c, *id, types.LifeCycleStateAvailable)
	_, err = c.UpdateFileSystem(ctx, &efs.UpdateFileSystemInput{FileSystemId: id, ProvisionedThroughputInMibps: aws.Float64(64)})
	wantAPIError(t, err, "TooManyRequests")
	_, err = c.UpdateFileSystem(ctx, &efs.UpdateFileSystemInput{FileSystemId: id, ThroughputMode: types.ThroughputModeElastic})
	wantAPIError(t, err, "TooManyRequests")
	_, err = c.UpdateFileSystem(ctx, &efs.UpdateFileSystemInput{FileSystemId: id, ProvisionedThroughputInMibps: aws.Float64(9999)})
	wantAPIError(t, err, "ThroughputLimitExceeded")

	clock.Advance(24*time.Hour + time.Minute)
	out, err = c.UpdateFileSystem(ctx, &efs.UpdateFileSystemInput{FileSystemId: id, ThroughputMode: types.ThroughputModeElastic})
	if err != nil {
		t.Fatal(err)
	}
	if out.ThroughputMode != types.ThroughputModeElastic || out.ProvisionedThroughputInMibps != nil {
		t.Fatalf("after mode change: %s %v", out.ThroughputMode, out.ProvisionedThroughputInMibps)
	}
	waitState(t, c, *id, types.LifeCycleStateAvailable)

	_, err = c.UpdateFileSystem(ctx, &efs.UpdateFileSystemInput{FileSystemId: aws.String("fs-0123456789abcdef0"), ThroughputMode: types.ThroughputModeBursting})
	wantAPIError(t, err, "FileSystemNotFound")
}

func TestProtection(t *testing.T) {
	srv := efstest.Start(t)
	c := srv.Client(efstest.AccountA, region)
	ctx := context.Background()
	fs := createFS(t, c, "protect")
	out, err := c.UpdateFileSystemProtection(ctx, &efs.UpdateFileSystemProtectionInput{FileSystemId: fs.FileSystemId,
		ReplicationOverwriteProtection: types.ReplicationOverwriteProtectionDisabled})
	if err != nil || out.ReplicationOverwriteProtection != types.ReplicationOverwriteProtectionDisabled {
		t.Fatalf("disable: %v %+v", err, out)
	}
	if got := describe(t, c, *fs.FileSystemId); got.FileSystemProtection.ReplicationOverwriteProtection != types.ReplicationOverwriteProtectionDisabled {
		t.Fatalf("described protection %s", got.FileSystemProtection.ReplicationOverwriteProtection)
	}
	_, err = c.UpdateFileSystemProtection(ctx, &efs.UpdateFileSystemProtectionInput{FileSystemId: fs.FileSystemId,
		ReplicationOverwriteProtection: types.ReplicationOverwriteProtectionReplicating})
	wantAPIError(t, err, "BadRequest")
	// Omitting the member changes nothing.
	out, err = c.UpdateFileSystemProtection(ctx, &efs.UpdateFileSystemProtectionInput{FileSystemId: fs.FileSystemId})
	if err != nil || out.ReplicationOverwriteProtection != types.ReplicationOverwriteProtectionDisabled {
		t.Fatalf("no-op: %v %+v", err, out)
	}
}

func TestAccountPreferences(t *testing.T) {
	srv := efstest.Start(t)
	c := srv.Client(efstest.AccountA, region)
	ctx := context.Background()
	got, err := c.DescribeAccountPreferences(ctx, &efs.DescribeAccountPreferencesInput{})
	if err != nil || got.ResourceIdPreference.ResourceIdType != types.ResourceIdTypeLongId || len(got.ResourceIdPreference.Resources) != 2 {
		t.Fatalf("default preference: %v %+v", err, got.ResourceIdPreference)
	}
	put, err := c.PutAccountPreferences(ctx, &efs.PutAccountPreferencesInput{ResourceIdType: types.ResourceIdTypeShortId})
	if err != nil || put.ResourceIdPreference.ResourceIdType != types.ResourceIdTypeShortId {
		t.Fatalf("put: %v %+v", err, put)
	}
	fs, err := c.CreateFileSystem(ctx, &efs.CreateFileSystemInput{CreationToken: aws.String("short")})
	if err != nil || !regexp.MustCompile(`^fs-[0-9a-f]{8}$`).MatchString(*fs.FileSystemId) {
		t.Fatalf("short id: %v %v", err, fs)
	}
	// Preferences are per region and per account.
	other, err := srv.Client(efstest.AccountA, "eu-west-1").DescribeAccountPreferences(ctx, &efs.DescribeAccountPreferencesInput{})
	if err != nil || other.ResourceIdPreference.ResourceIdType != types.ResourceIdTypeLongId {
		t.Fatalf("eu-west-1 preference: %v %+v", err, other)
	}
	otherAcct, err := srv.Client(efstest.AccountB, region).DescribeAccountPreferences(ctx, &efs.DescribeAccountPreferencesInput{})
	if err != nil || otherAcct.ResourceIdPreference.ResourceIdType != types.ResourceIdTypeLongId {
		t.Fatalf("account B preference: %v %+v", err, otherAcct)
	}
}

func TestIsolation(t *testing.T) {
	srv := efstest.Start(t)
	a := srv.Client(efstest.AccountA, region)
	ctx := context.Background()
	fs := createFS(t, a, "mine")

	for name, c := range map[string]*efs.Client{
		"other account": srv.Client(efstest.AccountB, region),
		"other region":  srv.Client(efstest.AccountA, "eu-west-1"),
	} {
		t.Run(name, func(t *testing.T) {
			_, err := c.DescribeFileSystems(ctx, &efs.DescribeFileSystemsInput{FileSystemId: fs.FileSystemId})
			wantAPIError(t, err, "FileSystemNotFound")
			_, err = c.DescribeFileSystems(ctx, &efs.DescribeFileSystemsInput{FileSystemId: fs.FileSystemArn})
			wantAPIError(t, err, "FileSystemNotFound")
			all, err := c.DescribeFileSystems(ctx, &efs.DescribeFileSystemsInput{})
			if err != nil || len(all.FileSystems) != 0 {
				t.Fatalf("list: %v, %d", err, len(all.FileSystems))
			}
			_, err = c.TagResource(ctx, &efs.TagResourceInput{ResourceId: fs.FileSystemId, Tags: []types.Tag{{Key: aws.String("k"), Value: aws.String("v")}}})
			wantAPIError(t, err, "FileSystemNotFound")
			_, err = c.DeleteFileSystem(ctx, &efs.DeleteFileSystemInput{FileSystemId: fs.FileSystemId})
			wantAPIError(t, err, "FileSystemNotFound")
			// The same creation token is free there.
			if _, err := c.CreateFileSystem(ctx, &efs.CreateFileSystemInput{CreationToken: aws.String("mine")}); err != nil {
				t.Fatal(err)
			}
		})
	}
	if got := describe(t, a, *fs.FileSystemId); got.LifeCycleState != types.LifeCycleStateAvailable || len(got.Tags) != 0 {
		t.Fatalf("owner's view changed: %+v", got)
	}
}

// offsetClock is real time shifted by an adjustable offset, so tests can
// jump past cooldowns while the lifecycle worker's timers still run.
type offsetClock struct {
	offset atomicDuration
}

func (c *offsetClock) Now() time.Time          { return time.Now().Add(c.offset.Load()) }
func (c *offsetClock) Advance(d time.Duration) { c.offset.Add(d) }

// Operations that need an available file system refuse one still being
// created.
func TestOperationsNeedAvailable(t *testing.T) {
	srv := efstest.Start(t, efstest.WithConfig(func(c *daemon.Config) { c.TransitionDelay = time.Minute }))
	c := srv.Client(efstest.AccountA, region)
	ctx := context.Background()
	out, err := c.CreateFileSystem(ctx, &efs.CreateFileSystemInput{CreationToken: aws.String("slow")})
	if err != nil {
		t.Fatal(err)
	}
	id := out.FileSystemId
	for name, call := range map[string]func() error{
		"PutFileSystemPolicy": func() error {
			_, err := c.PutFileSystemPolicy(ctx, &efs.PutFileSystemPolicyInput{FileSystemId: id, Policy: aws.String(goodPolicy)})
			return err
		},
		"DeleteFileSystemPolicy": func() error {
			_, err := c.DeleteFileSystemPolicy(ctx, &efs.DeleteFileSystemPolicyInput{FileSystemId: id})
			return err
		},
		"PutLifecycleConfiguration": func() error {
			_, err := c.PutLifecycleConfiguration(ctx, &efs.PutLifecycleConfigurationInput{FileSystemId: id, LifecyclePolicies: []types.LifecyclePolicy{}})
			return err
		},
		"PutBackupPolicy": func() error {
			_, err := c.PutBackupPolicy(ctx, &efs.PutBackupPolicyInput{FileSystemId: id, BackupPolicy: &types.BackupPolicy{Status: types.StatusEnabled}})
			return err
		},
		"UpdateFileSystem": func() error {
			_, err := c.UpdateFileSystem(ctx, &efs.UpdateFileSystemInput{FileSystemId: id, ThroughputMode: types.ThroughputModeElastic})
			return err
		},
		"UpdateFileSystemProtection": func() error {
			_, err := c.UpdateFileSystemProtection(ctx, &efs.UpdateFileSystemProtectionInput{FileSystemId: id, ReplicationOverwriteProtection: types.ReplicationOverwriteProtectionDisabled})
			return err
		},
	} {
		t.Run(name, func(t *testing.T) { wantAPIError(t, call(), "IncorrectFileSystemLifeCycleState") })
	}
	// Deleting a file system that is still being created is allowed.
	if _, err := c.DeleteFileSystem(ctx, &efs.DeleteFileSystemInput{FileSystemId: id}); err != nil {
		t.Fatal(err)
	}
	waitGone(t, c, *id)
}

// TestThroughputCooldownRule follows "Managing throughput" (EFS User Guide):
// only switching to provisioned throughput or raising it opens the cooldown;
// bursting ↔ elastic is free, and inside the window decreases are refused.
func TestThroughputCooldownRule(t *testing.T) {
	srv := efstest.Start(t, efstest.WithConfig(func(c *daemon.Config) { c.TransitionDelay = time.Millisecond }))
	c := srv.Client(efstest.AccountA, region)
	ctx := context.Background()
	id := *createFS(t, c, "cooldown").FileSystemId
	update := func(in *efs.UpdateFileSystemInput) error {
		in.FileSystemId = &id
		_, err := c.UpdateFileSystem(ctx, in)
		if err == nil {
			waitState(t, c, id, types.LifeCycleStateAvailable)
		}
		return err
	}
	for _, mode := range []types.ThroughputMode{types.ThroughputModeElastic, types.ThroughputModeBursting, types.ThroughputModeElastic} {
		if err := update(&efs.UpdateFileSystemInput{ThroughputMode: mode}); err != nil {
			t.Fatalf("switch to %s: %v", mode, err)
		}
	}
	if err := update(&efs.UpdateFileSystemInput{ThroughputMode: types.ThroughputModeProvisioned, ProvisionedThroughputInMibps: aws.Float64(10)}); err != nil {
		t.Fatalf("switch to provisioned: %v", err)
	}
	if err := update(&efs.UpdateFileSystemInput{ProvisionedThroughputInMibps: aws.Float64(20)}); err != nil {
		t.Fatalf("increase: %v", err)
	}
	err := update(&efs.UpdateFileSystemInput{ProvisionedThroughputInMibps: aws.Float64(15)})
	wantAPIError(t, err, "TooManyRequests")
	err = update(&efs.UpdateFileSystemInput{ThroughputMode: types.ThroughputModeBursting})
	wantAPIError(t, err, "TooManyRequests")
	if got := describe(t, c, id); aws.ToFloat64(got.ProvisionedThroughputInMibps) != 20 || got.ThroughputMode != types.ThroughputModeProvisioned {
		t.Fatalf("after refused changes: %s %v", got.ThroughputMode, got.ProvisionedThroughputInMibps)
	}
}

// TestIDsAndTimestampsAsEFS: long IDs start with 0, timestamps are whole
// seconds, and a new file system meters 6144 bytes.
func TestIDsAndTimestampsAsEFS(t *testing.T) {
	srv := efstest.Start(t)
	c := srv.Client(efstest.AccountA, region)
	fs := createFS(t, c, "shapes")
	if id := aws.ToString(fs.FileSystemId); !strings.HasPrefix(id, "fs-0") || len(id) != len("fs-")+17 {
		t.Errorf("file system ID %s, want fs-0 and 16 more hex digits", id)
	}
	if ct := *fs.CreationTime; ct.Nanosecond() != 0 {
		t.Errorf("CreationTime %v is not whole seconds", ct)
	}
	efstest.Eventually(t, 10*time.Second, "an empty file system to meter 6144 bytes", func() bool {
		d := describe(t, c, *fs.FileSystemId)
		return d.SizeInBytes.Value == 6144 && d.SizeInBytes.Timestamp != nil && d.SizeInBytes.Timestamp.Nanosecond() == 0
	})
}
