// Package trees builds the benchmark's file trees deterministically (the
// same spec always gives the same paths, sizes and bytes), changes a fixed
// fraction of their files, compares two trees, and walks a tree the
// cheapest way (readdir + lstat), as the baseline for a no-op pass.
package trees

import (
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"sort"
	"sync"
	"sync/atomic"
)

// Entry is one non-directory entry of a tree.
type Entry struct {
	Path    string // relative, slash-separated
	Size    int64  // bytes of a regular file
	Symlink string // target, for a symbolic link (Size is then 0)
}

// Spec describes a tree. Entry(i) for i in [0, Files) is pure: it depends
// only on the spec and i.
type Spec struct {
	Name  string
	Desc  string
	Files int      // entries, including symlinks
	Dirs  []string // every directory, parents before children
	seed  uint64
	entry func(i int) Entry
}

// Entry returns the i-th entry.
func (s *Spec) Entry(i int) Entry { return s.entry(i) }

// TotalBytes is the sum of the regular files' sizes.
func (s *Spec) TotalBytes() int64 {
	var n int64
	for i := range s.Files {
		n += s.entry(i).Size
	}
	return n
}

// SmallFiles is n files of size bytes spread evenly over dirs directories
// (tree (a): 10,000 files of 4 KiB in 100 directories).
func SmallFiles(name string, n int, size int64, dirs int) *Spec {
	per := (n + dirs - 1) / dirs
	s := &Spec{Name: name, Files: n, seed: 0xa11ce,
		Desc: fmt.Sprintf("%d files of %s in %d directories", n, human(size), dirs)}
	for d := range dirs {
		s.Dirs = append(s.Dirs, fmt.Sprintf("d%03d", d))
	}
	s.entry = func(i int) Entry {
		return Entry{Path: fmt.Sprintf("d%03d/f%05d", i/per, i), Size: size}
	}
	return s
}

// LargeFiles is n files of size bytes in the root (tree (b): 20 files of
// 64 MiB).
func LargeFiles(name string, n int, size int64) *Spec {
	return &Spec{Name: name, Files: n, seed: 0xb16,
		Desc: fmt.Sprintf("%d files of %s", n, human(size)),
		entry: func(i int) Entry {
			return Entry{Path: fmt.Sprintf("big%03d", i), Size: size}
		}}
}

// Mixed is about n entries totalling about total bytes, three directory
// levels deep: mostly small files (log-uniform 64 B–256 KiB), 2% large
// files (log-uniform 1–32 MiB, scaled so that the total is met) and 1%
// symbolic links (tree (c): about 5,000 files and 800 MiB).
func Mixed(name string, n int, total int64) *Spec {
	s := &Spec{Name: name, Files: n, seed: 0xc0ffee}
	r := rng(s.seed)
	sizes := make([]int64, n)
	kinds := make([]byte, n) // 's'mall, 'l'arge, 'y' symlink
	var small, large float64
	for i := range n {
		switch x := r.next() % 100; {
		case x < 1:
			kinds[i] = 'y'
		case x < 3:
			kinds[i] = 'l'
			sizes[i] = int64(math.Exp(math.Log(1<<20) + r.float()*math.Log(32)))
			large += float64(sizes[i])
		default:
			kinds[i] = 's'
			sizes[i] = int64(math.Exp(math.Log(64) + r.float()*math.Log(4096)))
			small += float64(sizes[i])
		}
	}
	if large > 0 && float64(total) > small {
		k := (float64(total) - small) / large
		for i := range sizes {
			if kinds[i] == 'l' {
				sizes[i] = int64(float64(sizes[i]) * k)
			}
		}
	}
	// 10 top-level directories of 10 subdirectories of 5 leaves: files go
	// to leaves mostly, 1 in 20 to an upper level.
	var leaves, uppers []string
	for a := range 10 {
		top := fmt.Sprintf("t%d", a)
		s.Dirs = append(s.Dirs, top)
		uppers = append(uppers, top)
		for b := range 10 {
			mid := fmt.Sprintf("%s/m%d", top, b)
			s.Dirs = append(s.Dirs, mid)
			uppers = append(uppers, mid)
			for c := range 5 {
				leaf := fmt.Sprintf("%s/l%d", mid, c)
				s.Dirs = append(s.Dirs, leaf)
				leaves = append(leaves, leaf)
			}
		}
	}
	paths := make([]string, n)
	for i := range n {
		dir := leaves[i%len(leaves)]
		if i%20 == 7 {
			dir = uppers[i%len(uppers)]
		}
		paths[i] = fmt.Sprintf("%s/e%05d", dir, i)
	}
	s.entry = func(i int) Entry {
		if kinds[i] == 'y' {
			// A dangling relative link: its target is not followed.
			return Entry{Path: paths[i], Symlink: fmt.Sprintf("../target-%05d", i)}
		}
		return Entry{Path: paths[i], Size: sizes[i]}
	}
	var sum int64
	for i := range n {
		sum += sizes[i]
	}
	s.Desc = fmt.Sprintf("%d entries (%d symlinks) totalling %s in %d directories", n, count(kinds, 'y'), human(sum), len(s.Dirs))
	return s
}

