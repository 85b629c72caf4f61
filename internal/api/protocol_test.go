package api_test

import (
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/efs"
	"github.com/aws/aws-sdk-go-v2/service/efs/types"

	"github.com/efsd/efsd/internal/api"
	"github.com/efsd/efsd/internal/efstest"
)

// errorBody checks a raw error response has EFS's error shape and returns
// its message.
func errorBody(t *testing.T, resp *http.Response, status int, code string) string {
	t.Helper()
	body := efstest.ReadBody(t, resp)
	if resp.StatusCode != status {
		t.Fatalf("status %d, want %d (body %s)", resp.StatusCode, status, body)
	}
	if got := resp.Header.Get("X-Amzn-ErrorType"); got != code {
		t.Fatalf("X-Amzn-ErrorType %q, want %q", got, code)
	}
	if resp.Header.Get("x-amzn-RequestId") == "" {
		t.Fatal("no x-amzn-RequestId header")
	}
	if ct := resp.Header.Get("Content-Type"); ct != "application/json" {
		t.Fatalf("Content-Type %q", ct)
	}
	var e struct{ ErrorCode, Message string }
	if err := json.Unmarshal(body, &e); err != nil {
		t.Fatalf("error body %s: %v", body, err)
	}
	if e.ErrorCode != code || e.Message == "" {
		t.Fatalf("error body %s", body)
	}
	return e.Message
}

func TestServerSideValidation(t *testing.T) {
	srv := efstest.Start(t)
	c := srv.UnvalidatedClient(efstest.AccountA, region)
	ctx := context.Background()
	fs := createFS(t, srv.Client(efstest.AccountA, region), "valid")

	for _, tc := range []struct {
		name    string
		call    func() error
		message string
	}{
		{"id pattern", func() error {
			_, err := c.DescribeFileSystems(ctx, &efs.DescribeFileSystemsInput{FileSystemId: aws.String("not-an-id")})
			return err
		}, "Value 'not-an-id' at 'fileSystemId' failed to satisfy constraint: Member must satisfy regular expression pattern"},
		{"enum", func() error {
			_, err := c.CreateFileSystem(ctx, &efs.CreateFileSystemInput{CreationToken: aws.String("e"), PerformanceMode: "fast"})
			return err
		}, "Member must satisfy enum value set: [generalPurpose, maxIO]"},
		{"max length", func() error {
			_, err := c.CreateFileSystem(ctx, &efs.CreateFileSystemInput{CreationToken: aws.String(strings.Repeat("x", 65))})
			return err
		}, "Member must have length less than or equal to 64"},
		{"required", func() error {
			_, err := c.TagResource(ctx, &efs.TagResourceInput{ResourceId: fs.FileSystemId})
			return err
		}, "Value null at 'tags' failed to satisfy constraint: Member must not be null"},
		{"range", func() error {
			_, err := c.DescribeFileSystems(ctx, &efs.DescribeFileSystemsInput{MaxItems: aws.Int32(0)})
			return err
		}, "Member must have value greater than or equal to 1"},
		{"reserved tag key", func() error {
			_, err := c.TagResource(ctx, &efs.TagResourceInput{ResourceId: fs.FileSystemId, Tags: []types.Tag{tag("AWS:x", "v")}})
			return err
		}, "tags.1.member.key"},
		{"protection enum", func() error {
			_, err := c.UpdateFileSystemProtection(ctx, &efs.UpdateFileSystemProtectionInput{FileSystemId: fs.FileSystemId, ReplicationOverwriteProtection: "OFF"})
			return err
		}, "ENABLED, DISABLED, REPLICATING"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ae := wantAPIError(t, tc.call(), "ValidationException")
			if !strings.Contains(ae.ErrorMessage(), tc.message) {
				t.Fatalf("message %q does not contain %q", ae.ErrorMessage(), tc.message)
			}
		})
	}
	// The server is still serving and lost nothing.
	if got := describe(t, srv.Client(efstest.AccountA, region), *fs.FileSystemId); len(got.Tags) != 0 {
		t.Fatalf("rejected input changed the file system: %+v", got.Tags)
	}
}

