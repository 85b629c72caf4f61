package remotesync

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/gob"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sys/unix"

	"github.com/efsd/efsd/internal/chunks"
	"github.com/efsd/efsd/internal/treesync"
)

// SenderOptions tune a Sender. The zero value is usable.
type SenderOptions struct {
	// Workers bounds the files chunked, and sent, concurrently; 0 means 4.
	Workers int
	// Now times passes for the log. (Whether a file is too recently
	// changed to be vouched for is judged by the real clock, which the
	// kernel's timestamps come from.)
	Now    func() time.Time
	Logger *slog.Logger
}

// PassOptions tune one pass.
type PassOptions struct {
	// Start is the pass's start time on the source's clock, handed to the
	// receiver's OnCommit.
	Start time.Time
	// Verify makes a scrub: a full listing, every file compared by
	// content at the receiver (its chunk list against its bytes).
	Verify bool
	// OnDifference is called with each file the receiver found different
	// by content although it looked the same (Verify).
	OnDifference func(rel string)
	// Progress is called after each request of the pass with the counts
	// so far, one call at a time; it must be cheap.
	Progress func(Stats)
}

// Sender pushes the source tree root to a receiver: one per configuration
// at the source. It keeps in statePath ("" keeps it in memory) the state
// the receiver last acknowledged: written atomically (rename) with a
// checksum after each acknowledged pass, loaded at start. One pass runs at
// a time.
type Sender struct {
	root      string
	statePath string
	o         SenderOptions
	log       *slog.Logger

	mu        sync.Mutex // held by a pass
	st        senderState
	epoch     uint64          // this Sender's identity towards receivers
	pending   map[string]bool // paths sent since the last acknowledged pass
	forceFull bool            // a full listing was interrupted
	// known is the last walk's entries, acknowledged or not: a pass
	// retried after a failure does not read unchanged files again.
	known  map[string]*srcEntry
	closed bool
	zstd   *chunks.Compressor // shared by the pass's chunk streams
}

// senderState is the acknowledged state of the tree: entries by path ("" is
// the root), the generation the receiver committed them under.
type senderState struct {
	Gen     uint64
	Entries map[string]*srcEntry
}

// srcEntry is what the receiver holds for a path, plus the source's
// identity of a file (inode, ctime) to tell whether it changed since.
type srcEntry struct {
	Type     string
	Mode     uint32
	UID, GID uint32
	Size     int64
	Mtime    int64
	Target   string
	Nlink    uint32
	List     []chunks.Chunk
	Ino      uint64
	Ctime    int64
	Racy     bool // the ctime was too recent when the file was read to vouch for it later
	// data is a small file's bytes as chunked, kept (within the pass's
	// keepBudget) until its chunks are sent: not opened and read twice.
	data       []byte
	Dev        uint64
	chunkError error
	// ready is closed once a file to chunk was chunked (or given up):
	// the pass sends entries while later files are still being read.
	ready chan struct{}
	// whole: the pass offers the file whole (wireEntry.Whole), not
	// chunked; its list comes back from the receiver.
	whole bool
}

// holdsFile says whether the acknowledged state has a regular file.
func (st *senderState) holdsFile() bool {
	for _, e := range st.Entries {
		if e.Type == typeFile {
			return true
		}
	}
	return false
}

const stateMagic = "EFSDRSS3" // 2: lists of 128 KiB chunks on average; 3: of 64 KiB, normalization level 1 (the receiver's index too: both rechunk once)

// NewSender loads the state at statePath (a missing or damaged one starts
// afresh: the next pass is a full listing).
func NewSender(root, statePath string, o SenderOptions) (*Sender, error) {
	if o.Workers <= 0 {
		o.Workers = 4
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	z, err := chunks.NewCompressor()
	if err != nil {
		return nil, err
	}
	s := &Sender{root: root, statePath: statePath, o: o, log: o.Logger, epoch: randomGen(), pending: map[string]bool{}, zstd: z}
	s.st = senderState{Entries: map[string]*srcEntry{}}
	if statePath != "" {
		b, err := os.ReadFile(statePath)
		if err != nil && !errors.Is(err, os.ErrNotExist) {
			z.Close()
			return nil, fmt.Errorf("read sender state: %w", err)
		}
		if err == nil {
			if st, ok := decodeState(b); ok {
				s.st = st
			} else {
				s.log.Warn("replication sender: state unreadable, starting afresh", "path", statePath)
			}
		}
	}
	return s, nil
}

func decodeState(b []byte) (senderState, bool) {
	var st senderState
	if len(b) < len(stateMagic)+sha256.Size || string(b[:len(stateMagic)]) != stateMagic {
		return st, false
	}
	body := b[len(stateMagic) : len(b)-sha256.Size]
	if sum := sha256.Sum256(body); !bytes.Equal(sum[:], b[len(b)-sha256.Size:]) {
		return st, false
	}
	if err := gob.NewDecoder(bytes.NewReader(body)).Decode(&st); err != nil || st.Entries == nil {
		return senderState{}, false
	}
	return st, true
}

func (s *Sender) saveState() error {
	if s.statePath == "" {
		return nil
	}
	var buf bytes.Buffer
	buf.WriteString(stateMagic)
	if err := gob.NewEncoder(&buf).Encode(&s.st); err != nil {
		return fmt.Errorf("encode sender state: %w", err)
	}
	sum := sha256.Sum256(buf.Bytes()[len(stateMagic):])
	buf.Write(sum[:])
	if err := writeFileAtomic(s.statePath, buf.Bytes()); err != nil {
		return fmt.Errorf("save sender state: %w", err)
	}
	return nil
}

// Close ends the sender; a pass after Close fails.
func (s *Sender) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil
	}
	s.closed = true
	return s.zstd.Close()
}

// pass is the state of one Pass.
type pass struct {
	s      *Sender
	ctx    context.Context
	t      Transport
	o      PassOptions
	rootFd int

	cur   map[string]*srcEntry
	order []string // paths in walk order: a directory before its entries

	// The chunks of a batch are sent in the background while the next
	// batches go (at most batchesAhead with chunks in flight), Workers
	// chunks requests at a time for the whole pass.
	jobs      sync.WaitGroup
	jobCtx    context.Context
	jobCancel context.CancelFunc
	ahead     chan struct{}
	sem       chan struct{}
	// sentBy maps a chunk to the done channel of the group of the pass
	// that sends it: a later group (of any batch) that needs it waits for
	// that one instead of sending it again.
	sentMu sync.Mutex
	sentBy map[chunks.Hash]chan struct{}

	mu     sync.Mutex // guards stats, jobErr and kept
	stats  Stats
	jobErr error // the first failure of background batches and chunk sends
	wire   atomic.Int64

	// Batches after the session's first go in the background, at most
	// batchesInFlight at a time, numbered from seq.
	inflight chan struct{}
	seq      atomic.Uint64
	large    sync.Mutex // held by a batch of a large JSON on the wire
	// empty: the receiver held no file when the session opened (its
	// first batch's reply); small: the chunks of the small files the pass
	// sent so far; known: the chunks of the small files the receiver
	// acknowledged, by their first 8 bytes (made when first needed). All
	// three are the sending loop's own.
	empty bool
	small map[chunks.Hash]bool
	known map[uint64]bool

	// kept are the entries chunked with their bytes kept (srcEntry.data),
	// keptBytes what they hold now.
	kept      []*srcEntry
	keptBytes atomic.Int64

	closing sync.WaitGroup // closeSource's closes in the background

	stopChunking func() // startChunking's, once started

	// wallClock, if set, replaces time.Now where a ctime is judged recent
	// (tests); not SenderOptions.Now: the kernel's timestamps are the
	// real clock's.
	wallClock func() time.Time
}