// Scale is n small files (0–2 KiB, mean 1 KiB), 1,000 per directory, 100
// directories per parent: the scale suite's trees (10k, 100k, 1M files).
func Scale(name string, n int) *Spec {
	s := &Spec{Name: name, Files: n, seed: 0x5ca1e}
	leaves := (n + 999) / 1000
	for p := range (leaves + 99) / 100 {
		s.Dirs = append(s.Dirs, fmt.Sprintf("p%03d", p))
	}
	for l := range leaves {
		s.Dirs = append(s.Dirs, fmt.Sprintf("p%03d/d%05d", l/100, l))
	}
	s.entry = func(i int) Entry {
		l := i / 1000
		return Entry{Path: fmt.Sprintf("p%03d/d%05d/f%07d", l/100, l, i), Size: int64(mix(s.seed^uint64(i)) % 2049)}
	}
	s.Desc = fmt.Sprintf("%d files of 0–2 KiB, 1,000 per directory, in %d directories", n, len(s.Dirs))
	return s
}

// Build writes the tree under root (created if missing) with workers
// goroutines. Version 0 is the initial content; Mutate writes others.
func Build(root string, s *Spec, workers int) error {
	if err := os.MkdirAll(root, 0o755); err != nil {
		return err
	}
	for _, d := range s.Dirs {
		if err := os.Mkdir(filepath.Join(root, d), 0o755); err != nil && !errors.Is(err, os.ErrExist) {
			return err
		}
	}
	return parallel(s.Files, workers, func(i int, buf []byte) ([]byte, error) {
		return writeEntry(root, s, i, 0, buf)
	})
}

// Mutate rewrites, in place and at the same size, round(fraction×files)
// regular files (at least one), chosen evenly over the tree and differently
// for each round, with contents of version round+1. It returns the relative
// paths changed.
func Mutate(root string, s *Spec, round int, fraction float64, workers int) ([]string, error) {
	return MutatePicked(root, s, round, round+1, fraction, workers)
}

// MutatePicked is Mutate with the files those of Pick(s, pick, fraction)
// and their contents of version: two tools measured on one tree change the
// same files (same sizes) with the same pick, each time with bytes the
// files never held with a new version.
func MutatePicked(root string, s *Spec, pick, version int, fraction float64, workers int) ([]string, error) {
	idx := Pick(s, pick, fraction)
	paths := make([]string, len(idx))
	err := parallel(len(idx), workers, func(j int, buf []byte) ([]byte, error) {
		paths[j] = s.Entry(idx[j]).Path
		return writeEntry(root, s, idx[j], version, buf)
	})
	return paths, err
}

// Pick returns the indices of the regular files Mutate changes in a round:
// k = round(fraction×files) of them (at least one), one per stride of
// files/k, at an offset that depends on the round.
func Pick(s *Spec, round int, fraction float64) []int {
	n := s.Files
	k := min(n, max(1, int(math.Round(fraction*float64(n)))))
	stride := n / k
	off := int(mix(uint64(round)^s.seed) % uint64(stride))
	seen := make(map[int]bool, k)
	idx := make([]int, 0, k)
	for j := range k {
		i := off + j*stride
		// Skip symlinks and indices already taken; bounded by n steps.
		for step := 0; step < n && (seen[i%n] || s.Entry(i%n).Symlink != ""); step++ {
			i++
		}
		if i %= n; !seen[i] && s.Entry(i).Symlink == "" {
			seen[i] = true
			idx = append(idx, i)
		}
	}
	sort.Ints(idx)
	return idx
}

// WriteVersion writes entry i with the contents of version v, in place
// (truncate and write, as an ordinary writer does).
func WriteVersion(root string, s *Spec, i, v int) error {
	_, err := writeEntry(root, s, i, v, nil)
	return err
}

// WriteRange overwrites, in place, n bytes of regular file i at offset off
// (a multiple of 8; off+n within the file) with the bytes version v has
// there, leaving the rest of the file as it was: a change in the middle of
// a large file, as a database or a disk image makes.
func WriteRange(root string, s *Spec, i, v int, off, n int64) error {
	e := s.Entry(i)
	if e.Symlink != "" || off%8 != 0 || off < 0 || n < 0 || off+n > e.Size {
		return fmt.Errorf("trees: range %d+%d of entry %d (size %d) not writable", off, n, i, e.Size)
	}
	f, err := os.OpenFile(filepath.Join(root, e.Path), os.O_WRONLY, 0)
	if err != nil {
		return err
	}
	b := make([]byte, min(n, chunk))
	for pos := off; pos < off+n; {
		// One piece never crosses a chunk boundary: fill seeds per chunk.
		end := min(off+n, (pos/chunk+1)*chunk)
		p := b[:end-pos]
		fill(p, s.seed, i, v, pos)
		if _, err := f.WriteAt(p, pos); err != nil {
			f.Close()
			return err
		}
		pos = end
	}
	return f.Close()
}