func TestRawRequests(t *testing.T) {
	srv := efstest.Start(t)
	a := efstest.AccountA
	fs := createFS(t, srv.Client(a, region), "raw")
	id := *fs.FileSystemId

	t.Run("malformed JSON", func(t *testing.T) {
		resp := srv.Raw(a, region, "POST", "/2015-02-01/file-systems", []byte(`{"CreationToken": `))
		errorBody(t, resp, 400, "BadRequest")
	})
	t.Run("wrong JSON type", func(t *testing.T) {
		resp := srv.Raw(a, region, "POST", "/2015-02-01/file-systems", []byte(`{"CreationToken": 5}`))
		errorBody(t, resp, 400, "BadRequest")
	})
	t.Run("unknown members ignored", func(t *testing.T) {
		resp := srv.Raw(a, region, "POST", "/2015-02-01/file-systems", []byte(`{"CreationToken":"raw-2","FutureMember":{"x":1}}`))
		if body := efstest.ReadBody(t, resp); resp.StatusCode != 201 {
			t.Fatalf("status %d: %s", resp.StatusCode, body)
		}
	})
	t.Run("non-integer MaxItems", func(t *testing.T) {
		resp := srv.Raw(a, region, "GET", "/2015-02-01/file-systems?MaxItems=abc", nil)
		errorBody(t, resp, 400, "ValidationException")
	})
	t.Run("FileSystemAlreadyExists carries FileSystemId", func(t *testing.T) {
		resp := srv.Raw(a, region, "POST", "/2015-02-01/file-systems", []byte(`{"CreationToken":"raw"}`))
		body := efstest.ReadBody(t, resp)
		var e map[string]string
		json.Unmarshal(body, &e)
		if resp.StatusCode != 409 || e["FileSystemId"] != id || e["ErrorCode"] != "FileSystemAlreadyExists" {
			t.Fatalf("%d %s", resp.StatusCode, body)
		}
	})
	t.Run("DescribeTags with and without trailing slash", func(t *testing.T) {
		for _, p := range []string{"/2015-02-01/tags/" + id + "/", "/2015-02-01/tags/" + id} {
			resp := srv.Raw(a, region, "GET", p, nil)
			if body := efstest.ReadBody(t, resp); resp.StatusCode != 200 || !strings.Contains(string(body), `"Tags":[]`) {
				t.Fatalf("%s: %d %s", p, resp.StatusCode, body)
			}
		}
	})
	t.Run("ARN percent-encoded in the path", func(t *testing.T) {
		arn := url.PathEscape(*fs.FileSystemArn)
		arn = strings.ReplaceAll(arn, ":", "%3A")
		resp := srv.Raw(a, region, "PUT", "/2015-02-01/file-systems/"+arn+"/protection", []byte(`{"ReplicationOverwriteProtection":"DISABLED"}`))
		if body := efstest.ReadBody(t, resp); resp.StatusCode != 200 || !strings.Contains(string(body), "DISABLED") {
			t.Fatalf("%d %s", resp.StatusCode, body)
		}
	})
	t.Run("unknown route", func(t *testing.T) {
		resp := srv.Raw(a, region, "GET", "/2015-02-01/nothing-here", nil)
		errorBody(t, resp, 404, "UnknownOperationException")
	})
	t.Run("empty lists render as []", func(t *testing.T) {
		for path, want := range map[string]string{
			"/2015-02-01/file-systems?CreationToken=none":                 `"FileSystems":[]`,
			"/2015-02-01/file-systems/" + id + "/lifecycle-configuration": `"LifecyclePolicies":[]`,
			"/2015-02-01/resource-tags/" + id:                             `"Tags":[]`,
		} {
			resp := srv.Raw(a, region, "GET", path, nil)
			if body := efstest.ReadBody(t, resp); resp.StatusCode != 200 || !strings.Contains(string(body), want) {
				t.Fatalf("%s: %d %s, want %s", path, resp.StatusCode, body, want)
			}
		}
	})
	t.Run("success carries request id", func(t *testing.T) {
		resp := srv.Raw(a, region, "GET", "/2015-02-01/file-systems", nil)
		efstest.ReadBody(t, resp)
		if resp.StatusCode != 200 || resp.Header.Get("x-amzn-RequestId") == "" {
			t.Fatalf("%d, request id %q", resp.StatusCode, resp.Header.Get("x-amzn-RequestId"))
		}
	})
}

func TestAuthentication(t *testing.T) {
	srv := efstest.Start(t)
	ctx := context.Background()

	t.Run("unsigned", func(t *testing.T) {
		req, _ := http.NewRequest("GET", srv.URL+"/2015-02-01/file-systems", nil)
		errorBody(t, srv.Do(req), 403, "MissingAuthenticationTokenException")
	})
	t.Run("unknown key", func(t *testing.T) {
		_, err := srv.Client(api.Credential{AccessKeyID: "AKIAUNKNOWN", SecretAccessKey: "x"}, region).
			DescribeFileSystems(ctx, &efs.DescribeFileSystemsInput{})
		wantAPIError(t, err, "UnrecognizedClientException")
	})
	t.Run("wrong secret", func(t *testing.T) {
		bad := efstest.AccountA
		bad.SecretAccessKey = "wrong"
		_, err := srv.Client(bad, region).DescribeFileSystems(ctx, &efs.DescribeFileSystemsInput{})
		wantAPIError(t, err, "InvalidSignatureException")
	})
	t.Run("unserved region", func(t *testing.T) {
		_, err := srv.Client(efstest.AccountA, "xx-nowhere-1").DescribeFileSystems(ctx, &efs.DescribeFileSystemsInput{})
		if err == nil {
			t.Fatal("request in an unknown region accepted")
		}
	})
}
