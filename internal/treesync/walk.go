package treesync

import (
	"fmt"
	"slices"
	"sync"

	"golang.org/x/sys/unix"
)

// walkDir syncs the entries of one directory pair: both listings are read
// once, sorted and merge-joined, so each name costs one lstat per side.
// Only this directory's names are in memory, plus those of its ancestors.
func (s *syncer) walkDir(d *dirH) error {
	// The destination is listed in parallel with the source.
	var dstNames []string
	var dstErr error
	var wg sync.WaitGroup
	if !d.created {
		wg.Go(func() { dstNames, dstErr = readNames(d.dstFd) })
	}
	srcNames, err := readNames(d.srcFd)
	wg.Wait()
	if err != nil {
		return errAt("read source directory", d.rel, err)
	}
	if dstErr != nil {
		return errAt("read directory", d.rel, dstErr)
	}
	ents := make([]ent, 0, min(statChunk, len(srcNames)+len(dstNames)))
	i, j := 0, 0
	for i < len(srcNames) || j < len(dstNames) {
		ents = ents[:0]
		for len(ents) < statChunk && (i < len(srcNames) || j < len(dstNames)) {
			var e ent
			switch {
			case j == len(dstNames) || i < len(srcNames) && srcNames[i] < dstNames[j]:
				e = ent{name: srcNames[i], inSrc: true}
				i++
			case i == len(srcNames) || dstNames[j] < srcNames[i]:
				e = ent{name: dstNames[j], inDst: true}
				j++
			default:
				e = ent{name: srcNames[i], inSrc: true, inDst: true}
				i++
				j++
			}
			ents = append(ents, e)
		}
		statEnts(d, ents)
		for k := range ents {
			if err := s.check(); err != nil {
				return err
			}
			if err := s.entry(d, &ents[k]); err != nil {
				return err
			}
		}
	}
	return nil
}

// statChunk is how many names are stat'ed ahead of processing.
const statChunk = 256

// ent is a name of a directory pair with its lstat on either side.
type ent struct {
	name         string
	inSrc, inDst bool
	sm, dm       meta
	serr, derr   error
}

// statEnts lstats a chunk of names on both sides. The two sides are done
// in parallel when both have enough names: for a pass with nothing to do
// the stats are all the work, so this brings it near the cost of a stat
// walk of one tree.
func statEnts(d *dirH, ents []ent) {
	ns, nd := 0, 0
	for _, e := range ents {
		if e.inSrc {
			ns++
		}
		if e.inDst {
			nd++
		}
	}
	dst := func() {
		for k := range ents {
			if e := &ents[k]; e.inDst {
				e.dm, e.derr = lstatAt(d.dstFd, e.name)
			}
		}
	}
	var wg sync.WaitGroup
	if ns >= 8 && nd >= 8 {
		wg.Go(dst)
	} else {
		dst()
	}
	for k := range ents {
		if e := &ents[k]; e.inSrc {
			e.sm, e.serr = lstatAt(d.srcFd, e.name)
		}
	}
	wg.Wait()
}

// entry syncs one name of d, present in the source, the destination or both.
func (s *syncer) entry(d *dirH, e *ent) error {
	name, sm, dm := e.name, e.sm, e.dm
	inSrc, inDst := e.inSrc, e.inDst
	if inSrc {
		if e.serr == unix.ENOENT {
			inSrc = false // vanished since listed: treat as deleted
		} else if e.serr != nil {
			return errAt("stat source", d.path(name), e.serr)
		}
	}
	if inDst {
		if e.derr == unix.ENOENT {
			inDst = false
		} else if e.derr != nil {
			return errAt("stat", d.path(name), e.derr)
		}
	}
	switch {
	case !inSrc:
		if inDst {
			return s.remove(d, name, dm)
		}
		return nil
	case sm.isDir():
		return s.syncDir(d, name, sm, dm, inDst)
	case sm.isReg():
		return s.syncFile(d, name, sm, dm, inDst)
	case sm.isLink():
		return s.syncSymlink(d, name, sm, dm, inDst)
	default: // socket, FIFO, device: not replicated
		s.stats.Skipped++
		if inDst {
			return s.remove(d, name, dm)
		}
		return nil
	}
}

