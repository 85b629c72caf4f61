package chunks

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/efsd/efsd/internal/treesync"
)

// ErrTooManyChunks: a file received whole cuts into more chunks than the
// caller allows.
var ErrTooManyChunks = errors.New("more chunks than allowed")

// ReceiveAt makes rel (its parent held open as pfd) hold the size bytes r
// yields, a file sent whole: its source knew the destination could hold
// none of it (a first copy), and spared itself cutting and hashing it.
// The bytes are cut here, with the sizes a source uses for a file of that
// size, each chunk hashed as it is written; the list is returned, with the
// index updated as AssembleAt updates it. The guarantees are AssembleAt's:
// a temporary, locked, made durable before it is renamed (or staged:
// Defer), no path outside the root. A partial temporary is overwritten. r
// yielding fewer or more than size bytes, or the cut making more than
// maxChunks chunks, is an error; what was written stays in the temporary,
// for a later assembly to resume from.
func (ix *Index) ReceiveAt(ctx context.Context, pfd int, rel string, size int64, r io.Reader, maxChunks int, o *AssembleOptions) (l []Chunk, st Stats, err error) {
	if o == nil {
		o = &AssembleOptions{}
	}
	base := rel[strings.LastIndexByte(rel, '/')+1:]
	if strings.HasPrefix(base, treesync.TmpPrefix) {
		return nil, st, fmt.Errorf("receive %s: name reserved for temporaries", rel)
	}
	if size < 1 {
		return nil, st, fmt.Errorf("receive %s: %d bytes", rel, size)
	}
	fd, tmp, tst, err := openTemp(pfd, base, o.Perm)
	if err != nil {
		return nil, st, fmt.Errorf("receive %s: %w", rel, err)
	}
	defer unix.Close(fd)
	if tst.Size > size {
		if err := unix.Ftruncate(fd, size); err != nil {
			return nil, st, fmt.Errorf("receive %s: truncate temporary: %w", rel, err)
		}
	}
	w := &partWriter{fd: fd, syncEvery: o.SyncEvery}
	if w.syncEvery == 0 {
		w.syncEvery = defaultSyncEvery
	}
	wb := newWriteBehind(w, &ix.pieces)
	// One byte more than size: a stream that goes on is refused, not cut
	// short.
	tee := &teeReader{src: io.LimitReader(r, size+1), wb: wb, size: size}
	// fail stops the writer, keeps what landed (it survives a power loss
	// too) and returns err.
	fail := func(err error) ([]Chunk, Stats, error) {
		tee.flush()
		wb.stop()
		w.sync()
		return nil, st, fmt.Errorf("receive %s: %w", rel, err)
	}
	c := newChunker(tee, sizesFor(size), size, &ix.cuts)
	defer c.release(&ix.cuts)
	for {
		if err := ctx.Err(); err != nil {
			return fail(err)
		}
		off, data, err := c.next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return fail(err)
		}
		if off+int64(len(data)) > size {
			return fail(fmt.Errorf("more than %d bytes", size))
		}
		if len(l) == maxChunks {
			return fail(fmt.Errorf("%w (%d)", ErrTooManyChunks, maxChunks))
		}
		l = append(l, Chunk{Hash: Sum(data), Offset: off, Length: len(data)})
		st.Fetched++
		st.FetchedBytes += int64(len(data))
	}
	tee.flush()
	if err := wb.stop(); err != nil {
		return nil, st, fmt.Errorf("receive %s: %w", rel, err)
	}
	if got := Size(l); got != size {
		w.sync()
		return nil, st, fmt.Errorf("receive %s: %d of %d bytes: %w", rel, got, size, io.ErrUnexpectedEOF)
	}
	if st.Staged, err = ix.finishTemp(pfd, fd, &tst, rel, tmp, l, w, o); err != nil {
		return nil, st, fmt.Errorf("receive %s: %w", rel, err)
	}
	return l, st, nil
}

// HasTemp says whether the directory pfd holds a temporary of base: what
// an interrupted assembly (or receipt) of it left, which a new one
// resumes from given the chunk list.
func HasTemp(pfd int, base string) bool {
	var st unix.Stat_t
	return unix.Fstatat(pfd, partName(base), &st, unix.AT_SYMLINK_NOFOLLOW) == nil
}
