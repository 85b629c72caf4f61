package api_test

import (
	"context"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/efs"
	"github.com/aws/aws-sdk-go-v2/service/efs/types"

	"github.com/efsd/efsd/internal/efstest"
)

const goodPolicy = `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"AWS":"*"},
"Action":["elasticfilesystem:ClientMount","elasticfilesystem:ClientWrite"],"Condition":{"Bool":{"aws:SecureTransport":"true"}}}]}`

func TestFileSystemPolicy(t *testing.T) {
	srv := efstest.Start(t)
	c := srv.Client(efstest.AccountA, region)
	ctx := context.Background()
	fs := createFS(t, c, "policy")

	_, err := c.DescribeFileSystemPolicy(ctx, &efs.DescribeFileSystemPolicyInput{FileSystemId: fs.FileSystemId})
	wantAPIError(t, err, "PolicyNotFound")
	for name, bad := range map[string]string{
		"not json":     `{"Statement": [`,
		"no statement": `{"Version":"2012-10-17"}`,
		"bad effect":   `{"Statement":[{"Effect":"Maybe","Principal":"*","Action":"elasticfilesystem:ClientMount"}]}`,
		"no principal": `{"Statement":[{"Effect":"Allow","Action":"elasticfilesystem:ClientMount"}]}`,
		"foreign":      `{"Statement":[{"Effect":"Allow","Principal":"*","Action":"s3:GetObject"}]}`,
	} {
		_, err := c.PutFileSystemPolicy(ctx, &efs.PutFileSystemPolicyInput{FileSystemId: fs.FileSystemId, Policy: aws.String(bad)})
		if err == nil {
			t.Fatalf("%s: accepted", name)
		}
		wantAPIError(t, err, "InvalidPolicyException")
	}
	put, err := c.PutFileSystemPolicy(ctx, &efs.PutFileSystemPolicyInput{FileSystemId: fs.FileSystemId, Policy: aws.String(goodPolicy)})
	if err != nil || aws.ToString(put.Policy) != goodPolicy || aws.ToString(put.FileSystemId) != *fs.FileSystemId {
		t.Fatalf("put: %v %+v", err, put)
	}
	got, err := c.DescribeFileSystemPolicy(ctx, &efs.DescribeFileSystemPolicyInput{FileSystemId: fs.FileSystemId})
	if err != nil || aws.ToString(got.Policy) != goodPolicy {
		t.Fatalf("describe: %v %+v", err, got)
	}
	if _, err := c.DeleteFileSystemPolicy(ctx, &efs.DeleteFileSystemPolicyInput{FileSystemId: fs.FileSystemId}); err != nil {
		t.Fatal(err)
	}
	_, err = c.DescribeFileSystemPolicy(ctx, &efs.DescribeFileSystemPolicyInput{FileSystemId: fs.FileSystemId})
	wantAPIError(t, err, "PolicyNotFound")
	_, err = c.PutFileSystemPolicy(ctx, &efs.PutFileSystemPolicyInput{FileSystemId: aws.String("fs-0123456789abcdef0"), Policy: aws.String(goodPolicy)})
	wantAPIError(t, err, "FileSystemNotFound")
}

