package sqlite

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/kithcdp/kith/store"
	"github.com/kithcdp/kith/store/sqlstate"
)

// Meta returns the server-wide value stored under key, or store.ErrNotFound.
func (s *Store) Meta(ctx context.Context, key string) ([]byte, error) {
	var v []byte
	err := s.w.QueryRowContext(ctx, `SELECT value FROM meta WHERE key = ?`, key).Scan(&v)
	if errors.Is(err, sql.ErrNoRows) {
		err = store.ErrNotFound
	}
	if err != nil {
		return nil, fmt.Errorf("get meta %q: %w", key, err)
	}
	return v, nil
}

// SetMetaIfAbsent stores value under key unless one is there, and returns
// the stored value.
func (s *Store) SetMetaIfAbsent(ctx context.Context, key string, value []byte) ([]byte, error) {
	if _, err := s.exec(ctx, "set meta", `INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT DO NOTHING`, key, value); err != nil {
		return nil, err
	}
	return s.Meta(ctx, key)
}

// PutWorkspace creates or replaces a workspace.
func (s *Store) PutWorkspace(ctx context.Context, w store.Workspace) error {
	_, err := s.exec(ctx, "put workspace", `INSERT INTO workspaces (slug, settings) VALUES (?, ?)
		ON CONFLICT (slug) DO UPDATE SET settings = excluded.settings`, w.Slug, []byte(w.Settings))
	return err
}

// Workspaces returns all workspaces ordered by slug.
func (s *Store) Workspaces(ctx context.Context) ([]store.Workspace, error) {
	var out []store.Workspace
	err := s.query(ctx, "list workspaces", `SELECT slug, settings FROM workspaces ORDER BY slug`, func(r *sql.Rows) error {
		var w store.Workspace
		var settings []byte
		err := r.Scan(&w.Slug, &settings)
		w.Settings = settings
		out = append(out, w)
		return err
	})
	return out, err
}

// PutSource creates or replaces a source.
func (s *Store) PutSource(ctx context.Context, src store.Source) error {
	_, err := s.exec(ctx, "put source", `INSERT INTO sources (workspace, slug, key_hash, settings, prev_key_hash, prev_until, config_hash)
		VALUES (?, ?, ?, ?, ?, ?, ?)
		ON CONFLICT (workspace, slug) DO UPDATE SET key_hash = excluded.key_hash, settings = excluded.settings,
			prev_key_hash = excluded.prev_key_hash, prev_until = excluded.prev_until, config_hash = excluded.config_hash`,
		src.Workspace, src.Slug, src.KeyHash, []byte(src.Settings), src.PrevKeyHash, optMicros(src.PrevUntil), src.ConfigHash)
	return err
}

// AddSource stores src unless the slug is taken; see store.Registry.
func (s *Store) AddSource(ctx context.Context, src store.Source) (bool, error) {
	n, err := s.exec(ctx, "add source", `INSERT INTO sources (workspace, slug, key_hash, settings) VALUES (?, ?, ?, ?)
		ON CONFLICT (workspace, slug) DO NOTHING`, src.Workspace, src.Slug, src.KeyHash, []byte(src.Settings))
	return n == 1, err
}

// Sources returns all sources ordered by workspace and slug.
func (s *Store) Sources(ctx context.Context) ([]store.Source, error) {
	var out []store.Source
	err := s.query(ctx, "list sources", `SELECT workspace, slug, key_hash, settings, prev_key_hash, prev_until, config_hash
		FROM sources ORDER BY workspace, slug`, func(r *sql.Rows) error {
		var src store.Source
		var settings []byte
		var until sql.NullInt64
		err := r.Scan(&src.Workspace, &src.Slug, &src.KeyHash, &settings, &src.PrevKeyHash, &until, &src.ConfigHash)
		src.Settings, src.PrevUntil = settings, fromOptMicros(until)
		out = append(out, src)
		return err
	})
	return out, err
}