func (s *syncer) syncDir(d *dirH, name string, sm, dm meta, inDst bool) error {
	rel := d.path(name)
	if (devIno{sm.dev, sm.ino}) == s.dstID {
		return fmt.Errorf("destination is inside the source at %q", rel)
	}
	if inDst && !dm.isDir() {
		if err := s.remove(d, name, dm); err != nil {
			return err
		}
		inDst = false
	}
	c := &dirH{rel: rel, src: sm, dst: dm, created: !inDst, refs: 1}
	if c.created {
		// 0700 until finishMeta gives it its real mode after its entries.
		if err := unix.Mkdirat(d.dstFd, name, 0o700); err != nil {
			return errAt("create directory", rel, err)
		}
		d.dirty = true
		s.stats.DirsCreated++
	}
	var err error
	if c.srcFd, err = openAt(d.srcFd, name, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW, 0); err != nil {
		switch err {
		case unix.ENOENT: // vanished since stat'ed
			if m, err := lstatAt(d.dstFd, name); err == nil {
				return s.remove(d, name, m)
			}
			return nil
		case unix.ENOTDIR, unix.ELOOP: // replaced since stat'ed: next pass
			return nil
		}
		return errAt("open source directory", rel, err)
	}
	if c.dstFd, err = openAt(d.dstFd, name, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW, 0); err != nil {
		unix.Close(c.srcFd)
		return errAt("open directory", rel, err)
	}
	s.open[c] = true
	if inDst && (devIno{dm.dev, dm.ino}) == s.srcID {
		s.release(c)
		return fmt.Errorf("source is inside the destination at %q", rel)
	}
	if err := s.walkDir(c); err != nil {
		s.release(c)
		return err
	}
	if err := s.finishDir(c); err != nil {
		return err
	}
	return s.progressBatches()
}

// finishDir is called when the walker leaves d. Its metadata is set once
// nothing more will change in it: now, or after the batch that still holds
// renames or links into it.
func (s *syncer) finishDir(d *dirH) error {
	if d.refs > 1 {
		s.cur.dirs = append(s.cur.dirs, d) // takes over the walker's reference
		return nil
	}
	defer s.release(d)
	return s.finishMeta(d)
}

// finishMeta gives the destination directory the source's mode, owner and
// mtime; the mtime is reset also when only its entries changed.
func (s *syncer) finishMeta(d *dirH) error {
	same := !d.created && s.metaEqual(d.src, d.dst)
	if same && !d.dirty {
		s.stats.Unchanged++
		return nil
	}
	var err error
	switch {
	case d.created || !s.ownerEqual(d.src, d.dst):
		err = s.fsetMeta(d.dstFd, d.src)
	case d.src.mode != d.dst.mode:
		if err = unix.Fchmod(d.dstFd, d.src.perm()); err == nil {
			err = futimens(d.dstFd, d.src.mtime)
		}
	default:
		err = futimens(d.dstFd, d.src.mtime)
	}
	if err != nil {
		return errAt("set metadata of", d.rel, err)
	}
	if !d.created && !s.metaEqual(d.src, d.dst) { // re-evaluated: chown may have been refused
		s.stats.MetadataUpdated++
	}
	return nil
}

func (s *syncer) syncSymlink(d *dirH, name string, sm, dm meta, inDst bool) error {
	target, err := readlinkAt(d.srcFd, name)
	switch err {
	case nil:
	case unix.ENOENT: // vanished since stat'ed
		if inDst {
			return s.remove(d, name, dm)
		}
		return nil
	case unix.EINVAL: // no longer a symlink: next pass
		return nil
	default:
		return errAt("read source symlink", d.path(name), err)
	}
	if inDst && dm.isLink() {
		if have, err := readlinkAt(d.dstFd, name); err == nil && have == target {
			return s.updateMeta(d, name, dm, sm)
		}
	}
	if inDst && dm.isDir() {
		if err := s.remove(d, name, dm); err != nil {
			return err
		}
	}
	return s.submit(d, name, 0, func() (result, error) { return s.makeSymlink(d, name, target, sm) })
}

// updateMeta fixes the metadata of an entry whose content is current.
func (s *syncer) updateMeta(d *dirH, name string, dm, sm meta) error {
	if s.metaEqual(sm, dm) {
		s.stats.Unchanged++
		return nil
	}
	if err := s.setMetaAt(d.dstFd, name, dm, sm); err != nil {
		return errAt("set metadata of", d.path(name), err)
	}
	if s.rec != nil && dm.isReg() { // the change moved the file's ctime
		if m, err := lstatAt(d.dstFd, name); err == nil && m.ino == dm.ino {
			s.rec.touched(dm.ctime, m)
		}
	}
	if s.metaEqual(sm, dm) { // only the owner differed, and chown is refused
		s.stats.Unchanged++
	} else {
		s.stats.MetadataUpdated++
	}
	return nil
}

