package chunks

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/efsd/efsd/internal/treesync"
)

// Supplier delivers chunks the destination lacks: the transport implements
// it. Fetch calls deliver once per wanted chunk, in any order, and returns
// once all were delivered or at the first error (deliver's included); it
// must not call deliver concurrently. The bytes passed to deliver are
// valid only during the call; deliver verifies
// them against their hash, so a Supplier need not be trusted.
type Supplier interface {
	Fetch(ctx context.Context, want []Chunk, deliver func(h Hash, data []byte) error) error
}

// Held supplies a file's whole content from memory, the bytes its list
// was cut and hashed from (List): Assemble writes them as they are, with
// no second hash and no search of the index for bytes already at hand (a
// small file that came inline with its batch).
type Held []byte

// Fetch delivers the wanted chunks from the held bytes.
func (h Held) Fetch(_ context.Context, want []Chunk, deliver func(Hash, []byte) error) error {
	for _, c := range want {
		if c.Offset+int64(c.Length) > int64(len(h)) {
			return fmt.Errorf("chunk at %d beyond the %d bytes held", c.Offset, len(h))
		}
		if err := deliver(c.Hash, h[c.Offset:c.Offset+int64(c.Length)]); err != nil {
			return err
		}
	}
	return nil
}

// Stats says where an assembled file's chunks came from.
type Stats struct {
	// Unchanged: the file already held the list's content and was left
	// untouched.
	Unchanged bool
	// Resumed chunks were already in place in the partial temporary of an
	// interrupted assembly; Local ones were copied from destination files
	// (through the index); Fetched ones came from the Supplier. Local and
	// Fetched count distinct chunks: a chunk repeated in the file is read
	// or fetched once and written at each of its offsets.
	Resumed, Local, Fetched                int
	ResumedBytes, LocalBytes, FetchedBytes int64
	// Stale counts index places found no longer holding their chunk.
	Stale int
	// Staged is the file waiting for Publish (AssembleOptions.Defer).
	Staged *Staged
}

// AssembleOptions tune Assemble. The zero value is usable.
type AssembleOptions struct {
	// Prepare, if set, is called with the temporary's descriptor and its
	// status when opened (owner, mode) once its content is complete,
	// before it is made durable and renamed: to set its mode, owner and
	// times, skipping what is already right.
	Prepare func(fd int, st *unix.Stat_t) error
	// Perm is the permission bits a new temporary is created with (less
	// the umask), 0o600 if zero. Given the file's own, its mode is usually
	// right from the start and Prepare has no chmod to make.
	Perm uint32
	// SyncEvery bounds how many bytes may be written to a temporary
	// between fdatasyncs, so that an assembly interrupted by a power loss
	// (not only a killed process, whose writes the page cache keeps) can
	// resume from most of what landed; 0 means 256 MiB, <0 never.
	SyncEvery int64
	// Rewrite makes a new file (a new inode) even when rel already holds
	// the content: to break a hard link the source no longer has.
	Rewrite bool

	// Defer leaves the temporary complete but neither synced nor renamed:
	// Stats.Staged is returned, for Index.Publish once the caller has made
	// the file system durable with one syncfs for many files (an fsync per
	// small file costs more than writing it).
	Defer bool

	beforeRename func() error // tests: a crash between durability and rename
}

// Staged is an assembled file waiting for Index.Publish: its content is
// complete under a temporary name, not yet durable, not yet under its
// real name.
type Staged struct {
	rel, tmp string
	l        []Chunk
	Size     int64
}

const defaultSyncEvery = 256 << 20

// partName is the temporary of an assembly of name, in name's directory:
// deterministic, so that an assembly interrupted (a killed process, a
// failed transfer) finds what it wrote, and under treesync.TmpPrefix, so
// that a leftover is a temporary like treesync's. It is named after the
// target, not the content: the partial of an older version of a file still
// serves the chunks the new version shares with it.
func partName(name string) string {
	h := Sum([]byte(name))
	return treesync.TmpPrefix + "part-" + h.String()[:32]
}

// ErrBusy is returned when another assembly of the same target is running
// (in this process or another).
var ErrBusy = errors.New("assembly of this file already running")

