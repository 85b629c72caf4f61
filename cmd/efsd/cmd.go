package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"

	"github.com/efsd/efsd/internal/api"
	"github.com/efsd/efsd/internal/daemon"
	"github.com/efsd/efsd/internal/gctune"
	"github.com/efsd/efsd/internal/peer"
)

// Main is the efsd program; tests call Run directly.
type Main struct {
	Stdout io.Writer
	Stderr io.Writer
	Getenv func(string) string
	// Ready, when set, is called with the daemon's address once it serves.
	Ready func(addr string)
}

// NewMain returns a Main bound to the process's streams and environment.
func NewMain() *Main {
	return &Main{Stdout: os.Stdout, Stderr: os.Stderr, Getenv: os.Getenv}
}

// Defaults for the settings.
const (
	DefaultListen = "127.0.0.1:8049"
)

// Development credential, used when no config file names any account: the
// convention LocalStack users already know.
var devCredential = api.Credential{AccessKeyID: "test", SecretAccessKey: "test", Account: "000000000000"}

const usage = `efsd serves the Amazon EFS API (elasticfilesystem 2015-02-01) over real file systems.

Usage:
  efsd [flags]
  efsd version         (or --version) prints the build: version, VCS revision, Go
  efsd network [--account ID] [--region REGION] [--data-dir DIR] [--config FILE]
      prints the account's VPC, subnets (with their loopback address ranges) and
      security groups in the region: the IDs CreateMountTarget needs, and each
      group's ingress rules with the sources they admit to NFS (NfsSources)
  efsd scrub [--data-dir DIR] [--config FILE] [FS-ID]
      asks the running efsd to verify replication destinations by content
      now (all, or the configuration of that source or destination file
      system), repairing what differs; shows progress and a summary
  efsd peer-id [--data-dir DIR] [--config FILE] [--rotate | --promote]
      prints this deployment's peer certificate fingerprint (SHA-256), the
      certificateSha256 its peers pin; makes the identity if there is none.
      To replace it: --rotate makes (once) and prints the next identity's,
      which the peers add as nextCertificateSha256; --promote then makes it
      the one presented from the next start (restart efsd), keeping the old
      one in DATA_DIR/peer/previous; last, the peers replace
      certificateSha256 with it and drop nextCertificateSha256

Flags (each also settable by the environment variable shown, and, except
--config, by the config file; a flag beats the environment, which beats the
file):
  --listen HOST:PORT   API address (EFSD_LISTEN; default %s).
                       Without accounts in the config file only loopback
                       addresses are allowed.
  --admin-listen HOST:PORT
                       serve /healthz, /readyz and /metrics there (EFSD_ADMIN_LISTEN;
                       default: not served; e.g. 127.0.0.1:8050)
  --data-dir DIR       where the database and file system data live
                       (EFSD_DATA_DIR; default %s)
  --config FILE        JSON config file (EFSD_CONFIG); see README.md
  --log-format FORMAT  text or json (EFSD_LOG_FORMAT; default text)
  --log-level LEVEL    debug, info, warn or error (EFSD_LOG_LEVEL; default info)

Without a config file efsd accepts one development credential: access key
"test", secret "test", account 000000000000.

Each file system's files live in DATA_DIR/volumes/ACCOUNT/REGION/FS-ID.
`