// realNow is the real clock, which the kernel's ctimes come from.
func (p *pass) realNow() time.Time {
	if p.wallClock != nil {
		return p.wallClock()
	}
	return time.Now()
}

// Small files' bytes are kept from chunking to sending up to these bounds:
// a file of at most keepMax bytes, keepBudget bytes in a pass at a time.
const (
	keepMax    = 64 << 10
	keepBudget = 16 << 20
)

// release drops e's kept bytes.
func (p *pass) release(e *srcEntry) {
	if e.data != nil {
		p.keptBytes.Add(-int64(len(e.data)))
		e.data = nil
	}
}

// Pass makes the receiver's tree identical to the source's. It returns nil
// only once the receiver acknowledged the commit: then the destination is
// identical (as of the walk) and durable.
func (s *Sender) Pass(ctx context.Context, t Transport, o PassOptions) (Stats, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return Stats{}, errors.New("sender closed")
	}
	fd, err := treesync.OpenAt(unix.AT_FDCWD, s.root, unix.O_RDONLY|unix.O_DIRECTORY, 0)
	if err != nil {
		return Stats{}, fmt.Errorf("open source %s: %w", s.root, err)
	}
	defer unix.Close(fd)
	t0 := s.o.Now()
	p := &pass{s: s, ctx: ctx, t: t, o: o, rootFd: fd, cur: map[string]*srcEntry{},
		ahead: make(chan struct{}, batchesAhead), sem: make(chan struct{}, s.o.Workers), inflight: make(chan struct{}, batchesInFlight)}
	err = p.run()
	p.mu.Lock()
	defer p.mu.Unlock()
	p.stats.WireBytes = p.wire.Load()
	st := p.stats
	if err == nil {
		s.log.Debug("replication pass acknowledged", "copied", st.FilesCopied, "bytes", st.BytesSent,
			"deleted", st.Deleted, "duration", s.o.Now().Sub(t0))
	}
	return st, err
}

func (p *pass) run() error {
	s := p.s
	if err := p.walk(); err != nil {
		return err
	}
	defer func() {
		if p.stopChunking != nil {
			p.stopChunking()
		}
		p.closing.Wait()
		for _, e := range p.kept { // not into the acknowledged state
			e.data = nil
		}
		// What was not chunked (a failed pass) is read again next time.
		for _, e := range p.cur {
			if e.chunkError != nil {
				e.List, e.Racy, e.chunkError = nil, true, nil
			}
		}
		s.known = p.cur
	}()
	full := s.forceFull || p.o.Verify || s.st.Gen == 0
	// The session opens with the first batch (one round trip less); a
	// receiver that wants everything listed has us start again.
	breq := beginReq{V: protoVersion, Base: s.st.Gen, Epoch: s.epoch, Full: full, Verify: p.o.Verify}
	session, err := p.send(&breq, full)
	if errors.Is(err, errNeedFull) {
		full, breq.Full = true, true
		p.resetChunking()
		session, err = p.send(&breq, true)
	}
	p.mu.Lock()
	p.stats.Full = full
	p.mu.Unlock()
	if err == nil {
		var cr commitResp
		err = p.call(OpCommit, commitReq{Session: session, Start: p.o.Start.UnixNano()}, &cr)
		if err == nil {
			p.update(cr.Stats)
		}
	}
	if err != nil {
		if full {
			s.forceFull = true
		}
		return err
	}
	// A pass with nothing to send keeps the generation (the receiver's
	// tree does not change), and the sender's state file is not rewritten.
	save := breq.Gen != s.st.Gen
	s.st = senderState{Gen: breq.Gen, Entries: p.cur}
	clear(s.pending)
	s.forceFull = false
	if !save {
		return nil
	}
	return s.saveState()
}

// resetChunking stops the chunking under way and forgets the files offered
// whole, for a pass that starts again as a full listing (the receiver
// may hold files after all): what was chunked stays, what was not (or was
// cancelled) is chunked again.
func (p *pass) resetChunking() {
	if p.stopChunking != nil {
		p.stopChunking()
		p.stopChunking = nil
	}
	for _, e := range p.cur {
		e.whole = false
		if e.ready != nil && e.chunkError != nil && !errors.Is(e.chunkError, errGone) {
			e.ready, e.chunkError = nil, nil
		}
	}
}

// update takes the receiver's counts.
func (p *pass) update(ws wireStats) {
	p.mu.Lock()
	p.stats.Stats = ws.Stats
	p.stats.ChunksLocal = ws.ChunksLocal
	p.stats.WireBytes = p.wire.Load()
	if p.o.Progress != nil {
		p.o.Progress(p.stats) // under the lock: one call at a time
	}
	p.mu.Unlock()
}

// countingReader counts the bytes read through it.
type countingReader struct {
	r io.Reader
	n *atomic.Int64
}

func (c countingReader) Read(b []byte) (int, error) {
	n, err := c.r.Read(b)
	c.n.Add(int64(n))
	return n, err
}

// call sends a JSON request and decodes the JSON reply.
func (p *pass) call(op string, req, resp any) error {
	b, err := json.Marshal(req)
	if err != nil {
		return err
	}
	return p.roundTrip(p.ctx, op, bytes.NewReader(append(b, '\n')), resp)
}

func (p *pass) roundTrip(ctx context.Context, op string, body io.Reader, resp any) error {
	rc, err := p.t.RoundTrip(ctx, op, countingReader{body, &p.wire})
	if err != nil {
		return fmt.Errorf("%s: %w", op, err)
	}
	defer rc.Close()
	if err := decodeReply(countingReader{rc, &p.wire}, resp); err != nil {
		return fmt.Errorf("%s: %w", op, err)
	}
	return nil
}

// walk lists the source tree into p.cur, one lstat per entry, by
// descriptor, never following a symlink. Names with treesync's
// temporaries' prefix are not replicated (the receiver refuses them).
func (p *pass) walk() error {
	var st unix.Stat_t
	if err := unix.Fstat(p.rootFd, &st); err != nil {
		return fmt.Errorf("stat source: %w", err)
	}
	p.add("", &st, "")
	groups := map[[2]uint64]string{}
	fd, err := unix.Dup(p.rootFd)
	if err != nil {
		return err
	}
	if err := p.walkDir(fd, "", groups); err != nil {
		return err
	}
	// A group's first file carries the number of names it has here.
	for _, e := range p.cur {
		if e.Type == typeLink {
			p.cur[e.Target].Nlink++
		}
	}
	return nil
}

func (p *pass) add(rel string, st *unix.Stat_t, target string) *srcEntry {
	e := &srcEntry{Mode: st.Mode & 0o7777, UID: st.Uid, GID: st.Gid, Mtime: st.Mtim.Nano(), Target: target}
	switch typeOf(st) {
	case unix.S_IFDIR:
		e.Type = typeDir
	case unix.S_IFLNK:
		e.Type = typeSymlink
	case unix.S_IFREG:
		e.Type = typeFile
		e.Size, e.Ino, e.Ctime, e.Dev, e.Nlink = st.Size, st.Ino, st.Ctim.Nano(), st.Dev, 1
	}
	p.cur[rel] = e
	p.order = append(p.order, rel)
	return e
}

