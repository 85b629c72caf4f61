package daemon

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"testing"
)

// Two data directories on one host place their default VPCs apart, so two
// efsd do not hand out the same loopback addresses; one directory keeps its
// ranges across restarts.
func TestDefaultVPCsOfDataDirectoriesDiffer(t *testing.T) {
	ctx := context.Background()
	dirWithKey := func(fill byte) string {
		dir := t.TempDir()
		if err := os.WriteFile(filepath.Join(dir, "nfs-handle.key"), bytes.Repeat([]byte{fill}, 32), 0o600); err != nil {
			t.Fatal(err)
		}
		return dir
	}
	a, b := dirWithKey(1), dirWithKey(2)
	cidr := func(dir string) string {
		t.Helper()
		n, err := Network(ctx, Config{DataDir: dir}, "000000000000", "us-east-1")
		if err != nil {
			t.Fatal(err)
		}
		return n.VPCs[0].CIDR
	}
	ca, cb := cidr(a), cidr(b)
	if ca == cb {
		t.Fatalf("two data directories both placed their first default VPC at %s", ca)
	}
	if again := cidr(a); again != ca {
		t.Fatalf("the default VPC moved from %s to %s", ca, again)
	}
	if vpcBlockOffset(bytes.Repeat([]byte{1}, 32)) == vpcBlockOffset(bytes.Repeat([]byte{2}, 32)) {
		t.Fatal("offsets of different keys are equal")
	}
}
