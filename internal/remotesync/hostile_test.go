package remotesync

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"strings"
	"syscall"
	"testing"

	"github.com/klauspost/compress/zstd"

	"github.com/efsd/efsd/internal/chunks"
)

// serve sends one raw request to the receiver and returns its reply or
// error code.
func serve(t *testing.T, r *Receiver, op string, body io.Reader) ([]byte, string) {
	t.Helper()
	var out bytes.Buffer
	if err := r.Serve(context.Background(), op, body, &out); err != nil {
		if out.Len() != 0 {
			t.Fatalf("%s: a reply written with an error", op)
		}
		return nil, ErrorCode(err)
	}
	return out.Bytes(), ""
}

func jsonLine(t *testing.T, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	must(t, err)
	return append(b, '\n')
}

// batchBody is a batch's body as a sender writes it: the JSON compressed,
// then inline files' bytes as bare frames.
func batchBody(t *testing.T, req batchReq, inline ...[]byte) []byte {
	t.Helper()
	c, err := chunks.NewCompressor()
	must(t, err)
	defer c.Close()
	js, err := json.Marshal(req)
	must(t, err)
	z := c.Compress(js, nil)
	var b bytes.Buffer
	b.Write(binary.AppendUvarint(nil, uint64(len(z))))
	b.Write(z)
	enc := c.Encoder(&b)
	for _, d := range inline {
		must(t, enc.WriteBare(d))
	}
	return b.Bytes()
}

func beginSession(t *testing.T, r *Receiver) string {
	t.Helper()
	reply, code := serve(t, r, OpBegin, bytes.NewReader(jsonLine(t, beginReq{V: protoVersion, Gen: 7, Epoch: 9})))
	if code != "" {
		t.Fatalf("begin: %s", code)
	}
	var br beginResp
	must(t, json.Unmarshal(reply, &br))
	return br.Session
}

// endless is an unending body.
type endless struct{}

func (endless) Read(b []byte) (int, error) {
	for i := range b {
		b[i] = ' '
	}
	return len(b), nil
}

