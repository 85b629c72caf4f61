package chunks

import (
	"bytes"
	"errors"
	"io"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"testing/iotest"

	"golang.org/x/sys/unix"
)

// Bytes that arrive a few at a time still land whole, at their offsets,
// and are cut as the source cuts them.
func TestReceiveTrickle(t *testing.T) {
	dst := t.TempDir()
	ix := openIndex(t, dst)
	data := randBytes(21, 3*behindPiece+4567)
	l, _, err := receive(t, ix, dst, "f", int64(len(data)), iotest.HalfReader(bytes.NewReader(data)), 1<<20, nil)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(l, listOf(t, data)) {
		t.Fatal("list differs from the source's")
	}
	mustEqualFile(t, filepath.Join(dst, "f"), data)
}

// A write that fails stops the reading (no more than the pieces in flight
// are read past it) and is the error the writer reports.
func TestWriteBehindFails(t *testing.T) {
	path := filepath.Join(t.TempDir(), "f")
	if err := os.WriteFile(path, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	fd, err := unix.Open(path, unix.O_RDONLY, 0) // every pwrite fails
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(fd)
	const size = 64 * behindPiece
	wb := newWriteBehind(&partWriter{fd: fd}, &sync.Pool{})
	tee := &teeReader{src: bytes.NewReader(make([]byte, size)), wb: wb, size: size}
	n, err := io.Copy(io.Discard, tee)
	if !errors.Is(err, unix.EBADF) {
		t.Fatalf("read %d bytes, error %v; want EBADF", n, err)
	}
	if n > (behindPieces+1)*behindPiece {
		t.Fatalf("read %d bytes past a failed write", n)
	}
	tee.flush()
	if err := wb.stop(); !errors.Is(err, unix.EBADF) {
		t.Fatalf("stop: %v", err)
	}
}
