package sqlite

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"time"

	"github.com/kithcdp/kith/store"
)

// AppendAudit stores entries in one transaction (see store.AuditLog). The
// one writer connection orders commits, so IDs follow commit order.
func (s *Store) AppendAudit(ctx context.Context, entries ...store.AuditEntry) error {
	es, err := store.PrepareAudit(entries, time.Now())
	if err != nil {
		return fmt.Errorf("append audit: %w", err)
	}
	if len(es) == 0 {
		return nil
	}
	err = s.inTx(ctx, func(tx *sql.Tx) error {
		stmt, err := tx.PrepareContext(ctx, `INSERT INTO audit_log
			(workspace, at, actor, action, target, method, path, status, details)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`)
		if err != nil {
			return err
		}
		defer stmt.Close()
		for _, e := range es {
			var details any // NULL when there are none
			if e.Details != nil {
				details = string(e.Details)
			}
			if _, err := stmt.ExecContext(ctx, e.Workspace, e.At.UnixMicro(), e.Actor, e.Action, e.Target,
				e.Method, e.Path, e.Status, details); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("append audit: %w", err)
	}
	return nil
}

// Audit pages through a workspace's audit log by ID (see store.AuditLog).
func (s *Store) Audit(ctx context.Context, workspace string, after int64, limit int) ([]store.AuditEntry, error) {
	rows, err := s.r.QueryContext(ctx, `SELECT id, workspace, at, actor, action, target, method, path, status, details
		FROM audit_log WHERE workspace = ? AND id > ? ORDER BY id LIMIT ?`, workspace, after, store.PageSize(limit))
	if err != nil {
		return nil, fmt.Errorf("read audit log: %w", err)
	}
	defer rows.Close()
	var out []store.AuditEntry
	for rows.Next() {
		var e store.AuditEntry
		var at int64
		var details sql.NullString
		if err := rows.Scan(&e.ID, &e.Workspace, &at, &e.Actor, &e.Action, &e.Target, &e.Method, &e.Path,
			&e.Status, &details); err != nil {
			return nil, fmt.Errorf("read audit log: %w", err)
		}
		e.At = time.UnixMicro(at).UTC()
		if details.Valid {
			e.Details = json.RawMessage(details.String)
		}
		out = append(out, e)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read audit log: %w", err)
	}
	return out, nil
}