// DeleteSource removes a source (store.ErrNotFound if absent).
func (s *Store) DeleteSource(ctx context.Context, workspace, slug string) error {
	return s.deleteOne(ctx, "delete source", `DELETE FROM sources WHERE workspace = ? AND slug = ?`, workspace, slug)
}

// PutToken creates or replaces an access token.
func (s *Store) PutToken(ctx context.Context, t store.Token) error {
	_, err := s.exec(ctx, "put token", `INSERT INTO tokens (workspace, name, hash, scopes, prev_hash, prev_until, config_hash)
		VALUES (?, ?, ?, ?, ?, ?, ?)
		ON CONFLICT (workspace, name) DO UPDATE SET hash = excluded.hash, scopes = excluded.scopes,
			prev_hash = excluded.prev_hash, prev_until = excluded.prev_until, config_hash = excluded.config_hash`,
		t.Workspace, t.Name, t.Hash, strings.Join(t.Scopes, " "), t.PrevHash, optMicros(t.PrevUntil), t.ConfigHash)
	return err
}

// Tokens returns all tokens ordered by workspace and name.
func (s *Store) Tokens(ctx context.Context) ([]store.Token, error) {
	var out []store.Token
	err := s.query(ctx, "list tokens", `SELECT workspace, name, hash, scopes, prev_hash, prev_until, config_hash
		FROM tokens ORDER BY workspace, name`, func(r *sql.Rows) error {
		var t store.Token
		var scopes string
		var until sql.NullInt64
		err := r.Scan(&t.Workspace, &t.Name, &t.Hash, &scopes, &t.PrevHash, &until, &t.ConfigHash)
		t.Scopes, t.PrevUntil = strings.Fields(scopes), fromOptMicros(until)
		out = append(out, t)
		return err
	})
	return out, err
}

// RotateToken gives a token a new hash, keeping the current one until
// prevUntil (see store.Registry).
func (s *Store) RotateToken(ctx context.Context, workspace, name string, hash []byte, prevUntil time.Time) error {
	return s.deleteOne(ctx, "rotate token", `UPDATE tokens SET prev_hash = CASE WHEN ?1 IS NULL THEN NULL ELSE hash END,
		prev_until = ?1, hash = ?2 WHERE workspace = ?3 AND name = ?4`, optMicros(prevUntil), hash, workspace, name)
}

// RotateWriteKey gives a source a new write key hash, keeping the current
// one until prevUntil (see store.Registry).
func (s *Store) RotateWriteKey(ctx context.Context, workspace, slug string, hash []byte, prevUntil time.Time) error {
	return s.deleteOne(ctx, "rotate write key", `UPDATE sources SET prev_key_hash = CASE WHEN ?1 IS NULL THEN NULL ELSE key_hash END,
		prev_until = ?1, key_hash = ?2 WHERE workspace = ?3 AND slug = ?4`, optMicros(prevUntil), hash, workspace, slug)
}

// optMicros is an optional time as stored: unix microseconds, or NULL for
// the zero time.
func optMicros(t time.Time) any {
	if t.IsZero() {
		return nil
	}
	return micros(t)
}

// fromOptMicros reads what optMicros stored.
func fromOptMicros(n sql.NullInt64) time.Time {
	if !n.Valid {
		return time.Time{}
	}
	return fromMicros(n.Int64)
}

// DeleteToken removes a token (store.ErrNotFound if absent).
func (s *Store) DeleteToken(ctx context.Context, workspace, name string) error {
	return s.deleteOne(ctx, "delete token", `DELETE FROM tokens WHERE workspace = ? AND name = ?`, workspace, name)
}

// deleteOne runs a statement that must change one row (store.ErrNotFound
// if it changed none).
func (s *Store) deleteOne(ctx context.Context, doing, q string, args ...any) error {
	n, err := s.exec(ctx, doing, q, args...)
	if err == nil && n == 0 {
		err = fmt.Errorf("%s: %w", doing, store.ErrNotFound)
	}
	return err
}

