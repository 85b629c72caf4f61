package sqlite

import (
	"context"
	"database/sql"
	"fmt"
	"path/filepath"
	"testing"

	"github.com/efsd/efsd/internal/efs"
)

// A database made before file systems were counted by triggers gets its
// counts from the rows it holds, and keeps them from then on.
func TestFileSystemCountsMigrated(t *testing.T) {
	path := filepath.Join(t.TempDir(), "efsd.db")
	s, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	for i, acct := range []string{"1", "1", "1", "2", "2"} {
		err := s.Update(ctx, func(tx efs.Tx) error {
			return tx.InsertFileSystem(&efs.FileSystem{ID: fmt.Sprintf("fs-%d", i), Account: acct, Region: "r", CreationToken: fmt.Sprint(i)})
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	s.Close()
	// Back to the schema before the counts.
	db, err := sql.Open("sqlite", "file:"+path)
	if err != nil {
		t.Fatal(err)
	}
	for _, q := range []string{`DROP TRIGGER file_systems_counted`, `DROP TRIGGER file_systems_uncounted`,
		`DROP TABLE file_system_counts`, `DELETE FROM schema_migrations WHERE version = 5`} {
		if _, err := db.Exec(q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	db.Close()

	s, err = Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	count := func(acct string) int {
		var n int
		if err := s.View(ctx, func(tx efs.Tx) error { n, err = tx.CountFileSystems(acct, "r"); return err }); err != nil {
			t.Fatal(err)
		}
		return n
	}
	if a, b := count("1"), count("2"); a != 3 || b != 2 {
		t.Fatalf("after the migration: counts %d and %d, want 3 and 2", a, b)
	}
	if err := s.Update(ctx, func(tx efs.Tx) error { return tx.DeleteFileSystem("1", "r", "fs-0") }); err != nil {
		t.Fatal(err)
	}
	if err := s.Update(ctx, func(tx efs.Tx) error {
		return tx.InsertFileSystem(&efs.FileSystem{ID: "fs-9", Account: "2", Region: "r", CreationToken: "9"})
	}); err != nil {
		t.Fatal(err)
	}
	if a, b := count("1"), count("2"); a != 2 || b != 3 {
		t.Fatalf("after a delete and an insert: counts %d and %d, want 2 and 3", a, b)
	}
}
