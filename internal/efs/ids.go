package efs

import (
	"crypto/rand"
	"encoding/hex"
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
