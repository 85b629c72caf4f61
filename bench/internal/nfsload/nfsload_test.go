package nfsload

import (
	"bytes"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/efsd/efsd/internal/fsview"
	"github.com/efsd/efsd/internal/nfs"
)

// serve starts efsd's NFS server on a directory and returns its endpoint.
func serve(t *testing.T) (Endpoint, string) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("efsd's NFS server needs root (identity switching)")
	}
	root := t.TempDir()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := nfs.NewServer(fsview.Export{FileSystemID: "fs-0123456789abcdef0", Root: root}, fsview.NewMemHandles(),
		slog.New(slog.DiscardHandler))
	go s.Serve(ln)
	t.Cleanup(func() { s.Close() })
	addr := ln.Addr().String()
	return Endpoint{NFS: addr, Mount: addr, Export: "/"}, root
}

// Every workload does what it says: the files, bytes and names it
// reports are there on the server's disk.
func TestWorkloads(t *testing.T) {
	e, root := serve(t)
	if err := Setup(e, "w/small"); err != nil {
		t.Fatal(err)
	}
	r, err := CreateFiles(e, "w/small", 50, 4096, 3)
	if err != nil || r.Ops != 50 {
		t.Fatalf("CreateFiles: %+v, %v", r, err)
	}
	ents, _ := os.ReadDir(filepath.Join(root, "w/small"))
	if len(ents) != 50 {
		t.Fatalf("%d files made, want 50", len(ents))
	}
	if fi, _ := os.Stat(filepath.Join(root, "w/small", ents[7].Name())); fi.Size() != 4096 {
		t.Fatalf("a created file has %d bytes", fi.Size())
	}

	const size = 5<<20 + 12345
	if r, err = WriteFile(e, "w/big", size, 3); err != nil || r.Bytes != size {
		t.Fatalf("WriteFile: %+v, %v", r, err)
	}
	onDisk, _ := os.ReadFile(filepath.Join(root, "w/big"))
	if len(onDisk) != size || bytes.Count(onDisk, []byte{0}) > size/100 {
		t.Fatalf("big file: %d bytes, %d zeros (holes?)", len(onDisk), bytes.Count(onDisk, []byte{0}))
	}
	if r, err = ReadFile(e, "w/big", size, 2); err != nil || r.Bytes != size {
		t.Fatalf("ReadFile: %+v, %v", r, err)
	}
	if r, err = ReadRandom(e, "w/big", size, 200, 4); err != nil || r.Ops != 200 {
		t.Fatalf("ReadRandom: %+v, %v", r, err)
	}

	r, names, err := ListDir(e, "w/small")
	if err != nil || r.Ops != 50 || len(names) != 50 {
		t.Fatalf("ListDir: %+v, %d names, %v", r, len(names), err)
	}
	if r, err = Getattrs(e, "w/small", names, 3); err != nil || r.Ops != 50 {
		t.Fatalf("Getattrs: %+v, %v", r, err)
	}
	if r, err = RenameAll(e, "w/small", names, ".r", 3); err != nil {
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
	if r, err = RemoveAll(e, "w/small", renamed, 3); err != nil {
		t.Fatalf("RemoveAll: %+v, %v", r, err)
	}
	if ents, _ = os.ReadDir(filepath.Join(root, "w/small")); len(ents) != 0 {
		t.Fatalf("after RemoveAll: %d entries left", len(ents))
	}
}
