// Package mounts runs the data plane of mount targets: an NFS server per
// mount target, listening at the mount target's address, serving its file
// system (or an access point of it). A Manager reconciles stored mount
// targets with running servers, the way replication.Manager does with
// workers: a creating mount target becomes available once its server is
// up, and a deleting one goes once its server has stopped. Each server
// accepts only the sources that its mount target's security groups admit.
package mounts

import (
	"context"
	"crypto/rand"
	"errors"
	"log/slog"
	"net"
	"path/filepath"
	"strconv"
	"sync"
	"syscall"
	"time"

	"github.com/efsd/efsd/internal/efs"
	"github.com/efsd/efsd/internal/fsview"
	"github.com/efsd/efsd/internal/nfs"
	"github.com/efsd/efsd/internal/nfs4"
)

// Paths locates file systems' data directories (volume.Manager).
type Paths interface {
	Path(k efs.FSKey) string
}

// Notifier is told when a file system's data changed (replication.Manager).
type Notifier interface {
	Notify(k efs.FSKey)
}

// DefaultPort is NFS's port, where every mount target listens unless told otherwise.
const DefaultPort = 2049

// Options tune the Manager.
type Options struct {
	// Port is the NFS port at every mount target address. Default 2049.
	Port int
	// NFSLimits bound the connections of every NFS server (zero fields: nfs's defaults).
	NFSLimits nfs.ConnLimits
	// HandleKey authenticates the NFS file handles of every mount target (fsview.LoadHandleKey: one
	// per data directory, kept across restarts). Nil: a random key for this Manager, so handles do
	// not survive a restart.
	HandleKey []byte
	// NFSv4 tunes the NFSv4 servers beside NFSv3 at every mount target (its Record and ServerOwner
	// are set per mount target).
	NFSv4 nfs4.Options
	// NFSv4StateDir keeps each mount target's record of NFSv4 clients holding state (for their
	// reclaims after a restart). Empty: every client may reclaim during a full grace period.
	NFSv4StateDir string
	Logger        *slog.Logger
}

// Manager runs one NFS server per mount target.
type Manager struct {
	svc     *efs.Service
	paths   Paths
	handles fsview.HandleStore
	notify  Notifier
	port    int
	limits  nfs.ConnLimits
	key     []byte
	v4      nfs4.Options
	v4dir   string
	log     *slog.Logger

	mu      sync.Mutex
	servers map[string]*running // by account/region/mount target ID
}

type running struct {
	mt   *efs.MountTarget
	srv  *nfs.Server
	ln   net.Listener
	done chan struct{}
}

// NewManager returns a Manager; Run starts it.
func NewManager(svc *efs.Service, paths Paths, handles fsview.HandleStore, notify Notifier, o Options) *Manager {
	if o.Port == 0 {
		o.Port = DefaultPort
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if len(o.HandleKey) == 0 {
		o.HandleKey = make([]byte, fsview.HandleKeySize)
		_, _ = rand.Read(o.HandleKey)
	}
	return &Manager{svc: svc, paths: paths, handles: newCachedHandles(handles), notify: notify, port: o.Port, key: o.HandleKey,
		limits: o.NFSLimits, v4: o.NFSv4, v4dir: o.NFSv4StateDir, log: o.Logger, servers: map[string]*running{}}
}

// TargetStats is what one mount target's NFS server has served.
type TargetStats struct {
	Account, Region, MountTargetID, FileSystemID string
	NFS                                          nfs.Stats
}

// Stats reports on every mount target served now (for metrics); counters
// start at zero when a server starts.
func (m *Manager) Stats() []TargetStats {
	m.mu.Lock()
	rs := make([]*running, 0, len(m.servers))
	for _, r := range m.servers {
		rs = append(rs, r)
	}
	m.mu.Unlock()
	out := make([]TargetStats, 0, len(rs))
	for _, r := range rs {
		out = append(out, TargetStats{Account: r.mt.Account, Region: r.mt.Region, MountTargetID: r.mt.ID,
			FileSystemID: r.mt.FileSystemID, NFS: r.srv.Stats()})
	}
	return out
}

// Port is the NFS port of every mount target.
func (m *Manager) Port() int { return m.port }

func key(mt *efs.MountTarget) string { return mt.Account + "/" + mt.Region + "/" + mt.ID }

// Run reconciles until ctx ends, then stops every server.
func (m *Manager) Run(ctx context.Context) {
	defer m.stopAll()
	for {
		m.reconcile(ctx)
		t := time.NewTimer(time.Second)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-m.svc.MountTargetsChanged():
		case <-t.C:
		}
		t.Stop()
	}
}

