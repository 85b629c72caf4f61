package fsview

import (
	"bytes"
	"os"
	"path/filepath"
	"sync"
	"testing"
)

// The handle key is created once (mode 0600, exactly HandleKeySize bytes) and read back unchanged,
// also when several callers race to create it; a damaged or exposed key file is an error, not
// silently replaced.
func TestLoadHandleKey(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "nfs-handle.key")
	var wg sync.WaitGroup
	keys := make([][]byte, 8)
	errs := make([]error, len(keys))
	for i := range keys {
		wg.Go(func() { keys[i], errs[i] = LoadHandleKey(path) })
	}
	wg.Wait()
	for i := range keys {
		if errs[i] != nil {
			t.Fatal(errs[i])
		}
		if len(keys[i]) != HandleKeySize || !bytes.Equal(keys[i], keys[0]) {
			t.Fatalf("concurrent LoadHandleKey returned different keys: %x, %x", keys[0], keys[i])
		}
	}
	if bytes.Equal(keys[0], make([]byte, HandleKeySize)) {
		t.Fatal("key is all zeros")
	}
	fi, err := os.Lstat(path)
	if err != nil || fi.Mode() != 0o600 {
		t.Fatalf("key file: %v %v, want a 0600 regular file", fi.Mode(), err)
	}
	if again, err := LoadHandleKey(path); err != nil || !bytes.Equal(again, keys[0]) {
		t.Fatalf("reloaded key differs: %v", err)
	}
	if ents, _ := os.ReadDir(dir); len(ents) != 1 {
		t.Errorf("data directory holds %d entries, want only the key", len(ents))
	}
	other, err := LoadHandleKey(filepath.Join(dir, "other.key"))
	if err != nil || bytes.Equal(other, keys[0]) {
		t.Errorf("a second key file: %v (same key: %v)", err, bytes.Equal(other, keys[0]))
	}

	for name, fix := range map[string]func(p string) error{
		"short":          func(p string) error { return os.WriteFile(p, make([]byte, HandleKeySize-1), 0o600) },
		"long":           func(p string) error { return os.WriteFile(p, make([]byte, HandleKeySize+1), 0o600) },
		"empty":          func(p string) error { return os.WriteFile(p, nil, 0o600) },
		"group-readable": func(p string) error { return os.WriteFile(p, make([]byte, HandleKeySize), 0o640) },
		"symlink":        func(p string) error { return os.Symlink(path, p) },
		"directory":      func(p string) error { return os.Mkdir(p, 0o700) },
	} {
		p := filepath.Join(t.TempDir(), "k")
		if err := fix(p); err != nil {
			t.Fatal(err)
		}
		if _, err := LoadHandleKey(p); err == nil {
			t.Errorf("%s key file accepted", name)
		}
	}
}
