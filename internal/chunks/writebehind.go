package chunks

import (
	"errors"
	"io"
	"sync"
)

// A file received whole is written by a goroutine of its own while the
// receiver cuts and hashes it: writing to the page cache takes about as
// long as cutting and hashing, and done one after the other they made the
// receipt of a large file the slowest step of a first copy.
const (
	behindPiece  = 1 << 20 // bytes read from the stream and written at a time
	behindPieces = 4       // pieces in flight: read, being cut, being written
)

// writeBehind hands pieces of a temporary's bytes to a goroutine that
// writes them with a partWriter (its periodic writeback and fdatasync
// with it). The reader (teeReader) takes a free piece, fills it from the
// stream, lets the chunker copy it out, then queues it; the writer
// returns it. stop must be called before the temporary is closed.
// Pieces are all of behindPiece bytes (the last one of a file, or a small
// file's only one, used in part), from and back to a pool shared by every
// receipt (pool), so a tree of files does not allocate them per file.
type writeBehind struct {
	w       *partWriter
	pool    *sync.Pool
	queue   chan behindWrite
	free    chan []byte
	done    chan struct{}
	failed  chan struct{} // closed at the writer's first error
	err     error         // that error; read once failed or done is closed
	stopped bool
	made    int
}

type behindWrite struct {
	b   []byte
	off int64
}

func newWriteBehind(w *partWriter, pool *sync.Pool) *writeBehind {
	wb := &writeBehind{w: w, pool: pool, queue: make(chan behindWrite, behindPieces), free: make(chan []byte, behindPieces),
		done: make(chan struct{}), failed: make(chan struct{})}
	go wb.run()
	return wb
}

func (wb *writeBehind) run() {
	defer close(wb.done)
	for p := range wb.queue {
		if wb.err == nil {
			if wb.err = wb.w.write(p.b, p.off); wb.err != nil {
				close(wb.failed)
			}
		}
		wb.free <- p.b[:cap(p.b)]
	}
}

// piece returns a buffer of n bytes (n ≤ behindPiece): a free one, a new one
// while fewer than behindPieces exist, or the next one the writer frees.
// It fails once the writer has.
func (wb *writeBehind) piece(n int) ([]byte, error) {
	select {
	case <-wb.failed:
		return nil, wb.err
	default:
	}
	select {
	case b := <-wb.free:
		return b[:n], nil
	default:
	}
	if wb.made < behindPieces {
		wb.made++
		if b, ok := wb.pool.Get().(*[]byte); ok {
			return (*b)[:n], nil
		}
		return make([]byte, n, behindPiece), nil
	}
	select {
	case b := <-wb.free:
		return b[:n], nil
	case <-wb.failed:
		return nil, wb.err
	}
}

// put queues b, the bytes at off, for writing.
func (wb *writeBehind) put(b []byte, off int64) { wb.queue <- behindWrite{b, off} }

// stop waits for every queued piece to be written and returns the
// writer's first error.
func (wb *writeBehind) stop() error {
	if !wb.stopped {
		wb.stopped = true
		close(wb.queue)
	}
	<-wb.done
	for {
		select {
		case b := <-wb.free:
			wb.pool.Put(&b)
		default:
			return wb.err
		}
	}
}

// teeReader reads the first size bytes of src in pieces, each queued for
// writing at its offset once the chunker has read it; bytes past size
// are passed on unwritten, for the chunker to refuse.
type teeReader struct {
	src  io.Reader
	wb   *writeBehind
	size int64
	off  int64  // offset of cur in the file
	cur  []byte // the piece being read
	pos  int
	err  error // src's error, returned once cur is read
}

func (t *teeReader) Read(p []byte) (int, error) {
	if t.pos == len(t.cur) {
		t.flush()
		if t.err != nil {
			return 0, t.err
		}
		if t.off >= t.size {
			return t.src.Read(p)
		}
		b, err := t.wb.piece(int(min(behindPiece, t.size-t.off)))
		if err != nil {
			return 0, err
		}
		m, err := io.ReadFull(t.src, b)
		if errors.Is(err, io.ErrUnexpectedEOF) {
			err = io.EOF // the stream ended early: the caller finds the size short
		}
		t.cur, t.pos, t.err = b[:m], 0, err
		if m == 0 {
			t.cur = nil
			t.wb.free <- b[:cap(b)]
			return 0, t.err
		}
	}
	n := copy(p, t.cur[t.pos:])
	t.pos += n
	return n, nil
}

// flush queues the piece read so far, if any.
func (t *teeReader) flush() {
	if t.cur == nil {
		return
	}
	t.wb.put(t.cur, t.off)
	t.off += int64(len(t.cur))
	t.cur, t.pos = nil, 0
}
