package store

import (
	"context"
	"encoding/json"
	"errors"
	"time"
)

// This file is the contract for data-subject requests (package privacy,
// docs/privacy-requests.md): each request a person made about their data —
// access, rectification, erasure, restriction, objection, consent, or one
// of Segment's regulation types — kept as a record with a status, a legal
// deadline, and per destination the status of its deletion there.
//
// A record names the person only by keyed digests of their identifiers.
// The one place that holds personal data is Job: the identifiers needed to
// finish the request (to send deletions to destinations, to export the
// data at download). It is cleared when the request ends, and the backends
// make sure no copy of it lingers in their files (see UpdatePrivacyRequest).

// Data-subject request statuses: a request is received, then in progress
// while its control events are folded and its deletions sent, then
// completed or failed.
const (
	RequestReceived   = "received"
	RequestInProgress = "in_progress"
	RequestCompleted  = "completed"
	RequestFailed     = "failed"
)

// Statuses of a deletion sent to one destination.
const (
	DeletionPending     = "pending"     // not sent yet, or to retry
	DeletionSent        = "sent"        // the destination accepted it
	DeletionFailed      = "failed"      // the destination refused it for good
	DeletionUnsupported = "unsupported" // the destination cannot delete (Detail says why)
)

// RequestSubject names the person a request is about: the type of an
// identifier and its keyed digest (HMAC-SHA-256 under the server secret of
// "type:value", normalized, as the suppression list keys it), never the
// value.
type RequestSubject struct {
	Type   string `json:"type"`
	Digest string `json:"digest"` // hex
}

// DestinationDeletion is where the deletion of a request's person stands
// at one destination that received their data.
type DestinationDeletion struct {
	Destination string    `json:"destination"`
	Status      string    `json:"status"` // DeletionPending, DeletionSent, ...
	Detail      string    `json:"detail,omitempty"`
	At          time.Time `json:"at"` // the last change
}

// PrivacyRequest is a data-subject request's record.
type PrivacyRequest struct {
	ID        string // "dsr_<uuid>"
	Seq       int64  // assigned by CreatePrivacyRequest; increasing, for paging
	Workspace string
	// Type is what was asked: "access", "rectification", "erasure", ...
	// (privacy.RequestTypes).
	Type string
	// Regulation is Segment's regulation type when the request came as
	// one (SUPPRESS_ONLY, UNSUPPRESS, SUPPRESS_WITH_DELETE, DELETE_ONLY,
	// DELETE_INTERNAL), else empty.
	Regulation string
	Law        string // "gdpr" or "ccpa"
	Subjects   []RequestSubject
	Status     string
	ReceivedAt time.Time
	Deadline   time.Time // the law's deadline for answering
	// CompletedAt is when the request was completed or failed (zero
	// before).
	CompletedAt time.Time
	Via         string // "api", "cli", "portal"
	Actor       string // the token's name, "cli" or "portal"; never personal data
	// Position is the log position of the last control event the request
	// appended (0 if none): it is carried out once the workspace's folding
	// cursor has passed it.
	Position     int64
	Destinations []DestinationDeletion
	// Details is a JSON object of what was asked beyond the person —
	// scope, trait names, purposes — without personal data (nil if none).
	Details json.RawMessage
	Error   string // why it failed; no personal data
	// Job is what is needed to finish the request (nil once it ended).
	// It may hold personal data.
	Job json.RawMessage
	// LeaseUntil is how long the node that last claimed the request may
	// work on it alone (zero when none claimed it).
	LeaseUntil time.Time
	// Version grows by one with every update; UpdatePrivacyRequest
	// compares it.
	Version int64
}

// RequestQuery selects data-subject requests.
type RequestQuery struct {
	Workspace string // "" for every workspace
	Status    string // "" for every status
	After     int64  // Seq > After
	Limit     int    // PageSize applies
}

// RequestStore is implemented by every backend's Store. The records live
// next to the registry (in SQLite, kith.db).
type RequestStore interface {
	// CreatePrivacyRequest stores a new request and returns it with its
	// Seq and Version 1. It fails with ErrExists if its ID is taken.
	CreatePrivacyRequest(ctx context.Context, r PrivacyRequest) (PrivacyRequest, error)
	// PrivacyRequest returns one request of a workspace, or ErrNotFound.
	PrivacyRequest(ctx context.Context, workspace, id string) (PrivacyRequest, error)
	// PrivacyRequests pages through requests by Seq.
	PrivacyRequests(ctx context.Context, q RequestQuery) ([]PrivacyRequest, error)
	// UpdatePrivacyRequest stores r's Status, CompletedAt, Position,
	// Destinations, Details, Error, Job and LeaseUntil if the stored
	// request's Version is still r.Version, and returns it with the next
	// Version; otherwise it fails with ErrStale (another node changed it
	// first) and changes nothing. It is the compare-and-set that lets
	// several nodes work on requests without doing anything twice.
	// When it clears a Job, no copy of the old one stays in the store's
	// files: SQLite overwrites freed space (secure_delete) and truncates
	// its WAL; PostgreSQL vacuums the table.
	UpdatePrivacyRequest(ctx context.Context, r PrivacyRequest) (PrivacyRequest, error)
}

// Errors of the RequestStore contract.
var (
	ErrExists = errors.New("already exists")
	ErrStale  = errors.New("changed by another writer")
)

// PrepareRequest checks a request for CreatePrivacyRequest or
// UpdatePrivacyRequest and returns a copy with its times in UTC,
// truncated to microseconds (what both backends keep), zero-length JSON
// as nil and nil lists as empty ones. Backends call it; callers need not.
func PrepareRequest(r PrivacyRequest) (PrivacyRequest, error) {
	switch {
	case r.ID == "" || r.Workspace == "" || r.Type == "" || r.Status == "":
		return r, errors.New("privacy request: ID, Workspace, Type and Status are required")
	case len(r.Details) > 0 && !json.Valid(r.Details), len(r.Job) > 0 && !json.Valid(r.Job):
		return r, errors.New("privacy request: Details and Job must be JSON")
	}
	t := func(v time.Time) time.Time {
		if v.IsZero() {
			return time.Time{}
		}
		return v.UTC().Truncate(time.Microsecond)
	}
	r.ReceivedAt, r.Deadline, r.CompletedAt, r.LeaseUntil = t(r.ReceivedAt), t(r.Deadline), t(r.CompletedAt), t(r.LeaseUntil)
	r.Subjects = append([]RequestSubject{}, r.Subjects...) // a copy, never nil: stored as [] when empty
	r.Destinations = append([]DestinationDeletion{}, r.Destinations...)
	for i := range r.Destinations {
		r.Destinations[i].At = t(r.Destinations[i].At)
	}
	if len(r.Details) == 0 {
		r.Details = nil
	}
	if len(r.Job) == 0 {
		r.Job = nil
	}
	return r, nil
}
