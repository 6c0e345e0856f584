package storetest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/kithcdp/kith/store"
)

// deliveryBundle is a subtest's fixture: a store, a workspace and the
// leases it holds on destinations "hook" (dest, cur) and "other".
type deliveryBundle struct {
	st     store.Store
	ws     string
	dest   string
	cur    store.DeliveryCursor
	epochs map[string]int64
}

// setupDelivery takes the leases on destinations "hook" and "other" of a
// new workspace, with their cursors starting at 0.
func setupDelivery(t *testing.T, st store.Store, ws func() string) *deliveryBundle {
	t.Helper()
	b := &deliveryBundle{st: st, ws: ws(), dest: "hook", epochs: map[string]int64{}}
	for _, d := range []string{"other", b.dest} {
		c, err := st.AcquireDelivery(context.Background(), b.ws, d, "node", time.Hour, 0, 0)
		if err != nil {
			t.Fatal(err)
		}
		b.cur, b.epochs[d] = c, c.Epoch
	}
	return b
}

// progress applies p under the bundle's lease, for its workspace and
// destination unless p names another destination.
func (b *deliveryBundle) progress(t *testing.T, p store.DeliveryProgress) {
	t.Helper()
	if p.Destination == "" {
		p.Destination = b.dest
	}
	p.Workspace, p.Epoch = b.ws, b.epochs[p.Destination]
	if err := b.st.Progress(context.Background(), &p); err != nil {
		t.Fatal(err)
	}
}

// cursor returns the bundle's destination's cursor as Deliveries lists it.
func (b *deliveryBundle) cursor(t *testing.T, dest string) store.DeliveryCursor {
	t.Helper()
	cs, err := b.st.Deliveries(context.Background(), b.ws)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range cs {
		if c.Destination == dest {
			return c
		}
	}
	t.Fatalf("no cursor for %s in %+v", dest, cs)
	return store.DeliveryCursor{}
}

func dead(key string, p store.ProfileID, pos int64) store.DeadLetter {
	return store.DeadLetter{Key: key, Kind: "event", Position: pos, Profile: p,
		Payload: json.RawMessage(fmt.Sprintf(`{"type":"track","messageId":%q}`, key)),
		Error:   "410 gone", Attempts: 3, FirstAt: t0, LastAt: t0.Add(time.Duration(pos) * time.Minute)}
}

func ledgerEntry(p store.ProfileID, at time.Time, n int64, kinds ...string) store.LedgerEntry {
	return store.LedgerEntry{Profile: p, Day: at.Truncate(24 * time.Hour), Deliveries: n, Kinds: kinds, Last: at}
}

// ledgerText formats a profile's ledger as "dest/2026-11-24=n[kinds]@15:04".
func ledgerText(t *testing.T, st store.Store, ws string, p store.ProfileID) []string {
	t.Helper()
	es, err := st.Ledger(context.Background(), ws, p)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, e := range es {
		if e.Workspace != ws || e.Profile != p {
			t.Fatalf("ledger entry %+v of profile %d in %s", e, p, ws)
		}
		out = append(out, fmt.Sprintf("%s/%s=%d[%s]@%s", e.Destination, e.Day.Format(time.DateOnly), e.Deliveries,
			strings.Join(e.Kinds, " "), e.Last.Format("15:04")))
	}
	return out
}

// allDeadLetters pages through a destination's dead letters, limit at a
// time, as their keys.
func allDeadLetters(t *testing.T, st store.Store, ws, dest string, limit int) []string {
	t.Helper()
	var out []string
	var after int64
	for {
		page, err := st.DeadLetters(context.Background(), ws, dest, after, limit)
		if err != nil {
			t.Fatal(err)
		}
		if len(page) > limit {
			t.Fatalf("page of %d dead letters, limit %d", len(page), limit)
		}
		for _, d := range page {
			if d.ID <= after || d.Workspace != ws || d.Destination != dest {
				t.Fatalf("dead letter %+v after id %d", d, after)
			}
			after = d.ID
			out = append(out, d.Key)
		}
		if len(page) < limit {
			return out
		}
	}
}

func deadKeys(ds []store.DeadLetter) []string {
	var out []string
	for _, d := range ds {
		out = append(out, d.Key)
	}
	return out
}

