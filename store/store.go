// Package store defines the storage contract that every Kith backend
// implements: the per-workspace event log (with messageId dedup), the
// quarantine of failed events, the registry of workspaces, sources and
// access tokens, and the derived state folded from the log (state.go).
//
// Two backends implement it: store/sqlite (the embedded default) and
// store/postgres (to scale out across nodes). store/storetest holds the one
// conformance suite both must pass.
//
// The log's central promise: Append returns only after the events are
// committed and fsynced, and positions become visible to readers strictly in
// order — no reader may see position N+1 before N, even with several writers.
package store

import (
	"context"
	"encoding/json"
	"errors"
	"time"
)

// FormatVersion is the version of the stored event layout written by this
// build. Readers use it to decode events written by older builds.
const FormatVersion = 1

// Event flags.
const (
	// FlagTimestampClamped marks an event whose corrected timestamp was in
	// the future beyond the allowed skew and was clamped to receivedAt.
	FlagTimestampClamped = 1 << iota
	// FlagMessageIDGenerated marks an event that arrived without a messageId.
	FlagMessageIDGenerated
)

// Signals are facts about the request that carried an event; consent and
// privacy gates read them.
type Signals struct {
	IP        string `json:"ip,omitempty"`
	UserAgent string `json:"userAgent,omitempty"`
	Origin    string `json:"origin,omitempty"`
	GPC       bool   `json:"gpc,omitempty"` // the request carried Sec-GPC: 1
}

// Event is one entry of a workspace's log.
type Event struct {
	Position    int64  // assigned by Append; strictly increasing per workspace
	Workspace   string // workspace slug
	Source      string // source slug
	MessageID   string
	Type        string // identify, track, page, screen, group, alias, or a control type
	Name        string // track: event name; page/screen: name
	UserID      string
	AnonymousID string
	Timestamp   time.Time // corrected event time (UTC)
	ReceivedAt  time.Time // server receive time (UTC)
	Flags       int
	Format      int // FormatVersion at write time
	Signals     Signals
	// Raw is the event as received, with the batch-level context and
	// integrations merged in. It is kept byte for byte for forwarding and
	// exact replay.
	Raw json.RawMessage
}

// Quarantined is an event that failed validation inside an otherwise good
// request. It is kept with its reason until it is replayed or discarded.
type Quarantined struct {
	ID         int64 // assigned by the store
	Workspace  string
	Source     string
	MessageID  string // as sent, may be empty
	ReceivedAt time.Time
	Code       string // stable reason code, e.g. "missing_identity"
	Reason     string // human-readable reason
	Signals    Signals
	Raw        json.RawMessage // the event as received (may be invalid JSON object content but is valid JSON)
}

// Batch is the unit of one durable write: events to append and failed
// events to quarantine, committed together or not at all.
type Batch struct {
	Events     []Event
	Quarantine []Quarantined
}

// Appended reports what happened to one event of a Batch, in the same order.
type Appended struct {
	Position  int64 // the event's position, or the original's when Duplicate
	Duplicate bool  // the workspace already held this messageId within the dedup window
}

// LogQuery selects events from one workspace's log. Zero fields do not filter.
type LogQuery struct {
	Workspace   string
	After       int64   // return events with Position > After
	Before      int64   // if > 0, return events with Position < Before (for paging backwards)
	Positions   []int64 // if set, only events at these positions (at most 1000)
	Limit       int     // at most this many (backends cap it at 1000; 0 means 100)
	Descending  bool    // newest first
	Source      string
	Type        string
	Name        string
	UserID      string
	AnonymousID string
	Since       time.Time // Timestamp >= Since
	Until       time.Time // Timestamp < Until
}

// QuarantineQuery selects quarantined events of one workspace.
type QuarantineQuery struct {
	Workspace string
	After     int64 // ID > After
	Limit     int
	Code      string
}

// Log is the durable, ordered, per-workspace event log.
type Log interface {
	// Append commits the batch in one transaction, fsynced before it
	// returns. Events whose (Workspace, MessageID) was already stored within
	// dedupWindow are not stored again: they are reported as Duplicate with
	// the original position. A dedupWindow <= 0 sets no limit: a messageId is
	// a duplicate for as long as the store remembers it (until PruneDedup
	// forgets it). Duplicates inside one batch are stored once.
	// Append fills Position on the batch's events. A concurrent Append of the
	// same messageId waits for the first to commit and then reports Duplicate.
	Append(ctx context.Context, b *Batch, dedupWindow time.Duration) ([]Appended, error)
	// Read returns events matching q in position order.
	Read(ctx context.Context, q LogQuery) ([]Event, error)
	// Head returns the highest visible position of a workspace (0 if empty).
	Head(ctx context.Context, workspace string) (int64, error)
	// DeleteBefore removes events received before t except those whose type
	// is in keepTypes (identity-bearing and control events). It returns the
	// number removed.
	DeleteBefore(ctx context.Context, workspace string, t time.Time, keepTypes []string) (int64, error)
	// PruneDedup forgets messageIds received before t.
	PruneDedup(ctx context.Context, t time.Time) (int64, error)

	// ListQuarantine pages through quarantined events by ascending ID.
	ListQuarantine(ctx context.Context, q QuarantineQuery) ([]Quarantined, error)
	// GetQuarantined returns one quarantined event, or ErrNotFound.
	GetQuarantined(ctx context.Context, workspace string, id int64) (Quarantined, error)
	// ReplayQuarantined appends b and deletes quarantined event id in one
	// transaction (ErrNotFound if id is gone, so a replay happens once).
	ReplayQuarantined(ctx context.Context, workspace string, id int64, b *Batch, dedupWindow time.Duration) ([]Appended, error)
	// DeleteQuarantined discards one quarantined event (ErrNotFound if absent).
	DeleteQuarantined(ctx context.Context, workspace string, id int64) error
}

