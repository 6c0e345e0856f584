package store

import (
	"context"
	"encoding/json"
	"time"
)

// This file is the contract for what the compute engine (package compute)
// derives while the processor folds the log: the maintained state of
// computed traits and of audiences' event conditions, the values they give,
// audience memberships with their history, and the outbox of events for
// activation. Like the rest of the derived state, all of it is written by
// State.Commit in the batch's transaction. A replay rebuilds all of it but
// the outbox: Reset keeps the outbox, and the replay's entries, having the
// identities of the ones already there, are not appended again.
//
// Definitions of computed traits and audiences are configuration, not
// derived state: they live in the Registry (Definitions).

// ComputeState is the maintained state of one computed trait (or of one
// event condition of an audience) on one profile: bytes that package trait
// encodes and decodes. Key names the maintained counter (a definition's
// key and version).
type ComputeState struct {
	Profile ProfileID
	Key     string
	Data    []byte // nil deletes the row
}

// ComputedValue is a profile's current value of a computed trait, or of an
// audience's boolean trait (true while the profile is a member). The
// Profile API shows them among the profile's traits, with source
// "computed".
type ComputedValue struct {
	Profile  ProfileID
	Name     string
	Value    json.RawMessage // JSON; nil deletes the row
	At       time.Time       // when the value was computed
	Position int64           // the log position folded when it was computed
}

// AudienceChange records a profile entering or leaving an audience.
type AudienceChange struct {
	Audience string
	Profile  ProfileID
	Entered  bool
	Reason   string    // "evaluated", "expired" (time passed), "merged", "removed" (definition deleted)
	At       time.Time // when it was decided
	Position int64     // the event that caused it, or the cursor when time did
}

// Outbox kinds.
const (
	OutboxAudienceEntered = "audience_entered"
	OutboxAudienceExited  = "audience_exited"
	OutboxTraitChanged    = "trait_changed" // a computed trait's value changed (an identify call with it)
	// OutboxConsentChanged: a profile's consent changed while it is in
	// audiences. Its payload is {"exits": {audience: the Audience Exited
	// call}}: the delivery engine sends those exits to the destinations
	// that received the person and that the new consent now denies.
	OutboxConsentChanged = "consent_changed"
)

// OutboxEntry is one item for activation (destinations read the outbox).
// (Kind, Position, Profile, Key) identify it within its workspace: a replay
// that makes the same decision at the same position makes an entry with
// the same identity, so deliveries derived from it keep their idempotency
// key.
type OutboxEntry struct {
	ID        int64  // assigned by Commit, increasing per workspace (ReadOutbox returns it; Commit leaves the Changes as they are)
	Workspace string // set by ReadOutbox; Commit writes to the Changes' workspace
	Kind      string // OutboxAudienceEntered, ...
	Profile   ProfileID
	Position  int64
	Key       string          // what the entry is about, e.g. the audience's key
	Payload   json.RawMessage // a Segment-format event (e.g. track "Audience Entered")
	At        time.Time
}

// ComputeChanges is the compute engine's part of a Changes.
//
// Commit applies them after the rest of the batch (so after Rebuilt and
// Merges). Rebuilt profiles lose their ComputeState and ComputedValue rows
// before (the engine writes them again) but keep their audience
// memberships: the engine re-evaluates them and records only real changes.
// Merges do not move compute rows: the engine writes the merged state to
// the surviving profile and deletes the other's explicitly.
//
// Every list applies in order, so that a batch has the effect of its
// changes committed one by one, however the processor cuts batches: of
// several States or Values of one row the last wins, and Audiences replay
// membership changes in order. An entry of a profile that is already a
// member keeps the membership as it is (its since), and an exit of a
// profile that is not a member changes no membership; both are kept in the
// history all the same.
type ComputeChanges struct {
	States    []ComputeState   // upserted by (Profile, Key); nil Data deletes
	Values    []ComputedValue  // upserted by (Profile, Name); nil Value deletes
	Audiences []AudienceChange // membership set or cleared, and kept as history
	Outbox    []OutboxEntry    // appended, IDs assigned in order, unless an entry of the same identity exists
}

// Empty reports whether there is nothing to write.
func (c *ComputeChanges) Empty() bool {
	return len(c.States) == 0 && len(c.Values) == 0 && len(c.Audiences) == 0 && len(c.Outbox) == 0
}

// AudienceSize is the number of members of an audience at the end of a day
// (UTC).
type AudienceSize struct {
	Day     time.Time
	Members int64
}

