package postgres

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/kithcdp/kith/store"
	"github.com/kithcdp/kith/store/sqlstate"
)

// Meta returns the server-wide value stored under key, or store.ErrNotFound.
func (s *Store) Meta(ctx context.Context, key string) ([]byte, error) {
	var v []byte
	err := s.pool.QueryRow(ctx, `SELECT value FROM meta WHERE key = $1`, key).Scan(&v)
	if errors.Is(err, pgx.ErrNoRows) {
		err = store.ErrNotFound
	}
	if err != nil {
		return nil, fmt.Errorf("get meta %q: %w", key, err)
	}
	return v, nil
}

// SetMetaIfAbsent stores value under key unless a value is there, and
// returns the stored value. Of several concurrent callers, one wins and all
// get its value: the losers' inserts wait for the winner's commit.
func (s *Store) SetMetaIfAbsent(ctx context.Context, key string, value []byte) ([]byte, error) {
	n, err := s.exec(ctx, `INSERT INTO meta (key, value) VALUES ($1, $2) ON CONFLICT DO NOTHING`, key, value)
	if err != nil {
		return nil, fmt.Errorf("set meta %q: %w", key, err)
	}
	if n == 1 {
		return value, nil
	}
	return s.Meta(ctx, key)
}

// PutWorkspace creates or replaces a workspace.
func (s *Store) PutWorkspace(ctx context.Context, w store.Workspace) error {
	_, err := s.exec(ctx, `INSERT INTO workspaces (slug, settings) VALUES ($1, $2)
		ON CONFLICT (slug) DO UPDATE SET settings = excluded.settings`, w.Slug, []byte(w.Settings))
	if err != nil {
		return fmt.Errorf("put workspace %q: %w", w.Slug, err)
	}
	return nil
}

// Workspaces returns all workspaces ordered by slug.
func (s *Store) Workspaces(ctx context.Context) ([]store.Workspace, error) {
	rows, _ := s.pool.Query(ctx, `SELECT slug, settings FROM workspaces ORDER BY slug COLLATE "C"`)
	ws, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (store.Workspace, error) {
		var w store.Workspace
		var settings []byte
		err := r.Scan(&w.Slug, &settings)
		w.Settings = settings
		return w, err
	})
	if err != nil {
		return nil, fmt.Errorf("list workspaces: %w", err)
	}
	return ws, nil
}

// PutSource creates or replaces a source.
func (s *Store) PutSource(ctx context.Context, src store.Source) error {
	_, err := s.exec(ctx, `INSERT INTO sources (workspace, slug, key_hash, settings, prev_key_hash, prev_until, config_hash)
		VALUES ($1, $2, $3, $4, $5, $6, $7)
		ON CONFLICT (workspace, slug) DO UPDATE SET key_hash = excluded.key_hash, settings = excluded.settings,
			prev_key_hash = excluded.prev_key_hash, prev_until = excluded.prev_until, config_hash = excluded.config_hash`,
		src.Workspace, src.Slug, src.KeyHash, []byte(src.Settings), src.PrevKeyHash, nullTime(src.PrevUntil), src.ConfigHash)
	if err != nil {
		return fmt.Errorf("put source %q/%q: %w", src.Workspace, src.Slug, err)
	}
	return nil
}

// AddSource stores src unless the slug is taken; see store.Registry.
func (s *Store) AddSource(ctx context.Context, src store.Source) (bool, error) {
	n, err := s.exec(ctx, `INSERT INTO sources (workspace, slug, key_hash, settings) VALUES ($1, $2, $3, $4)
		ON CONFLICT (workspace, slug) DO NOTHING`, src.Workspace, src.Slug, src.KeyHash, []byte(src.Settings))
	if err != nil {
		return false, fmt.Errorf("add source %q/%q: %w", src.Workspace, src.Slug, err)
	}
	return n == 1, nil
}

