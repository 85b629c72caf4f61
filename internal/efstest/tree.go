package efstest

import (
	"bytes"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
)

// entry is what replication must carry over for one path.
type entry struct {
	mode    fs.FileMode
	uid     uint32
	gid     uint32
	size    int64
	mtimeNs int64
	link    string // symlink target
	data    []byte
	inode   uint64
	nlink   uint64
}

func snapshot(root string) (map[string]entry, error) {
	out := map[string]entry{}
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, path)
		var st syscall.Stat_t
		if err := syscall.Lstat(path, &st); err != nil {
			return err
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		e := entry{mode: info.Mode(), uid: st.Uid, gid: st.Gid, mtimeNs: st.Mtim.Nano(), inode: st.Ino, nlink: uint64(st.Nlink)}
		switch {
		case info.Mode().IsRegular():
			e.size = info.Size()
			if e.data, err = os.ReadFile(path); err != nil {
				return err
			}
		case info.Mode()&fs.ModeSymlink != 0:
			if e.link, err = os.Readlink(path); err != nil {
				return err
			}
		case info.IsDir():
			if rel == "." {
				e.mtimeNs = 0 // the roots' own times are not replicated state
			}
		default:
			return nil // sockets, FIFOs, devices are not replicated
		}
		out[rel] = e
		return nil
	})
	return out, err
}

// TreeDiff compares two trees the way replication promises to keep them
// equal: types, contents, symlink targets, mode bits, owners, mtimes and
// hard-link structure. It returns "" when they are identical, else a
// description of the first differences. Special files in a are ignored.
func TreeDiff(a, b string) string {
	sa, err := snapshot(a)
	if err != nil {
		return "read " + a + ": " + err.Error()
	}
	sb, err := snapshot(b)
	if err != nil {
		return "read " + b + ": " + err.Error()
	}
	var diffs []string
	paths := map[string]bool{}
	for p := range sa {
		paths[p] = true
	}
	for p := range sb {
		paths[p] = true
	}
	sorted := make([]string, 0, len(paths))
	for p := range paths {
		sorted = append(sorted, p)
	}
	sort.Strings(sorted)
	// Hard links: paths sharing an inode on one side must share one on the other.
	groupA, groupB := map[uint64][]string{}, map[uint64][]string{}
	for _, p := range sorted {
		ea, okA := sa[p]
		eb, okB := sb[p]
		switch {
		case !okA:
			diffs = append(diffs, "only in destination: "+p)
			continue
		case !okB:
			diffs = append(diffs, "missing in destination: "+p)
			continue
		}
		if ea.mode.IsRegular() {
			groupA[ea.inode] = append(groupA[ea.inode], p)
			groupB[eb.inode] = append(groupB[eb.inode], p)
		}
		if ea.mode != eb.mode || ea.uid != eb.uid || ea.gid != eb.gid || ea.link != eb.link || ea.size != eb.size {
			diffs = append(diffs, fmt.Sprintf("%s: mode/owner/size/link %v %d:%d %d %q vs %v %d:%d %d %q",
				p, ea.mode, ea.uid, ea.gid, ea.size, ea.link, eb.mode, eb.uid, eb.gid, eb.size, eb.link))
		} else if ea.mtimeNs != eb.mtimeNs {
			diffs = append(diffs, fmt.Sprintf("%s: mtime %d vs %d", p, ea.mtimeNs, eb.mtimeNs))
		} else if !bytes.Equal(ea.data, eb.data) {
			diffs = append(diffs, p+": content differs")
		}
	}
	links := func(g map[uint64][]string) map[string]string {
		out := map[string]string{}
		for _, ps := range g {
			if len(ps) > 1 {
				for _, p := range ps {
					out[p] = strings.Join(ps, ",")
				}
			}
		}
		return out
	}
	la, lb := links(groupA), links(groupB)
	for _, p := range sorted {
		if la[p] != lb[p] {
			diffs = append(diffs, fmt.Sprintf("%s: hard links %q vs %q", p, la[p], lb[p]))
		}
	}
	if len(diffs) > 10 {
		diffs = append(diffs[:10], fmt.Sprintf("... and %d more", len(diffs)-10))
	}
	return strings.Join(diffs, "\n")
}
