package efs

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"strings"
	"time"

	"github.com/efsd/efsd/internal/region"
)

// Replication statuses of a destination, as EFS reports them.
const (
	RepEnabling = "ENABLING"
	RepEnabled  = "ENABLED"
	RepPaused   = "PAUSED"
	RepError    = "ERROR"
	RepDeleting = "DELETING"
)

// Deletion modes of DeleteReplicationConfiguration.
const (
	DeleteAll       = "ALL_CONFIGURATIONS"
	DeleteLocalOnly = "LOCAL_CONFIGURATION_ONLY"
)

// Replication is one replication configuration: a source file system
// copied continuously into one destination, possibly in another region or
// account. One record serves both sides; each side sees it in its own
// account and region.
type Replication struct {
	ID                string
	Source            FSKey
	Dest              FSKey
	OriginalSourceARN string
	CreatedAt         time.Time
	RoleARN           string `json:",omitempty"`
	// NewDest records that replication created the destination.
	NewDest bool `json:",omitempty"`

	Status           string
	StatusMessage    string    `json:",omitempty"`
	LastReplicatedAt time.Time `json:",omitzero"`

	// SourceDeleted and DestDeleted hide the configuration from one side
	// after a LOCAL_CONFIGURATION_ONLY delete there.
	SourceDeleted bool `json:",omitempty"`
	DestDeleted   bool `json:",omitempty"`
	// DueAt is when a deletion may be finished; zero unless DELETING.
	DueAt time.Time `json:",omitzero"`

	// Peer names the deployment that holds the other side, as this
	// deployment's configuration names it; "" when both sides are here.
	// Each deployment keeps its own record of a configuration that spans
	// two: the same ID, source and destination.
	Peer string `json:",omitempty"`
	// PeerSide is the side the peer holds: PeerSource or PeerDestination.
	PeerSide string `json:",omitempty"`
	// PeerAcked records that the peer has taken this side's deletion into
	// account (it asked for it, or acknowledged being told), so that the
	// replication engine stops telling it.
	PeerAcked bool `json:",omitempty"`

	Seq int64 `json:"-"`
}

// SourceARN is the source file system's ARN.
func (r *Replication) SourceARN() string {
	return FileSystemARN(r.Source.Region, r.Source.Account, r.Source.ID)
}

// Running reports whether the replication engine should be copying.
func (r *Replication) Running() bool {
	return r.Status != RepDeleting && !r.SourceDeleted && !r.DestDeleted
}

// visibleTo reports whether p sees the configuration from its side.
func (r *Replication) visibleTo(p Principal) bool {
	return r.Source.Account == p.Account && r.Source.Region == p.Region && !r.SourceDeleted ||
		r.Dest.Account == p.Account && r.Dest.Region == p.Region && !r.DestDeleted
}

// DestinationInput is the one destination of a new configuration.
type DestinationInput struct {
	Region               string
	AvailabilityZoneName string
	KmsKeyID             string
	FileSystemID         string // ID or ARN of an existing destination
	RoleARN              string
}

var roleARN = regexp.MustCompile(`^arn:aws[a-zA-Z-]*:iam::(\d{12}):role/`)

