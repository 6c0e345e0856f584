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
)

var _ store.RequestStore = (*Store)(nil)

const requestColumns = `seq, id, workspace, type, regulation, law, subjects, status, received_at, deadline,
	completed_at, via, actor, position, destinations, details, error, job, lease_until, version`

// CreatePrivacyRequest stores a new data-subject request (see
// store.RequestStore).
func (s *Store) CreatePrivacyRequest(ctx context.Context, r store.PrivacyRequest) (store.PrivacyRequest, error) {
	r, err := store.PrepareRequest(r)
	if err != nil {
		return r, err
	}
	subjects, dests, err := requestJSON(r)
	if err != nil {
		return r, err
	}
	r.Version = 1
	err = s.inTx(ctx, func(tx *sql.Tx) error {
		return tx.QueryRowContext(ctx, `INSERT INTO privacy_requests (id, workspace, type, regulation, law, subjects,
			status, received_at, deadline, completed_at, via, actor, position, destinations, details, error, job,
			lease_until, version) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING seq`,
			r.ID, r.Workspace, r.Type, r.Regulation, r.Law, subjects, r.Status, micros0(r.ReceivedAt), micros0(r.Deadline),
			micros0(r.CompletedAt), r.Via, r.Actor, r.Position, dests, nullJSON(r.Details), r.Error, nullJSON(r.Job),
			micros0(r.LeaseUntil), r.Version).Scan(&r.Seq)
	})
	if err != nil && strings.Contains(err.Error(), "UNIQUE constraint failed") {
		err = store.ErrExists
	}
	if err != nil {
		return r, fmt.Errorf("create privacy request: %w", err)
	}
	return r, nil
}

// PrivacyRequest returns one request of a workspace, or store.ErrNotFound.
func (s *Store) PrivacyRequest(ctx context.Context, workspace, id string) (store.PrivacyRequest, error) {
	rs, err := s.scanRequests(ctx, `SELECT `+requestColumns+` FROM privacy_requests WHERE workspace = ? AND id = ?`, workspace, id)
	if err != nil {
		return store.PrivacyRequest{}, fmt.Errorf("read privacy request: %w", err)
	}
	if len(rs) == 0 {
		return store.PrivacyRequest{}, fmt.Errorf("read privacy request %s: %w", id, store.ErrNotFound)
	}
	return rs[0], nil
}

// PrivacyRequests pages through requests by Seq.
func (s *Store) PrivacyRequests(ctx context.Context, q store.RequestQuery) ([]store.PrivacyRequest, error) {
	rs, err := s.scanRequests(ctx, `SELECT `+requestColumns+` FROM privacy_requests
		WHERE (? = '' OR workspace = ?) AND (? = '' OR status = ?) AND seq > ? ORDER BY seq LIMIT ?`,
		q.Workspace, q.Workspace, q.Status, q.Status, q.After, store.PageSize(q.Limit))
	if err != nil {
		return nil, fmt.Errorf("list privacy requests: %w", err)
	}
	return rs, nil
}

// UpdatePrivacyRequest is the compare-and-set of a request's progress (see
// store.RequestStore). Every connection runs with secure_delete, so the
// page an update rewrites holds zeros where an old job was; when the
// update clears a job, the WAL, whose older frames still hold it, is
// checkpointed and truncated.
func (s *Store) UpdatePrivacyRequest(ctx context.Context, r store.PrivacyRequest) (store.PrivacyRequest, error) {
	r, err := store.PrepareRequest(r)
	if err != nil {
		return r, err
	}
	subjects, dests, err := requestJSON(r)
	if err != nil {
		return r, err
	}
	var hadJob bool
	err = s.inTx(ctx, func(tx *sql.Tx) error {
		err := tx.QueryRowContext(ctx, `SELECT job IS NOT NULL FROM privacy_requests WHERE workspace = ? AND id = ? AND version = ?`,
			r.Workspace, r.ID, r.Version).Scan(&hadJob)
		if errors.Is(err, sql.ErrNoRows) {
			return store.ErrStale
		}
		if err != nil {
			return err
		}
		_, err = tx.ExecContext(ctx, `UPDATE privacy_requests SET subjects = ?, status = ?, completed_at = ?, position = ?,
			destinations = ?, details = ?, error = ?, job = ?, lease_until = ?, version = version + 1
			WHERE workspace = ? AND id = ?`,
			subjects, r.Status, micros0(r.CompletedAt), r.Position, dests, nullJSON(r.Details), r.Error, nullJSON(r.Job),
			micros0(r.LeaseUntil), r.Workspace, r.ID)
		return err
	})
	if err != nil {
		return r, fmt.Errorf("update privacy request %s: %w", r.ID, err)
	}
	r.Version++
	if hadJob && r.Job == nil {
		if err := truncateWAL(ctx, s.w); err != nil {
			return r, fmt.Errorf("update privacy request %s: committed, but the WAL still holds the old job: %w", r.ID, err)
		}
	}
	return r, nil
}

func (s *Store) scanRequests(ctx context.Context, query string, args ...any) ([]store.PrivacyRequest, error) {
	rows, err := s.r.QueryContext(ctx, query, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []store.PrivacyRequest
	for rows.Next() {
		var r store.PrivacyRequest
		var received, deadline, completed, lease int64
		var subjects, dests string
		var details, job sql.NullString
		if err := rows.Scan(&r.Seq, &r.ID, &r.Workspace, &r.Type, &r.Regulation, &r.Law, &subjects, &r.Status,
			&received, &deadline, &completed, &r.Via, &r.Actor, &r.Position, &dests, &details, &r.Error, &job,
			&lease, &r.Version); err != nil {
			return nil, err
		}
		r.ReceivedAt, r.Deadline, r.CompletedAt, r.LeaseUntil = fromMicros0(received), fromMicros0(deadline),
			fromMicros0(completed), fromMicros0(lease)
		if err := json.Unmarshal([]byte(subjects), &r.Subjects); err != nil {
			return nil, fmt.Errorf("request %s: subjects: %w", r.ID, err)
		}
		if err := json.Unmarshal([]byte(dests), &r.Destinations); err != nil {
			return nil, fmt.Errorf("request %s: destinations: %w", r.ID, err)
		}
		if details.Valid {
			r.Details = json.RawMessage(details.String)
		}
		if job.Valid {
			r.Job = json.RawMessage(job.String)
		}
		out = append(out, r)
	}
	return out, rows.Err()
}

// requestJSON encodes r's subjects and destinations (never nil after
// store.PrepareRequest) as JSON arrays.
func requestJSON(r store.PrivacyRequest) (subjects, dests string, err error) {
	sj, err := json.Marshal(r.Subjects)
	if err != nil {
		return "", "", fmt.Errorf("privacy request: subjects: %w", err)
	}
	dj, err := json.Marshal(r.Destinations)
	if err != nil {
		return "", "", fmt.Errorf("privacy request: destinations: %w", err)
	}
	return string(sj), string(dj), nil
}

// nullJSON is NULL for no JSON, else its text.
func nullJSON(j json.RawMessage) any {
	if j == nil {
		return nil
	}
	return string(j)
}

// micros0 is micros with 0 for the zero time.
func micros0(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return micros(t)
}

// fromMicros0 is fromMicros with the zero time for 0.
func fromMicros0(us int64) time.Time {
	if us == 0 {
		return time.Time{}
	}
	return fromMicros(us)
}
