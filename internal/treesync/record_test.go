package treesync

import (
	"os"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"
)

// cpP rewrites path with content and puts its old mtime back, as cp -p,
// rsync -t, tar -x and touch -r do.
func cpP(t testing.TB, path, content string) {
	t.Helper()
	mt := mtimeOf(t, path)
	must(t, os.WriteFile(path, []byte(content), 0))
	setMtime(t, path, mt)
}

func inoOf(t testing.TB, path string) uint64 {
	t.Helper()
	fi, err := os.Lstat(path)
	if err != nil {
		t.Fatal(err)
	}
	return fi.Sys().(*syscall.Stat_t).Ino
}

func openRecord(t testing.TB, path string) *Record {
	t.Helper()
	r, err := OpenRecord(path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close() })
	return r
}

// noRacyWindow lets the record vouch for files written a moment ago, so
// that tests see the one-stat path without waiting out the window.
func noRacyWindow(t *testing.T) {
	racySlack, racySlackFine = 0, 0
	t.Cleanup(func() { racySlack, racySlackFine = defaultRacySlack, defaultRacySlackFine })
}

// TestSameSizeRestoredMtime: a rewrite that keeps the size and puts the
// mtime back is replicated, also several within one second, with and
// without a record, and across a reopened record.
func TestSameSizeRestoredMtime(t *testing.T) {
	for _, withRecord := range []bool{true, false} {
		t.Run(map[bool]string{true: "record", false: "no-record"}[withRecord], func(t *testing.T) {
			src, dst := tempDirs(t)
			recPath := t.TempDir() + "/rec"
			o := Options{}
			if withRecord {
				o.Record = openRecord(t, recPath)
			}
			writeFile(t, src+"/f", "aaaa", 0o644, old)
			writeFile(t, src+"/g", "gggg", 0o644, old)
			mustSync(t, src, dst, o)
			for i, c := range []string{"bbbb", "cccc", "dddd", "eeee", "ffff"} { // all within a second
				cpP(t, src+"/f", c)
				st := mustSync(t, src, dst, o)
				assertIdentical(t, src, dst)
				if st.FilesCopied != 1 || st.Differences != 1 {
					t.Errorf("rewrite %d: stats %+v", i, st)
				}
			}
			// Across a restart: the record is read back from its file.
			if withRecord {
				o.Record.Close()
				o.Record = openRecord(t, recPath)
			}
			cpP(t, src+"/f", "zzzz")
			if st := mustSync(t, src, dst, o); st.FilesCopied != 1 || st.Differences != 1 {
				t.Errorf("after reopen: stats %+v", st)
			}
			assertIdentical(t, src, dst)
		})
	}
}

// TestRecordVouches: with a record, an untouched file costs no reads, and
// the record survives a reopen; anything touched on either side is
// compared; a record of other trees is not trusted.
func TestRecordVouches(t *testing.T) {
	noRacyWindow(t)
	src, dst := tempDirs(t)
	buildTree(t, src)
	recPath := t.TempDir() + "/rec"
	rec := openRecord(t, recPath)
	mustSync(t, src, dst, Options{Record: rec})
	st := mustSync(t, src, dst, Options{Record: rec})
	if st.FilesCompared != 0 || st.BytesCompared != 0 || st.Unchanged != 19 {
		t.Errorf("no-op pass with a record: %+v", st)
	}
	rec.Close()
	rec = openRecord(t, recPath)
	if st := mustSync(t, src, dst, Options{Record: rec}); st.FilesCompared != 0 || st.Unchanged != 19 {
		t.Errorf("no-op pass after reopening the record: %+v", st)
	}

	// The destination is changed behind Sync's back, size and mtime kept.
	cpP(t, dst+"/big", strings.Repeat("x", 3_200_000))
	// A source chmod moves its ctime: compared, equal, metadata fixed.
	must(t, os.Chmod(src+"/sub/deep/er/c.txt", 0o600))
	ino := inoOf(t, dst+"/sub/deep/er/c.txt")
	st = mustSync(t, src, dst, Options{Record: rec})
	assertIdentical(t, src, dst)
	if st.FilesCompared != 2 || st.FilesCopied != 1 || st.Differences != 1 || st.MetadataUpdated != 1 {
		t.Errorf("stats %+v", st)
	}
	if inoOf(t, dst+"/sub/deep/er/c.txt") != ino {
		t.Error("an equal file was rewritten")
	}
	if st := mustSync(t, src, dst, Options{Record: rec}); st.FilesCompared != 0 {
		t.Errorf("what the last pass compared or wrote is not vouched for: %+v", st)
	}

	// The same record used for another destination starts afresh.
	dst2 := dst + "2"
	mustSync(t, src, dst2, Options{})
	cpP(t, dst2+"/a.txt", "HELLO")
	if st := mustSync(t, src, dst2, Options{Record: rec}); st.Differences != 1 || st.FilesCompared != 7 {
		t.Errorf("record of other trees trusted: %+v", st)
	}
	assertIdentical(t, src, dst2)
}

