package delivery

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"math/rand/v2"
	"slices"
	"sync/atomic"
	"time"

	"github.com/kithcdp/kith/compute"
	"github.com/kithcdp/kith/consent"
	"github.com/kithcdp/kith/destination"
	"github.com/kithcdp/kith/identity"
	"github.com/kithcdp/kith/secret"
	"github.com/kithcdp/kith/store"
)

// worker delivers to one destination while it holds the destination's
// lease. Each step reads a page of one feed (dead letters to replay, the
// log, the outbox, a range replay), sends what the destination receives
// in batches — retrying in place, so a destination's deliveries keep their
// order and a failing destination delays no other —, and records the
// outcome with the cursor in one transaction.
type worker struct {
	e      *Engine
	ws     string
	body   string // the definition as stored
	def    Definition
	match  matcher
	sender destination.Sender
	retry  time.Duration
	rules  *identity.Compiled
	cur    store.DeliveryCursor
	renew  time.Time

	lastErr atomic.Pointer[string] // the last send error, for the admin API (read by other goroutines)

	// sending holds a token while the sender is used — by a send, by a
	// deletion (Engine.Delete, from another goroutine, which gives up
	// waiting when its time is up), by closing it; closed says it was
	// closed.
	sending chan struct{}
	closed  bool

	// What the worker reads of the folded state for each item — the
	// profile holding an identifier, a profile's current consent — is
	// cached (see caches), so a page of events from people seen a moment
	// ago costs no query per event.
	owners     map[string]store.ProfileID
	consents   map[store.ProfileID]Consent
	blocked    map[store.ProfileID]string // profiles that receive nothing, and why (see gateValues)
	cachedAt   time.Time
	cachedFold int64 // the workspace's folded position when the caches were emptied
}

// Bounds of the worker's caches of profile state. While the workspace's
// folded position has not moved since the caches were emptied, the state
// they copy has not changed and they are exact; once it moves, entries are
// used for at most cacheTTL more (the same staleness as folding that lags
// by that much more). At most cacheMax entries are kept. Only found
// profiles are cached (an identifier not folded yet is looked up again),
// and a retry reads consent afresh, so a withdrawal always stops a
// delivery waiting in retries.
const (
	cacheTTL = 2 * time.Second
	cacheMax = 100000
)

// caches empties the caches when they may be stale or are full.
func (w *worker) caches(ctx context.Context) {
	if w.owners != nil && len(w.owners)+len(w.consents) <= cacheMax && time.Since(w.cachedAt) <= cacheTTL {
		return
	}
	fold := int64(-1) // unknown: empty them
	if cs, err := w.e.o.Store.Cursors(ctx); err == nil {
		fold = cs[w.ws]
	}
	w.refold(fold)
}

// refold records the workspace's folded position just read (-1 when
// unknown), emptying the caches unless it is the one they were checked at.
func (w *worker) refold(fold int64) {
	if w.owners == nil || fold < 0 || fold != w.cachedFold || len(w.owners)+len(w.consents) > cacheMax {
		w.owners, w.consents = map[string]store.ProfileID{}, map[store.ProfileID]Consent{}
		w.blocked = map[store.ProfileID]string{}
	}
	w.cachedAt, w.cachedFold = time.Now(), fold
}

// item is one delivery with what the gate needs.
type item struct {
	d      destination.Delivery
	event  Consent // the event's own consent (log events only)
	deadID int64   // the dead letter it replays, if any
	// withdrawn marks the exit of a consent change (store.OutboxConsentChanged):
	// sent only if the gate now denies the person to this destination.
	withdrawn bool
}

// outcome collects what a page's deliveries did.
type outcome struct {
	delivered []item
	dead      []store.DeadLetter
	filtered  int
}

// errStop ends delivery for now: the destination was disabled or paused,
// or the lease was lost.
type errStop struct{ reason string }

func (e *errStop) Error() string { return e.reason }

// run delivers until ctx ends.
func (w *worker) run(ctx context.Context) {
	o := &w.e.o
	defer w.close()
	for ctx.Err() == nil {
		n, err := w.lead(ctx)
		var stop *errStop
		switch {
		case ctx.Err() != nil:
			return
		case err == nil || errors.Is(err, store.ErrLeaseHeld) || errors.As(err, &stop):
		default:
			o.Logger.Warn("delivery stopped; retrying", "workspace", w.ws, "destination", w.def.Name, "err", err)
		}
		if n == 0 {
			sleep(ctx, o.Poll)
		}
	}
}

// close closes the sender once no deletion uses it.
func (w *worker) close() {
	w.sending <- struct{}{}
	defer func() { <-w.sending }()
	w.closed = true
	w.sender.Close()
}

