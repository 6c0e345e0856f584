package store

import (
	"context"
	"time"
)

// This file is the contract for the privacy features' storage: physical
// erasure of one person's data from every place it lands, and the
// suppression list that keeps re-sent data about an erased person out.

// Erasure names what to erase in one workspace.
type Erasure struct {
	Workspace string
	// Profiles are erased whole: their rows in every derived table
	// (profiles, identifiers, traits and their history, search terms,
	// timeline, links both ways, merges into and from them, decisions,
	// computed states and values, audience memberships and their history,
	// outbox entries), their delivery ledger rows and dead letters, and
	// the log events at the positions of their timelines.
	Profiles []ProfileID
	// Identifiers are also searched for where no profile id is kept:
	// quarantined events and dead letters whose JSON holds one of the
	// values (as a JSON string) are erased too.
	Identifiers []Identifier
	// Positions are further log events to erase: the control event that
	// asked for the erasure, which names the person.
	Positions []int64
}

// ErasureReport counts what Erase deleted, per place.
type ErasureReport struct {
	Events      int64 // log events
	Quarantined int64
	State       int64 // rows of derived state, all tables together
	Outbox      int64
	DeadLetters int64
	Ledger      int64
}

// Suppression is an entry of a workspace's suppression list: a keyed
// digest (HMAC-SHA-256 under the server secret) of an identifier — never
// the value — whose events are dropped at ingestion (answered 200, stored
// nowhere) until it is unsuppressed.
type Suppression struct {
	Workspace string
	Digest    []byte
	Reason    string // e.g. "erasure", "regulation SUPPRESS_ONLY"; no personal data
	At        time.Time
}

// PrivacyStore is implemented by every backend's Store.
type PrivacyStore interface {
	// Erase physically deletes e's data. It is idempotent: running it again
	// after a crash finishes the work. It finds the log events through the
	// profiles' timelines, so it erases the events folded so far: the
	// caller stops the person's new events first (the suppression list)
	// and lets the processor fold the log up to its head. Identifiers an
	// admin blocked (State.ScanBlocked) stay blocked, and the control
	// events in the log that name them stay. On SQLite it runs with
	// secure_delete, so freed pages hold no old data; on PostgreSQL the
	// tables it deleted from are vacuumed afterwards, so the old row
	// versions do not linger in the heap.
	Erase(ctx context.Context, e Erasure) (ErasureReport, error)
	// Suppress adds entries to the suppression list (an existing digest
	// keeps its first entry).
	Suppress(ctx context.Context, entries []Suppression) error
	// Unsuppress removes digests from a workspace's list and reports how
	// many it removed.
	Unsuppress(ctx context.Context, workspace string, digests [][]byte) (int64, error)
	// ScanSuppressed calls fn for every entry of a workspace's list (to
	// load it into memory for the ingestion check).
	ScanSuppressed(ctx context.Context, workspace string, fn func(Suppression) error) error
}