// TestRacyCtime: a file copied within the racy window of its ctime is not
// vouched for: the next pass compares it, so a second write landing in the
// same clock tick is not missed.
func TestRacyCtime(t *testing.T) {
	racySlackFine = time.Hour // the copy below is surely within it, however slow the machine
	t.Cleanup(func() { racySlackFine = defaultRacySlackFine })
	src, dst := tempDirs(t)
	rec := openRecord(t, "")
	writeFile(t, src+"/f", "aaaa", 0o644, old)
	mustSync(t, src, dst, Options{Record: rec})
	st := mustSync(t, src, dst, Options{Record: rec})
	if st.FilesCompared != 1 {
		t.Errorf("a file written a moment ago was vouched for: %+v", st)
	}
}

// TestExistingDestination: the first pass into a destination that holds
// data compares contents where size and mtime match and rewrites only
// what differs; equal files keep their inodes.
func TestExistingDestination(t *testing.T) {
	src, dst := tempDirs(t)
	writeFile(t, src+"/same", "1234", 0o644, old)
	writeFile(t, src+"/other", "abcd", 0o644, old)
	writeFile(t, src+"/sub/x", strings.Repeat("s", 1<<20), 0o644, old)
	writeFile(t, dst+"/same", "1234", 0o644, old)
	writeFile(t, dst+"/other", "ABCD", 0o644, old)
	writeFile(t, dst+"/sub/x", strings.Repeat("s", 1<<20-1)+"d", 0o644, old)
	sameIno := inoOf(t, dst+"/same")
	var diffs []string
	st := mustSync(t, src, dst, Options{Record: openRecord(t, t.TempDir()+"/rec"), OnDifference: func(p string) { diffs = append(diffs, p) }})
	assertIdentical(t, src, dst)
	slices.Sort(diffs)
	if st.FilesCopied != 2 || st.Differences != 2 || st.FilesCompared != 3 || len(diffs) != 2 || diffs[0] != "other" || diffs[1] != "sub/x" {
		t.Errorf("stats %+v, differences %v", st, diffs)
	}
	if inoOf(t, dst+"/same") != sameIno {
		t.Error("an identical file was rewritten")
	}
}