// lead takes or renews the lease and delivers one page; it returns the
// number of items read.
func (w *worker) lead(ctx context.Context) (int, error) {
	if err := w.acquire(ctx); err != nil {
		return 0, err
	}
	w.e.m.status.WithLabelValues(w.ws, w.def.Name, store.DestinationActive).Set(b2f(w.cur.Status == store.DestinationActive))
	w.e.m.status.WithLabelValues(w.ws, w.def.Name, store.DestinationPaused).Set(b2f(w.cur.Status == store.DestinationPaused))
	w.e.m.status.WithLabelValues(w.ws, w.def.Name, store.DestinationDisabled).Set(b2f(w.cur.Status == store.DestinationDisabled))
	if w.cur.Status != store.DestinationActive {
		return 0, nil
	}
	for _, feed := range []func(context.Context) (int, error){w.replayDead, w.logFeed, w.outboxFeed, w.rangeReplay} {
		n, err := feed(ctx)
		if err != nil || n > 0 {
			return n, err
		}
	}
	return 0, nil
}

// acquire takes the lease, or renews it when a third of it has passed.
func (w *worker) acquire(ctx context.Context) error {
	o := &w.e.o
	if w.cur.Epoch != 0 && o.Now().Before(w.renew) {
		return nil
	}
	startLog := int64(0)
	if w.cur.Epoch == 0 {
		head, err := o.Store.Head(ctx, w.ws)
		if err != nil {
			return fmt.Errorf("read head of %s: %w", w.ws, err)
		}
		startLog = head
	}
	c, err := o.Store.AcquireDelivery(ctx, w.ws, w.def.Name, o.Owner, o.LeaseTTL, startLog, 0)
	if err != nil {
		w.cur.Epoch = 0
		return err
	}
	w.cur, w.renew = c, o.Now().Add(o.LeaseTTL/3)
	return nil
}

// logFeed delivers the next page of log events.
func (w *worker) logFeed(ctx context.Context) (int, error) {
	if w.def.Events == nil {
		return 0, nil
	}
	page, err := w.e.o.Store.Read(ctx, store.LogQuery{Workspace: w.ws, After: w.cur.Log, Limit: w.e.o.Page})
	if err != nil || len(page) == 0 {
		return 0, err
	}
	if page, err = w.folded(ctx, page); err != nil || len(page) == 0 {
		return 0, err
	}
	items, err := w.eventItems(ctx, page)
	if err != nil {
		return 0, err
	}
	out, err := w.deliver(ctx, items, false)
	if err != nil {
		return 0, err
	}
	return len(page), w.progress(ctx, out, &store.DeliveryProgress{Log: page[len(page)-1].Position, Outbox: w.cur.Outbox})
}

// eventItems turns log events the destination receives into items.
// Control events are not delivered as events: identity ones never, privacy
// ones only as the identify calls of corrections (see correction).
func (w *worker) eventItems(ctx context.Context, page []store.Event) ([]item, error) {
	var items []item
	w.caches(ctx)
	// The filter (a CEL condition, maybe) runs once per event.
	var sel []*store.Event
	corrects := w.corrects()
	for i := range page {
		ev := &page[i]
		switch ev.Type {
		case store.TypeIdentity:
		case store.TypePrivacy:
			if corrects {
				sel = append(sel, ev)
			}
		default:
			if w.match.match(ev) {
				sel = append(sel, ev)
			}
		}
	}
	absent := w.lookupPage(ctx, sel)
	cat := w.e.catalogue(w.ws)
	for _, ev := range sel {
		if ev.Type == store.TypePrivacy {
			it, ok, err := w.correction(ctx, ev, items)
			if err != nil {
				return nil, err
			}
			if ok {
				items = append(items, it)
			}
			continue
		}
		p, err := w.owner(ctx, ev, absent)
		if err != nil {
			return nil, err
		}
		it, err := w.item(ctx, destination.KindEvent, ev.Position, p, "", logged(ev), ev.ReceivedAt)
		if err != nil {
			return nil, err
		}
		if !w.def.StrictlyNecessary {
			it.event = eventConsentOf(cat, ev.Raw).withTCString(cat, ev.Raw)
			if ev.Signals.GPC {
				it.event = it.event.optOutOfSale(cat)
			}
		}
		items = append(items, it)
	}
	return items, nil
}

// pageReader is implemented by stores that read the folded state of a
// page's identifiers and profiles in one query each (sqlstate): on
// PostgreSQL a Lookup and a ComputedValues per new person, a round trip
// each, were a fifth of delivery's time.
type pageReader interface {
	LookupAll(ctx context.Context, workspace string, ids []store.Identifier) (map[store.Identifier]store.ProfileID, error)
	ComputedValuesOf(ctx context.Context, workspace string, profiles []store.ProfileID, names []string) (map[store.ProfileID][]store.ComputedValue, error)
}

