package store

import (
	"context"
	"encoding/json"
	"errors"
	"time"
)

// This file is the contract for derived state: what the processor computes
// by folding a workspace's log (identity graph, profiles, traits, timelines,
// account links) and what the Profile API reads. Every row here is a
// function of the log and the configuration, so a replay may delete it all
// and rebuild it.

// Identifier is one normalized identifier a person or account leaves, e.g.
// {user_id, 42}, {email, ada@example.com}, {anonymous_id, 5f1c…},
// {ios.idfa, …}, {group_id, acme}.
type Identifier struct {
	Type  string `json:"type"`
	Value string `json:"value"`
}

// String formats the identifier as the Profile API writes it: "type:value".
func (id Identifier) String() string { return id.Type + ":" + id.Value }

// ProfileID identifies a profile within a workspace. IDs are allocated in
// order by the processor, so a replay allocates the same ones; a merge keeps
// the older (smaller) id.
type ProfileID int64

// Profile kinds.
const (
	KindUser    = "user"
	KindAccount = "account" // a group (company, household), keyed by group_id
)

// Lease grants one owner the right to fold one workspace's log. Epoch grows
// by one each time the lease changes hands; a Commit under an older epoch
// fails, so a paused former leader cannot commit after a takeover.
type Lease struct {
	Workspace     string
	Owner         string
	Epoch         int64
	Position      int64     // the cursor: every event up to here is folded
	NextProfileID ProfileID // the next id the processor will allocate
	Until         time.Time // the lease expires then unless renewed
}

// HeldIdentifier records that a profile holds an identifier.
type HeldIdentifier struct {
	Identifier
	Profile  ProfileID
	Position int64     // log position of the event that added it
	AddedAt  time.Time // that event's receivedAt (identity limit windows count on it)
}

// Merge records that profile From was merged into profile Into because an
// event (at Position) carried identifier Via held by both sides.
type Merge struct {
	Into     ProfileID
	From     ProfileID
	Via      Identifier
	Position int64
	At       time.Time // receivedAt of the event
}

// Decision records an identity decision that did not simply attach an
// identifier: an identifier dropped because it is blocked, because keeping it
// would exceed a limit or a cap, and so on. Kept so an admin can see why.
type Decision struct {
	Position   int64
	Profile    ProfileID // the profile the event went to (0 if none)
	Identifier Identifier
	Code       string // stable: "blocked", "limit", "cap_identifiers", "cap_merges", ...
	Reason     string // human-readable
	At         time.Time
}

// ProfileDelta updates a profile's summary. Commit creates the profile if
// it does not exist; FirstSeen keeps the minimum, LastSeen the maximum, and
// Events is added to the count.
type ProfileDelta struct {
	ID        ProfileID
	Kind      string // KindUser or KindAccount
	FirstSeen time.Time
	LastSeen  time.Time
	Events    int64
}

// TraitValue is one value of one trait set by one event. Every TraitValue
// committed is kept in the trait history; it becomes the profile's current
// value when it wins against the held one: higher Priority first, then later
// Timestamp, then higher Position. This order does not depend on the order
// of commits, so batches may coalesce freely.
type TraitValue struct {
	Profile   ProfileID
	Key       string
	Value     json.RawMessage // JSON; null clears the trait
	Timestamp time.Time       // the event's corrected timestamp
	Source    string          // source slug
	Priority  int             // the source's trait priority (higher wins); 0 by default
	Position  int64
}

// TimelineEntry adds an event (by log position) to a profile's timeline.
type TimelineEntry struct {
	Profile  ProfileID
	Position int64
}

// Link ties a user profile to an account profile (from a group call).
type Link struct {
	User     ProfileID
	Account  ProfileID
	Position int64
	At       time.Time
}

// Changes is what folding one batch of a workspace's log changed. Commit
// applies it in one transaction, together with moving the cursor from From
// to To, and only if the lease's epoch is still current and the cursor is
// still at From.
//
// Commit first deletes everything the Rebuilt profiles hold (their events
// are folded again in this batch, after an admin's correction). Then it
// applies Merges, in order: each moves everything From holds
// (identifiers, traits, history, timeline, links, counts) to Into and marks
// From as merged into Into. Every other field refers to profiles by their
// ids after the batch's merges.
type Changes struct {
	Workspace     string
	Epoch         int64
	From, To      int64
	NextProfileID ProfileID

	Rebuilt     []ProfileID
	Merges      []Merge
	Identifiers []HeldIdentifier // upserted: an identifier moves to the given profile
	Removed     []Identifier     // identifiers no profile holds any more
	Profiles    []ProfileDelta
	Traits      []TraitValue
	Timeline    []TimelineEntry
	Links       []Link
	Decisions   []Decision
	Block       []Identifier // identifiers an admin blocked
	Unblock     []Identifier // identifiers an admin unblocked

	Compute ComputeChanges // computed traits and audiences (compute.go)
}

// Profile is a profile's summary as the Profile API shows it.
type Profile struct {
	ID         ProfileID
	Kind       string
	FirstSeen  time.Time
	LastSeen   time.Time
	Events     int64
	MergedInto ProfileID // non-zero when this id was merged away; read that one
}

