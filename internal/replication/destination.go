package replication

import (
	"context"
	"errors"
	"log/slog"
	"os"
	"time"

	"github.com/efsd/efsd/internal/efs"
	"github.com/efsd/efsd/internal/remotesync"
	"github.com/efsd/efsd/internal/treesync"
)

// destination is where a worker's passes land. The worker owns scheduling,
// statuses and scrub timing; a destination only knows how to get ready and
// how to make one pass. localDestination writes a file system of this
// deployment; a peer deployment's file system is reached by
// remoteDestination.
type destination interface {
	// ready reports whether passes may start (the destination exists and
	// is available). false, nil: not yet, ask again.
	ready(ctx context.Context) (bool, error)
	// pass makes the destination identical to the source tree and durable,
	// or fails. It is never called concurrently.
	pass(ctx context.Context, o passOptions) (passStats, error)
	// hostPath is the destination's data directory on this host, which
	// error messages hide; "" for a destination elsewhere.
	hostPath() string
	// failed tells the destination's side, if it lives elsewhere and
	// cannot know, that a pass failed here with status and msg, and when
	// the next attempt is due. Best effort: a side that cannot be told
	// says its source is not heard from.
	failed(ctx context.Context, err error, status, msg string, retryIn time.Duration)
	close() error
}

// passOptions is what a worker asks of one pass.
type passOptions struct {
	start        time.Time
	scrub        bool
	onDifference func(rel string)
	progress     func(treesync.Stats)
}

// localDestination is a file system of this deployment, written with
// treesync.
type localDestination struct {
	m   *Manager
	rep *efs.Replication
	src string
	dst string
	rec *treesync.Record
}

func (d *localDestination) ready(ctx context.Context) (bool, error) {
	fs, err := d.m.svc.FileSystemByKey(ctx, d.rep.Dest)
	if errors.Is(err, efs.ErrNotFound) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	return fs.State == efs.StateAvailable, nil
}

func (d *localDestination) hostPath() string { return d.dst }
func (d *localDestination) close() error     { return nil }

// failed: the destination is this deployment's; its status is the one
// the worker records.
func (d *localDestination) failed(context.Context, error, string, string, time.Duration) {}

// pass checks the roots first, so that a missing side is reported as such.
func (d *localDestination) pass(ctx context.Context, o passOptions) (passStats, error) {
	if _, err := os.Stat(d.src); err != nil {
		return passStats{}, &rootError{side: "source", err: err}
	}
	if fi, err := os.Stat(d.dst); err != nil || !fi.IsDir() {
		if err == nil {
			err = errors.New("not a directory")
		}
		return passStats{}, &rootError{side: "destination", err: err}
	}
	st, err := treesync.Sync(ctx, d.src, d.dst, treesync.Options{
		Workers:      d.m.opts.CopyWorkers,
		Record:       d.rec,
		Verify:       o.scrub,
		OnDifference: o.onDifference,
		Progress:     o.progress,
	})
	return passStats{Stats: st}, err
}

// destinationOf is where a configuration's passes land.
func (m *Manager) destinationOf(r *efs.Replication, src string, rec *treesync.Record, log *slog.Logger) destination {
	if r.PeerSide == efs.PeerDestination {
		var tr remotesync.Transport = unconfigured(r.Peer)
		if m.opts.Peers != nil {
			tr = m.opts.Peers.Transport(r.Peer, r.ID)
		}
		return &remoteDestination{m: m, rep: r, src: src, tr: tr, log: log}
	}
	return &localDestination{m: m, rep: r, src: src, dst: m.paths.Path(r.Dest), rec: rec}
}
