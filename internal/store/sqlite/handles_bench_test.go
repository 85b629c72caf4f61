package sqlite

import (
	"path/filepath"
	"strconv"
	"testing"
)

// BenchmarkHandlesPutDelete is what an NFS create then remove costs the handle table.
func BenchmarkHandlesPutDelete(b *testing.B) {
	s, err := Open(filepath.Join(b.TempDir(), "db"))
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	for i := 0; i < b.N; i++ {
		if err := s.PutHandle("fs", uint64(i), "1/name"+strconv.Itoa(i)); err != nil {
			b.Fatal(err)
		}
		if err := s.DeleteHandle("fs", uint64(i)); err != nil {
			b.Fatal(err)
		}
	}
}
