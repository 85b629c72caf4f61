package sqlite

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"time"

	"github.com/efsd/efsd/internal/efs"
)

// txn implements efs.Tx over one SQL transaction.
type txn struct {
	ctx   context.Context
	tx    *sql.Tx
	stmts *stmtCache // nil: run every query unprepared
}

const fsColumns = `seq, doc`

func fsSeq(fs *efs.FileSystem, seq int64) { fs.Seq = seq }

func (t *txn) queryFS(query string, args ...any) ([]*efs.FileSystem, error) {
	return docRows(t, fsSeq, query, args...)
}

func (t *txn) FileSystem(account, region, id string) (*efs.FileSystem, error) {
	return docRow(t, fsSeq, `SELECT `+fsColumns+` FROM file_systems WHERE account = $1 AND region = $2 AND id = $3`, account, region, id)
}

func (t *txn) FileSystemByToken(account, region, token string) (*efs.FileSystem, error) {
	return docRow(t, fsSeq, `SELECT `+fsColumns+` FROM file_systems WHERE account = $1 AND region = $2 AND creation_token = $3`, account, region, token)
}

func (t *txn) FileSystems(account, region string, afterSeq int64, limit int) ([]*efs.FileSystem, error) {
	return t.queryFS(`SELECT `+fsColumns+` FROM file_systems
		WHERE account = $1 AND region = $2 AND seq > $3 ORDER BY seq LIMIT $4`, account, region, afterSeq, limit)
}

func (t *txn) CountFileSystems(account, region string) (int, error) {
	var n int
	err := t.queryRow(
		`SELECT coalesce((SELECT n FROM file_system_counts WHERE account = $1 AND region = $2), 0)`, account, region).Scan(&n)
	return n, err
}

func dueAt(fs *efs.FileSystem) any {
	if fs.DueAt.IsZero() {
		return nil
	}
	return fs.DueAt.UnixNano()
}

func (t *txn) InsertFileSystem(fs *efs.FileSystem) error {
	doc, err := json.Marshal(fs)
	if err != nil {
		return err
	}
	err = t.queryRow(`INSERT INTO file_systems (account, region, id, creation_token, due_at, doc)
		VALUES ($1, $2, $3, $4, $5, $6) RETURNING seq`,
		fs.Account, fs.Region, fs.ID, fs.CreationToken, dueAt(fs), string(doc)).Scan(&fs.Seq)
	return uniqueErr(err, "file system "+fs.ID)
}

func (t *txn) UpdateFileSystem(fs *efs.FileSystem) error {
	doc, err := json.Marshal(fs)
	if err != nil {
		return err
	}
	res, err := t.exec(`UPDATE file_systems SET due_at = $1, doc = $2
		WHERE account = $3 AND region = $4 AND id = $5`, dueAt(fs), string(doc), fs.Account, fs.Region, fs.ID)
	return affected(res, err)
}

func (t *txn) DeleteFileSystem(account, region, id string) error {
	res, err := t.exec(
		`DELETE FROM file_systems WHERE account = $1 AND region = $2 AND id = $3`, account, region, id)
	return affected(res, err)
}

func affected(res sql.Result, err error) error {
	if err != nil {
		return err
	}
	n, err := res.RowsAffected()
	if err != nil {
		return err
	}
	if n == 0 {
		return efs.ErrNotFound
	}
	return nil
}

func (t *txn) DueFileSystems(now time.Time, limit int) ([]*efs.FileSystem, error) {
	return t.queryFS(`SELECT `+fsColumns+` FROM file_systems
		WHERE due_at IS NOT NULL AND due_at <= $1 ORDER BY due_at LIMIT $2`, now.UnixNano(), limit)
}

func (t *txn) NextDue(now time.Time) (time.Time, bool, error) {
	var ns sql.NullInt64
	err := t.queryRow(`SELECT min(due_at) FROM file_systems WHERE due_at > $1`, now.UnixNano()).Scan(&ns)
	if err != nil || !ns.Valid {
		return time.Time{}, false, err
	}
	return time.Unix(0, ns.Int64), true, nil
}

func (t *txn) AccountPreference(account, region string) (string, error) {
	var v string
	err := t.queryRow(
		`SELECT resource_id_type FROM account_preferences WHERE account = $1 AND region = $2`, account, region).Scan(&v)
	if errors.Is(err, sql.ErrNoRows) {
		return "", nil
	}
	return v, err
}

func (t *txn) PutAccountPreference(account, region, idType string) error {
	_, err := t.exec(`INSERT INTO account_preferences (account, region, resource_id_type)
		VALUES ($1, $2, $3) ON CONFLICT (account, region) DO UPDATE SET resource_id_type = excluded.resource_id_type`,
		account, region, idType)
	return err
}