// eventIDs returns the normalized userId and anonymousId of an event, in
// the order owner tries them (empty Type when absent or not valid).
func (w *worker) eventIDs(ev *store.Event) [2]store.Identifier {
	var out [2]store.Identifier
	for i, id := range []store.Identifier{{Type: identity.UserID, Value: ev.UserID}, {Type: identity.AnonymousID, Value: ev.AnonymousID}} {
		if id.Value == "" {
			continue
		}
		if n, ok := w.rules.Normalize(id); ok {
			out[i] = n
		}
	}
	return out
}

// lookupPage puts the profiles holding the identifiers of a page's events
// the destination receives (evs) that are not cached yet into the owners
// cache, in one query when the store can; it returns the identifiers no
// profile holds (owner does not look those up again), nil when the store
// cannot.
func (w *worker) lookupPage(ctx context.Context, evs []*store.Event) map[store.Identifier]bool {
	pr, ok := w.e.o.Store.(pageReader)
	if !ok {
		return nil
	}
	seen := map[store.Identifier]bool{}
	var ids []store.Identifier
	for _, ev := range evs {
		for _, n := range w.eventIDs(ev) {
			if n.Type == "" {
				continue
			}
			if _, ok := w.owners[n.String()]; ok {
				break // owner stops at a cached identifier
			}
			if !seen[n] {
				seen[n] = true
				ids = append(ids, n)
			}
		}
	}
	if len(ids) == 0 {
		return nil
	}
	found, err := pr.LookupAll(ctx, w.ws, ids)
	if err != nil {
		return nil // owner looks each up (and reports the error)
	}
	absent := map[store.Identifier]bool{}
	for _, n := range ids {
		if p, ok := found[n]; ok {
			w.owners[n.String()] = p
		} else {
			absent[n] = true
		}
	}
	return absent
}

// owner returns the profile holding an event's userId, else its
// anonymousId (0 when none does yet). Identifiers in absent were just
// found held by none.
func (w *worker) owner(ctx context.Context, ev *store.Event, absent map[store.Identifier]bool) (store.ProfileID, error) {
	for _, n := range w.eventIDs(ev) {
		if n.Type == "" {
			continue
		}
		if p, err := w.holder(ctx, n, absent); p != 0 || err != nil {
			return p, err
		}
	}
	return 0, nil
}

// holder returns the profile holding a normalized identifier (0 when none
// does yet), through the owners cache. Identifiers in absent were just
// found held by none.
func (w *worker) holder(ctx context.Context, n store.Identifier, absent map[store.Identifier]bool) (store.ProfileID, error) {
	if p, ok := w.owners[n.String()]; ok {
		return p, nil
	}
	if absent[n] {
		return 0, nil
	}
	p, err := w.e.o.Store.Lookup(ctx, w.ws, n)
	if errors.Is(err, store.ErrNotFound) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("look up %s: %w", n.Type, err)
	}
	w.owners[n.String()] = p
	return p, nil
}

// outboxFeed delivers the next page of outbox entries.
func (w *worker) outboxFeed(ctx context.Context) (int, error) {
	if len(w.def.Traits) == 0 && len(w.def.Audiences) == 0 {
		return 0, nil
	}
	page, err := w.e.o.Store.ReadOutbox(ctx, w.ws, w.cur.Outbox, w.e.o.Page)
	if err != nil || len(page) == 0 {
		return 0, err
	}
	items, err := w.outboxItems(ctx, page, time.Time{}, time.Time{})
	if err != nil {
		return 0, err
	}
	// An entry was written in the transaction that changed its profile's
	// values (a withdrawal or a restriction makes exits): the gate reads
	// them afresh, in one query per page, never from before the change.
	out, err := w.deliver(ctx, items, true)
	if err != nil {
		return 0, err
	}
	return len(page), w.progress(ctx, out, &store.DeliveryProgress{Log: w.cur.Log, Outbox: page[len(page)-1].ID})
}

// withdrawals turns a consent change (store.OutboxConsentChanged) into
// the exits, from the audiences the destination syncs, for the gate to
// send if the person's consent no longer allows the destination — only
// to a destination that received the person (known holds the page's
// ledger answers, see received).
func (w *worker) withdrawals(ctx context.Context, e store.OutboxEntry, known map[store.ProfileID]bool) ([]item, error) {
	if len(w.def.Audiences) == 0 {
		return nil, nil
	}
	var c struct {
		Exits map[string]json.RawMessage `json:"exits"`
	}
	if json.Unmarshal(e.Payload, &c) != nil {
		return nil, nil // written by compute: a bug, nothing to send
	}
	var items []item
	var held []store.HeldIdentifier // read once for the entry's exits
	for _, name := range slices.Sorted(maps.Keys(c.Exits)) {
		if !wants(w.def.Audiences, name) {
			continue
		}
		if len(items) == 0 {
			if ok, err := w.received(ctx, e.Profile, nil, known); err != nil || !ok {
				return nil, err
			}
			var err error
			if held, err = w.synced(ctx, e.Profile); err != nil {
				return nil, err
			}
		}
		it := w.itemWith(destination.KindAudienceExited, e.Position, e.Profile, name, c.Exits[name], e.At, held)
		it.d.Key = w.key(e.Position, destination.KindAudienceExited, fmt.Sprint(e.Profile), name)
		it.withdrawn = true
		items = append(items, it)
	}
	return items, nil
}