// Sources returns all sources ordered by workspace and slug.
func (s *Store) Sources(ctx context.Context) ([]store.Source, error) {
	rows, _ := s.pool.Query(ctx, `SELECT workspace, slug, key_hash, settings, prev_key_hash, prev_until, config_hash
		FROM sources ORDER BY workspace COLLATE "C", slug COLLATE "C"`)
	srcs, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (store.Source, error) {
		var src store.Source
		var settings []byte
		var until *time.Time
		err := r.Scan(&src.Workspace, &src.Slug, &src.KeyHash, &settings, &src.PrevKeyHash, &until, &src.ConfigHash)
		src.Settings, src.PrevUntil = settings, fromOptTime(until)
		return src, err
	})
	if err != nil {
		return nil, fmt.Errorf("list sources: %w", err)
	}
	return srcs, nil
}

// DeleteSource removes a source (store.ErrNotFound if absent).
func (s *Store) DeleteSource(ctx context.Context, workspace, slug string) error {
	n, err := s.exec(ctx, `DELETE FROM sources WHERE workspace = $1 AND slug = $2`, workspace, slug)
	if err == nil && n == 0 {
		err = store.ErrNotFound
	}
	if err != nil {
		return fmt.Errorf("delete source %q/%q: %w", workspace, slug, err)
	}
	return nil
}

// PutToken creates or replaces an access token.
func (s *Store) PutToken(ctx context.Context, t store.Token) error {
	_, err := s.exec(ctx, `INSERT INTO tokens (workspace, name, hash, scopes, prev_hash, prev_until, config_hash)
		VALUES ($1, $2, $3, $4, $5, $6, $7)
		ON CONFLICT (workspace, name) DO UPDATE SET hash = excluded.hash, scopes = excluded.scopes,
			prev_hash = excluded.prev_hash, prev_until = excluded.prev_until, config_hash = excluded.config_hash`,
		t.Workspace, t.Name, t.Hash, t.Scopes, t.PrevHash, nullTime(t.PrevUntil), t.ConfigHash)
	if err != nil {
		return fmt.Errorf("put token %q/%q: %w", t.Workspace, t.Name, err)
	}
	return nil
}

// Tokens returns all tokens ordered by workspace and name.
func (s *Store) Tokens(ctx context.Context) ([]store.Token, error) {
	rows, _ := s.pool.Query(ctx, `SELECT workspace, name, hash, scopes, prev_hash, prev_until, config_hash
		FROM tokens ORDER BY workspace COLLATE "C", name COLLATE "C"`)
	ts, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (store.Token, error) {
		var t store.Token
		var until *time.Time
		err := r.Scan(&t.Workspace, &t.Name, &t.Hash, &t.Scopes, &t.PrevHash, &until, &t.ConfigHash)
		t.PrevUntil = fromOptTime(until)
		return t, err
	})
	if err != nil {
		return nil, fmt.Errorf("list tokens: %w", err)
	}
	return ts, nil
}

// RotateToken gives a token a new hash, keeping the current one until
// prevUntil (see store.Registry).
func (s *Store) RotateToken(ctx context.Context, workspace, name string, hash []byte, prevUntil time.Time) error {
	return s.rotate(ctx, "token", `UPDATE tokens SET prev_hash = CASE WHEN $1::timestamptz IS NULL THEN NULL ELSE hash END,
		prev_until = $1, hash = $2 WHERE workspace = $3 AND name = $4`, workspace, name, hash, prevUntil)
}

// RotateWriteKey gives a source a new write key hash, keeping the current
// one until prevUntil (see store.Registry).
func (s *Store) RotateWriteKey(ctx context.Context, workspace, slug string, hash []byte, prevUntil time.Time) error {
	return s.rotate(ctx, "write key", `UPDATE sources SET prev_key_hash = CASE WHEN $1::timestamptz IS NULL THEN NULL ELSE key_hash END,
		prev_until = $1, key_hash = $2 WHERE workspace = $3 AND slug = $4`, workspace, slug, hash, prevUntil)
}

// rotate runs a rotation statement q, whose parameters are $1 prevUntil
// (NULL for none), $2 the new hash, $3 the workspace and $4 the name; it
// must change one row (store.ErrNotFound if none).
func (s *Store) rotate(ctx context.Context, what, q, workspace, name string, hash []byte, prevUntil time.Time) error {
	n, err := s.exec(ctx, q, nullTime(prevUntil), hash, workspace, name)
	if err == nil && n == 0 {
		err = store.ErrNotFound
	}
	if err != nil {
		return fmt.Errorf("rotate %s %q/%q: %w", what, workspace, name, err)
	}
	return nil
}

