package remotesync

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/efsd/efsd/internal/chunks"
	"github.com/efsd/efsd/internal/treesync"
)

func needRoot(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("owners and read-only directories need root, as the daemon runs")
	}
}

// Random trees are made identical over HTTP/2; a pass with nothing to do
// sends no chunk; rounds of random changes (edits, renames, deletions,
// type changes, hard links made and broken, modes, owners, mtimes) are
// each carried over by one pass, the sender restarting from its state
// file now and then.
func TestRandomTrees(t *testing.T) {
	t.Parallel()
	needRoot(t)
	p := newPair(t)
	tr := newH2C(t, p.r)
	r := &randTree{t: t, rng: rand.New(rand.NewPCG(5, 11)), root: p.src}
	for range 4 {
		r.fill(p.src, 0)
	}
	st := p.mustPass(tr, PassOptions{Start: old})
	t.Logf("initial: %+v", st)
	if !st.Full || st.ChunksSent == 0 {
		t.Fatalf("initial pass: %+v", st)
	}
	st = p.mustPass(tr, PassOptions{})
	if st.Full || st.BytesSent != 0 || st.FilesCopied != 0 || st.Deleted != 0 {
		t.Fatalf("no-op pass: %+v", st)
	}
	for round := range 12 {
		for range 1 + r.rng.IntN(8) {
			r.mutate()
		}
		if round%4 == 3 { // a restart of the source
			p.openSender()
		}
		st := p.mustPass(tr, PassOptions{})
		if st.Full {
			t.Fatalf("round %d: full listing after a restart that kept state: %+v", round, st)
		}
		if testing.Verbose() {
			t.Logf("round %d: %+v", round, st)
		}
	}
	if len(p.commits) != 14 || !p.commits[0].Equal(old) {
		t.Fatalf("OnCommit calls: %d, first %v", len(p.commits), p.commits[0])
	}
}

// A 64 MiB file with 1 MiB overwritten in the middle costs a chunk or
// two; renaming it or copying it costs no chunk data.
func TestBigFileEdit(t *testing.T) {
	t.Parallel()
	p := newPair(t)
	big := randBytes(1, 64<<20)
	writeFile(t, p.src+"/big", big, 0o644, old)
	st := p.mustPass(nil, PassOptions{})
	t.Logf("initial: %d chunks, %d bytes sent, %d on the wire", st.ChunksSent, st.BytesSent, st.WireBytes)
	if st.BytesSent < 64<<20 || st.FilesCopied != 1 {
		t.Fatalf("initial: %+v", st)
	}

	copy(big[32<<20:], randBytes(2, 1<<20))
	f, err := os.OpenFile(p.src+"/big", os.O_WRONLY, 0)
	must(t, err)
	_, err = f.WriteAt(big[32<<20:33<<20], 32<<20)
	must(t, err)
	must(t, f.Close())
	st = p.mustPass(nil, PassOptions{})
	t.Logf("1 MiB overwritten: %d chunks, %d bytes sent, %d local, %d on the wire", st.ChunksSent, st.BytesSent, st.ChunksLocal, st.WireBytes)
	// The changed MiB and at most a largest chunk (1 MiB for this size) on
	// either side.
	if st.BytesSent > 3<<20 || st.FilesCopied != 1 || st.ChunksLocal < 50 {
		t.Fatalf("edit: %+v", st)
	}

	must(t, os.Mkdir(p.src+"/d", 0o755))
	must(t, os.Rename(p.src+"/big", p.src+"/d/renamed"))
	writeFile(t, p.src+"/copy", big, 0o600, old)
	st = p.mustPass(nil, PassOptions{})
	t.Logf("renamed and copied: %d chunks, %d bytes sent, %d on the wire", st.ChunksSent, st.BytesSent, st.WireBytes)
	if st.BytesSent != 0 || st.FilesCopied != 2 || st.Deleted != 1 {
		t.Fatalf("rename: %+v", st)
	}
}

