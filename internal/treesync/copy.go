package treesync

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"strconv"
	"sync"
	"time"

	"golang.org/x/sys/unix"
)

// testHook, set only by tests, is called before a source file is opened
// ("open") and after it is stat'ed, before it is read ("read").
var testHook func(stage, rel string)

// tmpPrefix names temporaries. A leftover one in the destination is deleted
// by the next Sync like any other name the source lacks.
const tmpPrefix = ".efsd-tmp-"

type resultKind uint8

const (
	resNone      resultKind = iota // source changed type mid-pass: left to the next pass
	resVanished                    // source vanished mid-pass: destination entry removed
	resCopied                      // file content in tmp
	resSymlink                     // symlink in tmp
	resUnchanged                   // content compared equal
	resMeta                        // content compared equal, metadata updated
)

// result is what a task hands back to the walker, through its batch.
type result struct {
	d     *dirH
	name  string
	tmp   string // temporary to rename over name; "" once renamed
	kind  resultKind
	bytes int64
	ino   uint64 // destination inode now at name (files of link groups)
	g     *linkGroup

	// For the record: the source file as stat'ed before it was read, and
	// for resUnchanged the destination before the comparison.
	src, dst meta
	racy     bool  // its ctime was within the racy window of that moment
	compared int64 // bytes read comparing, on both sides; 0: not compared
	differed bool  // compared and found different where it looked the same
}

// apply does the walker's bookkeeping for a task once its batch has been
// committed (its temporary, if any, is durable and renamed into place).
func (s *syncer) apply(r *result) error {
	d := r.d
	if r.compared > 0 || r.kind == resUnchanged || r.kind == resMeta {
		s.stats.FilesCompared++
		s.stats.BytesCompared += r.compared
	}
	switch r.kind {
	case resCopied:
		d.dirty = true // renamed into place by commit
		s.stats.FilesCopied++
		s.stats.BytesCopied += r.bytes
		if r.differed {
			s.stats.Differences++
			if s.o.OnDifference != nil {
				s.o.OnDifference(d.path(r.name))
			}
		}
		s.progress()
	case resSymlink:
		d.dirty = true
		s.stats.SymlinksCreated++
		s.progress()
	case resUnchanged:
		s.stats.Unchanged++
		s.progress()
	case resMeta:
		s.stats.MetadataUpdated++
		s.progress()
	case resVanished:
		if m, err := lstatAt(d.dstFd, r.name); err == nil {
			if err := s.remove(d, r.name, m); err != nil {
				return err
			}
		}
	}
	if s.rec != nil && (r.kind == resCopied || r.kind == resUnchanged || r.kind == resMeta) {
		// A copy's identity is taken now, after the rename and any
		// metadata change, which both move its ctime. Its content is
		// durable: a copy was synced before its rename.
		if r.kind == resUnchanged {
			s.rec.put(r.dst, r.src.ino, r.src.ctime, r.racy)
		} else if m, err := lstatAt(d.dstFd, r.name); err == nil && m.isReg() {
			s.rec.put(m, r.src.ino, r.src.ctime, r.racy)
			r.dst = m
		}
	}
	if g := r.g; g != nil {
		g.final = true
		g.dstIno, g.dstCtime = r.ino, r.dst.ctime
		g.vanished = r.kind != resCopied && r.kind != resUnchanged && r.kind != resMeta
	}
	s.release(d)
	r.d = nil
	return nil
}

