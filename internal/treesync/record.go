package treesync

import (
	"encoding/binary"
	"fmt"
	"hash/crc32"
	"io"
	"os"
	"path/filepath"
	"sync"
	"time"

	"golang.org/x/sys/unix"
)

// Record is the durable memory, for one source/destination pair, of what
// Sync copied: for each destination file, the source inode and inode
// change time (ctime) it holds the bytes of, and its own ctime once Sync
// had written it. Users can set mtimes (cp -p, touch -r, tar -x) but not
// ctimes: every write, chmod, chown, utimes, link and rename moves a
// file's ctime to the present. So a file whose source (inode, ctime) and
// destination (inode, ctime) both still match the record was not touched
// on either side since it was copied, and is skipped for one lstat per
// side; any other file whose size matches is compared by content, never
// trusted on size and mtime alone. Without a Record, Sync compares every
// such file.
//
// The record is a file: a header naming the roots (their inode numbers, so
// that a record of other trees, or of a restored copy of the data
// directory, is discarded rather than trusted) and an append-only log of
// fixed-size, checksummed entries, keyed by destination inode; a later
// entry for an inode replaces an earlier one. Entries are appended only
// after what they describe is durable in the destination (after the
// batch's syncfs and rename), and made durable at the end of each pass
// that added any (by the pass's final syncfs when the record is on the
// destination's file system, else by fsync): a crash can lose entries
// (costing a content comparison) but never make one claim a copy that did
// not land. A torn
// tail is dropped on load. The log is rewritten when it holds more than
// twice as many entries as there are live files.
//
// The whole record is held in memory: about 70 bytes per file.
type Record struct {
	mu   sync.Mutex // held by the Sync using the record
	path string     // "" for a record in memory only
	f    *os.File

	srcRoot, dstRoot uint64
	scrubbed         int64 // Unix ns of the last complete verification; 0: never
	// The entries, in the order they were first written (roughly the
	// walk's, so that a pass reads them nearly in sequence), indexed by
	// destination inode; a small index keeps lookups in cache.
	idx      map[uint64]int32
	ents     []recEntry
	gen      uint32 // the current pass; entries it writes (or marks) carry it
	marking  bool   // this pass marks the entries it vouches for, to drop the others at its end
	live     int    // entries vouched for or written in the current pass
	lastLive int    // live at the end of the last complete pass
	logged   int    // entries in the file
	buf      []byte // entries not yet written
	unsynced bool   // written since the last fsync
	dev      uint64 // the file's device: a syncfs of it makes the file durable too
	broken   error  // a write failed: the record is no longer appended to
}

// recEntry is what the destination inode dstIno was made from.
type recEntry struct {
	dstIno             uint64
	srcIno             uint64
	srcCtime, dstCtime int64
	racy               bool // srcCtime was too recent at the copy to rule out a later write with the same ctime
	gen                uint32
}

const (
	recMagic     = "EFSDREC1"
	recHeaderLen = 8 + 8 + 8 + 8 + 4 // magic, srcRoot, dstRoot, scrubbed, crc
	recEntryLen  = 8 + 8 + 8 + 8 + 4 + 4
)

// recCompactMin keeps small records from being rewritten often (a
// variable for tests).
var recCompactMin = 4096

// OpenRecord opens the record at path, creating it (and its directory)
// if missing. A record that cannot be parsed is started afresh: it is an
// optimisation, and without it Sync compares contents. path "" gives a
// record held in memory only.
func OpenRecord(path string) (*Record, error) {
	r := &Record{path: path, idx: map[uint64]int32{}}
	if path == "" {
		return r, nil
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, fmt.Errorf("create record directory: %w", err)
	}
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("open record: %w", err)
	}
	r.f = f
	r.dev = fileDev(f)
	b, err := io.ReadAll(f)
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("read record %s: %w", path, err)
	}
	n, ok := r.parse(b)
	// Until a pass says how many entries are live, all that were loaded
	// count as such (the log is compacted when it holds many duplicates).
	r.lastLive = len(r.ents)
	if !ok {
		if err := r.reset(0, 0); err != nil {
			f.Close()
			return nil, err
		}
		return r, nil
	}
	if n < len(b) { // a torn tail: appends go after the last good entry
		err := f.Truncate(int64(n))
		if err == nil {
			_, err = f.Seek(int64(n), io.SeekStart)
		}
		if err != nil {
			f.Close()
			return nil, fmt.Errorf("truncate record %s: %w", path, err)
		}
	}
	return r, nil
}