// outboxItems turns the outbox entries the destination receives (made in
// [since, until) when those are set) into items.
func (w *worker) outboxItems(ctx context.Context, page []store.OutboxEntry, since, until time.Time) ([]item, error) {
	var items []item
	known := map[store.ProfileID]bool{}
	for _, e := range page {
		if (!since.IsZero() && e.At.Before(since)) || (!until.IsZero() && !e.At.Before(until)) {
			continue
		}
		switch e.Kind {
		case store.OutboxConsentChanged:
			exits, err := w.withdrawals(ctx, e, known)
			if err != nil {
				return nil, err
			}
			items = append(items, exits...)
			continue
		case store.OutboxAudienceEntered, store.OutboxAudienceExited:
			if !wants(w.def.Audiences, e.Key) {
				continue
			}
		case store.OutboxTraitChanged:
			if !wants(w.def.Traits, e.Key) {
				continue
			}
		default:
			continue
		}
		audience := ""
		if e.Kind != store.OutboxTraitChanged {
			audience = e.Key
		}
		it, err := w.item(ctx, e.Kind, e.Position, e.Profile, audience, e.Payload, e.At)
		if err != nil {
			return nil, err
		}
		it.d.Key = w.key(e.Position, e.Kind, fmt.Sprint(e.Profile), e.Key)
		items = append(items, it)
	}
	return items, nil
}

// item makes a delivery: its key, the mapped payload and the synced
// identifiers.
func (w *worker) item(ctx context.Context, kind string, position int64, p store.ProfileID, audience string, payload []byte, at time.Time) (item, error) {
	held, err := w.synced(ctx, p)
	if err != nil {
		return item{}, err
	}
	return w.itemWith(kind, position, p, audience, payload, at, held), nil
}

// syncs reports whether the deliveries of profile p carry its identifiers
// (IDSync, or an audience export).
func (w *worker) syncs(p store.ProfileID) bool {
	return p != 0 && (w.def.IDSync != nil || w.def.Type == TypeAudienceExport)
}

// synced reads the identifiers profile p holds when its deliveries carry
// them (nil otherwise).
func (w *worker) synced(ctx context.Context, p store.ProfileID) ([]store.HeldIdentifier, error) {
	if !w.syncs(p) {
		return nil, nil
	}
	held, err := w.e.o.Store.Identifiers(ctx, w.ws, p)
	if err != nil {
		return nil, fmt.Errorf("identifiers of profile %d: %w", p, err)
	}
	return held, nil
}

// itemWith is item with the identifiers profile p holds already read
// (used only when w.syncs(p)).
func (w *worker) itemWith(kind string, position int64, p store.ProfileID, audience string, payload []byte, at time.Time, held []store.HeldIdentifier) item {
	mapped, err := mapPayload(w.def.Mapping, payload)
	if err != nil {
		mapped = payload // not an object: sent as it is
	}
	d := destination.Delivery{
		Key: w.key(position, kind), Kind: kind, Position: position, Profile: p,
		Payload: mapped, Audience: audience, At: at,
	}
	if w.syncs(p) {
		d.Identifiers = syncIDs(w.def.IDSync, held)
		if w.def.IDSync != nil && len(d.Identifiers) > 0 {
			d.Payload = withExternalIDs(d.Payload, d.Identifiers)
		}
	}
	return item{d: d}
}

// syncIDs picks the identifiers to send: those of the IDSync type (first,
// last or all by when the profile got them), or every email and phone for
// audience exports without IDSync.
func syncIDs(s *IDSync, held []store.HeldIdentifier) []store.Identifier {
	var ids []store.HeldIdentifier
	for _, h := range held {
		if (s != nil && h.Type == s.Type) || (s == nil && (h.Type == identity.Email || h.Type == identity.Phone)) {
			ids = append(ids, h)
		}
	}
	if s != nil && len(ids) > 1 && s.Mode != "all" {
		pick := ids[0]
		for _, h := range ids[1:] {
			if (s.Mode == "first") == (h.Position < pick.Position) {
				pick = h
			}
		}
		ids = []store.HeldIdentifier{pick}
	}
	out := make([]store.Identifier, len(ids))
	for i, h := range ids {
		out[i] = h.Identifier
	}
	return out
}

