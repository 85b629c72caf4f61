package sqlite

import (
	"encoding/json"
	"fmt"
	"strings"

	"github.com/efsd/efsd/internal/efs"
)

// docRows runs a query of (seq, doc) rows and decodes each document.
func docRows[T any](t *txn, setSeq func(*T, int64), query string, args ...any) ([]*T, error) {
	rows, err := t.query(query, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := []*T{}
	for rows.Next() {
		var seq int64
		var doc string
		if err := rows.Scan(&seq, &doc); err != nil {
			return nil, err
		}
		v := new(T)
		if err := json.Unmarshal([]byte(doc), v); err != nil {
			return nil, fmt.Errorf("decode record: %w", err)
		}
		setSeq(v, seq)
		out = append(out, v)
	}
	return out, rows.Err()
}

// docRow is docRows for one row; none is efs.ErrNotFound.
func docRow[T any](t *txn, setSeq func(*T, int64), query string, args ...any) (*T, error) {
	all, err := docRows(t, setSeq, query, args...)
	if err != nil {
		return nil, err
	}
	if len(all) == 0 {
		return nil, efs.ErrNotFound
	}
	return all[0], nil
}

func uniqueErr(err error, what string) error {
	if err != nil && strings.Contains(err.Error(), "UNIQUE constraint failed") {
		return fmt.Errorf("insert %s: %w", what, efs.ErrConflict)
	}
	return err
}

func mtSeq(mt *efs.MountTarget, seq int64) { mt.Seq = seq }

func (t *txn) InsertMountTarget(mt *efs.MountTarget) error {
	doc, err := json.Marshal(mt)
	if err != nil {
		return err
	}
	err = t.queryRow(`INSERT INTO mount_targets (account, region, id, fs_id, ip, doc)
		VALUES ($1, $2, $3, $4, $5, $6) RETURNING seq`, mt.Account, mt.Region, mt.ID, mt.FileSystemID, mt.IP, string(doc)).Scan(&mt.Seq)
	return uniqueErr(err, "mount target "+mt.ID)
}

func (t *txn) UpdateMountTarget(mt *efs.MountTarget) error {
	doc, err := json.Marshal(mt)
	if err != nil {
		return err
	}
	res, err := t.exec(`UPDATE mount_targets SET doc = $1 WHERE account = $2 AND region = $3 AND id = $4`,
		string(doc), mt.Account, mt.Region, mt.ID)
	return affected(res, err)
}

func (t *txn) DeleteMountTarget(account, region, id string) error {
	res, err := t.exec(`DELETE FROM mount_targets WHERE account = $1 AND region = $2 AND id = $3`, account, region, id)
	return affected(res, err)
}

func (t *txn) MountTarget(account, region, id string) (*efs.MountTarget, error) {
	return docRow(t, mtSeq, `SELECT seq, doc FROM mount_targets WHERE account = $1 AND region = $2 AND id = $3`, account, region, id)
}

func (t *txn) MountTargetByIP(ip string) (*efs.MountTarget, error) {
	return docRow(t, mtSeq, `SELECT seq, doc FROM mount_targets WHERE ip = $1`, ip)
}

func (t *txn) MountTargetsOfFS(account, region, fsID string) ([]*efs.MountTarget, error) {
	return docRows(t, mtSeq, `SELECT seq, doc FROM mount_targets WHERE account = $1 AND region = $2 AND fs_id = $3 ORDER BY seq`,
		account, region, fsID)
}

func (t *txn) MountTargetsPage(account, region, fsID string, afterSeq int64, limit int) ([]*efs.MountTarget, error) {
	return docRows(t, mtSeq, `SELECT seq, doc FROM mount_targets WHERE account = $1 AND region = $2 AND fs_id = $3 AND seq > $4
		ORDER BY seq LIMIT $5`, account, region, fsID, afterSeq, limit)
}

func (t *txn) AllMountTargets() ([]*efs.MountTarget, error) {
	return docRows(t, mtSeq, `SELECT seq, doc FROM mount_targets ORDER BY seq`)
}

func apSeq(ap *efs.AccessPoint, seq int64) { ap.Seq = seq }

func (t *txn) InsertAccessPoint(ap *efs.AccessPoint) error {
	doc, err := json.Marshal(ap)
	if err != nil {
		return err
	}
	err = t.queryRow(`INSERT INTO access_points (account, region, id, fs_id, client_token, doc)
		VALUES ($1, $2, $3, $4, $5, $6) RETURNING seq`, ap.Account, ap.Region, ap.ID, ap.FileSystemID, ap.ClientToken, string(doc)).Scan(&ap.Seq)
	return uniqueErr(err, "access point "+ap.ID)
}

func (t *txn) UpdateAccessPoint(ap *efs.AccessPoint) error {
	doc, err := json.Marshal(ap)
	if err != nil {
		return err
	}
	res, err := t.exec(`UPDATE access_points SET doc = $1 WHERE account = $2 AND region = $3 AND id = $4`,
		string(doc), ap.Account, ap.Region, ap.ID)
	return affected(res, err)
}

func (t *txn) DeleteAccessPoint(account, region, id string) error {
	res, err := t.exec(`DELETE FROM access_points WHERE account = $1 AND region = $2 AND id = $3`, account, region, id)
	return affected(res, err)
}

func (t *txn) AccessPoint(account, region, id string) (*efs.AccessPoint, error) {
	return docRow(t, apSeq, `SELECT seq, doc FROM access_points WHERE account = $1 AND region = $2 AND id = $3`, account, region, id)
}

func (t *txn) AccessPointByToken(account, region, token string) (*efs.AccessPoint, error) {
	return docRow(t, apSeq, `SELECT seq, doc FROM access_points WHERE account = $1 AND region = $2 AND client_token = $3`, account, region, token)
}

func (t *txn) CountAccessPoints(account, region, fsID string) (int, error) {
	var n int
	err := t.queryRow(`SELECT count(*) FROM access_points WHERE account = $1 AND region = $2 AND fs_id = $3`,
		account, region, fsID).Scan(&n)
	return n, err
}

func (t *txn) AccessPoints(account, region, fsID string, afterSeq int64, limit int) ([]*efs.AccessPoint, error) {
	return docRows(t, apSeq, `SELECT seq, doc FROM access_points WHERE account = $1 AND region = $2 AND ($3 = '' OR fs_id = $3)
		AND seq > $4 ORDER BY seq LIMIT $5`, account, region, fsID, afterSeq, limit)
}

func (t *txn) DeleteAccessPointsOfFS(account, region, fsID string) error {
	_, err := t.exec(`DELETE FROM access_points WHERE account = $1 AND region = $2 AND fs_id = $3`, account, region, fsID)
	return err
}
