package efs

import (
	"fmt"
	"strings"
	"time"
)

// Principal is the caller of an operation: the account its credentials
// belong to and the region named in the signature's credential scope.
// Everything efsd stores is keyed by both, which is what isolates accounts
// and regions from one another.
type Principal struct {
	Account string
	Region  string
}

// LifeCycleState is a file system's state, as EFS reports it.
type LifeCycleState string

// File system lifecycle states.
const (
	StateCreating  LifeCycleState = "creating"
	StateAvailable LifeCycleState = "available"
	StateUpdating  LifeCycleState = "updating"
	StateDeleting  LifeCycleState = "deleting"
	StateError     LifeCycleState = "error"
)

// Performance and throughput modes.
const (
	GeneralPurpose = "generalPurpose"
	MaxIO          = "maxIO"

	Bursting    = "bursting"
	Provisioned = "provisioned"
	Elastic     = "elastic"
)

// Replication overwrite protection values.
const (
	ProtectionEnabled     = "ENABLED"
	ProtectionDisabled    = "DISABLED"
	ProtectionReplicating = "REPLICATING"
)

// Backup policy statuses.
const (
	BackupEnabled   = "ENABLED"
	BackupEnabling  = "ENABLING"
	BackupDisabled  = "DISABLED"
	BackupDisabling = "DISABLING"
)

// Resource ID types of the account preferences.
const (
	LongID  = "LONG_ID"
	ShortID = "SHORT_ID"
)

// Tag is a key/value pair attached to a resource.
type Tag struct {
	Key   string
	Value string
}

// LifecyclePolicy is one rule of a lifecycle configuration; exactly one of
// its fields is set.
type LifecyclePolicy struct {
	TransitionToIA                  string `json:",omitempty"`
	TransitionToPrimaryStorageClass string `json:",omitempty"`
	TransitionToArchive             string `json:",omitempty"`
}

// FileSystem is the stored record of one EFS file system.
type FileSystem struct {
	ID            string
	Account       string
	Region        string
	CreationToken string
	CreatedAt     time.Time
	// Seq orders file systems by creation; the store assigns it on insert
	// and pagination markers refer to it.
	Seq int64 `json:"-"`

	State                 LifeCycleState
	PerformanceMode       string
	ThroughputMode        string
	ProvisionedThroughput float64 `json:",omitempty"`
	Encrypted             bool
	KmsKeyID              string `json:",omitempty"`
	AvailabilityZoneName  string `json:",omitempty"`
	AvailabilityZoneID    string `json:",omitempty"`
	Protection            string
	Tags                  []Tag
	Policy                string            `json:",omitempty"`
	LifecyclePolicies     []LifecyclePolicy `json:",omitempty"`
	BackupStatus          string
	// OriginalSourceARN is set when the file system becomes a replication
	// destination: the original source of its data, kept after the
	// configuration is deleted so that a failback configuration (this file
	// system replicated back) reports where the data first came from.
	OriginalSourceARN string `json:",omitempty"`
	// MountTargets counts the file system's mount targets, kept in the
	// same transactions that create and remove them.
	MountTargets int `json:",omitempty"`

	// ThroughputChangedAt is the last switch to provisioned throughput or
	// increase of it. Within the cooldown after it, EFS refuses mode
	// switches and decreases (the user committed to that throughput for a
	// day); bursting ↔ elastic is otherwise free.
	ThroughputChangedAt time.Time `json:",omitzero"`
	// DueAt is when the lifecycle worker should next act on this file
	// system (settle a transitional state); zero when nothing is pending.
	DueAt time.Time `json:",omitzero"`

	// Size is the metered size of the file system's data. It is measured,
	// not stored.
	Size Usage `json:"-"`
}

// Usage is a metered size and when it was measured.
type Usage struct {
	Bytes int64
	At    time.Time
}

// Key identifies the file system's data volume.
func (fs *FileSystem) Key() FSKey {
	return FSKey{Account: fs.Account, Region: fs.Region, ID: fs.ID}
}

// ARN is the file system's Amazon Resource Name.
func (fs *FileSystem) ARN() string {
	return FileSystemARN(fs.Region, fs.Account, fs.ID)
}

// Name is the value of the file system's Name tag, if any.
func (fs *FileSystem) Name() (string, bool) {
	for _, t := range fs.Tags {
		if t.Key == "Name" {
			return t.Value, true
		}
	}
	return "", false
}

// FSKey names a file system across accounts and regions.
type FSKey struct {
	Account string
	Region  string
	ID      string
}

func (k FSKey) String() string { return k.Account + "/" + k.Region + "/" + k.ID }

// FileSystemARN formats a file system ARN.
func FileSystemARN(region, account, id string) string {
	return fmt.Sprintf("arn:aws:elasticfilesystem:%s:%s:file-system/%s", region, account, id)
}

// ParsedID is a resource reference given either as a bare ID or as an ARN.
type ParsedID struct {
	ID      string
	Region  string // empty for a bare ID
	Account string // empty for a bare ID
}

// ParseResourceID splits an ID-or-ARN as the model allows for file systems
// and access points. The caller has already checked the model's pattern.
func ParseResourceID(s string) ParsedID {
	if !strings.HasPrefix(s, "arn:") {
		return ParsedID{ID: s}
	}
	// arn:partition:elasticfilesystem:region:account:type/id
	parts := strings.SplitN(s, ":", 6)
	if len(parts) != 6 {
		return ParsedID{ID: s}
	}
	res := parts[5]
	if i := strings.LastIndexByte(res, '/'); i >= 0 {
		res = res[i+1:]
	}
	return ParsedID{ID: res, Region: parts[3], Account: parts[4]}
}

// Belongs reports whether a parsed reference may name a resource of p.
// An ARN naming another account or region names nothing p can see.
func (r ParsedID) Belongs(p Principal) bool {
	return (r.Region == "" || r.Region == p.Region) && (r.Account == "" || r.Account == p.Account)
}
