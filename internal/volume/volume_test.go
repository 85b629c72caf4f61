package volume

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/efsd/efsd/internal/efs"
)

func TestCreateMeasureRemove(t *testing.T) {
	m, err := New(t.TempDir(), Options{})
	if err != nil {
		t.Fatal(err)
	}
	k := efs.FSKey{Account: "111111111111", Region: "us-east-1", ID: "fs-0123456789abcdef0"}
	if err := m.Create(k); err != nil {
		t.Fatal(err)
	}
	u0, ok := m.Usage(k)
	if !ok || u0.Bytes != 6144 {
		t.Fatalf("empty volume usage = %+v, %v; want 6144 (EFS's size of an empty file system)", u0, ok)
	}
	if err := os.WriteFile(filepath.Join(m.Path(k), "a"), make([]byte, 5000), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("a", filepath.Join(m.Path(k), "l")); err != nil {
		t.Fatal(err)
	}
	if err := m.measure(k); err != nil {
		t.Fatal(err)
	}
	u1, _ := m.Usage(k)
	if want := int64(6144 + 8192 + 4096); u1.Bytes != want {
		t.Fatalf("usage = %d, want %d", u1.Bytes, want)
	}
	if err := m.Remove(k); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(m.Path(k)); !os.IsNotExist(err) {
		t.Fatalf("volume still there: %v", err)
	}
	if _, ok := m.Usage(k); ok {
		t.Fatal("usage kept after remove")
	}
	if err := m.Remove(k); err != nil {
		t.Fatalf("second remove: %v", err)
	}
}