// CreateReplicationConfiguration starts replicating p's file system
// sourceID into a new or existing destination. The destination starts
// ENABLING; the replication engine moves it on.
func (s *Service) CreateReplicationConfiguration(ctx context.Context, p Principal, sourceID string, dests []DestinationInput) (*Replication, error) {
	if len(dests) != 1 {
		return nil, E(BadRequest, "Destinations must contain exactly one destination; %d were given.", len(dests))
	}
	d := dests[0]
	destRegion := d.Region
	if d.AvailabilityZoneName != "" {
		zr, ok := s.cfg.Regions.RegionOfZone(d.AvailabilityZoneName)
		if !ok && s.cfg.Peers != nil {
			// A zone of a region a peer serves (which checks it again).
			if zr, ok = region.Default().RegionOfZone(d.AvailabilityZoneName); ok {
				_, ok = s.peerFor(p.Account, zr)
			}
		}
		if !ok || destRegion != "" && zr != destRegion {
			return nil, E(UnsupportedAvailabilityZone, "Availability Zone '%s' does not exist in region %s.",
				d.AvailabilityZoneName, orDefault(destRegion, "any served region"))
		}
		destRegion = zr
	}
	var destRef ParsedID
	if d.FileSystemID != "" {
		destRef = ParseResourceID(d.FileSystemID)
		if d.KmsKeyID != "" || d.AvailabilityZoneName != "" {
			return nil, E(BadRequest, "KmsKeyId and AvailabilityZoneName apply only to a new destination file system.")
		}
		if destRef.Region != "" {
			if destRegion != "" && destRegion != destRef.Region {
				return nil, E(BadRequest, "Destination Region '%s' does not match the region of '%s'.", destRegion, d.FileSystemID)
			}
			destRegion = destRef.Region
		}
	}
	if destRegion == "" {
		destRegion = p.Region
	}
	destAccount := p.Account
	if destRef.Account != "" {
		destAccount = destRef.Account
	}
	peer, remote := s.peerFor(destAccount, destRegion)
	if !remote && !s.cfg.Regions.Has(destRegion) {
		return nil, E(BadRequest, "Region '%s' is not enabled for account %s.", destRegion, p.Account)
	}
	if destAccount != p.Account {
		if d.RoleARN == "" {
			return nil, E(BadRequest, "No RoleArn provided.  RoleArn is required for cross-account replication.")
		}
	}
	if d.RoleARN != "" {
		m := roleARN.FindStringSubmatch(d.RoleARN)
		if m == nil || m[1] != p.Account {
			return nil, E(BadRequest, "RoleArn '%s' must be an IAM role in the source account %s.", d.RoleARN, p.Account)
		}
	}

	if remote {
		d.Region, d.FileSystemID = destRegion, destRef.ID
		return s.createRemote(ctx, p, sourceID, peer, destAccount, d)
	}
	now := s.now()
	rep := &Replication{
		ID:        s.newID("rep-"),
		CreatedAt: now,
		RoleARN:   d.RoleARN,
		Status:    RepEnabling,
	}
	err := s.store.Update(ctx, func(tx Tx) error {
		src, err := replicableSource(tx, p, sourceID)
		if err != nil {
			return err
		}
		rep.Source = src.Key()
		rep.OriginalSourceARN = orDefault(src.OriginalSourceARN, src.ARN())

		d.FileSystemID = destRef.ID
		_, err = s.placeDestination(tx, rep, src, destAccount, destRegion, d)
		return err
	})
	if err != nil {
		return nil, err
	}
	s.dataPlaneChanged()
	s.Kick()
	s.replicationChanged()
	return rep, nil
}

// replicableSource loads p's file system sourceID, which must be available
// and in no configuration yet.
func replicableSource(tx Tx, p Principal, sourceID string) (*FileSystem, error) {
	src, err := loadFS(tx, p, sourceID)
	if err != nil {
		return nil, err
	}
	if err := requireAvailable(src); err != nil {
		return nil, err
	}
	if err := notReplicating(tx, src); err != nil {
		return nil, err
	}
	return src, nil
}

// placeDestination claims the existing destination d.FileSystemID (a bare
// ID; another account's only with its consent) or creates a new one, for
// src, and records rep with it.
func (s *Service) placeDestination(tx Tx, rep *Replication, src *FileSystem, account, region string, d DestinationInput) (*FileSystem, error) {
	var dst *FileSystem
	var err error
	if d.FileSystemID != "" {
		if account != src.Account {
			if err := s.authorizeReplicationInto(tx, src, account, region, d.FileSystemID, d.RoleARN); err != nil {
				return nil, err
			}
		}
		dst, err = s.claimDestination(tx, account, region, d.FileSystemID, src)
	} else {
		dst, err = s.newDestination(tx, account, region, d, src, rep)
		rep.NewDest = true
	}
	if err != nil {
		return nil, err
	}
	dst.OriginalSourceARN = rep.OriginalSourceARN
	if err := tx.UpdateFileSystem(dst); err != nil {
		return nil, fmt.Errorf("update destination: %w", err)
	}
	rep.Dest = dst.Key()
	if err := tx.InsertReplication(rep); err != nil {
		return nil, fmt.Errorf("insert replication: %w", err)
	}
	return dst, nil
}