// submit runs a task in a worker slot; its result joins the current batch
// and is applied when that batch has been committed. The task holds a
// reference to d until then.
func (s *syncer) submit(d *dirH, name string, size int64, task func() (result, error)) error {
	select {
	case s.sem <- struct{}{}:
	case <-s.ctx.Done():
		return s.check()
	}
	d.refs++
	b := s.cur
	b.tasks++
	b.bytes += size
	s.wg.Add(1)
	b.wg.Add(1)
	go func() {
		defer func() { <-s.sem; b.wg.Done(); s.wg.Done() }()
		if err := s.ctx.Err(); err != nil {
			s.fail(fmt.Errorf("sync cancelled: %w", err))
			return
		}
		r, err := task()
		if err != nil {
			s.fail(err)
			return
		}
		r.d, r.name = d, name
		s.mu.Lock()
		b.done = append(b.done, r)
		s.mu.Unlock()
	}()
	return s.progressBatches()
}

// remove deletes the destination entry name (described by dm), a whole
// subtree for a directory, without following symlinks.
func (s *syncer) remove(d *dirH, name string, dm meta) error {
	d.dirty = true
	if dm.isDir() {
		return s.removeAll(d.dstFd, d.path(name), name)
	}
	if err := unix.Unlinkat(d.dstFd, name, 0); err != nil && err != unix.ENOENT {
		return errAt("remove", d.path(name), err)
	}
	s.stats.Deleted++
	s.progress()
	return nil
}

func (s *syncer) removeAll(parent int, rel, name string) error {
	fd, err := openAt(parent, name, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW, 0)
	switch err {
	case nil:
	case unix.ENOENT:
		return nil
	case unix.ENOTDIR, unix.ELOOP: // not a directory after all
		err = unix.Unlinkat(parent, name, 0)
		if err != nil && err != unix.ENOENT {
			return errAt("remove", rel, err)
		}
		s.stats.Deleted++
		s.progress()
		return nil
	default:
		return errAt("open for removal", rel, err)
	}
	defer unix.Close(fd)
	if m, err := fstat(fd); err != nil {
		return errAt("stat", rel, err)
	} else if (devIno{m.dev, m.ino}) == s.srcID {
		return fmt.Errorf("source is inside the destination at %q", rel)
	}
	names, err := readNames(fd)
	if err != nil {
		return errAt("read directory", rel, err)
	}
	for _, n := range names {
		if err := s.check(); err != nil {
			return err
		}
		switch err := unix.Unlinkat(fd, n, 0); err {
		case nil:
			s.stats.Deleted++
			s.progress()
		case unix.EISDIR:
			if err := s.removeAll(fd, rel+"/"+n, n); err != nil {
				return err
			}
		case unix.ENOENT:
		default:
			return errAt("remove", rel+"/"+n, err)
		}
	}
	if err := unix.Unlinkat(parent, name, unix.AT_REMOVEDIR); err != nil && err != unix.ENOENT {
		return errAt("remove directory", rel, err)
	}
	s.stats.Deleted++
	s.progress()
	return nil
}

var direntBufs = sync.Pool{New: func() any { b := make([]byte, 64<<10); return &b }}

// readNames lists a directory with getdents(2), without "." and "..",
// sorted.
func readNames(fd int) ([]string, error) {
	bp := direntBufs.Get().(*[]byte)
	defer direntBufs.Put(bp)
	var names []string
	for {
		var n int
		err := ignoringEINTR(func() (err error) { n, err = unix.Getdents(fd, *bp); return err })
		if err != nil {
			return nil, err
		}
		if n <= 0 {
			break
		}
		_, _, names = unix.ParseDirent((*bp)[:n], -1, names)
	}
	slices.Sort(names)
	return names, nil
}

func readlinkAt(dirfd int, name string) (string, error) {
	for size := 256; ; size *= 2 {
		buf := make([]byte, size)
		n, err := unix.Readlinkat(dirfd, name, buf)
		if err != nil {
			return "", err
		}
		if n < size {
			return string(buf[:n]), nil
		}
	}
}

// errAt wraps err with what was done and where (relative to the roots).
func errAt(op, rel string, err error) error {
	if rel == "" {
		rel = "."
	}
	return fmt.Errorf("%s %q: %w", op, rel, err)
}
