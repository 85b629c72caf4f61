package treesync

import (
	"fmt"
	"strings"

	"golang.org/x/sys/unix"
)

// The exported helpers below let other writers of a destination (the chunk
// assembler of cross-deployment replication) confine themselves to it the
// way Sync does, rather than re-implementing the descriptor walk.

// TmpPrefix starts the name of every temporary a writer of a destination
// creates; Sync deletes leftovers with it like any name the source lacks.
const TmpPrefix = tmpPrefix

// OpenAt opens the single component name relative to the directory dirfd,
// close-on-exec, retrying when interrupted. Pass O_NOFOLLOW to refuse a
// symlink in name's place.
func OpenAt(dirfd int, name string, flags int, perm uint32) (int, error) {
	return openAt(dirfd, name, flags, perm)
}

// CheckRel refuses a relative path that could name something outside the
// root it is resolved under, or not name an entry at all: empty, absolute,
// with an empty, "." or ".." component, or a NUL byte.
func CheckRel(rel string) error {
	if rel == "" || strings.HasPrefix(rel, "/") || strings.IndexByte(rel, 0) >= 0 {
		return fmt.Errorf("invalid relative path %q", rel)
	}
	for c := range strings.SplitSeq(rel, "/") {
		if c == "" || c == "." || c == ".." {
			return fmt.Errorf("invalid relative path %q", rel)
		}
	}
	return nil
}

// OpenParent checks rel (CheckRel) and opens the directory holding it under
// root one component at a time with O_NOFOLLOW, so no symlink can lead the
// walk out of root. It returns a new descriptor (O_PATH, enough for the *at
// calls), which the caller closes, and rel's last component.
func OpenParent(root int, rel string) (int, string, error) {
	if err := CheckRel(rel); err != nil {
		return -1, "", err
	}
	fd, base, err := openParentAt(root, rel)
	if err != nil {
		return -1, "", err
	}
	if fd == root {
		if fd, err = unix.Dup(root); err != nil {
			return -1, "", err
		}
	}
	return fd, base, nil
}

// Syncfs makes everything written to the file system holding fd durable
// and reports writeback errors since fd was opened (Linux ≥ 5.8).
func Syncfs(fd int) error { return syncfs(fd) }

// Parents opens the parents of paths taken one after another (OpenParent),
// keeping the last one open: files in walk order share their directory,
// so a run of them costs one confined open rather than one each. Not safe
// for concurrent use. The caller calls Forget after changing the tree's
// directories (a directory removed or replaced), and Close when done.
type Parents struct {
	root int
	dir  string // the kept directory's path ("" for root itself)
	fd   int    // its descriptor, or -1
}

// NewParents opens parents under root.
func NewParents(root int) *Parents { return &Parents{root: root, fd: -1} }

// Open checks rel (CheckRel) and returns the descriptor of the directory
// holding it and rel's last component. The descriptor stays owned by p:
// it is valid until p's next Open, Forget or Close.
func (p *Parents) Open(rel string) (int, string, error) {
	if err := CheckRel(rel); err != nil {
		return -1, "", err
	}
	dir, base := "", rel
	if i := strings.LastIndexByte(rel, '/'); i >= 0 {
		dir, base = rel[:i], rel[i+1:]
	}
	if p.fd >= 0 && dir == p.dir {
		return p.fd, base, nil
	}
	p.Forget()
	fd, _, err := OpenParent(p.root, rel)
	if err != nil {
		return -1, "", err
	}
	p.fd, p.dir = fd, dir
	return fd, base, nil
}

// Forget closes the kept descriptor: the next Open resolves its path
// again.
func (p *Parents) Forget() {
	if p.fd >= 0 {
		unix.Close(p.fd)
		p.fd = -1
	}
}

// Close releases p.
func (p *Parents) Close() { p.Forget() }