// copyFile is the task for a regular file whose destination (dm) differs
// or may differ. With compare, the destination has the source's size and is
// compared by content first: only what differs is then rewritten. looksSame
// says a difference found is one to report (Options.OnDifference).
//
// The source is stat'ed through the opened descriptor before reading, and
// the record gets the ctime observed then: if the file is modified while it
// is copied, its ctime moves on and the next pass copies it again (or,
// within the clock's granularity, compares it: see defaultRacySlack).
func (s *syncer) copyFile(d *dirH, name string, dm meta, compare, looksSame bool, g *linkGroup) (result, error) {
	if testHook != nil {
		testHook("open", d.path(name))
	}
	in, err := openAt(d.srcFd, name, unix.O_RDONLY|unix.O_NOFOLLOW|unix.O_NONBLOCK|unix.O_NOCTTY|unix.O_NOATIME, 0)
	if err == unix.EPERM { // O_NOATIME needs ownership or CAP_FOWNER
		in, err = openAt(d.srcFd, name, unix.O_RDONLY|unix.O_NOFOLLOW|unix.O_NONBLOCK|unix.O_NOCTTY, 0)
	}
	switch err {
	case nil:
	case unix.ENOENT:
		return result{kind: resVanished, g: g}, nil
	case unix.ELOOP, unix.ENXIO, unix.ENODEV:
		return result{kind: resNone, g: g}, nil
	default:
		return result{}, errAt("open source", d.path(name), err)
	}
	defer unix.Close(in)
	m, err := fstat(in)
	if err != nil {
		return result{}, errAt("stat source", d.path(name), err)
	}
	if !m.isReg() {
		return result{kind: resNone, g: g}, nil
	}
	// The real clock, not an injected one: it is compared with the
	// kernel's file timestamps.
	racy := m.ctime > time.Now().Add(-racyWindow(m.ctime)).UnixNano()
	if testHook != nil {
		testHook("read", d.path(name))
	}
	var compared int64
	if compare && m.size == dm.size {
		same, n, err := sameContent(in, d.dstFd, name, m.size)
		if err != nil {
			return result{}, errAt("compare", d.path(name), err)
		}
		compared = n
		if same {
			// The destination as stat'ed before the comparison goes to the
			// record: if it changed meanwhile, its ctime moved and the
			// record will not vouch for it.
			r := result{kind: resUnchanged, ino: dm.ino, g: g, src: m, racy: racy, compared: compared, dst: dm}
			if !s.metaEqual(m, dm) {
				if err := s.setMetaAt(d.dstFd, name, dm, m); err != nil {
					return result{}, errAt("set metadata of", d.path(name), err)
				}
				if !s.metaEqual(m, dm) { // else only the owner differed, and chown is refused
					r.kind = resMeta
				}
			}
			return r, nil
		}
	}

	tmp, out, err := createTemp(d.dstFd, m.perm()&0o777)
	if err != nil {
		return result{}, errAt("create temporary for", d.path(name), err)
	}
	r := result{tmp: tmp, kind: resCopied, g: g, src: m, racy: racy, compared: compared, differed: compared > 0 && looksSame}
	err = func() error {
		if r.bytes, err = s.copyData(in, out, m.size); err != nil {
			return err
		}
		// Created with its permission bits: usually only the mtime is
		// left to set.
		om, err := fstat(out)
		if err != nil {
			return err
		}
		r.ino = om.ino
		return s.fsetMetaFrom(out, om, m)
	}()
	if cerr := unix.Close(out); err == nil {
		err = cerr
	}
	if err != nil {
		unix.Unlinkat(d.dstFd, tmp, 0)
		return result{}, errAt("copy", d.path(name), err)
	}
	return r, nil
}

// createTemp creates a fresh temporary file in the directory dirfd.
func createTemp(dirfd int, perm uint32) (string, int, error) {
	for {
		name := tmpName()
		fd, err := openAt(dirfd, name, unix.O_WRONLY|unix.O_CREAT|unix.O_EXCL|unix.O_NOFOLLOW, perm)
		if err != unix.EEXIST {
			return name, fd, err
		}
	}
}

func tmpName() string { return tmpPrefix + strconv.FormatUint(rand.Uint64(), 36) }

const copyChunk = 16 << 20 // between cancellation checks

// copyData copies size bytes (fewer if the source shrank) with
// copy_file_range(2), which copies in the kernel (or reflinks), falling back
// to read/write where it is not supported.
func (s *syncer) copyData(in, out int, size int64) (int64, error) {
	var roff, woff int64
	for roff < size {
		if err := s.ctx.Err(); err != nil {
			return roff, fmt.Errorf("sync cancelled: %w", err)
		}
		var n int
		err := ignoringEINTR(func() (err error) {
			n, err = unix.CopyFileRange(in, &roff, out, &woff, int(min(size-roff, copyChunk)), 0)
			return err
		})
		if roff == 0 && (n == 0 || err == unix.EXDEV || err == unix.EINVAL || err == unix.ENOSYS || err == unix.EOPNOTSUPP) {
			return s.copyRW(in, out, size)
		}
		if err != nil {
			return roff, err
		}
		if n == 0 { // source shrank
			break
		}
	}
	return roff, nil
}

