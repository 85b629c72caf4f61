package nfs

import (
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"strconv"
	"strings"
	"sync"

	gonfs "github.com/willscott/go-nfs"
)

// HandleStore persists file handles: an NFS handle names a file by (file system, inode); the store
// maps that to where the file is, so handles survive restarts and renames.
//
// The stored string is a locator, not a full path: "<parent inode in decimal>/<name>", e.g.
// "1835009/report.txt" (the name is the raw directory entry name, any bytes but '/' and NUL). A
// file's path is found by following locators up to the file system's root directory, whose inode
// has no entry. Renaming a directory therefore rewrites one entry, whatever the size of the
// subtree below it. Implementations store the string as given and need not interpret it.
type HandleStore interface {
	PutHandle(fsID string, ino uint64, path string) error // insert or update
	HandlePath(fsID string, ino uint64) (path string, ok bool, err error)
	DeleteHandle(fsID string, ino uint64) error
}

// NewMemHandles returns an in-memory HandleStore (for tests; handles do not survive the process).
func NewMemHandles() HandleStore {
	return &memHandles{m: make(map[memKey]string)}
}

type memKey struct {
	fsID string
	ino  uint64
}

type memHandles struct {
	mu sync.Mutex
	m  map[memKey]string
}

func (h *memHandles) PutHandle(fsID string, ino uint64, path string) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.m[memKey{fsID, ino}] = path
	return nil
}

func (h *memHandles) HandlePath(fsID string, ino uint64) (string, bool, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	p, ok := h.m[memKey{fsID, ino}]
	return p, ok, nil
}

func (h *memHandles) DeleteHandle(fsID string, ino uint64) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	delete(h.m, memKey{fsID, ino})
	return nil
}

// File handle layout (big-endian, at most gonfs.FHSize = 64 bytes):
//
//	[0]      version (1)
//	[1:9]    first 8 bytes of SHA-256(FileSystemID)
//	[9:17]   inode number
//	[17:25]  generation: the inode's birth time in ns since the epoch (statx btime), 0 if the host
//	         file system does not report one; it tells a reused inode number from the original
//	[25]     length n of the access point ID (0: the handle belongs to a plain mount)
//	[26:26+n] access point ID (the export root and identity every RPC through the handle uses)
//	zero bytes up to a multiple of 4
//
// The length must be a multiple of 4: go-nfs v0.0.4 reads the handle of GETATTR, SETATTR, ACCESS,
// READLINK, COMMIT, FSSTAT, FSINFO and PATHCONF with a ReadOpaque that ignores XDR padding, so a
// padded handle would shift the arguments that follow it.
const (
	handleVersion  = 1
	handleFixedLen = 26
	maxAPIDLen     = gonfs.FHSize - handleFixedLen // 38
)

func handleLen(apIDLen int) int { return (handleFixedLen + apIDLen + 3) &^ 3 }

var errBadHandle = errors.New("nfs: malformed file handle")

type fileHandle struct {
	fsTag [8]byte
	ino   uint64
	gen   uint64
	apID  string
}

func fsTagOf(fsID string) [8]byte {
	sum := sha256.Sum256([]byte(fsID))
	var t [8]byte
	copy(t[:], sum[:8])
	return t
}

func (h fileHandle) encode() []byte {
	b := make([]byte, handleLen(len(h.apID)))
	b[0] = handleVersion
	copy(b[1:9], h.fsTag[:])
	binary.BigEndian.PutUint64(b[9:17], h.ino)
	binary.BigEndian.PutUint64(b[17:25], h.gen)
	b[25] = byte(len(h.apID))
	copy(b[26:], h.apID)
	return b
}

func decodeHandle(b []byte) (fileHandle, error) {
	var h fileHandle
	if len(b) < handleFixedLen || b[0] != handleVersion {
		return h, errBadHandle
	}
	n := int(b[25])
	if len(b) != handleLen(n) || len(b) > gonfs.FHSize {
		return h, errBadHandle
	}
	for _, pad := range b[handleFixedLen+n:] {
		if pad != 0 {
			return h, errBadHandle
		}
	}
	copy(h.fsTag[:], b[1:9])
	h.ino = binary.BigEndian.Uint64(b[9:17])
	h.gen = binary.BigEndian.Uint64(b[17:25])
	h.apID = string(b[26 : 26+n])
	return h, nil
}

func formatLocator(parent uint64, name string) string {
	return strconv.FormatUint(parent, 10) + "/" + name
}

func parseLocator(s string) (parent uint64, name string, ok bool) {
	i := strings.IndexByte(s, '/')
	if i <= 0 || i == len(s)-1 {
		return 0, "", false
	}
	p, err := strconv.ParseUint(s[:i], 10, 64)
	if err != nil {
		return 0, "", false
	}
	name = s[i+1:]
	if !validName(name) {
		return 0, "", false
	}
	return p, name, true
}

// validName reports whether s can be one directory entry name.
func validName(s string) bool {
	return s != "" && s != "." && s != ".." && !strings.ContainsAny(s, "/\x00")
}

// handleTable is the server's view of the HandleStore for one file system: a bounded cache of
// locators in front of the store. The cache is only a hint: every resolution is verified against the
// file system, and a failed verification is retried from the store.
type handleTable struct {
	fsID  string
	store HandleStore

	mu    sync.Mutex
	cache map[uint64]string
}

const maxCachedLocators = 1 << 17

func newHandleTable(fsID string, store HandleStore) *handleTable {
	return &handleTable{fsID: fsID, store: store, cache: make(map[uint64]string)}
}

func (t *handleTable) cached(ino uint64) (string, bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	l, ok := t.cache[ino]
	return l, ok
}

func (t *handleTable) remember(ino uint64, loc string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if len(t.cache) >= maxCachedLocators {
		clear(t.cache)
	}
	t.cache[ino] = loc
}

func (t *handleTable) forget(ino uint64) {
	t.mu.Lock()
	defer t.mu.Unlock()
	delete(t.cache, ino)
}

// get returns the locator of ino, from the cache unless fresh is set.
func (t *handleTable) get(ino uint64, fresh bool) (string, bool, error) {
	if !fresh {
		if l, ok := t.cached(ino); ok {
			return l, true, nil
		}
	}
	l, ok, err := t.store.HandlePath(t.fsID, ino)
	if err != nil || !ok {
		t.forget(ino)
		return "", false, err
	}
	t.remember(ino, l)
	return l, true, nil
}

// put records that ino is name in directory parent. Unless force is set, a locator already known to
// be stored is not written again (LOOKUP and READDIRPLUS record every entry they return).
func (t *handleTable) put(ino, parent uint64, name string, force bool) error {
	loc := formatLocator(parent, name)
	if !force {
		if l, ok := t.cached(ino); ok && l == loc {
			return nil
		}
		if l, ok, err := t.store.HandlePath(t.fsID, ino); err == nil && ok && l == loc {
			t.remember(ino, loc)
			return nil
		}
	}
	if err := t.store.PutHandle(t.fsID, ino, loc); err != nil {
		t.forget(ino)
		return err
	}
	t.remember(ino, loc)
	return nil
}

func (t *handleTable) del(ino uint64) error {
	t.forget(ino)
	return t.store.DeleteHandle(t.fsID, ino)
}