// Content returns the bytes of entry i at version v.
func Content(s *Spec, i, v int) []byte {
	e := s.Entry(i)
	b := make([]byte, e.Size)
	for off := int64(0); off < e.Size; off += chunk {
		fill(b[off:min(off+chunk, e.Size)], s.seed, i, v, off)
	}
	return b
}

const chunk = 1 << 20

func writeEntry(root string, s *Spec, i, v int, buf []byte) ([]byte, error) {
	e := s.Entry(i)
	p := filepath.Join(root, e.Path)
	if e.Symlink != "" {
		if err := os.Symlink(e.Symlink, p); err != nil && !errors.Is(err, os.ErrExist) {
			return buf, err
		}
		return buf, nil
	}
	f, err := os.OpenFile(p, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o644)
	if err != nil {
		return buf, err
	}
	if cap(buf) < chunk {
		buf = make([]byte, chunk)
	}
	for off := int64(0); off < e.Size; off += chunk {
		b := buf[:min(chunk, e.Size-off)]
		fill(b, s.seed, i, v, off)
		if _, err := f.Write(b); err != nil {
			f.Close()
			return buf, err
		}
	}
	return buf, f.Close()
}

// fill writes the deterministic bytes of entry i, version v, at offset off
// (a multiple of 8) into b: an xorshift stream seeded per 1 MiB chunk, so
// any chunk can be produced alone.
func fill(b []byte, seed uint64, i, v int, off int64) {
	r := rng(mix(seed ^ uint64(i)<<20 ^ uint64(v)<<52 ^ uint64(off/chunk)))
	// Skip within the chunk (only a multiple-of-8 offset inside a chunk
	// is ever asked for, and writeEntry always starts at a chunk).
	for k := int64(0); k < (off%chunk)/8; k++ {
		r.next()
	}
	n := len(b) &^ 7
	for j := 0; j < n; j += 8 {
		x := r.next()
		b[j], b[j+1], b[j+2], b[j+3] = byte(x), byte(x>>8), byte(x>>16), byte(x>>24)
		b[j+4], b[j+5], b[j+6], b[j+7] = byte(x>>32), byte(x>>40), byte(x>>48), byte(x>>56)
	}
	if n < len(b) {
		x := r.next()
		for j := n; j < len(b); j++ {
			b[j] = byte(x)
			x >>= 8
		}
	}
}

func parallel(n, workers int, fn func(i int, buf []byte) ([]byte, error)) error {
	workers = max(1, min(workers, n))
	var next atomic.Int64
	var wg sync.WaitGroup
	var mu sync.Mutex
	var first error
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var buf []byte
			for {
				i := int(next.Add(1) - 1)
				if i >= n {
					return
				}
				var err error
				if buf, err = fn(i, buf); err != nil {
					mu.Lock()
					if first == nil {
						first = err
					}
					mu.Unlock()
					next.Store(int64(n)) // stop the others
					return
				}
			}
		}()
	}
	wg.Wait()
	return first
}

type xorshift struct{ s uint64 }

func rng(seed uint64) *xorshift {
	if seed == 0 {
		seed = 0x9e3779b97f4a7c15
	}
	return &xorshift{s: seed}
}

func (r *xorshift) next() uint64 {
	r.s ^= r.s << 13
	r.s ^= r.s >> 7
	r.s ^= r.s << 17
	return r.s
}

func (r *xorshift) float() float64 { return float64(r.next()>>11) / (1 << 53) }

// mix is splitmix64's finaliser.
func mix(x uint64) uint64 {
	x += 0x9e3779b97f4a7c15
	x = (x ^ x>>30) * 0xbf58476d1ce4e5b9
	x = (x ^ x>>27) * 0x94d049bb133111eb
	return x ^ x>>31
}

func count(b []byte, c byte) int {
	n := 0
	for _, x := range b {
		if x == c {
			n++
		}
	}
	return n
}

func human(b int64) string {
	switch {
	case b >= 1<<30:
		return fmt.Sprintf("%.2f GiB", float64(b)/(1<<30))
	case b >= 1<<20:
		return fmt.Sprintf("%.0f MiB", float64(b)/(1<<20))
	case b >= 1<<10:
		return fmt.Sprintf("%.0f KiB", float64(b)/(1<<10))
	default:
		return fmt.Sprintf("%d B", b)
	}
}
