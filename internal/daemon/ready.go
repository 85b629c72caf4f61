package daemon

import (
	"context"
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/efsd/efsd/internal/efs"
	"github.com/efsd/efsd/internal/ops"
)

const (
	// maxAdminConns caps the health-check listener's connections: probes
	// come from a few orchestrators, never thousands.
	maxAdminConns = 64
	// readinessTimeout bounds each readiness check: a store or disk that
	// does not answer within it is not ready.
	readinessTimeout = 2 * time.Second
)

// readinessChecks are what /readyz verifies: the store answers, the data
// directory takes a write, the API serves, and the replication and mount
// target managers are running.
func (d *Daemon) readinessChecks() []ops.Check {
	return []ops.Check{
		{Name: "store", Run: func(ctx context.Context) error {
			return d.store.View(ctx, func(tx efs.Tx) error {
				_, err := tx.AccountPreference("000000000000", "us-east-1")
				return err
			})
		}},
		{Name: "data directory", Run: func(context.Context) error {
			f, err := os.CreateTemp(d.cfg.DataDir, ".readyz-*")
			if err != nil {
				return fmt.Errorf("data directory %s is not writable: %w", d.cfg.DataDir, err)
			}
			_, werr := f.Write([]byte{0})
			return errors.Join(werr, f.Close(), os.Remove(f.Name()))
		}},
		{Name: "api", Run: func(context.Context) error {
			select {
			case <-d.done:
				return errors.New("the API listener has stopped")
			default:
				return nil
			}
		}},
		{Name: "workers", Run: func(context.Context) error {
			switch {
			case d.replStopped.Load():
				return errors.New("the replication manager has stopped")
			case d.mountsStopped.Load():
				return errors.New("the mount target manager has stopped")
			}
			return nil
		}},
	}
}
