// Package sqlite is Kith's embedded store: one SQLite database file under the
// data directory, in WAL mode with synchronous=FULL, so every commit is
// fsynced before Append returns. Writes go through one connection (SQLite
// has one writer); reads use a separate pool and never block the writer.
package sqlite

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/kithcdp/kith/store"
	"github.com/kithcdp/kith/store/sqlstate"
	"github.com/pressly/goose/v3"
	msqlite "modernc.org/sqlite" // registers the "sqlite" driver
)

//go:embed migrations/*.sql statemigrations/*.sql
var migrations embed.FS

// FileName is the database file of the log and the registry inside the
// data directory; StateFileName holds the derived state (profiles), so that
// ingest and folding each have their own writer.
const (
	FileName      = "kith.db"
	StateFileName = "state.db"
)

// Store is the SQLite backend of store.Store. It is safe for concurrent use
// within one process; other processes (kith import) may write to the same
// file at the same time, since positions are read inside each write
// transaction.
type Store struct {
	w       *sql.DB // one connection: the writer
	writer  *writerStmts
	r       *sql.DB // readers
	commits atomic.Int64
	*sqlstate.State
	sw, sr *sql.DB // the state database's writer and readers

	dedup dedupIndex // recent messageIds; see dedupIndex

	ck             *sql.DB       // the log's checkpointer (see checkpointLoop)
	ckWake         chan struct{} // a commit happened
	ckStop, ckDone chan struct{}
}

var _ store.Store = (*Store)(nil)

// Open creates dir if needed, opens dir/kith.db and dir/state.db and
// applies pending migrations.
func Open(ctx context.Context, dir string) (*Store, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("open sqlite store: create data directory: %w", err)
	}
	// The log's writer keeps statement journals in memory (a multi-row
	// INSERT writes one per statement, and in a temporary file that cost a
	// write system call per page) and gets an 8 MiB page cache: it appends
	// at the ends of its B-trees, and of dedup_hash it probes one leaf per
	// messageId at random and merges in hash order, so a larger cache hardly
	// helps (32 MiB: the same CPU per event, 48 MB more resident memory). It
	// leaves checkpoints to a background connection (see checkpointLoop) and
	// only checkpoints itself if the WAL passes 16,384 pages. A new log
	// file gets 8 KiB pages: events of ~1.3 KB left 207 bytes each unused in
	// 4 KiB pages (two or three to a page), 76 in 8 KiB ones — 1.61 → 1.48 KB
	// of disk per event, at the same CPU per event.
	path := filepath.Join(dir, FileName)
	w, r, err := openDB(ctx, path, dbConfig{
		migrations: "migrations",
		pageSize:   8192,
		writerPragmas: []string{"temp_store(MEMORY)", "cache_size(-8192)",
			"wal_autocheckpoint(16384)", "journal_size_limit(67108864)"},
	})
	if err != nil {
		return nil, fmt.Errorf("open sqlite store: %w", err)
	}
	ck, err := sql.Open("sqlite", "file:"+path+"?_pragma=busy_timeout(10000)")
	if err != nil {
		w.Close()
		r.Close()
		return nil, fmt.Errorf("open sqlite store: %w", err)
	}
	ck.SetMaxOpenConns(1)
	// The state's writer gets a 32 MiB page cache and each reader 16 MiB
	// (the default is 2 MiB): its indexes, keyed by identifier or profile,
	// are written and read at random places, and a small cache turns each
	// batch into thousands of reads and a Profile API lookup's p99 into
	// milliseconds (7.1 ms → 2.3 ms at 200,000 profiles). Like the log's
	// writer it keeps statement journals in memory: a multi-row upsert
	// keeps one, and in a temporary file it cost a write system call per
	// page (8% of a replay's CPU).
	ws, err := prepareWriter(ctx, w)
	if err != nil {
		w.Close()
		r.Close()
		ck.Close()
		return nil, fmt.Errorf("open sqlite store: %w", err)
	}
	sw, sr, err := openDB(ctx, filepath.Join(dir, StateFileName), dbConfig{
		migrations:    "statemigrations",
		derived:       true,
		writerPragmas: []string{"cache_size(-32768)", "temp_store(MEMORY)"},
		readerPragmas: []string{"cache_size(-16384)"},
	})
	if err != nil {
		w.Close()
		r.Close()
		ck.Close()
		return nil, fmt.Errorf("open sqlite state: %w", err)
	}
	s := &Store{w: w, writer: ws, r: r, sw: sw, sr: sr, State: sqlstate.New(sw, sr, sqlstate.SQLite),
		ck: ck, ckWake: make(chan struct{}, 1), ckStop: make(chan struct{}), ckDone: make(chan struct{})}
	s.State.OnCommit = func() { s.commits.Add(1) }
	s.dedup.max = dedupMemory()
	go s.checkpointLoop()
	return s, nil
}

