package nfs4_test

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/efsd/efsd/internal/nfs4"
)

// libnfs (Debian's libnfs-utils), a client nobody here wrote, lists, writes and reads over NFSv4.0.
func TestLibnfsV4(t *testing.T) {
	if _, err := exec.LookPath("nfs-cp"); err != nil {
		t.Skip("libnfs-utils is not installed")
	}
	e := newEnv(t, nfs4.Options{Grace: time.Millisecond})
	if err := os.WriteFile(filepath.Join(e.root, "hello"), []byte("from the host\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	host, port, _ := strings.Cut(e.addr, ":")
	url := func(path string) string { return "nfs://" + host + path + "?version=4&nfsport=" + port }
	out, err := exec.Command("nfs-ls", url("/")).CombinedOutput()
	if err != nil || !strings.Contains(string(out), "hello") {
		t.Fatalf("nfs-ls: %v\n%s", err, out)
	}
	local := filepath.Join(t.TempDir(), "up")
	// 200 lines, 2.8 KB: libnfs 4.0 cannot send an NFSv4 WRITE of more than about 3.9 KB (it encodes
	// calls into a 4 KiB buffer; nfs-cp fails the same way against nfs-ganesha).
	payload := strings.Repeat("to the server\n", 200)
	if err := os.WriteFile(local, []byte(payload), 0o644); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command("nfs-cp", local, url("//up")).CombinedOutput(); err != nil {
		t.Fatalf("nfs-cp up: %v\n%s", err, out)
	}
	if b, err := os.ReadFile(filepath.Join(e.root, "up")); err != nil || string(b) != payload {
		t.Fatalf("written: %q %v", b, err)
	}
	down := filepath.Join(t.TempDir(), "down")
	if out, err := exec.Command("nfs-cp", url("//hello"), down).CombinedOutput(); err != nil {
		t.Fatalf("nfs-cp down: %v\n%s", err, out)
	}
	if b, err := os.ReadFile(down); err != nil || string(b) != "from the host\n" {
		t.Fatalf("read: %q %v", b, err)
	}
}
