// Package daemon assembles a running efsd from its parts: store, volumes,
// domain service, API server and listener. cmd/efsd turns flags and the
// config file into a Config; tests start daemons in-process the same way.
package daemon

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/efsd/efsd/internal/api"
	"github.com/efsd/efsd/internal/efs"
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
}

// Daemon is a running efsd.
type Daemon struct {
	cfg     Config
	ln      net.Listener
	http    *http.Server
	store   *sqlite.Store
	svc     *efs.Service
	volumes *volume.Manager
	repl    *replication.Manager
	cancel  context.CancelFunc
	done    chan struct{}
	replWG  sync.WaitGroup
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
	if err := os.MkdirAll(cfg.DataDir, 0o700); err != nil {
		return nil, fmt.Errorf("create data directory: %w", err)
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
	regions := region.Default()
	if len(cfg.Regions) > 0 {
		regions = regions.Restrict(cfg.Regions)
	}
	accounts := map[string]bool{}
	for _, c := range cfg.Credentials {
		accounts[c.Account] = true
	}
	svc := efs.NewService(efs.Config{
		Accounts:                 func(a string) bool { return accounts[a] },
		Store:                    st,
		Volumes:                  vols,
		Regions:                  regions,
		Now:                      cfg.Now,
		Logger:                   cfg.Logger,
		TransitionDelay:          cfg.TransitionDelay,
		ThroughputCooldown:       cfg.ThroughputCooldown,
		FileSystemQuota:          cfg.FileSystemQuota,
		MaxProvisionedThroughput: cfg.MaxProvisionedThroughput,
	})
	// Signatures are checked against the real clock: cfg.Now moves only the
	// domain's time (tests jump it past cooldowns).
	srv := api.New(api.Config{Service: svc, Credentials: cfg.Credentials, Logger: cfg.Logger})
	ln, err := net.Listen("tcp", cfg.Listen)
	if err != nil {
		st.Close()
		return nil, fmt.Errorf("listen on %s: %w", cfg.Listen, err)
	}
	repl := replication.NewManager(svc, vols, replication.Options{
		RescanInterval: cfg.ReplicationRescanInterval, NoWatch: cfg.ReplicationNoWatch, Now: cfg.Now, Logger: cfg.Logger})
	ctx, cancel := context.WithCancel(ctx)
	d := &Daemon{
		cfg: cfg, ln: ln, store: st, svc: svc, volumes: vols, repl: repl, cancel: cancel, done: make(chan struct{}),
		http: &http.Server{Handler: srv, ReadHeaderTimeout: 10 * time.Second},
	}
	svc.Start(ctx)
	go vols.Run(ctx)
	d.replWG.Add(1)
	go func() {
		defer d.replWG.Done()
		repl.Run(ctx)
	}()
	go func() {
		defer close(d.done)
		if err := d.http.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			cfg.Logger.Error("serve", "err", err)
		}
	}()
	return d, nil
}

// Addr is the address the API listens on.
func (d *Daemon) Addr() string { return d.ln.Addr().String() }

// Replication is the replication engine.
func (d *Daemon) Replication() *replication.Manager { return d.repl }

// Volumes gives access to the file systems' data directories.
func (d *Daemon) Volumes() *volume.Manager { return d.volumes }

// Close stops serving (letting in-flight requests finish), stops the
// workers and closes the store.
func (d *Daemon) Close() error {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	err := d.http.Shutdown(ctx)
	<-d.done
	d.cancel()
	d.replWG.Wait()
	d.svc.Stop()
	return errors.Join(err, d.store.Close())
}
