package sqlite

import (
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"github.com/efsd/efsd/internal/efs"
)

const repColumns = `seq, doc`

func scanRep(row interface{ Scan(...any) error }) (*efs.Replication, error) {
	var seq int64
	var doc string
	if err := row.Scan(&seq, &doc); err != nil {
		if errors.Is(err, sql.ErrNoRows) {
			return nil, efs.ErrNotFound
		}
		return nil, err
	}
	r := new(efs.Replication)
	if err := json.Unmarshal([]byte(doc), r); err != nil {
		return nil, fmt.Errorf("decode replication record: %w", err)
	}
	r.Seq = seq
	return r, nil
}

func (t *txn) queryReps(query string, args ...any) ([]*efs.Replication, error) {
	rows, err := t.tx.QueryContext(t.ctx, query, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := []*efs.Replication{}
	for rows.Next() {
		r, err := scanRep(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, r)
	}
	return out, rows.Err()
}

func (t *txn) InsertReplication(r *efs.Replication) error {
	doc, err := json.Marshal(r)
	if err != nil {
		return err
	}
	err = t.tx.QueryRowContext(t.ctx, `INSERT INTO replications
		(id, src_account, src_region, src_id, src_hidden, dst_account, dst_region, dst_id, dst_hidden, doc)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) RETURNING seq`,
		r.ID, r.Source.Account, r.Source.Region, r.Source.ID, r.SourceDeleted,
		r.Dest.Account, r.Dest.Region, r.Dest.ID, r.DestDeleted, string(doc)).Scan(&r.Seq)
	if err != nil && strings.Contains(err.Error(), "UNIQUE constraint failed") {
		return fmt.Errorf("insert replication %s: %w", r.ID, efs.ErrConflict)
	}
	return err
}

func (t *txn) UpdateReplication(r *efs.Replication) error {
	doc, err := json.Marshal(r)
	if err != nil {
		return err
	}
	res, err := t.tx.ExecContext(t.ctx, `UPDATE replications SET src_hidden = $1, dst_hidden = $2, doc = $3 WHERE id = $4`,
		r.SourceDeleted, r.DestDeleted, string(doc), r.ID)
	return affected(res, err)
}

func (t *txn) DeleteReplication(id string) error {
	res, err := t.tx.ExecContext(t.ctx, `DELETE FROM replications WHERE id = $1`, id)
	return affected(res, err)
}

func (t *txn) Replication(id string) (*efs.Replication, error) {
	return scanRep(t.tx.QueryRowContext(t.ctx, `SELECT `+repColumns+` FROM replications WHERE id = $1`, id))
}

func (t *txn) ReplicationsByFSID(id string) ([]*efs.Replication, error) {
	return t.queryReps(`SELECT `+repColumns+` FROM replications WHERE src_id = $1 OR dst_id = $1 ORDER BY seq`, id)
}

func (t *txn) VisibleReplications(account, region string, afterSeq int64, limit int) ([]*efs.Replication, error) {
	return t.queryReps(`SELECT `+repColumns+` FROM replications
		WHERE seq > $1 AND ((src_account = $2 AND src_region = $3 AND NOT src_hidden)
		                 OR (dst_account = $2 AND dst_region = $3 AND NOT dst_hidden))
		ORDER BY seq LIMIT $4`, afterSeq, account, region, limit)
}

func (t *txn) AllReplications() ([]*efs.Replication, error) {
	return t.queryReps(`SELECT ` + repColumns + ` FROM replications ORDER BY seq`)
}
