// Package daemon assembles a running efsd from its parts: store, volumes,
// domain service, API server and listener. cmd/efsd turns flags and the
// config file into a Config; tests start daemons in-process the same way.
package daemon

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"net"
	"net/http"
	"net/http/pprof"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/efsd/efsd/internal/admin"
	"github.com/efsd/efsd/internal/api"
	"github.com/efsd/efsd/internal/console"
	"github.com/efsd/efsd/internal/efs"
	"github.com/efsd/efsd/internal/fsview"
	"github.com/efsd/efsd/internal/mounts"
	"github.com/efsd/efsd/internal/netlimit"
	"github.com/efsd/efsd/internal/nfs"
	"github.com/efsd/efsd/internal/nfs4"
	"github.com/efsd/efsd/internal/ops"
	"github.com/efsd/efsd/internal/peer"
	"github.com/efsd/efsd/internal/region"
	"github.com/efsd/efsd/internal/replication"
	"github.com/efsd/efsd/internal/store/sqlite"
	"github.com/efsd/efsd/internal/volume"
)

// Config is everything a daemon needs.
type Config struct {
	Listen      string // host:port; port 0 picks a free one
	DataDir     string
	Credentials []api.Credential
	Regions     []string // served regions; empty serves all known ones
	Logger      *slog.Logger
	Now         func() time.Time

	TransitionDelay          time.Duration
	ThroughputCooldown       time.Duration
	FileSystemQuota          int
	MaxProvisionedThroughput float64
	MeterInterval            time.Duration

	// ReplicationRescanInterval is how often replication passes run
	// without a change notification.
	ReplicationRescanInterval time.Duration
	// ReplicationNoWatch turns off inotify on source trees.
	ReplicationNoWatch bool
	// ReplicationScrubInterval is how often each configuration's
	// destination is verified by content; 0 takes the default (24h),
	// negative disables periodic scrubs.
	ReplicationScrubInterval time.Duration
	// ReplicationMaxWatchesPerFileSystem caps the inotify watches (one per
	// directory) of one source file system; 0 takes the default.
	ReplicationMaxWatchesPerFileSystem int

	// AdminListen is where /healthz, /readyz, /metrics and the read-only
	// web console (/console/) are served (host:port); "" serves none.
	AdminListen string
	// AdminProfiling also serves Go's profiles (net/http/pprof) under
	// /debug/pprof/ on the admin listener: CPU, heap, goroutines, for
	// finding where a slow transfer spends its time. Off by default; the
	// admin listener is loopback unless configured otherwise.
	AdminProfiling bool
	// ConsoleSampleEvery and ConsoleRefresh tune the console: how often
	// it samples TimeSinceLastSync for its plots, how often the page
	// refreshes itself (zero: console's defaults).
	ConsoleSampleEvery, ConsoleRefresh time.Duration

	// NFSPort is the NFS port at every mount target address (default 2049).
	NFSPort int
	// NFSLimits bound every mount target's NFS connections (zero fields: nfs's defaults).
	NFSLimits nfs.ConnLimits
	// NFSv4Lease and NFSv4Grace: the NFSv4 lease time and grace period after a start (0: 90 s
	// and the lease time).
	NFSv4Lease, NFSv4Grace time.Duration
	// Networks declares subnets and security groups beyond the defaults.
	Networks         []efs.DeclaredNetwork
	AccessPointQuota int

	// APILimits bound the API listener's connections, timeouts and request
	// body memory; zero fields take api's defaults.
	APILimits api.Limits

	// PeerListen is where peer deployments' replication traffic is
	// accepted (host:port, mutual TLS); "" accepts none.
	PeerListen string
	// Peers are the deployments serving other regions; with them
	// configured, Regions must name this deployment's own.
	Peers []peer.Config
}

// Daemon is a running efsd.
type Daemon struct {
	cfg     Config
	ln      net.Listener
	http    *http.Server
	lock    *dirLock
	store   *sqlite.Store
	svc     *efs.Service
	volumes *volume.Manager
	repl    *replication.Manager
	admin   *admin.Server // nil if its socket could not be made
	mounts  *mounts.Manager
	cancel  context.CancelFunc
	done    chan struct{}
	replWG  sync.WaitGroup // replication and mount-target managers, the console's sampler

	replStopped, mountsStopped atomic.Bool  // a manager's loop returned
	ops                        *http.Server // health checks; nil without AdminListen
	opsLn                      net.Listener
	peerSrv                    *peer.Server // nil without PeerListen
	peerLn                     net.Listener
	peerDone                   chan struct{}
}