// A connection cut at random points during the initial copy of a 64 MiB
// file and small files: the passes fail, never leaving a partial file
// under a real name, and the pass that completes sends only what had not
// landed.
func TestInterrupted(t *testing.T) {
	t.Parallel()
	p := newPair(t)
	big := randBytes(3, 64<<20)
	writeFile(t, p.src+"/big", big, 0o644, old)
	small := map[string][]byte{}
	for i := range 20 {
		name := "s/" + string(rune('a'+i))
		small[name] = randBytes(uint64(100+i), 1000+i*5000)
		writeFile(t, p.src+"/"+name, small[name], 0o644, old)
	}
	content := map[string][]byte{"big": big}
	for k, v := range small {
		content[k] = v
	}
	tr := &cutTransport{r: p.r}
	rng := rand.New(rand.NewPCG(9, 9))
	var sent, chunksSent int64
	rounds := 0
	for ; rounds < 20; rounds++ {
		tr.mu.Lock()
		tr.budget = 1<<20 + rng.Int64N(20<<20)
		budget := tr.budget
		tr.mu.Unlock()
		st, err := p.pass(tr, PassOptions{})
		sent += st.BytesSent
		chunksSent += st.ChunksSent
		if err == nil {
			t.Logf("round %d (cut after %d bytes): complete, %d chunks, %d bytes sent", rounds, budget, st.ChunksSent, st.BytesSent)
			break
		}
		t.Logf("round %d (cut after %d bytes): %v; %d chunks, %d bytes sent", rounds, budget, err, st.ChunksSent, st.BytesSent)
		// Every real name holds the whole new content.
		filepath.Walk(p.dst, func(path string, fi os.FileInfo, err error) error {
			if err != nil || !fi.Mode().IsRegular() {
				return err
			}
			rel, _ := filepath.Rel(p.dst, path)
			if filepath.Base(rel)[0] == '.' {
				return nil // a temporary
			}
			b, _ := os.ReadFile(path)
			if want, ok := content[rel]; !ok || string(b) != string(want) {
				t.Fatalf("round %d: %s holds %d bytes that are not its content", rounds, rel, len(b))
			}
			return nil
		})
	}
	tr.mu.Lock()
	tr.budget = -1
	tr.mu.Unlock()
	st := p.mustPass(tr, PassOptions{})
	sent += st.BytesSent
	var total int64
	for _, v := range content {
		total += int64(len(v))
	}
	t.Logf("%d interrupted rounds; %d chunks, %d bytes sent in all for %d bytes of files", rounds, chunksSent+st.ChunksSent, sent, total)
	if rounds < 2 {
		t.Fatalf("only %d interrupted rounds", rounds)
	}
	// A cut wastes at most the frame in flight (and the reader's buffer).
	if limit := total + int64(rounds)*(chunks.MaxSize+64<<10); sent > limit {
		t.Fatalf("%d bytes sent, more than %d", sent, limit)
	}
	if st := p.mustPass(tr, PassOptions{}); st.BytesSent != 0 || st.Full {
		t.Fatalf("pass after: %+v", st)
	}
}

