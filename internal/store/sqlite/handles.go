package sqlite

import (
	"context"
	"database/sql"
	"errors"
)

// The NFS handle table is data-plane state, not a domain record: it is
// written outside domain transactions, straight through the store.

// PutHandle records that inode ino of file system fs is at path.
func (s *Store) PutHandle(fs string, ino uint64, path string) error {
	_, err := s.h.ExecContext(context.Background(), `INSERT INTO nfs_handles (fs, ino, path) VALUES ($1, $2, $3)
		ON CONFLICT (fs, ino) DO UPDATE SET path = excluded.path`, fs, int64(ino), path)
	return err
}

// HandlePath returns the recorded path of an inode.
func (s *Store) HandlePath(fs string, ino uint64) (string, bool, error) {
	var p string
	err := s.r.QueryRowContext(context.Background(), `SELECT path FROM nfs_handles WHERE fs = $1 AND ino = $2`, fs, int64(ino)).Scan(&p)
	if errors.Is(err, sql.ErrNoRows) {
		return "", false, nil
	}
	return p, err == nil, err
}

// DeleteHandle forgets an inode.
func (s *Store) DeleteHandle(fs string, ino uint64) error {
	_, err := s.h.ExecContext(context.Background(), `DELETE FROM nfs_handles WHERE fs = $1 AND ino = $2`, fs, int64(ino))
	return err
}
