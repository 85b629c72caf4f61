package fsview

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"golang.org/x/sys/unix"
)

// HandleKeySize is the size of the key that authenticates file handles.
const HandleKeySize = 32

// LoadHandleKey returns the key that authenticates NFS file handles, kept in the file at path (one
// per data directory). The first call creates it: HandleKeySize random bytes, mode 0600, made
// durable before it is used, so that handles handed to clients stay valid across restarts. The key
// is never logged. A key file of the wrong size, or readable by group or others, is an error rather
// than silently replaced: replacing it would make every handle stale, exposing it would let anyone
// who reads it forge handles.
func LoadHandleKey(path string) ([]byte, error) {
	key, err := readHandleKey(path)
	if !errors.Is(err, os.ErrNotExist) {
		return key, err
	}
	if err := createHandleKey(path); err != nil {
		return nil, fmt.Errorf("create NFS handle key %s: %w", path, err)
	}
	return readHandleKey(path)
}

func readHandleKey(path string) ([]byte, error) {
	f, err := os.OpenFile(path, os.O_RDONLY|unix.O_NOFOLLOW, 0)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, err
	}
	if !fi.Mode().IsRegular() {
		return nil, fmt.Errorf("NFS handle key %s is not a regular file", path)
	}
	if fi.Mode().Perm()&0o077 != 0 {
		return nil, fmt.Errorf("NFS handle key %s has mode %04o: it must not be accessible to group or others (chmod 600)", path, fi.Mode().Perm())
	}
	key := make([]byte, HandleKeySize+1)
	n, err := io.ReadFull(f, key)
	if err != io.ErrUnexpectedEOF || n != HandleKeySize {
		return nil, fmt.Errorf("NFS handle key %s is damaged: want exactly %d bytes", path, HandleKeySize)
	}
	return key[:n], nil
}

// createHandleKey writes a new key to a temporary file, makes it durable, and links it into place
// unless another process did so first (link(2), unlike rename, never replaces a key in use).
func createHandleKey(path string) error {
	var key, suffix [HandleKeySize]byte
	if _, err := rand.Read(key[:]); err != nil {
		return err
	}
	if _, err := rand.Read(suffix[:8]); err != nil {
		return err
	}
	tmp := path + ".tmp-" + hex.EncodeToString(suffix[:8])
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_EXCL|unix.O_NOFOLLOW, 0o600)
	if err != nil {
		return err
	}
	defer os.Remove(tmp)
	_, err = f.Write(key[:])
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return err
	}
	if err := os.Link(tmp, path); err != nil && !errors.Is(err, os.ErrExist) {
		return err
	}
	dir, err := os.Open(filepath.Dir(path))
	if err != nil {
		return err
	}
	defer dir.Close()
	return dir.Sync()
}
