package api_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/efs"
	"github.com/aws/aws-sdk-go-v2/service/efs/types"
	"github.com/aws/smithy-go"

	"github.com/efsd/efsd/internal/efstest"
)

const region = "us-east-1"

// wantAPIError checks err is an AWS API error with the given code and
// returns it.
func wantAPIError(t *testing.T, err error, code string) smithy.APIError {
	t.Helper()
	var ae smithy.APIError
	if !errors.As(err, &ae) {
		t.Fatalf("got error %v, want API error %s", err, code)
	}
	if ae.ErrorCode() != code {
		t.Fatalf("got error code %s (%s), want %s", ae.ErrorCode(), ae.ErrorMessage(), code)
	}
	if ae.ErrorMessage() == "" {
		t.Fatalf("%s has no message", code)
	}
	// A modeled error must arrive as the SDK's typed error, which it only
	// does when the header, status and body are right.
	if _, generic := ae.(*smithy.GenericAPIError); generic && !untyped[code] {
		t.Fatalf("%s arrived as a generic API error, not the SDK's typed error", code)
	}
	return ae
}

// untyped are codes the SDK cannot type: authentication errors (not in the
// EFS model), routing errors, limits of the HTTP front end
// (ThrottlingException is modeled for CreateAccessPoint only), and modeled errors that the model does not
// list for the operation that returns them here (ReplicationAlreadyExists
// and ConflictException from CreateReplicationConfiguration; the SDK's
// model revision lacks the latter).
var untyped = map[string]bool{
	"UnrecognizedClientException": true, "InvalidSignatureException": true, "MissingAuthenticationTokenException": true,
	"IncompleteSignatureException": true, "UnknownOperationException": true, "NotImplemented": true,
	"ReplicationAlreadyExists": true, "ConflictException": true, "ThrottlingException": true,
	// EFS answers model-constraint failures with ValidationException, which
	// the model lists for a few operations only.
	"ValidationException": true,
}

// createFS creates a file system and waits until it is available.
func createFS(t *testing.T, c *efs.Client, token string, mutate ...func(*efs.CreateFileSystemInput)) *types.FileSystemDescription {
	t.Helper()
	in := &efs.CreateFileSystemInput{CreationToken: aws.String(token)}
	for _, m := range mutate {
		m(in)
	}
	out, err := c.CreateFileSystem(context.Background(), in)
	if err != nil {
		t.Fatalf("create %s: %v", token, err)
	}
	if out.LifeCycleState != types.LifeCycleStateCreating {
		t.Fatalf("new file system state = %s, want creating", out.LifeCycleState)
	}
	return waitState(t, c, *out.FileSystemId, types.LifeCycleStateAvailable)
}

func describe(t *testing.T, c *efs.Client, id string) *types.FileSystemDescription {
	t.Helper()
	out, err := c.DescribeFileSystems(context.Background(), &efs.DescribeFileSystemsInput{FileSystemId: aws.String(id)})
	if err != nil {
		t.Fatalf("describe %s: %v", id, err)
	}
	if len(out.FileSystems) != 1 {
		t.Fatalf("describe %s: %d file systems", id, len(out.FileSystems))
	}
	return &out.FileSystems[0]
}

func waitState(t *testing.T, c *efs.Client, id string, want types.LifeCycleState) *types.FileSystemDescription {
	t.Helper()
	var fs *types.FileSystemDescription
	efstest.Eventually(t, 10*time.Second, id+" to be "+string(want), func() bool {
		fs = describe(t, c, id)
		return fs.LifeCycleState == want
	})
	return fs
}