// runDelivery runs the delivery part of the suite (store/delivery.go).
func runDelivery(t *testing.T, open func(t *testing.T) store.Store, ws func() string) {
	st := open(t)
	ctx := context.Background()

	t.Run("DeliveryLease", func(t *testing.T) {
		t.Parallel()
		w := ws()
		a, err := st.AcquireDelivery(ctx, w, "hook", "a", time.Hour, 40, 7)
		if err != nil || a.Epoch != 1 || a.Owner != "a" || a.Log != 40 || a.Outbox != 7 || a.Status != store.DestinationActive ||
			a.Workspace != w || a.Destination != "hook" || a.Until.IsZero() || a.UpdatedAt.IsZero() {
			t.Fatalf("first lease %+v %v", a, err)
		}
		// A renewal keeps the epoch and the cursors: the start positions
		// only apply the first time.
		again, err := st.AcquireDelivery(ctx, w, "hook", "a", time.Hour, 90, 90)
		if err != nil || again.Epoch != 1 || again.Log != 40 || again.Outbox != 7 || again.Until.Before(a.Until) {
			t.Fatalf("renewal %+v %v", again, err)
		}
		if _, err := st.AcquireDelivery(ctx, w, "hook", "b", time.Hour, 0, 0); !errors.Is(err, store.ErrLeaseHeld) {
			t.Fatalf("b took a held lease: %v", err)
		}
		// Another destination's lease is another lease.
		if o, err := st.AcquireDelivery(ctx, w, "crm", "b", time.Hour, 3, 4); err != nil || o.Epoch != 1 || o.Log != 3 || o.Outbox != 4 {
			t.Fatalf("other destination %+v %v", o, err)
		}
		if err := st.ReleaseDelivery(ctx, a); err != nil {
			t.Fatal(err)
		}
		b, err := st.AcquireDelivery(ctx, w, "hook", "b", time.Hour, 0, 0)
		if err != nil || b.Epoch != 2 || b.Owner != "b" || b.Log != 40 || b.Outbox != 7 {
			t.Fatalf("takeover after release %+v %v", b, err)
		}
		// A release under a former epoch does not free the new owner's lease.
		if err := st.ReleaseDelivery(ctx, a); err != nil {
			t.Fatal(err)
		}
		if _, err := st.AcquireDelivery(ctx, w, "hook", "a", time.Hour, 0, 0); !errors.Is(err, store.ErrLeaseHeld) {
			t.Fatalf("a stale release freed the lease: %v", err)
		}
		// An expired lease is taken over without a release.
		if _, err := st.AcquireDelivery(ctx, w, "short", "a", time.Millisecond, 0, 0); err != nil {
			t.Fatal(err)
		}
		time.Sleep(20 * time.Millisecond)
		if l, err := st.AcquireDelivery(ctx, w, "short", "b", time.Hour, 0, 0); err != nil || l.Epoch != 2 || l.Owner != "b" {
			t.Fatalf("expired takeover %+v %v", l, err)
		}
	})

	t.Run("DeliveryLeaseRace", func(t *testing.T) {
		t.Parallel()
		w := ws()
		nodes := []store.Store{st, open(t), open(t)}
		var wg sync.WaitGroup
		errs := make([]error, len(nodes))
		for i, n := range nodes {
			wg.Go(func() {
				_, errs[i] = n.AcquireDelivery(ctx, w, "hook", fmt.Sprintf("node%d", i), time.Hour, 0, 0)
			})
		}
		wg.Wait()
		won := 0
		for _, err := range errs {
			switch {
			case err == nil:
				won++
			case !errors.Is(err, store.ErrLeaseHeld):
				t.Fatal(err)
			}
		}
		if c := (&deliveryBundle{st: st, ws: w}).cursor(t, "hook"); won != 1 || c.Epoch != 1 {
			t.Fatalf("%d nodes took the lease, epoch %d", won, c.Epoch)
		}
	})

	t.Run("DeliveryProgressUnderLostLease", func(t *testing.T) {
		t.Parallel()
		b := setupDelivery(t, st, ws)
		b.progress(t, store.DeliveryProgress{Log: 5, Outbox: 2, Dead: []store.DeadLetter{dead("d1", 1, 3)}})
		r, err := st.AddReplay(ctx, store.Replay{Workspace: b.ws, Destination: b.dest, Since: t0, Until: t0.Add(time.Hour)})
		if err != nil {
			t.Fatal(err)
		}
		ids := func() []int64 {
			ds, err := st.DeadLetters(ctx, b.ws, b.dest, 0, 10)
			if err != nil {
				t.Fatal(err)
			}
			var out []int64
			for _, d := range ds {
				out = append(out, d.ID)
			}
			return out
		}
		before := ids()
		if err := st.ReleaseDelivery(ctx, b.cur); err != nil {
			t.Fatal(err)
		}
		if _, err := st.AcquireDelivery(ctx, b.ws, b.dest, "other", time.Hour, 0, 0); err != nil {
			t.Fatal(err)
		}
		// The former owner, paused across the takeover, cannot progress.
		err = st.Progress(ctx, &store.DeliveryProgress{Workspace: b.ws, Destination: b.dest, Epoch: b.cur.Epoch, Log: 50, Outbox: 20,
			Ledger:      []store.LedgerEntry{ledgerEntry(1, t0, 1, "event")},
			Dead:        []store.DeadLetter{dead("stale", 1, 40)},
			Redelivered: before,
			Replay:      &store.Replay{ID: r.ID, Cursor: 50, OutboxCursor: 20, Done: true}})
		if !errors.Is(err, store.ErrLeaseLost) {
			t.Fatalf("progress under a lost lease: %v", err)
		}
		if c := b.cursor(t, b.dest); c.Log != 5 || c.Outbox != 2 || c.Owner != "other" || c.Epoch != 2 {
			t.Fatalf("cursor after a refused progress %+v", c)
		}
		if got := ledgerText(t, st, b.ws, 1); len(got) != 0 {
			t.Fatalf("a refused progress wrote the ledger %q", got)
		}
		if got := ids(); !slices.Equal(got, before) {
			t.Fatalf("dead letters %v after a refused progress, want %v", got, before)
		}
		if rs, err := st.Replays(ctx, b.ws, b.dest); err != nil || len(rs) != 1 || rs[0].Cursor != 0 || rs[0].Done {
			t.Fatalf("replays after a refused progress %+v %v", rs, err)
		}
		// Progress of a destination nobody acquired is refused too.
		if err := st.Progress(ctx, &store.DeliveryProgress{Workspace: b.ws, Destination: "never", Epoch: 0}); !errors.Is(err, store.ErrLeaseLost) {
			t.Fatalf("progress of an unknown destination: %v", err)
		}
	})

	t.Run("DeliveryCursorsOnlyMoveForward", func(t *testing.T) {
		t.Parallel()
		b := setupDelivery(t, st, ws)
		b.progress(t, store.DeliveryProgress{Log: 10, Outbox: 5})
		b.progress(t, store.DeliveryProgress{Log: 7, Outbox: 8})
		b.progress(t, store.DeliveryProgress{}) // an empty batch changes nothing
		c := b.cursor(t, b.dest)
		if c.Log != 10 || c.Outbox != 8 || c.Epoch != b.cur.Epoch || c.Owner != "node" {
			t.Fatalf("cursor %+v, want log 10 and outbox 8", c)
		}
		// A lease taken again keeps them.
		if l, err := st.AcquireDelivery(ctx, b.ws, b.dest, "node", time.Hour, 0, 0); err != nil || l.Log != 10 || l.Outbox != 8 {
			t.Fatalf("renewed %+v %v", l, err)
		}
	})

	t.Run("DeliveryLedger", func(t *testing.T) {
		t.Parallel()
		b := setupDelivery(t, st, ws)
		day2 := t0.Add(24 * time.Hour)
		b.progress(t, store.DeliveryProgress{Log: 3, Ledger: []store.LedgerEntry{
			// Entries of one profile and day in one batch add up.
			ledgerEntry(1, t0.Add(time.Hour), 2, "event"),
			ledgerEntry(1, t0.Add(3*time.Hour), 1, store.OutboxTraitChanged, "event"),
			ledgerEntry(1, t0.Add(2*time.Hour), 1, "event"),
			ledgerEntry(2, t0, 1, store.OutboxAudienceEntered),
		}})
		b.progress(t, store.DeliveryProgress{Log: 6, Ledger: []store.LedgerEntry{
			ledgerEntry(1, t0.Add(30*time.Minute), 4, store.OutboxAudienceEntered), // kinds merge; last keeps the latest
			ledgerEntry(1, t0.Add(4*time.Hour), 1, "event"),
			ledgerEntry(1, day2.Add(time.Hour), 1, "event"),
			// Day is truncated to midnight UTC; without a Day, Last's day.
			{Profile: 1, Day: day2.Add(5 * time.Hour), Deliveries: 1, Kinds: []string{store.OutboxAudienceExited}, Last: day2.Add(5 * time.Hour)},
			{Profile: 1, Deliveries: 1, Kinds: []string{"event"}, Last: day2.Add(6 * time.Hour)},
		}})
		b.progress(t, store.DeliveryProgress{Destination: "other", Ledger: []store.LedgerEntry{ledgerEntry(1, day2, 7, "event")}})
		// t0 is 10:00 UTC.
		want := []string{
			"hook/2026-11-24=9[audience_entered event trait_changed]@14:00",
			"hook/2026-11-25=3[audience_exited event]@16:00",
			"other/2026-11-25=7[event]@10:00",
		}
		if got := ledgerText(t, st, b.ws, 1); !slices.Equal(got, want) {
			t.Fatalf("ledger of 1\n got %q\nwant %q", got, want)
		}
		if got, want := ledgerText(t, st, b.ws, 2), []string{"hook/2026-11-24=1[audience_entered]@10:00"}; !slices.Equal(got, want) {
			t.Fatalf("ledger of 2 %q, want %q", got, want)
		}
		if got := ledgerText(t, st, b.ws, 3); len(got) != 0 {
			t.Fatalf("ledger of a profile without deliveries %q", got)
		}
		es, err := st.Ledger(ctx, b.ws, 1)
		if err != nil || !es[0].Day.Equal(t0.Truncate(24*time.Hour)) || !es[0].Last.Equal(t0.Add(4*time.Hour)) {
			t.Fatalf("ledger times %+v %v", es, err)
		}
	})

	t.Run("DeadLettersPaging", func(t *testing.T) {
		t.Parallel()
		b := setupDelivery(t, st, ws)
		var want []string
		for batch := range 3 {
			var ds []store.DeadLetter
			for i := range 90 {
				k := fmt.Sprintf("k%03d", batch*90+i)
				ds = append(ds, dead(k, store.ProfileID(i%7+1), int64(batch*90+i+1)))
				want = append(want, k)
			}
			b.progress(t, store.DeliveryProgress{Dead: ds})
		}
		b.progress(t, store.DeliveryProgress{Destination: "other", Dead: []store.DeadLetter{dead("elsewhere", 1, 1)}})
		for _, limit := range []int{100, 7, 270, 1000} {
			if got := allDeadLetters(t, st, b.ws, b.dest, limit); !slices.Equal(got, want) {
				t.Fatalf("paging by %d: %d dead letters %q…, want %d", limit, len(got), got[:min(len(got), 3)], len(want))
			}
		}
		if page, err := st.DeadLetters(ctx, b.ws, b.dest, 0, 0); err != nil || len(page) != 100 {
			t.Fatalf("a page of the default size has %d dead letters, %v", len(page), err)
		}
		if got := allDeadLetters(t, st, b.ws, "other", 10); !slices.Equal(got, []string{"elsewhere"}) {
			t.Fatalf("other destination's dead letters %q", got)
		}
		// Every field round-trips.
		page, err := st.DeadLetters(ctx, b.ws, b.dest, 0, 2)
		if err != nil || len(page) != 2 {
			t.Fatalf("page %+v %v", page, err)
		}
		d, w := page[1], dead("k001", 2, 2)
		if d.Key != w.Key || d.Kind != w.Kind || d.Position != w.Position || d.Profile != w.Profile || string(d.Payload) != string(w.Payload) ||
			d.Error != w.Error || d.Attempts != w.Attempts || !d.FirstAt.Equal(w.FirstAt) || !d.LastAt.Equal(w.LastAt) || d.Replay ||
			d.ID <= page[0].ID {
			t.Fatalf("dead letter round trip\n got %+v\nwant %+v", d, w)
		}
	})

	t.Run("DeadLetterReplay", func(t *testing.T) {
		t.Parallel()
		b := setupDelivery(t, st, ws)
		b.progress(t, store.DeliveryProgress{Dead: []store.DeadLetter{dead("a", 1, 1), dead("b", 1, 2), dead("c", 2, 3), dead("d", 2, 4)}})
		b.progress(t, store.DeliveryProgress{Destination: "other", Dead: []store.DeadLetter{dead("x", 1, 1)}})
		ds, err := st.DeadLetters(ctx, b.ws, b.dest, 0, 10)
		if err != nil || len(ds) != 4 {
			t.Fatalf("dead letters %+v %v", ds, err)
		}
		other, err := st.DeadLetters(ctx, b.ws, "other", 0, 10)
		if err != nil || len(other) != 1 {
			t.Fatalf("other's dead letters %+v %v", other, err)
		}
		if q, err := st.ReplayQueue(ctx, b.ws, b.dest, 10); err != nil || len(q) != 0 {
			t.Fatalf("replay queue before any mark %+v %v", q, err)
		}
		// Another destination's id and an unknown id are not flagged.
		n, err := st.MarkReplay(ctx, b.ws, b.dest, []int64{ds[2].ID, ds[0].ID, other[0].ID, ds[3].ID + 1000})
		if err != nil || n != 2 {
			t.Fatalf("marked %d, want 2: %v", n, err)
		}
		if n, err := st.MarkReplay(ctx, b.ws, b.dest, []int64{ds[0].ID}); err != nil || n != 0 {
			t.Fatalf("marked %d flagged already, want 0: %v", n, err)
		}
		q, err := st.ReplayQueue(ctx, b.ws, b.dest, 10)
		if got := deadKeys(q); err != nil || !slices.Equal(got, []string{"a", "c"}) || !q[0].Replay || !q[1].Replay {
			t.Fatalf("replay queue %q %v", got, err)
		}
		if q, _ := st.ReplayQueue(ctx, b.ws, b.dest, 1); !slices.Equal(deadKeys(q), []string{"a"}) {
			t.Fatalf("replay queue limited to 1: %q", deadKeys(q))
		}
		if q, _ := st.ReplayQueue(ctx, b.ws, "other", 10); len(q) != 0 {
			t.Fatalf("other's replay queue %q", deadKeys(q))
		}
		// Sent again: deleted; an id of another destination is not.
		b.progress(t, store.DeliveryProgress{Redelivered: []int64{q[0].ID, other[0].ID}})
		if got := allDeadLetters(t, st, b.ws, b.dest, 10); !slices.Equal(got, []string{"b", "c", "d"}) {
			t.Fatalf("dead letters after redelivery %q", got)
		}
		if got := allDeadLetters(t, st, b.ws, "other", 10); !slices.Equal(got, []string{"x"}) {
			t.Fatalf("other's dead letters after redelivery %q", got)
		}
		// All of the destination's: those not flagged yet.
		if n, err := st.MarkReplay(ctx, b.ws, b.dest, nil); err != nil || n != 2 {
			t.Fatalf("marked all: %d, want 2: %v", n, err)
		}
		q, err = st.ReplayQueue(ctx, b.ws, b.dest, 10)
		if got := deadKeys(q); err != nil || !slices.Equal(got, []string{"b", "c", "d"}) {
			t.Fatalf("replay queue after marking all %q %v", got, err)
		}
		b.progress(t, store.DeliveryProgress{Redelivered: []int64{q[0].ID, q[1].ID, q[2].ID}})
		if q, _ := st.ReplayQueue(ctx, b.ws, b.dest, 10); len(q) != 0 {
			t.Fatalf("replay queue after redelivery %q", deadKeys(q))
		}
		if got := allDeadLetters(t, st, b.ws, b.dest, 10); len(got) != 0 {
			t.Fatalf("dead letters after redelivery %q", got)
		}
	})

	t.Run("Replays", func(t *testing.T) {
		t.Parallel()
		b := setupDelivery(t, st, ws)
		r1, err := st.AddReplay(ctx, store.Replay{Workspace: b.ws, Destination: b.dest, Since: t0, Until: t0.Add(time.Hour)})
		if err != nil || r1.ID == 0 || r1.CreatedAt.IsZero() || r1.Done || r1.Workspace != b.ws || r1.Destination != b.dest {
			t.Fatalf("added %+v %v", r1, err)
		}
		r2, err := st.AddReplay(ctx, store.Replay{Workspace: b.ws, Destination: b.dest, Since: t0.Add(-time.Hour), Until: t0})
		if err != nil || r2.ID <= r1.ID {
			t.Fatalf("added %+v %v", r2, err)
		}
		if _, err := st.AddReplay(ctx, store.Replay{Workspace: b.ws, Destination: "other", Since: t0, Until: t0.Add(time.Hour)}); err != nil {
			t.Fatal(err)
		}
		rs, err := st.Replays(ctx, b.ws, b.dest)
		if err != nil || len(rs) != 2 || rs[0].ID != r1.ID || rs[1].ID != r2.ID {
			t.Fatalf("replays %+v %v", rs, err)
		}
		if g := rs[0]; !g.Since.Equal(t0) || !g.Until.Equal(t0.Add(time.Hour)) || !g.CreatedAt.Equal(r1.CreatedAt) || g.Cursor != 0 {
			t.Fatalf("replay round trip %+v, want %+v", g, r1)
		}
		b.progress(t, store.DeliveryProgress{Replay: &store.Replay{ID: r1.ID, Cursor: 40, OutboxCursor: 9}})
		b.progress(t, store.DeliveryProgress{Replay: &store.Replay{ID: r1.ID, Cursor: 30, OutboxCursor: 12}})
		if rs, _ := st.Replays(ctx, b.ws, b.dest); len(rs) != 2 || rs[0].Cursor != 40 || rs[0].OutboxCursor != 12 || rs[0].Done {
			t.Fatalf("replay in progress %+v", rs)
		}
		// A progress of another destination does not touch this one's replay.
		b.progress(t, store.DeliveryProgress{Destination: "other", Replay: &store.Replay{ID: r1.ID, Cursor: 99, Done: true}})
		b.progress(t, store.DeliveryProgress{Replay: &store.Replay{ID: r1.ID, Cursor: 60, OutboxCursor: 12, Done: true}})
		rs, err = st.Replays(ctx, b.ws, b.dest)
		if err != nil || len(rs) != 1 || rs[0].ID != r2.ID {
			t.Fatalf("replays after one is done %+v %v", rs, err)
		}
		if rs, _ := st.Replays(ctx, b.ws, "other"); len(rs) != 1 || rs[0].Done {
			t.Fatalf("other's replays %+v", rs)
		}
	})

	t.Run("DeliveryStatus", func(t *testing.T) {
		t.Parallel()
		w := ws()
		// Paused before it ever ran: the row exists, not started.
		if err := st.SetDeliveryStatus(ctx, w, "b-hook", store.DestinationPaused, "by admin"); err != nil {
			t.Fatal(err)
		}
		b := &deliveryBundle{st: st, ws: w}
		if c := b.cursor(t, "b-hook"); c.Status != store.DestinationPaused || c.Reason != "by admin" || c.Epoch != 0 || c.Owner != "" {
			t.Fatalf("status set before the first lease %+v", c)
		}
		// The first lease starts its cursors and keeps the status.
		c, err := st.AcquireDelivery(ctx, w, "b-hook", "node", time.Hour, 100, 20)
		if err != nil || c.Epoch != 1 || c.Log != 100 || c.Outbox != 20 || c.Status != store.DestinationPaused || c.Reason != "by admin" {
			t.Fatalf("first lease of a paused destination %+v %v", c, err)
		}
		if _, err := st.AcquireDelivery(ctx, w, "a-hook", "node", time.Hour, 1, 1); err != nil {
			t.Fatal(err)
		}
		if err := st.SetDeliveryStatus(ctx, w, "b-hook", store.DestinationDisabled, "401 unauthorized"); err != nil {
			t.Fatal(err)
		}
		cs, err := st.Deliveries(ctx, w)
		if err != nil || len(cs) != 2 || cs[0].Destination != "a-hook" || cs[1].Destination != "b-hook" {
			t.Fatalf("deliveries by destination %+v %v", cs, err)
		}
		if c := cs[1]; c.Status != store.DestinationDisabled || c.Reason != "401 unauthorized" || c.Epoch != 1 || c.Log != 100 ||
			c.Owner != "node" || c.Workspace != w {
			t.Fatalf("disabled %+v", c)
		}
		if c := cs[0]; c.Status != store.DestinationActive || c.Reason != "" {
			t.Fatalf("active %+v", c)
		}
		if err := st.SetDeliveryStatus(ctx, w, "b-hook", store.DestinationActive, ""); err != nil {
			t.Fatal(err)
		}
		if c := b.cursor(t, "b-hook"); c.Status != store.DestinationActive || c.Reason != "" || c.Log != 100 {
			t.Fatalf("resumed %+v", c)
		}
		if err := st.SetDeliveryStatus(ctx, w, "b-hook", "sleeping", ""); err == nil {
			t.Fatal("an unknown status was set")
		}
		if cs, err := st.Deliveries(ctx, ws()); err != nil || len(cs) != 0 {
			t.Fatalf("deliveries of an empty workspace %+v %v", cs, err)
		}
	})

	t.Run("DeliveryWorkspaceIsolation", func(t *testing.T) {
		t.Parallel()
		a, b := setupDelivery(t, st, ws), setupDelivery(t, st, ws)
		if a.cur.Epoch != 1 || b.cur.Epoch != 1 {
			t.Fatalf("epochs %d %d: one destination name in two workspaces is two leases", a.cur.Epoch, b.cur.Epoch)
		}
		if _, err := st.AcquireDelivery(ctx, b.ws, b.dest, "someone", time.Hour, 0, 0); !errors.Is(err, store.ErrLeaseHeld) {
			t.Fatalf("b's lease: %v", err)
		}
		a.progress(t, store.DeliveryProgress{Log: 9, Outbox: 4, Ledger: []store.LedgerEntry{ledgerEntry(1, t0, 1, "event")},
			Dead: []store.DeadLetter{dead("a1", 1, 9)}})
		b.progress(t, store.DeliveryProgress{Log: 2, Dead: []store.DeadLetter{dead("b1", 1, 2)}})
		if c := b.cursor(t, b.dest); c.Log != 2 || c.Outbox != 0 {
			t.Fatalf("b's cursor %+v", c)
		}
		if got := ledgerText(t, st, b.ws, 1); len(got) != 0 {
			t.Fatalf("b's ledger %q", got)
		}
		if got := allDeadLetters(t, st, b.ws, b.dest, 10); !slices.Equal(got, []string{"b1"}) {
			t.Fatalf("b's dead letters %q", got)
		}
		if n, err := st.MarkReplay(ctx, a.ws, a.dest, nil); err != nil || n != 1 {
			t.Fatalf("marked %d in a: %v", n, err)
		}
		if q, _ := st.ReplayQueue(ctx, b.ws, b.dest, 10); len(q) != 0 {
			t.Fatalf("b's replay queue %q", deadKeys(q))
		}
		ad, _ := st.DeadLetters(ctx, a.ws, a.dest, 0, 10)
		if n, err := st.MarkReplay(ctx, b.ws, b.dest, []int64{ad[0].ID}); err != nil || n != 0 {
			t.Fatalf("b marked a's dead letter: %d %v", n, err)
		}
		b.progress(t, store.DeliveryProgress{Redelivered: []int64{ad[0].ID}})
		if got := allDeadLetters(t, st, a.ws, a.dest, 10); !slices.Equal(got, []string{"a1"}) {
			t.Fatalf("a's dead letters after b's redelivery %q", got)
		}
		if _, err := st.AddReplay(ctx, store.Replay{Workspace: a.ws, Destination: a.dest, Since: t0, Until: t0}); err != nil {
			t.Fatal(err)
		}
		if rs, _ := st.Replays(ctx, b.ws, b.dest); len(rs) != 0 {
			t.Fatalf("b's replays %+v", rs)
		}
	})

	t.Run("ResetKeepsDelivery", func(t *testing.T) {
		t.Parallel()
		b := setupDelivery(t, st, ws)
		commit(t, st, &store.Changes{Workspace: b.ws, To: 8, Profiles: []store.ProfileDelta{delta(1, 0, 0, 1)}})
		b.progress(t, store.DeliveryProgress{Log: 8, Outbox: 3, Ledger: []store.LedgerEntry{ledgerEntry(1, t0, 2, "event")},
			Dead: []store.DeadLetter{dead("d1", 1, 5), dead("d2", 1, 6)}})
		ds, _ := st.DeadLetters(ctx, b.ws, b.dest, 0, 10)
		if _, err := st.MarkReplay(ctx, b.ws, b.dest, []int64{ds[0].ID}); err != nil {
			t.Fatal(err)
		}
		if _, err := st.AddReplay(ctx, store.Replay{Workspace: b.ws, Destination: b.dest, Since: t0, Until: t0.Add(time.Hour)}); err != nil {
			t.Fatal(err)
		}
		if err := st.SetDeliveryStatus(ctx, b.ws, b.dest, store.DestinationPaused, "by admin"); err != nil {
			t.Fatal(err)
		}
		l, err := st.AcquireLease(ctx, b.ws, "node", time.Hour)
		if err != nil {
			t.Fatal(err)
		}
		if err := st.Reset(ctx, b.ws, l.Epoch); err != nil {
			t.Fatal(err)
		}
		if _, err := st.Profile(ctx, b.ws, 1); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("derived state after reset: %v", err)
		}
		if c := b.cursor(t, b.dest); c.Log != 8 || c.Outbox != 3 || c.Epoch != b.cur.Epoch || c.Status != store.DestinationPaused {
			t.Fatalf("delivery cursor after reset %+v", c)
		}
		if got := ledgerText(t, st, b.ws, 1); !slices.Equal(got, []string{"hook/2026-11-24=2[event]@10:00"}) {
			t.Fatalf("ledger after reset %q", got)
		}
		if got := allDeadLetters(t, st, b.ws, b.dest, 10); !slices.Equal(got, []string{"d1", "d2"}) {
			t.Fatalf("dead letters after reset %q", got)
		}
		if q, _ := st.ReplayQueue(ctx, b.ws, b.dest, 10); !slices.Equal(deadKeys(q), []string{"d1"}) {
			t.Fatalf("replay queue after reset %q", deadKeys(q))
		}
		if rs, _ := st.Replays(ctx, b.ws, b.dest); len(rs) != 1 {
			t.Fatalf("replays after reset %+v", rs)
		}
		// The lease held before the reset still holds.
		b.progress(t, store.DeliveryProgress{Log: 9})
	})
}

