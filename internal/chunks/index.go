package chunks

import (
	"context"
	"fmt"
	"io"
	"os"
	"strings"
	"sync"

	"golang.org/x/sys/unix"

	"github.com/efsd/efsd/internal/treesync"
)

// Loc is where a chunk's bytes were seen at the destination: Length bytes
// at Offset in the file Path (relative to the destination root).
type Loc struct {
	Path   string
	Offset int64
	Length int
}

// Index is the destination's memory of where chunks are: hash → places in
// its files. It is a hint, never trusted: a read through it re-hashes the
// bytes (the file may have been rewritten since), and a place that no
// longer holds its chunk is forgotten. It is safe for concurrent use.
type Index struct {
	root   int // the destination root, O_DIRECTORY
	mu     sync.Mutex
	byHash map[Hash][]Loc
	byPath map[string][]Chunk
	pieces sync.Pool // *[]byte of behindPiece bytes, for ReceiveAt
	cuts   sync.Pool // *[]byte of chunkerBuf bytes, ReceiveAt's chunkers
}

// OpenIndex opens the destination root dir with an empty index; Scan fills
// it from the files already there.
func OpenIndex(dir string) (*Index, error) {
	fd, err := treesync.OpenAt(unix.AT_FDCWD, dir, unix.O_RDONLY|unix.O_DIRECTORY, 0)
	if err != nil {
		return nil, fmt.Errorf("open destination %s: %w", dir, err)
	}
	return &Index{root: fd, byHash: map[Hash][]Loc{}, byPath: map[string][]Chunk{}}, nil
}

// Close releases the root.
func (ix *Index) Close() error { return unix.Close(ix.root) }

// Sync makes the destination's file system durable (treesync.Syncfs): the
// renames of assembled files reach the disk with it, as in treesync, where
// the pass's final syncfs covers them.
func (ix *Index) Sync() error { return treesync.Syncfs(ix.root) }

// Set records that the file rel holds the chunks l, replacing what was
// known of rel.
func (ix *Index) Set(rel string, l []Chunk) {
	ix.mu.Lock()
	defer ix.mu.Unlock()
	ix.removeLocked(rel)
	ix.byPath[rel] = l
	for _, c := range l {
		ix.byHash[c.Hash] = append(ix.byHash[c.Hash], Loc{Path: rel, Offset: c.Offset, Length: c.Length})
	}
}

// Remove forgets the file rel (deleted, or renamed: Set the new name).
func (ix *Index) Remove(rel string) {
	ix.mu.Lock()
	defer ix.mu.Unlock()
	ix.removeLocked(rel)
}

func (ix *Index) removeLocked(rel string) {
	for _, c := range ix.byPath[rel] {
		ix.dropLocked(c.Hash, Loc{Path: rel, Offset: c.Offset, Length: c.Length})
	}
	delete(ix.byPath, rel)
}

func (ix *Index) dropLocked(h Hash, loc Loc) {
	locs := ix.byHash[h]
	for i, l := range locs {
		if l == loc {
			locs = append(locs[:i:i], locs[i+1:]...)
			break
		}
	}
	if len(locs) == 0 {
		delete(ix.byHash, h)
	} else {
		ix.byHash[h] = locs
	}
}

// Has says whether the index knows a place for h (unverified: a read may
// still find the bytes changed).
func (ix *Index) Has(h Hash) bool {
	ix.mu.Lock()
	defer ix.mu.Unlock()
	return len(ix.byHash[h]) > 0
}

// Missing is the distinct hashes of l the index knows no place for: what
// the destination asks the source for.
func (ix *Index) Missing(l []Chunk) []Hash {
	ix.mu.Lock()
	defer ix.mu.Unlock()
	seen := map[Hash]bool{}
	var out []Hash
	for _, c := range l {
		if !seen[c.Hash] && len(ix.byHash[c.Hash]) == 0 {
			out = append(out, c.Hash)
		}
		seen[c.Hash] = true
	}
	return out
}

// Files is the number of files indexed.
func (ix *Index) Files() int {
	ix.mu.Lock()
	defer ix.mu.Unlock()
	return len(ix.byPath)
}

// read fills buf (len = the chunk's length) with the bytes of h from a
// place the index knows, verified. Places that no longer hold h are
// forgotten and counted in stale.
func (ix *Index) read(h Hash, buf []byte) (ok bool, stale int) {
	for {
		ix.mu.Lock()
		var loc Loc
		found := false
		for _, l := range ix.byHash[h] {
			if l.Length == len(buf) {
				loc, found = l, true
				break
			}
		}
		ix.mu.Unlock()
		if !found {
			return false, stale
		}
		if ix.readLoc(loc, buf) && Sum(buf) == h {
			return true, stale
		}
		stale++
		ix.mu.Lock()
		ix.dropLocked(h, loc)
		ix.mu.Unlock()
	}
}

func (ix *Index) readLoc(loc Loc, buf []byte) bool {
	fd, err := ix.openFile(loc.Path)
	if err != nil {
		return false
	}
	defer unix.Close(fd)
	n, err := treesync.PreadFull(fd, buf, loc.Offset)
	return err == nil && n == len(buf)
}

