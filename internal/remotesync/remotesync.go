// Package remotesync makes a directory tree on another efsd deployment
// identical to a local one (replication between deployments, issue #10),
// over any request/reply transport: the source's Sender pushes, the
// destination's Receiver applies.
//
// A pass is a session of requests: begin, batches of entries, the chunk
// data the receiver asks for, commit. Only changes cross: the sender keeps
// the state the receiver last acknowledged (per path: type, mode, owner,
// size, mtime, symlink target, hard-link group, chunk list) under a
// generation number, and sends the entries that differ from it; the
// receiver keeps the generation it last committed and asks for a full
// listing when the two disagree (first pass, lost state, a crash between
// the receiver's commit and the sender's record of it). A changed file is
// sent as its chunk list (package chunks); the receiver answers which
// chunks it lacks — not in its index of local files, not in the partial
// temporary of an interrupted assembly — and assembles the file from local
// bytes and the chunks sent, under a temporary made durable before it is
// renamed into place. So an edit resends a chunk or two, a rename or copy
// resends nothing, and an interrupted transfer resumes. A small file the
// receiver cannot hold (a first copy to an empty destination, a one-chunk
// file rewritten in place) goes inline with its batch instead: for it the
// list and the round trip would cost more than its bytes. A larger file
// going to a destination that held no file when the pass began is sent
// whole, unread until then: the receiver cuts and hashes it as it writes
// it and returns its list, so a first copy reads and hashes each byte
// once, at the destination, and no list crosses before the data.
//
// The commit applies what must wait for every file to be in place (hard
// links, deletions, whose bytes a renamed file may still need, directory
// metadata), makes everything durable with syncfs, persists the new
// generation, calls OnCommit, and only then acknowledges: a pass that
// returned nil left the destination identical and durable.
//
// Every request is hostile until checked: bodies and lists are bounded,
// paths are checked (treesync.CheckRel, no temporaries) and opened one
// component at a time without following symlinks, chunk bytes are
// verified against their hash, and a refused request leaves the receiver
// usable.
package remotesync

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"syscall"
	"unicode/utf8"

	"github.com/efsd/efsd/internal/chunks"
	"github.com/efsd/efsd/internal/treesync"
)

// Transport carries one request to the receiver and returns its reply.
// The peer package implements it over HTTP/2 + mutual TLS (POST
// .../sync/{op}); tests wire it straight to a Receiver. A failure the
// receiver reported comes back as a *RemoteError.
type Transport interface {
	RoundTrip(ctx context.Context, op string, body io.Reader) (io.ReadCloser, error)
}

// Ops are the operations a Receiver serves: the peer package routes these
// names (and only these) to Receiver.Serve.
var Ops = []string{OpBegin, OpBatch, OpChunks, OpCommit}

// The operations.
const (
	OpBegin  = "begin"
	OpBatch  = "batch"
	OpChunks = "chunks"
	OpCommit = "commit"
)

// RemoteError is a failure the receiver reported; the transport rebuilds
// it from the reply.
type RemoteError struct{ Code, Message string }

func (e *RemoteError) Error() string { return "receiver: " + e.Code + ": " + e.Message }

// Error codes of a RemoteError.
const (
	// CodeGone: no running configuration at the destination for this
	// (set by the peer server, never by a Receiver).
	CodeGone = "gone"
	// CodeNoSpace: ENOSPC or EDQUOT at the destination.
	CodeNoSpace = "nospace"
	// CodeReadOnly: the destination file system is read-only (EROFS).
	CodeReadOnly = "readonly"
	// CodeBusy: a newer session superseded this one, or the receiver is
	// closed.
	CodeBusy = "busy"
	// CodeProtocol: a malformed or out-of-bounds request.
	CodeProtocol = "protocol"
	// CodeInternal: anything else.
	CodeInternal = "internal"
)

// errBusy: the session was superseded by a newer one.
var errBusy = errors.New("session superseded by a newer one")

// errClosed: the receiver is closed.
var errClosed = errors.New("receiver closed")

// protoError is a request the receiver refuses as malformed.
type protoError struct{ msg string }

func (e *protoError) Error() string { return "protocol: " + e.msg }

func protof(format string, a ...any) error { return &protoError{fmt.Sprintf(format, a...)} }