// notReplicating refuses a file system that is already part of a
// configuration, as source or destination.
func notReplicating(tx Tx, fs *FileSystem) error {
	reps, err := tx.ReplicationsByFSID(fs.ID)
	if err != nil {
		return fmt.Errorf("look up replications: %w", err)
	}
	for _, r := range reps {
		if r.Source == fs.Key() || r.Dest == fs.Key() {
			return E(ReplicationAlreadyExists,
				"File system '%s' is already part of replication configuration %s (source %s, destination %s).",
				fs.ID, r.ID, r.Source.ID, r.Dest.ID)
		}
	}
	return nil
}

// replicationActions are what a destination's file system policy must
// allow the source account's role before another account may replicate
// into it. AWS's "Replicating EFS file systems across AWS accounts" asks
// the destination policy to allow the source account DescribeFileSystems,
// CreateReplicationConfiguration, DescribeReplicationConfigurations,
// DeleteReplicationConfiguration and ReplicationWrite; these three are the
// ones creating the configuration and copying into the file system use.
var replicationActions = []string{
	"elasticfilesystem:DescribeFileSystems",
	"elasticfilesystem:CreateReplicationConfiguration",
	"elasticfilesystem:ReplicationWrite",
}

// authorizeReplicationInto checks that the destination file system of
// another account consents to being overwritten: its file system policy
// must allow role (a role of the source's account) every one of
// replicationActions. No policy grants nothing. The refusal is the same
// error, built from the request alone, whether the account or the file
// system exists or not, and it comes before any check that would describe
// the destination, so other accounts' file systems cannot be probed.
func (s *Service) authorizeReplicationInto(tx Tx, src *FileSystem, account, region, id, role string) error {
	arn := FileSystemARN(region, account, id)
	refused := E(FileSystemNotFound,
		"Destination file system '%s' does not exist, or its file system policy does not allow %s %s on it.",
		arn, role, strings.Join(replicationActions, ", "))
	if s.cfg.Accounts != nil && !s.cfg.Accounts(account) {
		return refused
	}
	dst, err := tx.FileSystem(account, region, id)
	if errors.Is(err, ErrNotFound) {
		return refused
	}
	if err != nil {
		return fmt.Errorf("load destination: %w", err)
	}
	pol, err := dst.ParsedPolicy()
	if err != nil || pol == nil {
		return refused
	}
	req := PolicyRequest{
		Resource:  arn,
		Principal: PolicyPrincipal{Account: src.Account, ARN: role},
		Context: map[string]string{
			"aws:principalaccount": src.Account,
			"aws:principalarn":     role,
			"aws:sourceaccount":    src.Account,
			"aws:sourcearn":        src.ARN(),
			"aws:securetransport":  "true",
		},
	}
	for _, a := range replicationActions {
		req.Action = a
		if !pol.Allows(req) {
			return refused
		}
	}
	return nil
}

