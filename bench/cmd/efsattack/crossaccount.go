package main

import (
	"crypto/sha256"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/efs"
	"github.com/aws/aws-sdk-go-v2/service/efs/types"
	"github.com/aws/smithy-go"
)

// crossAccount: account B replicates its own file system onto account A's
// (named by ARN, protection DISABLED, no file system policy), with a role
// of B's own account. Nothing of A's consents, so efsd must refuse, A's
// files must stay as they were, and the refusal must not tell B whether
// A's file system exists.
func (h *harness) crossAccount() result {
	r := result{held: true, scale: "1 configuration, two configured accounts, rescan 1 s"}
	o := efsdOpts{config: map[string]any{"accounts": accountsConfig(accountA, accountB), "replicationRescanInterval": "1s"}}
	in, err := h.startEfsd("cross-account", o)
	if err != nil {
		r.fail("setup: %v", err)
		return r
	}
	defer in.stop()
	ca, cb := in.client(accountA, region), in.client(accountB, region)
	victim, err := in.createFS(ca, "victim")
	if err != nil {
		r.fail("setup: %v", err)
		return r
	}
	vdir := in.volume(accountA.id, region, victim)
	if err := os.WriteFile(filepath.Join(vdir, "precious.txt"), []byte("account A's data\n"), 0o644); err != nil {
		r.fail("setup: %v", err)
		return r
	}
	// A turns overwrite protection off (for its own failback, say).
	if _, err := ca.UpdateFileSystemProtection(h.ctx, &efs.UpdateFileSystemProtectionInput{FileSystemId: aws.String(victim),
		ReplicationOverwriteProtection: types.ReplicationOverwriteProtectionDisabled}); err != nil {
		r.fail("setup: %v", err)
		return r
	}
	src, err := in.createFS(cb, "attacker")
	if err != nil {
		r.fail("setup: %v", err)
		return r
	}
	if err := os.WriteFile(filepath.Join(in.volume(accountB.id, region, src), "planted.txt"), []byte("B was here\n"), 0o644); err != nil {
		r.fail("setup: %v", err)
		return r
	}
	before := treeHash(vdir)
	arn := func(id string) string {
		return fmt.Sprintf("arn:aws:elasticfilesystem:%s:%s:file-system/%s", region, accountA.id, id)
	}
	replicate := func(dst string) error {
		_, err := cb.CreateReplicationConfiguration(h.ctx, &efs.CreateReplicationConfigurationInput{
			SourceFileSystemId: aws.String(src),
			Destinations: []types.DestinationToCreate{{FileSystemId: aws.String(dst),
				RoleArn: aws.String("arn:aws:iam::" + accountB.id + ":role/attacker")}}})
		return err
	}
	const missing = "fs-0123456789abcdef0"
	errMissing := replicate(arn(missing))
	errExisting := replicate(arn(victim))
	if errExisting == nil {
		r.fail("B's replication onto A's file system was accepted")
		defer cb.DeleteReplicationConfiguration(h.ctx, &efs.DeleteReplicationConfigurationInput{SourceFileSystemId: aws.String(src)})
	} else {
		r.fig("existing: %s", apiErr(errExisting))
	}
	r.fig("non-existent: %s", apiErr(errMissing))
	// Whatever the answer, A's files must not change.
	time.Sleep(pick(h, 5*time.Second, 3*time.Second))
	if after := treeHash(vdir); after != before {
		r.fail("account A's files were changed (%s)", describeTree(vdir))
	} else {
		r.fig("A's files unchanged after %v", pick(h, 5*time.Second, 3*time.Second))
	}
	if errMissing == nil {
		r.fail("a replication onto a non-existent file system of A was accepted")
	} else if errExisting != nil {
		e1 := strings.ReplaceAll(apiErr(errExisting), victim, "FS")
		e2 := strings.ReplaceAll(apiErr(errMissing), missing, "FS")
		if e1 != e2 {
			r.fail("the refusal tells whether A's file system exists: %q vs %q", e1, e2)
		}
	}
	if ok, why := in.alive(); !ok {
		r.fail("%s", why)
	}
	return r
}

// apiErr is an API error's code and message (or the error).
func apiErr(err error) string {
	var ae smithy.APIError
	if errors.As(err, &ae) {
		return ae.ErrorCode() + ": " + ae.ErrorMessage()
	}
	return err.Error()
}

// treeHash hashes the names, sizes and contents of a tree.
func treeHash(dir string) string {
	s := sha256.New()
	filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			fmt.Fprintf(s, "err %v\n", err)
			return nil
		}
		rel, _ := filepath.Rel(dir, p)
		fmt.Fprintf(s, "%s %v\n", rel, d.Type())
		if d.Type().IsRegular() {
			b, _ := os.ReadFile(p)
			s.Write(b)
		}
		return nil
	})
	return fmt.Sprintf("%x", s.Sum(nil))
}

func describeTree(dir string) string {
	es, err := os.ReadDir(dir)
	if err != nil {
		return err.Error()
	}
	var names []string
	for _, e := range es {
		names = append(names, e.Name())
	}
	return "now holds: " + strings.Join(names, ", ")
}