// ErrorCode maps an error returned by Receiver.Serve to a RemoteError code.
func ErrorCode(err error) string {
	var pe *protoError
	var re *RemoteError
	switch {
	case err == nil:
		return ""
	case errors.As(err, &re):
		return re.Code
	case errors.As(err, &pe):
		return CodeProtocol
	case errors.Is(err, errBusy), errors.Is(err, errClosed), errors.Is(err, chunks.ErrBusy):
		return CodeBusy
	case errors.Is(err, syscall.ENOSPC), errors.Is(err, syscall.EDQUOT):
		return CodeNoSpace
	case errors.Is(err, syscall.EROFS):
		return CodeReadOnly
	}
	return CodeInternal
}

// Stats counts what a pass did. The treesync.Stats part has treesync's
// meaning and is counted by the receiver (BytesCopied: file bytes written
// at the destination, FilesCompared: files whose content the receiver
// read to check it).
type Stats struct {
	treesync.Stats
	// ChunksSent and BytesSent are the chunk frames that crossed the wire
	// (BytesSent after compression, frame headers included).
	ChunksSent, BytesSent int64
	// ChunksLocal counts chunks the destination already had (in its
	// index or in a partial temporary) for the files it assembled.
	ChunksLocal int64
	// WireBytes is every request and reply byte of the pass, both ways.
	WireBytes int64
	// Full says the pass was a full listing (first pass, lost state,
	// Verify), not a delta.
	Full bool
	// FilesWhole counts the files sent whole (wireEntry.Whole), cut at
	// the destination.
	FilesWhole int64
}

// Protocol version, sent in begin; a receiver refuses any other.
const protoVersion = 5 // 2: chunks requests carry several files; 3: chunk list deltas; 4: compressed batches with inline files, in sequence; 5: files sent whole

// Caps on what a receiver accepts.
const (
	maxHeader        = 64 << 10 // a request's JSON header line (begin, commit, chunks)
	maxBatchBody     = 64 << 20 // a batch's JSON (compressed, and decompressed)
	maxInlineBatch   = 4 << 20  // bytes of a batch's inline files (a sender closes a batch at inlineBatch)
	inlineMax        = 64 << 10 // bytes of one inline file
	maxSeqAhead      = 8        // how far ahead of the one being applied a batch may be numbered
	maxBatchEntries  = 16384    // entries in one batch
	maxSessionPaths  = 1 << 23  // entries in one session (a full listing's memory)
	maxPendingChunks = 1 << 22  // chunk records of announced files not yet assembled
	maxFileChunks    = 1 << 20  // chunks of one file (a file up to chunks.LargeFile has no more even were each chunk the minimum 16 KiB; a larger one, of 1 MiB chunks on average, reaches it near 1 TiB; its list fits a batch)
	maxPath          = 4096     // bytes of a path
	maxName          = 255      // bytes of a component
	maxTarget        = 4095     // bytes of a symlink target
	maxReply         = 64 << 20 // a reply the sender reads
	maxChunkStreams  = 8        // chunk streams a receiver assembles at once
	chunkRec         = 32 + 4   // a chunk in a list: hash, length (offsets are implied)
)

// Entry types on the wire.
const (
	typeDir     = "d"
	typeFile    = "f"
	typeSymlink = "s"
	typeLink    = "h" // a further name of a hard-link group: Target is the group's first path
	typeDelete  = "x"
)

// wireEntry is one path of a batch. The root directory is the path "".
type wireEntry struct {
	Path    string `json:"p,omitempty"`
	PathB   []byte `json:"pb,omitempty"` // Path, when it is not valid UTF-8 (JSON strings are)
	Type    string `json:"t"`
	Mode    uint32 `json:"m,omitempty"` // permission bits (07777)
	UID     uint32 `json:"u,omitempty"`
	GID     uint32 `json:"g,omitempty"`
	Size    int64  `json:"z,omitempty"`
	Mtime   int64  `json:"mt,omitempty"` // ns since the epoch
	Target  string `json:"l,omitempty"`  // symlink target; a link's group path
	TargetB []byte `json:"lb,omitempty"` // Target, when it is not valid UTF-8
	Nlink   uint32 `json:"n,omitempty"`  // names of a file's hard-link group (1 if none)
	Chunks  []byte `json:"c,omitempty"`  // chunk list, chunkRec bytes a chunk
	// Delta replaces Chunks for a file whose list the receiver holds: the
	// list as a delta (listdelta.go) of the one whose listSum is Base.
	Delta []byte `json:"cd,omitempty"`
	Base  []byte `json:"cb,omitempty"`
	// Inline replaces Chunks for a small file (at most inlineMax bytes)
	// the receiver is not expected to hold: its bytes follow the batch's
	// JSON, and the receiver cuts them into chunks itself. The list and
	// the round trip asking for the data, both larger than a small file's
	// bytes are worth, are spared.
	Inline bool `json:"i,omitempty"`
	// Whole replaces Chunks for a file larger than inlineMax, offered to
	// a receiver that held no file when the session opened (and that no
	// other file of the pass may share content with): its bytes follow
	// whole in a chunks request, once the receiver asks for them
	// (need.Whole), and the receiver cuts them and returns the list
	// (chunksResp.Lists). A receiver that holds something at the path,
	// or an interrupted copy's temporary, asks for the list instead
	// (batchResp.ListWanted), to keep what landed.
	Whole bool `json:"w,omitempty"`
}