// fromOptTime reads what nullTime stored.
func fromOptTime(t *time.Time) time.Time {
	if t == nil {
		return time.Time{}
	}
	return t.UTC()
}

// DeleteToken removes a token (store.ErrNotFound if absent).
func (s *Store) DeleteToken(ctx context.Context, workspace, name string) error {
	n, err := s.exec(ctx, `DELETE FROM tokens WHERE workspace = $1 AND name = $2`, workspace, name)
	if err == nil && n == 0 {
		err = store.ErrNotFound
	}
	if err != nil {
		return fmt.Errorf("delete token %q/%q: %w", workspace, name, err)
	}
	return nil
}

// PutDefinition stores a definition (see store.Definitions): version 1 when
// new, one more when its body changes or it was deleted (its tombstone
// keeps the last version); with the same body and origin nothing changes.
// It returns the definition as stored. One statement
// decides, so concurrent puts from several nodes count every change.
func (s *Store) PutDefinition(ctx context.Context, d store.Definition) (store.Definition, error) {
	body, err := sqlstate.DefinitionBody(d)
	if err != nil {
		return store.Definition{}, fmt.Errorf("put definition: %w", err)
	}
	now := time.Now().UTC().Truncate(time.Microsecond)
	var out store.Definition
	err = s.inTx(ctx, func(tx pgx.Tx) error {
		var version int64
		err := tx.QueryRow(ctx, upsertDefinition, d.Workspace, d.Kind, d.Name, body, d.Origin, now).Scan(&version)
		if err == nil {
			out = d
			out.Body, out.Version, out.UpdatedAt = json.RawMessage(body), version, now
			return nil
		}
		if !errors.Is(err, pgx.ErrNoRows) {
			return err
		}
		// Unchanged (the conflicting row is locked now): return it as stored.
		out, err = scanDefinition(tx.QueryRow(ctx, `SELECT `+definitionCols+` FROM definitions
			WHERE workspace = $1 AND kind = $2 AND name = $3`, d.Workspace, d.Kind, d.Name))
		return err
	})
	if err != nil {
		return store.Definition{}, fmt.Errorf("put definition %s %q: %w", d.Kind, d.Name, err)
	}
	return out, nil
}

var upsertDefinition = sqlstate.UpsertDefinition(sqlstate.Postgres)

const definitionCols = `workspace, kind, name, body, origin, version, updated_at`

func scanDefinition(r pgx.Row) (store.Definition, error) {
	var d store.Definition
	var body string
	err := r.Scan(&d.Workspace, &d.Kind, &d.Name, &body, &d.Origin, &d.Version, &d.UpdatedAt)
	d.Body, d.UpdatedAt = json.RawMessage(body), d.UpdatedAt.UTC()
	return d, err
}

// DeleteDefinition removes a definition (store.ErrNotFound if absent),
// leaving a tombstone that keeps its version.
func (s *Store) DeleteDefinition(ctx context.Context, workspace, kind, name string) error {
	n, err := s.exec(ctx, `UPDATE definitions SET deleted = TRUE, updated_at = $4
		WHERE workspace = $1 AND kind = $2 AND name = $3 AND NOT deleted`, workspace, kind, name, time.Now().UTC())
	if err == nil && n == 0 {
		err = store.ErrNotFound
	}
	if err != nil {
		return fmt.Errorf("delete definition %s %q of %q: %w", kind, name, workspace, err)
	}
	return nil
}

// Definitions returns a workspace's definitions ordered by kind and name.
func (s *Store) Definitions(ctx context.Context, workspace string) ([]store.Definition, error) {
	rows, _ := s.pool.Query(ctx, `SELECT `+definitionCols+` FROM definitions WHERE workspace = $1 AND NOT deleted
		ORDER BY kind COLLATE "C", name COLLATE "C"`, workspace)
	ds, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (store.Definition, error) { return scanDefinition(r) })
	if err != nil {
		return nil, fmt.Errorf("list definitions: %w", err)
	}
	return ds, nil
}