func (m *Manager) reconcile(ctx context.Context) {
	mts, err := m.svc.AllMountTargets(ctx)
	if err != nil {
		if ctx.Err() == nil {
			m.log.Error("list mount targets", "err", err)
		}
		return
	}
	seen := map[string]bool{}
	for _, mt := range mts {
		k := key(mt)
		seen[k] = true
		switch mt.State {
		case efs.StateDeleting:
			m.stop(k)
			if err := m.svc.FinishMountTargetDeletion(ctx, mt); err != nil {
				m.log.Error("finish mount target deletion", "mountTargetId", mt.ID, "err", err)
			}
			continue
		case efs.StateError:
			m.stop(k)
			continue
		}
		if err := m.start(mt); err != nil {
			m.log.Error("start NFS server", "mountTargetId", mt.ID, "ipAddress", mt.IP, "err", err)
			if cannotListen(err) {
				if err := m.svc.MountTargetFailed(ctx, mt); err != nil {
					m.log.Error("mark mount target failed", "mountTargetId", mt.ID, "err", err)
				}
			}
			continue
		}
		if mt.State == efs.StateCreating {
			if err := m.svc.MountTargetServing(ctx, mt); err != nil {
				m.log.Error("mark mount target available", "mountTargetId", mt.ID, "err", err)
			}
		}
	}
	m.mu.Lock()
	var gone []string
	for k := range m.servers {
		if !seen[k] {
			gone = append(gone, k)
		}
	}
	m.mu.Unlock()
	for _, k := range gone {
		m.stop(k)
	}
}

// cannotListen tells a listen error that retrying will not cure (the
// address is taken by another program, or is not on this host) from a
// passing one, such as running out of descriptors, which is retried.
func cannotListen(err error) bool {
	return errors.Is(err, syscall.EADDRINUSE) || errors.Is(err, syscall.EADDRNOTAVAIL) || errors.Is(err, syscall.EACCES)
}

// AddressInUse reports whether another program holds port at ip on this
// host; it serves CreateMountTarget (efs.Config.AddressInUse).
func AddressInUse(ip string, port int) bool {
	ln, err := net.Listen("tcp", net.JoinHostPort(ip, strconv.Itoa(port)))
	if err != nil {
		return errors.Is(err, syscall.EADDRINUSE)
	}
	ln.Close()
	return false
}

// start serves a mount target unless it is served already.
func (m *Manager) start(mt *efs.MountTarget) error {
	k := key(mt)
	m.mu.Lock()
	defer m.mu.Unlock()
	if _, ok := m.servers[k]; ok {
		return nil
	}
	ln, err := net.Listen("tcp", net.JoinHostPort(mt.IP, strconv.Itoa(m.port)))
	if err != nil {
		return err
	}
	log := m.log.With("mountTargetId", mt.ID)
	srv := nfs.NewServer(m.export(mt), m.handles, log)
	srv.SetLimits(m.limits)
	v4 := m.v4
	v4.ServerOwner = "efsd " + k
	if m.v4dir != "" {
		v4.Record = nfs4.FileRecord{Path: filepath.Join(m.v4dir, mt.Account, mt.Region, mt.ID+".clients")}
	}
	srv.SetV4(nfs4.New(srv.FS(), log, v4))
	r := &running{mt: mt, srv: srv, ln: ln, done: make(chan struct{})}
	go func() {
		defer close(r.done)
		err := srv.Serve(ln)
		// Serve returns only once its listener is closed: unless stop did it, the mount target must
		// not stay available without a server. Drop it: the next reconcile (within a second, not at
		// once, so that a listener failing at once does not spin) starts a new one.
		m.mu.Lock()
		unexpected := m.servers[k] == r
		if unexpected {
			delete(m.servers, k)
		}
		m.mu.Unlock()
		if unexpected {
			m.log.Error("NFS server stopped unexpectedly, restarting it", "mountTargetId", mt.ID, "err", err)
			_ = srv.Close()
		}
	}()
	m.servers[k] = r
	m.log.Info("serving NFS", "mountTargetId", mt.ID, "fileSystemId", mt.FileSystemID, "ipAddress", ln.Addr().String())
	return nil
}

func (m *Manager) stop(k string) {
	m.mu.Lock()
	r, ok := m.servers[k]
	delete(m.servers, k)
	m.mu.Unlock()
	if ok {
		r.srv.Close()
		<-r.done
	}
}

func (m *Manager) stopAll() {
	m.mu.Lock()
	keys := make([]string, 0, len(m.servers))
	for k := range m.servers {
		keys = append(keys, k)
	}
	m.mu.Unlock()
	for _, k := range keys {
		m.stop(k)
	}
}

// export describes what a mount target serves. The NFS server asks, on
// every call, whether the file system is read-only (a replication
// destination), what an access point is, and what the file system policy
// lets clients do; the answers are cached until the domain's data-plane
// epoch moves, so a file system turns read-only the moment it becomes a
// destination and writable the moment the configuration is gone, and a
// policy applies from the call after it is put, without a store query per
// call.
func (m *Manager) export(mt *efs.MountTarget) fsview.Export {
	fsKey := mt.FSKey()
	c := &exportCache{}
	return fsview.Export{
		FileSystemID: fsKey.String(),
		HandleKey:    m.key,
		// Only sources that the mount target's security groups admit get in.
		Admit: m.admission(mt).admit,
		Root:  m.paths.Path(fsKey),
		ReadOnly: func() bool {
			return c.get(m.svc.DataPlaneEpoch(), func() exportState { return m.load(mt) }).readOnly
		},
		OnChange: func() {
			if m.notify != nil {
				m.notify.Notify(fsKey)
			}
		},
		AccessPoint: func(id string) (fsview.AccessPoint, bool) {
			st := c.get(m.svc.DataPlaneEpoch(), func() exportState { return m.load(mt) })
			ap, ok := st.accessPoints[id]
			return ap, ok
		},
		Access: func(apID string) fsview.ClientAccess {
			return c.get(m.svc.DataPlaneEpoch(), func() exportState { return m.load(mt) }).clientAccess(apID)
		},
	}
}