// key derives a delivery's idempotency key.
func (w *worker) key(position int64, kind string, more ...string) string {
	h := sha256.New()
	fmt.Fprintf(h, "%s\x00%s\x00%d\x00%s", w.ws, w.def.Name, position, kind)
	for _, m := range more {
		fmt.Fprintf(h, "\x00%s", m)
	}
	return hex.EncodeToString(h.Sum(nil)[:16])
}

// replayDead sends dead letters an admin flagged for replay.
func (w *worker) replayDead(ctx context.Context) (int, error) {
	dead, err := w.e.o.Store.ReplayQueue(ctx, w.ws, w.def.Name, w.e.o.Page)
	if err != nil || len(dead) == 0 {
		return 0, err
	}
	items := make([]item, len(dead))
	var done []int64
	for i, d := range dead {
		items[i] = item{deadID: d.ID, d: destination.Delivery{
			Key: d.Key, Kind: d.Kind, Position: d.Position, Profile: d.Profile, Payload: d.Payload, At: d.FirstAt,
		}}
		done = append(done, d.ID)
	}
	out, err := w.deliver(ctx, items, false)
	if err != nil {
		return 0, err
	}
	// Every replayed letter is either delivered or a new dead letter now.
	return len(dead), w.progress(ctx, out, &store.DeliveryProgress{Log: w.cur.Log, Outbox: w.cur.Outbox, Redelivered: done})
}

// rangeReplay sends a page of the oldest range replay.
func (w *worker) rangeReplay(ctx context.Context) (int, error) {
	o := &w.e.o
	rs, err := o.Store.Replays(ctx, w.ws, w.def.Name)
	if err != nil || len(rs) == 0 {
		return 0, err
	}
	r := rs[0]
	var items []item
	n := 0
	if w.def.Events != nil {
		page, err := o.Store.Read(ctx, store.LogQuery{Workspace: w.ws, After: r.Cursor, Limit: o.Page, Since: r.Since, Until: r.Until})
		if err != nil {
			return 0, err
		}
		if items, err = w.eventItems(ctx, page); err != nil {
			return 0, err
		}
		if len(page) > 0 {
			r.Cursor, n = page[len(page)-1].Position, len(page)
		}
	}
	if n == 0 && (len(w.def.Traits) > 0 || len(w.def.Audiences) > 0) {
		page, err := o.Store.ReadOutbox(ctx, w.ws, r.OutboxCursor, o.Page)
		if err != nil {
			return 0, err
		}
		if items, err = w.outboxItems(ctx, page, r.Since, r.Until); err != nil {
			return 0, err
		}
		if len(page) > 0 {
			r.OutboxCursor, n = page[len(page)-1].ID, len(page)
		}
	}
	r.Done = n == 0
	out, err := w.deliver(ctx, items, false)
	if err != nil {
		return 0, err
	}
	return n, w.progress(ctx, out, &store.DeliveryProgress{Log: w.cur.Log, Outbox: w.cur.Outbox, Replay: &r})
}

// deliver sends items in batches of the sender's size. With fresh, the
// gate reads the items' profiles afresh rather than from the caches.
func (w *worker) deliver(ctx context.Context, items []item, fresh bool) (*outcome, error) {
	out := &outcome{}
	w.gatePage(ctx, items, fresh)
	size := max(w.sender.MaxBatch(), 1)
	for len(items) > 0 {
		n := min(size, len(items))
		if err := w.send(ctx, items[:n], out, 0); err != nil {
			return nil, err
		}
		items = items[n:]
	}
	return out, nil
}

