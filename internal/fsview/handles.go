package fsview

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"hash"
	"strconv"
	"strings"
	"sync"
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

// File handle layout (big-endian, at most MaxHandleSize = 64 bytes):
//
//	[0]        version (2)
//	[1]        length n of the access point ID (0: the handle belongs to the file system root)
//	[2:10]     inode number
//	[10:18]    generation: the inode's birth time in ns since the epoch (statx btime), 0 if the host
//	           file system does not report one; it tells a reused inode number from the original
//	[18:18+n]  access point ID (the export root and identity every RPC through the handle uses)
//	           zero bytes up to a multiple of 4
//	[L-16:L]   MAC: HMAC-SHA256, truncated to 16 bytes, keyed with the data directory's handle key,
//	           over a domain label, the file system ID (account/region/ID as the Export names it)
//	           and every byte before the MAC
//
// The MAC makes handles unforgeable: a client can only present handles the server issued, for the
// file system, access point and file it issued them for. Changing any byte (the access point ID,
// its length, the inode) or moving a handle to another file system (whose ID is in the MAC input
// but not in the handle) fails verification. Version 1 handles (no MAC) are stale.
//
// The same handles serve NFSv3 and NFSv4 (NFS4_FHSIZE is 128 bytes, NFS3_FHSIZE 64).
//
// The length must be a multiple of 4: go-nfs v0.0.4 reads the handle of GETATTR, SETATTR, ACCESS,
// READLINK, COMMIT, FSSTAT, FSINFO and PATHCONF with a ReadOpaque that ignores XDR padding, so a
// padded handle would shift the arguments that follow it.
const (
	// MaxHandleSize is the longest handle issued (NFS3_FHSIZE).
	MaxHandleSize = 64

	handleVersion   = 2
	handleHeaderLen = 18
	handleMACLen    = 16
	maxAPIDLen      = MaxHandleSize - handleHeaderLen - handleMACLen // 30; EFS's are 22

	handleMACLabel = "efsd nfs file handle v2\x00"
)

func handleLen(apIDLen int) int { return (handleHeaderLen+apIDLen+3)&^3 + handleMACLen }

// Errors of Decode.
var (
	ErrBadHandle    = errors.New("fsview: malformed file handle")
	ErrForgedHandle = errors.New("fsview: file handle fails authentication")
)

// Handle is what a file handle carries.
type Handle struct {
	Ino  uint64
	Gen  uint64 // birth time (ns), 0 if the host file system has none
	APID string // access point whose root and identity calls through the handle use; "" for none
}

// HandleCodec encodes and authenticates the handles of one file system.
type HandleCodec struct {
	prefix []byte    // handleMACLabel, length of the file system ID (2 bytes), file system ID
	macs   sync.Pool // of hash.Hash: HMAC-SHA256 with the key, reset
}

// NewHandleCodec returns the codec of file system fsID's handles, authenticated with key.
func NewHandleCodec(key []byte, fsID string) *HandleCodec {
	k := bytes.Clone(key)
	prefix := make([]byte, 0, len(handleMACLabel)+2+len(fsID))
	prefix = append(prefix, handleMACLabel...)
	prefix = binary.BigEndian.AppendUint16(prefix, uint16(len(fsID)))
	prefix = append(prefix, fsID...)
	c := &HandleCodec{prefix: prefix}
	c.macs.New = func() any { return hmac.New(sha256.New, k) }
	return c
}

// mac computes the MAC of a handle's bytes before the MAC into out.
func (c *HandleCodec) mac(body []byte, out *[sha256.Size]byte) {
	m := c.macs.Get().(hash.Hash)
	m.Reset()
	m.Write(c.prefix)
	m.Write(body)
	m.Sum(out[:0])
	c.macs.Put(m)
}

// Encode returns h's handle; nil (which no call accepts) for an access point ID too long to carry,
// which AccessPointView never serves.
func (c *HandleCodec) Encode(h Handle) []byte {
	n := len(h.APID)
	if n > maxAPIDLen {
		return nil
	}
	b := make([]byte, handleLen(n))
	b[0] = handleVersion
	b[1] = byte(n)
	binary.BigEndian.PutUint64(b[2:10], h.Ino)
	binary.BigEndian.PutUint64(b[10:18], h.Gen)
	copy(b[handleHeaderLen:], h.APID)
	var sum [sha256.Size]byte
	body := len(b) - handleMACLen
	c.mac(b[:body], &sum)
	copy(b[body:], sum[:handleMACLen])
	return b
}

// Decode checks a handle's shape and MAC and returns its fields.
func (c *HandleCodec) Decode(b []byte) (Handle, error) {
	var h Handle
	if len(b) < handleLen(0) || len(b) > MaxHandleSize || b[0] != handleVersion {
		return h, ErrBadHandle
	}
	n := int(b[1])
	if n > maxAPIDLen || len(b) != handleLen(n) {
		return h, ErrBadHandle
	}
	body := len(b) - handleMACLen
	var sum [sha256.Size]byte
	c.mac(b[:body], &sum)
	if !hmac.Equal(sum[:handleMACLen], b[body:]) {
		return h, ErrForgedHandle
	}
	for _, pad := range b[handleHeaderLen+n : body] {
		if pad != 0 {
			return h, ErrBadHandle // authentic, so never issued; checked all the same
		}
	}
	h.Ino = binary.BigEndian.Uint64(b[2:10])
	h.Gen = binary.BigEndian.Uint64(b[10:18])
	h.APID = string(b[handleHeaderLen : handleHeaderLen+n])
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
	if !ValidName(name) {
		return 0, "", false
	}
	return p, name, true
}

// ValidName reports whether s can be one directory entry name.
func ValidName(s string) bool {
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