// DefaultDedupMemory is how many recent messageIds a writer keeps in memory
// (~50 bytes each) before it merges them into the on-disk index; see
// dedupIndex. KITH_SQLITE_DEDUP_MEMORY overrides it (tests set it low to
// exercise merges). More means fewer index pages written per event (each
// merge writes about min(this, index pages) pages) but more memory and a
// longer read of dedup_recent when the store opens.
const DefaultDedupMemory = 500_000

func dedupMemory() int {
	if n, err := strconv.Atoi(os.Getenv("KITH_SQLITE_DEDUP_MEMORY")); err == nil && n > 0 {
		return n
	}
	return DefaultDedupMemory
}

func init() {
	// dedupHash, for migration 00003 (and its Down).
	msqlite.MustRegisterDeterministicScalarFunction("kith_dedup_hash", 2,
		func(_ *msqlite.FunctionContext, args []driver.Value) (driver.Value, error) {
			var s [2]string
			for i, a := range args {
				switch v := a.(type) {
				case string:
					s[i] = v
				case []byte:
					s[i] = string(v)
				default:
					return nil, fmt.Errorf("kith_dedup_hash: argument %d is %T, not text", i+1, a)
				}
			}
			return dedupHash(s[0], s[1]), nil
		})
}

// checkpointEvery is the least time between two background checkpoints:
// each costs an fsync of the WAL and of the database file, so under light
// traffic they must not follow every commit.
const checkpointEvery = 100 * time.Millisecond

// checkpointLoop copies the log's WAL back into kith.db on its own
// connection after commits, at most once per checkpointEvery, so that
// commits do not wait for it (in the writer it took ~17% of the writer's CPU
// and an extra fsync of the database file every 1,000 pages). The
// checkpoint is PASSIVE: it never blocks the writer, and when it has copied
// every frame the next commit starts the WAL over. A failed checkpoint is
// retried after the next commit; the writer's own autocheckpoint bounds the
// WAL if this one falls behind.
func (s *Store) checkpointLoop() {
	defer close(s.ckDone)
	for {
		select {
		case <-s.ckStop:
			return
		case <-s.ckWake:
		}
		_, _ = s.ck.Exec(`PRAGMA wal_checkpoint(PASSIVE)`)
		select {
		case <-s.ckStop:
			return
		case <-time.After(checkpointEvery):
		}
	}
}

// dbConfig says how to open one database file.
type dbConfig struct {
	migrations                   string   // directory of its migrations
	writerPragmas, readerPragmas []string // beyond the common ones
	// derived marks a database that only holds what the log rebuilds: its
	// commits are atomic but not fsynced (synchronous=NORMAL in WAL mode).
	// A power loss may undo the last commits, cursor included, and folding
	// then does them again from the log.
	derived bool
	// pageSize, if set, is the page size of a new database file (an
	// existing file keeps its own).
	pageSize int
}

// createWithPageSize creates the database file at path in WAL mode with the
// given page size, unless it exists. (With journal_mode in the DSN, the
// driver switches to WAL before a page_size pragma could take effect.)
func createWithPageSize(ctx context.Context, path string, size int) error {
	if _, err := os.Stat(path); !errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	db, err := sql.Open("sqlite", fmt.Sprintf("file:%s?_pragma=page_size(%d)", path, size))
	if err != nil {
		return err
	}
	defer db.Close()
	if _, err := db.ExecContext(ctx, `PRAGMA journal_mode=WAL`); err != nil {
		return fmt.Errorf("create %s: %w", path, err)
	}
	return db.Close()
}

