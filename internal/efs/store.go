package efs

import (
	"context"
	"time"
)

// Store persists efsd's records. Implementations (store/sqlite, and later
// store/postgres) only save and load; every rule about what may be saved
// lives in Service. All implementations pass store/storetest.
type Store interface {
	// View runs fn in a read-only transaction.
	View(ctx context.Context, fn func(Tx) error) error
	// Update runs fn in a read-write transaction, committed durably when
	// fn returns nil and rolled back otherwise.
	Update(ctx context.Context, fn func(Tx) error) error
	Close() error
}

// Tx is one transaction. Lookups of missing records return ErrNotFound;
// inserts that collide with a unique key return ErrConflict.
type Tx interface {
	FileSystem(account, region, id string) (*FileSystem, error)
	FileSystemByToken(account, region, token string) (*FileSystem, error)
	// FileSystems lists an account's file systems in a region in creation
	// order, those with Seq greater than afterSeq, at most limit of them.
	FileSystems(account, region string, afterSeq int64, limit int) ([]*FileSystem, error)
	CountFileSystems(account, region string) (int, error)
	// InsertFileSystem stores a new file system and sets its Seq.
	InsertFileSystem(fs *FileSystem) error
	// UpdateFileSystem replaces a stored file system.
	UpdateFileSystem(fs *FileSystem) error
	DeleteFileSystem(account, region, id string) error
	// DueFileSystems lists file systems of every account whose DueAt is
	// set and not after now, earliest first, at most limit of them.
	DueFileSystems(now time.Time, limit int) ([]*FileSystem, error)
	// NextDue is the earliest DueAt after now, if any.
	NextDue(now time.Time) (time.Time, bool, error)

	// AccountPreference returns the resource ID type an account chose in a
	// region, or "" when it never chose.
	AccountPreference(account, region string) (string, error)
	PutAccountPreference(account, region, idType string) error

	InsertReplication(r *Replication) error
	UpdateReplication(r *Replication) error
	DeleteReplication(id string) error
	Replication(id string) (*Replication, error)
	// ReplicationsByFSID lists configurations whose source or destination
	// has the ID, in any account or region.
	ReplicationsByFSID(id string) ([]*Replication, error)
	// VisibleReplications lists, in creation order after afterSeq, the
	// configurations whose source or destination side lies in the account
	// and region and is not hidden on that side.
	VisibleReplications(account, region string, afterSeq int64, limit int) ([]*Replication, error)
	AllReplications() ([]*Replication, error)

	// Network returns an account's network in a region (ErrNotFound if
	// never made); NextVPCBlock hands out the next loopback block number,
	// starting at 1.
	Network(account, region string) (*Network, error)
	PutNetwork(account, region string, n *Network) error
	NextVPCBlock() (int, error)

	InsertMountTarget(mt *MountTarget) error // ErrConflict if the IP is taken
	UpdateMountTarget(mt *MountTarget) error
	DeleteMountTarget(account, region, id string) error
	MountTarget(account, region, id string) (*MountTarget, error)
	MountTargetByIP(ip string) (*MountTarget, error)
	MountTargetsOfFS(account, region, fsID string) ([]*MountTarget, error)
	MountTargetsPage(account, region, fsID string, afterSeq int64, limit int) ([]*MountTarget, error)
	AllMountTargets() ([]*MountTarget, error)

	InsertAccessPoint(ap *AccessPoint) error
	UpdateAccessPoint(ap *AccessPoint) error
	DeleteAccessPoint(account, region, id string) error
	AccessPoint(account, region, id string) (*AccessPoint, error)
	AccessPointByToken(account, region, token string) (*AccessPoint, error)
	CountAccessPoints(account, region, fsID string) (int, error)
	// AccessPoints pages through an account's access points in a region,
	// only those of fsID when it is not empty.
	AccessPoints(account, region, fsID string, afterSeq int64, limit int) ([]*AccessPoint, error)
	DeleteAccessPointsOfFS(account, region, fsID string) error
}

// Volumes holds the data of file systems. The volume package implements it
// over directories on the local disk.
type Volumes interface {
	// Create makes the file system's root; creating an existing one is not
	// an error.
	Create(k FSKey) error
	// Remove deletes the file system's data; removing a missing one is not
	// an error.
	Remove(k FSKey) error
	// Usage is the last metered size of the file system's data.
	Usage(k FSKey) (Usage, bool)
}
