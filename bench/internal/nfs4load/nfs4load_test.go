package nfs4load

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/efsd/efsd/internal/fsview"
	"github.com/efsd/efsd/internal/nfs"
	"github.com/efsd/efsd/internal/nfs4"
)

// serve starts efsd's NFS server (NFSv4 beside v3) on a directory, with a
// stable record so that it has no grace period, and returns its endpoint.
func serve(t testing.TB) (Endpoint, string) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("efsd's NFS server needs root (identity switching)")
	}
	root := os.Getenv("NFS4LOAD_DIR") // e.g. on a journaled ext4, for a profile
	if root == "" {
		root = t.TempDir()
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	log := slog.New(slog.DiscardHandler)
	s := nfs.NewServer(fsview.Export{FileSystemID: "fs-0123456789abcdef0", HandleKey: make([]byte, fsview.HandleKeySize), Root: root},
		fsview.NewMemHandles(), log)
	s.SetV4(nfs4.New(s.FS(), log, nfs4.Options{Record: nfs4.FileRecord{Path: filepath.Join(t.TempDir(), "clients")}}))
	go s.Serve(ln)
	t.Cleanup(func() { s.Close() })
	return Endpoint{Addr: ln.Addr().String()}, root
}

func ctxFor(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	t.Cleanup(cancel)
	return ctx
}

// Every workload does what it says: the files, bytes and names it
// reports are there on the server's disk.
func TestWorkloads(t *testing.T) {
	e, root := serve(t)
	ctx := ctxFor(t)
	if err := Setup(ctx, e, "w/small"); err != nil {
		t.Fatal(err)
	}
	if err := WaitReady(ctx, e, "w"); err != nil {
		t.Fatal(err)
	}
	if w, r, err := Blocks(ctx, e); err != nil || w != 1<<20 || r != 1<<20 {
		t.Fatalf("Blocks: %d, %d, %v; want efsd's 1 MiB", w, r, err)
	}
	r, err := CreateFiles(ctx, e, "w/small", 50, 4096, 3)
	if err != nil || r.Ops != 50 {
		t.Fatalf("CreateFiles: %+v, %v", r, err)
	}
	ents, _ := os.ReadDir(filepath.Join(root, "w/small"))
	if len(ents) != 50 {
		t.Fatalf("%d files made, want 50", len(ents))
	}
	if fi, _ := os.Stat(filepath.Join(root, "w/small", ents[7].Name())); fi.Size() != 4096 || fi.Mode().Perm() != 0o644 {
		t.Fatalf("a created file: %d bytes, mode %v", fi.Size(), fi.Mode())
	}

	const size = 5<<20 + 12345
	if r, err = WriteFile(ctx, e, "w/big", size, 3); err != nil || r.Bytes != size {
		t.Fatalf("WriteFile: %+v, %v", r, err)
	}
	onDisk, _ := os.ReadFile(filepath.Join(root, "w/big"))
	if len(onDisk) != size || !matches(onDisk, 0) {
		t.Fatalf("big file: %d bytes, content as written: %v", len(onDisk), matches(onDisk, 0))
	}
	if r, err = ReadFile(ctx, e, "w/big", size, 2); err != nil || r.Bytes != size {
		t.Fatalf("ReadFile: %+v, %v", r, err)
	}
	if r, err = ReadRandom(ctx, e, "w/big", size, 200, 4); err != nil || r.Ops != 200 {
		t.Fatalf("ReadRandom: %+v, %v", r, err)
	}

	r, names, err := ListDir(ctx, e, "w/small", 4096)
	if err != nil || r.Ops != 50 || len(names) != 50 {
		t.Fatalf("ListDir: %+v, %d names, %v", r, len(names), err)
	}
	if r, err = Getattrs(ctx, e, "w/small", names, 4096, 3); err != nil || r.Ops != 50 {
		t.Fatalf("Getattrs: %+v, %v", r, err)
	}
	if r, err = RenameAll(ctx, e, "w/small", names, ".r", 3); err != nil {
		t.Fatalf("RenameAll: %+v, %v", r, err)
	}
	ents, _ = os.ReadDir(filepath.Join(root, "w/small"))
	if len(ents) != 50 || !slices.ContainsFunc(ents, func(d os.DirEntry) bool { return d.Name() == names[0]+".r" }) {
		t.Fatalf("after RenameAll: %d entries", len(ents))
	}
	renamed := make([]string, len(names))
	for i, n := range names {
		renamed[i] = n + ".r"
	}
	if r, err = RemoveAll(ctx, e, "w/small", renamed, 3); err != nil {
		t.Fatalf("RemoveAll: %+v, %v", r, err)
	}
	if ents, _ = os.ReadDir(filepath.Join(root, "w/small")); len(ents) != 0 {
		t.Fatalf("after RemoveAll: %d entries left", len(ents))
	}
}

