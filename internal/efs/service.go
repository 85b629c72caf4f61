package efs

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/efsd/efsd/internal/region"
)

// Config wires a Service. Zero durations and quotas take the defaults.
type Config struct {
	Store   Store
	Volumes Volumes
	Regions *region.Catalog
	Now     func() time.Time
	IDs     IDSource
	Logger  *slog.Logger
	// Accounts reports whether an account exists on this server; cross-
	// account replication needs its destination account to. Nil accepts
	// every account.
	Accounts func(account string) bool
	// Peers reaches the deployments serving other regions; nil: there are
	// none, and every configuration's two sides are here.
	Peers Peers

	// TransitionDelay is how long a transitional state (creating,
	// updating, backup ENABLING/DISABLING) lasts at least before the
	// lifecycle worker settles it. Default 500ms.
	TransitionDelay time.Duration
	// ThroughputCooldown is the wait after a throughput mode change or a
	// provisioned throughput decrease before the next one. Default 24h, as
	// in EFS.
	ThroughputCooldown time.Duration
	// FileSystemQuota is the number of file systems one account may have
	// in one region. Default 1000, as in EFS.
	FileSystemQuota int
	// MaxProvisionedThroughput is the highest provisioned throughput in
	// MiB/s. Default 3414, as in EFS.
	MaxProvisionedThroughput float64
	// AccessPointQuota is the number of access points one file system may
	// have. Default 10000, as in EFS.
	AccessPointQuota int
	// VPCBlockOffset shifts where default VPCs are placed in 127.0.0.0/8, so
	// that efsd instances on one host with different data directories do
	// not hand out the same loopback addresses. It must stay the same for a
	// data directory (networks already made keep their recorded ranges).
	VPCBlockOffset int
	// AddressInUse reports whether something other than efsd already holds
	// the NFS port at an address of this host, so that CreateMountTarget
	// can answer IpAddressInUse (or pick another address) rather than make a
	// mount target that could never listen. Nil knows of nothing in use.
	AddressInUse func(ip string) bool
}

// Defaults for Config.
const (
	DefaultTransitionDelay          = 500 * time.Millisecond
	DefaultThroughputCooldown       = 24 * time.Hour
	DefaultFileSystemQuota          = 1000
	DefaultMaxProvisionedThroughput = 3414
)

// Service implements the EFS operations: one method per operation, holding
// every business rule. It knows nothing of HTTP.
type Service struct {
	cfg   Config
	store Store
	now   func() time.Time
	ids   IDSource
	log   *slog.Logger
	kick  chan struct{} // wakes the lifecycle worker; capacity 1
	// repChanged tells the replication engine that configurations were
	// created or deleted; capacity 1.
	repChanged chan struct{}
	// creating holds the IDs of configurations whose destination a peer
	// is being asked to make (createRemote), for PeerQuery.
	creating sync.Map
	// mtChanged tells the mount-target server that mount targets were
	// created or deleted; capacity 1.
	mtChanged chan struct{}
	// dataPlane counts changes to what the data plane enforces (which file
	// systems are replication destinations, which access points exist,
	// which sources security groups admit),
	// so NFS servers can cache those answers until it moves.
	dataPlane atomic.Uint64
	cancel    context.CancelFunc
	wg        sync.WaitGroup
}

// NewService returns a Service; call Start to run its lifecycle worker.
func NewService(cfg Config) *Service {
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.IDs == nil {
		cfg.IDs = RandomIDs{}
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Regions == nil {
		cfg.Regions = region.Default()
	}
	if cfg.TransitionDelay == 0 {
		cfg.TransitionDelay = DefaultTransitionDelay
	}
	if cfg.ThroughputCooldown == 0 {
		cfg.ThroughputCooldown = DefaultThroughputCooldown
	}
	if cfg.FileSystemQuota == 0 {
		cfg.FileSystemQuota = DefaultFileSystemQuota
	}
	if cfg.AccessPointQuota == 0 {
		cfg.AccessPointQuota = DefaultAccessPointQuota
	}
	cfg.VPCBlockOffset = (cfg.VPCBlockOffset%(vpcBlocks-1) + vpcBlocks - 1) % (vpcBlocks - 1)
	if cfg.MaxProvisionedThroughput == 0 {
		cfg.MaxProvisionedThroughput = DefaultMaxProvisionedThroughput
	}
	return &Service{
		cfg:   cfg,
		store: cfg.Store,
		now:   cfg.Now,
		ids:   cfg.IDs,
		log:   cfg.Logger,
		kick:  make(chan struct{}, 1),

		repChanged: make(chan struct{}, 1),
		mtChanged:  make(chan struct{}, 1),
	}
}

// DataPlaneEpoch changes whenever a file system becomes or stops being a
// replication destination, an access point is created or deleted, a mount
// target's security groups change or security groups are declared.
func (s *Service) DataPlaneEpoch() uint64 { return s.dataPlane.Load() }

func (s *Service) dataPlaneChanged() { s.dataPlane.Add(1) }

// Regions is the catalogue of regions the service serves.
func (s *Service) Regions() *region.Catalog { return s.cfg.Regions }

// loadFS resolves an ID or ARN to one of p's file systems.
func loadFS(tx Tx, p Principal, idOrARN string) (*FileSystem, error) {
	ref := ParseResourceID(idOrARN)
	if !ref.Belongs(p) {
		return nil, fsNotFound(idOrARN)
	}
	fs, err := tx.FileSystem(p.Account, p.Region, ref.ID)
	if errors.Is(err, ErrNotFound) {
		return nil, fsNotFound(ref.ID)
	}
	if err != nil {
		return nil, fmt.Errorf("load file system %s: %w", ref.ID, err)
	}
	return fs, nil
}

// update loads one of p's file systems, lets fn change it and saves it.
func (s *Service) update(ctx context.Context, p Principal, id string, fn func(*FileSystem) error) (*FileSystem, error) {
	var out *FileSystem
	err := s.store.Update(ctx, func(tx Tx) error {
		fs, err := loadFS(tx, p, id)
		if err != nil {
			return err
		}
		if err := fn(fs); err != nil {
			return err
		}
		out = fs
		return tx.UpdateFileSystem(fs)
	})
	if err != nil {
		return nil, err
	}
	s.withUsage(out)
	return out, nil
}

// view loads one of p's file systems.
func (s *Service) view(ctx context.Context, p Principal, id string) (*FileSystem, error) {
	var out *FileSystem
	err := s.store.View(ctx, func(tx Tx) error {
		var err error
		out, err = loadFS(tx, p, id)
		return err
	})
	if err != nil {
		return nil, err
	}
	s.withUsage(out)
	return out, nil
}

func (s *Service) withUsage(fs *FileSystem) {
	if u, ok := s.cfg.Volumes.Usage(fs.Key()); ok {
		fs.Size = u
		return
	}
	fs.Size = Usage{At: fs.CreatedAt}
}

func requireAvailable(fs *FileSystem) error {
	if fs.State != StateAvailable {
		return E(IncorrectFileSystemLifeCycleState,
			"File system '%s' is in the '%s' state; it must be 'available'.", fs.ID, fs.State)
	}
	return nil
}