// Hostile requests are refused with "protocol" (or fail without effect),
// nothing is written outside the root, and the receiver keeps working: a
// real pass afterwards succeeds.
func TestHostileRequests(t *testing.T) {
	t.Parallel()
	p := newPair(t)
	outside := t.TempDir()
	must(t, os.Symlink(outside, p.dst+"/evil"))
	must(t, os.Symlink("..", p.dst+"/up"))
	r := p.r

	bad := func(what, op string, body io.Reader, want string) {
		t.Helper()
		if _, code := serve(t, r, op, body); code != want {
			t.Errorf("%s: code %q, want %q", what, code, want)
		}
	}
	bad("unknown op", "mkdir", strings.NewReader("{}\n"), CodeProtocol)
	bad("version", OpBegin, bytes.NewReader(jsonLine(t, beginReq{V: 99, Gen: 1, Epoch: 1})), CodeProtocol)
	bad("zero generation", OpBegin, bytes.NewReader(jsonLine(t, beginReq{V: protoVersion, Epoch: 1})), CodeProtocol)
	bad("header too long", OpBegin, endless{}, CodeProtocol)
	bad("garbage begin", OpBegin, strings.NewReader("\x00\x01garbage\n"), CodeProtocol)
	bad("unknown field", OpBegin, strings.NewReader(`{"v":2,"gen":1,"epoch":1,"root":"/"}`+"\n"), CodeProtocol)
	bad("batch beginning a named session", OpBatch, bytes.NewReader(batchBody(t, batchReq{Session: "x",
		Begin: &beginReq{V: protoVersion, Gen: 1, Epoch: 1}})), CodeProtocol)
	bad("batch beginning with an old version", OpBatch, bytes.NewReader(batchBody(t, batchReq{
		Begin: &beginReq{V: 1, Gen: 1, Epoch: 1}})), CodeProtocol)
	bad("batch beginning, not first", OpBatch, bytes.NewReader(batchBody(t, batchReq{Seq: 1,
		Begin: &beginReq{V: protoVersion, Gen: 1, Epoch: 1}})), CodeProtocol)

	sess := beginSession(t, r)
	seq := uint64(0)         // the session's batches applied so far
	var inlineBytes [][]byte // of the next batch's inline files
	batch := func(what string, want string, es ...wireEntry) {
		t.Helper()
		_, code := serve(t, r, OpBatch, bytes.NewReader(batchBody(t, batchReq{Session: sess, Entries: es, Seq: seq}, inlineBytes...)))
		inlineBytes = nil
		if code != want {
			t.Errorf("%s: code %q, want %q", what, code, want)
		}
		// A batch refused once its turn came still took it.
		seq++
	}
	file := func(path string, content []byte) wireEntry {
		l, err := chunks.List(bytes.NewReader(content), int64(len(content)))
		must(t, err)
		return wireEntry{Path: path, Type: typeFile, Mode: 0o644, Size: int64(len(content)), Chunks: encodeList(l), Nlink: 1}
	}
	payload := []byte("pwned")
	for _, path := range []string{"../x", "/abs", "a/../../x", "a//b", "./x", "a/.", "x\x00y", ".efsd-tmp-x", "d/.efsd-tmp-part-1", strings.Repeat("a", 300), strings.Repeat("a/", 2100) + "a"} {
		batch("path "+path, CodeProtocol, file(path, payload))
		batch("dir "+path, CodeProtocol, wireEntry{Path: path, Type: typeDir, Mode: 0o755})
		batch("link to "+path, CodeProtocol, wireEntry{Path: "l", Type: typeLink, Target: path})
	}
	batch("bytes name that is UTF-8", CodeProtocol, wireEntry{PathB: []byte("x"), Type: typeDir})
	batch("name twice", CodeProtocol, wireEntry{Path: "x", PathB: []byte("\xff"), Type: typeDir})
	batch("bytes name climbing", CodeProtocol, wireEntry{PathB: []byte("\xff/../../x"), Type: typeDir})
	batch("root as a file", CodeProtocol, file("", payload))
	batch("unknown type", CodeProtocol, wireEntry{Path: "x", Type: "c"})
	batch("mode bits", CodeProtocol, wireEntry{Path: "x", Type: typeDir, Mode: 0o170755})
	batch("empty symlink", CodeProtocol, wireEntry{Path: "x", Type: typeSymlink})
	e := file("x", payload)
	e.Size++
	batch("size not the list's", CodeProtocol, e)
	e = file("x", payload)
	e.Chunks = e.Chunks[:35]
	batch("torn list", CodeProtocol, e)
	e = file("x", payload)
	e.Chunks[35] = 0
	batch("zero-length chunk", CodeProtocol, e)
	batch("twice in a batch", CodeProtocol, wireEntry{Path: "x", Type: typeDir}, wireEntry{Path: "x", Type: typeDir})
	many := make([]wireEntry, maxBatchEntries+1)
	for i := range many {
		many[i] = wireEntry{Path: "x", Type: typeDir}
	}
	// Refused before its turn: the sequence number is not taken.
	bad("too many entries", OpBatch, bytes.NewReader(batchBody(t, batchReq{Session: sess, Entries: many, Seq: seq})), CodeProtocol)

	// The batch's framing, and its inline files: refused before the
	// batch's turn (seq is not taken).
	framing := func(what string, body []byte) {
		t.Helper()
		bad(what, OpBatch, bytes.NewReader(body), CodeProtocol)
	}
	long := batchBody(t, batchReq{Session: sess, Seq: seq})
	framing("empty batch", nil)
	framing("length above the bound", binary.AppendUvarint(nil, maxBatchBody+1))
	framing("JSON not compressed", append(binary.AppendUvarint(nil, 20), `{"session":"x"}    `+"\n"...))
	framing("data after the batch", append(bytes.Clone(long), 0))
	zc, err := chunks.NewCompressor()
	must(t, err)
	defer zc.Close()
	bomb := zc.Compress(make([]byte, maxBatchBody+1), nil)
	framing("JSON above the bound", append(binary.AppendUvarint(nil, uint64(len(bomb))), bomb...))
	var unsized bytes.Buffer // a zstd stream that does not say how long its content is
	zw, err := zstd.NewWriter(&unsized)
	must(t, err)
	zw.Write(jsonLine(t, batchReq{Session: sess, Seq: seq}))
	must(t, zw.Flush()) // a block out before the size is known
	zw.Write(bytes.Repeat([]byte{' '}, 64<<10))
	must(t, zw.Close())
	framing("content size unsaid, and large", append(binary.AppendUvarint(nil, uint64(unsized.Len())), unsized.Bytes()...))
	small := []byte("small file")
	inl := func(path string, size int64) wireEntry {
		return wireEntry{Path: path, Type: typeFile, Mode: 0o644, Size: size, Nlink: 1, Inline: true}
	}
	framing("inline above its bound", batchBody(t, batchReq{Session: sess, Seq: seq, Entries: []wireEntry{inl("x", inlineMax+1)}}, make([]byte, inlineMax+1)))
	framing("inline directory", batchBody(t, batchReq{Session: sess, Seq: seq, Entries: []wireEntry{{Path: "x", Type: typeDir, Inline: true}}}))
	// A body cut short is an error, not a protocol one (the connection
	// broke).
	bad("inline bytes missing", OpBatch, bytes.NewReader(batchBody(t, batchReq{Session: sess, Seq: seq, Entries: []wireEntry{inl("x", int64(len(small)))}})), CodeInternal)
	framing("inline bytes longer", batchBody(t, batchReq{Session: sess, Seq: seq, Entries: []wireEntry{inl("x", int64(len(small))-1)}}, small))
	var over []wireEntry
	for i := range maxInlineBatch/inlineMax + 1 {
		over = append(over, inl(fmt.Sprintf("f%d", i), inlineMax))
	}
	framing("inline files above the batch's bound", batchBody(t, batchReq{Session: sess, Seq: seq, Entries: over}))
	compressible := bytes.Repeat([]byte("abcd"), 4096)
	inflating := batchBody(t, batchReq{Session: sess, Seq: seq, Entries: []wireEntry{inl("x", 1000)}}, compressible)
	framing("inline frame decoding to more than its size", inflating)
	e = inl("x", int64(len(small)))
	l, err := chunks.List(bytes.NewReader(small), int64(len(small)))
	must(t, err)
	e.Chunks = encodeList(l)
	inlineBytes = [][]byte{small}
	batch("inline with a list", CodeProtocol, e)
	inlineBytes = [][]byte{small}
	batch("inline file escaping", CodeProtocol, inl("../x", int64(len(small))))
	// A large batch while another is applied: refused, not waited for.
	padded := append(jsonLine(t, batchReq{Session: "x"}), bytes.Repeat([]byte{' '}, smallBatch)...)
	largeBody := append(binary.AppendUvarint(nil, uint64(len(zc.Compress(padded, nil)))), zc.Compress(padded, nil)...)
	r.bigSem <- struct{}{}
	framing("a second large batch", largeBody)
	<-r.bigSem
	bad("a large batch alone", OpBatch, bytes.NewReader(largeBody), CodeBusy) // read, then: no session "x"
	// Numbering: a batch already applied, or far ahead.
	bad("batch again", OpBatch, bytes.NewReader(batchBody(t, batchReq{Session: sess, Seq: seq - 1})), CodeProtocol)
	bad("batch far ahead", OpBatch, bytes.NewReader(batchBody(t, batchReq{Session: sess, Seq: seq + maxSeqAhead + 1})), CodeProtocol)

	// Through a symlink planted in the destination: refused, not followed.
	batch("file under a symlink", CodeInternal, file("evil/x", payload))
	batch("dir under a symlink", CodeInternal, wireEntry{Path: "up/escaped", Type: typeDir, Mode: 0o777})
	batch("symlink under a symlink", CodeInternal, wireEntry{Path: "evil/s", Type: typeSymlink, Target: "/etc"})

	// Garbage frames for a file that awaits chunks.
	sess = beginSession(t, r)
	big := randBytes(11, 1<<20)
	reply, code := serve(t, r, OpBatch, bytes.NewReader(batchBody(t, batchReq{Session: sess, Entries: []wireEntry{file("f", big)}})))
	if code != "" {
		t.Fatalf("batch: %s", code)
	}
	var br batchResp
	must(t, json.Unmarshal(reply, &br))
	if len(br.Need) != 1 {
		t.Fatalf("need: %+v", br)
	}
	l, _ = chunks.List(bytes.NewReader(big), int64(len(big)))
	hdr := jsonLine(t, chunksReq{Session: sess, Path: "f", N: len(l)})
	frame := func(h chunks.Hash, data []byte) []byte {
		var b bytes.Buffer
		enc, err := chunks.NewEncoder(&b)
		must(t, err)
		must(t, enc.Write(h, data))
		enc.Close()
		return b.Bytes()
	}
	good := frame(l[0].Hash, big[:l[0].Length])
	lying := bytes.Clone(good)
	lying[len(lying)-1] ^= 1 // bytes not matching the hash
	huge := bytes.Clone(good)
	huge[33], huge[34] = 0xff, 0xff // claims a chunk above MaxSize
	for what, body := range map[string][]byte{
		"garbage":     append(bytes.Clone(hdr), bytes.Repeat([]byte{0xee}, 5000)...),
		"lying frame": append(bytes.Clone(hdr), lying...),
		// Well-formed, but other bytes under a wanted chunk's name.
		"wrong bytes":   append(bytes.Clone(hdr), frame(l[0].Hash, bytes.Repeat([]byte{7}, l[0].Length))...),
		"oversized":     append(bytes.Clone(hdr), huge...),
		"too many":      append(bytes.Clone(hdr), bytes.Repeat(frame(chunks.Sum([]byte("x")), []byte("x")), len(l)+1)...),
		"unknown file":  append(jsonLine(t, chunksReq{Session: sess, Path: "nope", N: 1}), good...),
		"other session": append(jsonLine(t, chunksReq{Session: "x", Path: "f", N: 1}), good...),
		// A section claiming more frames than the file has chunks, one
		// ending before the frames it claims, and a second section of
		// another session in the same request.
		"frames above the chunks": append(jsonLine(t, chunksReq{Session: sess, Path: "f", N: len(l) + 1}), good...),
		"section cut short":       append(jsonLine(t, chunksReq{Session: sess, Path: "f", N: 2}), good...),
		"negative frames":         append(jsonLine(t, chunksReq{Session: sess, Path: "f", N: -1}), good...),
		"two sessions": append(append(jsonLine(t, chunksReq{Session: sess, Path: "f", N: 0}), jsonLine(t, chunksReq{Session: "x", Path: "f", N: 0})...),
			good...),
	} {
		_, code := serve(t, r, OpChunks, bytes.NewReader(body))
		want := CodeProtocol
		if what == "other session" {
			want = CodeBusy
		}
		if code != want {
			t.Errorf("%s: code %q, want %q", what, code, want)
		}
	}
	// A file offered whole: entries that cannot be, sections that do not
	// match the offer, bytes short or long.
	whole := func(path string, size int64) wireEntry {
		return wireEntry{Path: path, Type: typeFile, Mode: 0o644, Size: size, Nlink: 1, Whole: true}
	}
	wseq := uint64(1)
	wbatch := func(what, want string, es ...wireEntry) batchResp {
		t.Helper()
		reply, code := serve(t, r, OpBatch, bytes.NewReader(batchBody(t, batchReq{Session: sess, Seq: wseq, Entries: es})))
		wseq++
		if code != want {
			t.Errorf("%s: code %q, want %q", what, code, want)
		}
		var br batchResp
		if code == "" {
			must(t, json.Unmarshal(reply, &br))
		}
		return br
	}
	withList := whole("w", int64(len(big)))
	withList.Chunks = file("w", big).Chunks
	wbatch("whole with a list", CodeProtocol, withList)
	wbatch("whole and small", CodeProtocol, whole("w", inlineMax))
	wbatch("whole directory", CodeProtocol, wireEntry{Path: "w", Type: typeDir, Whole: true})
	grouped := whole("w", 1<<20)
	grouped.Nlink = 2
	wbatch("whole, of a hard-link group", CodeProtocol, grouped)
	wbatch("whole, escaping", CodeProtocol, whole("../w", 1<<20))
	wbatch("whole, under a symlink", CodeInternal, whole("evil/w", 1<<20))
	must(t, os.WriteFile(p.dst+"/held", []byte("something"), 0o644))
	wbytes := randBytes(12, 300<<10)
	br = wbatch("whole", "", whole("w", int64(len(wbytes))), whole("held", 1<<20))
	if len(br.Need) != 1 || !br.Need[0].Whole || br.Need[0].Path != "w" || len(br.ListWanted) != 1 || string(br.ListWanted[0]) != "held" {
		t.Fatalf("offered whole: want the bytes of w and the list of held: %+v", br)
	}
	bare := func(data []byte) []byte {
		var b bytes.Buffer
		enc, err := chunks.NewEncoder(&b)
		must(t, err)
		must(t, enc.WriteBare(data))
		enc.Close()
		return b.Bytes()
	}
	whdr := jsonLine(t, chunksReq{Session: sess, Path: "w", Whole: true})
	// In order: the last one completes the file (its extra byte is read
	// as the next section's header).
	for _, c := range []struct {
		what string
		body []byte
	}{
		{"whole section of a file listed", append(jsonLine(t, chunksReq{Session: sess, Path: "f", Whole: true}), bare(big)...)},
		{"listed section of a file whole", append(jsonLine(t, chunksReq{Session: sess, Path: "w", N: 1}), good...)},
		{"whole with frames", append(jsonLine(t, chunksReq{Session: sess, Path: "w", N: 1, Whole: true}), bare(wbytes)...)},
		{"whole, garbage", append(bytes.Clone(whdr), bytes.Repeat([]byte{0xee}, 5000)...)},
		{"whole, a frame inflating", append(bytes.Clone(whdr), bare(make([]byte, len(wbytes)+1000))...)},
		{"whole, a section of a file asked", append(jsonLine(t, chunksReq{Session: sess, Path: "held", Whole: true}), bare(wbytes)...)},
		{"whole, cut short", append(bytes.Clone(whdr), bare(wbytes)[:1000]...)},
		{"whole, bytes longer", append(bytes.Clone(whdr), bare(append(bytes.Clone(wbytes), 1))...)},
	} {
		err := r.Serve(context.Background(), OpChunks, bytes.NewReader(c.body), io.Discard)
		// A stream cut short is an error, not a protocol one (the
		// connection broke).
		if code := ErrorCode(err); code != CodeProtocol && c.what != "whole, cut short" || code == "" || code == CodeProtocol && c.what == "whole, cut short" {
			t.Errorf("%s: %v", c.what, err)
		}
		if _, err := os.Lstat(p.dst + "/w"); !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("%s: a file sent whole under its real name before commit: %v", c.what, err)
		}
	}
	bad("commit with a file awaiting chunks", OpCommit, bytes.NewReader(jsonLine(t, commitReq{Session: sess})), CodeProtocol)
	// A stream cut inside a frame is an error, not protocol: the partial
	// keeps what landed.
	_, code = serve(t, r, OpChunks, bytes.NewReader(append(bytes.Clone(hdr), good[:len(good)/2]...)))
	if code == "" {
		t.Error("cut frame accepted")
	}

	if ents, _ := os.ReadDir(outside); len(ents) != 0 {
		t.Fatalf("written outside the root: %v", ents)
	}
	if _, err := os.Lstat(p.dst + "/../escaped"); err == nil {
		t.Fatal("escaped through ..")
	}

	// The receiver still works: a real pass makes the trees identical and
	// removes what was planted.
	writeFile(t, p.src+"/f", big, 0o644, old)
	writeFile(t, p.src+"/d/g", []byte("gee"), 0o600, old)
	st := p.mustPass(nil, PassOptions{})
	if !st.Full || st.Deleted < 2 {
		t.Fatalf("pass after: %+v", st)
	}
	if ents, _ := os.ReadDir(outside); len(ents) != 0 {
		t.Fatalf("written outside the root: %v", ents)
	}
}

