package remotesync

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"os"

	"golang.org/x/sys/unix"

	"github.com/efsd/efsd/internal/chunks"
	"github.com/efsd/efsd/internal/treesync"
)

// The receiver's chunk index is written to a file when the receiver is
// closed and read back (then deleted) when it opens, so that a restart
// does not read the whole destination again. Each file's entry carries
// its identity at Close (inode, ctime, size): at load, a file whose
// identity changed is chunked again, as is every file when the snapshot
// is missing (a crash) or damaged. A file created at the destination
// while the receiver was down is not indexed: the index is a hint, whose
// only cost when incomplete is chunks sent that were already there.
//
// Format: magic, then per file: path length (4 bytes) and path, inode,
// ctime, size (8 bytes each), chunk count (4) and chunkRec bytes a chunk;
// a SHA-256 of everything before it at the end.

const indexMagic = "EFSDRIX3" // 2: lists of 128 KiB chunks on average; 3: of 64 KiB, level 1

func (r *Receiver) indexPath() string { return r.statePath + ".index" }

// saveIndex writes the snapshot (best effort: without it the next open
// scans).
func (r *Receiver) saveIndex() error {
	var b bytes.Buffer
	b.WriteString(indexMagic)
	var failed error
	r.ix.Each(func(rel string, l []chunks.Chunk) {
		if failed != nil {
			return
		}
		pfd, base, err := treesync.OpenParent(r.rootFd, rel)
		if err != nil {
			return
		}
		st, err := lstatAt(pfd, base)
		unix.Close(pfd)
		if err != nil || typeOf(&st) != unix.S_IFREG || st.Size != chunks.Size(l) {
			return
		}
		b.Write(binary.BigEndian.AppendUint32(nil, uint32(len(rel))))
		b.WriteString(rel)
		var x [28]byte
		binary.BigEndian.PutUint64(x[0:], st.Ino)
		binary.BigEndian.PutUint64(x[8:], uint64(st.Ctim.Nano()))
		binary.BigEndian.PutUint64(x[16:], uint64(st.Size))
		binary.BigEndian.PutUint32(x[24:], uint32(len(l)))
		b.Write(x[:])
		b.Write(encodeList(l))
	})
	sum := sha256.Sum256(b.Bytes())
	b.Write(sum[:])
	return writeFileAtomic(r.indexPath(), b.Bytes())
}

// indexRec is one file of a snapshot.
type indexRec struct {
	rel        string
	ino        uint64
	ctime      int64
	size       int64
	list       []chunks.Chunk
	identityOK bool
}

func parseIndex(b []byte) ([]indexRec, error) {
	if len(b) < len(indexMagic)+sha256.Size || string(b[:len(indexMagic)]) != indexMagic {
		return nil, errors.New("not an index snapshot")
	}
	body := b[:len(b)-sha256.Size]
	if sum := sha256.Sum256(body); !bytes.Equal(sum[:], b[len(body):]) {
		return nil, errors.New("index snapshot damaged")
	}
	body = body[len(indexMagic):]
	var recs []indexRec
	for len(body) > 0 {
		if len(body) < 4 {
			return nil, errors.New("index snapshot torn")
		}
		n := int(binary.BigEndian.Uint32(body))
		if n > maxPath || len(body) < 4+n+28 {
			return nil, errors.New("index snapshot torn")
		}
		rec := indexRec{rel: string(body[4 : 4+n])}
		x := body[4+n:]
		rec.ino = binary.BigEndian.Uint64(x)
		rec.ctime = int64(binary.BigEndian.Uint64(x[8:]))
		rec.size = int64(binary.BigEndian.Uint64(x[16:]))
		nc := int(binary.BigEndian.Uint32(x[24:]))
		if nc > maxFileChunks || len(x) < 28+nc*chunkRec {
			return nil, errors.New("index snapshot torn")
		}
		l, err := decodeList(x[28 : 28+nc*chunkRec])
		if err != nil || chunks.Size(l) != rec.size {
			return nil, fmt.Errorf("index snapshot: bad list for %q", rec.rel)
		}
		rec.list = l
		recs = append(recs, rec)
		body = x[28+nc*chunkRec:]
	}
	return recs, nil
}

// loadIndex fills the index from the snapshot, if there is a good one
// (and deletes it: a crash from now on must not find it), checking each
// file's identity; it says whether it did.
func (r *Receiver) loadIndex(ctx context.Context) bool {
	if r.statePath == "" {
		return false
	}
	b, err := os.ReadFile(r.indexPath())
	if err != nil {
		return false
	}
	os.Remove(r.indexPath())
	recs, err := parseIndex(b)
	if err != nil {
		r.log.Warn("replication receiver: index snapshot unusable, scanning the destination", "err", err)
		return false
	}
	for _, rec := range recs {
		if ctx.Err() != nil {
			return false
		}
		if treesync.CheckRel(rec.rel) != nil {
			continue
		}
		pfd, base, err := treesync.OpenParent(r.rootFd, rec.rel)
		if err != nil {
			continue
		}
		st, err := lstatAt(pfd, base)
		unix.Close(pfd)
		if err != nil || typeOf(&st) != unix.S_IFREG {
			continue
		}
		if st.Ino == rec.ino && st.Ctim.Nano() == rec.ctime && st.Size == rec.size {
			r.ix.Set(rec.rel, rec.list)
		} else if err := r.ix.AddFile(rec.rel); err != nil {
			r.log.Debug("replication receiver: cannot index a file", "path", rec.rel, "err", err)
		}
	}
	return true
}
