package store

import (
	"context"
	"encoding/json"
	"time"
)

// This file is the contract for delivery to destinations (package
// delivery). A destination reads two ordered feeds — the workspace's log
// (events) and its outbox (computed trait changes, audience entries and
// exits) — through its own cursors, so a delivery costs no write until it
// is done; what is done moves the cursors, adds to the delivery ledger and
// appends dead letters, in one transaction that checks the destination's
// lease. Destination definitions are Definitions of kind
// DefinitionDestination.
//
// Delivery state is not derived state: it records what was sent, which the
// log cannot tell again. State.Reset leaves it alone — cursors, dead
// letters, the ledger and replays survive a replay of derived state — so a
// replay neither sends everything again nor forgets what was sent.

// DefinitionDestination is the Definition kind of destinations.
const DefinitionDestination = "destination"

// Destination statuses.
const (
	DestinationActive   = "active"
	DestinationPaused   = "paused"   // by an admin
	DestinationDisabled = "disabled" // by the engine after a permanent error (Reason says which)
)

// DeliveryCursor is a destination's progress and its lease: one node at a
// time delivers to a destination; Epoch grows each time the lease changes
// hands, and Progress under an older epoch fails with ErrLeaseLost.
type DeliveryCursor struct {
	Workspace   string
	Destination string
	Owner       string
	Epoch       int64
	Log         int64 // every log event up to this position is done
	Outbox      int64 // every outbox entry up to this ID is done
	Status      string
	Reason      string // why it is disabled or paused
	Until       time.Time
	UpdatedAt   time.Time
}

// DeadLetter is a delivery that failed for good: rejected by the peer or
// still failing when its retry time ran out.
type DeadLetter struct {
	ID          int64
	Workspace   string
	Destination string
	Key         string // the delivery's idempotency key
	Kind        string
	Position    int64
	Profile     ProfileID
	Payload     json.RawMessage
	Error       string // the last error
	Attempts    int
	FirstAt     time.Time // first attempt
	LastAt      time.Time // last attempt
	Replay      bool      // an admin asked to send it again
}

// LedgerEntry counts what a destination received about a profile on a day
// (UTC): the privacy features tell a person who received their data from
// it, and pass corrections and deletions on.
type LedgerEntry struct {
	Workspace   string
	Destination string
	Profile     ProfileID
	Day         time.Time // midnight UTC (Progress truncates it; a zero Day is Last's day)
	Deliveries  int64     // added by Progress
	Kinds       []string  // the kinds delivered that day, sorted (merged by Progress); a kind has no comma
	Last        time.Time // the last delivery's time
}

// Replay is an admin's request to send a range of past data to a
// destination again: log events received, and outbox entries made, in
// [Since, Until). Cursor is how far it got (a log position; the outbox
// part is done when OutboxCursor reaches the outbox's end at start).
type Replay struct {
	ID           int64
	Workspace    string
	Destination  string
	Since, Until time.Time
	Cursor       int64 // log position reached
	OutboxCursor int64 // outbox ID reached
	Done         bool
	CreatedAt    time.Time
}

// DeliveryProgress is what a batch of deliveries did. Progress applies it
// in one transaction, only if the lease's epoch is still current. Ledger
// entries and dead letters belong to its Workspace and Destination (their
// own fields are not read); ledger entries of one profile and day may
// repeat, and are added together.
type DeliveryProgress struct {
	Workspace   string
	Destination string
	Epoch       int64
	Log         int64 // new cursor positions (never moved back)
	Outbox      int64
	Ledger      []LedgerEntry
	Dead        []DeadLetter // appended
	Redelivered []int64      // dead letters sent on replay: deleted
	Replay      *Replay      // a replay's (by ID) new Cursor, OutboxCursor and Done (none moves back)
}

// DeliveryStore is implemented by every backend's State.
type DeliveryStore interface {
	// AcquireDelivery takes (or renews, for the same owner) the lease on a
	// destination; a free or expired lease is taken with Epoch+1. The first
	// time a destination's lease is taken, its cursors start at the given
	// positions (a new destination starts at the feeds' ends, not their
	// beginnings), also when SetDeliveryStatus created its row before.
	// Status and Reason are kept. ErrLeaseHeld while another owner's lease
	// is valid.
	AcquireDelivery(ctx context.Context, workspace, destination, owner string, ttl time.Duration, startLog, startOutbox int64) (DeliveryCursor, error)
	// ReleaseDelivery gives a lease up.
	ReleaseDelivery(ctx context.Context, c DeliveryCursor) error
	// Progress applies p (see DeliveryProgress); ErrLeaseLost if the epoch
	// moved on.
	Progress(ctx context.Context, p *DeliveryProgress) error
	// SetDeliveryStatus sets a destination's status (DestinationActive,
	// DestinationPaused or DestinationDisabled; others are an error) and
	// reason, creating its cursor row if needed (not started: see
	// AcquireDelivery).
	SetDeliveryStatus(ctx context.Context, workspace, destination, status, reason string) error
	// Deliveries returns the cursors of a workspace's destinations, by
	// destination.
	Deliveries(ctx context.Context, workspace string) ([]DeliveryCursor, error)
	// DeadLetters pages through a destination's dead letters with ID >
	// after, by ID; limit follows PageSize.
	DeadLetters(ctx context.Context, workspace, destination string, after int64, limit int) ([]DeadLetter, error)
	// MarkReplay flags dead letters to be sent again (all of the
	// destination's when ids is empty) and returns how many it flagged:
	// ids of other destinations, unknown ids and dead letters flagged
	// already are not counted.
	MarkReplay(ctx context.Context, workspace, destination string, ids []int64) (int64, error)
	// ReplayQueue returns flagged dead letters, by ID (limit follows
	// PageSize); Progress deletes them when they are Redelivered.
	ReplayQueue(ctx context.Context, workspace, destination string, limit int) ([]DeadLetter, error)
	// AddReplay records a range replay and returns it with its ID and
	// CreatedAt.
	AddReplay(ctx context.Context, r Replay) (Replay, error)
	// Replays returns a destination's replays that are not done, oldest
	// first.
	Replays(ctx context.Context, workspace, destination string) ([]Replay, error)
	// Ledger returns what each destination received about a profile, by
	// destination and day.
	Ledger(ctx context.Context, workspace string, p ProfileID) ([]LedgerEntry, error)
}