type beginReq struct {
	V      int    `json:"v"`
	Base   uint64 `json:"base"`  // the generation the sender's state is of; 0: none
	Gen    uint64 `json:"gen"`   // the generation this pass makes
	Epoch  uint64 `json:"epoch"` // the sender process's identity (see Receiver)
	Full   bool   `json:"full"`  // the sender asks for a full listing
	Verify bool   `json:"verify"`
}

type beginResp struct {
	Session string `json:"session"`
	Full    bool   `json:"full"` // the sender must list everything
}

// batchReq is a batch's JSON. On the wire a batch is that JSON compressed
// (one zstd frame, preceded by its length as a uvarint), then the bytes of
// its Inline files in entry order, each as a bare chunk frame
// (chunks.Encoder.WriteBare: one byte for bytes that do not compress).
type batchReq struct {
	Session string      `json:"session"`
	Entries []wireEntry `json:"entries"`
	// Begin, on a pass's first batch, opens the session in the same round
	// trip (Session is then empty).
	Begin *beginReq `json:"begin,omitempty"`
	// Seq numbers the session's batches from 0 (the one that begins it):
	// a sender has several on the wire at once, and the receiver applies
	// them in this order whatever order they arrive in.
	Seq uint64 `json:"seq,omitempty"`
}

// need is a file of a batch whose assembly waits for chunks.
type need struct {
	Path   string `json:"p,omitempty"`
	PathB  []byte `json:"pb,omitempty"`
	Hashes []byte `json:"h"`           // 32 bytes each
	Whole  bool   `json:"w,omitempty"` // a file offered whole: all its bytes, no hashes
}

type batchResp struct {
	// Session and Full answer a Begin: Full with a delta batch means the
	// batch was not applied and the sender must list everything. Empty
	// (also answering a Begin) says the destination held no file when the
	// session opened: the sender may send new files' bytes inline.
	Session string `json:"session,omitempty"`
	Full    bool   `json:"full,omitempty"`
	Empty   bool   `json:"empty,omitempty"`

	Need []need `json:"need,omitempty"`
	// Relist names the files sent as a delta whose base this side does
	// not hold: not applied; the sender sends their whole lists.
	Relist [][]byte `json:"relist,omitempty"`
	// ListWanted names files offered whole that were not applied: the
	// receiver holds something at their path, or part of them, and wants
	// their lists (sent in this session).
	ListWanted [][]byte  `json:"lw,omitempty"`
	Diffs      [][]byte  `json:"diffs,omitempty"` // files found different by content (Verify)
	Stats      wireStats `json:"stats"`
}

// chunksReq heads one file's section of a chunks request: N frames of
// that file follow it. A request carries the sections of one or more
// files (many small ones together: one round trip for all of them).
type chunksReq struct {
	Session string `json:"session"`
	Path    string `json:"p,omitempty"`
	PathB   []byte `json:"pb,omitempty"`
	N       int    `json:"n"`
	// Whole: the section is the file's bytes (a file offered whole),
	// Size of them in bare frames (chunks.Encoder.WriteBare) of
	// wholePiece bytes, the last one shorter; N is 0.
	Whole bool `json:"w,omitempty"`
}

// wholePiece is the bytes of a frame of a file sent whole: the sender
// probes each for compression, the receiver holds one at a time.
const wholePiece = 1 << 20

type chunksResp struct {
	// Missing names the files still lacking chunks, and which: they are
	// sent again.
	Missing []need `json:"missing,omitempty"`
	// Lists are the chunk lists of the files received whole.
	Lists []fileList `json:"lists,omitempty"`
	Stats wireStats  `json:"stats"`
}

// fileList is a file's chunk list, chunkRec bytes a chunk.
type fileList struct {
	Path   string `json:"p,omitempty"`
	PathB  []byte `json:"pb,omitempty"`
	Chunks []byte `json:"c"`
}

// maxStreamFiles bounds the files of one chunks request.
const maxStreamFiles = 4096

type commitReq struct {
	Session string `json:"session"`
	Start   int64  `json:"start"` // ns, the source's clock
}

