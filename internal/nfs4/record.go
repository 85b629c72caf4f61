package nfs4

import (
	"bufio"
	"encoding/hex"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
)

// FileRecord is a Record kept in one file: an owner (hex) per line, replaced atomically and durably.
type FileRecord struct{ Path string }

// Load reads the record; a missing file is an empty record.
func (r FileRecord) Load() ([]string, error) {
	f, err := os.Open(r.Path)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var owners []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" {
			continue
		}
		b, err := hex.DecodeString(line)
		if err != nil {
			return nil, err
		}
		owners = append(owners, string(b))
	}
	return owners, sc.Err()
}

// Store replaces the record: a temporary file made durable, renamed over it, the directory synced.
func (r FileRecord) Store(owners []string) error {
	slices.Sort(owners)
	dir := filepath.Dir(r.Path)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	tmp, err := os.CreateTemp(dir, ".clients-*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	w := bufio.NewWriter(tmp)
	for _, o := range owners {
		w.WriteString(hex.EncodeToString([]byte(o)))
		w.WriteByte('\n')
	}
	err = w.Flush()
	if err == nil {
		err = tmp.Sync()
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return err
	}
	if err := os.Rename(tmp.Name(), r.Path); err != nil {
		return err
	}
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}
