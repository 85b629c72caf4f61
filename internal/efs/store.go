package efs

import (
	"context"
	"time"
)

// Store persists efsd's records. Implementations (store/sqlite, and later
// store/postgres) only save and load; every rule about what may be saved
// lives in Service. All implementations pass store/storetest.
type Store interface {
	// View runs fn in a read-only transaction: writes in it fail.
	View(ctx context.Context, fn func(Tx) error) error
	// Update runs fn in a read-write transaction, committed durably when
	// fn returns nil and rolled back otherwise.
	Update(ctx context.Context, fn func(Tx) error) error
	Close() error
}

// Tx is one transaction. The contract, beyond each method's comment:
//
//   - Lookups of missing records return ErrNotFound, and so do updates and
//     deletes of records that are not stored (DeleteAccessPointsOfFS aside).
//   - Inserts that collide with a unique key return ErrConflict, store
//     nothing and leave the transaction usable: the domain retries an
//     insert with a fresh ID in the same transaction.
//   - A record reads back as it was stored, every field: times as the same
//     instant to the nanosecond (their Location may differ), a nil slice
//     possibly as an empty one. FileSystem.Size is not stored.
//   - Methods that take an account and region see only that account's
//     records in that region; the same ID or token elsewhere is another
//     record.
//   - Inserts set the record's Seq higher than any Seq the store gave that
//     kind of record before, deleted ones included, so a page marker stays
//     valid. "Creation order" is Seq order. A page lists the records with
//     Seq greater than afterSeq, at most limit (> 0) of them.
//   - Updates replace the record with the same key (account, region and
//     ID; a replication's ID) and keep its Seq. The fields a record is
//     looked up or kept unique by (creation token, client token, IP, file
//     system ID, a replication's Source and Dest) are fixed at insert.
type Tx interface {
	FileSystem(account, region, id string) (*FileSystem, error)
	FileSystemByToken(account, region, token string) (*FileSystem, error)
	// FileSystems lists an account's file systems in a region in creation
	// order, those with Seq greater than afterSeq, at most limit of them.
	FileSystems(account, region string, afterSeq int64, limit int) ([]*FileSystem, error)
	CountFileSystems(account, region string) (int, error)
	// InsertFileSystem stores a new file system and sets its Seq;
	// ErrConflict if its ID or creation token is taken in its account and
	// region.
	InsertFileSystem(fs *FileSystem) error
	// UpdateFileSystem replaces a stored file system.
	UpdateFileSystem(fs *FileSystem) error
	// DeleteFileSystem deletes the file system alone (not its access
	// points, mount targets or replications).
	DeleteFileSystem(account, region, id string) error
	// DueFileSystems lists file systems of every account whose DueAt is
	// set and not after now, earliest first, at most limit of them.
	DueFileSystems(now time.Time, limit int) ([]*FileSystem, error)
	// NextDue is the earliest DueAt strictly after now, of any account, if
	// any.
	NextDue(now time.Time) (time.Time, bool, error)

	// AccountPreference returns the resource ID type an account chose in a
	// region, or "" when it never chose.
	AccountPreference(account, region string) (string, error)
	// PutAccountPreference sets or replaces the account's choice.
	PutAccountPreference(account, region, idType string) error

	// InsertReplication stores a new configuration and sets its Seq;
	// ErrConflict if its ID is taken, or if its source file system is the
	// source of another configuration, or its destination the destination
	// of another (file systems compared by account, region and ID).
	InsertReplication(r *Replication) error
	UpdateReplication(r *Replication) error
	DeleteReplication(id string) error
	Replication(id string) (*Replication, error)
	// ReplicationsByFSID lists, in creation order, configurations whose
	// source or destination has the ID, in any account or region, hidden
	// sides included.
	ReplicationsByFSID(id string) ([]*Replication, error)
	// VisibleReplications lists, in creation order after afterSeq, the
	// configurations whose source or destination side lies in the account
	// and region and is not hidden on that side; one with both sides there
	// is listed once.
	VisibleReplications(account, region string, afterSeq int64, limit int) ([]*Replication, error)
	// AllReplications lists every configuration in creation order.
	AllReplications() ([]*Replication, error)

	// Network returns an account's network in a region (ErrNotFound if
	// never made); PutNetwork makes or replaces it. NextVPCBlock hands out
	// the next loopback block number, 1, 2, 3, … over all accounts and
	// regions: a number a committed transaction took is never handed out
	// again (one a rolled-back transaction took may be).
	Network(account, region string) (*Network, error)
	PutNetwork(account, region string, n *Network) error
	NextVPCBlock() (int, error)

	// InsertMountTarget stores a new mount target and sets its Seq;
	// ErrConflict if its ID is taken in its account and region, or its IP
	// by any mount target of any account or region.
	InsertMountTarget(mt *MountTarget) error
	UpdateMountTarget(mt *MountTarget) error
	DeleteMountTarget(account, region, id string) error
	MountTarget(account, region, id string) (*MountTarget, error)
	// MountTargetByIP finds the mount target at the address, in any
	// account or region.
	MountTargetByIP(ip string) (*MountTarget, error)
	// MountTargetsOfFS lists a file system's mount targets in creation
	// order; MountTargetsPage pages through them.
	MountTargetsOfFS(account, region, fsID string) ([]*MountTarget, error)
	MountTargetsPage(account, region, fsID string, afterSeq int64, limit int) ([]*MountTarget, error)
	// AllMountTargets lists every mount target in creation order.
	AllMountTargets() ([]*MountTarget, error)

	// InsertAccessPoint stores a new access point and sets its Seq;
	// ErrConflict if its ID or client token is taken in its account and
	// region, whatever the file system.
	InsertAccessPoint(ap *AccessPoint) error
	UpdateAccessPoint(ap *AccessPoint) error
	DeleteAccessPoint(account, region, id string) error
	AccessPoint(account, region, id string) (*AccessPoint, error)
	AccessPointByToken(account, region, token string) (*AccessPoint, error)
	CountAccessPoints(account, region, fsID string) (int, error)
	// AccessPoints pages through an account's access points in a region,
	// only those of fsID when it is not empty.
	AccessPoints(account, region, fsID string, afterSeq int64, limit int) ([]*AccessPoint, error)
	// DeleteAccessPointsOfFS deletes a file system's access points; none
	// is not an error.
	DeleteAccessPointsOfFS(account, region, fsID string) error
}

// Volumes holds the data of file systems. The volume package implements it
// over directories on the local disk.
type Volumes interface {
	// Create makes the file systems' roots durably; creating an existing
	// one is not an error.
	Create(ks ...FSKey) error
	// Remove deletes the file system's data; removing a missing one is not
	// an error.
	Remove(k FSKey) error
	// Usage is the last metered size of the file system's data.
	Usage(k FSKey) (Usage, bool)
}