// The receiver loses its state: the next pass is a full listing that
// leaves identical files untouched (same inode, same ctime) and sends no
// chunk. Then the sender loses its own. A receiver restarted with its state
// continues with deltas.
func TestLostState(t *testing.T) {
	t.Parallel()
	p := newPair(t)
	writeFile(t, p.src+"/a", randBytes(4, 3<<20), 0o644, old)
	writeFile(t, p.src+"/d/b", []byte("bee"), 0o600, old)
	must(t, os.Symlink("a", p.src+"/d/l"))
	must(t, os.Link(p.src+"/a", p.src+"/d/hard"))
	p.mustPass(nil, PassOptions{})
	before := scan(t, p.dst)

	must(t, os.Remove(p.rcState))
	p.openReceiver()
	os.WriteFile(p.dst+"/stray", []byte("not at the source"), 0o644)
	st := p.mustPass(nil, PassOptions{})
	if !st.Full || st.BytesSent != 0 || st.FilesCopied != 0 || st.Deleted != 1 {
		t.Fatalf("after the receiver lost its state: %+v", st)
	}
	untouched(t, before, scan(t, p.dst))

	os.Remove(p.sendState)
	p.openSender()
	st = p.mustPass(nil, PassOptions{})
	if !st.Full || st.BytesSent != 0 || st.FilesCopied != 0 {
		t.Fatalf("after the sender lost its state: %+v", st)
	}
	untouched(t, before, scan(t, p.dst))

	p.openReceiver() // a restart keeping the state
	writeFile(t, p.src+"/d/b", []byte("bee2"), 0o600, old)
	st = p.mustPass(nil, PassOptions{})
	if st.Full || st.FilesCopied != 1 {
		t.Fatalf("after a restart: %+v", st)
	}
}

func untouched(t *testing.T, before, after map[string]node) {
	t.Helper()
	for path, b := range before {
		if path == "." {
			continue
		}
		if a := after[path]; a.ino != b.ino || a.ctime != b.ctime {
			t.Errorf("%s was touched: inode %d→%d, ctime %v→%v", path, b.ino, a.ino, time.Unix(0, b.ctime), time.Unix(0, a.ctime))
		}
	}
}

// A scrub finds a destination file changed behind the receiver's back with
// its size and mtime kept, reports it and repairs it; a plain pass does not
// look.
func TestVerifyRepairs(t *testing.T) {
	t.Parallel()
	p := newPair(t)
	writeFile(t, p.src+"/f", randBytes(5, 2<<20), 0o644, old)
	writeFile(t, p.src+"/g", []byte("fine"), 0o644, old)
	p.mustPass(nil, PassOptions{})
	bad := randBytes(6, 2<<20)
	writeFile(t, p.dst+"/f", bad, 0o644, old)

	if _, err := p.pass(nil, PassOptions{}); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(p.dst + "/f"); string(b) != string(bad) {
		t.Fatal("a plain pass rewrote a file it had no reason to look at")
	}
	var diffs []string
	st := p.mustPass(nil, PassOptions{Verify: true, OnDifference: func(rel string) { diffs = append(diffs, rel) }})
	t.Logf("verify: %+v", st)
	if len(diffs) != 1 || diffs[0] != "f" || st.Differences != 1 || st.FilesCompared != 2 || st.FilesCopied != 1 {
		t.Fatalf("verify: diffs %v, %+v", diffs, st)
	}
}

// Deltas after interrupted passes: what an interrupted pass changed at the
// receiver is sent again by the next one (a file it created that the
// source deleted meanwhile is removed), without a full listing while the
// sender remembers; a sender restarted after an interrupted pass gets a
// full listing.
func TestInterruptedDelta(t *testing.T) {
	t.Parallel()
	p := newPair(t)
	oldA := randBytes(20, 2<<20)
	writeFile(t, p.src+"/a", oldA, 0o644, old)
	writeFile(t, p.src+"/b", []byte("bee"), 0o644, old)
	p.mustPass(nil, PassOptions{})

	newA := randBytes(21, 2<<20)
	writeFile(t, p.src+"/a", newA, 0o644, old)
	writeFile(t, p.src+"/n1", []byte("bee"), 0o644, old) // a copy of b: assembled from local bytes in the batch
	must(t, os.Remove(p.src+"/b"))
	tr := &cutTransport{r: p.r, budget: 1 << 20}
	if _, err := p.pass(tr, PassOptions{}); err == nil {
		t.Fatal("pass over a cut connection succeeded")
	}
	if b, _ := os.ReadFile(p.dst + "/a"); string(b) != string(oldA) && string(b) != string(newA) {
		t.Fatal("a holds neither its old content nor its new")
	}
	if _, err := os.Stat(p.dst + "/n1"); err != nil {
		t.Fatalf("n1 did not land in the interrupted pass (the test needs it to): %v", err)
	}
	must(t, os.Remove(p.src+"/n1"))
	writeFile(t, p.src+"/n2", []byte("another"), 0o644, old)
	tr.budget = -1
	if st := p.mustPass(tr, PassOptions{}); st.Full {
		t.Fatalf("full listing after an interrupted pass of the same sender: %+v", st)
	}

	writeFile(t, p.src+"/n3", randBytes(22, 2<<20), 0o644, old)
	must(t, os.Remove(p.src+"/n2"))
	tr.budget = 1 << 20
	if _, err := p.pass(tr, PassOptions{}); err == nil {
		t.Fatal("pass over a cut connection succeeded")
	}
	p.openSender() // forgets what it sent
	tr.budget = -1
	if st := p.mustPass(tr, PassOptions{}); !st.Full {
		t.Fatalf("delta after a restarted sender's interrupted pass: %+v", st)
	}
}