// ComputeStore is implemented by every backend's State; it is split out to
// keep the contract readable. Reset deletes all of it but the outbox. Every
// method reads one workspace's rows only; limits follow PageSize.
type ComputeStore interface {
	// ScanComputeStates calls fn for every ComputeState of the workspace
	// (to load the compute engine).
	ScanComputeStates(ctx context.Context, workspace string, fn func(ComputeState) error) error
	// ScanComputedValues calls fn for every ComputedValue of the workspace.
	ScanComputedValues(ctx context.Context, workspace string, fn func(ComputedValue) error) error
	// ScanTraits calls fn with the current value of each given trait key of
	// every profile that has one (a trait cleared by null has none).
	ScanTraits(ctx context.Context, workspace string, keys []string, fn func(ProfileID, Trait) error) error
	// ScanLinks calls fn for every user-account link of the workspace.
	ScanLinks(ctx context.Context, workspace string, fn func(Link) error) error
	// ScanMembers calls fn for every (audience, profile) membership.
	ScanMembers(ctx context.Context, workspace string, fn func(audience string, p ProfileID) error) error

	// ComputedValues returns a profile's computed values ordered by name.
	ComputedValues(ctx context.Context, workspace string, p ProfileID) ([]ComputedValue, error)
	// Members pages through an audience's members by ascending profile id,
	// after the given one.
	Members(ctx context.Context, workspace, audience string, after ProfileID, limit int) ([]ProfileID, error)
	// MemberCount returns the number of members of an audience.
	MemberCount(ctx context.Context, workspace, audience string) (int64, error)
	// AudienceHistory returns an audience's changes newest first; a non-zero
	// profile limits them to that profile; before > 0 pages (changes with a
	// smaller sequence than before, as returned in Seq).
	AudienceHistory(ctx context.Context, workspace, audience string, p ProfileID, before int64, limit int) ([]AudienceChangeEntry, error)
	// AudienceSizes returns the audience's size at the end of each of the
	// last days (UTC) up to and including now's, oldest first: for day D,
	// the entries minus the exits in its history with At before D+1's
	// midnight. days is capped at 366; days <= 0 returns none.
	AudienceSizes(ctx context.Context, workspace, audience string, days int, now time.Time) ([]AudienceSize, error)
	// ReadOutbox returns a workspace's outbox entries with ID > after, by ID.
	ReadOutbox(ctx context.Context, workspace string, after int64, limit int) ([]OutboxEntry, error)

	// AudienceOverlap returns the number of profiles that are members of
	// both audiences (of a with itself: its member count).
	AudienceOverlap(ctx context.Context, workspace, a, b string) (int64, error)
	// ProfileCount returns the number of profiles of a kind (KindUser or
	// KindAccount), not counting those merged into another.
	ProfileCount(ctx context.Context, workspace, kind string) (int64, error)
	// TraitLift returns the trait values (key and value) held by at least
	// minMembers members of an audience (at least 1), each with the number
	// of profiles of the kind (not merged) that hold it, ordered by how much
	// more often members hold the value than profiles of the kind do
	// (Members / Overall, descending), then by Members descending, key and
	// value; limit follows PageSize. Cleared (null) values are left out.
	TraitLift(ctx context.Context, workspace, audience, kind string, minMembers, limit int) ([]TraitLift, error)
}

// TraitLift is a trait value held by members of an audience, with how many
// members hold it and how many profiles of the audience's kind hold it
// (members included). The lift of the value is
// (Members / members of the audience) / (Overall / profiles of the kind).
type TraitLift struct {
	Key     string
	Value   json.RawMessage
	Members int64
	Overall int64
}

// AudienceChangeEntry is a stored AudienceChange with its sequence number
// (for paging).
type AudienceChangeEntry struct {
	Seq int64
	AudienceChange
}

// Definition kinds.
const (
	DefinitionTrait    = "trait"
	DefinitionAudience = "audience"
	// DefinitionIdentity holds a workspace's identity rules set through
	// the admin API (name "rules", body identity.Rules as JSON); they take
	// precedence over the config file's.
	DefinitionIdentity = "identity"
)

// Definition is a workspace's definition of a computed trait or of an
// audience, as JSON that package trait or audience parses. Origin tells
// where it came from: "config" (the config file, read-only through the
// API) or "api".
type Definition struct {
	Workspace string
	Kind      string // DefinitionTrait or DefinitionAudience
	Name      string
	Body      json.RawMessage
	Origin    string
	Version   int64 // grows by one on every change of Body
	UpdatedAt time.Time
}

// Definitions is implemented by every backend's Registry.
type Definitions interface {
	// PutDefinition stores d. A new definition gets Version 1. When a
	// definition of that workspace, kind and name exists with a different
	// Body, it is replaced and its Version grows by one; with the same Body
	// and Origin nothing changes; with the same Body and another Origin only
	// Origin changes. UpdatedAt is set on every change. Bodies are compared
	// and stored as compact JSON (whitespace does not make a change). A
	// deleted definition put again goes on from its last Version, so that
	// one (kind, name, Version), which keys the compute engine's state,
	// never names two bodies. It returns the definition as stored, and
	// fails on a Kind other than DefinitionTrait or DefinitionAudience, an
	// empty Workspace or Name, or a Body that is not JSON.
	PutDefinition(ctx context.Context, d Definition) (Definition, error)
	// DeleteDefinition removes a definition (ErrNotFound if absent).
	DeleteDefinition(ctx context.Context, workspace, kind, name string) error
	// Definitions returns a workspace's definitions ordered by kind and name.
	Definitions(ctx context.Context, workspace string) ([]Definition, error)
}