// Start opens the data directory, starts the background workers and
// begins serving on cfg.Listen.
func Start(ctx context.Context, cfg Config) (*Daemon, error) {
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.NFSPort == 0 {
		cfg.NFSPort = mounts.DefaultPort
	}
	if err := os.MkdirAll(cfg.DataDir, 0o700); err != nil {
		return nil, fmt.Errorf("create data directory: %w", err)
	}
	lock, err := lockDataDir(cfg.DataDir)
	if err != nil {
		return nil, err
	}
	started := false
	defer func() {
		if !started {
			lock.release()
		}
	}()
	handleKey, err := fsview.LoadHandleKey(filepath.Join(cfg.DataDir, "nfs-handle.key"))
	if err != nil {
		return nil, err
	}
	st, err := sqlite.Open(filepath.Join(cfg.DataDir, "efsd.db"))
	if err != nil {
		return nil, err
	}
	vols, err := volume.New(filepath.Join(cfg.DataDir, "volumes"), volume.Options{
		MeterInterval: cfg.MeterInterval, Now: cfg.Now, Logger: cfg.Logger})
	if err != nil {
		st.Close()
		return nil, err
	}
	regions := regionCatalog(cfg)
	accounts := map[string]bool{}
	for _, c := range cfg.Credentials {
		accounts[c.Account] = true
	}
	// Peers: this deployment's identity, the peers it pins, the client that
	// reaches them. Without peers or a peer listener there is none of it.
	var peers *peer.Client
	var peerSet *peer.Set
	var identity *peer.Identity
	if len(cfg.Peers) > 0 || cfg.PeerListen != "" {
		if identity, err = peer.LoadIdentity(filepath.Join(cfg.DataDir, "peer")); err != nil {
			st.Close()
			return nil, err
		}
		if peerSet, err = peer.NewSet(cfg.Peers, regions.Has); err != nil {
			st.Close()
			return nil, err
		}
		peers = peer.NewClient(identity, peerSet, cfg.Logger)
	}
	var domainPeers efs.Peers
	var enginePeers replication.PeerLink
	if peers != nil {
		domainPeers, enginePeers = peers, peers
	}
	svc := efs.NewService(efs.Config{
		Peers:                    domainPeers,
		Accounts:                 func(a string) bool { return accounts[a] },
		VPCBlockOffset:           vpcBlockOffset(handleKey),
		AddressInUse:             func(ip string) bool { return mounts.AddressInUse(ip, cfg.NFSPort) },
		Store:                    st,
		Volumes:                  vols,
		Regions:                  regions,
		Now:                      cfg.Now,
		Logger:                   cfg.Logger,
		TransitionDelay:          cfg.TransitionDelay,
		ThroughputCooldown:       cfg.ThroughputCooldown,
		FileSystemQuota:          cfg.FileSystemQuota,
		MaxProvisionedThroughput: cfg.MaxProvisionedThroughput,
		AccessPointQuota:         cfg.AccessPointQuota,
	})
	for _, n := range cfg.Networks {
		if err := svc.DeclareNetwork(ctx, n); err != nil {
			st.Close()
			return nil, fmt.Errorf("declare network of %s in %s: %w", n.Account, n.Region, err)
		}
	}
	// Metrics are kept only when served (on the admin listener).
	var met *ops.Metrics
	var observeRequest func(string, int, time.Duration)
	var observePass func(replication.Pass)
	if cfg.AdminListen != "" {
		met = ops.NewMetrics()
		st.ObserveCommits(met.ObserveCommit)
		observeRequest, observePass = met.ObserveRequest, met.ObservePass
	}
	// Signatures are checked against the real clock: cfg.Now moves only the
	// domain's time (tests jump it past cooldowns).
	srv := api.New(api.Config{Service: svc, Credentials: cfg.Credentials, Logger: cfg.Logger, Limits: cfg.APILimits,
		Observe: observeRequest})
	ln, err := net.Listen("tcp", cfg.Listen)
	if err != nil {
		st.Close()
		return nil, fmt.Errorf("listen on %s: %w", cfg.Listen, err)
	}
	// Connections over the caps are closed at accept, so idle or stalled
	// clients cannot exhaust descriptors; timeouts are the http.Server's.
	lim := cfg.APILimits.WithDefaults()
	ln = netlimit.Listen(ln, netlimit.Options{MaxConns: lim.MaxConns, MaxConnsPerClient: lim.MaxConnsPerClient,
		Logger: cfg.Logger, Name: "api"})
	var adminLn net.Listener
	if cfg.AdminListen != "" {
		if adminLn, err = net.Listen("tcp", cfg.AdminListen); err != nil {
			ln.Close()
			st.Close()
			return nil, fmt.Errorf("listen for health checks on %s: %w", cfg.AdminListen, err)
		}
		adminLn = netlimit.Listen(adminLn, netlimit.Options{MaxConns: maxAdminConns, Logger: cfg.Logger, Name: "admin"})
	}
	repl := replication.NewManager(svc, vols, replication.Options{
		RescanInterval: cfg.ReplicationRescanInterval, NoWatch: cfg.ReplicationNoWatch,
		MaxWatchesPerFileSystem: cfg.ReplicationMaxWatchesPerFileSystem, Now: cfg.Now, Logger: cfg.Logger,
		RecordDir: filepath.Join(cfg.DataDir, "replication"), ScrubInterval: cfg.ReplicationScrubInterval,
		OnPass: observePass, Peers: enginePeers})
	// `efsd scrub` talks to the daemon through the admin socket; without it
	// (a data directory path too long for a socket name) efsd still runs.
	adm, err := admin.Listen(cfg.DataDir, repl, cfg.Logger)
	if err != nil {
		cfg.Logger.Warn("admin socket unavailable: efsd scrub will not reach this daemon", "err", err)
	}
	nfs.InstallGoNFSLogger(cfg.Logger) // go-nfs logs through a logger of its own, process-wide
	mts := mounts.NewManager(svc, vols, st, repl, mounts.Options{Port: cfg.NFSPort, NFSLimits: cfg.NFSLimits, HandleKey: handleKey,
		NFSv4: nfs4.Options{Lease: cfg.NFSv4Lease, Grace: cfg.NFSv4Grace}, NFSv4StateDir: filepath.Join(cfg.DataDir, "nfs4"),
		Logger: cfg.Logger})
	var peerLn net.Listener
	if cfg.PeerListen != "" {
		if peerLn, err = net.Listen("tcp", cfg.PeerListen); err != nil {
			ln.Close()
			if adminLn != nil {
				adminLn.Close()
			}
			if adm != nil {
				adm.Close()
			}
			st.Close()
			return nil, fmt.Errorf("listen for peers on %s: %w", cfg.PeerListen, err)
		}
	}
	ctx, cancel := context.WithCancel(ctx)
	d := &Daemon{
		cfg: cfg, lock: lock, ln: ln, store: st, svc: svc, volumes: vols, repl: repl, admin: adm, mounts: mts, cancel: cancel, done: make(chan struct{}),
		http: srv.HTTPServer(),
	}
	svc.Start(ctx)
	go vols.Run(ctx)
	d.replWG.Add(2)
	go func() {
		defer d.replWG.Done()
		defer d.replStopped.Store(true)
		repl.Run(ctx)
	}()
	go func() {
		defer d.replWG.Done()
		defer d.mountsStopped.Store(true)
		mts.Run(ctx)
	}()
	if adminLn != nil {
		met.Watch(ops.Sources{Replications: svc.Replications, Notification: repl.Stats, Usages: vols.Usages,
			MountTargets: mts.Stats, Now: cfg.Now})
		con := console.New(console.Options{Service: svc, Accounts: slices.Collect(maps.Keys(accounts)), Regions: regions.Regions(),
			Now: cfg.Now, SampleEvery: cfg.ConsoleSampleEvery, Refresh: cfg.ConsoleRefresh, Logger: cfg.Logger})
		d.replWG.Add(1)
		go func() {
			defer d.replWG.Done()
			con.Run(ctx)
		}()
		adminMux := http.NewServeMux()
		adminMux.Handle("/console/", con)
		adminMux.Handle("GET /{$}", http.RedirectHandler("/console/", http.StatusFound))
		adminMux.Handle("/", ops.Handler(d.readinessChecks(), readinessTimeout, met))
		writeTimeout := 10 * time.Second
		if cfg.AdminProfiling {
			adminMux.HandleFunc("/debug/pprof/", pprof.Index)
			adminMux.HandleFunc("/debug/pprof/profile", pprof.Profile)
			adminMux.HandleFunc("/debug/pprof/trace", pprof.Trace)
			adminMux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
			adminMux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
			writeTimeout = 2 * time.Minute // a CPU profile or trace streams for up to ?seconds=
		}
		d.ops = &http.Server{Handler: adminMux,
			ReadHeaderTimeout: 5 * time.Second, ReadTimeout: 10 * time.Second, WriteTimeout: writeTimeout,
			IdleTimeout: time.Minute}
		d.opsLn = adminLn
		go func() {
			if err := d.ops.Serve(adminLn); err != nil && !errors.Is(err, http.ErrServerClosed) {
				cfg.Logger.Error("serve health checks", "err", err)
			}
		}()
	}
	if peerLn != nil {
		d.peerLn, d.peerDone = peerLn, make(chan struct{})
		d.peerSrv = peer.NewServer(peer.ServerOptions{Identity: identity, Peers: peerSet, Control: svc, Receivers: repl, Logger: cfg.Logger})
		go func() {
			defer close(d.peerDone)
			if err := d.peerSrv.Serve(peerLn); err != nil {
				cfg.Logger.Error("serve peers", "err", err)
			}
		}()
	}
	go func() {
		defer close(d.done)
		if err := d.http.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			cfg.Logger.Error("serve", "err", err)
		}
	}()
	started = true
	return d, nil
}