// openDB opens the database file at path with one writer connection and a
// pool of read-only ones, and applies its migrations.
func openDB(ctx context.Context, path string, c dbConfig) (w, r *sql.DB, err error) {
	if c.pageSize > 0 {
		if err := createWithPageSize(ctx, path, c.pageSize); err != nil {
			return nil, nil, err
		}
	}
	sync := "synchronous(FULL)"
	if c.derived {
		sync = "synchronous(NORMAL)"
	}
	pragmas := []string{"journal_mode(WAL)", sync, "busy_timeout(10000)", "foreign_keys(ON)", "secure_delete(ON)"}
	dsn := func(extra ...string) string {
		v := url.Values{}
		for _, p := range append(pragmas, extra...) {
			v.Add("_pragma", p)
		}
		v.Set("_txlock", "immediate")
		return "file:" + path + "?" + v.Encode()
	}
	if w, err = sql.Open("sqlite", dsn(c.writerPragmas...)); err != nil {
		return nil, nil, err
	}
	w.SetMaxOpenConns(1)
	w.SetConnMaxIdleTime(0)
	if err := migrate(ctx, w, c.migrations); err != nil {
		w.Close()
		return nil, nil, err
	}
	if r, err = sql.Open("sqlite", dsn(append([]string{"query_only(1)"}, c.readerPragmas...)...)); err != nil {
		w.Close()
		return nil, nil, err
	}
	r.SetMaxOpenConns(4)
	return w, r, nil
}

func migrate(ctx context.Context, db *sql.DB, migrationsDir string) error {
	dir, err := fs.Sub(migrations, migrationsDir)
	if err != nil {
		return fmt.Errorf("migrate: %w", err)
	}
	p, err := goose.NewProvider(goose.DialectSQLite3, db, dir)
	if err != nil {
		return fmt.Errorf("migrate: %w", err)
	}
	if _, err := p.Up(ctx); err != nil {
		return fmt.Errorf("migrate: %w", err)
	}
	return nil
}

// Close checkpoints the WAL and closes the database.
func (s *Store) Close() error {
	close(s.ckStop)
	<-s.ckDone
	_, _ = s.w.Exec(`PRAGMA wal_checkpoint(TRUNCATE)`)
	_, _ = s.sw.Exec(`PRAGMA wal_checkpoint(TRUNCATE)`)
	return errors.Join(s.ck.Close(), s.r.Close(), s.w.Close(), s.sr.Close(), s.sw.Close())
}

// Ping reports whether the database answers.
func (s *Store) Ping(ctx context.Context) error { return s.r.PingContext(ctx) }

// Stats returns the number of committed write transactions.
func (s *Store) Stats() store.Stats { return store.Stats{Commits: s.commits.Load()} }

// CheckDurability verifies journal_mode=wal and synchronous=FULL on the
// writer connection.
func (s *Store) CheckDurability(ctx context.Context) (store.Durability, error) {
	var mode string
	var syncLevel int
	if err := s.w.QueryRowContext(ctx, `PRAGMA journal_mode`).Scan(&mode); err != nil {
		return store.Durability{}, fmt.Errorf("read journal_mode: %w", err)
	}
	if err := s.w.QueryRowContext(ctx, `PRAGMA synchronous`).Scan(&syncLevel); err != nil {
		return store.Durability{}, fmt.Errorf("read synchronous: %w", err)
	}
	d := store.Durability{Backend: "sqlite", Settings: map[string]string{
		"journal_mode": strings.ToLower(mode),
		"synchronous":  map[int]string{0: "off", 1: "normal", 2: "full", 3: "extra"}[syncLevel],
	}}
	if d.Settings["journal_mode"] != "wal" || syncLevel < 2 {
		return d, fmt.Errorf("sqlite is not durable: journal_mode=%s synchronous=%d, want wal and full", mode, syncLevel)
	}
	return d, nil
}

// inTx runs fn in a write transaction and counts the commit.
func (s *Store) inTx(ctx context.Context, fn func(*sql.Tx) error) error {
	tx, err := s.w.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("begin: %w", err)
	}
	if err := fn(tx); err != nil {
		_ = tx.Rollback()
		return err
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("commit: %w", err)
	}
	s.commits.Add(1)
	select {
	case s.ckWake <- struct{}{}:
	default: // a checkpoint is already due
	}
	return nil
}