// Assemble makes the destination file rel (relative to the index's root)
// hold the content the chunk list l describes, with treesync's guarantees:
// the content is written under a temporary name in rel's directory, made
// durable (fsync) and only then renamed over rel, so rel never names
// content that is not on disk; a file that already holds the content is
// left untouched; no path leaves the root. Chunks come, in this order of
// preference, from the partial temporary of an interrupted assembly of rel,
// from destination files the index knows, and from sup; every one is
// verified against its hash before it is used. On error the temporary is
// kept, locked against concurrent assemblies, for the next attempt to
// resume from. The rename itself becomes durable with the caller's next
// Index.Sync (or any syncfs), as in treesync. rel's directory must exist.
func (ix *Index) Assemble(ctx context.Context, rel string, l []Chunk, sup Supplier, o *AssembleOptions) (st Stats, err error) {
	pfd, _, err := treesync.OpenParent(ix.root, rel)
	if err != nil {
		return st, fmt.Errorf("assemble %s: %w", rel, err)
	}
	defer unix.Close(pfd)
	return ix.AssembleAt(ctx, pfd, rel, l, sup, o)
}

// AssembleAt is Assemble for a caller that holds rel's parent open (pfd,
// from treesync.OpenParent or Parents): a run of files in one directory
// opens it once.
func (ix *Index) AssembleAt(ctx context.Context, pfd int, rel string, l []Chunk, sup Supplier, o *AssembleOptions) (st Stats, err error) {
	if o == nil {
		o = &AssembleOptions{}
	}
	if err := CheckList(l); err != nil {
		return st, fmt.Errorf("assemble %s: %w", rel, err)
	}
	base := rel[strings.LastIndexByte(rel, '/')+1:]
	if strings.HasPrefix(base, treesync.TmpPrefix) {
		return st, fmt.Errorf("assemble %s: name reserved for temporaries", rel)
	}
	size := Size(l)
	held, isHeld := sup.(Held)
	if isHeld && int64(len(held)) != size {
		return st, fmt.Errorf("assemble %s: %d bytes held for a list of %d", rel, len(held), size)
	}
	buf := make([]byte, 0, maxLength(l)) // not MaxSize: most files are small

	if !o.Rewrite && ix.mayHold(rel, l) && ix.holds(pfd, base, l, size, buf) {
		ix.Set(rel, l)
		return Stats{Unchanged: true}, nil
	}

	fd, tmp, tst, err := openTemp(pfd, base, o.Perm)
	if err != nil {
		return st, fmt.Errorf("assemble %s: %w", rel, err)
	}
	defer unix.Close(fd)

	// Which chunks does the partial already hold? Read before truncating:
	// ftruncate to the new size keeps what lies below it.
	done := make([]bool, len(l))
	for i, c := range l {
		if c.Offset+int64(c.Length) > tst.Size {
			break
		}
		b := buf[:c.Length]
		if n, err := treesync.PreadFull(fd, b, c.Offset); err == nil && n == c.Length && Sum(b) == c.Hash {
			done[i] = true
			st.Resumed++
			st.ResumedBytes += int64(c.Length)
		}
	}
	// A new temporary needs no truncation: the chunks, written at their
	// offsets, make it size bytes long (a temporary left incomplete keeps
	// a prefix of its chunks, which the loop above finds).
	if tst.Size != 0 && tst.Size != size {
		if err := unix.Ftruncate(fd, size); err != nil {
			return st, fmt.Errorf("assemble %s: truncate temporary: %w", rel, err)
		}
	}

	w := &partWriter{fd: fd, l: l, done: done, syncEvery: o.SyncEvery}
	if w.syncEvery == 0 {
		w.syncEvery = defaultSyncEvery
	}
	// Where each hash goes in this file (a chunk may repeat, e.g. zeros).
	at := map[Hash][]int{}
	for i, c := range l {
		if !done[i] {
			at[c.Hash] = append(at[c.Hash], i)
		}
	}
	w.at = at

	var want []Chunk
	for i, c := range l {
		if done[i] || len(at[c.Hash]) == 0 || at[c.Hash][0] != i {
			continue // landed, or a repeat: written with its first
		}
		if err := ctx.Err(); err != nil {
			return st, fmt.Errorf("assemble %s: %w", rel, err)
		}
		if isHeld {
			want = append(want, c)
			continue
		}
		b := buf[:c.Length]
		ok, stale := ix.read(c.Hash, b)
		st.Stale += stale
		if !ok {
			want = append(want, c)
			continue
		}
		if err := w.put(c.Hash, b); err != nil {
			return st, fmt.Errorf("assemble %s: %w", rel, err)
		}
		st.Local++
		st.LocalBytes += int64(c.Length)
	}

	if len(want) > 0 {
		if sup == nil {
			return st, fmt.Errorf("assemble %s: %d chunks missing and no supplier", rel, len(want))
		}
		wanted := make(map[Hash]bool, len(want))
		for _, c := range want {
			wanted[c.Hash] = true
		}
		err := sup.Fetch(ctx, want, func(h Hash, data []byte) error {
			if !wanted[h] {
				return fmt.Errorf("supplier sent chunk %s, not asked for or sent twice", h)
			}
			if !isHeld && Sum(data) != h {
				return fmt.Errorf("supplier: %w %s", ErrFrameHash, h)
			}
			if err := w.put(h, data); err != nil {
				return err
			}
			delete(wanted, h)
			st.Fetched++
			st.FetchedBytes += int64(len(data))
			return nil
		})
		if err == nil && len(wanted) > 0 {
			err = fmt.Errorf("supplier delivered %d of %d chunks", len(want)-len(wanted), len(want))
		}
		if err != nil {
			w.sync() // what landed survives a power loss too, for the next attempt
			return st, fmt.Errorf("assemble %s: fetch: %w", rel, err)
		}
	}

	st.Staged, err = ix.finishTemp(pfd, fd, &tst, rel, tmp, l, w, o)
	if err != nil {
		return st, fmt.Errorf("assemble %s: %w", rel, err)
	}
	return st, nil
}

