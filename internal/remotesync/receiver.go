package remotesync

import (
	"bufio"
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"time"

	"golang.org/x/sys/unix"

	"github.com/efsd/efsd/internal/chunks"
	"github.com/efsd/efsd/internal/treesync"
)

// ReceiverOptions tune a Receiver. The zero value is usable.
type ReceiverOptions struct {
	// OnCommit is called once a pass is durable at the destination, before
	// the commit is acknowledged; an error fails the commit. start is the
	// pass's start time on the source's clock.
	OnCommit func(start time.Time) error
	// Now times commits for the log.
	Now    func() time.Time
	Logger *slog.Logger
}

// Receiver applies passes to the destination tree root: one per
// configuration at the destination. Its state (statePath; "" keeps it in
// memory) is the generation it last committed and the epoch of the
// sender whose uncommitted session last changed the tree. Its chunk index
// is saved beside the state (statePath + ".index") by Close and read back
// when it opens, each file's entry checked against its inode, ctime and
// size; without that snapshot (a crash, no statePath) it is built by
// scanning root, which reads every file. Either happens in the
// background; requests wait for it.
//
// Serve may be called concurrently (chunk data for several files at
// once); one session runs at a time, a begin superseding the one before.
type Receiver struct {
	root      string
	rootFd    int
	ix        *chunks.Index
	statePath string
	o         ReceiverOptions
	log       *slog.Logger

	// Bounds on the memory of requests in flight: batchesRead batch
	// bodies at a time (each up to maxInlineBatch of inline files, and a
	// JSON of up to smallBatch — or, one at a time (bigSem), of up to
	// maxBatchBody: long chunk lists), and
	// maxChunkStreams chunk streams (about 12 MiB each: the decoder's two
	// buffers and the assembly's).
	batchSem, chunkSem, bigSem chan struct{}
	zd                         *chunks.Decompressor // batches' JSON

	scanned    chan struct{}
	scanErr    error
	stopScan   context.CancelFunc
	inflight   sync.WaitGroup
	mu         sync.Mutex // guards the fields below
	closed     bool
	st         recvState
	forceFull  bool // an entry failed to apply: the tree may not be the acknowledged state
	sess       *session
	closeOnce  sync.Once
	closeError error
}

// recvState is what the receiver keeps durably.
type recvState struct {
	Gen   uint64 `json:"gen"`   // the generation last committed; 0: none
	Dirty uint64 `json:"dirty"` // epoch of the sender of an uncommitted session that changed the tree; 0: none
}

// session is one pass being received. Its mutex serialises batches and
// commit; chunk data for several files is assembled concurrently, and
// does not wait for a batch being applied: what chunks requests share
// with batches (the files awaiting chunks, and the counts of what chunk
// data did) has a mutex of its own, fmu.
type session struct {
	id           string
	gen          uint64
	full, verify bool
	mu           sync.Mutex
	seen         map[string]bool // paths of the session: true if listed (not deleted)

	fmu           sync.Mutex
	files         map[string]*pendingFile
	pendingChunks int
	cstats        wireStats // what chunks requests did
	bstats        wireStats // stats as of the end of the latest batch

	// nextSeq is the batch to apply next; turn is closed (and replaced)
	// when it moves on, or when the session ends, waking the batches
	// waiting for their turn.
	seqMu   sync.Mutex
	nextSeq uint64
	turn    chan struct{}
	ended   bool
	// empty: the destination held no file when the session opened.
	empty bool
	// localCopies counts files assembled from bytes already at the
	// destination (renames, copies).
	localCopies int

	links   []wireEntry
	deletes []string
	dirs    []wireEntry
	created map[string]bool // directories this session created
	claimed map[uint64]bool // destination inodes kept for a hard-link group
	stats   wireStats

	// Files assembled but not yet durable nor renamed into place: made
	// durable together (one syncfs) and published at commit, or sooner
	// once there are many. stageMu guards the list and pubErr; pubMu
	// makes publishes one at a time, so that a commit's waits for any
	// under way. A publish of many runs in the background (at most one at
	// a time: bg), so that the request that staged the last of them, and
	// the batches waiting for it, go on during its syncfs; its failure
	// fails the session's next stage and its commit.
	stageMu     sync.Mutex
	pubMu       sync.Mutex
	staged      []*chunks.Staged
	stagedBytes int64
	bg          chan struct{}
	pubErr      error
}

// Publishing thresholds of staged files, between batches: a long
// transfer shows progress, and an interrupted one keeps what landed.
const (
	stageFiles = 4096
	stageBytes = 256 << 20
)

// stage keeps an assembled file for publishing, and publishes what was
// staged once there is much of it, in the background.
func (r *Receiver) stage(s *session, st *chunks.Staged) error {
	s.stageMu.Lock()
	if err := s.pubErr; err != nil {
		s.stageMu.Unlock()
		return err
	}
	s.staged = append(s.staged, st)
	s.stagedBytes += st.Size
	if len(s.staged) < stageFiles && s.stagedBytes < stageBytes {
		s.stageMu.Unlock()
		return nil
	}
	ss := s.take()
	s.stageMu.Unlock()
	s.bg <- struct{}{} // waits for the one before
	r.inflight.Add(1)  // Close waits for it
	go func() {
		defer r.inflight.Done()
		defer func() { <-s.bg }()
		if err := r.publishStaged(s, ss); err != nil {
			s.stageMu.Lock()
			if s.pubErr == nil {
				s.pubErr = err
			}
			s.stageMu.Unlock()
		}
	}()
	return nil
}

// take empties the staged list (under stageMu) and returns what it held.
func (s *session) take() []*chunks.Staged {
	ss := s.staged
	s.staged, s.stagedBytes = nil, 0
	return ss
}

// publish makes the staged files durable (one syncfs) and renames them
// into place, once any publish under way is done; it fails if one in the
// background did.
func (r *Receiver) publish(s *session) error {
	s.bg <- struct{}{}
	<-s.bg
	s.stageMu.Lock()
	ss, err := s.take(), s.pubErr
	s.stageMu.Unlock()
	if err != nil {
		return err
	}
	return r.publishStaged(s, ss)
}

// publishStaged publishes ss. (Temporaries of a failed publish stay, for
// the next pass to resume from or remove.)
func (r *Receiver) publishStaged(s *session, ss []*chunks.Staged) error {
	s.pubMu.Lock()
	defer s.pubMu.Unlock()
	if len(ss) == 0 {
		return nil
	}
	if err := r.ix.Sync(); err != nil {
		return err
	}
	return r.ix.Publish(ss)
}

// pendingFile is a file announced in a batch whose chunks are awaited.
type pendingFile struct {
	e       wireEntry
	list    []chunks.Chunk
	rewrite bool
	busy    bool
	whole   bool // offered whole: its bytes come, not its chunks
}

// pending is what the file counts in session.pendingChunks.
func (pf *pendingFile) pending() int {
	if pf.whole {
		return 1
	}
	return len(pf.list)
}

