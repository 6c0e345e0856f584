package delivery

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"slices"
	"time"

	"github.com/kithcdp/kith/destination"
	"github.com/kithcdp/kith/identity"
	"github.com/kithcdp/kith/privacy"
	"github.com/kithcdp/kith/store"
)

// Privacy control events (store.TypePrivacy, a privacy.Command each) in
// the log are not delivered as events. They matter to delivery in two
// ways: a person's consent, restriction or objection applies to their
// deliveries from its place in the log (folded), and a correction is
// passed on to the destinations that received the person's data.

// folded returns the head of a page of the log up to its first privacy
// control event the processor has not folded yet: the gate reads a
// person's consent, restrictions and objections in the folded state, so
// the events after such a command wait until it is folded (the next step
// reads the page again). The caches hold the state at the folded position
// they were last checked at (cachedFold) or later, so the control events
// up to it are in them already; past it, the folded position is read
// again and the caches are emptied if it moved, so the gate reads the
// state the commands changed.
func (w *worker) folded(ctx context.Context, page []store.Event) ([]store.Event, error) {
	var last int64 // the position of the page's last control event
	for i := range page {
		if page[i].Type == store.TypePrivacy {
			last = page[i].Position
		}
	}
	if last == 0 {
		return page, nil
	}
	if w.owners == nil || last > w.cachedFold {
		cs, err := w.e.o.Store.Cursors(ctx)
		if err != nil {
			return nil, fmt.Errorf("read the folded position of %s: %w", w.ws, err)
		}
		w.refold(cs[w.ws])
	}
	for j := range page {
		if page[j].Type == store.TypePrivacy && page[j].Position > w.cachedFold {
			return page[:j], nil
		}
	}
	return page, nil
}

// corrects reports whether the destination receives corrections: it
// subscribes to identify calls (events.types is empty or names identify).
// A correction is Kith's own call, so the filter's sources, names and
// where, which select the calls of sources, do not apply to it.
func (w *worker) corrects() bool {
	return w.def.Events != nil && (len(w.def.Events.Types) == 0 || slices.Contains(w.def.Events.Types, "identify"))
}

// correction makes the item that passes a correction (privacy.ActionCorrect)
// on: an identify call of the profile that holds the command's identifier,
// with the corrected traits (see correctionPayload). It is made only when
// the destination received something about that profile — in the ledger,
// or earlier in this page (items) —; false for any other control event,
// or when no profile holds the identifier.
func (w *worker) correction(ctx context.Context, ev *store.Event, items []item) (item, bool, error) {
	var cmd privacy.Command
	if json.Unmarshal(ev.Raw, &cmd) != nil || cmd.Action != privacy.ActionCorrect || cmd.Validate() != nil {
		return item{}, false, nil
	}
	id, ok := w.rules.Normalize(cmd.Identifier)
	if !ok {
		return item{}, false, nil
	}
	p, err := w.holder(ctx, id, nil)
	if err != nil || p == 0 {
		return item{}, false, err
	}
	if ok, err := w.received(ctx, p, items, nil); err != nil || !ok {
		return item{}, false, err
	}
	held, err := w.e.o.Store.Identifiers(ctx, w.ws, p)
	if err != nil {
		return item{}, false, fmt.Errorf("identifiers of profile %d: %w", p, err)
	}
	return w.itemWith(destination.KindEvent, ev.Position, p, "", correctionPayload(w.ws, ev, &cmd, held), ev.ReceivedAt, held), true, nil
}

// received reports whether the destination received something about
// profile p: the ledger says so, or one of the items before it is p's.
// The ledger's answers are kept in known (when not nil), so a page reads
// a profile's ledger once.
func (w *worker) received(ctx context.Context, p store.ProfileID, items []item, known map[store.ProfileID]bool) (bool, error) {
	if slices.ContainsFunc(items, func(it item) bool { return it.d.Profile == p }) {
		return true, nil
	}
	if ok, in := known[p]; in {
		return ok, nil
	}
	ledger, err := w.e.o.Store.Ledger(ctx, w.ws, p)
	if err != nil {
		return false, fmt.Errorf("ledger of profile %d: %w", p, err)
	}
	ok := slices.ContainsFunc(ledger, func(e store.LedgerEntry) bool { return e.Destination == w.def.Name })
	if known != nil {
		known[p] = ok
	}
	return ok, nil
}

// correctionPayload is the identify call that passes a correction on:
//
//	{"type": "identify", "messageId": "kith-<hash of the workspace and position>",
//	 "userId": <the profile's first user_id>, "anonymousId": <its first anonymous_id>,
//	 "traits": {<the corrected traits; null clears one>},
//	 "context": {"kith": {"correction": true, "request": <the data-subject request, if any>}},
//	 "timestamp": …, "receivedAt": …}
//
// Its messageId is the same on every retry and replay, and for every
// destination.
func correctionPayload(ws string, ev *store.Event, cmd *privacy.Command, held []store.HeldIdentifier) json.RawMessage {
	type kith struct {
		Correction bool   `json:"correction"`
		Request    string `json:"request,omitempty"`
	}
	var call struct {
		Type        string                     `json:"type"`
		MessageID   string                     `json:"messageId"`
		UserID      string                     `json:"userId,omitempty"`
		AnonymousID string                     `json:"anonymousId,omitempty"`
		Traits      map[string]json.RawMessage `json:"traits"`
		Context     struct {
			Kith kith `json:"kith"`
		} `json:"context"`
		Timestamp  string `json:"timestamp"`
		ReceivedAt string `json:"receivedAt"`
	}
	h := sha256.Sum256(fmt.Appendf(nil, "%s\x00%d\x00correction", ws, ev.Position))
	call.Type, call.MessageID, call.Traits = "identify", "kith-"+hex.EncodeToString(h[:16]), cmd.Traits
	call.UserID, call.AnonymousID = firstHeld(held, identity.UserID), firstHeld(held, identity.AnonymousID)
	call.Context.Kith = kith{Correction: true, Request: cmd.Request}
	call.Timestamp = ev.Timestamp.UTC().Format(time.RFC3339Nano)
	call.ReceivedAt = ev.ReceivedAt.UTC().Format(time.RFC3339Nano)
	b, _ := json.Marshal(call) // the traits were valid JSON in the command: cannot fail
	return b
}

// firstHeld is the value of the first identifier of type typ the profile
// got ("" if none).
func firstHeld(held []store.HeldIdentifier, typ string) string {
	v, at := "", int64(0)
	for _, h := range held {
		if h.Type == typ && (v == "" || h.Position < at) {
			v, at = h.Value, h.Position
		}
	}
	return v
}
