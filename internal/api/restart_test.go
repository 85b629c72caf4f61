package api_test

import (
	"context"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/efs"
	"github.com/aws/aws-sdk-go-v2/service/efs/types"

	"github.com/efsd/efsd/internal/daemon"
	"github.com/efsd/efsd/internal/efstest"
)

func TestStateSurvivesRestart(t *testing.T) {
	srv := efstest.Start(t)
	c := srv.Client(efstest.AccountA, region)
	ctx := context.Background()
	fs := createFS(t, c, "persist", func(in *efs.CreateFileSystemInput) {
		in.Tags = []types.Tag{tag("Name", "kept")}
	})
	if _, err := c.PutFileSystemPolicy(ctx, &efs.PutFileSystemPolicyInput{FileSystemId: fs.FileSystemId, Policy: aws.String(goodPolicy)}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.UpdateFileSystemProtection(ctx, &efs.UpdateFileSystemProtectionInput{FileSystemId: fs.FileSystemId,
		ReplicationOverwriteProtection: types.ReplicationOverwriteProtectionDisabled}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.PutAccountPreferences(ctx, &efs.PutAccountPreferencesInput{ResourceIdType: types.ResourceIdTypeShortId}); err != nil {
		t.Fatal(err)
	}

	srv.Restart()
	c = srv.Client(efstest.AccountA, region)
	got := describe(t, c, *fs.FileSystemId)
	if aws.ToString(got.Name) != "kept" || got.LifeCycleState != types.LifeCycleStateAvailable ||
		got.FileSystemProtection.ReplicationOverwriteProtection != types.ReplicationOverwriteProtectionDisabled ||
		!got.CreationTime.Equal(*fs.CreationTime) {
		t.Fatalf("after restart: %+v", got)
	}
	pol, err := c.DescribeFileSystemPolicy(ctx, &efs.DescribeFileSystemPolicyInput{FileSystemId: fs.FileSystemId})
	if err != nil || aws.ToString(pol.Policy) != goodPolicy {
		t.Fatalf("policy after restart: %v", err)
	}
	pref, err := c.DescribeAccountPreferences(ctx, &efs.DescribeAccountPreferencesInput{})
	if err != nil || pref.ResourceIdPreference.ResourceIdType != types.ResourceIdTypeShortId {
		t.Fatalf("preferences after restart: %v %+v", err, pref)
	}
	_, err = c.CreateFileSystem(ctx, &efs.CreateFileSystemInput{CreationToken: aws.String("persist")})
	wantAPIError(t, err, "FileSystemAlreadyExists")
}

// A transition pending when efsd stops is carried out after it starts again.
func TestPendingTransitionsResumeAfterRestart(t *testing.T) {
	srv := efstest.Start(t, efstest.WithConfig(func(c *daemon.Config) { c.TransitionDelay = 300 * time.Millisecond }))
	c := srv.Client(efstest.AccountA, region)
	ctx := context.Background()
	out, err := c.CreateFileSystem(ctx, &efs.CreateFileSystemInput{CreationToken: aws.String("pending")})
	if err != nil {
		t.Fatal(err)
	}
	gone := createFS(t, c, "to-delete")
	if _, err := c.DeleteFileSystem(ctx, &efs.DeleteFileSystemInput{FileSystemId: gone.FileSystemId}); err != nil {
		t.Fatal(err)
	}
	srv.Restart()
	c = srv.Client(efstest.AccountA, region)
	waitState(t, c, *out.FileSystemId, types.LifeCycleStateAvailable)
	waitGone(t, c, *gone.FileSystemId)
}
