package daemon

import (
	"crypto/sha256"
	"encoding/binary"
)

// vpcBlockOffset places this data directory's default VPCs in 127.0.0.0/8.
// It is derived from the data directory's own random secret (the NFS handle
// key), so it is stable for the directory, moves with it, and differs
// between data directories: two efsd on one host do not hand out the same
// loopback addresses. The hash keeps the key itself out of sight.
func vpcBlockOffset(key []byte) int {
	sum := sha256.Sum256(append([]byte("efsd default VPC placement\x00"), key...))
	return int(binary.BigEndian.Uint32(sum[:4]) & 0x7fffffff)
}