type commitResp struct {
	Stats wireStats `json:"stats"`
}

// wireStats is the session's cumulative counts, as the receiver sees them.
type wireStats struct {
	treesync.Stats
	ChunksLocal int64
}

// Names on the wire: file names are bytes, JSON strings are UTF-8 (an
// encoder replaces invalid bytes), so a name that is not valid UTF-8
// travels in the base64 field beside its string one.

// putName sets a name's fields.
func putName(s *string, b *[]byte, name string) {
	if utf8.ValidString(name) {
		*s, *b = name, nil
	} else {
		*s, *b = "", []byte(name)
	}
}

// getName returns the name its fields carry.
func getName(s string, b []byte) (string, error) {
	if b == nil {
		return s, nil
	}
	if s != "" || utf8.Valid(b) {
		return "", protof("name given twice, or in bytes though valid UTF-8")
	}
	return string(b), nil
}

// encodeList packs a chunk list (offsets are implied by the lengths).
func encodeList(l []chunks.Chunk) []byte {
	b := make([]byte, 0, len(l)*chunkRec)
	for _, c := range l {
		b = append(b, c.Hash[:]...)
		b = append(b, byte(c.Length>>24), byte(c.Length>>16), byte(c.Length>>8), byte(c.Length))
	}
	return b
}

// decodeList unpacks and checks a chunk list.
func decodeList(b []byte) ([]chunks.Chunk, error) {
	if len(b)%chunkRec != 0 || len(b)/chunkRec > maxFileChunks {
		return nil, protof("chunk list of %d bytes", len(b))
	}
	l := make([]chunks.Chunk, 0, len(b)/chunkRec)
	var off int64
	for ; len(b) > 0; b = b[chunkRec:] {
		var c chunks.Chunk
		copy(c.Hash[:], b)
		c.Length = int(b[32])<<24 | int(b[33])<<16 | int(b[34])<<8 | int(b[35])
		c.Offset = off
		off += int64(c.Length)
		l = append(l, c)
	}
	if err := chunks.CheckList(l); err != nil {
		return nil, protof("%v", err)
	}
	return l, nil
}

func encodeHashes(hs []chunks.Hash) []byte {
	b := make([]byte, 0, 32*len(hs))
	for _, h := range hs {
		b = append(b, h[:]...)
	}
	return b
}

func decodeHashes(b []byte, max int) ([]chunks.Hash, error) {
	if len(b)%32 != 0 || len(b)/32 > max {
		return nil, fmt.Errorf("hash list of %d bytes", len(b))
	}
	hs := make([]chunks.Hash, len(b)/32)
	for i := range hs {
		copy(hs[i][:], b[i*32:])
	}
	return hs, nil
}

// readHeader reads one JSON line of at most maxHeader bytes into v,
// leaving the rest of r (buffered in br) unread.
func readHeader(br *bufio.Reader, v any) error {
	line, err := br.ReadSlice('\n')
	if err == bufio.ErrBufferFull {
		return protof("header longer than %d bytes", br.Size())
	}
	if err != nil {
		return protof("header: %v", err)
	}
	return decodeStrict(line, v)
}

// decodeStrict decodes one JSON value, refusing unknown fields and
// trailing data.
func decodeStrict(b []byte, v any) error {
	d := json.NewDecoder(strings.NewReader(string(b)))
	d.DisallowUnknownFields()
	if err := d.Decode(v); err != nil {
		return protof("decode: %v", err)
	}
	if d.More() {
		return protof("trailing data after the request")
	}
	return nil
}

// readAllCapped reads r to its end, refusing more than max bytes.
func readAllCapped(r io.Reader, max int64) ([]byte, error) {
	b, err := io.ReadAll(io.LimitReader(r, max+1))
	if err != nil {
		return nil, err
	}
	if int64(len(b)) > max {
		return nil, protof("body longer than %d bytes", max)
	}
	return b, nil
}

// checkPath refuses a path that could leave the root or name a temporary.
func checkPath(p string) error {
	if len(p) > maxPath {
		return protof("path of %d bytes", len(p))
	}
	if err := treesync.CheckRel(p); err != nil {
		return protof("%v", err)
	}
	for c := range strings.SplitSeq(p, "/") {
		if len(c) > maxName {
			return protof("path component of %d bytes", len(c))
		}
		if strings.HasPrefix(c, treesync.TmpPrefix) {
			return protof("path %q uses the temporaries' prefix", p)
		}
	}
	return nil
}

func parentOf(p string) string {
	if i := strings.LastIndexByte(p, '/'); i >= 0 {
		return p[:i]
	}
	return ""
}