// exportState is what the data plane enforces for one file system.
type exportState struct {
	readOnly     bool
	accessPoints map[string]fsview.AccessPoint
	// access is what the file system policy grants clients, by access
	// point ID ("" for mounts without one); policy (nil: no policy, full
	// access) answers for IDs that are no access point of the file system.
	access map[string]fsview.ClientAccess
	policy *efs.Policy
	fsKey  efs.FSKey
	// loaded is false when the store could not be read: the state then
	// denies everything and is not cached.
	loaded bool
}

// clientAccess is what the file system policy grants NFS clients through
// access point apID ("" for none). An unreadable state grants nothing.
func (st exportState) clientAccess(apID string) fsview.ClientAccess {
	if a, ok := st.access[apID]; ok {
		return a
	}
	if !st.loaded {
		return fsview.ClientAccess{}
	}
	if st.policy == nil {
		return fsview.FullAccess
	}
	apARN := (&efs.AccessPoint{Account: st.fsKey.Account, Region: st.fsKey.Region, ID: apID}).ARN()
	return nfsAccess(st.policy.ClientAccess(efs.FileSystemARN(st.fsKey.Region, st.fsKey.Account, st.fsKey.ID), apARN))
}

func nfsAccess(a efs.ClientAccess) fsview.ClientAccess {
	return fsview.ClientAccess{Mount: a.Mount, Write: a.Write, Root: a.Root}
}

type exportCache struct {
	mu    sync.Mutex
	valid bool
	epoch uint64
	state exportState
}

// get returns the cached state for epoch, loading it when the epoch
// moved. The epoch is read before loading, so a change during the load
// makes the next call load again. A state that could not be loaded is
// not cached, so a passing store failure does not outlast itself.
func (c *exportCache) get(epoch uint64, load func() exportState) exportState {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.valid || c.epoch != epoch {
		c.state, c.epoch = load(), epoch
		c.valid = c.state.loaded
	}
	return c.state
}

// load reads a mount target's file system, access points and policy.
// Failing to read them leaves the export read-only, without access points,
// and closed to every client.
func (m *Manager) load(mt *efs.MountTarget) exportState {
	ctx := context.Background()
	st := exportState{readOnly: true, accessPoints: map[string]fsview.AccessPoint{}, fsKey: mt.FSKey()}
	fs, err := m.svc.FileSystemByKey(ctx, mt.FSKey())
	if err != nil {
		m.log.Error("load file system for NFS", "fileSystemId", mt.FileSystemID, "err", err)
		return st
	}
	aps, err := m.svc.AccessPointsOf(ctx, mt.FSKey())
	if err != nil {
		m.log.Error("load access points for NFS", "fileSystemId", mt.FileSystemID, "err", err)
		return st
	}
	st.readOnly = fs.Protection == efs.ProtectionReplicating
	for _, ap := range aps {
		if ap.State == efs.StateAvailable {
			st.accessPoints[ap.ID] = accessPoint(ap)
		}
	}
	st.loaded = true
	st.policy, err = fs.ParsedPolicy()
	if err != nil {
		// Stored policies were checked when put; one efsd cannot read grants nothing.
		m.log.Error("file system policy unreadable: NFS clients are refused", "fileSystemId", mt.FileSystemID, "err", err)
		st.access = map[string]fsview.ClientAccess{"": {}}
		st.policy = &efs.Policy{}
		return st
	}
	if st.policy != nil {
		st.access = map[string]fsview.ClientAccess{"": nfsAccess(st.policy.ClientAccess(fs.ARN(), ""))}
		for _, ap := range aps {
			st.access[ap.ID] = nfsAccess(st.policy.ClientAccess(fs.ARN(), ap.ARN()))
		}
	}
	return st
}

func accessPoint(ap *efs.AccessPoint) fsview.AccessPoint {
	out := fsview.AccessPoint{ID: ap.ID, Path: ap.RootPath}
	if u := ap.PosixUser; u != nil {
		uid, gid := u.UID, u.GID
		out.UID, out.GID, out.SecondaryGIDs = &uid, &gid, u.SecondaryGIDs
	}
	if ci := ap.CreationInfo; ci != nil {
		perm, _ := strconv.ParseUint(ci.Permissions, 8, 32)
		out.CreationInfo = &fsview.CreationInfo{OwnerUID: ci.OwnerUID, OwnerGID: ci.OwnerGID, Permissions: fsMode(perm)}
	}
	return out
}