// Run parses args and serves until ctx ends, or runs a subcommand.
func (m *Main) Run(ctx context.Context, args []string) error {
	if len(args) > 0 && args[0] == "network" {
		return m.runNetwork(ctx, args[1:])
	}
	if len(args) > 0 && args[0] == "scrub" {
		return m.runScrub(ctx, args[1:])
	}
	if len(args) > 0 && args[0] == "peer-id" {
		return m.runPeerID(args[1:])
	}
	if len(args) > 0 && (args[0] == "version" || args[0] == "--version" || args[0] == "-version") {
		fmt.Fprintln(m.Stdout, version())
		return nil
	}
	fset := flag.NewFlagSet("efsd", flag.ContinueOnError)
	fset.SetOutput(m.Stderr)
	listen := fset.String("listen", "", "")
	adminListen := fset.String("admin-listen", "", "")
	dataDir := fset.String("data-dir", "", "")
	configPath := fset.String("config", "", "")
	logFormat := fset.String("log-format", "", "")
	logLevel := fset.String("log-level", "", "")
	fset.Usage = func() { fmt.Fprintf(m.Stderr, usage, DefaultListen, defaultDataDir(m.Getenv)) }
	if err := fset.Parse(args); err != nil {
		return err
	}
	if fset.NArg() > 0 {
		fset.Usage()
		return fmt.Errorf("unexpected argument %q", fset.Arg(0))
	}

	file, cfg, err := m.loadConfig(*configPath, *dataDir)
	if err != nil {
		return err
	}
	cfg.Listen = first(*listen, m.Getenv("EFSD_LISTEN"), file.Listen, DefaultListen)
	cfg.AdminListen = first(*adminListen, m.Getenv("EFSD_ADMIN_LISTEN"), file.AdminListen)
	cfg.AdminProfiling = file.AdminProfiling
	logger, err := newLogger(m.Stderr, first(*logFormat, m.Getenv("EFSD_LOG_FORMAT"), file.LogFormat, "text"),
		first(*logLevel, m.Getenv("EFSD_LOG_LEVEL"), file.LogLevel, "info"))
	if err != nil {
		return err
	}
	cfg.Logger = logger
	devOnly := len(cfg.Credentials) == 0
	if devOnly {
		if !loopbackOnly(cfg.Listen) {
			return fmt.Errorf("refusing to listen on %s with the development credential: configure accounts in a config file to serve beyond loopback", cfg.Listen)
		}
		cfg.Credentials = []api.Credential{devCredential}
	}

	if tu := tuneGC(m.Getenv); tu != nil {
		defer tu.Stop()
		logger.Debug("garbage collector tuned to the live heap", "gogc", tu.Percent())
	}
	d, err := daemon.Start(ctx, cfg)
	if err != nil {
		return err
	}
	fmt.Fprintf(m.Stdout, "efsd listening on http://%s\nefsd data directory %s\n", d.Addr(), cfg.DataDir)
	if a := d.PeerAddr(); a != "" {
		fmt.Fprintf(m.Stdout, "efsd accepting peer replication on https://%s\n", a)
	}
	if a := d.AdminAddr(); a != "" {
		fmt.Fprintf(m.Stdout, "efsd health checks on http://%s/healthz and /readyz, metrics on /metrics\n", a)
	}
	if devOnly {
		fmt.Fprintf(m.Stdout, "efsd accepts the development credential: access key %q, secret %q, account %s\n",
			devCredential.AccessKeyID, devCredential.SecretAccessKey, devCredential.Account)
	}
	if m.Ready != nil {
		m.Ready(d.Addr())
	}
	<-ctx.Done()
	logger.Info("shutting down")
	return d.Close()
}

// loadConfig reads the config file (flag, then environment) and settles
// the data directory.
func (m *Main) loadConfig(configFlag, dataDirFlag string) (*FileConfig, daemon.Config, error) {
	file := &FileConfig{}
	if p := first(configFlag, m.Getenv("EFSD_CONFIG")); p != "" {
		var err error
		if file, err = LoadFileConfig(p); err != nil {
			return nil, daemon.Config{}, err
		}
	}
	cfg, err := file.daemonConfig()
	if err != nil {
		return nil, cfg, err
	}
	cfg.DataDir = first(dataDirFlag, m.Getenv("EFSD_DATA_DIR"), file.DataDir, defaultDataDir(m.Getenv))
	return file, cfg, nil
}

