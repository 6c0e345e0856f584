// Package destination delivers what Kith collects and computes — events,
// computed trait changes, audience entries and exits — to the tools that
// talk to customers.
//
// A Sender speaks one destination's protocol (a signed webhook, another
// Tracking API, a NATS JetStream subject, audience files for ad platforms).
// The delivery engine (package delivery) decides what each destination
// receives, in what order, with retries, dead letters and the consent
// gate; a Sender only sends a batch and says how it failed. The Senders
// that can delete a person's data on their side, for a data-subject
// erasure request, implement Deleter too (webhook, stream, export; not
// forward: the Tracking API has no delete call).
package destination

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/kithcdp/kith/identity"
	"github.com/kithcdp/kith/store"
)

// Delivery kinds: what a delivery carries.
const (
	KindEvent           = "event"                     // an event from the log
	KindTraitChanged    = store.OutboxTraitChanged    // a computed trait's value changed
	KindAudienceEntered = store.OutboxAudienceEntered // a profile entered an audience
	KindAudienceExited  = store.OutboxAudienceExited  // a profile left an audience
)

// Delivery is one item to send to one destination.
type Delivery struct {
	// Key is the idempotency key, stable across retries and replays:
	// derived from (destination, log position, kind, and what the item is
	// about). Senders pass it on (e.g. as the webhook-id).
	Key      string
	Kind     string
	Position int64
	Profile  store.ProfileID
	// Payload is the Segment-format JSON sent (after the destination's
	// mapping).
	Payload json.RawMessage
	// Audience is the audience's key for KindAudienceEntered/Exited.
	Audience string
	// Identifiers are the profile's identifiers the destination syncs
	// (Definition.IDSync), for senders that match people by them.
	Identifiers []store.Identifier
	At          time.Time // when the event was received or the change made
}

// Sender sends batches of deliveries to one destination. Send is called
// by one goroutine at a time.
type Sender interface {
	// Send delivers the batch, all or nothing as far as the peer says.
	// On failure it returns a *Error.
	Send(ctx context.Context, batch []Delivery) error
	// MaxBatch is the most deliveries Send takes at once (1: no batching).
	MaxBatch() int
	Close() error
}

// Error is a failed Send, classified for the delivery engine.
type Error struct {
	// Permanent failures disable the destination until an admin resumes
	// it (the credentials are wrong, the endpoint is gone: 401, 403, 410).
	Permanent bool
	// Reject means the peer refused this batch's content and a retry
	// cannot help (400, 413, 422): the engine splits the batch to find the
	// deliveries at fault and sends those to the dead letters.
	Reject bool
	// RetryAfter, if set, is how long the peer asked to wait.
	RetryAfter time.Duration
	Status     int // HTTP status, if any
	Msg        string
}

func (e *Error) Error() string {
	if e.Status != 0 {
		return fmt.Sprintf("status %d: %s", e.Status, e.Msg)
	}
	return e.Msg
}

// Duration is a time.Duration read from JSON as a Go duration string
// ("5s", "1m30s") or a number of seconds: the timeouts of destination
// configurations.
type Duration time.Duration

// UnmarshalJSON reads "5s" or 5.
func (d *Duration) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err == nil {
		v, err := time.ParseDuration(s)
		if err != nil {
			return fmt.Errorf("%q is not a duration like \"5s\"", s)
		}
		*d = Duration(v)
		return nil
	}
	var f float64
	if err := json.Unmarshal(b, &f); err != nil {
		return fmt.Errorf("%s is neither a duration like \"5s\" nor a number of seconds", b)
	}
	if f < 0 || f > 1e6 {
		return fmt.Errorf("%s seconds is out of range", b)
	}
	*d = Duration(f * float64(time.Second))
	return nil
}

// Deletion asks a destination to delete what it holds on one person, for
// a data-subject erasure request.
type Deletion struct {
	// Request is the data-subject request's id, stable across retries:
	// senders pass it on as the idempotency key.
	Request   string
	Workspace string
	Profile   store.ProfileID
	// Identifiers are every identifier the profile held when the request
	// was made (user_id, anonymous_id, email, …).
	Identifiers []store.Identifier
}

// Deleter is implemented by the Senders of destinations that can delete a
// person's data on their side. The request's status records, per
// destination, whether the deletion was sent, failed, or is not supported.
type Deleter interface {
	// Delete asks the destination to delete the person's data; on failure
	// it returns a *Error (retried unless Permanent or Reject).
	Delete(ctx context.Context, d Deletion) error
}

// KindDeletion is the kind senders give a deletion where a message names
// its kind (the stream's Kith-Kind header).
const KindDeletion = "deletion"

// Check reports what makes d unusable, as a Reject *Error: a deletion
// needs its request's id (the idempotency key) and at least one
// identifier to find the person by.
func (d Deletion) Check() error {
	switch {
	case d.Request == "":
		return &Error{Reject: true, Msg: "deletion without a request id"}
	case len(d.Identifiers) == 0:
		return &Error{Reject: true, Msg: "deletion " + d.Request + " names no identifier"}
	}
	for _, id := range d.Identifiers {
		if id.Type == "" || id.Value == "" {
			return &Error{Reject: true, Msg: "deletion " + d.Request + " has an identifier without a type or a value"}
		}
	}
	return nil
}

// Payload is the JSON message that asks a destination speaking Kith's
// Segment-format events (webhooks, streams) to delete a person:
//
//	{"type": "delete", "messageId": <request id>,
//	 "userId": <the first user_id>, "anonymousId": <the first anonymous_id>,
//	 "context": {"externalIds": [{"id", "type", "collection": "users", "encoding": "none"}, …],
//	             "traits": {"email": <the first email>, "phone": <the first phone>}}}
//
// externalIds lists every identifier, in Segment's shape; userId,
// anonymousId and the traits are left out when the person has none of
// that type. It fails as Check does.
func (d Deletion) Payload() (json.RawMessage, error) {
	if err := d.Check(); err != nil {
		return nil, err
	}
	type externalID struct {
		ID         string `json:"id"`
		Type       string `json:"type"`
		Collection string `json:"collection"`
		Encoding   string `json:"encoding"`
	}
	var msg struct {
		Type        string `json:"type"`
		MessageID   string `json:"messageId"`
		UserID      string `json:"userId,omitempty"`
		AnonymousID string `json:"anonymousId,omitempty"`
		Context     struct {
			ExternalIDs []externalID      `json:"externalIds"`
			Traits      map[string]string `json:"traits,omitempty"`
		} `json:"context"`
	}
	msg.Type, msg.MessageID = "delete", d.Request
	first := func(dst *string, v string) {
		if *dst == "" {
			*dst = v
		}
	}
	for _, id := range d.Identifiers {
		msg.Context.ExternalIDs = append(msg.Context.ExternalIDs, externalID{ID: id.Value, Type: id.Type, Collection: "users", Encoding: "none"})
		switch id.Type {
		case identity.UserID:
			first(&msg.UserID, id.Value)
		case identity.AnonymousID:
			first(&msg.AnonymousID, id.Value)
		case identity.Email, identity.Phone:
			if _, ok := msg.Context.Traits[id.Type]; !ok {
				if msg.Context.Traits == nil {
					msg.Context.Traits = map[string]string{}
				}
				msg.Context.Traits[id.Type] = id.Value
			}
		}
	}
	b, _ := json.Marshal(msg) // strings only: cannot fail
	return b, nil
}
