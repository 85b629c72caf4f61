package api_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"net/http"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	"github.com/aws/aws-sdk-go-v2/service/efs"

	"github.com/efsd/efsd/internal/efstest"
)

// A signed request can be replayed within the clock window, as with AWS
// (docs/behaviour.md). Replaying a create that carries a client token
// creates nothing more: the replay answers AlreadyExists naming the
// resource the first one made.
func TestReplayedCreatesAreIdempotent(t *testing.T) {
	srv := efstest.Start(t)
	a := efstest.AccountA
	c := srv.Client(a, region)
	ctx := context.Background()

	signed := func(method, path, body string) func() *http.Response {
		req, err := http.NewRequest(method, srv.URL+path, bytes.NewReader([]byte(body)))
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Content-Type", "application/json")
		sum := sha256.Sum256([]byte(body))
		if err := v4.NewSigner().SignHTTP(ctx, aws.Credentials{AccessKeyID: a.AccessKeyID, SecretAccessKey: a.SecretAccessKey},
			req, hex.EncodeToString(sum[:]), "elasticfilesystem", region, time.Now()); err != nil {
			t.Fatal(err)
		}
		return func() *http.Response {
			again := req.Clone(ctx)
			again.Body, _ = req.GetBody()
			return srv.Do(again)
		}
	}
	decode := func(resp *http.Response, status int) map[string]any {
		t.Helper()
		body := efstest.ReadBody(t, resp)
		if resp.StatusCode != status {
			t.Fatalf("status %d, want %d: %s", resp.StatusCode, status, body)
		}
		var m map[string]any
		json.Unmarshal(body, &m)
		return m
	}

	send := signed("POST", "/2015-02-01/file-systems", `{"CreationToken":"replayed"}`)
	fsID := decode(send(), 201)["FileSystemId"]
	if got := decode(send(), 409); got["ErrorCode"] != "FileSystemAlreadyExists" || got["FileSystemId"] != fsID {
		t.Fatalf("replayed CreateFileSystem: %v", got)
	}
	list, err := c.DescribeFileSystems(ctx, &efs.DescribeFileSystemsInput{})
	if err != nil || len(list.FileSystems) != 1 {
		t.Fatalf("after a replay: %v, %d file systems", err, len(list.FileSystems))
	}

	waitState(t, c, fsID.(string), "available")
	send = signed("POST", "/2015-02-01/access-points", `{"ClientToken":"replayed","FileSystemId":"`+fsID.(string)+`"}`)
	apID := decode(send(), 200)["AccessPointId"]
	if got := decode(send(), 409); got["ErrorCode"] != "AccessPointAlreadyExists" || got["AccessPointId"] != apID {
		t.Fatalf("replayed CreateAccessPoint: %v", got)
	}
	aps, err := c.DescribeAccessPoints(ctx, &efs.DescribeAccessPointsInput{FileSystemId: aws.String(fsID.(string))})
	if err != nil || len(aps.AccessPoints) != 1 {
		t.Fatalf("after a replay: %v, %+v", err, aps)
	}
}