// runPeerID prints the deployment's certificate fingerprint, making its
// identity first if needed (before the first start, so that two
// deployments can be configured with each other's before either runs);
// with --rotate the next identity's, with --promote it makes the next one
// current.
func (m *Main) runPeerID(args []string) error {
	fset := flag.NewFlagSet("efsd peer-id", flag.ContinueOnError)
	fset.SetOutput(m.Stderr)
	dataDir := fset.String("data-dir", "", "data directory (EFSD_DATA_DIR)")
	configPath := fset.String("config", "", "config file (EFSD_CONFIG)")
	rotate := fset.Bool("rotate", false, "print the next identity's fingerprint, making it if needed, for the peers' nextCertificateSha256")
	promote := fset.Bool("promote", false, "make the next identity the one presented from the next start on (the current one is kept as the previous)")
	if err := fset.Parse(args); err != nil {
		return err
	}
	if *rotate && *promote {
		return errors.New("efsd peer-id: --rotate and --promote are two steps of a rotation; give one")
	}
	_, cfg, err := m.loadConfig(*configPath, *dataDir)
	if err != nil {
		return err
	}
	dir := filepath.Join(cfg.DataDir, "peer")
	load := peer.LoadIdentity
	switch {
	case *rotate:
		load = peer.NextIdentity
	case *promote:
		load = peer.PromoteIdentity
	}
	id, err := load(dir)
	if err != nil {
		return err
	}
	fmt.Fprintln(m.Stdout, id.Fingerprint)
	return nil
}

// runNetwork prints an account's network in a region as JSON.
func (m *Main) runNetwork(ctx context.Context, args []string) error {
	fset := flag.NewFlagSet("efsd network", flag.ContinueOnError)
	fset.SetOutput(m.Stderr)
	account := fset.String("account", "", "account ID (default: the development account, or the only configured one)")
	region := fset.String("region", "us-east-1", "region")
	dataDir := fset.String("data-dir", "", "data directory (EFSD_DATA_DIR)")
	configPath := fset.String("config", "", "config file (EFSD_CONFIG)")
	if err := fset.Parse(args); err != nil {
		return err
	}
	file, cfg, err := m.loadConfig(*configPath, *dataDir)
	if err != nil {
		return err
	}
	if *account == "" {
		*account = devCredential.Account
		if len(file.Accounts) == 1 {
			*account = file.Accounts[0].ID
		} else if len(file.Accounts) > 1 {
			return fmt.Errorf("several accounts are configured: name one with --account")
		}
	}
	n, err := daemon.Network(ctx, cfg, *account, *region)
	if err != nil {
		return err
	}
	port := file.NFSPort
	if port == 0 {
		port = 2049
	}
	return writeNetwork(m.Stdout, *account, *region, port, n)
}

// first returns the first non-empty value.
func first(vals ...string) string {
	for _, v := range vals {
		if v != "" {
			return v
		}
	}
	return ""
}

func defaultDataDir(getenv func(string) string) string {
	if d := getenv("XDG_STATE_HOME"); d != "" {
		return filepath.Join(d, "efsd")
	}
	if h := getenv("HOME"); h != "" {
		return filepath.Join(h, ".local", "state", "efsd")
	}
	return "efsd-data"
}

// loopbackOnly reports whether addr binds only loopback interfaces.
func loopbackOnly(addr string) bool {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return false
	}
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

func newLogger(w io.Writer, format, level string) (*slog.Logger, error) {
	var lv slog.Level
	if err := lv.UnmarshalText([]byte(level)); err != nil {
		return nil, fmt.Errorf("log level %q: %w", level, err)
	}
	opts := &slog.HandlerOptions{Level: lv}
	switch strings.ToLower(format) {
	case "text":
		return slog.New(slog.NewTextHandler(w, opts)), nil
	case "json":
		return slog.New(slog.NewJSONHandler(w, opts)), nil
	}
	return nil, fmt.Errorf("log format %q: want text or json", format)
}

// tuneGC starts adapting the collector's target to the live heap (see
// gctune: up to GOGC=400 for a small heap, Go's default of 100 for a large
// one) unless the operator set GOGC, which the runtime has already
// applied. The NFS data path (go-nfs) allocates a buffer per READ and
// encodes each reply into a growing buffer: at 100 with a small live heap
// reads ran at 0.6× the speed they reach at 400 (BENCHMARKS.md, the NFS
// suite), while a fixed 400 let a 1M-file replication record take 5× its
// size. It returns the tuner, nil when GOGC was set.
func tuneGC(getenv func(string) string) *gctune.Tuner {
	if getenv("GOGC") != "" {
		return nil
	}
	return gctune.Start()
}
