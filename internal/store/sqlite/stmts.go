package sqlite

import (
	"context"
	"database/sql"
	"sync"
)

// stmtCache prepares each query once per database. The driver otherwise
// compiles the SQL on every execution, which profiles of the API's write
// path put at 8–14% of efsd's CPU. A query is prepared after the
// transaction that first ran it (unprepared) has ended: preparing needs
// a connection of its own, and the writer has only one. The queries are
// the constant strings of this package, so the cache is small; it still
// stops growing at maxStmts.
type stmtCache struct {
	db     *sql.DB
	mu     sync.Mutex
	m      map[string]*sql.Stmt
	wanted map[string]bool
}

const maxStmts = 256

func newStmtCache(db *sql.DB) *stmtCache {
	return &stmtCache{db: db, m: map[string]*sql.Stmt{}, wanted: map[string]bool{}}
}

// get returns the prepared statement for query, or nil after noting that
// it is wanted.
func (c *stmtCache) get(query string) *sql.Stmt {
	c.mu.Lock()
	defer c.mu.Unlock()
	if st, ok := c.m[query]; ok {
		return st
	}
	if len(c.m)+len(c.wanted) < maxStmts {
		c.wanted[query] = true
	}
	return nil
}

// prepareWanted prepares the queries run unprepared so far. The caller
// must hold no connection of c's database; c's lock is not held while
// preparing, since a prepare may wait for a connection whose transaction
// is waiting for the lock. A query that fails to prepare keeps running
// unprepared and is tried again after its next use.
func (c *stmtCache) prepareWanted(ctx context.Context) {
	c.mu.Lock()
	var qs []string
	for q := range c.wanted {
		qs = append(qs, q)
		delete(c.wanted, q)
	}
	c.mu.Unlock()
	for _, q := range qs {
		st, err := c.db.PrepareContext(ctx, q)
		if err != nil {
			continue
		}
		c.mu.Lock()
		if _, dup := c.m[q]; dup {
			st.Close() // prepared meanwhile by another caller
		} else {
			c.m[q] = st
		}
		c.mu.Unlock()
	}
}

// close closes every prepared statement.
func (c *stmtCache) close() {
	c.mu.Lock()
	defer c.mu.Unlock()
	for q, st := range c.m {
		st.Close()
		delete(c.m, q)
	}
}

// txStmt returns query's statement bound to tx, or nil to run it unprepared.
func txStmt(ctx context.Context, tx *sql.Tx, c *stmtCache, query string) *sql.Stmt {
	if c == nil {
		return nil
	}
	st := c.get(query)
	if st == nil {
		return nil
	}
	return tx.StmtContext(ctx, st)
}

func (t *txn) exec(query string, args ...any) (sql.Result, error) {
	st := txStmt(t.ctx, t.tx, t.stmts, query)
	if st == nil {
		return t.tx.ExecContext(t.ctx, query, args...)
	}
	return st.ExecContext(t.ctx, args...)
}

func (t *txn) query(query string, args ...any) (*sql.Rows, error) {
	st := txStmt(t.ctx, t.tx, t.stmts, query)
	if st == nil {
		return t.tx.QueryContext(t.ctx, query, args...)
	}
	return st.QueryContext(t.ctx, args...)
}

func (t *txn) queryRow(query string, args ...any) *sql.Row {
	st := txStmt(t.ctx, t.tx, t.stmts, query)
	if st == nil {
		return t.tx.QueryRowContext(t.ctx, query, args...)
	}
	return st.QueryRowContext(t.ctx, args...)
}