// TestVerify: a difference the record cannot see (here the record is made
// to vouch for a corrupted file, as bit rot or a write below the file
// system would leave it) is found and repaired by a verifying pass.
func TestVerify(t *testing.T) {
	noRacyWindow(t)
	src, dst := tempDirs(t)
	buildTree(t, src)
	rec := openRecord(t, t.TempDir()+"/rec")
	mustSync(t, src, dst, Options{Record: rec})
	cpP(t, dst+"/sub/b.txt", "BEE")
	// Vouch for the corrupted file, keeping the source side of its entry.
	m, err := lstatAt(-100, dst+"/sub/b.txt") // AT_FDCWD
	must(t, err)
	rec.ents[rec.idx[m.ino]].dstCtime = m.ctime
	if st := mustSync(t, src, dst, Options{Record: rec}); st.FilesCopied != 0 {
		t.Fatalf("test setup: the record did not vouch for the file: %+v", st)
	}
	var diffs []string
	var progress int
	st := mustSync(t, src, dst, Options{Record: rec, Verify: true,
		OnDifference: func(p string) { diffs = append(diffs, p) }, Progress: func(Stats) { progress++ }})
	assertIdentical(t, src, dst)
	if st.FilesCompared != 7 || st.Differences != 1 || st.FilesCopied != 1 || len(diffs) != 1 || diffs[0] != "sub/b.txt" {
		t.Errorf("stats %+v, differences %v", st, diffs)
	}
	if want := int64(2 * (5 + 0 + 10 + 1 + 3_200_000 + 3 + 3)); st.BytesCompared != want {
		t.Errorf("BytesCompared = %d, want %d", st.BytesCompared, want)
	}
	if progress < 7 {
		t.Errorf("Progress called %d times", progress)
	}
	if st := mustSync(t, src, dst, Options{Record: rec}); st.FilesCompared != 0 {
		t.Errorf("after the scrub: %+v", st)
	}
}

// TestRecordTornTail: a record whose last entry was torn by a crash is
// read up to it.
func TestRecordTornTail(t *testing.T) {
	noRacyWindow(t)
	src, dst := tempDirs(t)
	buildTree(t, src)
	recPath := t.TempDir() + "/rec"
	rec := openRecord(t, recPath)
	mustSync(t, src, dst, Options{Record: rec})
	rec.Close()
	fi, err := os.Stat(recPath)
	must(t, err)
	must(t, os.Truncate(recPath, fi.Size()-3))
	rec = openRecord(t, recPath)
	st := mustSync(t, src, dst, Options{Record: rec})
	if st.FilesCompared != 1 || st.FilesCopied != 0 {
		t.Errorf("stats %+v", st)
	}
	// The entry appended by that pass follows the last good one, so the
	// record read back vouches for everything.
	rec.Close()
	rec = openRecord(t, recPath)
	if st := mustSync(t, src, dst, Options{Record: rec}); st.FilesCompared != 0 {
		t.Errorf("after reopening: %+v", st)
	}
}

func TestRacyWindow(t *testing.T) {
	if w := racyWindow(1700000000 * int64(time.Second)); w != defaultRacySlack {
		t.Errorf("whole-second ctime: window %v", w)
	}
	if w := racyWindow(1700000000*int64(time.Second) + 123456789); w != defaultRacySlackFine {
		t.Errorf("fine ctime: window %v", w)
	}
}

// TestRecordCompaction: a log grown past twice the live entries is
// rewritten with only those, and still vouches for every file after a
// reopen; a record in memory drops its stale entries the same way.
func TestRecordCompaction(t *testing.T) {
	noRacyWindow(t)
	recCompactMin = 0
	t.Cleanup(func() { recCompactMin = 4096 })
	for _, path := range []string{t.TempDir() + "/rec", ""} {
		src, dst := tempDirs(t)
		buildTree(t, src)
		rec := openRecord(t, path)
		mustSync(t, src, dst, Options{Record: rec})
		for i := range 20 { // each pass appends an entry for the rewritten file
			writeFile(t, src+"/sub/b.txt", strings.Repeat("b", i+4), 0o444, old)
			mustSync(t, src, dst, Options{Record: rec})
		}
		if st := mustSync(t, src, dst, Options{Record: rec}); st.FilesCompared != 0 {
			t.Fatalf("%q: %+v", path, st)
		}
		// 7 live entries (buildTree's files); at most as many stale ones
		// and the last pass's before a compaction.
		if len(rec.ents) > 15 {
			t.Errorf("%q: %d entries in memory", path, len(rec.ents))
		}
		if path == "" {
			continue
		}
		fi, err := os.Stat(path)
		must(t, err)
		if fi.Size() > recHeaderLen+15*recEntryLen {
			t.Errorf("record of %d bytes was not compacted", fi.Size())
		}
		rec.Close()
		rec = openRecord(t, path)
		if st := mustSync(t, src, dst, Options{Record: rec}); st.FilesCompared != 0 {
			t.Errorf("after compaction and reopen: %+v", st)
		}
	}
}