// AdminAddr is the address of the health checks and metrics, "" without
// AdminListen.
func (d *Daemon) AdminAddr() string {
	if d.opsLn == nil {
		return ""
	}
	return d.opsLn.Addr().String()
}

// PeerAddr is the address peers' replication traffic is accepted on, ""
// without PeerListen.
func (d *Daemon) PeerAddr() string {
	if d.peerLn == nil {
		return ""
	}
	return d.peerLn.Addr().String()
}

// Addr is the address the API listens on.
func (d *Daemon) Addr() string { return d.ln.Addr().String() }

// Replication is the replication engine.
func (d *Daemon) Replication() *replication.Manager { return d.repl }

// Mounts runs the mount targets' NFS servers.
func (d *Daemon) Mounts() *mounts.Manager { return d.mounts }

// Service is the domain service.
func (d *Daemon) Service() *efs.Service { return d.svc }

// Volumes gives access to the file systems' data directories.
func (d *Daemon) Volumes() *volume.Manager { return d.volumes }

// Close stops serving (letting in-flight requests finish), stops the
// workers and closes the store.
func (d *Daemon) Close() error {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if d.ops != nil {
		d.ops.Shutdown(ctx)
	}
	err := d.http.Shutdown(ctx)
	<-d.done
	if d.peerSrv != nil {
		d.peerSrv.Shutdown(ctx)
		<-d.peerDone
	}
	if d.admin != nil {
		d.admin.Close()
	}
	d.cancel()
	d.replWG.Wait()
	d.svc.Stop()
	return errors.Join(err, d.store.Close(), d.lock.release())
}

