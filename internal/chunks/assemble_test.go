package chunks

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

type trees struct {
	src, dst string
	s        *source
	ix       *Index
	sup      *pipeSupplier
}

func newTrees(t *testing.T) *trees {
	src, dst := t.TempDir(), t.TempDir()
	s := newSource(src)
	return &trees{src: src, dst: dst, s: s, sup: &pipeSupplier{src: s}}
}

func (tr *trees) index(t *testing.T) { tr.ix = openIndex(t, tr.dst) }

// send lists the source file rel and assembles it at the destination.
func (tr *trees) send(t *testing.T, rel string, o *AssembleOptions) (Stats, error) {
	t.Helper()
	return tr.ix.Assemble(context.Background(), rel, tr.s.list(t, rel), tr.sup, o)
}

// A 1 MiB change in the middle of a 64 MiB file fetches a few chunks: the
// changed MiB and at most about a largest chunk on either side.
func TestMidFileChangeSendsFewChunks(t *testing.T) {
	tr := newTrees(t)
	data := randBytes(10, 64<<20)
	writeFile(t, filepath.Join(tr.src, "big"), data)
	tr.index(t)
	st, err := tr.send(t, "big", nil)
	if err != nil {
		t.Fatal(err)
	}
	_, wire0 := tr.sup.counts()
	if st.FetchedBytes != int64(len(data)) || wire0 < int64(len(data)) {
		t.Fatalf("initial copy: %+v, wire %d", st, wire0)
	}
	mustEqualFile(t, filepath.Join(tr.dst, "big"), data)

	copy(data[32<<20:], randBytes(11, 1<<20))
	writeFile(t, filepath.Join(tr.src, "big"), data)
	st, err = tr.send(t, "big", nil)
	if err != nil {
		t.Fatal(err)
	}
	_, wire := tr.sup.counts()
	wire -= wire0
	t.Logf("1 MiB changed in 64 MiB: %d chunks fetched (%d bytes, %d on the wire), %d local", st.Fetched, st.FetchedBytes, wire, st.Local)
	if st.Fetched < 1 || st.FetchedBytes > 3<<20 || wire > st.FetchedBytes+int64(st.Fetched)*headerSize || st.FetchedBytes+st.LocalBytes != int64(len(data)) {
		t.Fatalf("stats %+v, wire %d", st, wire)
	}
	mustEqualFile(t, filepath.Join(tr.dst, "big"), data)

	// Sent again unchanged: untouched, nothing fetched.
	fi, _ := os.Stat(filepath.Join(tr.dst, "big"))
	st, err = tr.send(t, "big", nil)
	if err != nil || !st.Unchanged || st.Fetched != 0 {
		t.Fatalf("unchanged file: %+v, %v", st, err)
	}
	if fi2, _ := os.Stat(filepath.Join(tr.dst, "big")); !os.SameFile(fi, fi2) {
		t.Fatal("an identical file was rewritten")
	}
}

// A file renamed or copied at the source costs no chunk bytes: the
// destination finds them in the files it has.
func TestRenameAndCopySendNothing(t *testing.T) {
	tr := newTrees(t)
	data := randBytes(20, 9<<20)
	writeFile(t, filepath.Join(tr.src, "a/file"), data)
	writeFile(t, filepath.Join(tr.dst, "a/file"), data) // landed in an earlier pass
	tr.index(t)
	if tr.ix.Files() != 1 {
		t.Fatalf("index has %d files", tr.ix.Files())
	}
	// Source: a/file renamed to b/moved, and copied to c.
	os.MkdirAll(filepath.Join(tr.src, "b"), 0o755)
	os.Rename(filepath.Join(tr.src, "a/file"), filepath.Join(tr.src, "b/moved"))
	writeFile(t, filepath.Join(tr.src, "c"), data)
	os.MkdirAll(filepath.Join(tr.dst, "b"), 0o755)
	for _, rel := range []string{"b/moved", "c"} {
		st, err := tr.send(t, rel, nil)
		if err != nil {
			t.Fatal(err)
		}
		if st.Fetched != 0 || st.LocalBytes != int64(len(data)) {
			t.Fatalf("%s: %+v", rel, st)
		}
		mustEqualFile(t, filepath.Join(tr.dst, rel), data)
	}
	if n, wire := tr.sup.counts(); n != 0 || wire != 0 {
		t.Fatalf("%d chunks, %d bytes crossed", n, wire)
	}
}