// NewReceiver opens the destination root (which must exist) and the state
// at statePath.
func NewReceiver(root, statePath string, o ReceiverOptions) (*Receiver, error) {
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	fd, err := treesync.OpenAt(unix.AT_FDCWD, root, unix.O_RDONLY|unix.O_DIRECTORY, 0)
	if err != nil {
		return nil, fmt.Errorf("open destination %s: %w", root, err)
	}
	ix, err := chunks.OpenIndex(root)
	if err != nil {
		unix.Close(fd)
		return nil, err
	}
	zd, err := chunks.NewDecompressor(maxBatchBody)
	if err != nil {
		ix.Close()
		unix.Close(fd)
		return nil, err
	}
	r := &Receiver{root: root, rootFd: fd, ix: ix, statePath: statePath, o: o, log: o.Logger, scanned: make(chan struct{}),
		batchSem: make(chan struct{}, batchesRead), chunkSem: make(chan struct{}, maxChunkStreams), bigSem: make(chan struct{}, 1), zd: zd}
	if statePath != "" {
		loadJSON(statePath, &r.st)
	}
	ctx, cancel := context.WithCancel(context.Background())
	r.stopScan = cancel
	go func() {
		defer close(r.scanned)
		t0 := time.Now()
		if r.loadIndex(ctx) {
			r.log.Debug("replication receiver: index loaded", "duration", time.Since(t0))
			return
		}
		if err := ix.Scan(ctx); err != nil {
			r.scanErr = fmt.Errorf("index destination: %w", err)
			r.log.Error("replication receiver: indexing the destination failed", "err", err)
			return
		}
		r.log.Debug("replication receiver: destination indexed", "duration", time.Since(t0))
	}()
	return r, nil
}

// Close waits for requests in flight and releases the receiver; Serve
// after Close fails.
func (r *Receiver) Close() error {
	r.closeOnce.Do(func() {
		r.mu.Lock()
		r.closed = true
		if r.sess != nil {
			r.sess.end()
		}
		r.sess = nil
		r.mu.Unlock()
		r.stopScan()
		<-r.scanned
		r.inflight.Wait()
		if r.statePath != "" && r.scanErr == nil {
			if err := r.saveIndex(); err != nil {
				r.log.Warn("replication receiver: index not saved, the next start scans the destination", "err", err)
			}
		}
		r.zd.Close()
		r.closeError = errors.Join(r.ix.Close(), unix.Close(r.rootFd))
	})
	return r.closeError
}

// Serve handles one request: op is one of Ops, body the request's body.
// The reply is written to w only on success; on error nothing was
// written, and ErrorCode says which code to report.
func (r *Receiver) Serve(ctx context.Context, op string, body io.Reader, w io.Writer) error {
	r.mu.Lock()
	if r.closed {
		r.mu.Unlock()
		return errClosed
	}
	r.inflight.Add(1)
	r.mu.Unlock()
	defer r.inflight.Done()
	select {
	case <-r.scanned:
	case <-ctx.Done():
		return ctx.Err()
	}
	if r.scanErr != nil {
		return r.scanErr
	}
	var reply any
	var err error
	switch op {
	case OpBegin:
		reply, err = r.begin(body)
	case OpBatch:
		if err = acquire(ctx, r.batchSem); err == nil {
			reply, err = r.batch(ctx, body)
			<-r.batchSem
		}
	case OpChunks:
		if err = acquire(ctx, r.chunkSem); err == nil {
			reply, err = r.chunks(ctx, body)
			<-r.chunkSem
		}
	case OpCommit:
		reply, err = r.commit(body)
	default:
		err = protof("unknown operation %q", op)
	}
	if err != nil {
		return err
	}
	b, err := json.Marshal(reply)
	if err != nil {
		return err
	}
	_, err = w.Write(append(b, '\n'))
	return err
}