// send delivers one batch, retrying in place with exponential backoff and
// jitter (or as long as the peer's Retry-After says) until it is
// delivered, rejected, or its items' retry time runs out. The consent gate
// runs before every attempt, so a withdrawal stops queued deliveries.
func (w *worker) send(ctx context.Context, batch []item, out *outcome, attempt int) error {
	o := &w.e.o
	first := o.Now()
	for try := 0; ; try++ {
		batch = w.gate(ctx, batch, out, try > 0)
		if len(batch) == 0 {
			return nil
		}
		ds := make([]destination.Delivery, len(batch))
		for i := range batch {
			ds[i] = batch[i].d
			ds[i].Payload = secret.OpenJSON(w.ws, ds[i].Payload) // sensitive traits: sealed at rest (dead letters too), sent in the clear
		}
		start := time.Now()
		w.sending <- struct{}{}
		err := w.sender.Send(ctx, ds)
		<-w.sending
		attempt++
		if err == nil {
			w.e.m.sendSeconds.WithLabelValues(w.ws, w.def.Name).Observe(time.Since(start).Seconds())
			now := o.Now()
			latency := w.e.m.latency.WithLabelValues(w.ws, w.def.Name)
			for _, it := range batch {
				latency.Observe(now.Sub(it.d.At).Seconds())
			}
			w.e.m.count(w.ws, w.def.Name, "delivered", len(batch))
			out.delivered = append(out.delivered, batch...)
			return nil
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		msg := err.Error()
		w.lastErr.Store(&msg)
		var de *destination.Error
		if !errors.As(err, &de) {
			de = &destination.Error{Msg: err.Error()}
		}
		switch {
		case de.Permanent:
			reason := fmt.Sprintf("disabled after a permanent error: %v", de)
			if err := o.Store.SetDeliveryStatus(ctx, w.ws, w.def.Name, store.DestinationDisabled, reason); err != nil {
				return err
			}
			o.Logger.Warn("destination disabled", "workspace", w.ws, "destination", w.def.Name, "err", de.Error())
			w.cur.Epoch = 0 // re-read the status
			return &errStop{reason}
		case de.Reject && len(batch) > 1:
			half := len(batch) / 2
			if err := w.send(ctx, batch[:half], out, attempt); err != nil {
				return err
			}
			return w.send(ctx, batch[half:], out, attempt)
		case de.Reject:
			out.dead = append(out.dead, w.deadLetter(batch[0], de, attempt, first))
			w.e.m.count(w.ws, w.def.Name, "dead", 1)
			return nil
		}
		// Retry, unless the items' time is up.
		now := o.Now()
		keep := batch[:0:0]
		for _, it := range batch {
			if now.Sub(it.d.At) >= w.retry {
				out.dead = append(out.dead, w.deadLetter(it, de, attempt, first))
				w.e.m.count(w.ws, w.def.Name, "dead", 1)
				continue
			}
			keep = append(keep, it)
		}
		if batch = keep; len(batch) == 0 {
			return nil
		}
		w.e.m.count(w.ws, w.def.Name, "retried", len(batch))
		if err := w.wait(ctx, backoff(attempt, de.RetryAfter)); err != nil {
			return err
		}
	}
}

// wait sleeps d, renewing the lease meanwhile; it stops early when the
// destination is paused or the lease is lost.
func (w *worker) wait(ctx context.Context, d time.Duration) error {
	o := &w.e.o
	until := time.Now().Add(d)
	for {
		left := time.Until(until)
		if left <= 0 {
			return nil
		}
		sleep(ctx, min(left, o.LeaseTTL/3))
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if err := w.acquire(ctx); err != nil {
			return err
		}
		if w.cur.Status != store.DestinationActive {
			return &errStop{"destination " + w.cur.Status}
		}
	}
}

// backoff is the wait before retry n: exponential from 1s to 1 min with
// jitter, or the peer's Retry-After (at most 1h) when that is longer. The
// cap keeps recovery after an outage within a minute (a 5-minute cap made
// it 96 s typical and up to 5 min after a 10-minute outage, simulated), for
// about 19 attempts per destination in such an outage instead of 10.
func backoff(n int, retryAfter time.Duration) time.Duration {
	d := min(time.Second<<min(n-1, 6), time.Minute)
	d = d/2 + rand.N(d/2+1)
	if retryAfter > d {
		d = min(retryAfter, time.Hour)
	}
	return d
}

// gate drops the items whose consent does not allow this destination now:
// the stricter of the event's own consent and the profile's current one;
// and, whatever the destination, the items of profiles that receive
// nothing (see gateValues) — but for audience exits to a destination that
// received the person, which are removals. A first attempt may use what it read of a
// profile up to cacheTTL ago; a retry reads it afresh.
func (w *worker) gate(ctx context.Context, batch []item, out *outcome, retry bool) []item {
	suppress := w.e.suppressAll(w.ws)
	o := &w.e.o
	missing := o.AllowMissingConsent != nil && o.AllowMissingConsent(w.ws)
	cat := w.e.catalogue(w.ws)
	w.caches(ctx)
	fresh := map[store.ProfileID]bool{}
	known := map[store.ProfileID]bool{} // ledger answers (see received)
	keep := batch[:0:0]
	for _, it := range batch {
		pc, ok := w.consents[it.d.Profile]
		if it.d.Profile != 0 && (!ok || (retry && !fresh[it.d.Profile])) {
			var err error
			var blocked string
			if pc, blocked, err = w.profileGate(ctx, it.d.Profile, suppress); err == nil {
				w.consents[it.d.Profile], w.blocked[it.d.Profile], fresh[it.d.Profile] = pc, blocked, true
			}
		}
		// A profile that receives nothing is blocked whatever it
		// consented to and the destination needs.
		why := w.blocked[it.d.Profile]
		if why == "" && !w.def.StrictlyNecessary {
			if _, ok := allowed(cat, w.def.Purposes, it.event, pc, missing); !ok {
				why = "filtered_consent"
			}
		}
		if it.withdrawn {
			// The person is still in the audience: it leaves this
			// destination only if their consent no longer allows it.
			if why == "" {
				continue
			}
			why = ""
		}
		if why != "" && it.d.Kind == destination.KindAudienceExited {
			// An exit is a removal: a tool that received the person is
			// told they left, whatever they restricted or objected to
			// since — that is how a restriction or an objection takes them
			// out of audiences already synced. A tool that never received
			// them learns nothing.
			if ok, err := w.received(ctx, it.d.Profile, nil, known); err == nil && ok {
				why = ""
			}
		}
		if why != "" {
			out.filtered++
			w.e.m.count(w.ws, w.def.Name, why, 1)
			continue
		}
		keep = append(keep, it)
	}
	return keep
}

// gatePage reads what the gate needs of the items' profiles that are not
// cached (with fresh, of all of them), in one query when the store can,
// for their first attempt.
func (w *worker) gatePage(ctx context.Context, items []item, fresh bool) {
	suppress := w.e.suppressAll(w.ws)
	w.caches(ctx)
	if fresh {
		for _, it := range items {
			delete(w.consents, it.d.Profile) // read below, or else by the gate
			delete(w.blocked, it.d.Profile)
		}
	}
	pr, ok := w.e.o.Store.(pageReader)
	if !ok {
		return
	}
	seen := map[store.ProfileID]bool{}
	var ps []store.ProfileID
	for _, it := range items {
		p := it.d.Profile
		if _, ok := w.consents[p]; p != 0 && !ok && !seen[p] {
			seen[p] = true
			ps = append(ps, p)
		}
	}
	if len(ps) == 0 {
		return
	}
	vals, err := pr.ComputedValuesOf(ctx, w.ws, ps, append([]string{compute.ConsentValue}, suppress...))
	if err != nil {
		return // the gate reads each (and denies what it cannot read)
	}
	cat := w.e.catalogue(w.ws)
	for _, p := range ps {
		w.consents[p], w.blocked[p] = gateValues(cat, vals[p], suppress)
	}
}

// profileGate reads what the gate needs of a profile (see gateValues).
func (w *worker) profileGate(ctx context.Context, p store.ProfileID, suppress []string) (Consent, string, error) {
	vals, err := w.e.o.Store.ComputedValues(ctx, w.ws, p)
	if err != nil {
		// Unknown consent is no consent: the gate denies what it cannot
		// check (and does not cache it).
		return Consent{}, "", err
	}
	c, blocked := gateValues(w.e.catalogue(w.ws), vals, suppress)
	return c, blocked, nil
}

// gateValues reads a profile's consent from its computed values, and
// whether it receives nothing from any destination, as the delivery
// outcome that says why: "restricted" when its consent value records a
// restriction of all processing (see restrictsAll), "suppressed" when it
// is a member of one of the suppress_all audiences (their boolean values
// are true), "" otherwise.
func gateValues(cat *consent.Catalogue, vals []store.ComputedValue, suppress []string) (Consent, string) {
	var c Consent
	blocked := ""
	for _, v := range vals {
		switch {
		case v.Name == compute.ConsentValue:
			c = profileConsent(cat, v.Value)
			if restrictsAll(v.Value) {
				blocked = "restricted"
			}
		case blocked == "" && slices.Contains(suppress, v.Name) && string(v.Value) == "true":
			blocked = "suppressed"
		}
	}
	return c, blocked
}

func (w *worker) deadLetter(it item, de *destination.Error, attempts int, first time.Time) store.DeadLetter {
	return store.DeadLetter{
		Workspace: w.ws, Destination: w.def.Name, Key: it.d.Key, Kind: it.d.Kind,
		Position: it.d.Position, Profile: it.d.Profile, Payload: it.d.Payload,
		Error: de.Error(), Attempts: attempts, FirstAt: first, LastAt: w.e.o.Now(),
	}
}

// progress records a page's outcome and moves the cursors.
func (w *worker) progress(ctx context.Context, out *outcome, p *store.DeliveryProgress) error {
	o := &w.e.o
	p.Workspace, p.Destination, p.Epoch = w.ws, w.def.Name, w.cur.Epoch
	p.Dead = out.dead
	now := o.Now()
	day := now.UTC().Truncate(24 * time.Hour)
	ledger := map[store.ProfileID]*store.LedgerEntry{}
	for _, it := range out.delivered {
		if it.d.Profile == 0 {
			continue
		}
		e := ledger[it.d.Profile]
		if e == nil {
			e = &store.LedgerEntry{Workspace: w.ws, Destination: w.def.Name, Profile: it.d.Profile, Day: day, Last: now}
			ledger[it.d.Profile] = e
		}
		e.Deliveries++
		if !slices.Contains(e.Kinds, it.d.Kind) {
			e.Kinds = append(e.Kinds, it.d.Kind)
		}
	}
	for _, e := range ledger {
		p.Ledger = append(p.Ledger, *e)
	}
	if err := o.Store.Progress(ctx, p); err != nil {
		w.cur.Epoch = 0
		return fmt.Errorf("record deliveries to %s: %w", w.def.Name, err)
	}
	w.cur.Log, w.cur.Outbox = max(w.cur.Log, p.Log), max(w.cur.Outbox, p.Outbox)
	return nil
}

func b2f(b bool) float64 {
	if b {
		return 1
	}
	return 0
}

func sleep(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-t.C:
	}
}

