package fsview

import (
	"net/netip"
	"os"
)

// Export describes one file system served at one mount target.
type Export struct {
	// FileSystemID, e.g. fs-0123456789abcdef0, is part of every file handle's MAC: a handle of another
	// file system is stale here. It must tell apart every file system that shares a HandleKey (efsd
	// uses account/region/ID).
	FileSystemID string
	// HandleKey authenticates file handles (HandleKeySize bytes, LoadHandleKey): handles stay valid
	// for as long as the key is kept, across restarts, and at every Server with the same key and
	// FileSystemID. Nil: a random key of the Server's own (its handles die with it).
	HandleKey []byte
	// Root is the host directory of the file system.
	Root string
	// ReadOnly is consulted on every RPC: true → every modifying operation fails with ROFS
	// (replication destinations). Nil means writable.
	ReadOnly func() bool
	// OnChange is called after every successful write, create, mkdir, symlink, rename, remove and
	// setattr (and after an access point's root directory is created). It is called synchronously
	// on the RPC's goroutine, once per modifying RPC, so it must be cheap (a non-blocking signal).
	// Nil means no notification.
	OnChange func()
	// AccessPoint returns the access point for an ID, or ok=false. The mount path "/" is the file
	// system root; "/fsap-0123456789abcdef0" (or "fsap-…") that access point's root. It is
	// consulted at mount (NFSv3 MOUNT, NFSv4 LOOKUP from the pseudo-root) and on every RPC made through a handle of the access point, so a deleted
	// access point's handles become stale. Nil means no access points.
	AccessPoint func(id string) (AccessPoint, bool)
	// Access returns what the file system policy lets clients do through the access point with this
	// ID ("" for mounts of the file system root or its directories). It is consulted at mount (no
	// Mount → ACCES) and on every RPC, so a policy change applies to mounted clients at
	// their next call: without Mount every operation fails with ACCES, without Write every
	// modifying operation fails with ROFS, without Root a client's uid 0 and gid 0 act as
	// 65534 (an access point's PosixUser still replaces the client's identity). Nil means full
	// access (EFS's default policy).
	Access func(accessPointID string) ClientAccess
	// Admit is consulted as each connection is accepted, with the client's address: false closes it
	// before anything is read (the mount target's security groups). Nil admits every client.
	Admit func(client netip.Addr) bool
}

// ClientAccess is what a file system policy grants NFS clients that do not use IAM authorization.
type ClientAccess struct {
	Mount, Write, Root bool
}

// FullAccess is what clients may do without a file system policy.
var FullAccess = ClientAccess{Mount: true, Write: true, Root: true}

// AccessPoint pins a root directory and a POSIX identity, as EFS access points do.
type AccessPoint struct {
	ID   string
	Path string // root directory inside the file system, e.g. "/data/app" ("/" = FS root)
	// UID and GID are the PosixUser: when UID is set every operation made through the access point
	// acts as UID:GID with SecondaryGIDs, whatever the client's credentials (EFS requires both; a nil
	// GID with UID set acts as group 65534, never as group 0). Nil UID = the client's own AUTH_UNIX
	// identity is used, as on a plain mount.
	UID, GID      *uint32
	SecondaryGIDs []uint32
	// CreationInfo: when Path does not exist at mount time, create it (and missing parents, as
	// root:root 0755) with these owner and permissions; if nil and Path is missing, the mount fails
	// (NOENT).
	CreationInfo *CreationInfo
}

// CreationInfo gives the owner and permissions of an access point's root directory created at
// mount time. Permissions may carry the setuid/setgid/sticky bits either as os.ModeSetuid,
// os.ModeSetgid, os.ModeSticky or as the raw octal bits 04000, 02000, 01000 (as parsed from EFS's
// "2775"-style strings with strconv.ParseUint(s, 8, 32)).
type CreationInfo struct {
	OwnerUID, OwnerGID uint32
	Permissions        os.FileMode
}

// UnixMode converts an os.FileMode (Go flags or raw octal special bits) to the st_mode permission
// and special bits (07777).
func UnixMode(m os.FileMode) uint32 {
	mode := uint32(m) & 07777
	if m&os.ModeSetuid != 0 {
		mode |= 04000
	}
	if m&os.ModeSetgid != 0 {
		mode |= 02000
	}
	if m&os.ModeSticky != 0 {
		mode |= 01000
	}
	return mode
}
