// Package storetest is the conformance suite every store backend passes.
// A backend's test calls Run with an opener that returns a new handle to the
// same database on every call (to stand in for several Kith nodes); each
// subtest uses its own workspace, so handles may share data.
package storetest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/kithcdp/kith/store"
)

// Run runs the suite against the stores that open returns.
func Run(t *testing.T, open func(t *testing.T) store.Store) {
	st := open(t)
	ctx := context.Background()
	var n atomic.Int64
	ws := func() string { return fmt.Sprintf("ws%d-%d", time.Now().UnixNano()%1e9, n.Add(1)) }

	t.Run("AppendAssignsPositionsAndRoundTrips", func(t *testing.T) {
		t.Parallel()
		w, other := ws(), ws()
		b := &store.Batch{Events: []store.Event{event(w, "a"), event(w, "b"), event(other, "a")}}
		b.Events[0].Signals = store.Signals{IP: "203.0.113.9", UserAgent: "ua", Origin: "https://x.example", GPC: true}
		b.Events[0].Flags = store.FlagTimestampClamped
		res, err := st.Append(ctx, b, time.Hour)
		if err != nil {
			t.Fatal(err)
		}
		if res[0].Position != 1 || res[1].Position != 2 || res[2].Position != 1 || res[0].Duplicate {
			t.Fatalf("positions %+v", res)
		}
		got, err := st.Read(ctx, store.LogQuery{Workspace: w})
		if err != nil {
			t.Fatal(err)
		}
		if len(got) != 2 {
			t.Fatalf("read %d events", len(got))
		}
		want := b.Events[0]
		g := got[0]
		if g.Position != 1 || g.Workspace != w || g.Source != want.Source || g.MessageID != "a" || g.Type != want.Type ||
			g.Name != want.Name || g.UserID != want.UserID || g.AnonymousID != want.AnonymousID ||
			!g.Timestamp.Equal(want.Timestamp) || !g.ReceivedAt.Equal(want.ReceivedAt) || g.Flags != want.Flags ||
			g.Format != want.Format || g.Signals != want.Signals || string(g.Raw) != string(want.Raw) {
			t.Fatalf("round trip:\n got %+v\nwant %+v", g, want)
		}
		if h, _ := st.Head(ctx, w); h != 2 {
			t.Fatalf("head %d", h)
		}
	})

	t.Run("Dedup", func(t *testing.T) {
		t.Parallel()
		w := ws()
		res, err := st.Append(ctx, &store.Batch{Events: []store.Event{event(w, "m1"), event(w, "m1"), event(w, "m2")}}, time.Hour)
		if err != nil {
			t.Fatal(err)
		}
		if res[0] != (store.Appended{Position: 1}) || res[1] != (store.Appended{Position: 1, Duplicate: true}) || res[2].Position != 2 {
			t.Fatalf("in-batch dedup: %+v", res)
		}
		res, err = st.Append(ctx, &store.Batch{Events: []store.Event{event(w, "m2"), event(w, "m3")}}, time.Hour)
		if err != nil {
			t.Fatal(err)
		}
		if res[0] != (store.Appended{Position: 2, Duplicate: true}) || res[1] != (store.Appended{Position: 3}) {
			t.Fatalf("dedup across appends: %+v", res)
		}
		// Outside the window the messageId is accepted again.
		later := event(w, "m1")
		later.ReceivedAt = later.ReceivedAt.Add(2 * time.Hour)
		res, err = st.Append(ctx, &store.Batch{Events: []store.Event{later}}, time.Hour)
		if err != nil || res[0] != (store.Appended{Position: 4}) {
			t.Fatalf("after the window: %+v %v", res, err)
		}
	})

	t.Run("DedupWithoutWindowLimit", func(t *testing.T) {
		t.Parallel()
		w := ws()
		if _, err := st.Append(ctx, &store.Batch{Events: []store.Event{event(w, "m1")}}, 0); err != nil {
			t.Fatal(err)
		}
		// A window <= 0 has no limit: a year later the messageId is still a
		// duplicate, whatever window the first append used.
		for i, window := range []time.Duration{0, -time.Hour} {
			later := event(w, "m1")
			later.ReceivedAt = later.ReceivedAt.Add(365 * 24 * time.Hour)
			res, err := st.Append(ctx, &store.Batch{Events: []store.Event{later, event(w, fmt.Sprint("new", i))}}, window)
			if err != nil {
				t.Fatal(err)
			}
			if res[0] != (store.Appended{Position: 1, Duplicate: true}) || res[1].Duplicate {
				t.Fatalf("window %v: %+v", window, res)
			}
		}
		if h, _ := st.Head(ctx, w); h != 3 {
			t.Fatalf("head %d, want 3 (m1 once and two new events)", h)
		}
	})

	t.Run("DedupLargeBatches", func(t *testing.T) {
		t.Parallel()
		w := ws()
		// Sizes around the chunks backends look messageIds up and insert rows in.
		var first store.Batch
		for i := range 257 {
			first.Events = append(first.Events, event(w, fmt.Sprint("big", i)))
		}
		if _, err := st.Append(ctx, &first, time.Hour); err != nil {
			t.Fatal(err)
		}
		for _, n := range []int{1, 9, 10, 11, 100, 101, 257} {
			b := &store.Batch{}
			for i := range n {
				b.Events = append(b.Events, event(w, fmt.Sprint("big", (i*7)%257)))
			}
			b.Events = append(b.Events, event(w, fmt.Sprint("new", n)))
			res, err := st.Append(ctx, b, time.Hour)
			if err != nil {
				t.Fatal(err)
			}
			for i, r := range res[:n] {
				if want := (store.Appended{Position: int64((i*7)%257) + 1, Duplicate: true}); r != want {
					t.Fatalf("batch of %d, event %d: %+v, want %+v", n, i, r, want)
				}
			}
			if res[n].Duplicate {
				t.Fatalf("batch of %d: the new event is a duplicate", n)
			}
		}
	})

	t.Run("DedupAcrossCommitsAndHandles", func(t *testing.T) {
		t.Parallel()
		w, other := ws(), ws()
		// Many commits of a few events, as the group committer makes under
		// light traffic; a backend that remembers recent messageIds apart
		// from older ones (SQLite) moves them between the two meanwhile
		// (KITH_SQLITE_DEDUP_MEMORY=50 makes that happen every few commits).
		const commits, size = 60, 7
		for c := range commits {
			b := &store.Batch{}
			for i := range size {
				b.Events = append(b.Events, event(w, fmt.Sprint("c", c*size+i)))
			}
			b.Events = append(b.Events, event(other, fmt.Sprint("c", c))) // the same messageIds, another workspace
			if _, err := st.Append(ctx, b, time.Hour); err != nil {
				t.Fatal(err)
			}
		}
		// Late retries, on this handle and on a new one (another node, or
		// this one after a restart), of messageIds from every commit.
		for h, s := range []store.Store{st, open(t)} {
			b := &store.Batch{}
			for c := range commits {
				id := c*size + (c+h)%size
				b.Events = append(b.Events, event(w, fmt.Sprint("c", id)))
			}
			b.Events = append(b.Events, event(w, fmt.Sprint("fresh", h)), event(other, "c0"))
			res, err := s.Append(ctx, b, time.Hour)
			if err != nil {
				t.Fatal(err)
			}
			for c := range commits {
				id := c*size + (c+h)%size
				if want := (store.Appended{Position: int64(id + 1), Duplicate: true}); res[c] != want {
					t.Fatalf("handle %d, retry of c%d: %+v, want %+v", h, id, res[c], want)
				}
			}
			if r := res[commits]; r.Duplicate || r.Position != int64(commits*size+1+h) {
				t.Fatalf("handle %d: the new event got %+v", h, r)
			}
			if r := res[commits+1]; r != (store.Appended{Position: 1, Duplicate: true}) {
				t.Fatalf("handle %d: retry in the other workspace got %+v", h, r)
			}
		}
		// Stored again after the window: later retries name the new position.
		later := event(w, "c3")
		later.ReceivedAt = later.ReceivedAt.Add(2 * time.Hour)
		res, err := st.Append(ctx, &store.Batch{Events: []store.Event{later}}, time.Hour)
		if err != nil || res[0].Duplicate {
			t.Fatalf("after the window: %+v %v", res, err)
		}
		again := later
		again.ReceivedAt = again.ReceivedAt.Add(time.Minute)
		for h, s := range []store.Store{st, open(t)} {
			r, err := s.Append(ctx, &store.Batch{Events: []store.Event{again}}, time.Hour)
			if err != nil || r[0] != (store.Appended{Position: res[0].Position, Duplicate: true}) {
				t.Fatalf("handle %d, retry of the event stored again: %+v %v, want position %d", h, r, err, res[0].Position)
			}
		}
	})

	t.Run("PruneDedupKeepsPositions", func(t *testing.T) {
		t.Parallel()
		w := ws()
		// Received long ago, so that pruning touches no other subtest's entries.
		old := time.Date(2000, 1, 1, 0, 0, 0, 0, time.UTC)
		b := &store.Batch{Events: []store.Event{event(w, "p1"), event(w, "p2")}}
		for i := range b.Events {
			b.Events[i].ReceivedAt = old
		}
		if _, err := st.Append(ctx, b, 0); err != nil {
			t.Fatal(err)
		}
		if n, err := st.PruneDedup(ctx, old.Add(time.Hour)); err != nil || n < 2 {
			t.Fatalf("pruned %d, %v", n, err)
		}
		res, err := st.Append(ctx, &store.Batch{Events: []store.Event{event(w, "p2")}}, 0)
		if err != nil || res[0] != (store.Appended{Position: 3}) {
			t.Fatalf("after pruning: %+v %v (a forgotten messageId is new; positions are not reused)", res, err)
		}
	})

	t.Run("GapFreeUnderConcurrentWriters", func(t *testing.T) {
		t.Parallel()
		w := ws()
		stores := []store.Store{st, open(t), open(t)}
		const writers, batches, size = 6, 15, 20
		var wg sync.WaitGroup
		done := make(chan struct{})
		readErr := make(chan error, 1)
		go func() { // a reader that must never see a gap
			var last int64
			for {
				evs, err := stores[2].Read(ctx, store.LogQuery{Workspace: w, After: last, Limit: 1000})
				if err != nil {
					readErr <- err
					return
				}
				for _, e := range evs {
					if e.Position != last+1 {
						readErr <- fmt.Errorf("saw position %d after %d", e.Position, last)
						return
					}
					last = e.Position
				}
				select {
				case <-done:
					if last == writers*batches*size {
						readErr <- nil
						return
					}
				default:
				}
			}
		}()
		for i := range writers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for j := range batches {
					b := &store.Batch{}
					for k := range size {
						b.Events = append(b.Events, event(w, fmt.Sprintf("w%d-%d-%d", i, j, k)))
					}
					if _, err := stores[i%len(stores)].Append(ctx, b, time.Hour); err != nil {
						t.Error(err)
						return
					}
				}
			}()
		}
		wg.Wait()
		close(done)
		if err := <-readErr; err != nil {
			t.Fatal(err)
		}
	})

	t.Run("ConcurrentSameMessageID", func(t *testing.T) {
		t.Parallel()
		w := ws()
		stores := []store.Store{st, open(t)}
		res := make([]store.Appended, 2)
		var wg sync.WaitGroup
		for i := range 2 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				r, err := stores[i].Append(ctx, &store.Batch{Events: []store.Event{event(w, "same")}}, time.Hour)
				if err != nil {
					t.Error(err)
					return
				}
				res[i] = r[0]
			}()
		}
		wg.Wait()
		if res[0].Position != 1 || res[1].Position != 1 || res[0].Duplicate == res[1].Duplicate {
			t.Fatalf("results %+v", res)
		}
		if h, _ := st.Head(ctx, w); h != 1 {
			t.Fatalf("stored %d", h)
		}
	})

	t.Run("ReadFilters", func(t *testing.T) {
		t.Parallel()
		w := ws()
		var b store.Batch
		for i := range 10 {
			e := event(w, fmt.Sprint(i))
			e.UserID = fmt.Sprintf("u%d", i%2)
			e.Type = []string{"track", "identify"}[i%2]
			e.Timestamp = e.Timestamp.Add(time.Duration(i) * time.Minute)
			b.Events = append(b.Events, e)
		}
		if _, err := st.Append(ctx, &b, time.Hour); err != nil {
			t.Fatal(err)
		}
		base := b.Events[0].Timestamp
		cases := []struct {
			q    store.LogQuery
			want []int64
		}{
			{store.LogQuery{UserID: "u1"}, []int64{2, 4, 6, 8, 10}},
			{store.LogQuery{Type: "track", After: 4}, []int64{5, 7, 9}},
			{store.LogQuery{Limit: 2, Descending: true}, []int64{10, 9}},
			{store.LogQuery{Before: 3}, []int64{1, 2}},
			{store.LogQuery{Since: base.Add(7 * time.Minute), Until: base.Add(9 * time.Minute)}, []int64{8, 9}},
			{store.LogQuery{Source: "nope"}, nil},
		}
		for _, c := range cases {
			c.q.Workspace = w
			evs, err := st.Read(ctx, c.q)
			if err != nil {
				t.Fatal(err)
			}
			var got []int64
			for _, e := range evs {
				got = append(got, e.Position)
			}
			if fmt.Sprint(got) != fmt.Sprint(c.want) {
				t.Errorf("%+v: got %v want %v", c.q, got, c.want)
			}
		}
	})

	t.Run("RetentionKeepsIdentityAndPositions", func(t *testing.T) {
		t.Parallel()
		w := ws()
		b := &store.Batch{Events: []store.Event{event(w, "1"), event(w, "2"), event(w, "3")}}
		b.Events[1].Type = "identify"
		if _, err := st.Append(ctx, b, time.Hour); err != nil {
			t.Fatal(err)
		}
		n, err := st.DeleteBefore(ctx, w, time.Now().Add(time.Hour), []string{"identify"})
		if err != nil || n != 2 {
			t.Fatalf("deleted %d, %v", n, err)
		}
		evs, _ := st.Read(ctx, store.LogQuery{Workspace: w})
		if len(evs) != 1 || evs[0].Type != "identify" {
			t.Fatalf("left %+v", evs)
		}
		res, err := st.Append(ctx, &store.Batch{Events: []store.Event{event(w, "4")}}, time.Hour)
		if err != nil || res[0].Position != 4 {
			t.Fatalf("position after retention: %+v %v (positions must not be reused)", res, err)
		}
	})

	t.Run("QuarantineAtomicWithEventsAndReplay", func(t *testing.T) {
		t.Parallel()
		w := ws()
		q := store.Quarantined{Workspace: w, Source: "web", MessageID: "bad", ReceivedAt: time.Now().UTC().Truncate(time.Millisecond),
			Code: "missing_event", Reason: "track needs event", Raw: json.RawMessage(`{"type":"track","userId":"u"}`)}
		if _, err := st.Append(ctx, &store.Batch{Events: []store.Event{event(w, "ok")}, Quarantine: []store.Quarantined{q}}, time.Hour); err != nil {
			t.Fatal(err)
		}
		items, err := st.ListQuarantine(ctx, store.QuarantineQuery{Workspace: w})
		if err != nil || len(items) != 1 || items[0].Code != "missing_event" || string(items[0].Raw) != string(q.Raw) {
			t.Fatalf("list %+v %v", items, err)
		}
		id := items[0].ID
		if _, err := st.GetQuarantined(ctx, "other-"+w, id); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("another workspace sees the item: %v", err)
		}
		fixed := event(w, "bad")
		if _, err := st.ReplayQuarantined(ctx, w, id, &store.Batch{Events: []store.Event{fixed}}, time.Hour); err != nil {
			t.Fatal(err)
		}
		if _, err := st.ReplayQuarantined(ctx, w, id, &store.Batch{Events: []store.Event{event(w, "again")}}, time.Hour); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("second replay: %v", err)
		}
		if h, _ := st.Head(ctx, w); h != 2 {
			t.Fatalf("head %d after replay (a failed replay must store nothing)", h)
		}
		if err := st.DeleteQuarantined(ctx, w, id); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("delete after replay: %v", err)
		}
	})

	t.Run("AddSourceOnce", func(t *testing.T) {
		t.Parallel()
		w := ws()
		other := open(t)
		var wg sync.WaitGroup
		added := make([]bool, 8)
		for i := range added {
			h := st
			if i%2 == 1 {
				h = other
			}
			wg.Go(func() {
				ok, err := h.AddSource(ctx, store.Source{Workspace: w, Slug: "default", KeyHash: []byte{byte(i)}})
				if err != nil {
					t.Error(err)
				}
				added[i] = ok
			})
		}
		wg.Wait()
		winner := slices.Index(added, true)
		if n := len(slices.DeleteFunc(slices.Clone(added), func(b bool) bool { return !b })); n != 1 {
			t.Fatalf("%d of 8 concurrent AddSource calls stored the source, want exactly 1", n)
		}
		srcs, err := st.Sources(ctx)
		if err != nil {
			t.Fatal(err)
		}
		for _, s := range srcs {
			if s.Workspace == w && (s.Slug != "default" || len(s.KeyHash) != 1 || s.KeyHash[0] != byte(winner)) {
				t.Fatalf("stored %+v, want the winner's (%d)", s, winner)
			}
		}
	})

	t.Run("Registry", func(t *testing.T) {
		t.Parallel()
		w := ws()
		if err := st.PutWorkspace(ctx, store.Workspace{Slug: w, Settings: json.RawMessage(`{"a":1}`)}); err != nil {
			t.Fatal(err)
		}
		if err := st.PutSource(ctx, store.Source{Workspace: w, Slug: "web", KeyHash: []byte{1, 2}}); err != nil {
			t.Fatal(err)
		}
		if err := st.PutSource(ctx, store.Source{Workspace: w, Slug: "web", KeyHash: []byte{3}}); err != nil { // upsert
			t.Fatal(err)
		}
		if err := st.PutToken(ctx, store.Token{Workspace: w, Name: "t", Hash: []byte{9}, Scopes: []string{"debug", "admin"}}); err != nil {
			t.Fatal(err)
		}
		srcs, _ := st.Sources(ctx)
		found := 0
		for _, s := range srcs {
			if s.Workspace == w {
				found++
				if string(s.KeyHash) != "\x03" {
					t.Errorf("source not replaced: %+v", s)
				}
			}
		}
		toks, _ := st.Tokens(ctx)
		for _, tk := range toks {
			if tk.Workspace == w && fmt.Sprint(tk.Scopes) != "[debug admin]" {
				t.Errorf("token scopes %v", tk.Scopes)
			}
		}
		if found != 1 {
			t.Fatalf("%d sources", found)
		}
		if err := st.DeleteSource(ctx, w, "web"); err != nil {
			t.Fatal(err)
		}
		if err := st.DeleteSource(ctx, w, "web"); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("second delete: %v", err)
		}
		if err := st.DeleteToken(ctx, w, "t"); err != nil {
			t.Fatal(err)
		}
		// Concurrent SetMetaIfAbsent calls agree on one value.
		key := "k-" + w
		vals := make([][]byte, 4)
		var wg sync.WaitGroup
		for i := range vals {
			wg.Add(1)
			go func() {
				defer wg.Done()
				v, err := st.SetMetaIfAbsent(ctx, key, []byte{byte(i)})
				if err != nil {
					t.Error(err)
				}
				vals[i] = v
			}()
		}
		wg.Wait()
		for _, v := range vals[1:] {
			if string(v) != string(vals[0]) {
				t.Fatalf("meta values disagree: %v", vals)
			}
		}
		if _, err := st.Meta(ctx, "absent-"+w); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("absent meta: %v", err)
		}
	})

	t.Run("DurabilityAndStats", func(t *testing.T) {
		t.Parallel()
		d, err := st.CheckDurability(ctx)
		if err != nil || d.Backend == "" || len(d.Settings) == 0 {
			t.Fatalf("%+v %v", d, err)
		}
		before := st.Stats().Commits
		if _, err := st.Append(ctx, &store.Batch{Events: []store.Event{event(ws(), "x")}}, time.Hour); err != nil {
			t.Fatal(err)
		}
		if st.Stats().Commits <= before {
			t.Fatal("commit not counted")
		}
		if err := st.Ping(ctx); err != nil {
			t.Fatal(err)
		}
	})

	runState(t, open, ws)
	runAudit(t, open, ws)
	runPrivacy(t, open, ws)
	runRequests(t, open, ws) // request.go
	runTokens(t, open, ws)
}

func event(ws, messageID string) store.Event {
	now := time.Now().UTC().Truncate(time.Millisecond)
	return store.Event{
		Workspace: ws, Source: "web", MessageID: messageID, Type: "track", Name: "Order Completed",
		UserID: "u-1", AnonymousID: "a-1", Timestamp: now.Add(-time.Second), ReceivedAt: now,
		Format: store.FormatVersion,
		Raw:    json.RawMessage(`{"type":"track","event":"Order Completed","userId":"u-1","messageId":"` + messageID + `"}`),
	}
}