// query runs a read on the writer connection (the registry is small and
// read at start; reading through the writer sees its own latest commits).
func (s *Store) query(ctx context.Context, doing, q string, scan func(*sql.Rows) error) error {
	rows, err := s.w.QueryContext(ctx, q)
	if err != nil {
		return fmt.Errorf("%s: %w", doing, err)
	}
	defer rows.Close()
	for rows.Next() {
		if err := scan(rows); err != nil {
			return fmt.Errorf("%s: %w", doing, err)
		}
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("%s: %w", doing, err)
	}
	return nil
}

// PutDefinition stores a definition (see store.Definitions): version 1 when
// new, one more when its body changes or it was deleted (its tombstone
// keeps the last version); with the same body and origin nothing changes.
// It returns the definition as stored.
func (s *Store) PutDefinition(ctx context.Context, d store.Definition) (store.Definition, error) {
	body, err := sqlstate.DefinitionBody(d)
	if err != nil {
		return store.Definition{}, fmt.Errorf("put definition: %w", err)
	}
	now := time.Now().UTC().Truncate(time.Microsecond)
	var out store.Definition
	err = s.inTx(ctx, func(tx *sql.Tx) error {
		var version int64
		err := tx.QueryRowContext(ctx, upsertDefinition, d.Workspace, d.Kind, d.Name, body, d.Origin, now.UnixMicro()).Scan(&version)
		if err == nil {
			out = d
			out.Body, out.Version, out.UpdatedAt = json.RawMessage(body), version, now
			return nil
		}
		if !errors.Is(err, sql.ErrNoRows) {
			return err
		}
		// Unchanged: return it as stored.
		out, err = scanDefinition(tx.QueryRowContext(ctx, `SELECT `+definitionCols+` FROM definitions
			WHERE workspace = ? AND kind = ? AND name = ?`, d.Workspace, d.Kind, d.Name))
		return err
	})
	if err != nil {
		return store.Definition{}, fmt.Errorf("put definition %s %q: %w", d.Kind, d.Name, err)
	}
	return out, nil
}

var upsertDefinition = sqlstate.UpsertDefinition(sqlstate.SQLite)

const definitionCols = `workspace, kind, name, body, origin, version, updated_at`

func scanDefinition(r interface{ Scan(...any) error }) (store.Definition, error) {
	var d store.Definition
	var body string
	var at int64
	err := r.Scan(&d.Workspace, &d.Kind, &d.Name, &body, &d.Origin, &d.Version, &at)
	d.Body, d.UpdatedAt = json.RawMessage(body), time.UnixMicro(at).UTC()
	return d, err
}

// DeleteDefinition removes a definition (store.ErrNotFound if absent),
// leaving a tombstone that keeps its version.
func (s *Store) DeleteDefinition(ctx context.Context, workspace, kind, name string) error {
	return s.deleteOne(ctx, "delete definition", `UPDATE definitions SET deleted = TRUE, updated_at = ?
		WHERE workspace = ? AND kind = ? AND name = ? AND NOT deleted`, time.Now().UTC().UnixMicro(), workspace, kind, name)
}

// Definitions returns a workspace's definitions ordered by kind and name.
func (s *Store) Definitions(ctx context.Context, workspace string) ([]store.Definition, error) {
	rows, err := s.w.QueryContext(ctx, `SELECT `+definitionCols+` FROM definitions WHERE workspace = ? AND NOT deleted ORDER BY kind, name`, workspace)
	if err != nil {
		return nil, fmt.Errorf("list definitions: %w", err)
	}
	defer rows.Close()
	var out []store.Definition
	for rows.Next() {
		d, err := scanDefinition(rows)
		if err != nil {
			return nil, fmt.Errorf("list definitions: %w", err)
		}
		out = append(out, d)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("list definitions: %w", err)
	}
	return out, nil
}
