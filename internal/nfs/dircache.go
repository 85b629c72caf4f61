package nfs

import (
	"crypto/sha256"
	"encoding/binary"
	"io/fs"
	"strconv"
	"sync"
	"time"

	gonfs "github.com/willscott/go-nfs"
)

// go-nfs re-reads (and sorts) the whole directory for every READDIR/READDIRPLUS page unless the
// handler implements gonfs.CachingHandler. The connHandler does, with a server-wide cache of
// listings keyed by cookie verifier: a client paging through a directory is served from one
// snapshot, read once. Verifiers are a hash of who lists what and of the names, as go-nfs's own,
// so a listing evicted from the cache and read again gets the same verifier if the directory did
// not change (and NFS3ERR_BAD_COOKIE, making the client start over, if it did).
var _ gonfs.CachingHandler = (*connHandler)(nil)

const (
	dirListingTTL        = time.Minute
	maxCachedDirEntries  = 1 << 18 // all listings together
	maxCachedDirListings = 256
)

type dirListing struct {
	verf     uint64
	key      string
	contents []fs.FileInfo
	expires  time.Time
}

type dirCache struct {
	mu      sync.Mutex
	byVerf  map[uint64]*dirListing
	fifo    []*dirListing
	entries int
}

// listingKey names who lists which directory: the export root, the identity and the path.
func (h *connHandler) listingKey(path string) string {
	key := ""
	if c := h.c.current(); c != nil && c.listView != nil {
		key = c.listView.APID + "\x00" + strconv.FormatUint(c.listView.Ino, 10) + "\x00" + c.listIdent
	}
	return key + "\x00" + path
}

// VerifierFor records a fresh listing (sorted by name) and returns its cookie verifier.
func (h *connHandler) VerifierFor(path string, contents []fs.FileInfo) uint64 {
	key := h.listingKey(path)
	sum := sha256.New()
	sum.Write([]byte(key))
	for _, c := range contents {
		sum.Write([]byte{0})
		sum.Write([]byte(c.Name()))
	}
	verf := binary.BigEndian.Uint64(sum.Sum(nil)) | 1
	h.s.dirs.put(&dirListing{verf: verf, key: key, contents: contents, expires: time.Now().Add(dirListingTTL)})
	return verf
}

// DataForVerifier returns the listing a verifier was given for, or nil. A call the handler denied
// (the file system policy no longer grants mounting) is not served from the cache.
func (h *connHandler) DataForVerifier(path string, verifier uint64) []fs.FileInfo {
	if c := h.c.current(); c != nil && c.deny != nil {
		return nil
	}
	return h.s.dirs.get(verifier, h.listingKey(path))
}

func (d *dirCache) put(l *dirListing) {
	if len(l.contents) > maxCachedDirEntries {
		return
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.byVerf == nil {
		d.byVerf = make(map[uint64]*dirListing)
	}
	if old, ok := d.byVerf[l.verf]; ok {
		old.expires = l.expires
		return
	}
	now := time.Now()
	for len(d.fifo) > 0 && (len(d.fifo) >= maxCachedDirListings || d.entries+len(l.contents) > maxCachedDirEntries || d.fifo[0].expires.Before(now)) {
		old := d.fifo[0]
		d.fifo = d.fifo[1:]
		d.entries -= len(old.contents)
		if d.byVerf[old.verf] == old {
			delete(d.byVerf, old.verf)
		}
	}
	d.byVerf[l.verf] = l
	d.fifo = append(d.fifo, l)
	d.entries += len(l.contents)
}

func (d *dirCache) get(verf uint64, key string) []fs.FileInfo {
	d.mu.Lock()
	defer d.mu.Unlock()
	l, ok := d.byVerf[verf]
	if !ok || l.key != key || time.Now().After(l.expires) {
		return nil
	}
	return l.contents
}
