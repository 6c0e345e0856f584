package store

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"
)

// This file is the contract of the audit log: who did what to a workspace's
// configuration and who read its personal data, kept append-only next to
// the registry (in SQLite, kith.db).
//
// The contract has no method to change or remove an entry, and each backend
// also makes its database refuse UPDATE and DELETE of audit rows (SQLite
// and PostgreSQL triggers; on PostgreSQL TRUNCATE too). Retention of audit
// entries, when it comes, will be a separate and explicit operation; none
// is offered yet.
//
// An entry must hold no raw personal data: no identifier values, no trait
// values, no secrets. Where an entry needs to refer to a person, it holds a
// keyed digest (HMAC with the server secret) of the identifier instead.

// Audit actors that are not tokens.
const (
	AuditActorConfig = "config" // the config file, applied at start
	AuditActorSystem = "system" // Kith itself (retention, automatic disabling, ...)
)

// AuditActionTokenUse is the action of a read of personal data with a
// token; Details names the route.
const AuditActionTokenUse = "token.use"

// AuditEntry is one entry of a workspace's audit log.
type AuditEntry struct {
	ID        int64     // assigned by AppendAudit; increasing in commit order per workspace
	At        time.Time // when it happened; AppendAudit sets the current time if zero
	Workspace string
	Actor     string // the token's name, or AuditActorConfig / AuditActorSystem
	Action    string // stable, e.g. "definition.put", "destination.pause", "identity.block", "token.use"
	Target    string // what was acted on, e.g. "audience:vip" (may be empty)
	Method    string // HTTP method, if the action came through the API
	Path      string // HTTP path and query, identifier and query values replaced by keyed digests
	Status    int    // HTTP status answered (0 if not an HTTP request)
	// Details is a JSON object with what else is worth keeping (nil if
	// none). Never raw personal data or secrets.
	Details json.RawMessage
}

// AuditLog is the append-only audit log.
type AuditLog interface {
	// AppendAudit stores the entries in one transaction, assigning their
	// IDs (and At, where zero). Each needs a Workspace and an Action, and
	// Details, if set, must be valid JSON.
	AppendAudit(ctx context.Context, entries ...AuditEntry) error
	// Audit returns up to limit entries of a workspace with ID > after, in
	// ID order (limit as PageSize: 0 means 100, at most 1000). Within a
	// workspace IDs follow commit order, so a reader that pages on from
	// the last ID it saw misses nothing appended later.
	Audit(ctx context.Context, workspace string, after int64, limit int) ([]AuditEntry, error)
}

// ErrInvalidAudit reports an audit entry AppendAudit cannot store.
var ErrInvalidAudit = errors.New("invalid audit entry")

// PrepareAudit checks entries for AppendAudit and returns copies with At
// set to now where it is zero, in UTC and truncated to microseconds (what
// both backends keep). Backends call it; callers need not.
func PrepareAudit(entries []AuditEntry, now time.Time) ([]AuditEntry, error) {
	out := make([]AuditEntry, len(entries))
	for i, e := range entries {
		switch {
		case e.Workspace == "":
			return nil, fmt.Errorf("audit entry %d: no workspace: %w", i, ErrInvalidAudit)
		case e.Action == "":
			return nil, fmt.Errorf("audit entry %d: no action: %w", i, ErrInvalidAudit)
		case len(e.Details) > 0 && !json.Valid(e.Details):
			return nil, fmt.Errorf("audit entry %d: details are not valid JSON: %w", i, ErrInvalidAudit)
		}
		if e.At.IsZero() {
			e.At = now
		}
		e.At = e.At.UTC().Truncate(time.Microsecond)
		if len(e.Details) == 0 {
			e.Details = nil
		}
		out[i] = e
	}
	return out, nil
}