// A listing long enough for several READDIRs, their count growing, sees
// every name once.
func TestListDirPages(t *testing.T) {
	e, root := serve(t)
	ctx := ctxFor(t)
	dir := filepath.Join(root, "d")
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	const n = 3000
	data := bytes.Repeat([]byte{'x'}, 10)
	for i := range n {
		if err := os.WriteFile(filepath.Join(dir, fmt.Sprintf("%s-%05d", strings.Repeat("n", 40), i)), data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	r, names, err := ListDir(ctx, e, "d", 10)
	if err != nil || r.Ops != n || len(names) != n {
		t.Fatalf("ListDir: %+v, %d names, %v", r, len(names), err)
	}
	// A file of another size is reported, not counted.
	if err := os.WriteFile(filepath.Join(dir, "odd"), []byte("odd size"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, _, err := ListDir(ctx, e, "d", 10); err == nil || !strings.Contains(err.Error(), "odd") {
		t.Fatalf("ListDir with a file of another size: %v", err)
	}
}

// Reads that return other bytes than were written fail the workload: a
// byte changed on the server's disk behind the writer's back is caught by
// the sequential and the random reads (which all touch that block).
func TestReadsCheckBytes(t *testing.T) {
	e, root := serve(t)
	ctx := ctxFor(t)
	if err := Setup(ctx, e, "v"); err != nil {
		t.Fatal(err)
	}
	const size = 64 << 10
	if _, err := WriteFile(ctx, e, "v/big", size, 2); err != nil {
		t.Fatal(err)
	}
	f, err := os.OpenFile(filepath.Join(root, "v/big"), os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	b := make([]byte, size)
	if _, err := f.ReadAt(b, 0); err != nil {
		t.Fatal(err)
	}
	// Change one byte of every 4 KiB block.
	for off := int64(100); off < size; off += 4096 {
		if _, err := f.WriteAt([]byte{b[off] ^ 0xff}, off); err != nil {
			t.Fatal(err)
		}
	}
	f.Close()
	if _, err := ReadFile(ctx, e, "v/big", size, 2); err == nil || !strings.Contains(err.Error(), "not the bytes written") {
		t.Fatalf("ReadFile of a changed file: %v", err)
	}
	if _, err := ReadRandom(ctx, e, "v/big", size, 10, 2); err == nil || !strings.Contains(err.Error(), "not the bytes written") {
		t.Fatalf("ReadRandom of a changed file: %v", err)
	}
	// A file of another size than expected is refused before any read.
	if _, err := ReadFile(ctx, e, "v/big", size+1, 1); err == nil || !strings.Contains(err.Error(), "bytes, not") {
		t.Fatalf("ReadFile with the wrong size: %v", err)
	}
}

// The content pattern does not repeat with a power-of-two period: a block
// read from the wrong offset does not match.
func TestPattern(t *testing.T) {
	b := make([]byte, 3<<20)
	fill(b, 12345)
	if !matches(b, 12345) {
		t.Fatal("fill and matches disagree")
	}
	for _, shift := range []int64{4096, 64 << 10, 1 << 20} {
		if matches(b[:1<<20], 12345+shift) {
			t.Fatalf("a block shifted by %d matches", shift)
		}
	}
}

func TestIOSize(t *testing.T) {
	for _, c := range []struct {
		server  uint64
		session uint32
		want    int
	}{
		{1 << 20, 1<<20 + 4096, 1 << 20},
		{0, 1<<20 + 64<<10, 1 << 20},
		{64 << 20, 1<<20 + 64<<10, 1 << 20},
		{1 << 20, 1 << 20, 512 << 10}, // the headers must fit
		{300 << 10, 1 << 20, 256 << 10},
	} {
		if got := ioSize(c.server, c.session); got != c.want {
			t.Errorf("ioSize(%d, %d) = %d, want %d", c.server, c.session, got, c.want)
		}
	}
}

// The load generator dials loopback addresses only.
func TestLoopbackOnly(t *testing.T) {
	if _, err := Connect(context.Background(), Endpoint{Addr: "192.0.2.1:2049"}); err == nil || !strings.Contains(err.Error(), "loopback") {
		t.Fatalf("Connect to a non-loopback address: %v", err)
	}
}

// BenchmarkEfsd runs the workloads against efsd's NFSv4 server in this
// process, for a CPU profile of the server side (the client's share shows
// as nfs4client and go-xdr): NFS4LOAD_DIR puts its files on a chosen file
// system (the harness's is a journaled ext4), NFS4LOAD_FILES and
// NFS4LOAD_MIB size the small files and the big one (default 2000 and 256).
//
//	NFS4LOAD_DIR=/mnt/x go test -run - -bench Efsd -benchtime 1x -cpuprofile /tmp/nfs4.prof ./bench/internal/nfs4load
func BenchmarkEfsd(b *testing.B) {
	e, _ := serve(b)
	ctx := ctxFor(b)
	files, mib := envInt("NFS4LOAD_FILES", 2000), envInt("NFS4LOAD_MIB", 256)
	size := int64(mib) << 20
	const conns = 4
	for i := 0; b.Loop(); i++ {
		dir := fmt.Sprintf("b%d-%d", os.Getpid(), i)
		small, big := dir+"/small", dir+"/big"
		if err := Setup(ctx, e, small); err != nil {
			b.Fatal(err)
		}
		report := func(name string, r Result, err error) {
			if err != nil {
				b.Fatalf("%s: %v", name, err)
			}
			b.Logf("%-11s %6d in %8.3fs: %8.0f/s %7.1f MB/s", name, r.Ops, r.Wall.Seconds(), r.PerSecond(), r.MBps())
		}
		r, err := CreateFiles(ctx, e, small, files, 4096, conns)
		report("create", r, err)
		r, err = WriteFile(ctx, e, big, size, conns)
		report("seqwrite", r, err)
		r, err = ReadFile(ctx, e, big, size, conns)
		report("seqread", r, err)
		r, err = ReadRandom(ctx, e, big, size, 10*files, conns)
		report("randread", r, err)
		r, names, err := ListDir(ctx, e, small, 4096)
		report("readdirplus", r, err)
		r, err = Getattrs(ctx, e, small, names, 4096, conns)
		report("getattr", r, err)
		r, err = RenameAll(ctx, e, small, names, ".r", conns)
		report("rename", r, err)
		for j := range names {
			names[j] += ".r"
		}
		r, err = RemoveAll(ctx, e, small, names, conns)
		report("remove", r, err)
		if _, err := RemoveAll(ctx, e, dir, []string{"big"}, 1); err != nil {
			b.Fatal(err)
		}
	}
}

func envInt(name string, def int) int {
	if n, err := strconv.Atoi(os.Getenv(name)); err == nil && n > 0 {
		return n
	}
	return def
}