// Hard links are kept as links, broken when the source breaks them (the
// same content and mtime in a separate file), and survive the loss of the
// group's first name; none of it sends chunk data.
func TestHardLinks(t *testing.T) {
	t.Parallel()
	p := newPair(t)
	content := randBytes(30, 600<<10)
	writeFile(t, p.src+"/a", content, 0o640, old)
	must(t, os.Link(p.src+"/a", p.src+"/b"))
	must(t, os.Mkdir(p.src+"/d", 0o755))
	must(t, os.Link(p.src+"/a", p.src+"/d/c"))
	st := p.mustPass(nil, PassOptions{})
	if st.LinksCreated != 2 || st.FilesCopied != 1 {
		t.Fatalf("initial: %+v", st)
	}

	must(t, os.Remove(p.src+"/b")) // cp -p b: a separate file, same content and mtime
	writeFile(t, p.src+"/b", content, 0o640, old)
	if st := p.mustPass(nil, PassOptions{}); st.BytesSent != 0 {
		t.Fatalf("breaking a link sent data: %+v", st)
	}

	must(t, os.Remove(p.src+"/a")) // the group's first name goes: d/c stays, linked with e
	must(t, os.Link(p.src+"/d/c", p.src+"/e"))
	must(t, os.Chmod(p.src+"/e", 0o600))
	if st := p.mustPass(nil, PassOptions{}); st.BytesSent != 0 {
		t.Fatalf("relinking sent data: %+v", st)
	}
}

// Names are bytes: ones that are not UTF-8, or hold a newline, arrive as
// they are (JSON would replace invalid bytes), are renamed and deleted.
func TestOddNames(t *testing.T) {
	t.Parallel()
	p := newPair(t)
	writeFile(t, p.src+"/\xff\xfe", []byte("latin-1"), 0o644, old)
	writeFile(t, p.src+"/d\x80/new\nline", []byte("nl"), 0o644, old)
	writeFile(t, p.src+"/日本", []byte("utf-8"), 0o644, old)
	must(t, os.Symlink("\xff/target", p.src+"/l\xfa"))
	must(t, os.Link(p.src+"/\xff\xfe", p.src+"/d\x80/\xfb"))
	p.mustPass(nil, PassOptions{})
	must(t, os.Rename(p.src+"/d\x80/new\nline", p.src+"/\xf0\x28"))
	must(t, os.Remove(p.src+"/l\xfa"))
	if st := p.mustPass(nil, PassOptions{}); st.Full || st.Deleted != 2 || st.BytesSent != 0 {
		t.Fatalf("renames: %+v", st)
	}
	var diffs []string
	writeFile(t, p.dst+"/\xf0\x28", []byte("NL"), 0o644, old)
	p.mustPass(nil, PassOptions{Verify: true, OnDifference: func(rel string) { diffs = append(diffs, rel) }})
	if len(diffs) != 1 || diffs[0] != "\xf0\x28" {
		t.Fatalf("differences: %q", diffs)
	}
}

