package sqlite

import (
	"encoding/json"

	"github.com/efsd/efsd/internal/efs"
)

const repColumns = `seq, doc`

func repSeq(r *efs.Replication, seq int64) { r.Seq = seq }

func (t *txn) queryReps(query string, args ...any) ([]*efs.Replication, error) {
	return docRows(t, repSeq, query, args...)
}

func (t *txn) InsertReplication(r *efs.Replication) error {
	doc, err := json.Marshal(r)
	if err != nil {
		return err
	}
	err = t.queryRow(`INSERT INTO replications
		(id, src_account, src_region, src_id, src_hidden, dst_account, dst_region, dst_id, dst_hidden, doc)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) RETURNING seq`,
		r.ID, r.Source.Account, r.Source.Region, r.Source.ID, r.SourceDeleted,
		r.Dest.Account, r.Dest.Region, r.Dest.ID, r.DestDeleted, string(doc)).Scan(&r.Seq)
	return uniqueErr(err, "replication "+r.ID)
}

func (t *txn) UpdateReplication(r *efs.Replication) error {
	doc, err := json.Marshal(r)
	if err != nil {
		return err
	}
	res, err := t.exec(`UPDATE replications SET src_hidden = $1, dst_hidden = $2, doc = $3 WHERE id = $4`,
		r.SourceDeleted, r.DestDeleted, string(doc), r.ID)
	return affected(res, err)
}

func (t *txn) DeleteReplication(id string) error {
	res, err := t.exec(`DELETE FROM replications WHERE id = $1`, id)
	return affected(res, err)
}

func (t *txn) Replication(id string) (*efs.Replication, error) {
	return docRow(t, repSeq, `SELECT `+repColumns+` FROM replications WHERE id = $1`, id)
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
