package api_test

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/efs"
	"github.com/aws/aws-sdk-go-v2/service/efs/types"

	"github.com/efsd/efsd/internal/efstest"
)

// destinationPolicy is the destination file system policy of AWS's
// "Replicating EFS file systems across AWS accounts", granting principal
// the replication actions on the file system arn.
func destinationPolicy(principal, arn string) string {
	return `{"Version":"2012-10-17","Statement":[{"Sid":"AllowSourceAccountReplicationActions","Effect":"Allow",` +
		`"Principal":{"AWS":"` + principal + `"},"Action":["elasticfilesystem:DescribeFileSystems",` +
		`"elasticfilesystem:CreateReplicationConfiguration","elasticfilesystem:DescribeReplicationConfigurations",` +
		`"elasticfilesystem:DeleteReplicationConfiguration","elasticfilesystem:ReplicationWrite"],"Resource":"` + arn + `"}]}`
}

// refusal is what a client sees of an error response, request ID aside.
type refusal struct {
	Status    int
	ErrorType string
	Body      string
}

// TestReplicationCrossAccountNeedsDestinationConsent: another account may
// overwrite a file system only if the file system's policy allows the
// replicating role the replication actions; otherwise the refusal is the
// same whether the file system exists or not, and its data is untouched.
func TestReplicationCrossAccountNeedsDestinationConsent(t *testing.T) {
	srv := efstest.Start(t)
	ctx := context.Background()
	attacker := srv.Client(efstest.AccountB, region) // account B replicates …
	victim := srv.Client(efstest.AccountA, region)   // … into account A's file system
	src := createFS(t, attacker, "b-src")
	os.WriteFile(filepath.Join(fsDir(srv, efstest.AccountB, region, *src.FileSystemId), "from-b.txt"), []byte("B's data"), 0o644)
	dst := createFS(t, victim, "a-data")
	dstDir := fsDir(srv, efstest.AccountA, region, *dst.FileSystemId)
	makeTree(t, dstDir)
	ref := filepath.Join(t.TempDir(), "ref") // a copy to compare with, times and owners kept
	if out, err := exec.Command("cp", "-a", dstDir, ref).CombinedOutput(); err != nil {
		t.Fatalf("copy the tree: %v: %s", err, out)
	}
	if _, err := victim.UpdateFileSystemProtection(ctx, &efs.UpdateFileSystemProtectionInput{FileSystemId: dst.FileSystemId,
		ReplicationOverwriteProtection: types.ReplicationOverwriteProtectionDisabled}); err != nil {
		t.Fatal(err)
	}
	role := "arn:aws:iam::" + efstest.AccountB.Account + ":role/efs-replication"

	// attempt asks, over raw signed HTTP, to replicate B's source into arn
	// and returns the refusal as the client sees it.
	attempt := func(arn string) refusal {
		t.Helper()
		body, _ := json.Marshal(map[string]any{"Destinations": []map[string]string{{"FileSystemId": arn, "RoleArn": role}}})
		resp := srv.Raw(efstest.AccountB, region, http.MethodPost,
			"/2015-02-01/file-systems/"+*src.FileSystemId+"/replication-configuration", body)
		b := efstest.ReadBody(t, resp)
		if resp.StatusCode == http.StatusOK {
			t.Fatalf("replication into %s accepted: %s", arn, b)
		}
		return refusal{resp.StatusCode, resp.Header.Get("X-Amzn-ErrorType"), string(b)}
	}
	untouched := func(when string) {
		t.Helper()
		if d := efstest.TreeDiff(ref, dstDir); d != "" {
			t.Fatalf("%s: account A's data changed: %s", when, d)
		}
		if _, err := victim.DescribeReplicationConfigurations(ctx, &efs.DescribeReplicationConfigurationsInput{FileSystemId: dst.FileSystemId}); err == nil {
			t.Fatalf("%s: account A's file system is in a replication configuration", when)
		} else {
			wantAPIError(t, err, "ReplicationNotFound")
		}
		if p := describe(t, victim, *dst.FileSystemId).FileSystemProtection.ReplicationOverwriteProtection; p != types.ReplicationOverwriteProtectionDisabled {
			t.Fatalf("%s: protection %s", when, p)
		}
	}
	putPolicy := func(policy string) {
		t.Helper()
		if _, err := victim.PutFileSystemPolicy(ctx, &efs.PutFileSystemPolicyInput{FileSystemId: dst.FileSystemId, Policy: aws.String(policy)}); err != nil {
			t.Fatal(err)
		}
	}

	arn := *dst.FileSystemArn
	first := attempt(arn) // no file system policy
	if first.Status != http.StatusNotFound || first.ErrorType != "FileSystemNotFound" || !bytes.Contains([]byte(first.Body), []byte(role)) {
		t.Fatalf("refusal without a policy: %+v", first)
	}
	untouched("no policy")

	for name, policy := range map[string]string{
		"another role of B":   destinationPolicy("arn:aws:iam::"+efstest.AccountB.Account+":role/other", arn),
		"another account":     destinationPolicy("arn:aws:iam::333333333333:root", arn),
		"another file system": destinationPolicy("arn:aws:iam::"+efstest.AccountB.Account+":root", arn+"0"),
		"client actions only": `{"Statement":[{"Effect":"Allow","Principal":{"AWS":"*"},"Action":["elasticfilesystem:ClientMount","elasticfilesystem:ClientWrite"]}]}`,
		"write not granted": `{"Statement":[{"Effect":"Allow","Principal":{"AWS":"` + efstest.AccountB.Account + `"},` +
			`"Action":["elasticfilesystem:CreateReplicationConfiguration","elasticfilesystem:DescribeFileSystems"]}]}`,
		"denied": `{"Statement":[{"Effect":"Allow","Principal":"*","Action":"*"},` +
			`{"Effect":"Deny","Principal":{"AWS":"` + role + `"},"Action":"elasticfilesystem:ReplicationWrite"}]}`,
	} {
		putPolicy(policy)
		if got := attempt(arn); got != first {
			t.Fatalf("%s: refusal %+v differs from %+v", name, got, first)
		}
		untouched(name)
	}

	// Protection ENABLED used to be reported to the other account; it is
	// not described before consent.
	if _, err := victim.DeleteFileSystemPolicy(ctx, &efs.DeleteFileSystemPolicyInput{FileSystemId: dst.FileSystemId}); err != nil {
		t.Fatal(err)
	}
	victim.UpdateFileSystemProtection(ctx, &efs.UpdateFileSystemProtectionInput{FileSystemId: dst.FileSystemId,
		ReplicationOverwriteProtection: types.ReplicationOverwriteProtectionEnabled})
	if got := attempt(arn); got != first {
		t.Fatalf("protection ENABLED: refusal %+v differs from %+v", got, first)
	}
	victim.UpdateFileSystemProtection(ctx, &efs.UpdateFileSystemProtectionInput{FileSystemId: dst.FileSystemId,
		ReplicationOverwriteProtection: types.ReplicationOverwriteProtectionDisabled})

	// A file system that does not exist, in an account that exists or not,
	// is refused with the very same bytes.
	gone := createFS(t, victim, "a-gone")
	if _, err := victim.DeleteFileSystem(ctx, &efs.DeleteFileSystemInput{FileSystemId: gone.FileSystemId}); err != nil {
		t.Fatal(err)
	}
	efstest.Eventually(t, 10*time.Second, "file system deleted", func() bool {
		_, err := victim.DescribeFileSystems(ctx, &efs.DescribeFileSystemsInput{FileSystemId: gone.FileSystemId})
		return err != nil
	})
	existing := createFS(t, victim, "a-existing")
	for _, pair := range [][2]string{
		{*existing.FileSystemArn, *gone.FileSystemArn},
		{"arn:aws:elasticfilesystem:us-east-1:" + efstest.AccountA.Account + ":file-system/fs-0123456789abcdef0",
			"arn:aws:elasticfilesystem:us-east-1:333333333333:file-system/fs-0123456789abcdef0"},
	} {
		a, b := attempt(pair[0]), attempt(pair[1])
		a.Body = string(bytes.ReplaceAll([]byte(a.Body), []byte(pair[0]), []byte(pair[1])))
		if a != b {
			t.Fatalf("existing vs missing destination:\n%+v\n%+v", a, b)
		}
	}
	// The same ARN, before and after its file system is deleted.
	before := attempt(*existing.FileSystemArn)
	victim.DeleteFileSystem(ctx, &efs.DeleteFileSystemInput{FileSystemId: existing.FileSystemId})
	efstest.Eventually(t, 10*time.Second, "file system deleted", func() bool {
		_, err := victim.DescribeFileSystems(ctx, &efs.DescribeFileSystemsInput{FileSystemId: existing.FileSystemId})
		return err != nil
	})
	if after := attempt(*existing.FileSystemArn); after != before {
		t.Fatalf("same ARN before and after deletion:\n%+v\n%+v", before, after)
	}

	// With the documented destination policy granting B, B replicates.
	putPolicy(destinationPolicy("arn:aws:iam::"+efstest.AccountB.Account+":root", arn))
	if _, err := attacker.CreateReplicationConfiguration(ctx, &efs.CreateReplicationConfigurationInput{SourceFileSystemId: src.FileSystemId,
		Destinations: []types.DestinationToCreate{{FileSystemId: aws.String(arn), RoleArn: aws.String(role)}}}); err != nil {
		t.Fatal(err)
	}
	waitReplicated(t, attacker, *src.FileSystemId, fsDir(srv, efstest.AccountB, region, *src.FileSystemId), dstDir, time.Time{})
}
