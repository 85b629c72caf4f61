package trees

import (
	"bytes"
	"crypto/sha256"
	"io/fs"
	"os"
	"path/filepath"
	"testing"
)

// tempDir prefers a tmpfs: these tests check determinism, not a file
// system, and some disks create small files slowly.
func tempDir(t *testing.T) string {
	if fi, err := os.Stat("/dev/shm"); err == nil && fi.IsDir() {
		if d, err := os.MkdirTemp("/dev/shm", "efsbench-test-"); err == nil {
			t.Cleanup(func() { os.RemoveAll(d) })
			return d
		}
	}
	return t.TempDir()
}

// digest hashes every path, type, size, link target and content of a tree.
func digest(t *testing.T, root string) [32]byte {
	t.Helper()
	h := sha256.New()
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, p)
		h.Write([]byte(rel + "|" + d.Type().String() + "|"))
		switch {
		case d.Type()&fs.ModeSymlink != 0:
			tgt, err := os.Readlink(p)
			if err != nil {
				return err
			}
			h.Write([]byte(tgt))
		case d.Type().IsRegular():
			b, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			h.Write(b)
		}
		h.Write([]byte{0})
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	var out [32]byte
	copy(out[:], h.Sum(nil))
	return out
}

func TestBuildIsDeterministic(t *testing.T) {
	for _, s := range []*Spec{
		SmallFiles("a", 100, 4096, 10),
		LargeFiles("b", 2, 3<<20+5),
		Mixed("c", 200, 8<<20),
		Scale("s", 1001),
	} {
		t.Run(s.Name, func(t *testing.T) {
			d1, d2 := tempDir(t), tempDir(t)
			if err := Build(d1, s, 1); err != nil {
				t.Fatal(err)
			}
			if err := Build(d2, s, 8); err != nil {
				t.Fatal(err)
			}
			if digest(t, d1) != digest(t, d2) {
				t.Fatal("two builds differ")
			}
			if err := Diff(d1, d2, DiffOptions{Content: true}); err != nil {
				t.Fatal(err)
			}
			n, err := StatWalk(d1)
			if err != nil || n != s.Files+len(s.Dirs) {
				t.Fatalf("stat walk saw %d entries (err %v), want %d", n, err, s.Files+len(s.Dirs))
			}
			// Entry i's bytes on disk are Content(i, 0).
			for _, i := range []int{0, s.Files - 1} {
				e := s.Entry(i)
				if e.Symlink != "" {
					continue
				}
				b, err := os.ReadFile(filepath.Join(d1, e.Path))
				if err != nil || !bytes.Equal(b, Content(s, i, 0)) {
					t.Fatalf("entry %d: content differs from Content (err %v)", i, err)
				}
			}

			// Mutate changes exactly the picked files, in both trees alike.
			changed, err := Mutate(d1, s, 3, 0.01, 4)
			if err != nil {
				t.Fatal(err)
			}
			if want := max(1, (s.Files+50)/100); len(changed) != want {
				t.Fatalf("mutated %d files, want %d", len(changed), want)
			}
			if err := Diff(d1, d2, DiffOptions{}); err != nil {
				t.Fatalf("mutation changed sizes or names: %v", err)
			}
			if Diff(d1, d2, DiffOptions{Content: true}) == nil {
				t.Fatal("mutation changed nothing")
			}
			if _, err := Mutate(d2, s, 3, 0.01, 1); err != nil {
				t.Fatal(err)
			}
			if digest(t, d1) != digest(t, d2) {
				t.Fatal("same mutation gave different trees")
			}
		})
	}
}

func TestPickVariesByRound(t *testing.T) {
	s := SmallFiles("a", 10000, 16, 100)
	a, b := Pick(s, 0, 0.01), Pick(s, 1, 0.01)
	if len(a) != 100 || len(b) != 100 {
		t.Fatalf("picked %d and %d", len(a), len(b))
	}
	same := 0
	for i := range a {
		if a[i] == b[i] {
			same++
		}
	}
	if same == len(a) {
		t.Fatal("rounds pick the same files")
	}
}

func TestSpecsAsDocumented(t *testing.T) {
	if s := SmallFiles("a", 10000, 4096, 100); s.TotalBytes() != 10000*4096 || len(s.Dirs) != 100 {
		t.Errorf("tree a: %s", s.Desc)
	}
	if s := Mixed("c", 5000, 800<<20); s.TotalBytes() < 790<<20 || s.TotalBytes() > 810<<20 {
		t.Errorf("tree c totals %d bytes: %s", s.TotalBytes(), s.Desc)
	}
	if s := Scale("s", 1000000); len(s.Dirs) != 1010 || s.Entry(999999).Path != "p009/d00999/f0999999" {
		t.Errorf("scale: %d dirs, last %s", len(s.Dirs), s.Entry(999999).Path)
	}
}

func TestDiffFindsDifferences(t *testing.T) {
	d1, d2 := t.TempDir(), t.TempDir()
	os.WriteFile(filepath.Join(d1, "x"), []byte("abc"), 0o644)
	os.WriteFile(filepath.Join(d2, "x"), []byte("abd"), 0o644)
	if Diff(d1, d2, DiffOptions{}) != nil {
		t.Fatal("same size should pass without Content")
	}
	if Diff(d1, d2, DiffOptions{Content: true}) == nil {
		t.Fatal("content difference missed")
	}
	os.WriteFile(filepath.Join(d2, "y"), nil, 0o644)
	if Diff(d1, d2, DiffOptions{}) == nil {
		t.Fatal("extra entry missed")
	}
}

// WriteRange changes exactly the range asked for, across a chunk
// boundary, to version v's bytes, and nothing else.
func TestWriteRange(t *testing.T) {
	dir := tempDir(t)
	s := LargeFiles("big", 1, 4<<20)
	if err := Build(dir, s, 1); err != nil {
		t.Fatal(err)
	}
	off, n := int64(2<<20-512<<10), int64(1<<20) // centred on the middle
	if err := WriteRange(dir, s, 0, 7, off, n); err != nil {
		t.Fatal(err)
	}
	got, err := os.ReadFile(filepath.Join(dir, s.Entry(0).Path))
	if err != nil {
		t.Fatal(err)
	}
	want := Content(s, 0, 0)
	copy(want[off:off+n], Content(s, 0, 7)[off:off+n])
	if !bytes.Equal(got, want) {
		t.Fatal("file after WriteRange differs from version 0 with the range of version 7")
	}
	if bytes.Equal(got[off:off+n], Content(s, 0, 0)[off:off+n]) {
		t.Fatal("the range did not change")
	}
	if err := WriteRange(dir, s, 0, 7, 4<<20-8, 16); err == nil {
		t.Fatal("a range past the end was accepted")
	}
}