func (p *pass) walkDir(fd int, rel string, groups map[[2]uint64]string) error {
	defer unix.Close(fd)
	names, err := readNames(fd)
	if err != nil {
		return errAt("read source directory", rel, err)
	}
	for _, name := range names {
		if err := p.ctx.Err(); err != nil {
			return err
		}
		if strings.HasPrefix(name, treesync.TmpPrefix) || len(name) > maxName {
			continue
		}
		path := name
		if rel != "" {
			path = rel + "/" + name
		}
		if len(path) > maxPath {
			continue
		}
		st, err := lstatAt(fd, name)
		if err == unix.ENOENT {
			continue
		}
		if err != nil {
			return errAt("stat source", path, err)
		}
		switch typeOf(&st) {
		case unix.S_IFDIR:
			sub, err := treesync.OpenAt(fd, name, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW, 0)
			if err == unix.ENOENT || err == unix.ENOTDIR || err == unix.ELOOP {
				continue // changed since stat'ed: the next pass
			}
			if err != nil {
				return errAt("open source directory", path, err)
			}
			p.add(path, &st, "")
			if err := p.walkDir(sub, path, groups); err != nil {
				return err
			}
		case unix.S_IFLNK:
			target, err := readlinkAt(fd, name)
			if err != nil || target == "" || len(target) > maxTarget {
				continue // vanished, replaced, or too long to replicate
			}
			p.add(path, &st, target)
		case unix.S_IFREG:
			if st.Nlink > 1 {
				key := [2]uint64{st.Dev, st.Ino}
				if first, ok := groups[key]; ok {
					e := p.add(path, &st, first)
					e.Type, e.Size, e.Nlink = typeLink, 0, 0
					continue
				}
				groups[key] = path
			}
			e := p.add(path, &st, "")
			old := p.s.known[path]
			if old == nil {
				old = p.s.st.Entries[path]
			}
			if old != nil && old.Type == typeFile && !old.Racy &&
				old.Ino == e.Ino && old.Dev == e.Dev && old.Ctime == e.Ctime && old.Size == e.Size && old.Mtime == e.Mtime {
				e.List = old.List
				e.Racy = false
			} else {
				e.List = nil
				e.Racy = true // marks "to chunk" until chunkFiles says otherwise
			}
		}
		// Sockets, FIFOs and devices are not replicated.
	}
	return nil
}

// racyWindow is treesync's rule: a ctime this recent when the file was
// read may be shared by a later write (coarse timestamps).
func racyWindow(ctime int64) time.Duration {
	if ctime%int64(time.Second) == 0 {
		return 2 * time.Second
	}
	return 100 * time.Millisecond
}

// markWhole chooses the files a pass sends whole to a receiver that held
// no file when the session opened: files to read (new or
// changed since the acknowledged state), larger than inlineMax, alone in
// their hard-link group, last changed long enough ago that a write while
// they are read would change their ctime (racyWindow: the check after
// the read relies on it), and sharing no content with another file of
// the pass as far as a sample tells — files of one size whose first,
// middle and last 4 KiB match are chunked, so that a copy's bytes cross
// once. (Content shared otherwise, e.g. by files of different sizes,
// crosses once per file in a first copy, as with rsync.)
func (p *pass) markWhole() {
	type cand struct {
		path string
		e    *srcEntry
	}
	bySize := map[int64][]cand{}
	now := p.realNow().UnixNano()
	for _, path := range p.order {
		e := p.cur[path]
		if e == nil || e.Type != typeFile || !e.Racy || e.Size <= inlineMax || e.Nlink > 1 ||
			now-e.Ctime < int64(racyWindow(e.Ctime)) {
			continue
		}
		bySize[e.Size] = append(bySize[e.Size], cand{path, e})
	}
	parents := treesync.NewParents(p.rootFd)
	defer parents.Close()
	for _, cs := range bySize {
		if len(cs) == 1 {
			cs[0].e.whole = true
			continue
		}
		keys := make([]chunks.Hash, len(cs))
		count := map[chunks.Hash]int{}
		for i, c := range cs {
			k, ok := p.sampleKey(parents, c.path, c.e.Size)
			if !ok {
				continue // chunked: the reader finds out what happened
			}
			keys[i] = k
			count[k]++
		}
		for i, c := range cs {
			if count[keys[i]] == 1 {
				c.e.whole = true
			}
		}
	}
}

// sampleKey hashes 4 KiB at the start, middle and end of the file at path
// of size bytes.
func (p *pass) sampleKey(parents *treesync.Parents, path string, size int64) (chunks.Hash, bool) {
	pfd, base, err := parents.Open(path)
	if err != nil {
		return chunks.Hash{}, false
	}
	fd, err := openRead(pfd, base)
	if err != nil {
		return chunks.Hash{}, false
	}
	defer unix.Close(fd)
	const n = 4 << 10
	b := make([]byte, 3*n)
	for i, off := range []int64{0, size/2 - n/2, size - n} {
		if got, err := treesync.PreadFull(fd, b[i*n:(i+1)*n], off); err != nil || got != n {
			return chunks.Hash{}, false
		}
	}
	return chunks.Sum(b), true
}

// startChunking chunks the files whose identity changed since the
// acknowledged state, in walk order, Workers at a time, closing each
// one's ready channel when done; stop cancels what has not started and
// waits for the rest.
func (p *pass) startChunking() (stop func()) {
	type file struct {
		path string
		e    *srcEntry
	}
	var todo []file
	for _, path := range p.order {
		if e := p.cur[path]; e.Type == typeFile && e.Racy && !e.whole {
			e.ready = make(chan struct{})
			todo = append(todo, file{path, e})
		}
	}
	ctx, cancel := context.WithCancel(p.ctx)
	var wg sync.WaitGroup
	// Workers take the files in walk order, each keeping its last
	// directory open (a directory's files come together).
	next := make(chan file)
	for range p.s.o.Workers {
		wg.Go(func() {
			parents := treesync.NewParents(p.rootFd)
			defer parents.Close()
			for f := range next {
				p.chunkFile(parents, f.path, f.e)
				close(f.e.ready)
			}
		})
	}
	wg.Go(func() {
		defer close(next)
		for _, f := range todo {
			select {
			case next <- f:
			case <-ctx.Done():
				f.e.chunkError = ctx.Err()
				close(f.e.ready)
			}
		}
	})
	return func() {
		cancel()
		wg.Wait()
	}
}

// chunked waits for the file at path to be chunked (calling flush if it
// is not yet), and settles what chunking found: a file gone or replaced
// since listed keeps what the receiver has (the next pass looks again).
// It returns the entry to send, or nil.
func (p *pass) chunked(path string, e *srcEntry, flush func() error) (*srcEntry, error) {
	select {
	case <-e.ready:
	default:
		if err := flush(); err != nil {
			return nil, err
		}
		select {
		case <-e.ready:
		case <-p.ctx.Done():
			return nil, p.ctx.Err()
		}
	}
	if e.chunkError == nil {
		return e, nil
	}
	if !errors.Is(e.chunkError, errGone) {
		return nil, e.chunkError
	}
	if old := p.s.st.Entries[path]; old != nil && old.Type == typeFile {
		keep := *old
		keep.Racy, keep.ready = true, nil
		p.cur[path] = &keep
		return &keep, nil
	}
	delete(p.cur, path)
	return nil, nil
}

