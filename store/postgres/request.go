package postgres

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

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
	r.Version = 1
	err = s.pool.QueryRow(ctx, `INSERT INTO privacy_requests (id, workspace, type, regulation, law, subjects,
		status, received_at, deadline, completed_at, via, actor, position, destinations, details, error, job,
		lease_until, version) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19)
		RETURNING seq`,
		r.ID, r.Workspace, r.Type, r.Regulation, r.Law, jsonArg(r.Subjects), r.Status, r.ReceivedAt, r.Deadline,
		nullTime(r.CompletedAt), r.Via, r.Actor, r.Position, jsonArg(r.Destinations), rawArg(r.Details), r.Error,
		rawArg(r.Job), nullTime(r.LeaseUntil), r.Version).Scan(&r.Seq)
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) && pgErr.Code == "23505" { // unique_violation
		err = store.ErrExists
	}
	if err != nil {
		return r, fmt.Errorf("create privacy request: %w", err)
	}
	s.commits.Add(1)
	return r, nil
}

// PrivacyRequest returns one request of a workspace, or store.ErrNotFound.
func (s *Store) PrivacyRequest(ctx context.Context, workspace, id string) (store.PrivacyRequest, error) {
	rs, err := s.scanRequests(ctx, `SELECT `+requestColumns+` FROM privacy_requests WHERE workspace = $1 AND id = $2`, workspace, id)
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
		WHERE ($1 = '' OR workspace = $1) AND ($2 = '' OR status = $2) AND seq > $3 ORDER BY seq LIMIT $4`,
		q.Workspace, q.Status, q.After, store.PageSize(q.Limit))
	if err != nil {
		return nil, fmt.Errorf("list privacy requests: %w", err)
	}
	return rs, nil
}

// UpdatePrivacyRequest is the compare-and-set of a request's progress (see
// store.RequestStore). When it clears a job, the table is vacuumed and
// analyzed after the commit, so that neither the old row version holding
// the job nor planner statistics sampled from it linger.
func (s *Store) UpdatePrivacyRequest(ctx context.Context, r store.PrivacyRequest) (store.PrivacyRequest, error) {
	r, err := store.PrepareRequest(r)
	if err != nil {
		return r, err
	}
	var hadJob bool
	err = s.pool.QueryRow(ctx, `WITH old AS (
			SELECT seq, job IS NOT NULL AS had_job FROM privacy_requests
			WHERE workspace = $1 AND id = $2 AND version = $3 FOR UPDATE)
		UPDATE privacy_requests p SET subjects = $4, status = $5, completed_at = $6, position = $7, destinations = $8,
			details = $9, error = $10, job = $11, lease_until = $12, version = p.version + 1
		FROM old WHERE p.seq = old.seq RETURNING old.had_job`,
		r.Workspace, r.ID, r.Version, jsonArg(r.Subjects), r.Status, nullTime(r.CompletedAt), r.Position,
		jsonArg(r.Destinations), rawArg(r.Details), r.Error, rawArg(r.Job), nullTime(r.LeaseUntil)).Scan(&hadJob)
	if errors.Is(err, pgx.ErrNoRows) {
		err = store.ErrStale
	}
	if err != nil {
		return r, fmt.Errorf("update privacy request %s: %w", r.ID, err)
	}
	s.commits.Add(1)
	r.Version++
	if hadJob && r.Job == nil {
		if _, err := s.pool.Exec(ctx, `VACUUM (ANALYZE) privacy_requests`); err != nil {
			return r, fmt.Errorf("update privacy request %s: vacuum: %w", r.ID, err)
		}
	}
	return r, nil
}

func (s *Store) scanRequests(ctx context.Context, query string, args ...any) ([]store.PrivacyRequest, error) {
	rows, err := s.pool.Query(ctx, query, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []store.PrivacyRequest
	for rows.Next() {
		var r store.PrivacyRequest
		var completed, lease *time.Time
		var subjects, dests []byte
		var details, job []byte
		if err := rows.Scan(&r.Seq, &r.ID, &r.Workspace, &r.Type, &r.Regulation, &r.Law, &subjects, &r.Status,
			&r.ReceivedAt, &r.Deadline, &completed, &r.Via, &r.Actor, &r.Position, &dests, &details, &r.Error, &job,
			&lease, &r.Version); err != nil {
			return nil, err
		}
		r.ReceivedAt, r.Deadline = r.ReceivedAt.UTC(), r.Deadline.UTC()
		r.CompletedAt, r.LeaseUntil = fromOptTime(completed), fromOptTime(lease)
		if err := json.Unmarshal(subjects, &r.Subjects); err != nil {
			return nil, fmt.Errorf("request %s: subjects: %w", r.ID, err)
		}
		if err := json.Unmarshal(dests, &r.Destinations); err != nil {
			return nil, fmt.Errorf("request %s: destinations: %w", r.ID, err)
		}
		if details != nil {
			r.Details = json.RawMessage(details)
		}
		if job != nil {
			r.Job = json.RawMessage(job)
		}
		out = append(out, r)
	}
	return out, rows.Err()
}

// jsonArg encodes v (a list, never nil after store.PrepareRequest) as
// JSON text for a json column.
func jsonArg(v any) string {
	b, _ := json.Marshal(v) // lists of plain structs: never fails
	return string(b)
}

// rawArg is NULL for no JSON, else its text.
func rawArg(j json.RawMessage) any {
	if j == nil {
		return nil
	}
	return string(j)
}

// nullTime is NULL for the zero time.
func nullTime(t time.Time) any {
	if t.IsZero() {
		return nil
	}
	return t
}