var bufs = sync.Pool{New: func() any { b := make([]byte, 256<<10); return &b }}

func (s *syncer) copyRW(in, out int, size int64) (int64, error) {
	bp := bufs.Get().(*[]byte)
	defer bufs.Put(bp)
	var off int64
	for off < size {
		if err := s.ctx.Err(); err != nil {
			return off, fmt.Errorf("sync cancelled: %w", err)
		}
		n, err := PreadFull(in, (*bp)[:min(int64(len(*bp)), size-off)], off)
		if err != nil {
			return off, err
		}
		if n == 0 {
			break
		}
		for w := 0; w < n; {
			m, err := unix.Pwrite(out, (*bp)[w:n], off+int64(w))
			if err != nil && err != unix.EINTR {
				return off, err
			}
			w += max(m, 0)
		}
		off += int64(n)
	}
	return off, nil
}

// PreadFull reads len(b) bytes at off, fewer only at end of file.
func PreadFull(fd int, b []byte, off int64) (int, error) {
	n := 0
	for n < len(b) {
		m, err := unix.Pread(fd, b[n:], off+int64(n))
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return n, err
		}
		if m == 0 {
			break
		}
		n += m
	}
	return n, nil
}

// sameContent compares the open source in with the destination file name,
// streaming, and returns how many bytes it read from both.
func sameContent(in, dirfd int, name string, size int64) (bool, int64, error) {
	fd, err := openAt(dirfd, name, unix.O_RDONLY|unix.O_NOFOLLOW|unix.O_NONBLOCK|unix.O_NOCTTY|unix.O_NOATIME, 0)
	if err == unix.EPERM {
		fd, err = openAt(dirfd, name, unix.O_RDONLY|unix.O_NOFOLLOW|unix.O_NONBLOCK|unix.O_NOCTTY, 0)
	}
	if err != nil {
		return false, 0, err
	}
	defer unix.Close(fd)
	a, b := bufs.Get().(*[]byte), bufs.Get().(*[]byte)
	defer bufs.Put(a)
	defer bufs.Put(b)
	var read int64
	for off := int64(0); off < size; {
		n, err := PreadFull(in, *a, off)
		read += int64(n)
		if err != nil {
			return false, read, err
		}
		m, err := PreadFull(fd, (*b)[:n], off)
		read += int64(m)
		if err != nil {
			return false, read, err
		}
		if n == 0 || m != n || !bytes.Equal((*a)[:n], (*b)[:n]) {
			return n == 0 && m == 0, read, nil
		}
		off += int64(n)
	}
	return true, read, nil
}

// makeSymlink is the task creating a symlink (never followed) under a
// temporary name with the source's owner and mtime.
func (s *syncer) makeSymlink(d *dirH, name, target string, sm meta) (result, error) {
	for {
		tmp := tmpName()
		err := unix.Symlinkat(target, d.dstFd, tmp)
		if err == unix.EEXIST {
			continue
		}
		if err == nil {
			err = s.chown(func() error {
				return unix.Fchownat(d.dstFd, tmp, int(sm.uid), int(sm.gid), unix.AT_SYMLINK_NOFOLLOW)
			})
			if err == nil {
				err = unix.UtimesNanoAt(d.dstFd, tmp, mtimeSpec(sm.mtime), unix.AT_SYMLINK_NOFOLLOW)
			}
			if err != nil {
				unix.Unlinkat(d.dstFd, tmp, 0)
			}
		}
		if err != nil {
			return result{}, errAt("create symlink", d.path(name), err)
		}
		return result{tmp: tmp, kind: resSymlink}, nil
	}
}

// racyWindow is how recent a ctime may be at the moment its file is read
// for the record to vouch for it later (see defaultRacySlack).
func racyWindow(ctime int64) time.Duration {
	if ctime%int64(time.Second) == 0 {
		return racySlack // whole seconds: a coarse file system
	}
	return racySlackFine
}