var errGone = errors.New("gone")

// chunkFile reads one file; its identity is taken from the opened
// descriptor before reading, so a write during the read leaves a ctime the
// next pass sees as changed.
func (p *pass) chunkFile(parents *treesync.Parents, path string, e *srcEntry) {
	pfd, base, err := parents.Open(path)
	if err != nil {
		e.chunkError = errGone
		return
	}
	fd, err := openRead(pfd, base)
	if err != nil {
		if err == unix.ENOENT || err == unix.ELOOP || err == unix.ENXIO {
			e.chunkError = errGone
		} else {
			e.chunkError = errAt("open source", path, err)
		}
		return
	}
	var st unix.Stat_t
	defer func() { p.closeSource(fd, st.Size) }()
	if err := unix.Fstat(fd, &st); err != nil || typeOf(&st) != unix.S_IFREG || st.Ino != e.Ino {
		e.chunkError = errGone
		return
	}
	e.Size, e.Mtime, e.Ctime, e.Mode, e.UID, e.GID = st.Size, st.Mtim.Nano(), st.Ctim.Nano(), st.Mode&0o7777, st.Uid, st.Gid
	// The real clock: it is compared with the kernel's timestamps.
	e.Racy = e.Ctime > p.realNow().Add(-racyWindow(e.Ctime)).UnixNano()
	var r io.Reader = &fdReader{fd: fd, left: st.Size}
	var data []byte
	if st.Size > 0 && st.Size <= keepMax {
		if p.keptBytes.Add(st.Size) <= keepBudget {
			data = make([]byte, st.Size)
			n, err := treesync.PreadFull(fd, data, 0)
			if err != nil {
				p.keptBytes.Add(-st.Size)
				e.chunkError = errAt("read source", path, err)
				return
			}
			data = data[:n] // shorter: it shrank, as the size check below finds
			r = bytes.NewReader(data)
		} else {
			p.keptBytes.Add(-st.Size)
		}
	}
	l, err := chunks.List(r, st.Size)
	if data != nil && (err != nil || chunks.Size(l) != st.Size || len(l) > maxFileChunks) {
		p.keptBytes.Add(-st.Size)
		data = nil
	}
	if err != nil {
		e.chunkError = errAt("read source", path, err)
		return
	}
	if chunks.Size(l) != st.Size {
		e.chunkError = errGone // shrank while read: the next pass
		return
	}
	if len(l) > maxFileChunks {
		e.chunkError = fmt.Errorf("source %q: %d chunks, more than the %d a file may have to be replicated", path, len(l), maxFileChunks)
		return
	}
	e.List = l
	if data != nil {
		e.data = data
		p.mu.Lock()
		p.kept = append(p.kept, e)
		p.mu.Unlock()
	}
}

// closeSource closes a source file chunkFile read, a large one in the
// background: its close can wait for the disk. On ext4 the first close
// after a writer truncated a file and wrote it again (auto_da_alloc)
// allocates its blocks and starts its writeback, and when the writer has
// not closed it yet that close is ours (20–150 ms measured for 64 MiB),
// which the file's batch need not wait for.
func (p *pass) closeSource(fd int, size int64) {
	if size <= keepMax {
		unix.Close(fd)
		return
	}
	p.closing.Go(func() { unix.Close(fd) })
}

// fdReader reads the first left bytes of a source file: a bare
// descriptor, as an os.File would cost two more system calls per file (its
// descriptor's flags, and a refused registration with the poller).
type fdReader struct {
	fd   int
	off  int64
	left int64
}

func (r *fdReader) Read(b []byte) (int, error) {
	if r.left <= 0 {
		return 0, io.EOF
	}
	if int64(len(b)) > r.left {
		b = b[:r.left]
	}
	for {
		n, err := unix.Pread(r.fd, b, r.off)
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return 0, err
		}
		if n == 0 {
			return 0, io.EOF
		}
		r.off += int64(n)
		r.left -= int64(n)
		return n, nil
	}
}

// sameEntry says whether the receiver's entry a (acknowledged) is b.
func sameEntry(a, b *srcEntry) bool {
	if a == nil || a.Type != b.Type || a.Target != b.Target {
		return false
	}
	if b.Type == typeLink {
		return true
	}
	return a.Mode == b.Mode && a.UID == b.UID && a.GID == b.GID && a.Mtime == b.Mtime &&
		a.Size == b.Size && a.Nlink == b.Nlink && slices.Equal(a.List, b.List)
}

func (e *srcEntry) wire(path string) wireEntry {
	w := wireEntry{Type: e.Type}
	putName(&w.Path, &w.PathB, path)
	putName(&w.Target, &w.TargetB, e.Target)
	if e.Type != typeLink {
		w.Mode, w.UID, w.GID, w.Mtime = e.Mode, e.UID, e.GID, e.Mtime
	}
	if e.Type == typeFile {
		w.Size, w.Nlink, w.Chunks = e.Size, e.Nlink, encodeList(e.List)
	}
	return w
}

// earlyBatch is the data a batch must hold to be sent before the next
// file is chunked (a few times what a 100 Mbit/s, 50 ms path holds).
const earlyBatch = 4 << 20

// Batches: a batch closes at inlineBatch bytes of inline files; a
// session's first batch, which is answered before the next goes (it opens
// the session; in a full listing, its reply says whether the receiver is
// empty, whether files may go inline), at firstBatch entries;
// batchesInFlight batches are on the wire at once, so that the link
// carries the next while the receiver applies one.
const (
	inlineBatch     = 2 << 20
	firstBatch      = 256
	batchesInFlight = 3
)

// errNeedFull: the receiver opened the session for a full listing, and
// the pass had sent a delta.
var errNeedFull = errors.New("the receiver asks for a full listing")

