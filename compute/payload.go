package compute

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"time"

	"github.com/kithcdp/kith/store"
)

// Outbox events have the shape Segment's Engage sends to destinations: a
// track call "Audience Entered" or "Audience Exited" with the audience's key
// as a property set to true or false, and context.personas naming the
// computation.
type outboxEvent struct {
	Type        string                     `json:"type"`
	Event       string                     `json:"event,omitempty"`
	MessageID   string                     `json:"messageId"`
	UserID      string                     `json:"userId,omitempty"`
	AnonymousID string                     `json:"anonymousId,omitempty"`
	Timestamp   string                     `json:"timestamp"`
	Properties  map[string]any             `json:"properties,omitempty"`
	Traits      map[string]json.RawMessage `json:"traits,omitempty"`
	Context     outboxEventCtxt            `json:"context"`
}

type outboxEventCtxt struct {
	GroupID  string            `json:"groupId,omitempty"` // an account's group_id
	Traits   map[string]string `json:"traits,omitempty"`
	Personas map[string]any    `json:"personas"`
	Library  map[string]string `json:"library"`
}

// outboxEntry makes the outbox entry for a membership change. Its
// messageId is derived from the entry's identity, so a replay that makes
// the same decision makes the same event.
func (e *Engine) outboxEntry(p store.ProfileID, name string, entered bool, reason string, position int64, at time.Time) store.OutboxEntry {
	kind, event := store.OutboxAudienceExited, "Audience Exited"
	if entered {
		kind, event = store.OutboxAudienceEntered, "Audience Entered"
	}
	ev := outboxEvent{
		Type: "track", Event: event,
		MessageID: messageID(e.o.Workspace, kind, position, p, name),
		Timestamp: at.UTC().Format(time.RFC3339Nano),
		Properties: map[string]any{
			"audience_key": name,
			name:           entered,
			"kith_id":      int64(p),
			"reason":       reason,
		},
		Context: outboxEventCtxt{
			Personas: map[string]any{
				"computation_class": "audience",
				"computation_key":   name,
				"space_id":          e.o.Workspace,
			},
			Library: map[string]string{"name": "kith-compute"},
		},
	}
	e.identify(p, &ev)
	payload, _ := json.Marshal(ev) // maps of strings, bools and numbers: cannot fail
	return store.OutboxEntry{
		Workspace: e.o.Workspace, Kind: kind, Profile: p, Position: position,
		Key: name, Payload: payload, At: at,
	}
}

// traitEntry makes the outbox entry for a computed trait's new value: an
// identify call with the trait (null when it has no value any more), as
// Segment's Engage syncs computed traits.
func (e *Engine) traitEntry(p store.ProfileID, name string, v json.RawMessage, position int64, at time.Time) store.OutboxEntry {
	if v == nil {
		v = json.RawMessage("null")
	}
	ev := outboxEvent{
		Type:      "identify",
		MessageID: messageID(e.o.Workspace, store.OutboxTraitChanged, position, p, name),
		Timestamp: at.UTC().Format(time.RFC3339Nano),
		Traits:    map[string]json.RawMessage{name: v},
		Context: outboxEventCtxt{
			Personas: map[string]any{"computation_class": "trait", "computation_key": name, "space_id": e.o.Workspace},
			Library:  map[string]string{"name": "kith-compute"},
		},
	}
	e.identify(p, &ev)
	payload, _ := json.Marshal(ev)
	return store.OutboxEntry{
		Workspace: e.o.Workspace, Kind: store.OutboxTraitChanged, Profile: p, Position: position,
		Key: name, Payload: payload, At: at,
	}
}

func messageID(ws, kind string, position int64, p store.ProfileID, key string) string {
	sum := sha256.Sum256(fmt.Appendf(nil, "%s\x00%s\x00%d\x00%d\x00%s", ws, kind, position, p, key))
	return "kith-" + hex.EncodeToString(sum[:16])
}

// identify fills an outbox event's userId, anonymousId, groupId and email
// from the profile's identifiers.
func (e *Engine) identify(p store.ProfileID, ev *outboxEvent) {
	if e.o.Identifiers != nil {
		for _, h := range e.o.Identifiers(p) {
			switch h.Type {
			case "user_id":
				if ev.UserID == "" {
					ev.UserID = h.Value
				}
			case "anonymous_id":
				if ev.AnonymousID == "" {
					ev.AnonymousID = h.Value
				}
			case "group_id":
				ev.Context.GroupID = h.Value
			case "email":
				if ev.Context.Traits == nil {
					ev.Context.Traits = map[string]string{"email": h.Value}
				}
			}
		}
	}
}