// Workspace is a tenant: its own log, sources, tokens and settings.
type Workspace struct {
	Slug     string
	Settings json.RawMessage // workspace options as JSON (retention, dedup window, ...)
}

// Source is a place events come from, identified by its write key.
type Source struct {
	Workspace string
	Slug      string
	// KeyHash is HMAC-SHA-256(server secret, write key). The key itself is
	// never stored.
	KeyHash  []byte
	Settings json.RawMessage // allowed origins, rate limit, ...
	// PrevKeyHash is the hash of the write key the source had before its
	// last rotation, still accepted until PrevUntil; nil when there is none.
	PrevKeyHash []byte
	PrevUntil   time.Time
	// ConfigHash is the hash of the write key the config file declared
	// when it was last applied (nil for a source not from the file): a
	// key rotated since then is kept as long as the file's value does not
	// change.
	ConfigHash []byte
}

// Token is an access token for the read and admin APIs.
type Token struct {
	Workspace string
	Name      string
	Hash      []byte // HMAC-SHA-256(server secret, token)
	Scopes    []string
	// PrevHash is the hash the token had before its last rotation, still
	// accepted until PrevUntil; nil when there is none.
	PrevHash  []byte
	PrevUntil time.Time
	// ConfigHash is the hash of the token the config file declared when it
	// was last applied (nil for a token not from the file); see Source.
	ConfigHash []byte
}

// Registry holds workspaces, sources, tokens and server metadata.
type Registry interface {
	Definitions // of computed traits and audiences (compute.go)

	// Meta returns a server-wide value (ErrNotFound if unset).
	Meta(ctx context.Context, key string) ([]byte, error)
	// SetMetaIfAbsent stores value under key unless a value exists, and
	// returns the value now stored (so concurrent nodes agree on one).
	SetMetaIfAbsent(ctx context.Context, key string, value []byte) ([]byte, error)

	PutWorkspace(ctx context.Context, w Workspace) error
	Workspaces(ctx context.Context) ([]Workspace, error)
	PutSource(ctx context.Context, s Source) error
	// AddSource stores s unless its workspace already has a source of that
	// slug, and reports whether it stored it (so that of several nodes
	// creating the same source at once, exactly one does).
	AddSource(ctx context.Context, s Source) (bool, error)
	Sources(ctx context.Context) ([]Source, error)
	DeleteSource(ctx context.Context, workspace, slug string) error
	PutToken(ctx context.Context, t Token) error
	Tokens(ctx context.Context) ([]Token, error)
	DeleteToken(ctx context.Context, workspace, name string) error
	// RotateToken gives a token a new hash in one statement: the current
	// hash becomes its previous one, accepted until prevUntil, or is
	// dropped when prevUntil is zero (ErrNotFound if there is no such
	// token). RotateWriteKey does the same for a source's write key.
	RotateToken(ctx context.Context, workspace, name string, hash []byte, prevUntil time.Time) error
	RotateWriteKey(ctx context.Context, workspace, slug string, hash []byte, prevUntil time.Time) error
}

// Durability describes the settings that make a commit durable.
type Durability struct {
	Backend  string            // "sqlite" or "postgres"
	Settings map[string]string // e.g. journal_mode=wal, synchronous=full
}

// Stats are cumulative counters a backend keeps for /metrics.
type Stats struct {
	Commits int64 // committed write transactions (each one an fsync)
}

// Store is everything a backend provides.
type Store interface {
	Log
	Registry
	State
	AuditLog // audit.go
	PrivacyStore
	RequestStore // request.go
	// CheckDurability verifies the durability settings and returns them; it
	// fails if a commit would not be fsynced before returning.
	CheckDurability(ctx context.Context) (Durability, error)
	Stats() Stats
	// Ping reports whether the store can serve requests (for /readyz).
	Ping(ctx context.Context) error
	Close() error
}

// PageSize applies the default (100) and the cap (1000) to a page limit, as
// every backend does for LogQuery.Limit and QuarantineQuery.Limit.
func PageSize(limit int) int {
	switch {
	case limit <= 0:
		return 100
	case limit > 1000:
		return 1000
	}
	return limit
}

// Errors callers branch on.
var (
	ErrNotFound = errors.New("not found")
)