// send opens a session with breq and sends, in walk order and in batches,
// the entries that differ from the acknowledged state (all of them for a
// full listing), then the deletions, and after each batch the chunks the
// receiver asks for; it returns the session. breq.Gen is chosen here: a
// new generation if anything is sent (or must be: full, or paths pending
// from a failed pass), else the acknowledged one.
func (p *pass) send(breq *beginReq, full bool) (_ string, err error) {
	p.jobCtx, p.jobCancel = context.WithCancel(p.ctx)
	p.jobErr = nil
	p.sentBy = map[chunks.Hash]chan struct{}{}
	p.seq.Store(0)
	p.known = nil
	p.empty, p.small = false, map[chunks.Hash]bool{}
	defer func() {
		if err != nil {
			p.jobCancel()
		}
		p.jobs.Wait()
		p.jobCancel()
		if jerr := p.jobFailure(); jerr != nil {
			err = jerr // the cause: what follows it may be its cancellation
		}
	}()
	old := p.s.st.Entries
	mark := map[string]bool{}
	var batch []wireEntry
	var srcs []*srcEntry // batch's source entries (nil for a deletion)
	size := 0
	var data, inl int64 // bytes of the batch's files, and of its inline ones
	session := ""
	flush := func() error {
		if len(batch) == 0 {
			return nil
		}
		req := batchReq{Session: session, Entries: batch}
		es := srcs
		batch, srcs, size, data, inl = nil, nil, 0, 0, 0
		if session == "" {
			breq.Gen = randomGen()
			req.Begin = breq
			var err error
			session, err = p.batch(req, es)
			return err
		}
		return p.batchAsync(req, es)
	}
	// early sends a batch before the next file is chunked when it has
	// enough data to keep the link busy meanwhile: a few changed files
	// wait for each other rather than cost round trips of their own.
	early := func() error {
		if data < earlyBatch {
			return nil
		}
		return flush()
	}
	addEntry := func(w wireEntry, e *srcEntry) error {
		if !full {
			p.s.pending[w.Path+string(w.PathB)] = true
		}
		batch = append(batch, w)
		srcs = append(srcs, e)
		data += w.Size
		if w.Inline {
			inl += w.Size
		}
		size += 200 + len(w.Path) + len(w.Target) + (len(w.Chunks)+len(w.Delta))*4/3
		if len(batch) >= maxBatchEntries/2 || size >= 8<<20 || inl >= inlineBatch ||
			session == "" && len(batch) >= firstBatch {
			return flush()
		}
		return nil
	}
	visit := func(path string) error {
		e := p.cur[path]
		if e == nil {
			return nil
		}
		if e.ready != nil {
			var err error
			if e, err = p.chunked(path, e, early); err != nil {
				return err
			}
			if e == nil {
				return nil
			}
		}
		// A group's file rewritten at the receiver is a new inode: its
		// other names are linked again. (The group's file comes first.)
		if e.Type == typeLink && p.cur[e.Target] == nil {
			delete(p.cur, path) // the group's file vanished
			return nil
		}
		if !full && !p.s.pending[path] && sameEntry(old[path], e) && !(e.Type == typeLink && mark[e.Target]) {
			return nil
		}
		mark[path] = true
		w := e.wire(path)
		o := old[path]
		if e.whole {
			w.Whole = true
		} else if p.inlines(path, e, full) {
			w.Chunks, w.Inline = nil, true
		} else if !full && e.Type == typeFile && o != nil && o.Type == typeFile && len(o.List) > 0 && len(e.List) > 0 {
			if d := encodeDelta(o.List, e.List); len(d)+32 < len(w.Chunks) {
				w.Chunks, w.Delta, w.Base = nil, d, listSum(o.List)
			}
		}
		return addEntry(w, e)
	}
	start := 0
	switch {
	case p.o.Verify || p.stopChunking != nil:
	case !full && !p.s.st.holdsFile():
		// A delta from an acknowledged tree without files: the receiver
		// holds none (a temporary a failed pass left, or a file at a
		// path, makes it ask for that file's list).
		p.markWhole()
	case full:
		// A full listing opens its session with the entries before the
		// first file (the root at least): the reply says whether the
		// receiver holds any file, which decides the files sent whole,
		// not to be read before they are sent.
		for ; start < len(p.order); start++ {
			if e := p.cur[p.order[start]]; e != nil && e.Type == typeFile {
				break
			}
			if err := visit(p.order[start]); err != nil {
				return session, err
			}
		}
		if err := flush(); err != nil {
			return session, err
		}
		if p.empty {
			p.markWhole()
		}
	}
	if p.stopChunking == nil {
		// Files are chunked in walk order in the background while the
		// entries before them are sent: the link is busy from the start.
		p.stopChunking = p.startChunking()
	}
	for _, path := range p.order[start:] {
		if err := visit(path); err != nil {
			return session, err
		}
	}
	var deletes []string
	if !full {
		gone := map[string]bool{}
		for path := range old {
			if p.cur[path] == nil {
				gone[path] = true
			}
		}
		for path := range p.s.pending {
			if p.cur[path] == nil {
				gone[path] = true
			}
		}
		for path := range gone {
			// Only the top of a deleted subtree, or the child of what
			// changed type (whose replacement removes the subtree).
			if par := p.cur[parentOf(path)]; par != nil && par.Type == typeDir && path != "" {
				deletes = append(deletes, path)
			}
		}
		slices.Sort(deletes)
	}
	// A directory whose entries change gets its mtime back at commit: it
	// is sent (after its entries, if it was not sent before them).
	late := map[string]bool{}
	for path := range mark {
		if par := parentOf(path); path != "" && !mark[par] {
			late[par] = true
		}
	}
	for _, path := range deletes {
		if par := parentOf(path); !mark[par] {
			late[par] = true
		}
	}
	for _, path := range p.order {
		if late[path] && p.cur[path] != nil {
			if err := addEntry(p.cur[path].wire(path), p.cur[path]); err != nil {
				return session, err
			}
		}
	}
	for _, path := range deletes {
		w := wireEntry{Type: typeDelete}
		putName(&w.Path, &w.PathB, path)
		if err := addEntry(w, nil); err != nil {
			return session, err
		}
	}
	if err := flush(); err != nil {
		return session, err
	}
	if err := p.settleBatches(); err != nil {
		return session, err
	}
	if session == "" {
		// Nothing to send: the session opens alone.
		breq.Gen = p.s.st.Gen
		if full || len(p.s.pending) > 0 {
			breq.Gen = randomGen()
		}
		var br beginResp
		if err := p.call(OpBegin, *breq, &br); err != nil {
			return "", err
		}
		if br.Full && !full {
			return "", errNeedFull
		}
		session = br.Session
	}
	return session, nil
}

// inlines says whether the file e at path goes with its bytes in its
// batch: a small file whose bytes the receiver cannot hold. In a listing
// of everything, only when the receiver held no file (else it may hold
// them all: failback, lost state). In a delta, when no small file the
// receiver acknowledged had any of its chunks (else it is a rename or a
// copy, whose chunks the receiver finds at hand), and the path was not
// sent by a pass that failed since (its file may have landed). Never a
// file whose chunks a file sent before it in the pass had: those are sent
// once.
func (p *pass) inlines(path string, e *srcEntry, full bool) bool {
	if e.Type != typeFile || e.Size < 1 || e.Size > inlineMax || len(e.List) == 0 {
		return false
	}
	ok := p.empty
	if !full {
		ok = !p.s.pending[path]
		if ok && p.known == nil {
			p.known = map[uint64]bool{}
			for _, a := range p.s.st.Entries {
				if a.Type == typeFile && a.Size <= inlineMax {
					for _, c := range a.List {
						p.known[binary.LittleEndian.Uint64(c.Hash[:8])] = true
					}
				}
			}
		}
	}
	for _, c := range e.List {
		if p.small[c.Hash] || ok && !full && p.known[binary.LittleEndian.Uint64(c.Hash[:8])] {
			ok = false
		}
		p.small[c.Hash] = true
	}
	return ok
}

// batchAsync sends a batch (not a session's first) in the background,
// once fewer than batchesInFlight are on the wire; a failure ends the
// pass's background work and is returned by the next call, or by
// settleBatches.
func (p *pass) batchAsync(req batchReq, srcs []*srcEntry) error {
	if err := p.takeSlot(); err != nil {
		return err
	}
	req.Seq = p.seq.Add(1)
	p.jobs.Go(func() {
		defer func() { <-p.inflight }()
		if _, err := p.batch(req, srcs); err != nil {
			p.fail(err)
		}
	})
	return p.jobFailure()
}

