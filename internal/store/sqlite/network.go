package sqlite

import (
	"database/sql"
	"encoding/json"
	"errors"

	"github.com/efsd/efsd/internal/efs"
)

func (t *txn) Network(account, region string) (*efs.Network, error) {
	var doc string
	err := t.queryRow(`SELECT doc FROM networks WHERE account = $1 AND region = $2`, account, region).Scan(&doc)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, efs.ErrNotFound
	}
	if err != nil {
		return nil, err
	}
	n := new(efs.Network)
	return n, json.Unmarshal([]byte(doc), n)
}

func (t *txn) PutNetwork(account, region string, n *efs.Network) error {
	doc, err := json.Marshal(n)
	if err != nil {
		return err
	}
	_, err = t.exec(`INSERT INTO networks (account, region, doc) VALUES ($1, $2, $3)
		ON CONFLICT (account, region) DO UPDATE SET doc = excluded.doc`, account, region, string(doc))
	return err
}

func (t *txn) NextVPCBlock() (int, error) {
	var v int
	err := t.queryRow(`INSERT INTO counters (name, value) VALUES ('vpc_block', 1)
		ON CONFLICT (name) DO UPDATE SET value = value + 1 RETURNING value`).Scan(&v)
	return v, err
}
