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