// settleBatches waits for the batches in the background to be answered
// (not for the chunks they asked for).
func (p *pass) settleBatches() error {
	for range batchesInFlight {
		if err := p.takeSlot(); err != nil {
			return err
		}
	}
	for range batchesInFlight {
		<-p.inflight
	}
	return p.jobFailure()
}

// takeSlot takes a place among the batches on the wire, unless the pass's
// background work failed (its failure is returned).
func (p *pass) takeSlot() error {
	select {
	case p.inflight <- struct{}{}:
		return nil
	case <-p.jobCtx.Done():
		if err := p.jobFailure(); err != nil {
			return err
		}
		return p.jobCtx.Err()
	}
}

// fail records the first failure of the pass's background work and
// cancels the rest of it.
func (p *pass) fail(err error) {
	p.mu.Lock()
	if p.jobErr == nil {
		p.jobErr = err
	}
	p.mu.Unlock()
	p.jobCancel()
}

// encodeBatch is a batch's body (see batchReq): its JSON compressed, then
// its inline files' bytes, each released once written. large says the
// JSON is one the receiver takes one at a time (smallBatch).
func (p *pass) encodeBatch(req *batchReq, srcs []*srcEntry) (_ []byte, large bool, _ error) {
	js, err := json.Marshal(req)
	if err != nil {
		return nil, false, err
	}
	// Half the receiver's bound: compressing may lengthen what does not
	// shrink, a little.
	large = len(js) > smallBatch/2
	z := p.s.zstd.Compress(js, nil)
	n := len(z) + binary.MaxVarintLen64
	for _, w := range req.Entries {
		if w.Inline {
			n += int(w.Size) + 5 // a bare frame's header, at most
		}
	}
	var buf bytes.Buffer
	buf.Grow(n) // once: growing by doubling copies and clears it all again
	buf.Write(binary.AppendUvarint(nil, uint64(len(z))))
	buf.Write(z)
	enc := p.s.zstd.Encoder(&buf)
	var chunksInline int64
	// The entries come in walk order: a directory's files together.
	parents := treesync.NewParents(p.rootFd)
	defer parents.Close()
	for i := range req.Entries {
		if !req.Entries[i].Inline {
			continue
		}
		e := srcs[i]
		data := e.data
		if data == nil {
			path, _ := getName(req.Entries[i].Path, req.Entries[i].PathB)
			if data, err = p.readInline(parents, path, e); err != nil {
				return nil, false, err
			}
		}
		if err := enc.WriteBare(data); err != nil {
			return nil, false, err
		}
		p.release(e)
		chunksInline += int64(len(e.List))
	}
	p.mu.Lock()
	p.stats.BytesSent += enc.Wire
	p.stats.ChunksSent += chunksInline
	p.mu.Unlock()
	return buf.Bytes(), large, nil
}

// readInline reads a small file whose bytes were not kept from chunking,
// checked against the list sent for it.
func (p *pass) readInline(parents *treesync.Parents, path string, e *srcEntry) ([]byte, error) {
	pfd, base, err := parents.Open(path)
	if err != nil {
		return nil, errAt("open source", path, err)
	}
	fd, err := openRead(pfd, base)
	if err != nil {
		return nil, errAt("open source", path, err)
	}
	defer unix.Close(fd)
	data := make([]byte, e.Size)
	n, err := treesync.PreadFull(fd, data, 0)
	if err != nil || int64(n) != e.Size {
		return nil, fmt.Errorf("source %q: %w", path, ErrSourceChanged)
	}
	for _, c := range e.List {
		if chunks.Sum(data[c.Offset:c.Offset+int64(c.Length)]) != c.Hash {
			return nil, fmt.Errorf("source %q: %w", path, ErrSourceChanged)
		}
	}
	return data, nil
}

// batch sends one batch (srcs: its entries' source entries) and then, in
// the background, the chunks its files need, Workers files at a time.
func (p *pass) batch(req batchReq, srcs []*srcEntry) (string, error) {
	body, large, err := p.encodeBatch(&req, srcs)
	if err != nil {
		return req.Session, err
	}
	if large {
		p.large.Lock() // one at a time, as the receiver takes them
	}
	var resp batchResp
	err = p.roundTrip(p.jobCtx, OpBatch, bytes.NewReader(body), &resp)
	if large {
		p.large.Unlock()
	}
	if err != nil {
		return req.Session, err
	}
	session := req.Session
	if req.Begin != nil {
		if resp.Session == "" {
			return "", fmt.Errorf("%s: no session opened", OpBatch)
		}
		session = resp.Session
		if resp.Full && !req.Begin.Full {
			return "", errNeedFull
		}
		p.empty = resp.Empty
	}
	p.update(resp.Stats)
	// The batch's files by path: what the reply names must be one of them.
	files := map[string]*srcEntry{}
	for i, w := range req.Entries {
		if w.Type == typeFile && srcs[i] != nil {
			files[w.Path+string(w.PathB)] = srcs[i]
		}
	}
	if len(resp.Relist) > 0 || len(resp.ListWanted) > 0 {
		// Their whole lists, at once: the receiver did not apply them.
		again := batchReq{Session: session, Seq: p.seq.Add(1)}
		var againSrcs []*srcEntry
		if len(resp.ListWanted) > 0 {
			parents := treesync.NewParents(p.rootFd)
			defer parents.Close()
			for _, b := range resp.ListWanted {
				path := string(b)
				e := files[path]
				if e == nil || !e.whole {
					return session, fmt.Errorf("receiver wants the list of %q, not offered whole", path)
				}
				if p.chunkFile(parents, path, e); e.chunkError != nil {
					if errors.Is(e.chunkError, errGone) {
						return session, fmt.Errorf("source %q: %w", path, ErrSourceChanged)
					}
					return session, e.chunkError
				}
				e.whole = false
				again.Entries = append(again.Entries, e.wire(path))
				againSrcs = append(againSrcs, e)
			}
		}
		deltas := map[string]bool{}
		for _, w := range req.Entries {
			if w.Delta != nil {
				deltas[w.Path+string(w.PathB)] = true
			}
		}
		for _, b := range resp.Relist {
			path := string(b)
			e := files[path]
			if e == nil || !deltas[path] {
				return session, fmt.Errorf("receiver asks the whole list of %q, not sent as a delta", path)
			}
			delete(deltas, path)
			again.Entries = append(again.Entries, e.wire(path))
			againSrcs = append(againSrcs, e)
		}
		if _, err := p.batch(again, againSrcs); err != nil {
			return session, err
		}
	}
	if p.o.OnDifference != nil {
		for _, d := range resp.Diffs {
			p.o.OnDifference(string(d))
		}
	}
	// The files' chunks go in requests of several files each (small files
	// share one round trip), Workers requests at a time. A file the
	// receiver does not need drops its kept bytes now.
	defer func() {
		needed := make(map[string]bool, len(resp.Need))
		for _, n := range resp.Need {
			if path, err := getName(n.Path, n.PathB); err == nil {
				needed[path] = true
			}
		}
		for i, w := range req.Entries {
			if path, err := getName(w.Path, w.PathB); err == nil && !needed[path] && srcs[i] != nil {
				p.release(srcs[i])
			}
		}
	}()
	var jobs []fileJob
	for _, n := range resp.Need {
		path, err := getName(n.Path, n.PathB)
		if err != nil {
			return session, err
		}
		e := files[path]
		if e != nil && n.Whole != e.whole {
			return session, fmt.Errorf("receiver asks %q whole (%v), offered whole (%v)", path, n.Whole, e.whole)
		}
		if e != nil && n.Whole {
			jobs = append(jobs, fileJob{path: path, e: e, whole: true})
			continue
		}
		hs, err := decodeHashes(n.Hashes, maxFileChunks)
		if err == nil && e == nil {
			err = fmt.Errorf("receiver asks chunks of %q, not a file sent", path)
		}
		if err != nil {
			return session, err
		}
		jobs = append(jobs, fileJob{path: path, e: e, hs: hs})
	}
	if len(jobs) == 0 {
		return session, p.jobFailure()
	}
	select {
	case p.ahead <- struct{}{}:
	case <-p.jobCtx.Done():
		return session, p.jobCtx.Err()
	}
	p.jobs.Go(func() {
		defer func() { <-p.ahead }()
		if err := p.sendJobs(session, jobs); err != nil {
			p.fail(err)
		}
	})
	return session, p.jobFailure()
}