// A receiver closed and opened again reads its index back instead of
// reading the destination: entries whose file is unchanged are taken as
// they are, a file changed while it was down is chunked again, a file
// added meanwhile is not indexed; a rename still costs no chunk data.
func TestReceiverIndexSnapshot(t *testing.T) {
	t.Parallel()
	p := newPair(t)
	writeFile(t, p.src+"/a", randBytes(40, 3<<20), 0o644, old)
	writeFile(t, p.src+"/b", []byte("bee"), 0o644, old)
	p.mustPass(nil, PassOptions{})
	want, _ := p.r.ix.Lookup("a")

	must(t, p.r.Close())
	if _, err := os.Stat(p.rcState + ".index"); err != nil {
		t.Fatalf("no index snapshot: %v", err)
	}
	must(t, os.WriteFile(p.dst+"/b", []byte("BEE"), 0o644)) // behind its back
	must(t, os.WriteFile(p.dst+"/stray", []byte("new"), 0o644))
	p.openReceiver()
	<-p.r.scanned
	if _, err := os.Stat(p.rcState + ".index"); err == nil {
		t.Fatal("index snapshot kept after it was read")
	}
	if got, ok := p.r.ix.Lookup("a"); !ok || !slices.Equal(got, want) {
		t.Fatal("a's entry not loaded")
	}
	if got, ok := p.r.ix.Lookup("b"); !ok || !slices.Equal(got, mustList(t, []byte("BEE"))) {
		t.Fatalf("b, changed while down, indexed as %v", got)
	}
	if _, ok := p.r.ix.Lookup("stray"); ok {
		t.Fatal("the destination was scanned")
	}
	must(t, os.Rename(p.src+"/a", p.src+"/c"))
	if st := p.mustPass(nil, PassOptions{Verify: true}); st.BytesSent > 100 {
		t.Fatalf("rename after a restart: %+v", st)
	}
}

func mustList(t *testing.T, b []byte) []chunks.Chunk {
	l, err := chunks.List(bytes.NewReader(b), int64(len(b)))
	must(t, err)
	return l
}

// Files of one pass sharing content send it once.
func TestDuplicatesSentOnce(t *testing.T) {
	t.Parallel()
	p := newPair(t)
	content := randBytes(50, 3<<20)
	for _, name := range []string{"a", "b", "c/d", "e"} {
		writeFile(t, p.src+"/"+name, content, 0o644, old)
	}
	st := p.mustPass(nil, PassOptions{})
	t.Logf("4 copies of %d bytes: %d chunks, %d bytes sent", len(content), st.ChunksSent, st.BytesSent)
	if st.BytesSent > int64(len(content))+4096 || st.FilesCopied != 4 {
		t.Fatalf("%+v", st)
	}
}

// Small files' bytes kept from chunking to sending: more of them than the
// pass keeps at a time (the rest are read again), an interrupted pass and
// a changed file after it; the bytes are dropped with the pass, never
// kept in the acknowledged state.
func TestSmallFilesKeptForSending(t *testing.T) {
	t.Parallel()
	p := newPair(t)
	n := keepBudget/keepMax + 40
	for i := range n {
		writeFile(t, fmt.Sprintf("%s/d%d/f%03d", p.src, i%7, i), randBytes(uint64(i), keepMax), 0o644, old)
	}
	writeFile(t, p.src+"/small", randBytes(1, 100), 0o600, old)
	writeFile(t, p.src+"/big", randBytes(2, keepMax+1), 0o644, old)
	// Cut mid-way: the chunks sent again come from the files.
	if _, err := p.pass(&cutTransport{r: p.r, budget: keepBudget / 2}, PassOptions{}); err == nil {
		t.Fatal("pass over a cut connection succeeded")
	}
	st := p.mustPass(nil, PassOptions{})
	if st.FilesCopied == 0 {
		t.Fatalf("nothing copied after the cut: %+v", st)
	}
	writeFile(t, p.src+"/d3/f003", randBytes(1_000_003, keepMax), 0o644, old.Add(time.Second))
	p.mustPass(nil, PassOptions{})
	for path, e := range p.s.st.Entries {
		if e.data != nil {
			t.Errorf("%s: %d bytes kept in the acknowledged state", path, len(e.data))
		}
	}
}

