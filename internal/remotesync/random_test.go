package remotesync

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

// randTree makes and mutates random trees (after treesync's test).
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

func (r *randTree) pickS(s ...string) string { return s[r.rng.IntN(len(s))] }

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

// content is small text, or now and then a file of a few chunks.
func (r *randTree) content() []byte {
	if r.rng.IntN(15) == 0 {
		return randBytes(r.rng.Uint64(), 300<<10+r.rng.IntN(1<<20))
	}
	return []byte(strings.Repeat(string(rune('a'+r.rng.IntN(26))), r.rng.IntN(3)*r.rng.IntN(5000)))
}

func exists(p string) bool { _, err := os.Lstat(p); return err == nil }

func (r *randTree) create(p string, depth int) {
	t := r.t
	switch k := r.rng.IntN(10); {
	case k < 5:
		writeFile(t, p, r.content(), r.pick(0o644, 0o600, 0o755, 0o444, 0o4755, 0o2755, 0), r.mtime())
	case k < 7 && depth < 3:
		must(t, os.Mkdir(p, 0o755))
		r.fill(p, depth+1)
		must(t, unix.Chmod(p, r.pick(0o755, 0o700, 0o1777, 0o555, 0o2775)))
		setMtime(t, p, r.mtime())
	case k < 8:
		must(t, os.Symlink(r.pickS("../x", "/etc/passwd", "nowhere", r.name(), "."), p))
		setMtime(t, p, r.mtime())
	case k < 9:
		if fs := r.paths(true); len(fs) > 0 {
			must(t, os.Link(fs[r.rng.IntN(len(fs))], p))
		}
	default:
		if r.rng.IntN(3) == 0 {
			must(t, unix.Mkfifo(p, 0o644))
		}
	}
	if r.rng.IntN(4) == 0 {
		os.Lchown(p, r.rng.IntN(3)*1000, r.rng.IntN(3)*1000)
	}
}

func (r *randTree) fill(dir string, depth int) {
	for range r.rng.IntN(8) {
		if p := dir + "/" + r.name(); !exists(p) {
			r.create(p, depth)
		}
	}
}

func (r *randTree) mutate() {
	t := r.t
	ps := r.paths(false)
	if len(ps) == 0 {
		r.fill(r.root, 0)
		return
	}
	p := ps[r.rng.IntN(len(ps))]
	fi, err := os.Lstat(p)
	must(t, err)
	switch r.rng.IntN(13) {
	case 0: // rewrite in place (keeps hard links), with a new mtime
		if fi.Mode().IsRegular() {
			must(t, os.WriteFile(p, r.content(), 0))
			setMtime(t, p, r.mtime())
		}
	case 1:
		if fi.Mode()&os.ModeSymlink == 0 {
			must(t, unix.Chmod(p, r.pick(0o644, 0o600, 0o755, 0o1777, 0o4711, 0o2750)))
		}
	case 2:
		must(t, os.Lchown(p, r.rng.IntN(5000), r.rng.IntN(5000)))
	case 3:
		setMtime(t, p, r.mtime())
	case 4:
		must(t, os.RemoveAll(p))
	case 5: // rename, perhaps into another directory
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
	case 11, 12: // same-size rewrite, mtime put back
		if fi.Mode().IsRegular() {
			b, err := os.ReadFile(p)
			must(t, err)
			for i := range b {
				b[i] ^= byte(1 + r.rng.IntN(255))
			}
			must(t, os.WriteFile(p, b, 0))
			setMtime(t, p, fi.ModTime())
		}
	case 8: // break a hard link keeping content and mtime (cp -p)
		if fi.Mode().IsRegular() {
			b, err := os.ReadFile(p)
			must(t, err)
			must(t, os.Remove(p))
			must(t, os.WriteFile(p, b, fi.Mode().Perm()))
			setMtime(t, p, fi.ModTime())
		}
	}
}
