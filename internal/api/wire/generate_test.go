package wire

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

// TestGeneratedUpToDate reruns tools/modelgen and requires byte-identical
// output from the pinned model, so a hand edit or a stale regeneration cannot
// go unnoticed, whatever botocore the machine has (or none).
func TestGeneratedUpToDate(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the generator")
	}
	goBin, err := exec.LookPath("go")
	if err != nil {
		t.Skipf("go tool unavailable: %v", err)
	}
	out := filepath.Join(t.TempDir(), "zz_generated.go")
	cmd := exec.Command(goBin, "run", "../../../tools/modelgen", "-model", "service-2.json.gz", "-out", out)
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("modelgen: %v\n%s", err, b)
	}
	got, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	want, err := os.ReadFile("zz_generated.go")
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("zz_generated.go is stale; run go generate ./internal/api/wire")
	}
}
