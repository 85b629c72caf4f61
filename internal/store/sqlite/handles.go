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
	_, err := s.hput.ExecContext(context.Background(), fs, int64(ino), path)
	return err
}

// HandlePath returns the recorded path of an inode.
func (s *Store) HandlePath(fs string, ino uint64) (string, bool, error) {
	var p string
	err := s.hget.QueryRowContext(context.Background(), fs, int64(ino)).Scan(&p)
	if errors.Is(err, sql.ErrNoRows) {
		return "", false, nil
	}
	return p, err == nil, err
}

// DeleteHandle forgets an inode.
func (s *Store) DeleteHandle(fs string, ino uint64) error {
	_, err := s.hdel.ExecContext(context.Background(), fs, int64(ino))
	return err
}

// The handle table's statements, prepared once at Open: the NFS servers run them on every
// create, rename and remove, and compiling the SQL each time was a quarter of their cost.
const (
	putHandleSQL = `INSERT INTO nfs_handles (fs, ino, path) VALUES ($1, $2, $3)
		ON CONFLICT (fs, ino) DO UPDATE SET path = excluded.path`
	getHandleSQL = `SELECT path FROM nfs_handles WHERE fs = $1 AND ino = $2`
	delHandleSQL = `DELETE FROM nfs_handles WHERE fs = $1 AND ino = $2`
)

// prepareHandles prepares the handle table's statements.
func (s *Store) prepareHandles(ctx context.Context) error {
	var err error
	if s.hput, err = s.h.PrepareContext(ctx, putHandleSQL); err != nil {
		return err
	}
	if s.hdel, err = s.h.PrepareContext(ctx, delHandleSQL); err != nil {
		return err
	}
	s.hget, err = s.r.PrepareContext(ctx, getHandleSQL)
	return err
}