func TestLifecycleConfiguration(t *testing.T) {
	srv := efstest.Start(t)
	c := srv.Client(efstest.AccountA, region)
	ctx := context.Background()
	fs := createFS(t, c, "lifecycle-config")
	id := fs.FileSystemId

	got, err := c.DescribeLifecycleConfiguration(ctx, &efs.DescribeLifecycleConfigurationInput{FileSystemId: id})
	if err != nil || len(got.LifecyclePolicies) != 0 {
		t.Fatalf("initial: %v %+v", err, got)
	}
	pols := []types.LifecyclePolicy{
		{TransitionToIA: types.TransitionToIARulesAfter30Days},
		{TransitionToPrimaryStorageClass: types.TransitionToPrimaryStorageClassRulesAfter1Access},
	}
	put, err := c.PutLifecycleConfiguration(ctx, &efs.PutLifecycleConfigurationInput{FileSystemId: id, LifecyclePolicies: pols})
	if err != nil || len(put.LifecyclePolicies) != 2 {
		t.Fatalf("put: %v %+v", err, put)
	}
	got, err = c.DescribeLifecycleConfiguration(ctx, &efs.DescribeLifecycleConfigurationInput{FileSystemId: id})
	if err != nil || len(got.LifecyclePolicies) != 2 || got.LifecyclePolicies[0].TransitionToIA != types.TransitionToIARulesAfter30Days {
		t.Fatalf("describe: %v %+v", err, got)
	}
	for name, bad := range map[string][]types.LifecyclePolicy{
		"two in one":       {{TransitionToIA: types.TransitionToIARulesAfter7Days, TransitionToPrimaryStorageClass: types.TransitionToPrimaryStorageClassRulesAfter1Access}},
		"empty policy":     {{}},
		"duplicate":        {{TransitionToIA: types.TransitionToIARulesAfter7Days}, {TransitionToIA: types.TransitionToIARulesAfter14Days}},
		"archive on burst": {{TransitionToArchive: types.TransitionToArchiveRulesAfter90Days}},
	} {
		_, err := c.PutLifecycleConfiguration(ctx, &efs.PutLifecycleConfigurationInput{FileSystemId: id, LifecyclePolicies: bad})
		if err == nil {
			t.Fatalf("%s: accepted", name)
		}
		wantAPIError(t, err, "BadRequest")
	}
	// Archive works on elastic throughput, after IA.
	el := createFS(t, c, "elastic", func(in *efs.CreateFileSystemInput) { in.ThroughputMode = types.ThroughputModeElastic })
	_, err = c.PutLifecycleConfiguration(ctx, &efs.PutLifecycleConfigurationInput{FileSystemId: el.FileSystemId, LifecyclePolicies: []types.LifecyclePolicy{
		{TransitionToIA: types.TransitionToIARulesAfter90Days}, {TransitionToArchive: types.TransitionToArchiveRulesAfter30Days}}})
	wantAPIError(t, err, "BadRequest")
	if _, err := c.PutLifecycleConfiguration(ctx, &efs.PutLifecycleConfigurationInput{FileSystemId: el.FileSystemId, LifecyclePolicies: []types.LifecyclePolicy{
		{TransitionToIA: types.TransitionToIARulesAfter30Days}, {TransitionToArchive: types.TransitionToArchiveRulesAfter90Days}}}); err != nil {
		t.Fatal(err)
	}
	// An empty list turns lifecycle management off.
	if _, err := c.PutLifecycleConfiguration(ctx, &efs.PutLifecycleConfigurationInput{FileSystemId: id, LifecyclePolicies: []types.LifecyclePolicy{}}); err != nil {
		t.Fatal(err)
	}
	got, _ = c.DescribeLifecycleConfiguration(ctx, &efs.DescribeLifecycleConfigurationInput{FileSystemId: id})
	if len(got.LifecyclePolicies) != 0 {
		t.Fatalf("after clearing: %+v", got.LifecyclePolicies)
	}
}

func TestBackupPolicy(t *testing.T) {
	srv := efstest.Start(t)
	c := srv.Client(efstest.AccountA, region)
	ctx := context.Background()
	fs := createFS(t, c, "backup")
	out, err := c.PutBackupPolicy(ctx, &efs.PutBackupPolicyInput{FileSystemId: fs.FileSystemId,
		BackupPolicy: &types.BackupPolicy{Status: types.StatusEnabled}})
	if err != nil || out.BackupPolicy.Status != types.StatusEnabling {
		t.Fatalf("put: %v %+v", err, out)
	}
	efstest.Eventually(t, 10*time.Second, "backup policy to settle", func() bool {
		got, err := c.DescribeBackupPolicy(ctx, &efs.DescribeBackupPolicyInput{FileSystemId: fs.FileSystemId})
		return err == nil && got.BackupPolicy.Status == types.StatusEnabled
	})
	_, err = c.PutBackupPolicy(ctx, &efs.PutBackupPolicyInput{FileSystemId: fs.FileSystemId,
		BackupPolicy: &types.BackupPolicy{Status: types.StatusDisabling}})
	wantAPIError(t, err, "BadRequest")
	out, err = c.PutBackupPolicy(ctx, &efs.PutBackupPolicyInput{FileSystemId: fs.FileSystemId,
		BackupPolicy: &types.BackupPolicy{Status: types.StatusDisabled}})
	if err != nil || out.BackupPolicy.Status != types.StatusDisabling {
		t.Fatalf("disable: %v %+v", err, out)
	}
	efstest.Eventually(t, 10*time.Second, "backup policy to settle", func() bool {
		got, err := c.DescribeBackupPolicy(ctx, &efs.DescribeBackupPolicyInput{FileSystemId: fs.FileSystemId})
		return err == nil && got.BackupPolicy.Status == types.StatusDisabled
	})
}
