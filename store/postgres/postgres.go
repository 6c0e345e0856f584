// Package postgres is the PostgreSQL backend of store.Store, for running
// several Kith nodes on one shared database.
//
// Open applies the embedded migrations (migrations/*.sql, run by goose)
// under a PostgreSQL advisory lock, so nodes that start at once migrate
// exactly once. The schema is the first one on the connection's search_path;
// to use a dedicated schema, create it and pass it in the URL, e.g.
// postgres://host/db?search_path=kith.
//
// # Gap-free positions
//
// Each workspace has a row in log_heads holding the last position handed
// out. Append locks that row (SELECT ... FOR UPDATE), numbers its new events
// from it, advances it and inserts the events, all in one transaction. A
// second Append to the same workspace, from this node or any other, blocks
// on the row lock until the first transaction has ended. PostgreSQL makes a
// committed transaction visible to new snapshots before it releases its
// locks, so the second transaction can only read the new head, and later
// commit, after the first one's events are visible: commits, and therefore
// visibility, follow position order, and no reader can see position N+1
// before N. Duplicate detection runs under the same lock, so a concurrent
// Append of the same messageId waits for the first and reports Duplicate.
//
// # Notifications
//
// Every Append that adds events runs pg_notify('kith_log', workspace) in its
// transaction; PostgreSQL delivers the notification to listeners on the
// channel kith_log when (and only if) the transaction commits. Live readers
// on any node can LISTEN kith_log and then Read from their last position.
//
// # Durability
//
// Every connection runs with synchronous_commit = on (or remote_apply, if
// the server is configured with it), so a commit returns only after its WAL
// is flushed; CheckDurability verifies that and fsync = on.
//
// Times are stored as timestamptz, with microsecond precision.
package postgres

import (
	"context"
	"database/sql"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"sync/atomic"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/jackc/pgx/v5/stdlib"
	"github.com/pressly/goose/v3"

	"github.com/kithcdp/kith/store"
	"github.com/kithcdp/kith/store/sqlstate"
)

//go:embed migrations/*.sql
var migrations embed.FS

// Store is a store.Store on a PostgreSQL database. It is safe for
// concurrent use; several Stores, in one process or many, may share one
// database.
type Store struct {
	pool    *pgxpool.Pool
	commits atomic.Int64
	*sqlstate.State
	db *sql.DB // the pool through database/sql, for the derived state
}

var _ store.Store = (*Store)(nil)

// Open connects to the database at url (a postgres:// URL or a key=value
// connection string, as pgx accepts), applies pending migrations and
// returns the store. Unknown URL parameters, such as search_path, are sent
// to the server as session settings.
func Open(ctx context.Context, url string) (*Store, error) {
	cfg, err := pgxpool.ParseConfig(url)
	if err != nil {
		return nil, fmt.Errorf("open postgres store: parse url: %w", err)
	}
	cfg.AfterConnect = requireSyncCommit
	// The log tables start empty and grow fast. A generic plan cached while
	// they were small (a sequential scan of log_dedup, say) would stay in
	// use on that connection until the next ANALYZE; plan every execution
	// with the actual parameters and table sizes instead.
	if _, ok := cfg.ConnConfig.RuntimeParams["plan_cache_mode"]; !ok {
		cfg.ConnConfig.RuntimeParams["plan_cache_mode"] = "force_custom_plan"
	}
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("open postgres store: %w", err)
	}
	if err := migrate(ctx, pool); err != nil {
		pool.Close()
		return nil, fmt.Errorf("open postgres store: %w", err)
	}
	s := &Store{pool: pool, db: stdlib.OpenDBFromPool(pool)}
	s.State = sqlstate.New(s.db, s.db, sqlstate.Postgres)
	s.State.OnCommit = func() { s.commits.Add(1) }
	return s, nil
}

// requireSyncCommit makes a new connection wait for the WAL flush on every
// commit: it raises synchronous_commit to on unless the server already uses
// on or the stricter remote_apply.
func requireSyncCommit(ctx context.Context, c *pgx.Conn) error {
	_, err := c.Exec(ctx, `SELECT set_config('synchronous_commit', 'on', false)
		WHERE current_setting('synchronous_commit') NOT IN ('on', 'remote_apply')`)
	if err != nil {
		return fmt.Errorf("set synchronous_commit: %w", err)
	}
	return nil
}