// Small files go inline with their batch when the receiver cannot hold
// them — a first copy to an empty destination, a file rewritten in place —
// at a few bytes of overhead each; never when it may: a full listing to a
// destination that holds the files (failback, lost state) sends none of
// their bytes, and a renamed file's bytes are not sent again.
func TestInlineSmallFiles(t *testing.T) {
	t.Parallel()
	p := newPair(t)
	const n, size = 3000, 4096
	for i := range n {
		writeFile(t, fmt.Sprintf("%s/d%02d/f%04d", p.src, i/100, i), randBytes(uint64(7000+i), size), 0o644, old)
	}
	c := &opCount{Transport: pipeTransport{p.r}, n: map[string]int{}}
	st := p.mustPass(c, PassOptions{})
	// The session's first batch (firstBatch entries) asks for its files'
	// chunks; the others came inline.
	t.Logf("first copy: %d bytes on the wire for %d bytes of files, requests %v", st.WireBytes, n*size, c.n)
	if over := st.WireBytes - n*size; over > n*150 || c.n[OpChunks] > firstBatch/groupFiles+2 || c.n[OpBatch] < 3 {
		t.Fatalf("first copy: %d bytes over the files' (%.0f a file), requests %v", over, float64(over)/n, c.n)
	}

	// Lost state: a full listing to a destination that holds everything.
	must(t, os.Remove(p.sendState))
	p.openSender()
	if st := p.mustPass(nil, PassOptions{}); !st.Full || st.BytesSent != 0 || st.WireBytes > n*200 {
		t.Fatalf("full listing to a destination holding the files: %+v", st)
	}

	// Rewritten in place, and new: inline; renamed and copied: found at
	// the destination.
	for i := range 20 {
		writeFile(t, fmt.Sprintf("%s/d%02d/f%04d", p.src, i/100, i), randBytes(uint64(100_000+i), size), 0o644, old.Add(time.Second))
	}
	for i := range 10 {
		writeFile(t, fmt.Sprintf("%s/new/n%d", p.src, i), randBytes(uint64(200_000+i), size), 0o644, old)
	}
	for i := 100; i < 110; i++ {
		must(t, os.Rename(fmt.Sprintf("%s/d01/f%04d", p.src, i), fmt.Sprintf("%s/d01/moved%04d", p.src, i)))
		writeFile(t, fmt.Sprintf("%s/d02/copy%04d", p.src, i), randBytes(uint64(7000+i+100), size), 0o644, old)
	}
	c.n = map[string]int{}
	st = p.mustPass(c, PassOptions{})
	if st.Full || st.BytesSent > 30*(size+64) || st.ChunksLocal < 20 || c.n[OpChunks] != 0 || st.WireBytes > 30*size+20_000 {
		t.Fatalf("20 rewritten, 10 new, 10 renamed, 10 copied: %+v, requests %v", st, c.n)
	}

	// A pass cut short, then one that completes: what landed in the cut
	// one (under its name, or as a temporary) is not sent again, though it
	// was never acknowledged.
	const late = 1500
	for i := range late {
		writeFile(t, fmt.Sprintf("%s/late/l%04d", p.src, i), randBytes(uint64(300_000+i), size), 0o644, old)
	}
	if st, err := p.pass(&cutTransport{r: p.r, budget: 5 << 20}, PassOptions{}); err == nil {
		t.Fatalf("pass over a cut connection succeeded: %+v", st)
	}
	// Landed: under its name, or whole in its temporary.
	ents, _ := os.ReadDir(p.dst + "/late")
	landed := 0
	for _, e := range ents {
		if info, err := e.Info(); err == nil && info.Size() == size {
			landed++
		}
	}
	st = p.mustPass(nil, PassOptions{})
	t.Logf("%d of %d files landed before the cut; after it: %+v", landed, late, st)
	if landed == 0 || st.ChunksSent > int64(late-landed) {
		t.Fatalf("%d files landed before the cut, %d chunks sent after it", landed, st.ChunksSent)
	}
}