// batchesAhead bounds the batches whose chunks are in flight: the next
// batch goes while a batch's chunks are sent, and the receiver's files
// awaiting chunks stay bounded.
const batchesAhead = 2

// jobFailure is the first failure of the pass's background chunk sends.
func (p *pass) jobFailure() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.jobErr
}

// fileJob is a file and the chunks of it to send.
type fileJob struct {
	path  string
	e     *srcEntry
	hs    []chunks.Hash
	whole bool // all its bytes, for the receiver to cut
}

// Grouping of files into chunks requests: a group closes at this many
// bytes of chunks or files.
const (
	groupBytes = 8 << 20
	groupFiles = 256
)

// sendJobs sends the chunks of jobs, grouped into requests, Workers at a
// time. A chunk that an earlier file of the pass sends is not sent again:
// its group waits for that file's group (the receiver's assembly of it
// puts the chunk in its index); within a group the receiver takes files in
// order. Chunks the receiver still lacks are sent again, by the groups
// that need them, at most three times.
func (p *pass) sendJobs(session string, jobs []fileJob) error {
	for attempt := 0; len(jobs) > 0; attempt++ {
		if attempt == 4 {
			return fmt.Errorf("chunks: receiver still lacks chunks of %d files, e.g. %q", len(jobs), jobs[0].path)
		}
		var again []fileJob
		var mu sync.Mutex
		err := p.sendGroups(session, jobs, attempt == 0, func(missing []fileJob) {
			mu.Lock()
			again = append(again, missing...)
			mu.Unlock()
		})
		if err != nil {
			return err
		}
		jobs = again
	}
	return nil
}

// sendGroups sends jobs in groups; shared says whether chunks another
// group of the pass sends are left to it (not on a retry: the receiver
// still lacks them).
func (p *pass) sendGroups(session string, jobs []fileJob, shared bool, retry func([]fileJob)) error {
	type group struct {
		jobs []fileJob
		deps map[chan struct{}]bool
		done chan struct{}
	}
	var groups []*group
	sentBy := map[chunks.Hash]chan struct{}{}
	if shared {
		p.sentMu.Lock()
		sentBy = p.sentBy
	}
	var cur *group
	size := 0
	for _, j := range jobs {
		lens := make(map[chunks.Hash]int, len(j.e.List))
		for _, c := range j.e.List {
			lens[c.Hash] = c.Length
		}
		bytes := 0
		for _, h := range j.hs {
			bytes += lens[h]
		}
		if j.whole {
			bytes = int(j.e.Size)
		}
		if cur == nil || len(cur.jobs) >= groupFiles || size > 0 && size+bytes > groupBytes {
			cur = &group{deps: map[chan struct{}]bool{}, done: make(chan struct{})}
			groups = append(groups, cur)
			size = 0
		}
		var own []chunks.Hash
		for _, h := range j.hs {
			if by, ok := sentBy[h]; ok {
				if by != cur.done {
					cur.deps[by] = true
				}
			} else {
				sentBy[h] = cur.done
				own = append(own, h)
			}
		}
		j.hs = own
		cur.jobs = append(cur.jobs, j)
		size += bytes
	}
	if shared {
		p.sentMu.Unlock()
	}
	ctx, cancel := context.WithCancel(p.jobCtx)
	defer cancel()
	var wg sync.WaitGroup
	var mu sync.Mutex
	var first error
	// A group waits for the groups it depends on before it takes a
	// request slot: slots are never held by a wait, whatever the order in
	// which batches' groups start.
	for _, g := range groups {
		wg.Go(func() {
			defer close(g.done)
			for d := range g.deps {
				select {
				case <-d:
				case <-ctx.Done():
					return
				}
			}
			select {
			case p.sem <- struct{}{}:
			case <-ctx.Done():
				return
			}
			defer func() { <-p.sem }()
			var resp chunksResp
			err := p.sendChunks(ctx, session, g.jobs, &resp)
			if err == nil {
				p.update(resp.Stats)
				var missing []fileJob
				missing, err = p.missingJobs(g.jobs, resp.Missing)
				if len(missing) > 0 {
					retry(missing)
				}
			}
			if err != nil {
				mu.Lock()
				if first == nil {
					first = err
				}
				mu.Unlock()
				cancel()
			}
		})
	}
	wg.Wait()
	if first == nil {
		first = ctx.Err() // cancelled from outside: not all was sent
	}
	return first
}

// missingJobs turns a reply's missing chunks back into jobs of the group.
func (p *pass) missingJobs(jobs []fileJob, missing []need) ([]fileJob, error) {
	byPath := make(map[string]fileJob, len(jobs))
	for _, j := range jobs {
		byPath[j.path] = j
	}
	var out []fileJob
	for _, n := range missing {
		path, err := getName(n.Path, n.PathB)
		if err != nil {
			return nil, err
		}
		j, ok := byPath[path]
		if !ok {
			return nil, fmt.Errorf("receiver says %q lacks chunks: not sent", path)
		}
		if j.hs, err = decodeHashes(n.Hashes, maxFileChunks); err != nil {
			return nil, err
		}
		out = append(out, j)
	}
	return out, nil
}

type countingWriter struct {
	w io.Writer
	n int64
}

func (c *countingWriter) Write(b []byte) (int, error) {
	n, err := c.w.Write(b)
	c.n += int64(n)
	return n, err
}

var errRequestOver = errors.New("request over")

// chunksBuffer is what a chunks request's body gathers before the
// transport takes it.
const chunksBuffer = 256 << 10

// ErrSourceChanged: a source file's bytes no longer match the chunk list
// sent for it (written during the pass). Nothing is wrong: the next pass
// sends its new content.
var ErrSourceChanged = errors.New("changed during the pass")

