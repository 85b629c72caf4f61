package efs

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
)

// IDSource yields the random hex digits of new resource IDs. Tests inject a
// deterministic one.
type IDSource interface {
	Hex(n int) string
}

// RandomIDs draws IDs from crypto/rand.
type RandomIDs struct{}

// Hex returns n random lower-case hex digits.
func (RandomIDs) Hex(n int) string {
	b := make([]byte, (n+1)/2)
	if _, err := rand.Read(b); err != nil {
		panic("efs: crypto/rand failed: " + err.Error())
	}
	return hex.EncodeToString(b)[:n]
}

// ID lengths: EFS's long IDs carry 17 hex digits, short ones 8.
const (
	longIDDigits  = 17
	shortIDDigits = 8
)

// newID returns prefix followed by an ID in AWS's long form: 17 hex digits,
// the first of them 0 (fs-0…, fsmt-0…, fsap-0…), as EFS hands them out.
func (s *Service) newID(prefix string) string {
	return prefix + "0" + s.ids.Hex(longIDDigits-1)
}

// newFileSystemID returns a file system ID in the form the account chose in
// the region: long, or 8 hex digits with the SHORT_ID preference.
func (s *Service) newFileSystemID(tx Tx, account, region string) (string, error) {
	pref, err := tx.AccountPreference(account, region)
	if err != nil {
		return "", fmt.Errorf("read account preferences: %w", err)
	}
	if pref == ShortID {
		return "fs-" + s.ids.Hex(shortIDDigits), nil
	}
	return s.newID("fs-"), nil
}