// openTemp opens (creating it with perm, 0o600 if zero) and locks the
// temporary of base in the directory pfd, and returns it with its name
// and status. The lock (released with the descriptor, also when the
// process dies) keeps two assemblies of one target from writing one
// temporary.
func openTemp(pfd int, base string, perm uint32) (fd int, tmp string, tst unix.Stat_t, err error) {
	tmp = partName(base)
	perm &= 0o777
	if perm == 0 {
		perm = 0o600
	}
	fd, err = treesync.OpenAt(pfd, tmp, unix.O_RDWR|unix.O_CREAT|unix.O_NOFOLLOW|unix.O_NOCTTY, perm)
	if err != nil {
		return -1, "", tst, fmt.Errorf("create temporary: %w", err)
	}
	fail := func(e error) (int, string, unix.Stat_t, error) {
		unix.Close(fd)
		return -1, "", tst, e
	}
	if err := unix.Flock(fd, unix.LOCK_EX|unix.LOCK_NB); err != nil {
		if err == unix.EWOULDBLOCK {
			return fail(ErrBusy)
		}
		return fail(fmt.Errorf("lock temporary: %w", err))
	}
	if err := unix.Fstat(fd, &tst); err != nil {
		return fail(err)
	}
	if tst.Mode&unix.S_IFMT != unix.S_IFREG || tst.Nlink != 1 {
		// Not something this package made: never write through it.
		return fail(fmt.Errorf("temporary %s is not a plain file", tmp))
	}
	return fd, tmp, tst, nil
}

// finishTemp ends an assembly whose temporary fd (tmp in the directory
// pfd, status tst when opened) holds l's content: Prepare, then either
// staged for Publish (Defer: returned) or made durable and renamed over
// rel. The temporary serves its chunks to other assemblies until it is
// published.
func (ix *Index) finishTemp(pfd, fd int, tst *unix.Stat_t, rel, tmp string, l []Chunk, w *partWriter, o *AssembleOptions) (*Staged, error) {
	if o.Prepare != nil {
		if err := o.Prepare(fd, tst); err != nil {
			return nil, fmt.Errorf("prepare: %w", err)
		}
	}
	if o.Defer {
		if w.unkicked >= kickTail {
			w.kick()
		}
		tmpRel := tmp
		if dir := parentDir(rel); dir != "" {
			tmpRel = dir + "/" + tmp
		}
		ix.Set(tmpRel, l)
		return &Staged{rel: rel, tmp: tmpRel, l: l, Size: Size(l)}, nil
	}
	if err := ignoringEINTR(func() error { return unix.Fsync(fd) }); err != nil {
		return nil, fmt.Errorf("fsync: %w", err)
	}
	if o.beforeRename != nil {
		if err := o.beforeRename(); err != nil {
			return nil, err
		}
	}
	if err := unix.Renameat(pfd, tmp, pfd, rel[strings.LastIndexByte(rel, '/')+1:]); err != nil {
		return nil, fmt.Errorf("rename: %w", err)
	}
	ix.Set(rel, l)
	return nil, nil
}

// mayHold says whether rel is worth checking for l's content: when the
// index knows rel with another list, rel is taken to differ (at worst an
// identical file that changed behind the index's back is rewritten), which
// spares reading the old version twice.
func (ix *Index) mayHold(rel string, l []Chunk) bool {
	ix.mu.Lock()
	defer ix.mu.Unlock()
	have, ok := ix.byPath[rel]
	if !ok {
		return true
	}
	if len(have) != len(l) {
		return false
	}
	for i := range l {
		if have[i] != l[i] {
			return false
		}
	}
	return true
}