// claimDestination checks an existing file system can become the
// destination and marks it REPLICATING.
func (s *Service) claimDestination(tx Tx, account, region, id string, src *FileSystem) (*FileSystem, error) {
	dst, err := tx.FileSystem(account, region, id)
	if errors.Is(err, ErrNotFound) {
		return nil, fsNotFound(id)
	}
	if err != nil {
		return nil, fmt.Errorf("load destination: %w", err)
	}
	if dst.Key() == src.Key() {
		return nil, E(BadRequest, "The destination file system must differ from the source file system '%s'.", src.ID)
	}
	if err := requireAvailable(dst); err != nil {
		return nil, err
	}
	if err := notReplicating(tx, dst); err != nil {
		return nil, err
	}
	if dst.Protection != ProtectionDisabled {
		return nil, E(BadRequest,
			"Destination file system '%s' has replication overwrite protection %s; set it to DISABLED to replicate into it.", dst.ID, dst.Protection)
	}
	if src.Encrypted && !dst.Encrypted {
		return nil, E(ConflictException,
			"Source file system '%s' is encrypted but destination file system '%s' is not.", src.ID, dst.ID)
	}
	dst.Protection = ProtectionReplicating
	return dst, nil
}

// newDestination creates the destination file system: always encrypted,
// performance mode of the source (generalPurpose for One Zone), bursting
// throughput, backups on for One Zone, protection REPLICATING. It carries
// the source's Name tag, and a creation token naming the configuration.
func (s *Service) newDestination(tx Tx, account, region string, d DestinationInput, src *FileSystem, rep *Replication) (*FileSystem, error) {
	n, err := tx.CountFileSystems(account, region)
	if err != nil {
		return nil, fmt.Errorf("count file systems: %w", err)
	}
	if n >= s.cfg.FileSystemQuota {
		return nil, E(FileSystemLimitExceeded,
			"Account %s has reached its limit of %d file systems in %s.", account, s.cfg.FileSystemQuota, region)
	}
	now := s.now()
	dst := &FileSystem{
		Account:         account,
		Region:          region,
		CreationToken:   "replication-" + rep.ID,
		CreatedAt:       now,
		State:           StateCreating,
		PerformanceMode: src.PerformanceMode,
		ThroughputMode:  Bursting,
		Encrypted:       true,
		KmsKeyID:        kmsKeyARN(Principal{Account: account, Region: region}, d.KmsKeyID),
		Protection:      ProtectionReplicating,
		Tags:            []Tag{},
		BackupStatus:    BackupDisabled,
		// Provisioned at once, not after TransitionDelay: the first pass
		// waits for the destination, and nobody else does.
		DueAt: now,
	}
	if name, ok := src.Name(); ok {
		dst.Tags = append(dst.Tags, Tag{Key: "Name", Value: name})
	}
	if d.AvailabilityZoneName != "" {
		z, _ := s.cfg.Regions.Zone(region, d.AvailabilityZoneName)
		dst.AvailabilityZoneName, dst.AvailabilityZoneID = z.Name, z.ID
		dst.PerformanceMode = GeneralPurpose
		dst.BackupStatus = BackupEnabled
	}
	for range 10 {
		if dst.ID, err = s.newFileSystemID(tx, account, region); err != nil {
			return nil, err
		}
		if err = tx.InsertFileSystem(dst); !errors.Is(err, ErrConflict) {
			break
		}
	}
	if err != nil {
		return nil, fmt.Errorf("insert destination: %w", err)
	}
	return dst, nil
}

// findReplication resolves the file system reference of a Describe or
// Delete call to the one configuration p sees that involves it. The
// reference may name either side, including a file system in another
// region or account (Terraform deletes in the destination region with the
// source's ID). It returns FileSystemNotFound when p has no such file
// system and no configuration names it, and ReplicationNotFound when the
// file system exists but is in no configuration p sees.
func findReplication(tx Tx, p Principal, ref string) (*Replication, error) {
	pid := ParseResourceID(ref)
	reps, err := tx.ReplicationsByFSID(pid.ID)
	if err != nil {
		return nil, fmt.Errorf("look up replications: %w", err)
	}
	for _, r := range reps {
		if !r.visibleTo(p) {
			continue
		}
		for _, k := range []FSKey{r.Source, r.Dest} {
			if k.ID == pid.ID && (pid.Region == "" || pid.Region == k.Region) && (pid.Account == "" || pid.Account == k.Account) {
				return r, nil
			}
		}
	}
	if _, err := loadFS(tx, p, ref); err != nil {
		return nil, err
	}
	return nil, E(ReplicationNotFound, "File system '%s' is not part of a replication configuration.", pid.ID)
}