// migrate applies the embedded migrations while holding an advisory lock
// keyed by the current schema, so concurrent Opens on one schema run them
// once and Opens on other schemas do not wait.
func migrate(ctx context.Context, pool *pgxpool.Pool) (err error) {
	conn, err := pool.Acquire(ctx)
	if err != nil {
		return fmt.Errorf("migrate: %w", err)
	}
	defer conn.Release()
	const key = `hashtextextended('kith migrations ' || coalesce(current_schema(), ''), 0)`
	if _, err := conn.Exec(ctx, `SELECT pg_advisory_lock(`+key+`)`); err != nil {
		return fmt.Errorf("migrate: take lock: %w", err)
	}
	defer func() {
		_, uerr := conn.Exec(context.WithoutCancel(ctx), `SELECT pg_advisory_unlock(`+key+`)`)
		if uerr != nil && err == nil {
			err = fmt.Errorf("migrate: release lock: %w", uerr)
		}
	}()

	db := stdlib.OpenDBFromPool(pool)
	defer db.Close()
	dir, err := fs.Sub(migrations, "migrations")
	if err != nil {
		return fmt.Errorf("migrate: %w", err)
	}
	p, err := goose.NewProvider(goose.DialectPostgres, db, dir)
	if err != nil {
		return fmt.Errorf("migrate: %w", err)
	}
	if _, err := p.Up(ctx); err != nil {
		return fmt.Errorf("migrate: %w", err)
	}
	return nil
}

// Close closes all connections.
func (s *Store) Close() error {
	err := s.db.Close()
	s.pool.Close()
	return err
}

// Ping reports whether the database answers.
func (s *Store) Ping(ctx context.Context) error {
	if err := s.pool.Ping(ctx); err != nil {
		return fmt.Errorf("ping postgres: %w", err)
	}
	return nil
}

// Stats returns the number of write transactions committed through s.
func (s *Store) Stats() store.Stats {
	return store.Stats{Commits: s.commits.Load()}
}

// CheckDurability verifies that commits wait for the WAL flush
// (synchronous_commit on or remote_apply) and that the server fsyncs
// (fsync on), and returns those settings with wal_sync_method and
// full_page_writes.
func (s *Store) CheckDurability(ctx context.Context) (store.Durability, error) {
	var syncCommit, fsync, syncMethod, fullPageWrites string
	err := s.pool.QueryRow(ctx, `SELECT current_setting('synchronous_commit'), current_setting('fsync'),
		current_setting('wal_sync_method'), current_setting('full_page_writes')`).
		Scan(&syncCommit, &fsync, &syncMethod, &fullPageWrites)
	if err != nil {
		return store.Durability{}, fmt.Errorf("check durability: %w", err)
	}
	d := store.Durability{Backend: "postgres", Settings: map[string]string{
		"synchronous_commit": syncCommit,
		"fsync":              fsync,
		"wal_sync_method":    syncMethod,
		"full_page_writes":   fullPageWrites,
	}}
	if syncCommit != "on" && syncCommit != "remote_apply" {
		return d, fmt.Errorf("check durability: synchronous_commit is %q, want on or remote_apply", syncCommit)
	}
	if fsync != "on" {
		return d, errors.New("check durability: the server runs with fsync off")
	}
	return d, nil
}

// inTx runs fn in a transaction and commits it, counting the commit.
func (s *Store) inTx(ctx context.Context, fn func(pgx.Tx) error) error {
	if err := pgx.BeginFunc(ctx, s.pool, fn); err != nil {
		return err
	}
	s.commits.Add(1)
	return nil
}

// exec runs one write statement in its own transaction, counting the
// commit, and returns the number of rows it affected.
func (s *Store) exec(ctx context.Context, sql string, args ...any) (int64, error) {
	tag, err := s.pool.Exec(ctx, sql, args...)
	if err != nil {
		return 0, err
	}
	s.commits.Add(1)
	return tag.RowsAffected(), nil
}
