package postgres

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/kithcdp/kith/store"
)

// AppendAudit stores entries in one transaction (see store.AuditLog).
//
// Identity values are drawn when a row is inserted, not when its
// transaction commits, so two concurrent appends could commit their IDs out
// of order, and a reader paging by ID could pass a lower ID that only
// becomes visible later. To keep IDs in commit order within a workspace,
// an append first takes a transaction-level advisory lock per workspace
// (in sorted order, so appends spanning workspaces cannot deadlock). As
// with the log's heads (see the package comment), PostgreSQL makes a commit
// visible before it releases the lock, so the next append to the workspace
// draws a higher ID and becomes visible after it.
func (s *Store) AppendAudit(ctx context.Context, entries ...store.AuditEntry) error {
	es, err := store.PrepareAudit(entries, time.Now())
	if err != nil {
		return fmt.Errorf("append audit: %w", err)
	}
	if len(es) == 0 {
		return nil
	}
	var workspaces []string
	for _, e := range es {
		workspaces = append(workspaces, e.Workspace)
	}
	slices.Sort(workspaces)
	workspaces = slices.Compact(workspaces)
	err = s.inTx(ctx, func(tx pgx.Tx) error {
		for _, w := range workspaces {
			if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock(hashtextextended('kith audit ' || $1, 0))`, w); err != nil {
				return fmt.Errorf("lock workspace %q: %w", w, err)
			}
		}
		var b pgx.Batch
		for _, e := range es {
			var details any // NULL when there are none
			if e.Details != nil {
				details = string(e.Details)
			}
			b.Queue(`INSERT INTO audit_log (workspace, at, actor, action, target, method, path, status, details)
				VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)`,
				e.Workspace, e.At, e.Actor, e.Action, e.Target, e.Method, e.Path, e.Status, details)
		}
		return tx.SendBatch(ctx, &b).Close()
	})
	if err != nil {
		return fmt.Errorf("append audit: %w", err)
	}
	return nil
}

// Audit pages through a workspace's audit log by ID (see store.AuditLog).
func (s *Store) Audit(ctx context.Context, workspace string, after int64, limit int) ([]store.AuditEntry, error) {
	rows, _ := s.pool.Query(ctx, `SELECT id, workspace, at, actor, action, target, method, path, status, details::text
		FROM audit_log WHERE workspace = $1 AND id > $2 ORDER BY id LIMIT $3`, workspace, after, store.PageSize(limit))
	es, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (store.AuditEntry, error) {
		var e store.AuditEntry
		var details *string
		err := r.Scan(&e.ID, &e.Workspace, &e.At, &e.Actor, &e.Action, &e.Target, &e.Method, &e.Path, &e.Status, &details)
		e.At = e.At.UTC()
		if details != nil {
			e.Details = json.RawMessage(*details)
		}
		return e, err
	})
	if err != nil {
		return nil, fmt.Errorf("read audit log: %w", err)
	}
	return es, nil
}