// An assembly whose supplier fails after N chunks resumes from what landed:
// the retry fetches only the rest.
func TestInterruptedAssemblyResumes(t *testing.T) {
	tr := newTrees(t)
	data := randBytes(30, 24<<20)
	writeFile(t, filepath.Join(tr.src, "f"), data)
	tr.index(t)
	l := tr.s.list(t, "f")
	tr.sup.failAfter = 5
	st, err := tr.ix.Assemble(context.Background(), "f", l, tr.sup, nil)
	if err == nil {
		t.Fatal("assembly succeeded with a broken supplier")
	}
	if st.Fetched != 5 {
		t.Fatalf("first attempt: %+v", st)
	}
	if _, err := os.Stat(filepath.Join(tr.dst, "f")); !os.IsNotExist(err) {
		t.Fatalf("a partial file appeared under the real name: %v", err)
	}
	// A new index, as after a restart of the process.
	tr.ix.Close()
	tr.index(t)
	tr.sup.failAfter = 0
	st, err = tr.ix.Assemble(context.Background(), "f", l, tr.sup, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("resumed %d chunks (%d bytes), fetched %d", st.Resumed, st.ResumedBytes, st.Fetched)
	if st.Resumed != 5 || st.Fetched != len(l)-5 {
		t.Fatalf("resume: %+v of %d chunks", st, len(l))
	}
	mustEqualFile(t, filepath.Join(tr.dst, "f"), data)
	noTemporaries(t, tr.dst)
}

func noTemporaries(t *testing.T, dir string) {
	t.Helper()
	ents, _ := os.ReadDir(dir)
	for _, e := range ents {
		if strings.HasPrefix(e.Name(), ".efsd-tmp-") {
			t.Fatalf("temporary %s left", e.Name())
		}
	}
}

// A destination file changed behind the index's back: its chunks no longer
// match, are not used, and are fetched instead.
func TestCorruptLocalChunkRefetched(t *testing.T) {
	tr := newTrees(t)
	data := randBytes(40, 8<<20)
	writeFile(t, filepath.Join(tr.src, "f"), data)
	writeFile(t, filepath.Join(tr.dst, "old"), data)
	tr.index(t)
	// One byte flipped in the middle of the destination's copy.
	f, err := os.OpenFile(filepath.Join(tr.dst, "old"), os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	f.WriteAt([]byte{^data[4<<20]}, 4<<20)
	f.Close()
	st, err := tr.send(t, "f", nil)
	if err != nil {
		t.Fatal(err)
	}
	if st.Stale != 1 || st.Fetched != 1 || st.Local != len(tr.s.list(t, "f"))-1 {
		t.Fatalf("%+v", st)
	}
	mustEqualFile(t, filepath.Join(tr.dst, "f"), data)
}

// A crash between making the temporary durable and renaming it leaves the
// real name as it was (old content, never a torn file); the next attempt
// renames the complete temporary without fetching anything.
func TestCrashBeforeRenameNeverTearsRealName(t *testing.T) {
	tr := newTrees(t)
	old := randBytes(50, 6<<20)
	writeFile(t, filepath.Join(tr.dst, "f"), old)
	data := randBytes(51, 6<<20)
	writeFile(t, filepath.Join(tr.src, "f"), data)
	tr.index(t)
	crash := errors.New("crash")
	for range 2 {
		_, err := tr.send(t, "f", &AssembleOptions{beforeRename: func() error { return crash }})
		if !errors.Is(err, crash) {
			t.Fatal(err)
		}
		mustEqualFile(t, filepath.Join(tr.dst, "f"), old)
	}
	n, _ := tr.sup.counts()
	tr.ix.Close()
	tr.index(t)
	st, err := tr.send(t, "f", nil)
	if err != nil {
		t.Fatal(err)
	}
	if n2, _ := tr.sup.counts(); n2 != n || st.Fetched != 0 || st.ResumedBytes != int64(len(data)) {
		t.Fatalf("after crash: %+v, chunks fetched %d then %d", st, n, n2)
	}
	mustEqualFile(t, filepath.Join(tr.dst, "f"), data)
	noTemporaries(t, tr.dst)
}

// Paths cannot leave the destination root: not by "..", not through a
// symlink planted at the destination, not through a symlink in place of
// the temporary.
func TestAssembleConfined(t *testing.T) {
	tr := newTrees(t)
	outside := t.TempDir()
	writeFile(t, filepath.Join(tr.src, "f"), []byte("hello"))
	os.Symlink(outside, filepath.Join(tr.dst, "link"))
	tr.index(t)
	l := tr.s.list(t, "f")
	for _, rel := range []string{"../x", "/etc/x", "link/f", "a/../../x", "", ".efsd-tmp-x"} {
		if _, err := tr.ix.Assemble(context.Background(), rel, l, tr.sup, nil); err == nil {
			t.Errorf("%q: accepted", rel)
		}
	}
	// A symlink where the temporary of "g" would be created.
	os.Symlink(filepath.Join(outside, "evil"), filepath.Join(tr.dst, partName("g")))
	if _, err := tr.ix.Assemble(context.Background(), "g", l, tr.sup, nil); err == nil {
		t.Error("wrote through a symlinked temporary")
	}
	if ents, _ := os.ReadDir(outside); len(ents) != 0 {
		t.Fatalf("%d entries written outside the root", len(ents))
	}
}

// Two assemblies of one target at once: the second is refused, not
// interleaved into the same temporary.
func TestConcurrentAssemblyRefused(t *testing.T) {
	tr := newTrees(t)
	writeFile(t, filepath.Join(tr.src, "f"), randBytes(60, 2<<20))
	tr.index(t)
	l := tr.s.list(t, "f")
	hold := AssembleOptions{Prepare: func(int, *unix.Stat_t) error {
		_, err := tr.ix.Assemble(context.Background(), "f", l, tr.sup, nil)
		if !errors.Is(err, ErrBusy) {
			t.Errorf("second assembly: %v", err)
		}
		return nil
	}}
	if _, err := tr.ix.Assemble(context.Background(), "f", l, tr.sup, &hold); err != nil {
		t.Fatal(err)
	}
}

// Prepare sees the complete temporary and what it sets survives the rename.
func TestPrepareSetsMetadata(t *testing.T) {
	tr := newTrees(t)
	writeFile(t, filepath.Join(tr.src, "f"), nil)
	tr.index(t)
	st, err := tr.send(t, "f", &AssembleOptions{Prepare: func(fd int, _ *unix.Stat_t) error { return unix.Fchmod(fd, 0o640) }})
	if err != nil || st.Fetched != 0 {
		t.Fatal(st, err)
	}
	fi, err := os.Stat(filepath.Join(tr.dst, "f"))
	if err != nil || fi.Size() != 0 || fi.Mode().Perm() != 0o640 {
		t.Fatal(fi, err)
	}
}

// A deferred assembly leaves the real name alone until Publish; meanwhile
// its temporary serves its chunks to other assemblies, and after Publish
// the real name holds the content and the index knows it there.
func TestDeferredAssembly(t *testing.T) {
	src, dst := t.TempDir(), t.TempDir()
	data := randBytes(90, 3<<20)
	writeFile(t, filepath.Join(src, "d", "f"), data)
	writeFile(t, filepath.Join(src, "g"), data)
	writeFile(t, filepath.Join(dst, "d", "f"), []byte("old"))
	s := newSource(src)
	ix := openIndex(t, dst)
	st, err := ix.Assemble(context.Background(), "d/f", s.list(t, "d/f"), &pipeSupplier{src: s}, &AssembleOptions{Defer: true})
	if err != nil || st.Staged == nil {
		t.Fatalf("deferred assembly: %+v %v", st, err)
	}
	if b, _ := os.ReadFile(filepath.Join(dst, "d", "f")); string(b) != "old" {
		t.Fatal("the real name changed before Publish")
	}
	// g's chunks all come from f's temporary: nothing fetched.
	st2, err := ix.Assemble(context.Background(), "g", s.list(t, "g"), nil, &AssembleOptions{Defer: true})
	if err != nil || st2.Fetched != 0 {
		t.Fatalf("assembly from a staged file: %+v %v", st2, err)
	}
	if err := ix.Sync(); err != nil {
		t.Fatal(err)
	}
	if err := ix.Publish([]*Staged{st.Staged, st2.Staged}); err != nil {
		t.Fatal(err)
	}
	for _, rel := range []string{"d/f", "g"} {
		if b, _ := os.ReadFile(filepath.Join(dst, rel)); !bytes.Equal(b, data) {
			t.Fatalf("%s after Publish: %d bytes", rel, len(b))
		}
		if _, ok := ix.Lookup(rel); !ok {
			t.Fatalf("%s not indexed after Publish", rel)
		}
	}
	if ents, _ := os.ReadDir(filepath.Join(dst, "d")); len(ents) != 1 {
		t.Fatalf("temporaries left: %v", ents)
	}
}

// Held bytes are written as they are, chunks the index knows elsewhere
// included (no search, no second read); held bytes of another size than
// the list's are refused before anything is written.
func TestAssembleHeld(t *testing.T) {
	tr := newTrees(t)
	tr.index(t)
	data := randBytes(40, 300<<10)
	l := listOf(t, data)
	if len(l) < 2 {
		t.Fatalf("%d chunks, want several", len(l))
	}
	// The index knows the same bytes as another file: a search would
	// copy them from there (Local), Held takes its own.
	writeFile(t, filepath.Join(tr.dst, "other"), data)
	if _, err := tr.ix.Assemble(context.Background(), "other", l, nil, nil); err != nil {
		t.Fatal(err)
	}
	st, err := tr.ix.Assemble(context.Background(), "f", l, Held(data), nil)
	if err != nil {
		t.Fatal(err)
	}
	if st.Local != 0 || st.Fetched != len(l) || st.FetchedBytes != int64(len(data)) {
		t.Fatalf("stats %+v, want every chunk from the held bytes", st)
	}
	mustEqualFile(t, filepath.Join(tr.dst, "f"), data)

	if _, err := tr.ix.Assemble(context.Background(), "g", l, Held(data[:len(data)-1]), nil); err == nil {
		t.Fatal("held bytes shorter than the list were taken")
	}
	if _, err := os.Lstat(filepath.Join(tr.dst, "g")); !os.IsNotExist(err) {
		t.Fatalf("g after a refused assembly: %v", err)
	}
}