// BenchProgress applies, b.N times, the Progress of a batch of 1,000
// deliveries to one destination, and reports events/s: one ledger entry per
// event (profiles drawn from 50,000, so a batch repeats some and the ledger
// rows of a day are updated as often as inserted), one kind in ten a trait
// change, one event in a hundred a dead letter. Building the batch is not
// timed.
func BenchProgress(b *testing.B, st store.State) {
	const events, people = 1000, 50000
	ctx := context.Background()
	c, err := st.AcquireDelivery(ctx, "bench", "hook", "bench", time.Hour, 0, 0)
	if err != nil {
		b.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(1, 2))
	var pos int64
	for b.Loop() {
		b.StopTimer()
		p := &store.DeliveryProgress{Workspace: "bench", Destination: "hook", Epoch: c.Epoch, Log: pos + events, Outbox: pos / 10}
		for range events {
			pos++
			at := t0.Add(time.Duration(pos) * time.Second)
			prof := store.ProfileID(rng.IntN(people) + 1)
			kind := "event"
			if rng.IntN(10) == 0 {
				kind = store.OutboxTraitChanged
			}
			p.Ledger = append(p.Ledger, store.LedgerEntry{Profile: prof, Day: at, Deliveries: 1, Kinds: []string{kind}, Last: at})
			if rng.IntN(100) == 0 {
				p.Dead = append(p.Dead, dead(fmt.Sprint(pos), prof, pos))
			}
		}
		b.StartTimer()
		if err := st.Progress(ctx, p); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(events*b.N)/b.Elapsed().Seconds(), "events/s")
}
