// Package sqlite stores efsd's records in an embedded SQLite database
// (modernc.org/sqlite: pure Go, no cgo), in WAL mode with synchronous
// commits, so that everything acknowledged survives a crash.
package sqlite

import (
	"context"
	"database/sql"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	_ "modernc.org/sqlite" // registers the "sqlite" database/sql driver

	"github.com/efsd/efsd/internal/efs"
)

//go:embed migrations/*.sql
var migrations embed.FS

// Store is an efs.Store over one SQLite file. Writes go through a single
// connection (SQLite allows one writer) and take the write lock at BEGIN,
// so transactions never fail half-way on lock upgrades; reads use a pool.
type Store struct {
	w *sql.DB
	r *sql.DB
	// h writes the NFS handle table with synchronous=NORMAL: a handle
	// lost in a power failure only makes a client look its file up again,
	// and the NFS server records handles far too often to fsync each.
	h *sql.DB
	// hput, hdel (on h) and hget (on r): the handle table's statements
	hput, hdel, hget *sql.Stmt
	// ws and rs hold the statements prepared on w and r.
	ws, rs *stmtCache

	// Writes go through one goroutine that commits them in groups (see
	// batch.go).
	queue      chan *writeReq
	writerDone chan struct{}
	closeOnce  sync.Once
	closing    sync.RWMutex // held for reading while enqueuing
	closed     bool
	// onCommit, when set, is told of every group commit (metrics).
	onCommit atomic.Pointer[func(writes int, d time.Duration, err error)]
}

// ObserveCommits makes f be told of every group commit: how many writes
// it carried, how long it took from BEGIN through the fsync of COMMIT, and
// whether it failed. f runs on the writer and must not block.
func (s *Store) ObserveCommits(f func(writes int, d time.Duration, err error)) {
	s.onCommit.Store(&f)
}

// Open opens (creating if needed) the database at path and applies any
// pending migrations.
func Open(path string) (*Store, error) {
	dsn := func(txlock, sync string, pragmas ...string) string {
		q := url.Values{}
		q.Add("_pragma", "journal_mode(WAL)")
		q.Add("_pragma", "synchronous("+sync+")")
		q.Add("_pragma", "busy_timeout(10000)")
		q.Add("_pragma", "foreign_keys(ON)")
		for _, p := range pragmas {
			q.Add("_pragma", p)
		}
		q.Set("_txlock", txlock)
		return "file:" + path + "?" + q.Encode()
	}
	w, err := sql.Open("sqlite", dsn("immediate", "FULL"))
	if err != nil {
		return nil, fmt.Errorf("open %s: %w", path, err)
	}
	w.SetMaxOpenConns(1)
	s := &Store{w: w}
	if err := s.migrate(context.Background()); err != nil {
		w.Close()
		return nil, fmt.Errorf("open database %s: %w", path, err) // the driver's error does not name the file
	}
	// Reads refuse to write: View's transactions are read-only, and every
	// write must go through the writer's group commit.
	r, err := sql.Open("sqlite", dsn("deferred", "FULL", "query_only(1)"))
	if err != nil {
		w.Close()
		return nil, fmt.Errorf("open %s: %w", path, err)
	}
	r.SetMaxOpenConns(8)
	r.SetMaxIdleConns(8) // a closed connection loses its prepared statements
	s.r = r
	s.ws, s.rs = newStmtCache(w), newStmtCache(r)
	h, err := sql.Open("sqlite", dsn("immediate", "NORMAL"))
	if err != nil {
		r.Close()
		w.Close()
		return nil, fmt.Errorf("open %s: %w", path, err)
	}
	h.SetMaxOpenConns(1)
	s.h = h
	if err := s.prepareHandles(context.Background()); err != nil {
		h.Close()
		r.Close()
		w.Close()
		return nil, fmt.Errorf("open %s: prepare: %w", path, err)
	}
	s.queue = make(chan *writeReq, maxBatch)
	s.writerDone = make(chan struct{})
	go s.writer()
	return s, nil
}

// Close waits for queued writes and closes the database.
func (s *Store) Close() error {
	s.closeOnce.Do(func() {
		s.closing.Lock()
		s.closed = true
		close(s.queue)
		s.closing.Unlock()
		<-s.writerDone
		s.ws.close()
		s.rs.close()
	})
	for _, st := range []*sql.Stmt{s.hput, s.hdel, s.hget} {
		st.Close()
	}
	return errors.Join(s.h.Close(), s.r.Close(), s.w.Close())
}

// migrate applies the embedded migrations not yet recorded in
// schema_migrations, each in its own transaction.
func (s *Store) migrate(ctx context.Context) error {
	if _, err := s.w.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY)`); err != nil {
		return fmt.Errorf("create schema_migrations: %w", err)
	}
	names, err := fs.Glob(migrations, "migrations/*.sql")
	if err != nil {
		return err
	}
	sort.Strings(names)
	for _, name := range names {
		base := strings.TrimPrefix(name, "migrations/")
		version, err := strconv.Atoi(strings.SplitN(base, "_", 2)[0])
		if err != nil {
			return fmt.Errorf("migration %s: bad version prefix", name)
		}
		body, err := migrations.ReadFile(name)
		if err != nil {
			return err
		}
		err = s.tx(ctx, s.w, func(tx *sql.Tx) error {
			var n int
			if err := tx.QueryRow(`SELECT count(*) FROM schema_migrations WHERE version = $1`, version).Scan(&n); err != nil {
				return err
			}
			if n > 0 {
				return nil
			}
			if _, err := tx.Exec(string(body)); err != nil {
				return err
			}
			_, err := tx.Exec(`INSERT INTO schema_migrations (version) VALUES ($1)`, version)
			return err
		})
		if err != nil {
			return fmt.Errorf("apply migration %s: %w", base, err)
		}
	}
	return nil
}

func (s *Store) tx(ctx context.Context, db *sql.DB, fn func(*sql.Tx) error) error {
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("begin: %w", err)
	}
	if err := fn(tx); err != nil {
		tx.Rollback()
		return err
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("commit: %w", err)
	}
	return nil
}

// View runs fn in a read transaction.
func (s *Store) View(ctx context.Context, fn func(efs.Tx) error) error {
	err := s.tx(ctx, s.r, func(tx *sql.Tx) error { return fn(&txn{ctx: ctx, tx: tx, stmts: s.rs}) })
	s.rs.prepareWanted(context.WithoutCancel(ctx))
	return err
}

// Update runs fn in a write transaction and returns once it is durably
// committed. Concurrent updates share commits (see batch.go); each sees
// the effects of those committed before it, as with serial transactions.
func (s *Store) Update(ctx context.Context, fn func(efs.Tx) error) error {
	req := &writeReq{ctx: ctx, fn: fn, done: make(chan error, 1)}
	s.closing.RLock()
	if s.closed {
		s.closing.RUnlock()
		return errClosed
	}
	s.queue <- req
	s.closing.RUnlock()
	return <-req.done
}