// parse loads a record file's content and returns the length of its valid
// part; false if its header is unusable. A torn or corrupt entry ends the
// log there.
func (r *Record) parse(b []byte) (int, bool) {
	if len(b) < recHeaderLen || string(b[:8]) != recMagic ||
		crc32.ChecksumIEEE(b[:recHeaderLen-4]) != binary.LittleEndian.Uint32(b[recHeaderLen-4:]) {
		return 0, false
	}
	n := recHeaderLen
	r.srcRoot = binary.LittleEndian.Uint64(b[8:])
	r.dstRoot = binary.LittleEndian.Uint64(b[16:])
	r.scrubbed = int64(binary.LittleEndian.Uint64(b[24:]))
	b = b[recHeaderLen:]
	for len(b) >= recEntryLen {
		e := b[:recEntryLen]
		if crc32.ChecksumIEEE(e[:recEntryLen-4]) != binary.LittleEndian.Uint32(e[recEntryLen-4:]) {
			break
		}
		r.set(recEntry{
			dstIno:   binary.LittleEndian.Uint64(e),
			srcIno:   binary.LittleEndian.Uint64(e[8:]),
			srcCtime: int64(binary.LittleEndian.Uint64(e[16:])),
			dstCtime: int64(binary.LittleEndian.Uint64(e[24:])),
			racy:     e[32]&1 != 0,
		})
		r.logged++
		b = b[recEntryLen:]
		n += recEntryLen
	}
	return n, true
}

func (r *Record) header() []byte {
	h := make([]byte, recHeaderLen)
	copy(h, recMagic)
	binary.LittleEndian.PutUint64(h[8:], r.srcRoot)
	binary.LittleEndian.PutUint64(h[16:], r.dstRoot)
	binary.LittleEndian.PutUint64(h[24:], uint64(r.scrubbed))
	binary.LittleEndian.PutUint32(h[recHeaderLen-4:], crc32.ChecksumIEEE(h[:recHeaderLen-4]))
	return h
}

func appendEntry(b []byte, e recEntry) []byte {
	var x [recEntryLen]byte
	binary.LittleEndian.PutUint64(x[0:], e.dstIno)
	binary.LittleEndian.PutUint64(x[8:], e.srcIno)
	binary.LittleEndian.PutUint64(x[16:], uint64(e.srcCtime))
	binary.LittleEndian.PutUint64(x[24:], uint64(e.dstCtime))
	if e.racy {
		x[32] = 1
	}
	binary.LittleEndian.PutUint32(x[recEntryLen-4:], crc32.ChecksumIEEE(x[:recEntryLen-4]))
	return append(b, x[:]...)
}

// reset forgets everything and binds the record to new roots, durably.
func (r *Record) reset(srcRoot, dstRoot uint64) error {
	r.srcRoot, r.dstRoot, r.scrubbed = srcRoot, dstRoot, 0
	clear(r.idx)
	r.ents = r.ents[:0]
	r.buf, r.logged, r.live, r.lastLive, r.broken = r.buf[:0], 0, 0, 0, nil
	if r.f == nil {
		return nil
	}
	return r.rewrite()
}

// rewrite replaces the file with the header and the entries written or
// marked in the current pass (all of them after a reset, when there are
// none), through a temporary file renamed over it.
func (r *Record) rewrite() error {
	r.dropUnmarked()
	b := r.header()
	for _, e := range r.ents {
		b = appendEntry(b, e)
	}
	n := len(r.ents)
	tmp := r.path + ".tmp"
	f, err := os.OpenFile(tmp, os.O_RDWR|os.O_CREATE|os.O_TRUNC, 0o600)
	if err == nil {
		if _, err = f.Write(b); err == nil {
			err = f.Sync()
		}
		if err == nil {
			err = os.Rename(tmp, r.path)
		}
		if err == nil {
			err = syncDir(filepath.Dir(r.path))
		}
		if err != nil {
			f.Close()
			os.Remove(tmp)
		}
	}
	if err != nil {
		return fmt.Errorf("rewrite record %s: %w", r.path, err)
	}
	if _, err := f.Seek(0, io.SeekEnd); err != nil {
		f.Close()
		return fmt.Errorf("rewrite record %s: %w", r.path, err)
	}
	r.f.Close()
	r.f, r.logged, r.buf, r.unsynced = f, n, r.buf[:0], false
	r.dev = fileDev(f)
	return nil
}

// fileDev is the device of an open file; 0 if unknown.
func fileDev(f *os.File) uint64 {
	var st unix.Stat_t
	if unix.Fstat(int(f.Fd()), &st) != nil {
		return 0
	}
	return st.Dev
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}

// Close closes the record's file.
func (r *Record) Close() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.f == nil {
		return nil
	}
	err := r.f.Close()
	r.f = nil
	return err
}

// Scrubbed is when the last complete verification (Options.Verify) of the
// record's trees ended; zero if none did since the record was started.
func (r *Record) Scrubbed() time.Time {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.scrubbed == 0 {
		return time.Time{}
	}
	return time.Unix(0, r.scrubbed)
}

// SetScrubbed durably records when a verification ended (or, for a new
// record, when the next one counts from).
func (r *Record) SetScrubbed(t time.Time) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.scrubbed = t.UnixNano()
	if r.f == nil {
		return nil
	}
	if _, err := r.f.WriteAt(r.header(), 0); err != nil {
		return fmt.Errorf("write record header: %w", err)
	}
	if err := r.f.Sync(); err != nil {
		return fmt.Errorf("sync record: %w", err)
	}
	return nil
}

