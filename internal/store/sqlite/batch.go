package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/efsd/efsd/internal/efs"
)

// Group commit. Every write transaction must reach the disk before it is
// acknowledged (synchronous=FULL), and SQLite has one writer, so writes
// that arrive while a commit is being fsynced are queued and then run
// together in one SQLite transaction, each inside a savepoint of its own:
// one fsync then acknowledges them all. A write whose function fails is
// rolled back to its savepoint without touching the others.

// maxBatch bounds how many writes share one commit.
const maxBatch = 128

type writeReq struct {
	ctx  context.Context
	fn   func(efs.Tx) error
	done chan error
}

// writer runs queued writes until the queue is closed.
func (s *Store) writer() {
	defer close(s.writerDone)
	for req := range s.queue {
		batch := []*writeReq{req}
	drain:
		for len(batch) < maxBatch {
			select {
			case r, ok := <-s.queue:
				if !ok {
					break drain
				}
				batch = append(batch, r)
			default:
				break drain
			}
		}
		s.commitBatch(batch)
		s.ws.prepareWanted(context.Background())
	}
}

func (s *Store) commitBatch(batch []*writeReq) {
	start := time.Now()
	err := s.runBatch(batch)
	if f := s.onCommit.Load(); f != nil {
		(*f)(len(batch), time.Since(start), err)
	}
}

// runBatch runs and commits the batch and answers every write; it returns
// the error that failed the whole batch, if any.
func (s *Store) runBatch(batch []*writeReq) error {
	errs := make([]error, len(batch))
	fail := func(err error) {
		for i := range batch {
			if errs[i] == nil {
				errs[i] = err
			}
			batch[i].done <- errs[i]
		}
	}
	tx, err := s.w.BeginTx(context.Background(), nil)
	if err != nil {
		err = fmt.Errorf("begin: %w", err)
		fail(err)
		return err
	}
	bt := &txn{ctx: context.Background(), tx: tx, stmts: s.ws}
	for i, req := range batch {
		if err := req.ctx.Err(); err != nil {
			errs[i] = err
			continue
		}
		if _, err := bt.exec(`SAVEPOINT w`); err != nil {
			tx.Rollback()
			err = fmt.Errorf("savepoint: %w", err)
			fail(err)
			return err
		}
		errs[i] = runWrite(req, tx, s.ws)
		if errs[i] != nil {
			if _, err := bt.exec(`ROLLBACK TO w`); err != nil {
				tx.Rollback()
				err = fmt.Errorf("rollback to savepoint: %w", err)
				fail(err)
				return err
			}
		}
		if _, err := bt.exec(`RELEASE w`); err != nil {
			tx.Rollback()
			err = fmt.Errorf("release savepoint: %w", err)
			fail(err)
			return err
		}
	}
	if err := tx.Commit(); err != nil {
		err = fmt.Errorf("commit: %w", err)
		fail(err)
		return err
	}
	for i := range batch {
		batch[i].done <- errs[i]
	}
	return nil
}

// runWrite runs one write's function; a panic becomes its error rather
// than killing the writer that every other write waits on.
func runWrite(req *writeReq, tx *sql.Tx, stmts *stmtCache) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("write transaction panicked: %v", r)
		}
	}()
	return req.fn(&txn{ctx: req.ctx, tx: tx, stmts: stmts})
}

// errClosed is returned by Update after Close.
var errClosed = errors.New("store closed")