// A newer session supersedes an older one: the older one's requests fail
// "busy" and its commit is refused.
func TestSuperseded(t *testing.T) {
	t.Parallel()
	p := newPair(t)
	old := beginSession(t, p.r)
	beginSession(t, p.r)
	for _, op := range []string{OpBatch, OpCommit} {
		body := batchBody(t, batchReq{Session: old})
		if op == OpCommit {
			body = jsonLine(t, commitReq{Session: old})
		}
		if _, code := serve(t, p.r, op, bytes.NewReader(body)); code != CodeBusy {
			t.Errorf("%s of a superseded session: %q", op, code)
		}
	}
	if len(p.commits) != 0 {
		t.Fatal("superseded session committed")
	}
	must(t, p.r.Close())
	if _, code := serve(t, p.r, OpBegin, bytes.NewReader(jsonLine(t, beginReq{V: protoVersion, Gen: 1, Epoch: 1}))); code != CodeBusy {
		t.Errorf("begin after Close: %q", code)
	}
}

func TestErrorCode(t *testing.T) {
	t.Parallel()
	for err, want := range map[error]string{
		errors.Join(errors.New("x"), syscall.ENOSPC): CodeNoSpace,
		syscall.EDQUOT:               CodeNoSpace,
		syscall.EROFS:                CodeReadOnly,
		errBusy:                      CodeBusy,
		protof("x"):                  CodeProtocol,
		errors.New("x"):              CodeInternal,
		&RemoteError{Code: CodeGone}: CodeGone,
	} {
		if got := ErrorCode(err); got != want {
			t.Errorf("ErrorCode(%v) = %q, want %q", err, got, want)
		}
	}
}