// Trait is a profile's current value of one trait and where it came from.
type Trait struct {
	Key       string
	Value     json.RawMessage
	Timestamp time.Time
	Source    string
	Position  int64
}

// ProfileSearch finds profiles of one kind. Exactly one way of searching
// is set: Identifier, TraitKey with TraitValue (exact) or TraitPrefix, or
// Text (prefix of a word of the name or email, case-insensitive).
type ProfileSearch struct {
	Workspace   string
	Kind        string
	Identifier  *Identifier
	TraitKey    string
	TraitValue  json.RawMessage
	TraitPrefix string
	Text        string
	After       ProfileID // paging: return ids > After, ascending
	Limit       int       // PageSize applies
}

// State is the derived state of every workspace.
type State interface {
	ComputeStore // computed traits, audiences and the outbox (compute.go)
	DeliveryStore

	// AcquireLease takes the lease on a workspace for owner, or renews it
	// when owner holds it. A free or expired lease is taken with Epoch+1.
	// It fails with ErrLeaseHeld while another owner's lease is valid.
	AcquireLease(ctx context.Context, workspace, owner string, ttl time.Duration) (Lease, error)
	// ReleaseLease gives up a lease so another owner can take it at once.
	ReleaseLease(ctx context.Context, l Lease) error
	// Commit applies c and moves the cursor (see Changes). It fails with
	// ErrLeaseLost if c.Epoch is not the current epoch or the cursor is not
	// at c.From; nothing is written then.
	Commit(ctx context.Context, c *Changes) error
	// Reset deletes all derived state of a workspace and moves its cursor to
	// 0 (for a full replay); it needs the current lease epoch.
	Reset(ctx context.Context, workspace string, epoch int64) error
	// Cursors returns every workspace's cursor position (for the lag metric).
	Cursors(ctx context.Context) (map[string]int64, error)

	// ScanIdentifiers calls fn for every identifier held in the workspace,
	// in no particular order (to load the identity graph into memory).
	ScanIdentifiers(ctx context.Context, workspace string, fn func(HeldIdentifier) error) error
	// ScanBlocked calls fn for every identifier an admin blocked.
	ScanBlocked(ctx context.Context, workspace string, fn func(Identifier) error) error
	// ScanMergeCounts calls fn with the number of merges into each profile
	// that has any (the identity graph's merge caps need them).
	ScanMergeCounts(ctx context.Context, workspace string, fn func(ProfileID, int) error) error

	// Lookup returns the profile holding an identifier, or ErrNotFound.
	Lookup(ctx context.Context, workspace string, id Identifier) (ProfileID, error)
	// Profile returns a profile's summary, or ErrNotFound.
	Profile(ctx context.Context, workspace string, id ProfileID) (Profile, error)
	// Traits returns a profile's current traits ordered by key; keys, if not
	// empty, limits them to those keys.
	Traits(ctx context.Context, workspace string, id ProfileID, keys []string) ([]Trait, error)
	// TraitHistory returns the values a trait has had, newest first, after
	// (in that order) the entry at position before when before > 0.
	TraitHistory(ctx context.Context, workspace string, id ProfileID, key string, before int64, limit int) ([]TraitValue, error)
	// Identifiers returns the identifiers a profile holds, by type and value.
	Identifiers(ctx context.Context, workspace string, id ProfileID) ([]HeldIdentifier, error)
	// Timeline returns positions of a profile's events, newest first, below
	// before when before > 0.
	Timeline(ctx context.Context, workspace string, id ProfileID, before int64, limit int) ([]int64, error)
	// Links returns the links of a profile: its accounts for a user, its
	// users for an account.
	Links(ctx context.Context, workspace string, id ProfileID) ([]Link, error)
	// Merges returns the merges into a profile, oldest first.
	Merges(ctx context.Context, workspace string, id ProfileID) ([]Merge, error)
	// Decisions returns identity decisions, newest first, below position
	// before when before > 0.
	Decisions(ctx context.Context, workspace string, before int64, limit int) ([]Decision, error)
	// Search pages through profiles matching s.
	Search(ctx context.Context, s ProfileSearch) ([]Profile, error)
}

// TypeIdentity is the type of the control events that correct the identity
// graph. Their JSON is {"action": "block"|"unblock"|"remove", "identifier":
// {"type", "value"}, "actor": token name}: block ignores the identifier from
// then on and rebuilds the profile that held it; remove detaches it from its
// profile, which is rebuilt without it, while later events may link it
// again; unblock ends a block.
const TypeIdentity = "kith.identity"

// Errors of the State contract.
var (
	ErrLeaseHeld = errors.New("lease held by another owner")
	ErrLeaseLost = errors.New("lease lost or cursor moved")
)

// TypePrivacy is the type of the control events that record what a person
// or an admin decided about a profile's data: consent, correction,
// restriction, objection, personal terms, erasure, suppression. Their JSON
// is a privacy.Command. Like TypeIdentity events, they are folded in order,
// so a replay reproduces each decision at the point it was made instead of
// undoing it.
const TypePrivacy = "kith.privacy"