func (p *pass) sendChunks(ctx context.Context, session string, jobs []fileJob, resp *chunksResp) error {
	pr, pw := io.Pipe()
	// Buffered: the transport reads the body in large pieces (HTTP/2
	// frames, TLS records and writes), not a small file's frame at a time.
	bw := bufio.NewWriterSize(pw, chunksBuffer)
	cw := &countingWriter{w: bw}
	var frames int64
	done := make(chan error, 1)
	go func() {
		enc := p.s.zstd.Encoder(cw)
		var buf []byte
		var err error
		for _, j := range jobs {
			// Headers go around the counting writer: BytesSent is chunk
			// data (frames), as the metric says.
			if err = p.writeSection(enc, bw, session, j, &buf, &frames); err != nil {
				break
			}
		}
		if err == nil {
			err = bw.Flush()
		}
		pw.CloseWithError(err)
		done <- err
	}()
	rc, err := p.t.RoundTrip(ctx, OpChunks, countingReader{pr, &p.wire})
	pr.CloseWithError(errRequestOver) // unblocks the writer if the body was not read to its end
	werr := <-done
	p.mu.Lock()
	p.stats.BytesSent += cw.n
	p.stats.ChunksSent += frames
	p.mu.Unlock()
	if werr != nil && !errors.Is(werr, errRequestOver) {
		if rc != nil {
			rc.Close()
		}
		return werr
	}
	if err != nil {
		return fmt.Errorf("%s %q…: %w", OpChunks, jobs[0].path, err)
	}
	defer rc.Close()
	if err := decodeReply(countingReader{rc, &p.wire}, resp); err != nil {
		return fmt.Errorf("%s %q…: %w", OpChunks, jobs[0].path, err)
	}
	return p.takeLists(jobs, resp.Lists)
}

// takeLists keeps the lists the receiver returned for the files of jobs
// sent whole: one for each, of the file's size.
func (p *pass) takeLists(jobs []fileJob, lists []fileList) error {
	whole := map[string]*srcEntry{}
	for _, j := range jobs {
		if j.whole {
			whole[j.path] = j.e
		}
	}
	n := len(whole)
	for _, fl := range lists {
		path, err := getName(fl.Path, fl.PathB)
		if err != nil {
			return err
		}
		e := whole[path]
		if e == nil {
			return fmt.Errorf("receiver returns a list of %q, not sent whole", path)
		}
		l, err := decodeList(fl.Chunks)
		if err != nil {
			return fmt.Errorf("receiver's list of %q: %w", path, err)
		}
		if chunks.Size(l) != e.Size {
			return fmt.Errorf("receiver's list of %q: %d bytes for a file of %d", path, chunks.Size(l), e.Size)
		}
		e.List, e.Racy = l, false
		delete(whole, path)
	}
	for path := range whole {
		return fmt.Errorf("receiver returned no list of %q, sent whole", path)
	}
	p.mu.Lock()
	p.stats.FilesWhole += int64(n)
	p.mu.Unlock()
	return nil
}

// writeSection writes one file's header and its chunks, re-read from the
// source and checked against the list sent for it.
func (p *pass) writeSection(enc *chunks.Encoder, w io.Writer, session string, j fileJob, buf *[]byte, frames *int64) error {
	if j.whole {
		return p.writeWhole(enc, w, session, j, buf, frames)
	}
	at := make(map[chunks.Hash]chunks.Chunk, len(j.e.List))
	for _, c := range j.e.List {
		if _, ok := at[c.Hash]; !ok {
			at[c.Hash] = c
		}
	}
	n := 0
	for _, h := range j.hs {
		c, ok := at[h]
		if !ok {
			return fmt.Errorf("receiver asks chunk %s, not in %q", h, j.path)
		}
		n = max(n, c.Length)
	}
	creq := chunksReq{Session: session, N: len(j.hs)}
	putName(&creq.Path, &creq.PathB, j.path)
	hdr, _ := json.Marshal(creq)
	if _, err := w.Write(append(hdr, '\n')); err != nil {
		return err
	}
	if len(j.hs) == 0 {
		return nil
	}
	if data := j.e.data; data != nil {
		// The bytes the list was made from: nothing to read or check.
		for _, h := range j.hs {
			c := at[h]
			if err := enc.Write(h, data[c.Offset:c.Offset+int64(c.Length)]); err != nil {
				return err
			}
			*frames++
		}
		p.release(j.e)
		return nil
	}
	pfd, base, err := treesync.OpenParent(p.rootFd, j.path)
	if err != nil {
		return errAt("open source", j.path, err)
	}
	defer unix.Close(pfd)
	fd, err := openRead(pfd, base)
	if err != nil {
		return errAt("open source", j.path, err)
	}
	defer unix.Close(fd)
	if cap(*buf) < n {
		*buf = make([]byte, n) // as big as the largest chunk sent: most files are small
	}
	// A file whose ctime has not moved since it was chunked (and was not
	// too recent then to vouch for it) still holds the bytes listed: it is
	// not hashed again, but its ctime is checked once it has been read. (The
	// receiver checks every chunk's hash anyway; this check only tells a
	// file written meanwhile from a broken peer.)
	stable := !j.e.Racy && sameIdentity(fd, j.e)
	for _, h := range j.hs {
		c := at[h]
		b := (*buf)[:c.Length]
		if got, err := treesync.PreadFull(fd, b, c.Offset); err != nil || got != c.Length || !stable && chunks.Sum(b) != h {
			return fmt.Errorf("source %q: %w", j.path, ErrSourceChanged)
		}
		if err := enc.Write(h, b); err != nil {
			return err
		}
		*frames++
	}
	if stable && !sameIdentity(fd, j.e) {
		return fmt.Errorf("source %q: %w", j.path, ErrSourceChanged)
	}
	return nil
}

// writeWhole writes the section of a file sent whole: its header, then its
// bytes in frames of wholePiece, read once. The file must be the one
// walked (same inode, size, mtime and ctime) before and after the read,
// else it changed meanwhile and the pass ends (ErrSourceChanged) for the
// next to send what it holds then; markWhole chose files whose ctime
// would show such a write.
func (p *pass) writeWhole(enc *chunks.Encoder, w io.Writer, session string, j fileJob, buf *[]byte, frames *int64) error {
	creq := chunksReq{Session: session, Whole: true}
	putName(&creq.Path, &creq.PathB, j.path)
	hdr, _ := json.Marshal(creq)
	if _, err := w.Write(append(hdr, '\n')); err != nil {
		return err
	}
	changed := fmt.Errorf("source %q: %w", j.path, ErrSourceChanged)
	pfd, base, err := treesync.OpenParent(p.rootFd, j.path)
	if err != nil {
		return changed
	}
	defer unix.Close(pfd)
	fd, err := openRead(pfd, base)
	if err == unix.ENOENT || err == unix.ELOOP || err == unix.ENXIO {
		return changed
	}
	if err != nil {
		return errAt("open source", j.path, err)
	}
	defer p.closeSource(fd, j.e.Size)
	if !sameIdentity(fd, j.e) {
		return changed
	}
	if cap(*buf) < wholePiece {
		*buf = make([]byte, wholePiece)
	}
	for off := int64(0); off < j.e.Size; {
		n := int(min(j.e.Size-off, wholePiece))
		b := (*buf)[:n]
		if got, err := treesync.PreadFull(fd, b, off); err != nil || got != n {
			return changed
		}
		if err := enc.WriteBare(b); err != nil {
			return err
		}
		*frames++
		off += int64(n)
	}
	if !sameIdentity(fd, j.e) {
		return changed
	}
	return nil
}

// sameIdentity reports whether the open file fd is still the one e was
// chunked from, unchanged: same inode, size, mtime and ctime.
func sameIdentity(fd int, e *srcEntry) bool {
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		return false
	}
	return st.Ino == e.Ino && st.Size == e.Size && st.Mtim.Nano() == e.Mtime && st.Ctim.Nano() == e.Ctime
}