// A new small file goes inline; where the destination already has a file
// of that name and size that the receiver never indexed (made behind its
// back), the receiver reads it to compare before writing the new bytes.
func TestInlineOverUnindexedFile(t *testing.T) {
	t.Parallel()
	p := newPair(t)
	writeFile(t, p.src+"/f", randBytes(400_001, 4096), 0o644, old)
	p.mustPass(nil, PassOptions{})
	must(t, os.WriteFile(p.dst+"/g", randBytes(400_002, 4096), 0o644))
	writeFile(t, p.src+"/g", randBytes(400_003, 4096), 0o644, old)
	if st := p.mustPass(nil, PassOptions{}); st.Full || st.FilesCompared != 1 || st.FilesCopied != 1 || st.ChunksSent != 1 {
		t.Fatalf("new file over an unindexed one: %+v", st)
	}
}

// A full listing removes whatever the source does not have, of every
// type and at every depth, and temporaries left beside listed files;
// listed entries are not touched.
func TestFullListingRemovesStrays(t *testing.T) {
	t.Parallel()
	p := newPair(t)
	writeFile(t, p.src+"/top", []byte("top"), 0o644, old)
	writeFile(t, p.src+"/d/e/f", []byte("deep"), 0o644, old)
	must(t, os.Symlink("f", p.src+"/d/e/l"))
	p.mustPass(nil, PassOptions{})
	before := scan(t, p.dst)

	must(t, os.Remove(p.rcState)) // the next pass lists everything
	p.openReceiver()
	strays := []string{"/stray", "/d/stray-dir/x", "/d/e/stray", "/d/e/" + treesync.TmpPrefix + "f.part"}
	for _, s := range strays {
		must(t, os.MkdirAll(filepath.Dir(p.dst+s), 0o755))
		must(t, os.WriteFile(p.dst+s, []byte("not at the source"), 0o644))
	}
	must(t, os.Symlink("nowhere", p.dst+"/d/stray-link"))
	st := p.mustPass(nil, PassOptions{})
	if !st.Full || st.Deleted != int64(len(strays)+1) {
		t.Fatalf("not a full listing, or not every stray deleted: %+v", st)
	}
	// The directories the strays were removed from changed; their files
	// did not.
	delete(before, "d")
	delete(before, "d/e")
	untouched(t, before, scan(t, p.dst))
}

// parseDirents refuses records that do not fit, rather than looping or
// reading past the buffer.
func TestParseDirentsHostile(t *testing.T) {
	rec := func(name string, reclen int) []byte {
		b := make([]byte, reclen)
		binary.NativeEndian.PutUint16(b[16:], uint16(reclen))
		b[18] = unix.DT_REG
		copy(b[19:], name)
		return b
	}
	ds, err := parseDirents(append(rec("a", 24), rec("bc", 24)...), nil)
	if err != nil || len(ds) != 2 || ds[0].name != "a" || ds[1].name != "bc" || ds[1].typ != unix.DT_REG {
		t.Fatalf("two records: %+v, %v", ds, err)
	}
	for _, b := range [][]byte{rec("a", 24)[:10], rec("a", 24)[:20], func() []byte { b := rec("a", 24); b[16], b[17] = 0, 0; return b }(),
		func() []byte { b := rec("a", 24); binary.NativeEndian.PutUint16(b[16:], 200); return b }()} {
		if _, err := parseDirents(b, nil); err == nil {
			t.Errorf("%x: accepted", b)
		}
	}
}
