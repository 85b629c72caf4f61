package treesync

import (
	"strings"

	"golang.org/x/sys/unix"
)

type devIno struct{ dev, ino uint64 }

// linkGroup is a source inode with several names (nlink > 1). Its first
// name met in the walk is synced as a file; the others become hard links
// to that destination path. Only multi-link inodes are remembered, and a
// group is forgotten once all its links have been seen.
type linkGroup struct {
	path     string // destination path of the first name, below the root
	left     uint64 // source links not yet seen
	final    bool   // the first name is in place with inode dstIno
	vanished bool   // the first name could not be synced: sync the rest alone
	dstIno   uint64
	dstCtime int64 // of dstIno, as last seen or set by Sync (for the record)
}

// deferredLink is a hard link to a group whose first name is still in the
// current batch; it is made when that batch is applied, after its renames.
type deferredLink struct {
	d    *dirH
	name string
	g    *linkGroup
}

// syncFile syncs a regular file.
//
// Hard links: a destination file whose inode has other names must not be
// kept unless it is the inode chosen for this source inode's group, or two
// files that are separate in the source would stay linked. So a source file
// with one link gets a fresh copy when its destination has several, and the
// first name of a group keeps its destination inode only if no other group
// has kept it (claimed).
func (s *syncer) syncFile(d *dirH, name string, sm, dm meta, inDst bool) error {
	var g *linkGroup
	shared := inDst && dm.isReg() && dm.nlink > 1
	if sm.nlink > 1 {
		key := devIno{sm.dev, sm.ino}
		if g = s.groups[key]; g != nil {
			if g.left--; g.left == 0 {
				delete(s.groups, key)
			}
			if !g.vanished {
				return s.linkEntry(d, name, dm, inDst, g)
			}
		}
		g = &linkGroup{path: d.path(name), left: sm.nlink - 1}
		s.groups[key] = g
		if k := (devIno{dm.dev, dm.ino}); shared && !s.claimed[k] {
			s.claimed[k], shared = true, false
		}
	}
	if inDst && dm.isDir() {
		if err := s.remove(d, name, dm); err != nil {
			return err
		}
		inDst = false
	}
	// Same size: the file is skipped if the record vouches for both sides
	// (neither was touched since it was copied); otherwise the content is
	// compared before deciding to copy, so that only what differs is
	// rewritten (an equal file keeps its inode) and a rewrite that kept
	// the size and put the mtime back is not missed.
	sameSize := inDst && dm.isReg() && !shared && sm.size == dm.size
	vouched := sameSize && s.rec != nil && s.rec.trusted(sm, dm)
	if vouched && !s.o.Verify {
		if g != nil {
			g.final, g.dstIno, g.dstCtime = true, dm.ino, dm.ctime
		}
		return s.updateMeta(d, name, dm, sm)
	}
	// A difference found by the comparison is reported only where an
	// mtime-based check would have missed it.
	looksSame := vouched || sameSize && sm.mtime == dm.mtime
	return s.submit(d, name, sm.size, func() (result, error) { return s.copyFile(d, name, dm, sameSize, looksSame, g) })
}

// linkEntry makes name another link of group g, unless it already is.
func (s *syncer) linkEntry(d *dirH, name string, dm meta, inDst bool, g *linkGroup) error {
	if g.final && inDst && dm.isReg() && dm.ino == g.dstIno {
		s.stats.Unchanged++
		return nil
	}
	if inDst && dm.isDir() {
		if err := s.remove(d, name, dm); err != nil {
			return err
		}
	}
	if g.final {
		return s.link(d, name, g)
	}
	d.refs++
	s.cur.links = append(s.cur.links, deferredLink{d, name, g})
	return s.progressBatches()
}

// link makes d/name a hard link to the group's first destination path,
// replacing whatever non-directory is there atomically (link to a
// temporary name, rename over).
func (s *syncer) link(d *dirH, name string, g *linkGroup) error {
	if g.vanished {
		return nil
	}
	dm, err := lstatAt(d.dstFd, name)
	exists := err == nil
	if err != nil && err != unix.ENOENT {
		return errAt("stat", d.path(name), err)
	}
	if exists && dm.isReg() && dm.ino == g.dstIno {
		s.stats.Unchanged++
		return nil
	}
	pfd, base, err := s.openParent(g.path)
	if err != nil {
		return errAt("open parent of", g.path, err)
	}
	if pfd != s.dstRoot {
		defer unix.Close(pfd)
	}
	if !exists {
		err = unix.Linkat(pfd, base, d.dstFd, name, 0)
	} else {
		tmp := tmpName()
		if err = unix.Linkat(pfd, base, d.dstFd, tmp, 0); err == nil {
			if err = unix.Renameat(d.dstFd, tmp, d.dstFd, name); err != nil {
				unix.Unlinkat(d.dstFd, tmp, 0)
			}
		}
	}
	if err != nil {
		return errAt("link", d.path(name), err)
	}
	if s.rec != nil { // linking moved the inode's ctime
		if m, err := lstatAt(d.dstFd, name); err == nil && m.ino == g.dstIno {
			s.rec.touched(g.dstCtime, m)
			g.dstCtime = m.ctime
		}
	}
	d.dirty = true
	s.stats.LinksCreated++
	s.progress()
	return nil
}

// openParent opens the destination directory holding rel one component at
// a time with O_NOFOLLOW, so the path cannot leave the root. It returns the
// directory (possibly the root itself) and rel's last component.
func (s *syncer) openParent(rel string) (int, string, error) {
	return openParentAt(s.dstRoot, rel)
}

// openParentAt is openParent from any root descriptor: the result is root
// itself when rel has a single component. The directory is opened with one
// openat2 that the kernel confines (openBeneath); a kernel without openat2
// (before Linux 5.6) gets the walk one component at a time.
func openParentAt(root int, rel string) (int, string, error) {
	i := strings.LastIndexByte(rel, '/')
	if i < 0 {
		return root, rel, nil
	}
	fd, err := openBeneath(root, rel[:i])
	if err == unix.ENOSYS {
		return walkParent(root, rel)
	}
	if err != nil {
		return -1, "", err
	}
	return fd, rel[i+1:], nil
}

// openBeneath opens the directory dir under root (O_PATH) in one system
// call: RESOLVE_BENEATH refuses a way out of root, RESOLVE_NO_SYMLINKS
// any symlink on the way, as the component walk's O_NOFOLLOW opens do. A
// symlink answers ENOTDIR, as in the walk (O_DIRECTORY of a symlink).
func openBeneath(root int, dir string) (int, error) {
	how := unix.OpenHow{
		Flags:   unix.O_PATH | unix.O_DIRECTORY | unix.O_CLOEXEC,
		Resolve: unix.RESOLVE_BENEATH | unix.RESOLVE_NO_SYMLINKS | unix.RESOLVE_NO_MAGICLINKS,
	}
	var fd int
	err := ignoringEINTR(func() (err error) {
		fd, err = unix.Openat2(root, dir, &how)
		return err
	})
	if err == unix.ELOOP {
		err = unix.ENOTDIR
	}
	return fd, err
}

// walkParent opens the directory holding rel one component at a time with
// O_NOFOLLOW.
func walkParent(root int, rel string) (int, string, error) {
	fd := root
	for {
		dir, rest, ok := strings.Cut(rel, "/")
		if !ok {
			return fd, rel, nil
		}
		next, err := openAt(fd, dir, unix.O_PATH|unix.O_DIRECTORY|unix.O_NOFOLLOW, 0)
		if fd != root {
			unix.Close(fd)
		}
		if err != nil {
			return -1, "", err
		}
		fd, rel = next, rest
	}
}