// openFile opens the regular file rel under the root for reading, never
// following a symlink on the way.
func (ix *Index) openFile(rel string) (int, error) {
	pfd, base, err := treesync.OpenParent(ix.root, rel)
	if err != nil {
		return -1, err
	}
	defer unix.Close(pfd)
	fd, err := openRead(pfd, base)
	if err != nil {
		return -1, err
	}
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil || st.Mode&unix.S_IFMT != unix.S_IFREG {
		unix.Close(fd)
		return -1, fmt.Errorf("%s: not a regular file", rel)
	}
	return fd, nil
}

func openRead(dirfd int, name string) (int, error) {
	const fl = unix.O_RDONLY | unix.O_NOFOLLOW | unix.O_NONBLOCK | unix.O_NOCTTY
	fd, err := treesync.OpenAt(dirfd, name, fl|unix.O_NOATIME, 0)
	if err == unix.EPERM { // O_NOATIME needs ownership or CAP_FOWNER
		fd, err = treesync.OpenAt(dirfd, name, fl, 0)
	}
	return fd, err
}

// AddFile chunks the destination file rel and indexes it.
func (ix *Index) AddFile(rel string) error {
	fd, err := ix.openFile(rel)
	if err != nil {
		return fmt.Errorf("index %s: %w", rel, err)
	}
	f := os.NewFile(uintptr(fd), rel)
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return fmt.Errorf("index %s: %w", rel, err)
	}
	// The size at open chooses the chunk sizes, as the sender's does; a
	// file growing meanwhile is indexed up to that size.
	l, err := List(io.LimitReader(f, st.Size()), st.Size())
	if err != nil {
		return fmt.Errorf("index %s: %w", rel, err)
	}
	ix.Set(rel, l)
	return nil
}

// Scan indexes every regular file under the root, walking directories by
// descriptor without following symlinks; temporaries (treesync.TmpPrefix)
// are skipped: an interrupted assembly's partial is found by its target.
func (ix *Index) Scan(ctx context.Context) error {
	root, err := unix.Dup(ix.root)
	if err != nil {
		return err
	}
	return ix.scanDir(ctx, root, "")
}

func (ix *Index) scanDir(ctx context.Context, fd int, rel string) error {
	d := os.NewFile(uintptr(fd), rel)
	defer d.Close()
	for {
		ents, err := d.ReadDir(256)
		for _, e := range ents {
			if err := ctx.Err(); err != nil {
				return err
			}
			name := e.Name()
			if strings.HasPrefix(name, treesync.TmpPrefix) {
				continue
			}
			p := name
			if rel != "" {
				p = rel + "/" + name
			}
			switch {
			case e.Type().IsRegular():
				if err := ix.AddFile(p); err != nil {
					return err
				}
			case e.IsDir():
				sub, err := treesync.OpenAt(fd, name, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW, 0)
				if err != nil {
					return fmt.Errorf("index %s: %w", p, err)
				}
				if err := ix.scanDir(ctx, sub, p); err != nil {
					return err
				}
			}
		}
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return fmt.Errorf("index %s: %w", rel, err)
		}
	}
}

// Lookup returns the chunk list the index holds for the file rel (as
// Scan or Assemble last saw it), unverified.
func (ix *Index) Lookup(rel string) ([]Chunk, bool) {
	ix.mu.Lock()
	defer ix.mu.Unlock()
	l, ok := ix.byPath[rel]
	return l, ok
}

// NeedAt is the distinct hashes of l that an Assemble of rel would have
// to fetch as things stand: known neither to the index nor, verified, in
// the partial temporary of an interrupted assembly of rel. What a remote
// source is asked to send. The caller holds rel's parent open (pfd, from
// treesync.OpenParent or Parents); base is rel's last component.
func (ix *Index) NeedAt(pfd int, base, rel string, l []Chunk) ([]Hash, error) {
	if err := CheckList(l); err != nil {
		return nil, fmt.Errorf("need %s: %w", rel, err)
	}
	have := map[Hash]bool{}
	if fd, err := openRead(pfd, partName(base)); err == nil {
		var st unix.Stat_t
		if unix.Fstat(fd, &st) == nil && st.Mode&unix.S_IFMT == unix.S_IFREG {
			buf := make([]byte, MaxSize)
			for _, c := range l {
				if c.Offset+int64(c.Length) > st.Size {
					break
				}
				b := buf[:c.Length]
				if n, err := treesync.PreadFull(fd, b, c.Offset); err == nil && n == c.Length && Sum(b) == c.Hash {
					have[c.Hash] = true
				}
			}
		}
		unix.Close(fd)
	}
	var out []Hash
	for _, h := range ix.Missing(l) {
		if !have[h] {
			out = append(out, h)
		}
	}
	return out, nil
}

// Each calls fn with every file the index knows and its chunk list (a
// snapshot: fn may use the index).
func (ix *Index) Each(fn func(rel string, l []Chunk)) {
	ix.mu.Lock()
	paths := make([]string, 0, len(ix.byPath))
	lists := make([][]Chunk, 0, len(ix.byPath))
	for p, l := range ix.byPath {
		paths = append(paths, p)
		lists = append(lists, l)
	}
	ix.mu.Unlock()
	for i, p := range paths {
		fn(p, lists[i])
	}
}