// ReplicationPage is one page of configurations.
type ReplicationPage struct {
	Replications []*Replication
	Next         string
}

// DescribeReplicationConfigurations describes the configuration that
// involves fsRef, or pages through all configurations p sees.
func (s *Service) DescribeReplicationConfigurations(ctx context.Context, p Principal, fsRef, token string, max int) (*ReplicationPage, error) {
	if max <= 0 {
		max = DefaultPageSize
	}
	after, err := decodeMarker(token)
	if err != nil {
		return nil, err
	}
	out := &ReplicationPage{Replications: []*Replication{}}
	err = s.store.View(ctx, func(tx Tx) error {
		if fsRef != "" {
			r, err := findReplication(tx, p, fsRef)
			if err != nil {
				return err
			}
			out.Replications = append(out.Replications, r)
			return nil
		}
		page, err := tx.VisibleReplications(p.Account, p.Region, after, max+1)
		if err != nil {
			return err
		}
		out.Replications, out.Next = trimPage(page, max, func(r *Replication) int64 { return r.Seq })
		return nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// DeleteReplicationConfiguration ends a configuration. By default both
// sides go: the configuration shows DELETING until the replication engine
// has stopped copying, then disappears, and the destination is writable
// again with protection ENABLED, keeping its data. LOCAL_CONFIGURATION_ONLY
// removes only the caller's side of a cross-region or cross-account
// configuration; replication stops and the other side reports ERROR.
func (s *Service) DeleteReplicationConfiguration(ctx context.Context, p Principal, fsRef, mode string) error {
	if mode == "" {
		mode = DeleteAll
	}
	err := s.store.Update(ctx, func(tx Tx) error {
		r, err := findReplication(tx, p, fsRef)
		if err != nil {
			return err
		}
		if mode == DeleteLocalOnly {
			if r.Source.Account == r.Dest.Account && r.Source.Region == r.Dest.Region {
				return E(BadRequest, "LOCAL_CONFIGURATION_ONLY is only for cross-region or cross-account replication; use ALL_CONFIGURATIONS.")
			}
			return s.deleteLocalSide(tx, p, r)
		}
		if r.Status == RepDeleting {
			return nil
		}
		r.Status, r.StatusMessage = RepDeleting, ""
		r.DueAt = s.now().Add(s.cfg.TransitionDelay)
		return tx.UpdateReplication(r)
	})
	if err == nil {
		s.dataPlaneChanged() // a local delete at the destination releases it at once
		s.replicationChanged()
	}
	return err
}

func (s *Service) deleteLocalSide(tx Tx, p Principal, r *Replication) error {
	side := "destination"
	if r.Source.Account == p.Account && r.Source.Region == p.Region && !r.SourceDeleted {
		r.SourceDeleted = true
		side = "source"
	} else {
		r.DestDeleted = true
		// A peer may be writing into it: the replication engine releases
		// it once the peer's transfers have stopped.
		if r.Peer == "" {
			if err := releaseDestination(tx, r); err != nil {
				return err
			}
		}
	}
	if r.SourceDeleted && r.DestDeleted {
		return forget(tx, r)
	}
	r.Status = RepError
	r.StatusMessage = fmt.Sprintf("The replication configuration was deleted on the %s side with LOCAL_CONFIGURATION_ONLY; replication has stopped. Delete the configuration here too.", side)
	return tx.UpdateReplication(r)
}

// forget deletes a configuration both of whose sides were deleted locally.
// A destination here whose source is on a peer is released now: the
// peer's side is gone, so nothing writes into it any more.
func forget(tx Tx, r *Replication) error {
	if r.PeerSide == PeerSource {
		if err := releaseDestination(tx, r); err != nil {
			return err
		}
	}
	return tx.DeleteReplication(r.ID)
}

// releaseDestination makes a destination an ordinary writable file system
// again, keeping its data.
func releaseDestination(tx Tx, r *Replication) error {
	dst, err := tx.FileSystem(r.Dest.Account, r.Dest.Region, r.Dest.ID)
	if errors.Is(err, ErrNotFound) {
		return nil
	}
	if err != nil {
		return err
	}
	if dst.Protection == ProtectionReplicating {
		dst.Protection = ProtectionEnabled
	}
	return tx.UpdateFileSystem(dst)
}

// ReplicationsChanged is signalled (coalesced) whenever configurations are
// created or deleted; the replication engine listens to it.
func (s *Service) ReplicationsChanged() <-chan struct{} { return s.repChanged }

func (s *Service) replicationChanged() {
	select {
	case s.repChanged <- struct{}{}:
	default:
	}
}

// Replications lists every configuration of every account, for the
// replication engine.
func (s *Service) Replications(ctx context.Context) ([]*Replication, error) {
	var out []*Replication
	err := s.store.View(ctx, func(tx Tx) error {
		var err error
		out, err = tx.AllReplications()
		return err
	})
	return out, err
}

// FileSystemByKey loads any file system, for the replication engine.
func (s *Service) FileSystemByKey(ctx context.Context, k FSKey) (*FileSystem, error) {
	var fs *FileSystem
	err := s.store.View(ctx, func(tx Tx) error {
		var err error
		fs, err = tx.FileSystem(k.Account, k.Region, k.ID)
		return err
	})
	return fs, err
}

// Progress is what the replication engine reports about a configuration.
type Progress struct {
	Status        string
	StatusMessage string
	// Replicated, when set, is the start time of a pass that completed:
	// every source change before it is on the destination.
	Replicated time.Time
}

// ErrReplicationGone tells the engine its configuration is being deleted
// or is gone; it must stop.
var ErrReplicationGone = errors.New("replication configuration deleted")

// RecordProgress stores the engine's report, unless the configuration is
// being deleted meanwhile (then it answers ErrReplicationGone: a deleted
// configuration never turns ENABLED again).
func (s *Service) RecordProgress(ctx context.Context, id string, pr Progress) error {
	return s.store.Update(ctx, func(tx Tx) error {
		r, err := tx.Replication(id)
		if errors.Is(err, ErrNotFound) {
			return ErrReplicationGone
		}
		if err != nil {
			return err
		}
		if !r.Running() {
			return ErrReplicationGone
		}
		r.Status, r.StatusMessage = pr.Status, pr.StatusMessage
		if pr.Replicated.After(r.LastReplicatedAt) {
			r.LastReplicatedAt = pr.Replicated
		}
		return tx.UpdateReplication(r)
	})
}

// FinishDeletion removes a DELETING configuration once its time has come
// and the engine has stopped copying, and releases the destination. It
// reports whether the configuration is gone; when not yet due it returns
// the time to try again.
func (s *Service) FinishDeletion(ctx context.Context, id string) (done bool, retryAt time.Time, err error) {
	err = s.store.Update(ctx, func(tx Tx) error {
		r, err := tx.Replication(id)
		if errors.Is(err, ErrNotFound) {
			done = true
			return nil
		}
		if err != nil {
			return err
		}
		if r.Status != RepDeleting {
			return nil
		}
		if now := s.now(); now.Before(r.DueAt) {
			retryAt = r.DueAt
			return nil
		}
		if err := releaseDestination(tx, r); err != nil {
			return err
		}
		done = true
		return tx.DeleteReplication(r.ID)
	})
	if done {
		s.dataPlaneChanged()
	}
	return done, retryAt, err
}

func orDefault(s, def string) string {
	if s == "" {
		return def
	}
	return s
}