// begin starts a pass over the given roots (inode numbers); the record is
// emptied if it described other roots.
func (r *Record) begin(srcRoot, dstRoot uint64) error {
	r.mu.Lock()
	if r.srcRoot != srcRoot || r.dstRoot != dstRoot {
		if err := r.reset(srcRoot, dstRoot); err != nil {
			r.mu.Unlock()
			return err
		}
	}
	r.gen++
	r.live = 0
	// Marking costs a map write per file, so only a pass that may end
	// with a compaction marks: when the log (or, in memory, the map) holds
	// more than twice the entries the last complete pass needed.
	n := r.logged
	if r.f == nil {
		n = len(r.ents)
	}
	r.marking = n > 2*r.lastLive+recCompactMin
	return nil
}

// trusted reports whether the destination file dm still holds what it was
// given from the source file sm: neither was touched since.
func (r *Record) trusted(sm, dm meta) bool {
	i, ok := r.idx[dm.ino]
	if !ok {
		return false
	}
	e := &r.ents[i]
	if e.racy || e.srcIno != sm.ino || e.srcCtime != sm.ctime || e.dstCtime != dm.ctime {
		return false
	}
	r.live++
	if r.marking {
		e.gen = r.gen
	}
	return true
}

// set stores e, replacing the entry of its destination inode; it reports
// whether that entry was written or marked in the current pass.
func (r *Record) set(e recEntry) bool {
	if i, ok := r.idx[e.dstIno]; ok {
		cur := r.ents[i].gen == r.gen
		r.ents[i] = e
		return cur
	}
	r.idx[e.dstIno] = int32(len(r.ents))
	r.ents = append(r.ents, e)
	return false
}

// dropUnmarked keeps only the entries written or marked in the current
// pass, in their order.
func (r *Record) dropUnmarked() {
	kept := r.ents[:0]
	clear(r.idx)
	for _, e := range r.ents {
		if e.gen == r.gen {
			r.idx[e.dstIno] = int32(len(kept))
			kept = append(kept, e)
		}
	}
	clear(r.ents[len(kept):])
	r.ents = kept
}

// lookup returns the entry of a destination inode.
func (r *Record) lookup(ino uint64) (recEntry, bool) {
	i, ok := r.idx[ino]
	if !ok {
		return recEntry{}, false
	}
	return r.ents[i], true
}

// put records that the destination file dm holds the bytes of the source
// inode srcIno as of its ctime srcCtime. Call only once that is durable,
// or will be before the end of the pass with nothing else claimed in
// between (entries reach the file only through flush).
func (r *Record) put(dm meta, srcIno uint64, srcCtime int64, racy bool) {
	e := recEntry{dstIno: dm.ino, srcIno: srcIno, srcCtime: srcCtime, dstCtime: dm.ctime, racy: racy, gen: r.gen}
	if !r.set(e) {
		r.live++
	}
	if r.f != nil {
		r.buf = appendEntry(r.buf, e)
	}
}

// touched notes that Sync itself moved the ctime of the destination file
// dm from prev (a link or a metadata change, which leave its content): an
// entry that held for prev holds for dm.
func (r *Record) touched(prev int64, dm meta) {
	if e, ok := r.lookup(dm.ino); ok && e.dstCtime == prev && prev != dm.ctime {
		r.put(dm, e.srcIno, e.srcCtime, e.racy)
	}
}

// flush writes the pending entries to the file (not yet durably). A write
// error stops appending; end reports it.
func (r *Record) flush() {
	if len(r.buf) == 0 || r.f == nil || r.broken != nil {
		return
	}
	if _, err := r.f.Write(r.buf); err != nil {
		r.broken = fmt.Errorf("append to record %s: %w", r.path, err)
		return
	}
	r.logged += len(r.buf) / recEntryLen
	r.buf, r.unsynced = r.buf[:0], true
}

// end finishes a pass: the new entries are made durable, and after a
// complete pass the log is compacted if it has grown to more than twice
// the live entries. synced is the device a syncfs has flushed since the
// last flush (the destination's, at the end of a complete pass; 0 if
// none): a record on it needs no fsync of its own.
func (r *Record) end(complete bool, synced uint64) error {
	defer r.mu.Unlock()
	if len(r.buf) == 0 && synced != 0 && synced == r.dev {
		r.unsynced = false
	}
	r.flush()
	if err := r.broken; err != nil {
		// Start afresh at the next pass: entries may be missing from the file.
		r.srcRoot, r.dstRoot = 0, 0
		return err
	}
	if complete {
		r.lastLive = r.live
	}
	if r.f == nil {
		if complete && r.marking {
			r.dropUnmarked()
		}
		return nil
	}
	if complete && r.marking && r.logged > 2*r.live+recCompactMin {
		return r.rewrite()
	}
	if r.unsynced {
		if err := r.f.Sync(); err != nil {
			r.srcRoot, r.dstRoot = 0, 0
			return fmt.Errorf("sync record %s: %w", r.path, err)
		}
		r.unsynced = false
	}
	return nil
}