// holds says whether base in the directory pfd is a regular file already
// holding l's content (verified by hashing it).
func (ix *Index) holds(pfd int, base string, l []Chunk, size int64, buf []byte) bool {
	fd, err := openRead(pfd, base)
	if err != nil {
		return false
	}
	defer unix.Close(fd)
	var s unix.Stat_t
	if unix.Fstat(fd, &s) != nil || s.Mode&unix.S_IFMT != unix.S_IFREG || s.Size != size {
		return false
	}
	for _, c := range l {
		b := buf[:c.Length]
		if n, err := treesync.PreadFull(fd, b, c.Offset); err != nil || n != c.Length || Sum(b) != c.Hash {
			return false
		}
	}
	return true
}

// partWriter writes verified chunks into the temporary at every offset
// their hash has in the list.
type partWriter struct {
	fd        int
	l         []Chunk
	done      []bool
	at        map[Hash][]int
	syncEvery int64
	unsynced  int64
	unkicked  int64 // bytes written since writeback was last started
}

// Writeback of a temporary is started (not waited for) every kickEvery
// bytes written, and at its end once it has kickTail bytes not started:
// the syncfs that makes staged files durable then finds most of their
// bytes on their way to the disk already, instead of all of them dirty in
// the page cache. Small files are left to that syncfs, which writes them
// out together.
const (
	kickEvery = 8 << 20
	kickTail  = 1 << 20
)

// kick starts writeback of what was written (sync_file_range's
// SYNC_FILE_RANGE_WRITE: no waiting, no durability promised). Errors are
// not reported here: the fsync or syncfs that follows reports them.
func (w *partWriter) kick() {
	w.unkicked = 0
	unix.SyncFileRange(w.fd, 0, 0, unix.SYNC_FILE_RANGE_WRITE)
}

func (w *partWriter) put(h Hash, data []byte) error {
	for _, i := range w.at[h] {
		if w.done[i] {
			continue
		}
		if err := w.write(data, w.l[i].Offset); err != nil {
			return err
		}
		w.done[i] = true
	}
	return nil
}

// write writes data at off, fdatasyncing every syncEvery bytes and
// starting writeback every kickEvery.
func (w *partWriter) write(data []byte, off int64) error {
	if err := pwriteFull(w.fd, data, off); err != nil {
		return fmt.Errorf("write temporary: %w", err)
	}
	w.unsynced += int64(len(data))
	w.unkicked += int64(len(data))
	if w.syncEvery > 0 && w.unsynced >= w.syncEvery {
		return w.sync()
	}
	if w.unkicked >= kickEvery {
		w.kick()
	}
	return nil
}

func (w *partWriter) sync() error {
	w.unsynced = 0
	if err := ignoringEINTR(func() error { return unix.Fdatasync(w.fd) }); err != nil {
		return fmt.Errorf("fdatasync temporary: %w", err)
	}
	return nil
}

func pwriteFull(fd int, b []byte, off int64) error {
	for len(b) > 0 {
		n, err := unix.Pwrite(fd, b, off)
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return err
		}
		b, off = b[n:], off+int64(n)
	}
	return nil
}

func ignoringEINTR(f func() error) error {
	for {
		if err := f(); err != unix.EINTR {
			return err
		}
	}
}

// maxLength is the length of l's longest chunk.
func maxLength(l []Chunk) int {
	n := 0
	for _, c := range l {
		n = max(n, c.Length)
	}
	return n
}

// parentDir is rel's directory, "" at the root.
func parentDir(rel string) string {
	if i := strings.LastIndexByte(rel, '/'); i >= 0 {
		return rel[:i]
	}
	return ""
}

// Publish renames staged files into place. The caller must first have
// made their contents durable (Index.Sync, syncfs): a real name never
// points at content that is not on disk. The renames become durable with
// the next syncfs. A staged file whose temporary is gone (a newer
// assembly took it over) is skipped.
func (ix *Index) Publish(ss []*Staged) error {
	parents := treesync.NewParents(ix.root) // staged in walk order: a directory's files together
	defer parents.Close()
	for _, st := range ss {
		ix.Remove(st.tmp)
		pfd, base, err := parents.Open(st.rel)
		if err != nil {
			return fmt.Errorf("publish %s: %w", st.rel, err)
		}
		tmpBase := st.tmp[strings.LastIndexByte(st.tmp, '/')+1:]
		err = unix.Renameat(pfd, tmpBase, pfd, base)
		if err == unix.ENOENT {
			continue
		}
		if err != nil {
			return fmt.Errorf("publish %s: rename: %w", st.rel, err)
		}
		ix.Set(st.rel, st.l)
	}
	return nil
}
