package nfs

import (
	"fmt"
	"net"
	"os"
	"os/signal"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/efsd/efsd/internal/fsview"
)

// TestManualServe serves a directory for manual checks with real clients (libnfs, the Linux
// kernel). It runs only when EFSD_NFS_SERVE_DIR is set:
//
//	EFSD_NFS_SERVE_DIR=/tmp/fs EFSD_NFS_SERVE_ADDR=127.0.0.1:2049 EFSD_NFS_SERVE_FOR=60s \
//	    go test -run TestManualServe -v ./internal/nfs/
//
// It prints "NFS_PORT=<port>" and serves until EFSD_NFS_SERVE_FOR (default 10m) has passed or it
// is interrupted. EFSD_NFS_SERVE_READONLY=1 serves read-only; EFSD_NFS_SERVE_AP=fsap-…:/path:uid:gid
// adds an access point (created 0755 for uid:gid).
func TestManualServe(t *testing.T) {
	dir := os.Getenv("EFSD_NFS_SERVE_DIR")
	if dir == "" {
		t.Skip("EFSD_NFS_SERVE_DIR not set")
	}
	addr := os.Getenv("EFSD_NFS_SERVE_ADDR")
	if addr == "" {
		addr = "127.0.0.1:0"
	}
	d := 10 * time.Minute
	if v := os.Getenv("EFSD_NFS_SERVE_FOR"); v != "" {
		var err error
		if d, err = time.ParseDuration(v); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	aps := map[string]fsview.AccessPoint{}
	if v := os.Getenv("EFSD_NFS_SERVE_AP"); v != "" {
		var id, path string
		var uid, gid uint32
		if _, err := fmt.Sscanf(replaceColons(v), "%s %s %d %d", &id, &path, &uid, &gid); err != nil {
			t.Fatalf("EFSD_NFS_SERVE_AP: %v", err)
		}
		aps[id] = fsview.AccessPoint{ID: id, Path: path, UID: &uid, GID: &gid,
			CreationInfo: &fsview.CreationInfo{OwnerUID: uid, OwnerGID: gid, Permissions: 0o755}}
	}
	ro := os.Getenv("EFSD_NFS_SERVE_READONLY") == "1"
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	s := NewServer(fsview.Export{
		FileSystemID: "fs-0123456789abcdef0",
		Root:         dir,
		ReadOnly:     func() bool { return ro },
		AccessPoint: func(id string) (fsview.AccessPoint, bool) {
			ap, ok := aps[id]
			return ap, ok
		},
	}, fsview.NewMemHandles(), nil)
	go func() { _ = s.Serve(ln) }()
	defer s.Close()
	fmt.Println("NFS_PORT=" + strconv.Itoa(ln.Addr().(*net.TCPAddr).Port))
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, os.Interrupt, syscall.SIGTERM)
	select {
	case <-time.After(d):
	case <-sig:
	}
}

func replaceColons(s string) string {
	b := []byte(s)
	for i := range b {
		if b[i] == ':' {
			b[i] = ' '
		}
	}
	return string(b)
}