// eventConsentOf is eventConsent reading only context.consent: it walks
// the event's top level, its context and its consent without decoding
// them, and decodes categoryPreferences alone (eventConsent decoded the
// whole ~1.3 KB event, a fifth of delivery's CPU time). Anything it does
// not handle the way encoding/json would for certain — a key with an
// escape or a non-ASCII byte, a key twice, a value along the path that is
// not an object — goes to eventConsent. The event is valid JSON (ingest
// checked it); a structural error also goes to eventConsent.
func eventConsentOf(cat *consent.Catalogue, raw []byte) Consent {
	if !containsFold(raw, `"categorypreference`) && !bytes.Contains(raw, []byte(`\u`)) {
		return nil
	}
	v := raw
	for _, key := range []string{"context", "consent", "categoryPreferences"} {
		var ok bool
		if v, ok = member(v, key); !ok {
			return eventConsent(cat, raw)
		}
		if v == nil {
			return nil // absent
		}
	}
	var prefs map[string]json.RawMessage
	if json.Unmarshal(v, &prefs) != nil {
		return eventConsent(cat, raw)
	}
	return consentOf(cat, prefs)
}

// member returns the value of an object's member key (matched as
// encoding/json matches field names, ASCII only): nil when the object has
// none or obj is null, ok false when it cannot tell for certain.
func member(obj []byte, key string) (val []byte, ok bool) {
	i := skipSpace(obj, 0)
	if bytes.HasPrefix(obj[i:], []byte("null")) {
		return nil, true
	}
	if i >= len(obj) || obj[i] != '{' {
		return nil, false
	}
	i = skipSpace(obj, i+1)
	if i < len(obj) && obj[i] == '}' {
		return nil, true
	}
	found := false
	for {
		if i >= len(obj) || obj[i] != '"' {
			return nil, false
		}
		end := i + 1
		for end < len(obj) && obj[end] != '"' {
			if c := obj[end]; c == '\\' || c >= 0x80 {
				return nil, false
			}
			end++
		}
		if end >= len(obj) {
			return nil, false
		}
		k := obj[i+1 : end]
		i = skipSpace(obj, end+1)
		if i >= len(obj) || obj[i] != ':' {
			return nil, false
		}
		start := skipSpace(obj, i+1)
		stop, ok := skipValue(obj, start)
		if !ok {
			return nil, false
		}
		if bytes.EqualFold(k, []byte(key)) {
			if found {
				return nil, false // twice: encoding/json merges them
			}
			found, val = true, obj[start:stop]
		}
		i = skipSpace(obj, stop)
		if i < len(obj) && obj[i] == '}' {
			return val, true
		}
		if i >= len(obj) || obj[i] != ',' {
			return nil, false
		}
		i = skipSpace(obj, i+1)
	}
}

func skipSpace(b []byte, i int) int {
	for i < len(b) && (b[i] == ' ' || b[i] == '\t' || b[i] == '\n' || b[i] == '\r') {
		i++
	}
	return i
}

// skipValue returns the end of the JSON value starting at b[i].
func skipValue(b []byte, i int) (int, bool) {
	start, depth := i, 0
	for i < len(b) {
		c := b[i]
		switch {
		case c == '"':
			for i++; i < len(b) && b[i] != '"'; i++ {
				if b[i] == '\\' {
					i++
				}
			}
			if i >= len(b) {
				return 0, false
			}
			i++
		case c == '{' || c == '[':
			depth++
			i++
		case c == '}' || c == ']':
			if depth == 0 {
				return i, i > start
			}
			depth--
			i++
		case depth == 0 && (c == ',' || c == ' ' || c == '\t' || c == '\n' || c == '\r'):
			return i, i > start
		default:
			i++
		}
		if depth == 0 && (c == '"' || c == '}' || c == ']') {
			return i, true
		}
	}
	return i, depth == 0 && i > start
}
