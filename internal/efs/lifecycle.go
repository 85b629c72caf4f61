package efs

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// Start runs the lifecycle worker, which settles transitional states
// (creating, updating, deleting, backup ENABLING/DISABLING) once they are
// due. Pending work is found in the store, so a restart resumes it.
func (s *Service) Start(ctx context.Context) {
	ctx, s.cancel = context.WithCancel(ctx)
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		s.runLifecycle(ctx)
	}()
}

// Stop ends the lifecycle worker and waits for it.
func (s *Service) Stop() {
	if s.cancel != nil {
		s.cancel()
	}
	s.wg.Wait()
}

// Kick wakes the lifecycle worker. Many kicks before it runs collapse
// into one wake-up.
func (s *Service) Kick() {
	select {
	case s.kick <- struct{}{}:
	default:
	}
}

// maxIdle bounds how long the worker sleeps with nothing due, and
// maxBackoff how long it waits after repeated failures.
const (
	maxIdle    = time.Minute
	maxBackoff = 30 * time.Second
)

func (s *Service) runLifecycle(ctx context.Context) {
	var failures int
	for {
		next, err := s.SettleDue(ctx)
		wait := maxIdle
		if !next.IsZero() {
			wait = min(max(next.Sub(s.now()), 0), maxIdle)
		}
		if err != nil && ctx.Err() == nil {
			failures++
			wait = min(time.Duration(1<<min(failures, 10))*50*time.Millisecond, maxBackoff)
			s.log.Error("lifecycle worker", "err", err, "retryIn", wait)
		} else {
			failures = 0
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-s.kick:
		case <-t.C:
		}
		t.Stop()
	}
}

// SettleDue settles every file system whose DueAt has passed and returns
// the earliest DueAt still in the future (zero if none). It reads only
// what is due, so a kick costs little however many file systems wait.
func (s *Service) SettleDue(ctx context.Context) (time.Time, error) {
	var errs []error
	var now time.Time
	for {
		var due []*FileSystem
		now = s.now()
		err := s.store.View(ctx, func(tx Tx) error {
			var err error
			due, err = tx.DueFileSystems(now, 100)
			return err
		})
		if err != nil {
			return time.Time{}, fmt.Errorf("list due file systems: %w", err)
		}
		// The real work goes first (new volumes all together, removals one
		// by one); then one transaction records every settled state, so a
		// burst of creates costs one commit instead of one each.
		var ready, creating []*FileSystem
		var keys []FSKey
		for _, fs := range due {
			if fs.State == StateCreating {
				creating = append(creating, fs)
				keys = append(keys, fs.Key())
				continue
			}
			if err := s.provision(fs); err != nil {
				errs = append(errs, fmt.Errorf("settle %s: %w", fs.Key(), err))
				continue
			}
			ready = append(ready, fs)
		}
		if len(keys) > 0 {
			// One call for every new volume: their entries share fsyncs.
			if err := s.cfg.Volumes.Create(keys...); err != nil {
				errs = append(errs, fmt.Errorf("create volumes of %d file systems: %w", len(keys), err))
			} else {
				ready = append(ready, creating...)
			}
		}
		settled := 0
		if len(ready) > 0 {
			if err := s.settle(ctx, ready); err != nil {
				errs = append(errs, fmt.Errorf("settle %d file systems: %w", len(ready), err))
			} else {
				settled = len(ready)
			}
		}
		if len(due) < 100 || settled == 0 {
			break
		}
	}
	// Ask for what comes after the instant the last list was taken at, so
	// that anything that fell due since is found (and due at once).
	var next time.Time
	err := s.store.View(ctx, func(tx Tx) error {
		n, ok, err := tx.NextDue(now)
		if ok {
			next = n
		}
		return err
	})
	if err != nil {
		errs = append(errs, fmt.Errorf("next due file system: %w", err))
	}
	return next, errors.Join(errs...)
}

// provision does the real work a transitional state other than creating
// stands for (new volumes are made together, in SettleDue).
func (s *Service) provision(seen *FileSystem) error {
	switch seen.State {
	case StateDeleting:
		if err := s.cfg.Volumes.Remove(seen.Key()); err != nil {
			return fmt.Errorf("remove volume: %w", err)
		}
	}
	return nil
}

// settle records the settled states of file systems already provisioned,
// in one transaction. Each record is re-read inside it so that changes
// made meanwhile by API calls are kept.
func (s *Service) settle(ctx context.Context, seen []*FileSystem) error {
	defer s.dataPlaneChanged() // a deleted file system takes its access points along
	return s.store.Update(ctx, func(tx Tx) error {
		for _, fs := range seen {
			if err := s.settleOne(tx, fs); err != nil {
				return fmt.Errorf("settle %s: %w", fs.Key(), err)
			}
		}
		return nil
	})
}

func (s *Service) settleOne(tx Tx, seen *FileSystem) error {
	fs, err := tx.FileSystem(seen.Account, seen.Region, seen.ID)
	if errors.Is(err, ErrNotFound) {
		return nil
	}
	if err != nil {
		return err
	}
	if fs.DueAt.IsZero() || fs.DueAt.After(s.now()) {
		return nil // rescheduled meanwhile
	}
	switch fs.State {
	case StateDeleting:
		if seen.State != StateDeleting {
			return nil // deleted after we looked; settle again next round
		}
		if err := tx.DeleteAccessPointsOfFS(fs.Account, fs.Region, fs.ID); err != nil {
			return err
		}
		return tx.DeleteFileSystem(fs.Account, fs.Region, fs.ID)
	case StateCreating:
		if seen.State != StateCreating {
			return nil
		}
		fs.State = StateAvailable
	case StateUpdating:
		fs.State = StateAvailable
	}
	switch fs.BackupStatus {
	case BackupEnabling:
		fs.BackupStatus = BackupEnabled
	case BackupDisabling:
		fs.BackupStatus = BackupDisabled
	}
	fs.DueAt = time.Time{}
	return tx.UpdateFileSystem(fs)
}
