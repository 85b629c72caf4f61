package mounts_test

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/efs"
	"github.com/aws/aws-sdk-go-v2/service/efs/types"
	"github.com/efsd/efsd/internal/efstest/nfsclient"
	nfsc "github.com/willscott/go-nfs-client/nfs"
	"github.com/willscott/go-nfs-client/nfs/rpc"
)

// tryMount mounts dirpath at addr as uid:gid and returns the error of a refused mount.
func tryMount(t *testing.T, addr, dirpath string, uid, gid uint32) (*nfsc.Target, error) {
	t.Helper()
	c, err := nfsclient.Dial(addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	return (&nfsc.Mount{Client: c}).Mount(dirpath, rpc.NewAuthUnix("efsd-test", uid, gid).Auth())
}

func owner(t *testing.T, path string) (uint32, uint32) {
	t.Helper()
	var st syscall.Stat_t
	if err := syscall.Lstat(path, &st); err != nil {
		t.Fatal(err)
	}
	return st.Uid, st.Gid
}

// anonymous allows the anonymous principal (NFS without IAM) the actions, as
// the EFS console's policies do, with the condition of its "Prevent anonymous
// access"-style statements that the client comes through a mount target.
func anonymous(actions ...string) string {
	return `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"AWS":"*"},"Action":["` +
		strings.Join(actions, `","`) + `"],"Condition":{"Bool":{"elasticfilesystem:AccessedViaMountTarget":"true"}}}]}`
}

const (
	clientMount = "elasticfilesystem:ClientMount"
	clientWrite = "elasticfilesystem:ClientWrite"
	clientRoot  = "elasticfilesystem:ClientRootAccess"
)

// TestFileSystemPolicyOverNFS: a file system policy governs what NFS
// clients without IAM authorization may do, through a real mount target.
func TestFileSystemPolicyOverNFS(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	fsID := e.createFS("policy-fs", false)
	addr := e.mountTarget(fsID, 0)
	dir := e.dir(fsID)
	if err := os.WriteFile(filepath.Join(dir, "readme"), []byte("hello"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(dir, 0o777); err != nil { // let a squashed root create files
		t.Fatal(err)
	}
	put := func(policy string) {
		t.Helper()
		if _, err := e.c.PutFileSystemPolicy(ctx, &efs.PutFileSystemPolicyInput{FileSystemId: aws.String(fsID), Policy: aws.String(policy)}); err != nil {
			t.Fatal(err)
		}
	}

	// No policy: full access, root is root (EFS's default policy).
	v := mount(t, addr, "/", 0, 0)
	if err := writeFile(t, v, "default", []byte("x")); err != nil {
		t.Fatal(err)
	}
	if uid, gid := owner(t, filepath.Join(dir, "default")); uid != 0 || gid != 0 {
		t.Fatalf("file created by root without a policy: %d:%d", uid, gid)
	}

	// Without ClientMount nobody mounts, and the mounted client is refused at its next call.
	put(anonymous(clientWrite, clientRoot))
	if _, err := tryMount(t, addr, "/", 0, 0); err == nil || err.Error() != "MNT3ERR_ACCES" {
		t.Fatalf("mount without ClientMount: %v, want MNT3ERR_ACCES", err)
	}
	if _, err := v.Open("readme"); err == nil {
		t.Fatal("a mounted client still reads after ClientMount was withdrawn")
	}
	// TLS required (the console's "Enforce in-transit encryption"): plain NFS is not.
	put(`{"Statement":[{"Effect":"Allow","Principal":{"AWS":"*"},"Action":["` + clientMount + `","` + clientWrite + `"]},` +
		`{"Effect":"Deny","Principal":{"AWS":"*"},"Action":"*","Condition":{"Bool":{"aws:SecureTransport":"false"}}}]}`)
	if _, err := tryMount(t, addr, "/", 0, 0); err == nil || err.Error() != "MNT3ERR_ACCES" {
		t.Fatalf("mount over plain NFS with TLS enforced: %v, want MNT3ERR_ACCES", err)
	}

	// ClientMount only: read-only.
	put(anonymous(clientMount))
	ro := mount(t, addr, "/", 0, 0)
	if got := readFile(t, ro, "readme"); string(got) != "hello" {
		t.Fatalf("read with ClientMount: %q", got)
	}
	if err := writeFile(t, ro, "readme", []byte("overwritten")); err == nil || !strings.Contains(err.Error(), "NFS3ERR_ROFS") {
		t.Fatalf("write without ClientWrite: %v, want a read-only error", err)
	}
	if _, err := ro.Mkdir("newdir", 0o755); err == nil {
		t.Fatal("mkdir without ClientWrite succeeded")
	}
	if got, _ := os.ReadFile(filepath.Join(dir, "readme")); string(got) != "hello" {
		t.Fatalf("file changed without ClientWrite: %q", got)
	}

	// ClientMount and ClientWrite without ClientRootAccess: root is squashed to 65534.
	put(anonymous(clientMount, clientWrite))
	rw := mount(t, addr, "/", 0, 0)
	if err := writeFile(t, rw, "squashed", []byte("x")); err != nil {
		t.Fatal(err)
	}
	if uid, gid := owner(t, filepath.Join(dir, "squashed")); uid != 65534 || gid != 65534 {
		t.Fatalf("file created by root without ClientRootAccess: %d:%d, want 65534:65534", uid, gid)
	}

	// An explicit Deny wins over the Allow.
	put(`{"Statement":[{"Effect":"Allow","Principal":"*","Action":"elasticfilesystem:*"},` +
		`{"Effect":"Deny","Principal":{"AWS":"*"},"Action":"` + clientWrite + `"}]}`)
	denied := mount(t, addr, "/", 0, 0)
	if err := writeFile(t, denied, "denied", []byte("x")); err == nil {
		t.Fatal("write with ClientWrite denied succeeded")
	}
	if got := readFile(t, denied, "readme"); string(got) != "hello" {
		t.Fatalf("read with ClientWrite denied: %q", got)
	}

	// Per access point: only mounts through this access point are allowed.
	ap, err := e.c.CreateAccessPoint(ctx, &efs.CreateAccessPointInput{FileSystemId: aws.String(fsID), ClientToken: aws.String("only"),
		RootDirectory: &types.RootDirectory{Path: aws.String("/only"),
			CreationInfo: &types.CreationInfo{OwnerUid: aws.Int64(0), OwnerGid: aws.Int64(0), Permissions: aws.String("0777")}}})
	if err != nil {
		t.Fatal(err)
	}
	put(`{"Statement":[{"Effect":"Allow","Principal":{"AWS":"*"},"Action":["` + clientMount + `","` + clientWrite + `","` + clientRoot + `"],` +
		`"Condition":{"StringEquals":{"elasticfilesystem:AccessPointArn":"` + *ap.AccessPointArn + `"}}}]}`)
	if _, err := tryMount(t, addr, "/", 0, 0); err == nil || err.Error() != "MNT3ERR_ACCES" {
		t.Fatalf("mount of the root with access point only policy: %v, want MNT3ERR_ACCES", err)
	}
	through := mount(t, addr, "/"+*ap.AccessPointId, 0, 0)
	if err := writeFile(t, through, "via-ap", []byte("x")); err != nil {
		t.Fatal(err)
	}
	if uid, _ := owner(t, filepath.Join(dir, "only", "via-ap")); uid != 0 {
		t.Fatalf("file created by root through the access point with ClientRootAccess: uid %d", uid)
	}

	// Deleting the policy restores full access.
	if _, err := e.c.DeleteFileSystemPolicy(ctx, &efs.DeleteFileSystemPolicyInput{FileSystemId: aws.String(fsID)}); err != nil {
		t.Fatal(err)
	}
	full := mount(t, addr, "/", 0, 0)
	if err := writeFile(t, full, "after-delete", []byte("x")); err != nil {
		t.Fatal(err)
	}
	if uid, gid := owner(t, filepath.Join(dir, "after-delete")); uid != 0 || gid != 0 {
		t.Fatalf("file created by root after the policy was deleted: %d:%d", uid, gid)
	}
}
