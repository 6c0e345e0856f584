package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"

	"github.com/kithcdp/kith/store"
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
	_, err := s.exec(ctx, "put source", `INSERT INTO sources (workspace, slug, key_hash, settings) VALUES (?, ?, ?, ?)
		ON CONFLICT (workspace, slug) DO UPDATE SET key_hash = excluded.key_hash, settings = excluded.settings`,
		src.Workspace, src.Slug, src.KeyHash, []byte(src.Settings))
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
	err := s.query(ctx, "list sources", `SELECT workspace, slug, key_hash, settings FROM sources ORDER BY workspace, slug`, func(r *sql.Rows) error {
		var src store.Source
		var settings []byte
		err := r.Scan(&src.Workspace, &src.Slug, &src.KeyHash, &settings)
		src.Settings = settings
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
	_, err := s.exec(ctx, "put token", `INSERT INTO tokens (workspace, name, hash, scopes) VALUES (?, ?, ?, ?)
		ON CONFLICT (workspace, name) DO UPDATE SET hash = excluded.hash, scopes = excluded.scopes`,
		t.Workspace, t.Name, t.Hash, strings.Join(t.Scopes, " "))
	return err
}

// Tokens returns all tokens ordered by workspace and name.
func (s *Store) Tokens(ctx context.Context) ([]store.Token, error) {
	var out []store.Token
	err := s.query(ctx, "list tokens", `SELECT workspace, name, hash, scopes FROM tokens ORDER BY workspace, name`, func(r *sql.Rows) error {
		var t store.Token
		var scopes string
		err := r.Scan(&t.Workspace, &t.Name, &t.Hash, &scopes)
		t.Scopes = strings.Fields(scopes)
		out = append(out, t)
		return err
	})
	return out, err
}

// DeleteToken removes a token (store.ErrNotFound if absent).
func (s *Store) DeleteToken(ctx context.Context, workspace, name string) error {
	return s.deleteOne(ctx, "delete token", `DELETE FROM tokens WHERE workspace = ? AND name = ?`, workspace, name)
}

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
