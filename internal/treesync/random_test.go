package treesync

import (
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// TestRandomized syncs random trees through random mutations (of the source,
// and of the destination behind Sync's back) and checks that each pass
// converges.
func TestRandomized(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("random modes make read-only directories that only root may write into")
	}
	src, dst := tempDirs(t)
	seed := uint64(7)
	if v, err := strconv.ParseUint(os.Getenv("TREESYNC_SEED"), 10, 64); err == nil {
		seed = v
	}
	r := &randTree{t: t, rng: rand.New(rand.NewPCG(seed, 11)), root: src}
	mkdir(t, src, 0o755)
	for range 4 {
		r.fill(src, 0)
	}
	// Small batches, so that copies, deferred links and directories cross
	// batch boundaries.
	batchEntries, batchDirs = 3, 4
	defer func() { batchEntries, batchDirs = defaultBatchEntries, defaultBatchDirs }()
	recPath := t.TempDir() + "/record"
	rec := openRecord(t, recPath)
	for round := range 20 {
		if round%7 == 6 { // a restart: the record is read back from its file
			rec.Close()
			rec = openRecord(t, recPath)
		}
		st := mustSync(t, src, dst, Options{Record: rec, Workers: 1 + round%5})
		if testing.Verbose() {
			t.Logf("round %d: %d entries, %+v", round, len(r.paths(false)), st)
		}
		assertIdentical(t, src, dst)
		if t.Failed() {
			t.Fatalf("round %d: stats %+v", round, st)
		}
		for range 1 + r.rng.IntN(10) {
			r.mutate()
		}
		if r.rng.IntN(4) == 0 { // the destination drifts too
			r.root = dst
			r.mutate()
			r.root = src
			writeFile(t, dst+"/"+tmpPrefix+strconv.Itoa(round), "crash leftover", 0o600, old)
		}
	}
	st := mustSync(t, src, dst, Options{Record: rec})
	assertIdentical(t, src, dst)
	if st = mustSync(t, src, dst, Options{Record: rec}); st.FilesCopied+st.Deleted+st.MetadataUpdated+st.LinksCreated+st.SymlinksCreated != 0 {
		t.Errorf("no-op pass did something: %+v", st)
	}
}

type randTree struct {
	t    *testing.T
	rng  *rand.Rand
	root string
}

func (r *randTree) name() string { return "n" + strconv.Itoa(r.rng.IntN(12)) }

func (r *randTree) mtime() time.Time {
	return old.Add(time.Duration(r.rng.Int64N(int64(1000 * 24 * time.Hour))))
}

func (r *randTree) pick(modes ...uint32) uint32 { return modes[r.rng.IntN(len(modes))] }

// paths lists the tree's entries below the root, optionally only regular files.
func (r *randTree) paths(filesOnly bool) []string {
	var ps []string
	filepath.Walk(r.root, func(p string, fi os.FileInfo, err error) error {
		if err == nil && p != r.root && (!filesOnly || fi.Mode().IsRegular()) {
			ps = append(ps, p)
		}
		return nil
	})
	slices.Sort(ps)
	return ps
}

func (r *randTree) dirs() []string {
	ds := []string{r.root}
	for _, p := range r.paths(false) {
		if fi, err := os.Lstat(p); err == nil && fi.IsDir() {
			ds = append(ds, p)
		}
	}
	return ds
}

func (r *randTree) content() string {
	return strings.Repeat(string(rune('a'+r.rng.IntN(26))), r.rng.IntN(3)*r.rng.IntN(5000))
}

// create makes one random entry at p (which does not exist).
func (r *randTree) create(p string, depth int) {
	t := r.t
	switch k := r.rng.IntN(10); {
	case k < 5:
		writeFile(t, p, r.content(), r.pick(0o644, 0o600, 0o755, 0o444, 0o4755, 0o2755, 0), r.mtime())
	case k < 7 && depth < 3:
		mkdir(t, p, r.pick(0o755, 0o700, 0o1777, 0o555, 0o2775))
		r.fill(p, depth+1)
		setMtime(t, p, r.mtime())
	case k < 8:
		symlink(t, r.pick2("../x", "/etc/passwd", "nowhere", r.name(), "."), p)
		setMtime(t, p, r.mtime())
	case k < 9:
		if fs := r.paths(true); len(fs) > 0 {
			hardlink(t, fs[r.rng.IntN(len(fs))], p)
		}
	default:
		if r.rng.IntN(3) == 0 {
			must(t, unix.Mkfifo(p, 0o644))
		}
	}
	if os.Geteuid() == 0 && r.rng.IntN(4) == 0 {
		os.Lchown(p, r.rng.IntN(3)*1000, r.rng.IntN(3)*1000)
	}
}

func (r *randTree) pick2(s ...string) string { return s[r.rng.IntN(len(s))] }

func (r *randTree) fill(dir string, depth int) {
	for range r.rng.IntN(8) {
		if p := dir + "/" + r.name(); !exists(p) {
			r.create(p, depth)
		}
	}
}

func exists(p string) bool { _, err := os.Lstat(p); return err == nil }

func (r *randTree) mutate() {
	t := r.t
	ps := r.paths(false)
	if len(ps) == 0 {
		r.fill(r.root, 0)
		return
	}
	p := ps[r.rng.IntN(len(ps))]
	fi, err := os.Lstat(p)
	if err != nil {
		t.Fatal(err)
	}
	switch r.rng.IntN(13) {
	case 0: // rewrite in place (keeps hard links), with a new mtime
		if fi.Mode().IsRegular() {
			must(t, os.WriteFile(p, []byte(r.content()), 0))
			setMtime(t, p, r.mtime())
		}
	case 1:
		if fi.Mode()&os.ModeSymlink == 0 {
			must(t, unix.Chmod(p, r.pick(0o644, 0o600, 0o755, 0o1777, 0o4711, 0o2750)))
		}
	case 2:
		if os.Geteuid() == 0 {
			must(t, os.Lchown(p, r.rng.IntN(5000), r.rng.IntN(5000)))
		}
	case 3:
		setMtime(t, p, r.mtime())
	case 4:
		must(t, os.RemoveAll(p))
	case 5:
		ds := r.dirs()
		to := ds[r.rng.IntN(len(ds))] + "/" + r.name()
		if !exists(to) && !strings.HasPrefix(to, p+"/") {
			must(t, os.Rename(p, to))
		}
	case 6: // type change
		must(t, os.RemoveAll(p))
		r.create(p, strings.Count(strings.TrimPrefix(p, r.root), "/"))
	case 7, 9, 10:
		ds := r.dirs()
		r.fill(ds[r.rng.IntN(len(ds))], 1)
	case 11, 12: // same-size rewrite, mtime put back (cp -p, rsync -t, tar -x)
		if fi.Mode().IsRegular() {
			b, err := os.ReadFile(p)
			must(t, err)
			for i := range b {
				b[i] ^= byte(1 + r.rng.IntN(255))
			}
			must(t, os.WriteFile(p, b, 0))
			setMtime(t, p, fi.ModTime())
		}
	case 8: // break a hard link keeping content and mtime (like cp -p)
		if fi.Mode().IsRegular() {
			b, err := os.ReadFile(p)
			must(t, err)
			must(t, os.Remove(p))
			must(t, os.WriteFile(p, b, fi.Mode().Perm()))
			setMtime(t, p, fi.ModTime())
		}
	}
}
