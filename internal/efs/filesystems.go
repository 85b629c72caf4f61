package efs

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// CreateFileSystemInput carries CreateFileSystem's parameters, already
// checked against the model's shapes.
type CreateFileSystemInput struct {
	CreationToken         string
	PerformanceMode       string
	Encrypted             bool
	KmsKeyID              string
	ThroughputMode        string
	ProvisionedThroughput *float64
	AvailabilityZoneName  string
	Backup                *bool
	Tags                  []Tag
}

// MaxTags is the most tags one resource may carry.
const MaxTags = 50

// CreateFileSystem creates a file system in the creating state; the
// lifecycle worker provisions its data directory and makes it available.
func (s *Service) CreateFileSystem(ctx context.Context, p Principal, in CreateFileSystemInput) (*FileSystem, error) {
	fs := &FileSystem{
		Account:         p.Account,
		Region:          p.Region,
		CreationToken:   in.CreationToken,
		CreatedAt:       s.now(),
		State:           StateCreating,
		PerformanceMode: in.PerformanceMode,
		ThroughputMode:  in.ThroughputMode,
		Encrypted:       in.Encrypted,
		Protection:      ProtectionEnabled,
		Tags:            []Tag{},
		BackupStatus:    BackupDisabled,
	}
	if fs.PerformanceMode == "" {
		fs.PerformanceMode = GeneralPurpose
	}
	if fs.ThroughputMode == "" {
		fs.ThroughputMode = Bursting
	}
	if err := s.checkThroughput(fs.ThroughputMode, in.ProvisionedThroughput); err != nil {
		return nil, err
	}
	if in.ProvisionedThroughput != nil {
		fs.ProvisionedThroughput = *in.ProvisionedThroughput
	}
	if fs.PerformanceMode == MaxIO && fs.ThroughputMode == Elastic {
		return nil, E(BadRequest, "Performance mode maxIO is not supported with the elastic throughput mode.")
	}
	if in.KmsKeyID != "" && !in.Encrypted {
		return nil, E(BadRequest, "KmsKeyId can only be specified when Encrypted is true.")
	}
	if in.Encrypted {
		fs.KmsKeyID = kmsKeyARN(p, in.KmsKeyID)
	}
	if in.AvailabilityZoneName != "" {
		z, ok := s.cfg.Regions.Zone(p.Region, in.AvailabilityZoneName)
		if !ok {
			return nil, E(UnsupportedAvailabilityZone,
				"Availability Zone '%s' is not supported in region %s.", in.AvailabilityZoneName, p.Region)
		}
		if fs.PerformanceMode == MaxIO {
			return nil, E(BadRequest, "One Zone file systems do not support the maxIO performance mode.")
		}
		fs.AvailabilityZoneName, fs.AvailabilityZoneID = z.Name, z.ID
		fs.BackupStatus = BackupEnabled // One Zone file systems back up by default
	}
	if in.Backup != nil {
		fs.BackupStatus = BackupDisabled
		if *in.Backup {
			fs.BackupStatus = BackupEnabled
		}
	}
	tags, err := mergeTags(nil, in.Tags)
	if err != nil {
		return nil, err
	}
	fs.Tags = tags
	fs.DueAt = fs.CreatedAt.Add(s.cfg.TransitionDelay)

	err = s.store.Update(ctx, func(tx Tx) error {
		existing, err := tx.FileSystemByToken(p.Account, p.Region, in.CreationToken)
		if err == nil {
			return &Error{Code: FileSystemAlreadyExists, FileSystemID: existing.ID,
				Message: fmt.Sprintf("File system '%s' already exists with creation token '%s'.", existing.ID, in.CreationToken)}
		}
		if !errors.Is(err, ErrNotFound) {
			return fmt.Errorf("look up creation token: %w", err)
		}
		n, err := tx.CountFileSystems(p.Account, p.Region)
		if err != nil {
			return fmt.Errorf("count file systems: %w", err)
		}
		if n >= s.cfg.FileSystemQuota {
			return E(FileSystemLimitExceeded,
				"Account %s has reached its limit of %d file systems in %s.", p.Account, s.cfg.FileSystemQuota, p.Region)
		}
		for range 10 {
			if fs.ID, err = s.newFileSystemID(tx, p.Account, p.Region); err != nil {
				return err
			}
			err = tx.InsertFileSystem(fs)
			if !errors.Is(err, ErrConflict) {
				break
			}
		}
		if err != nil {
			return fmt.Errorf("insert file system: %w", err)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	s.Kick()
	s.withUsage(fs)
	return fs, nil
}

// checkThroughput applies EFS's rules tying ProvisionedThroughputInMibps to
// the provisioned throughput mode.
func (s *Service) checkThroughput(mode string, provisioned *float64) error {
	if mode == Provisioned && provisioned == nil {
		return E(BadRequest, "ProvisionedThroughputInMibps is required when ThroughputMode is provisioned.")
	}
	if mode != Provisioned && provisioned != nil {
		return E(BadRequest, "ProvisionedThroughputInMibps can only be specified when ThroughputMode is provisioned.")
	}
	if provisioned != nil && *provisioned > s.cfg.MaxProvisionedThroughput {
		return E(ThroughputLimitExceeded,
			"ProvisionedThroughputInMibps %g exceeds the limit of %g MiB/s.", *provisioned, s.cfg.MaxProvisionedThroughput)
	}
	return nil
}

// kmsKeyARN turns any accepted KmsKeyId form into the key ARN EFS reports:
// always a key's ARN, as EFS resolves an alias to the key it names. Without
// a key, the account's default EFS key (alias aws/elasticfilesystem) is used.
// efsd has no KMS, so the key behind an alias gets a stable ID derived from
// the alias's account, region and name.
func kmsKeyARN(p Principal, key string) string {
	region, account := p.Region, p.Account
	if strings.HasPrefix(key, "arn:") {
		parts := strings.SplitN(key, ":", 6) // arn:aws:kms:REGION:ACCOUNT:RESOURCE
		if len(parts) < 6 || !strings.HasPrefix(parts[5], "alias/") {
			return key
		}
		region, account, key = parts[3], parts[4], parts[5]
	}
	switch {
	case key == "":
		key = aliasKey(account, region, "alias/aws/elasticfilesystem")
	case strings.HasPrefix(key, "alias/"):
		key = aliasKey(account, region, key)
	default:
		key = "key/" + key
	}
	return fmt.Sprintf("arn:aws:kms:%s:%s:%s", region, account, key)
}

// aliasKey is the "key/…" resource of the key an alias names.
func aliasKey(account, region, alias string) string {
	sum := sha256.Sum256([]byte(alias + "/" + account + "/" + region))
	h := hex.EncodeToString(sum[:16])
	return fmt.Sprintf("key/%s-%s-%s-%s-%s", h[0:8], h[8:12], h[12:16], h[16:20], h[20:32])
}

// DescribeFileSystemsInput selects file systems to describe.
type DescribeFileSystemsInput struct {
	FileSystemID  string
	CreationToken string
	Marker        string
	MaxItems      int
}

// DescribeFileSystemsOutput is one page of file systems.
type DescribeFileSystemsOutput struct {
	FileSystems []*FileSystem
	NextMarker  string
}

// DefaultPageSize is the page size of Describe operations when the caller
// gives none.
const DefaultPageSize = 100

// DescribeFileSystems describes one file system (by ID, ARN or creation
// token) or pages through all of p's file systems in creation order.
// Markers name the last file system of the previous page by its creation
// sequence, so pages stay consistent while file systems come and go.
func (s *Service) DescribeFileSystems(ctx context.Context, p Principal, in DescribeFileSystemsInput) (*DescribeFileSystemsOutput, error) {
	limit := in.MaxItems
	if limit <= 0 {
		limit = DefaultPageSize
	}
	after, err := decodeMarker(in.Marker)
	if err != nil {
		return nil, err
	}
	out := &DescribeFileSystemsOutput{FileSystems: []*FileSystem{}}
	err = s.store.View(ctx, func(tx Tx) error {
		switch {
		case in.FileSystemID != "":
			fs, err := loadFS(tx, p, in.FileSystemID)
			if err != nil {
				return err
			}
			if in.CreationToken == "" || in.CreationToken == fs.CreationToken {
				out.FileSystems = append(out.FileSystems, fs)
			}
		case in.CreationToken != "":
			fs, err := tx.FileSystemByToken(p.Account, p.Region, in.CreationToken)
			if errors.Is(err, ErrNotFound) {
				return nil // AWS answers an empty list for an unknown token
			}
			if err != nil {
				return err
			}
			out.FileSystems = append(out.FileSystems, fs)
		default:
			page, err := tx.FileSystems(p.Account, p.Region, after, limit+1)
			if err != nil {
				return err
			}
			out.FileSystems, out.NextMarker = trimPage(page, limit, func(fs *FileSystem) int64 { return fs.Seq })
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	for _, fs := range out.FileSystems {
		s.withUsage(fs)
	}
	return out, nil
}

// trimPage cuts a page fetched with limit+1 items back to limit and, when
// there was more, returns the marker of the next page.
func trimPage[T any](page []T, limit int, seq func(T) int64) ([]T, string) {
	if len(page) <= limit {
		return page, ""
	}
	page = page[:limit]
	return page, encodeMarker(seq(page[limit-1]))
}

const markerPrefix = "efsd1:"

func encodeMarker(seq int64) string {
	return base64.RawURLEncoding.EncodeToString([]byte(markerPrefix + strconv.FormatInt(seq, 10)))
}

func decodeMarker(m string) (int64, error) {
	if m == "" {
		return 0, nil
	}
	b, err := base64.RawURLEncoding.DecodeString(m)
	if err == nil && strings.HasPrefix(string(b), markerPrefix) {
		if n, err := strconv.ParseInt(string(b[len(markerPrefix):]), 10, 64); err == nil && n >= 0 {
			return n, nil
		}
	}
	return 0, E(BadRequest, "The pagination marker '%s' is not valid.", m)
}

// DeleteFileSystem moves a file system to deleting; the lifecycle worker
// removes its data and then its record. A file system in a replication
// configuration cannot be deleted.
func (s *Service) DeleteFileSystem(ctx context.Context, p Principal, id string) error {
	err := s.store.Update(ctx, func(tx Tx) error {
		fs, err := loadFS(tx, p, id)
		if err != nil {
			return err
		}
		if fs.State == StateDeleting {
			return nil
		}
		if fs.MountTargets > 0 {
			return E(FileSystemInUse, "File system '%s' has %d mount targets; delete them first.", fs.ID, fs.MountTargets)
		}
		reps, err := tx.ReplicationsByFSID(fs.ID)
		if err != nil {
			return fmt.Errorf("look up replications: %w", err)
		}
		for _, r := range reps {
			if r.Source == fs.Key() || r.Dest == fs.Key() {
				return E(FileSystemInUse,
					"You cannot delete file system '%s' because it is in a replication configuration. Delete the replication configuration first.", fs.ID)
			}
		}
		fs.State = StateDeleting
		fs.DueAt = s.now()
		return tx.UpdateFileSystem(fs)
	})
	if err == nil {
		s.Kick()
	}
	return err
}

// UpdateFileSystemInput changes a file system's throughput.
type UpdateFileSystemInput struct {
	FileSystemID          string
	ThroughputMode        string
	ProvisionedThroughput *float64
}

// UpdateFileSystem changes throughput mode or provisioned throughput. A
// change moves the file system to updating until the lifecycle worker
// settles it. After a switch to provisioned throughput or an increase of
// it, mode changes and decreases wait out the cooldown, as in EFS.
func (s *Service) UpdateFileSystem(ctx context.Context, p Principal, in UpdateFileSystemInput) (*FileSystem, error) {
	fs, err := s.update(ctx, p, in.FileSystemID, func(fs *FileSystem) error {
		if err := requireAvailable(fs); err != nil {
			return err
		}
		mode := in.ThroughputMode
		if mode == "" {
			mode = fs.ThroughputMode
		}
		prov := in.ProvisionedThroughput
		if prov == nil && mode == Provisioned && fs.ThroughputMode == Provisioned {
			prov = &fs.ProvisionedThroughput
		}
		if err := s.checkThroughput(mode, prov); err != nil {
			return err
		}
		if mode == Elastic && fs.PerformanceMode == MaxIO {
			return E(BadRequest, "The elastic throughput mode is not supported with the maxIO performance mode.")
		}
		var newProv float64
		if prov != nil {
			newProv = *prov
		}
		modeChange := mode != fs.ThroughputMode
		if !modeChange && newProv == fs.ProvisionedThroughput {
			return nil // nothing to change
		}
		// Only committing to provisioned throughput (switching to it or
		// raising it) opens the cooldown window; inside it, leaving it or
		// lowering it is refused ("Managing throughput", EFS User Guide).
		commit := mode == Provisioned && (modeChange || newProv > fs.ProvisionedThroughput)
		now := s.now()
		if !commit && !fs.ThroughputChangedAt.IsZero() {
			if next := fs.ThroughputChangedAt.Add(s.cfg.ThroughputCooldown); now.Before(next) {
				return E(TooManyRequests,
					"File system '%s' switched to or increased provisioned throughput at %s; throughput mode changes and decreases are allowed after %s.",
					fs.ID, fs.ThroughputChangedAt.UTC().Format(time.RFC3339), next.UTC().Format(time.RFC3339))
			}
		}
		if commit {
			fs.ThroughputChangedAt = now
		}
		fs.ThroughputMode, fs.ProvisionedThroughput = mode, newProv
		fs.State = StateUpdating
		fs.DueAt = now.Add(s.cfg.TransitionDelay)
		return nil
	})
	if err == nil {
		s.Kick()
	}
	return fs, err
}

// UpdateFileSystemProtection sets a file system's replication overwrite
// protection. An empty value leaves it unchanged. REPLICATING is set only
// by replication itself.
func (s *Service) UpdateFileSystemProtection(ctx context.Context, p Principal, id, protection string) (string, error) {
	fs, err := s.update(ctx, p, id, func(fs *FileSystem) error {
		if fs.State == StateCreating || fs.State == StateDeleting {
			return E(IncorrectFileSystemLifeCycleState,
				"File system '%s' is in the '%s' state; its protection cannot be changed.", fs.ID, fs.State)
		}
		if fs.Protection == ProtectionReplicating {
			return E(ReplicationAlreadyExists,
				"ReplicationOverwriteProtection cannot be changed while the file system is a replication destination.")
		}
		switch protection {
		case "":
		case ProtectionEnabled, ProtectionDisabled:
			fs.Protection = protection
		default:
			return E(BadRequest,
				"ReplicationOverwriteProtection can only be set to ENABLED or DISABLED; '%s' is set by replication.", protection)
		}
		return nil
	})
	if err != nil {
		return "", err
	}
	return fs.Protection, nil
}
