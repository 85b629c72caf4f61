package trees

import (
	"bytes"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"

	"golang.org/x/sys/unix"
)

// StatWalk lists every directory under root and lstats every entry, once,
// the way the cheapest possible "has anything changed?" scan would, and
// returns the number of entries seen (root excluded). It is the baseline
// of a no-op replication pass.
func StatWalk(root string) (int, error) {
	fd, err := unix.Open(root, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return 0, err
	}
	return statWalk(fd)
}

func statWalk(fd int) (int, error) {
	f := os.NewFile(uintptr(fd), "")
	defer f.Close()
	names, err := f.Readdirnames(-1)
	if err != nil {
		return 0, err
	}
	n := 0
	var st unix.Stat_t
	for _, name := range names {
		if err := unix.Fstatat(fd, name, &st, unix.AT_SYMLINK_NOFOLLOW); err != nil {
			return n, err
		}
		n++
		if st.Mode&unix.S_IFMT == unix.S_IFDIR {
			c, err := unix.Openat(fd, name, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
			if err != nil {
				return n, err
			}
			k, err := statWalk(c)
			n += k
			if err != nil {
				return n, err
			}
		}
	}
	return n, nil
}

// DiffOptions choose what Diff compares beyond names, types, sizes and
// symlink targets.
type DiffOptions struct {
	Content bool // compare file bytes
	Meta    bool // compare mode, owner and mtime (nanoseconds)
}

// Diff returns nil if the trees under a and b are identical as far as o
// asks, or an error naming the first difference. The roots themselves are
// compared only by type.
func Diff(a, b string, o DiffOptions) error {
	d := &differ{o: o}
	if o.Content {
		d.ba, d.bb = make([]byte, 1<<20), make([]byte, 1<<20)
	}
	return d.dir(a, b, "")
}

type differ struct {
	o      DiffOptions
	ba, bb []byte // reused read buffers
}

func (d *differ) dir(a, b, rel string) error {
	o := d.o
	na, err := readNames(filepath.Join(a, rel))
	if err != nil {
		return err
	}
	nb, err := readNames(filepath.Join(b, rel))
	if err != nil {
		return err
	}
	if !slices.Equal(na, nb) {
		return fmt.Errorf("%s: entries differ: %s", show(rel), firstMissing(na, nb))
	}
	for _, n := range na {
		r := filepath.Join(rel, n)
		pa, pb := filepath.Join(a, r), filepath.Join(b, r)
		var sa, sb unix.Stat_t
		if err := unix.Lstat(pa, &sa); err != nil {
			return err
		}
		if err := unix.Lstat(pb, &sb); err != nil {
			return err
		}
		if sa.Mode&unix.S_IFMT != sb.Mode&unix.S_IFMT {
			return fmt.Errorf("%s: type differs", r)
		}
		if o.Meta && (sa.Mode != sb.Mode || sa.Uid != sb.Uid || sa.Gid != sb.Gid) {
			return fmt.Errorf("%s: mode or owner differs (%o %d:%d vs %o %d:%d)", r, sa.Mode, sa.Uid, sa.Gid, sb.Mode, sb.Uid, sb.Gid)
		}
		switch sa.Mode & unix.S_IFMT {
		case unix.S_IFDIR:
			if err := d.dir(a, b, r); err != nil {
				return err
			}
		case unix.S_IFLNK:
			ta, err1 := os.Readlink(pa)
			tb, err2 := os.Readlink(pb)
			if err1 != nil || err2 != nil || ta != tb {
				return fmt.Errorf("%s: symlink target differs", r)
			}
		case unix.S_IFREG:
			if sa.Size != sb.Size {
				return fmt.Errorf("%s: size differs (%d vs %d)", r, sa.Size, sb.Size)
			}
			if o.Meta && sa.Mtim != sb.Mtim {
				return fmt.Errorf("%s: mtime differs", r)
			}
			if o.Content {
				if err := d.sameContent(pa, pb); err != nil {
					return fmt.Errorf("%s: %w", r, err)
				}
			}
		}
	}
	return nil
}

func readNames(dir string) ([]string, error) {
	f, err := os.Open(dir)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	names, err := f.Readdirnames(-1)
	slices.Sort(names)
	return names, err
}

func firstMissing(a, b []string) string {
	inB := map[string]bool{}
	for _, n := range b {
		inB[n] = true
	}
	for _, n := range a {
		if !inB[n] {
			return fmt.Sprintf("%q only in the first", n)
		}
		delete(inB, n)
	}
	for n := range inB {
		return fmt.Sprintf("%q only in the second", n)
	}
	return "order"
}

func show(rel string) string {
	if rel == "" {
		return "."
	}
	return rel
}

func (d *differ) sameContent(a, b string) error {
	fa, err := os.Open(a)
	if err != nil {
		return err
	}
	defer fa.Close()
	fb, err := os.Open(b)
	if err != nil {
		return err
	}
	defer fb.Close()
	ba, bb := d.ba, d.bb
	for {
		n, errA := io.ReadFull(fa, ba)
		m, errB := io.ReadFull(fb, bb)
		if n != m || !bytes.Equal(ba[:n], bb[:m]) {
			return fmt.Errorf("content differs")
		}
		if errA == io.EOF || errA == io.ErrUnexpectedEOF {
			if errB == io.EOF || errB == io.ErrUnexpectedEOF {
				return nil
			}
			return fmt.Errorf("content differs")
		}
		if errA != nil {
			return errA
		}
		if errB != nil {
			return errB
		}
	}
}

// SameFiles compares the bytes of the listed relative paths under a and b:
// the content check for trees too large to compare whole.
func SameFiles(a, b string, rels []string) error {
	d := &differ{o: DiffOptions{Content: true}, ba: make([]byte, 1<<20), bb: make([]byte, 1<<20)}
	for _, r := range rels {
		if err := d.sameContent(filepath.Join(a, r), filepath.Join(b, r)); err != nil {
			return fmt.Errorf("%s: %w", r, err)
		}
	}
	return nil
}