// Network opens the data directory of a daemon (running or not; SQLite
// lets several processes share it) and returns an account's network in a
// region, making the default one if needed. It serves `efsd network`.
func Network(ctx context.Context, cfg Config, account, region string) (*efs.Network, error) {
	st, err := sqlite.Open(filepath.Join(cfg.DataDir, "efsd.db"))
	if err != nil {
		return nil, err
	}
	defer st.Close()
	regions := regionCatalog(cfg)
	if !regions.Has(region) {
		return nil, fmt.Errorf("region %s is not served", region)
	}
	handleKey, err := fsview.LoadHandleKey(filepath.Join(cfg.DataDir, "nfs-handle.key"))
	if err != nil {
		return nil, err
	}
	svc := efs.NewService(efs.Config{Store: st, Regions: regions, VPCBlockOffset: vpcBlockOffset(handleKey)})
	for _, n := range cfg.Networks {
		if err := svc.DeclareNetwork(ctx, n); err != nil {
			return nil, err
		}
	}
	return svc.DescribeNetwork(ctx, efs.Principal{Account: account, Region: region})
}

func regionCatalog(cfg Config) *region.Catalog {
	if len(cfg.Regions) > 0 {
		return region.Default().Restrict(cfg.Regions)
	}
	return region.Default()
}