func acquire(ctx context.Context, sem chan struct{}) error {
	select {
	case sem <- struct{}{}:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (r *Receiver) saveState() error {
	if r.statePath == "" {
		return nil
	}
	b, _ := json.Marshal(r.st)
	if err := writeFileAtomic(r.statePath, b); err != nil {
		return fmt.Errorf("save receiver state: %w", err)
	}
	return nil
}

func (r *Receiver) begin(body io.Reader) (any, error) {
	var req beginReq
	if err := readHeader(bufio.NewReaderSize(body, maxHeader), &req); err != nil {
		return nil, err
	}
	s, err := r.open(&req)
	if err != nil {
		return nil, err
	}
	return beginResp{Session: s.id, Full: s.full}, nil
}

// open starts a session (superseding any other).
func (r *Receiver) open(req *beginReq) (*session, error) {
	if req.V != protoVersion {
		return nil, protof("protocol version %d, want %d", req.V, protoVersion)
	}
	if req.Gen == 0 || req.Epoch == 0 {
		return nil, protof("generation and epoch must not be 0")
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed {
		return nil, errClosed
	}
	full := req.Full || req.Verify || req.Base == 0 || req.Base != r.st.Gen || r.forceFull ||
		r.st.Dirty != 0 && r.st.Dirty != req.Epoch
	if r.st.Dirty != req.Epoch {
		// From now on the tree may hold changes of this sender that it
		// has not had acknowledged: only it knows which (it sends them
		// again until a commit); another sender must list everything.
		r.st.Dirty = req.Epoch
		if err := r.saveState(); err != nil {
			return nil, err
		}
	}
	s := &session{id: randomID(), gen: req.Gen, full: full, verify: req.Verify, turn: make(chan struct{}), empty: r.ix.Files() == 0, bg: make(chan struct{}, 1),
		seen: map[string]bool{}, files: map[string]*pendingFile{}, created: map[string]bool{}, claimed: map[uint64]bool{}}
	if r.sess != nil {
		r.log.Info("replication receiver: session superseded")
		r.sess.end()
	}
	r.sess = s
	return s, nil
}

// current returns the session id names, if it is still the current one.
func (r *Receiver) current(id string) (*session, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed {
		return nil, errClosed
	}
	if r.sess == nil || r.sess.id != id {
		return nil, errBusy
	}
	return r.sess, nil
}

// applyFailed marks the tree as possibly not the acknowledged state: the
// next session lists everything.
func (r *Receiver) applyFailed() {
	r.mu.Lock()
	r.forceFull = true
	r.mu.Unlock()
}

// batchesRead bounds the batch bodies read at once: a sender keeps
// several on the wire (batchesInFlight), and each is read as it comes,
// not left in the connection's flow-control window, while the one before
// it is applied.
const batchesRead = batchesInFlight + 1

// smallBatch is the largest batch JSON, compressed or not, read while
// another batch's of that size is read or applied (bigSem).
const smallBatch = 4 << 20

// readBatch reads a batch's body: its JSON, and the bytes of its inline
// files (by entry index). Only what needs no session is checked here.
// A large batch holds bigSem until release is called.
func (r *Receiver) readBatch(body io.Reader) (_ *batchReq, _ [][]byte, release func(), err error) {
	release = func() {}
	defer func() {
		if err != nil {
			release()
		}
	}()
	br := bufio.NewReaderSize(body, 64<<10)
	n, err := binary.ReadUvarint(br)
	if err == io.EOF {
		return nil, nil, release, protof("empty batch")
	}
	if err != nil {
		return nil, nil, release, fmt.Errorf("read batch: %w", err)
	}
	if n == 0 || n > maxBatchBody {
		return nil, nil, release, protof("batch of %d compressed bytes, at most %d", n, maxBatchBody)
	}
	z, err := io.ReadAll(io.LimitReader(br, int64(n))) // grows with what comes, not with what is claimed
	if err == nil && uint64(len(z)) != n {
		err = io.ErrUnexpectedEOF
	}
	if err != nil {
		return nil, nil, release, fmt.Errorf("read batch: %w", err)
	}
	if n > smallBatch || chunks.DeclaredSize(z) > smallBatch {
		// Never waited for: it could be held by a batch waiting for its
		// turn behind this one. A sender sends one large batch at a time.
		select {
		case r.bigSem <- struct{}{}:
			release = func() { <-r.bigSem }
		default:
			return nil, nil, release, protof("a second batch of over %d bytes while one is applied", smallBatch)
		}
	}
	js, err := r.zd.Decompress(z)
	if err != nil {
		return nil, nil, release, protof("batch: %v", err)
	}
	var req batchReq
	if err := decodeStrict(js, &req); err != nil {
		return nil, nil, release, err
	}
	if len(req.Entries) > maxBatchEntries {
		return nil, nil, release, protof("%d entries in a batch, at most %d", len(req.Entries), maxBatchEntries)
	}
	var total int64
	for i := range req.Entries {
		e := &req.Entries[i]
		if !e.Inline {
			continue
		}
		if e.Type != typeFile || e.Size < 1 || e.Size > inlineMax {
			return nil, nil, release, protof("inline entry of type %q and %d bytes", e.Type, e.Size)
		}
		total += e.Size
	}
	if total > maxInlineBatch {
		return nil, nil, release, protof("%d bytes of inline files in a batch, at most %d", total, maxInlineBatch)
	}
	var inline [][]byte
	if total > 0 {
		d, err := chunks.NewDecoder(br)
		if err != nil {
			return nil, nil, release, err
		}
		defer d.Close()
		inline = make([][]byte, len(req.Entries))
		buf := make([]byte, 0, total)
		for i := range req.Entries {
			if !req.Entries[i].Inline {
				continue
			}
			b, err := d.NextBare(int(req.Entries[i].Size))
			if badFrame(err) {
				return nil, nil, release, protof("inline bytes of entry %d: %v", i, err)
			}
			if err != nil {
				return nil, nil, release, fmt.Errorf("read batch: %w", err)
			}
			start := len(buf)
			buf = append(buf, b...)
			inline[i] = buf[start:len(buf):len(buf)]
		}
	}
	if _, err := br.Peek(1); err == nil {
		return nil, nil, release, protof("data after the batch")
	} else if err != io.EOF {
		return nil, nil, release, fmt.Errorf("read batch: %w", err)
	}
	return &req, inline, release, nil
}

// waitTurn waits until the session's batch seq is the one to apply.
func (r *Receiver) waitTurn(ctx context.Context, s *session, seq uint64) error {
	for {
		s.seqMu.Lock()
		next, turn, ended := s.nextSeq, s.turn, s.ended
		s.seqMu.Unlock()
		switch {
		case ended:
			return errBusy
		case seq == next:
			return nil
		case seq < next:
			return protof("batch %d of the session again", seq)
		case seq > next+maxSeqAhead:
			return protof("batch %d while %d is the next", seq, next)
		}
		select {
		case <-turn:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// advance lets the next batch be applied.
func (s *session) advance() {
	s.seqMu.Lock()
	defer s.seqMu.Unlock()
	s.nextSeq++
	close(s.turn)
	s.turn = make(chan struct{})
}

// end wakes the batches waiting for their turn: there is none (the
// session was superseded, committed, or the receiver closed).
func (s *session) end() {
	s.seqMu.Lock()
	defer s.seqMu.Unlock()
	if !s.ended {
		s.ended = true
		close(s.turn)
	}
}

func (r *Receiver) batch(ctx context.Context, body io.Reader) (any, error) {
	req, inline, release, err := r.readBatch(body)
	if err != nil {
		return nil, err
	}
	defer release()
	var opened string
	if req.Begin != nil {
		if req.Session != "" || req.Seq != 0 {
			return nil, protof("a batch that begins a session names none, and is its first")
		}
		s, err := r.open(req.Begin)
		if err != nil {
			return nil, err
		}
		if s.full && !req.Begin.Full {
			// Not applied: the sender lists everything in this session.
			return batchResp{Session: s.id, Full: true}, nil
		}
		req.Session, opened = s.id, s.id
	}
	s, err := r.current(req.Session)
	if err != nil {
		return nil, err
	}
	if err := r.waitTurn(ctx, s, req.Seq); err != nil {
		return nil, err
	}
	defer s.advance()
	s.mu.Lock()
	defer s.mu.Unlock()
	// Everything is checked before anything is applied.
	lists := make([][]chunks.Chunk, len(req.Entries))
	relist := make([]bool, len(req.Entries))
	var resp batchResp
	pending := 0
	inBatch := map[string]bool{}
	for i := range req.Entries {
		e := &req.Entries[i]
		if e.Path, err = getName(e.Path, e.PathB); err != nil {
			return nil, err
		}
		if e.Target, err = getName(e.Target, e.TargetB); err != nil {
			return nil, err
		}
		e.PathB, e.TargetB = nil, nil
		if lists[i], err = checkEntry(e); err != nil {
			return nil, err
		}
		if e.Delta != nil {
			base, ok := r.ix.Lookup(e.Path)
			if !ok || !bytes.Equal(listSum(base), e.Base) {
				relist[i] = true
				resp.Relist = append(resp.Relist, []byte(e.Path))
			} else if lists[i], err = decodeDelta(base, e.Delta); err != nil {
				return nil, fmt.Errorf("%q: %w", e.Path, err)
			} else if chunks.Size(lists[i]) != e.Size {
				return nil, protof("%q: chunk list of %d bytes for a file of %d", e.Path, chunks.Size(lists[i]), e.Size)
			}
		}
		if _, dup := s.seen[e.Path]; dup || inBatch[e.Path] {
			return nil, protof("path %q twice in a session", e.Path)
		}
		inBatch[e.Path] = true
		pending += len(lists[i])
		if e.Whole {
			pending++ // its list comes with its bytes
		}
	}
	if len(s.seen)+len(req.Entries) > maxSessionPaths {
		return nil, protof("more than %d paths in a session", maxSessionPaths)
	}
	s.fmu.Lock()
	over := s.pendingChunks+pending > maxPendingChunks
	s.fmu.Unlock()
	if over {
		return nil, protof("more than %d chunks of files awaiting data", maxPendingChunks)
	}
	var buf []byte // holds' buffer, made when first needed
	localCopies := s.localCopies
	var later []int // inline files, written by several workers after the loop
	// Files come in walk order: a directory's run of files opens it once.
	parents := treesync.NewParents(r.rootFd)
	defer parents.Close()
	for i := range req.Entries {
		if relist[i] {
			continue // sent again whole, in this session
		}
		if _, err := r.current(req.Session); err != nil {
			return nil, err
		}
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		e := &req.Entries[i]
		s.seen[e.Path] = e.Type != typeDelete
		var err error
		if e.Type != typeFile {
			parents.Forget() // directories may change shape
		}
		switch e.Type {
		case typeDelete:
			s.deletes = append(s.deletes, e.Path)
		case typeLink:
			s.links = append(s.links, *e)
		case typeDir:
			err = r.applyDir(s, e)
		case typeSymlink:
			err = r.applySymlink(s, e)
		case typeFile:
			if e.Whole {
				var want bool
				if want, err = r.offerWhole(s, parents, e, &resp); err == nil && want {
					delete(s.seen, e.Path) // its list comes in this session
					resp.ListWanted = append(resp.ListWanted, []byte(e.Path))
				}
				break
			}
			var data []byte
			if inline != nil {
				data = inline[i]
			}
			if data != nil && e.Nlink <= 1 {
				later = append(later, i)
				continue
			}
			if data != nil {
				lists[i], err = chunks.List(bytes.NewReader(data), e.Size)
			}
			if err == nil {
				err = r.applyFile(ctx, s, s, parents, e, lists[i], data, &buf, &resp)
			}
		}
		if err != nil {
			r.applyFailed()
			return nil, err
		}
	}
	if err := r.applyInline(ctx, s, req.Entries, inline, later, &resp); err != nil {
		r.applyFailed()
		return nil, err
	}
	// Files this batch assembled from bytes at hand (renames, copies)
	// land now; files whose bytes come over the wire (inline, or in
	// chunks requests) land at commit or in bulk (stage), not one syncfs
	// per batch.
	if s.localCopies > localCopies {
		if err := r.publish(s); err != nil {
			r.applyFailed()
			return nil, err
		}
	}
	resp.Stats = s.total(true)
	resp.Session, resp.Full, resp.Empty = opened, opened != "" && s.full, opened != "" && s.empty
	return resp, nil
}

// inlineWorkers write a batch's inline files at once: creating, writing
// and renaming small files is system calls, which one goroutine cannot
// keep the disk busy with.
const inlineWorkers = 4

// applyInline applies the inline files at indexes idx of a batch's
// entries (none of a hard-link group: those touch the session's claims),
// in inlineWorkers runs of consecutive entries, each keeping its last
// directory open, its counts merged into the session's at the end.
func (r *Receiver) applyInline(ctx context.Context, s *session, es []wireEntry, inline [][]byte, idx []int, resp *batchResp) error {
	if len(idx) == 0 {
		return nil
	}
	workers := min(inlineWorkers, len(idx))
	per := (len(idx) + workers - 1) / workers
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var mu sync.Mutex
	var first error
	var wg sync.WaitGroup
	for w := range workers {
		run := idx[min(w*per, len(idx)):min((w+1)*per, len(idx))]
		wg.Go(func() {
			ws := &session{verify: s.verify} // this worker's counts
			var wresp batchResp
			var buf []byte
			parents := treesync.NewParents(r.rootFd)
			defer parents.Close()
			var err error
			for _, i := range run {
				if err = ctx.Err(); err != nil {
					break
				}
				// Cut here, by the workers: hashing is much of an inline
				// file's cost.
				var l []chunks.Chunk
				if l, err = chunks.List(bytes.NewReader(inline[i]), es[i].Size); err == nil {
					err = r.applyFile(ctx, ws, s, parents, &es[i], l, inline[i], &buf, &wresp)
				}
				if err != nil {
					cancel()
					break
				}
			}
			mu.Lock()
			defer mu.Unlock()
			addStats(&s.stats, &ws.stats)
			resp.Diffs = append(resp.Diffs, wresp.Diffs...)
			if err != nil && first == nil {
				first = err
			}
		})
	}
	wg.Wait()
	return first
}

// checkEntry refuses an entry that is malformed or names something
// outside the root; it returns a file's chunk list.
func checkEntry(e *wireEntry) ([]chunks.Chunk, error) {
	if e.Path == "" {
		if e.Type != typeDir {
			return nil, protof("the root can only be a directory")
		}
	} else if err := checkPath(e.Path); err != nil {
		return nil, err
	}
	if e.Mode&^0o7777 != 0 {
		return nil, protof("%q: mode %o", e.Path, e.Mode)
	}
	switch e.Type {
	case typeDelete, typeDir:
	case typeSymlink:
		if e.Target == "" || len(e.Target) > maxTarget || strings.IndexByte(e.Target, 0) >= 0 {
			return nil, protof("%q: bad symlink target", e.Path)
		}
	case typeLink:
		if err := checkPath(e.Target); err != nil {
			return nil, err
		}
		if e.Target == e.Path {
			return nil, protof("%q: link to itself", e.Path)
		}
	case typeFile:
		if e.Whole {
			if len(e.Chunks) > 0 || e.Delta != nil || e.Base != nil || e.Inline || e.Size <= inlineMax || e.Nlink > 1 {
				return nil, protof("%q: offered whole, and with a list, inline, of %d bytes or of a hard-link group", e.Path, e.Size)
			}
			return nil, nil // cut from its bytes as they come
		}
		if e.Inline {
			if len(e.Chunks) > 0 || e.Delta != nil || e.Base != nil {
				return nil, protof("%q: inline, and with a list", e.Path)
			}
			return nil, nil // cut from its bytes by the caller
		}
		if e.Delta != nil {
			if len(e.Chunks) > 0 || len(e.Base) != 32 {
				return nil, protof("%q: a delta with a list, or without its base", e.Path)
			}
			return nil, nil // resolved against the index by the caller
		}
		l, err := decodeList(e.Chunks)
		if err != nil {
			return nil, err
		}
		if chunks.Size(l) != e.Size {
			return nil, protof("%q: chunk list of %d bytes for a file of %d", e.Path, chunks.Size(l), e.Size)
		}
		return l, nil
	default:
		return nil, protof("%q: unknown entry type %q", e.Path, e.Type)
	}
	if len(e.Chunks) > 0 || e.Delta != nil || e.Base != nil || e.Inline || e.Whole {
		return nil, protof("%q: chunk list on a non-file", e.Path)
	}
	return nil, nil
}

// openParent opens the destination directory holding rel (never through a
// symlink) and returns its descriptor and rel's last component.
func (r *Receiver) openParent(rel string) (int, string, error) {
	pfd, base, err := treesync.OpenParent(r.rootFd, rel)
	if err != nil {
		return -1, "", errAt("open parent of", rel, err)
	}
	return pfd, base, nil
}

// replaceNonDir removes whatever is at base if it is not a directory.
func (r *Receiver) removeEntry(s *session, pfd int, base, rel string, st *unix.Stat_t) error {
	if typeOf(st) == unix.S_IFDIR {
		return r.removeAll(s, pfd, base, rel)
	}
	if err := unix.Unlinkat(pfd, base, 0); err != nil && err != unix.ENOENT {
		return errAt("remove", rel, err)
	}
	if typeOf(st) == unix.S_IFREG {
		r.ix.Remove(rel)
	}
	s.stats.Deleted++
	return nil
}

// removeAll deletes the directory name (in parent) and everything below
// it, never following a symlink, forgetting the files it held.
func (r *Receiver) removeAll(s *session, parent int, name, rel string) error {
	fd, err := treesync.OpenAt(parent, name, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW, 0)
	switch err {
	case nil:
	case unix.ENOENT:
		return nil
	case unix.ENOTDIR, unix.ELOOP:
		if err := unix.Unlinkat(parent, name, 0); err != nil && err != unix.ENOENT {
			return errAt("remove", rel, err)
		}
		r.ix.Remove(rel)
		s.stats.Deleted++
		return nil
	default:
		return errAt("open for removal", rel, err)
	}
	defer unix.Close(fd)
	names, err := readNames(fd)
	if err != nil {
		return errAt("read directory", rel, err)
	}
	for _, n := range names {
		switch err := unix.Unlinkat(fd, n, 0); err {
		case nil:
			r.ix.Remove(rel + "/" + n)
			if !strings.HasPrefix(n, treesync.TmpPrefix) {
				s.stats.Deleted++
			}
		case unix.EISDIR:
			if err := r.removeAll(s, fd, n, rel+"/"+n); err != nil {
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
	return nil
}

// applyDir makes sure the directory exists; its metadata is set at commit,
// after its entries.
func (r *Receiver) applyDir(s *session, e *wireEntry) error {
	s.dirs = append(s.dirs, *e)
	if e.Path == "" {
		return nil
	}
	pfd, base, err := r.openParent(e.Path)
	if err != nil {
		return err
	}
	defer unix.Close(pfd)
	st, err := lstatAt(pfd, base)
	switch {
	case err == nil && typeOf(&st) == unix.S_IFDIR:
		return nil
	case err == nil:
		if err := r.removeEntry(s, pfd, base, e.Path, &st); err != nil {
			return err
		}
	case err != unix.ENOENT:
		return errAt("stat", e.Path, err)
	}
	if err := unix.Mkdirat(pfd, base, 0o700); err != nil {
		return errAt("create directory", e.Path, err)
	}
	s.created[e.Path] = true
	s.stats.DirsCreated++
	return nil
}

func (r *Receiver) applySymlink(s *session, e *wireEntry) error {
	pfd, base, err := r.openParent(e.Path)
	if err != nil {
		return err
	}
	defer unix.Close(pfd)
	st, err := lstatAt(pfd, base)
	exists := err == nil
	if err != nil && err != unix.ENOENT {
		return errAt("stat", e.Path, err)
	}
	if exists && typeOf(&st) == unix.S_IFLNK {
		if have, err := readlinkAt(pfd, base); err == nil && have == e.Target {
			return r.updateMeta(s, pfd, base, e, &st, true)
		}
	}
	if exists && typeOf(&st) == unix.S_IFDIR {
		if err := r.removeAll(s, pfd, base, e.Path); err != nil {
			return err
		}
	}
	tmp := tmpName()
	if err := unix.Symlinkat(e.Target, pfd, tmp); err != nil {
		return errAt("create symlink", e.Path, err)
	}
	err = chownTolerant(func() error { return unix.Fchownat(pfd, tmp, int(e.UID), int(e.GID), unix.AT_SYMLINK_NOFOLLOW) })
	if err == nil {
		err = unix.UtimesNanoAt(pfd, tmp, mtimeSpec(e.Mtime), unix.AT_SYMLINK_NOFOLLOW)
	}
	if err == nil {
		err = unix.Renameat(pfd, tmp, pfd, base)
	}
	if err != nil {
		unix.Unlinkat(pfd, tmp, 0)
		return errAt("create symlink", e.Path, err)
	}
	if exists && typeOf(&st) == unix.S_IFREG {
		r.ix.Remove(e.Path)
	}
	s.stats.SymlinksCreated++
	return nil
}

func readlinkAt(dirfd int, name string) (string, error) {
	buf := make([]byte, maxTarget+1)
	n, err := unix.Readlinkat(dirfd, name, buf)
	if err != nil {
		return "", err
	}
	return string(buf[:n]), nil
}

// updateMeta fixes the metadata of an entry whose content is current.
func (r *Receiver) updateMeta(s *session, pfd int, base string, e *wireEntry, st *unix.Stat_t, symlink bool) error {
	if metaEqual(st, e, symlink) {
		s.stats.Unchanged++
		return nil
	}
	if err := setMetaAt(pfd, base, st, e, symlink); err != nil {
		return errAt("set metadata of", e.Path, err)
	}
	s.stats.MetadataUpdated++
	return nil
}

// applyFile keeps a destination file that holds the content, else
// assembles it now if every chunk is at hand (inline: its bytes came with
// the batch, and l was cut from them), else records what it needs.
//
// s takes its counts; owner is the session (whose the staged file is, and
// the hard-link groups' claims).
func (r *Receiver) applyFile(ctx context.Context, s, owner *session, parents *treesync.Parents, e *wireEntry, l []chunks.Chunk, inline []byte, buf *[]byte, resp *batchResp) error {
	pfd, base, err := parents.Open(e.Path)
	if err != nil {
		return errAt("open parent of", e.Path, err)
	}
	st, err := lstatAt(pfd, base)
	exists := err == nil
	if err != nil && err != unix.ENOENT {
		return errAt("stat", e.Path, err)
	}
	if exists && typeOf(&st) == unix.S_IFDIR {
		if err := r.removeAll(s, pfd, base, e.Path); err != nil {
			return err
		}
		exists = false
	}
	isReg := exists && typeOf(&st) == unix.S_IFREG
	// A destination inode with other names is kept only for a hard-link
	// group, and for one group only: else files separate at the source
	// would stay linked.
	// Nothing at the path: a new file, with no need to look there again
	// when it is assembled.
	rewrite := !exists
	if isReg && st.Nlink > 1 {
		if e.Nlink <= 1 || owner.claimed[st.Ino] {
			rewrite = true
		} else {
			owner.claimed[st.Ino] = true
		}
	}
	if isReg && !rewrite && st.Size == e.Size {
		same := false
		if s.verify {
			ok, n := holds(pfd, base, l, buf)
			s.stats.FilesCompared++
			s.stats.BytesCompared += n
			same = ok
			if !ok {
				rewrite = true
				r.ix.Remove(e.Path) // what the index knew of it is not what it holds
				if st.Mtim.Nano() == e.Mtime {
					s.stats.Differences++
					resp.Diffs = append(resp.Diffs, []byte(e.Path))
				}
			}
		} else if have, ok := r.ix.Lookup(e.Path); ok {
			same = slices.Equal(have, l) // as indexed when scanned or assembled
		} else {
			// Not indexed (made behind the receiver's back while it was
			// down): read rather than ask for chunks it may hold.
			ok, n := holds(pfd, base, l, buf)
			s.stats.FilesCompared++
			s.stats.BytesCompared += n
			same = ok
		}
		if same {
			return r.updateMeta(s, pfd, base, e, &st, false)
		}
	}
	if inline != nil {
		return r.assemble(ctx, s, owner, parents, e, l, rewrite, chunks.Held(inline))
	}
	lack, err := r.ix.NeedAt(pfd, base, e.Path, l)
	if err != nil {
		return err
	}
	if len(lack) == 0 {
		// Every chunk should be at hand; an index place found stale
		// makes the file wait for the chunks after all.
		sup := &localSupplier{}
		copied := s.stats.FilesCopied
		err := r.assemble(ctx, s, owner, parents, e, l, rewrite, sup)
		if s.stats.FilesCopied > copied {
			owner.localCopies++
		}
		if !errors.Is(err, errMissing) {
			return err
		}
		lack = sup.missing
	}
	owner.fmu.Lock()
	owner.files[e.Path] = &pendingFile{e: *e, list: l, rewrite: rewrite}
	owner.pendingChunks += len(l)
	owner.fmu.Unlock()
	n := need{Hashes: encodeHashes(lack)}
	putName(&n.Path, &n.PathB, e.Path)
	resp.Need = append(resp.Need, n)
	return nil
}

// offerWhole takes a file offered whole: it awaits its bytes (a need of
// them all), unless something is at its path or a temporary of it is
// (an interrupted copy): then it wants the file's list (want), to keep
// what is there.
func (r *Receiver) offerWhole(s *session, parents *treesync.Parents, e *wireEntry, resp *batchResp) (want bool, err error) {
	pfd, base, err := parents.Open(e.Path)
	if err != nil {
		return false, errAt("open parent of", e.Path, err)
	}
	if _, err := lstatAt(pfd, base); err != unix.ENOENT {
		if err != nil {
			return false, errAt("stat", e.Path, err)
		}
		return true, nil
	}
	if chunks.HasTemp(pfd, base) {
		return true, nil
	}
	s.fmu.Lock()
	s.files[e.Path] = &pendingFile{e: *e, whole: true}
	s.pendingChunks++
	s.fmu.Unlock()
	n := need{Whole: true}
	putName(&n.Path, &n.PathB, e.Path)
	resp.Need = append(resp.Need, n)
	return false, nil
}

// receiveWhole writes the file e from its bytes, sent whole in frames
// from d, and returns its list.
func (r *Receiver) receiveWhole(ctx context.Context, s, owner *session, parents *treesync.Parents, e *wireEntry, d *chunks.Decoder) ([]chunks.Chunk, error) {
	pfd, _, err := parents.Open(e.Path)
	if err != nil {
		return nil, errAt("open parent of", e.Path, err)
	}
	// Always a new temporary and a new inode: nothing was at the path.
	l, ast, err := r.ix.ReceiveAt(ctx, pfd, e.Path, e.Size, &wholeReader{d: d, left: e.Size}, maxFileChunks, &chunks.AssembleOptions{
		Perm:    e.Mode & 0o777,
		Prepare: func(fd int, st *unix.Stat_t) error { return fsetMeta(fd, st, e) },
		Defer:   true,
	})
	if errors.Is(err, chunks.ErrTooManyChunks) {
		return nil, protof("%v", err)
	}
	if err != nil {
		return nil, err
	}
	if err := r.stage(owner, ast.Staged); err != nil {
		return nil, err
	}
	s.stats.FilesCopied++
	s.stats.BytesCopied += e.Size
	return l, nil
}

// wholeReader reads a file's bytes sent whole: frames of wholePiece bytes
// (the last shorter) until left is read, then io.EOF.
type wholeReader struct {
	d    *chunks.Decoder
	left int64
	cur  io.Reader // the frame being read
}

func (w *wholeReader) Read(b []byte) (int, error) {
	for {
		if w.cur == nil {
			if w.left == 0 {
				return 0, io.EOF
			}
			n := int(min(w.left, wholePiece))
			r, err := w.d.BareReader(n)
			if err != nil {
				return 0, w.fail(err)
			}
			w.cur, w.left = r, w.left-int64(n)
		}
		n, err := w.cur.Read(b)
		if err == io.EOF {
			w.cur = nil
			if n == 0 {
				continue
			}
			err = nil
		}
		if err != nil {
			return n, w.fail(err)
		}
		return n, nil
	}
}

// badFrame says whether err is a decoder's refusal of a malformed frame
// (a protocol error of the peer), not a broken stream.
func badFrame(err error) bool {
	return errors.Is(err, chunks.ErrFrameLength) || errors.Is(err, chunks.ErrFrameCodec) || errors.Is(err, chunks.ErrFrameData)
}

// fail is a frame's error: a protocol one, or a connection cut mid-stream.
func (w *wholeReader) fail(err error) error {
	if badFrame(err) {
		return protof("file sent whole: %v", err)
	}
	if err == io.EOF {
		err = io.ErrUnexpectedEOF
	}
	return fmt.Errorf("file sent whole, stream cut: %w", err)
}

// assemble makes the file e from its chunk list, with its metadata, in
// the directory parents opens.
func (r *Receiver) assemble(ctx context.Context, s, owner *session, parents *treesync.Parents, e *wireEntry, l []chunks.Chunk, rewrite bool, sup chunks.Supplier) error {
	pfd, base, err := parents.Open(e.Path)
	if err != nil {
		return errAt("open parent of", e.Path, err)
	}
	ast, err := r.ix.AssembleAt(ctx, pfd, e.Path, l, sup, &chunks.AssembleOptions{
		Rewrite: rewrite,
		Perm:    e.Mode & 0o777,
		Prepare: func(fd int, st *unix.Stat_t) error { return fsetMeta(fd, st, e) },
		Defer:   true,
	})
	if err != nil {
		return err
	}
	if ast.Staged != nil {
		if err := r.stage(owner, ast.Staged); err != nil {
			return err
		}
	}
	s.stats.ChunksLocal += int64(ast.Local + ast.Resumed)
	if ast.Unchanged {
		st, err := lstatAt(pfd, base)
		if err != nil {
			return errAt("stat", e.Path, err)
		}
		return r.updateMeta(s, pfd, base, e, &st, false)
	}
	s.stats.FilesCopied++
	s.stats.BytesCopied += e.Size
	return nil
}

// frameSupplier hands Assemble the frames of a chunks request; frames not
// (or no longer) wanted are read and dropped, and wanted ones that did
// not come are reported in missing.
type frameSupplier struct {
	d       *chunks.Decoder
	max     int // frames in the file's section
	read    int
	missing []chunks.Hash
}

var errMissing = errors.New("chunks missing from the request")

func (f *frameSupplier) Fetch(ctx context.Context, want []chunks.Chunk, deliver func(chunks.Hash, []byte) error) error {
	wanted := make(map[chunks.Hash]bool, len(want))
	for _, c := range want {
		wanted[c.Hash] = true
	}
	for len(wanted) > 0 && f.read < f.max {
		if err := ctx.Err(); err != nil {
			return err
		}
		h, data, err := f.next()
		if err != nil {
			return err
		}
		if !wanted[h] {
			continue
		}
		if err := deliver(h, data); err != nil {
			return err
		}
		delete(wanted, h)
	}
	for h := range wanted {
		f.missing = append(f.missing, h)
	}
	if len(f.missing) > 0 {
		return errMissing
	}
	return nil
}

// next reads the file's next frame; its section ending early is a
// protocol error (the header promised max frames).
func (f *frameSupplier) next() (chunks.Hash, []byte, error) {
	h, data, err := f.d.Next()
	if err == io.EOF {
		return h, nil, protof("stream ends after %d of %d frames", f.read, f.max)
	}
	if err != nil {
		if badFrame(err) || errors.Is(err, chunks.ErrFrameHash) {
			return h, nil, protof("%v", err)
		}
		return h, nil, err
	}
	f.read++
	return h, data, nil
}

// drain reads the rest of the file's frames.
func (f *frameSupplier) drain() error {
	for f.read < f.max {
		if _, _, err := f.next(); err != nil {
			return err
		}
	}
	return nil
}

// localSupplier has no chunk: it records what Assemble lacked.
type localSupplier struct{ missing []chunks.Hash }

func (l *localSupplier) Fetch(_ context.Context, want []chunks.Chunk, _ func(chunks.Hash, []byte) error) error {
	for _, c := range want {
		l.missing = append(l.missing, c.Hash)
	}
	return errMissing
}

func (r *Receiver) chunks(ctx context.Context, body io.Reader) (any, error) {
	br := bufio.NewReaderSize(body, maxHeader)
	// The decoder reads frames from br with exact reads, so the header
	// lines between sections stay in br for readHeader.
	d, err := chunks.NewDecoder(br)
	if err != nil {
		return nil, err
	}
	defer d.Close()
	d.Unverified = true // Assemble checks every chunk it is given against its hash
	var resp chunksResp
	var s *session
	parents := treesync.NewParents(r.rootFd) // the files come in walk order
	defer parents.Close()
	for files := 0; ; files++ {
		if files > 0 {
			if _, err := br.Peek(1); err == io.EOF {
				break
			}
		}
		if files == maxStreamFiles {
			return nil, protof("more than %d files in one chunks request", maxStreamFiles)
		}
		var req chunksReq
		if err := readHeader(br, &req); err != nil {
			return nil, err
		}
		if s != nil && req.Session != s.id {
			return nil, protof("one chunks request, two sessions")
		}
		var missing []chunks.Hash
		var whole []chunks.Chunk
		s, missing, whole, err = r.chunksOf(ctx, d, parents, &req)
		if err != nil {
			return nil, err
		}
		if whole != nil {
			fl := fileList{Chunks: encodeList(whole)}
			putName(&fl.Path, &fl.PathB, req.Path)
			resp.Lists = append(resp.Lists, fl)
		}
		if len(missing) > 0 {
			n := need{Hashes: encodeHashes(missing)}
			putName(&n.Path, &n.PathB, req.Path)
			resp.Missing = append(resp.Missing, n)
		}
	}
	// The request's files land at commit, or once
	// many are staged (stage): one syncfs for all of them.
	resp.Stats = s.total(false)
	return resp, nil
}

// chunksOf assembles one file of a chunks request from the req.N frames
// that follow its header, and returns the chunks it still lacks; or, for
// a file sent whole, receives its bytes and returns its list.
func (r *Receiver) chunksOf(ctx context.Context, d *chunks.Decoder, parents *treesync.Parents, req *chunksReq) (_ *session, missing []chunks.Hash, whole []chunks.Chunk, _ error) {
	path, err := getName(req.Path, req.PathB)
	if err != nil {
		return nil, nil, nil, err
	}
	req.Path = path
	s, err := r.current(req.Session)
	if err != nil {
		return nil, nil, nil, err
	}
	s.fmu.Lock()
	pf := s.files[req.Path]
	if pf == nil || pf.busy {
		s.fmu.Unlock()
		return nil, nil, nil, protof("no file %q awaiting chunks", req.Path)
	}
	if req.Whole != pf.whole || req.Whole && req.N != 0 {
		s.fmu.Unlock()
		return nil, nil, nil, protof("%q: a section whole (%v, %d frames) for a file offered whole (%v)", req.Path, req.Whole, req.N, pf.whole)
	}
	if req.N < 0 || req.N > len(pf.list) {
		s.fmu.Unlock()
		return nil, nil, nil, protof("%d frames for a file of %d chunks", req.N, len(pf.list))
	}
	pf.busy = true
	s.fmu.Unlock()

	ls := &session{} // the assembly's counts, merged under the lock
	sup := &frameSupplier{d: d, max: req.N}
	if pf.whole {
		whole, err = r.receiveWhole(ctx, ls, s, parents, &pf.e, d)
	} else {
		err = r.assemble(ctx, ls, s, parents, &pf.e, pf.list, pf.rewrite, sup)
		if err == nil || errors.Is(err, errMissing) {
			// Frames of this file that were not needed (found at hand
			// since) are read past, to the next file's header.
			if derr := sup.drain(); derr != nil {
				err = derr
			}
		}
	}

	s.fmu.Lock()
	defer s.fmu.Unlock()
	pf.busy = false
	addStats(&s.cstats, &ls.stats)
	if _, cerr := r.current(req.Session); cerr != nil {
		return nil, nil, nil, cerr
	}
	if err != nil {
		if errors.Is(err, errMissing) && len(sup.missing) > 0 {
			return s, sup.missing, nil, nil
		}
		if errors.Is(err, chunks.ErrFrameHash) {
			return nil, nil, nil, protof("%v", err) // bytes sent under another chunk's name
		}
		return nil, nil, nil, err
	}
	delete(s.files, req.Path)
	s.pendingChunks -= pf.pending()
	return s, nil, whole, nil
}

// total is the session's counts: the batches' and the chunks requests'.
// With mu held (inBatch: a batch or commit), the batches' counts are
// current and recorded for chunks requests to report; without it, the
// counts as of the latest batch's end are taken.
func (s *session) total(inBatch bool) wireStats {
	s.fmu.Lock()
	defer s.fmu.Unlock()
	if inBatch {
		s.bstats = s.stats
	}
	t := s.bstats
	addStats(&t, &s.cstats)
	return t
}

func addStats(a, b *wireStats) {
	a.FilesCopied += b.FilesCopied
	a.BytesCopied += b.BytesCopied
	a.Unchanged += b.Unchanged
	a.MetadataUpdated += b.MetadataUpdated
	a.ChunksLocal += b.ChunksLocal
	a.Deleted += b.Deleted
	a.FilesCompared += b.FilesCompared
	a.BytesCompared += b.BytesCompared
	a.Differences += b.Differences
}

func (r *Receiver) commit(body io.Reader) (any, error) {
	var req commitReq
	if err := readHeader(bufio.NewReaderSize(body, maxHeader), &req); err != nil {
		return nil, err
	}
	s, err := r.current(req.Session)
	if err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.fmu.Lock()
	waiting := len(s.files)
	s.fmu.Unlock()
	if waiting > 0 {
		return nil, protof("commit with %d files still awaiting chunks", waiting)
	}
	t0 := r.o.Now()
	if err := r.publish(s); err != nil {
		r.applyFailed()
		return nil, err
	}
	if err := r.finish(s); err != nil {
		r.applyFailed()
		return nil, err
	}
	if err := r.ix.Sync(); err != nil {
		return nil, err
	}
	r.mu.Lock()
	if r.sess != s {
		r.mu.Unlock()
		return nil, errBusy
	}
	r.st = recvState{Gen: s.gen}
	err = r.saveState()
	if err == nil {
		r.forceFull = false
	}
	r.mu.Unlock()
	if err != nil {
		return nil, err
	}
	if r.o.OnCommit != nil {
		if err := r.o.OnCommit(time.Unix(0, req.Start)); err != nil {
			return nil, fmt.Errorf("commit: %w", err)
		}
	}
	r.mu.Lock()
	if r.sess == s {
		r.sess = nil
		s.end()
	}
	r.mu.Unlock()
	st := s.total(true)
	r.log.Debug("replication pass committed", "copied", st.FilesCopied, "bytes", st.BytesCopied,
		"deleted", st.Deleted, "duration", r.o.Now().Sub(t0))
	return commitResp{Stats: st}, nil
}

// finish applies what waited for every file: hard links, deletions, in a
// full listing the removal of what was not listed, directory metadata.
func (r *Receiver) finish(s *session) error {
	for i := range s.links {
		if err := r.applyLink(s, &s.links[i]); err != nil {
			return err
		}
	}
	for _, p := range s.deletes {
		if err := r.deletePath(s, p); err != nil {
			return err
		}
	}
	if s.full {
		// A descriptor of its own: a directory's read offset is shared
		// by the descriptors of one open.
		fd, err := treesync.OpenAt(r.rootFd, ".", unix.O_RDONLY|unix.O_DIRECTORY, 0)
		if err != nil {
			return errAt("open", "", err)
		}
		err = r.removeUnlisted(s, fd, "")
		unix.Close(fd)
		if err != nil {
			return err
		}
	}
	// Deepest first: setting a directory's metadata never disturbs its
	// parent's mtime, but its entries' changes do.
	slices.SortStableFunc(s.dirs, func(a, b wireEntry) int {
		return strings.Count(b.Path, "/") - strings.Count(a.Path, "/") + boolInt(a.Path == "") - boolInt(b.Path == "")
	})
	for i := range s.dirs {
		if err := r.dirMeta(s, &s.dirs[i]); err != nil {
			return err
		}
	}
	return nil
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}

func (r *Receiver) applyLink(s *session, e *wireEntry) error {
	tpfd, tbase, err := r.openParent(e.Target)
	if err != nil {
		return err
	}
	defer unix.Close(tpfd)
	tst, err := lstatAt(tpfd, tbase)
	if err != nil || typeOf(&tst) != unix.S_IFREG {
		return errAt("link to", e.Target, fmt.Errorf("not a regular file at the destination: %v", err))
	}
	pfd, base, err := r.openParent(e.Path)
	if err != nil {
		return err
	}
	defer unix.Close(pfd)
	st, err := lstatAt(pfd, base)
	exists := err == nil
	if exists && typeOf(&st) == unix.S_IFREG && st.Ino == tst.Ino && st.Dev == tst.Dev {
		s.stats.Unchanged++
		return nil
	}
	if exists && typeOf(&st) == unix.S_IFDIR {
		if err := r.removeAll(s, pfd, base, e.Path); err != nil {
			return err
		}
	}
	tmp := tmpName()
	if err := unix.Linkat(tpfd, tbase, pfd, tmp, 0); err != nil {
		return errAt("link", e.Path, err)
	}
	if err := unix.Renameat(pfd, tmp, pfd, base); err != nil {
		unix.Unlinkat(pfd, tmp, 0)
		return errAt("link", e.Path, err)
	}
	if l, ok := r.ix.Lookup(e.Target); ok {
		r.ix.Set(e.Path, l)
	} else {
		r.ix.Remove(e.Path)
	}
	s.stats.LinksCreated++
	return nil
}

func (r *Receiver) deletePath(s *session, p string) error {
	pfd, base, err := treesync.OpenParent(r.rootFd, p)
	if err != nil {
		if errors.Is(err, unix.ENOENT) || errors.Is(err, unix.ENOTDIR) {
			return nil // gone with its parent
		}
		return errAt("open parent of", p, err)
	}
	defer unix.Close(pfd)
	st, err := lstatAt(pfd, base)
	if err == unix.ENOENT {
		return nil
	}
	if err != nil {
		return errAt("stat", p, err)
	}
	return r.removeEntry(s, pfd, base, p, &st)
}

// removeUnlisted deletes, below the directory fd, whatever a full listing
// did not name, and leftover temporaries (every listed file is in place).
func (r *Receiver) removeUnlisted(s *session, fd int, rel string) error {
	ds, err := readDirents(fd)
	if err != nil {
		return errAt("read directory", rel, err)
	}
	for _, d := range ds {
		n, p := d.name, d.name
		if rel != "" {
			p = rel + "/" + n
		}
		tmp := strings.HasPrefix(n, treesync.TmpPrefix)
		if !tmp && s.seen[p] && d.typ != unix.DT_DIR && d.typ != unix.DT_UNKNOWN {
			continue // listed, and not a directory to look into: no stat
		}
		st, err := lstatAt(fd, n)
		if err == unix.ENOENT {
			continue
		}
		if err != nil {
			return errAt("stat", p, err)
		}
		if tmp || !s.seen[p] {
			if err := r.removeEntry(s, fd, n, p, &st); err != nil {
				return err
			}
			if tmp && typeOf(&st) != unix.S_IFDIR {
				s.stats.Deleted-- // a temporary is not an entry
			}
			continue
		}
		if typeOf(&st) == unix.S_IFDIR {
			sub, err := treesync.OpenAt(fd, n, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW, 0)
			if err != nil {
				return errAt("open directory", p, err)
			}
			err = r.removeUnlisted(s, sub, p)
			unix.Close(sub)
			if err != nil {
				return err
			}
		}
	}
	return nil
}

func (r *Receiver) dirMeta(s *session, e *wireEntry) error {
	var fd int
	var err error
	if e.Path == "" {
		fd, err = unix.Dup(r.rootFd)
	} else {
		var pfd int
		var base string
		if pfd, base, err = r.openParent(e.Path); err != nil {
			return err
		}
		fd, err = treesync.OpenAt(pfd, base, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW, 0)
		unix.Close(pfd)
	}
	if err != nil {
		return errAt("open directory", e.Path, err)
	}
	defer unix.Close(fd)
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		return errAt("stat", e.Path, err)
	}
	if metaEqual(&st, e, false) {
		if !s.created[e.Path] {
			s.stats.Unchanged++
		}
		return nil
	}
	if err := fsetMeta(fd, &st, e); err != nil {
		return errAt("set metadata of", e.Path, err)
	}
	if !s.created[e.Path] && (st.Mode&0o7777 != e.Mode || st.Uid != e.UID || st.Gid != e.GID) {
		s.stats.MetadataUpdated++
	}
	return nil
}

// replyReader decodes a receiver's JSON reply.
func decodeReply(rc io.Reader, v any) error {
	b, err := readAllCapped(rc, maxReply)
	if err != nil {
		return fmt.Errorf("read reply: %w", err)
	}
	if err := json.Unmarshal(bytes.TrimSpace(b), v); err != nil {
		return fmt.Errorf("decode reply: %w", err)
	}
	return nil
}
