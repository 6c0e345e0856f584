package storetest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/kithcdp/kith/store"
)

var t0 = time.Date(2026, 11, 24, 10, 0, 0, 0, time.UTC)

func held(typ, value string, p store.ProfileID, pos int64) store.HeldIdentifier {
	return store.HeldIdentifier{Identifier: store.Identifier{Type: typ, Value: value}, Profile: p, Position: pos, AddedAt: t0.Add(time.Duration(pos) * time.Second)}
}

func trait(p store.ProfileID, key, value string, ts time.Duration, prio int, pos int64) store.TraitValue {
	return store.TraitValue{Profile: p, Key: key, Value: json.RawMessage(value), Timestamp: t0.Add(ts), Source: "web", Priority: prio, Position: pos}
}

func delta(p store.ProfileID, first, last time.Duration, n int64) store.ProfileDelta {
	return store.ProfileDelta{ID: p, Kind: store.KindUser, FirstSeen: t0.Add(first), LastSeen: t0.Add(last), Events: n}
}

// commit takes the lease (or renews it) and commits c from the cursor.
func commit(t *testing.T, st store.Store, c *store.Changes) {
	t.Helper()
	ctx := context.Background()
	l, err := st.AcquireLease(ctx, c.Workspace, "node", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	c.Epoch, c.From = l.Epoch, l.Position
	if c.To < c.From {
		c.To = c.From
	}
	if c.NextProfileID == 0 {
		c.NextProfileID = l.NextProfileID
	}
	if err := st.Commit(ctx, c); err != nil {
		t.Fatal(err)
	}
}

func traitText(t *testing.T, st store.Store, ws string, p store.ProfileID) string {
	t.Helper()
	tr, err := st.Traits(context.Background(), ws, p, nil)
	if err != nil {
		t.Fatal(err)
	}
	s := ""
	for _, x := range tr {
		s += fmt.Sprintf("%s=%s@%d ", x.Key, x.Value, x.Position)
	}
	return s
}

// runState runs the derived-state part of the suite, and its compute part
// (compute.go).
func runState(t *testing.T, open func(t *testing.T) store.Store, ws func() string) {
	runCompute(t, open, ws)
	runDelivery(t, open, ws)
	st := open(t)
	ctx := context.Background()

	t.Run("LeaseEpochs", func(t *testing.T) {
		t.Parallel()
		w := ws()
		a, err := st.AcquireLease(ctx, w, "a", time.Hour)
		if err != nil || a.Epoch != 1 || a.Position != 0 || a.NextProfileID != 1 {
			t.Fatalf("first lease %+v %v", a, err)
		}
		if again, err := st.AcquireLease(ctx, w, "a", time.Hour); err != nil || again.Epoch != 1 {
			t.Fatalf("renewal %+v %v", again, err)
		}
		if _, err := st.AcquireLease(ctx, w, "b", time.Hour); !errors.Is(err, store.ErrLeaseHeld) {
			t.Fatalf("b took a held lease: %v", err)
		}
		if err := st.ReleaseLease(ctx, a); err != nil {
			t.Fatal(err)
		}
		b, err := st.AcquireLease(ctx, w, "b", time.Hour)
		if err != nil || b.Epoch != 2 {
			t.Fatalf("takeover %+v %v", b, err)
		}
		// The former leader, paused across the takeover, cannot commit.
		err = st.Commit(ctx, &store.Changes{Workspace: w, Epoch: a.Epoch, From: 0, To: 5, NextProfileID: 2,
			Identifiers: []store.HeldIdentifier{held("user_id", "stale", 1, 5)}})
		if !errors.Is(err, store.ErrLeaseLost) {
			t.Fatalf("stale epoch commit: %v", err)
		}
		if _, err := st.Lookup(ctx, w, store.Identifier{Type: "user_id", Value: "stale"}); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("a refused commit wrote: %v", err)
		}
		// An expired lease is taken over without a release.
		w2 := ws()
		if _, err := st.AcquireLease(ctx, w2, "a", time.Millisecond); err != nil {
			t.Fatal(err)
		}
		time.Sleep(20 * time.Millisecond)
		if l, err := st.AcquireLease(ctx, w2, "b", time.Hour); err != nil || l.Epoch != 2 {
			t.Fatalf("expired takeover %+v %v", l, err)
		}
	})

	t.Run("CommitChecksCursor", func(t *testing.T) {
		t.Parallel()
		w := ws()
		l, err := st.AcquireLease(ctx, w, "a", time.Hour)
		if err != nil {
			t.Fatal(err)
		}
		c := &store.Changes{Workspace: w, Epoch: l.Epoch, From: 3, To: 9, NextProfileID: 2,
			Identifiers: []store.HeldIdentifier{held("user_id", "u", 1, 9)}, Profiles: []store.ProfileDelta{delta(1, 0, 0, 1)}}
		if err := st.Commit(ctx, c); !errors.Is(err, store.ErrLeaseLost) {
			t.Fatalf("commit from a wrong cursor: %v", err)
		}
		if _, err := st.Profile(ctx, w, 1); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("a refused commit wrote: %v", err)
		}
		c.From = 0
		if err := st.Commit(ctx, c); err != nil {
			t.Fatal(err)
		}
		if cur, err := st.Cursors(ctx); err != nil || cur[w] != 9 {
			t.Fatalf("cursor %v %v", cur[w], err)
		}
		if l, _ := st.AcquireLease(ctx, w, "a", time.Hour); l.Position != 9 || l.NextProfileID != 2 {
			t.Fatalf("lease after commit %+v", l)
		}
	})

	t.Run("CommitAndRead", func(t *testing.T) {
		t.Parallel()
		w := ws()
		commit(t, st, &store.Changes{Workspace: w, To: 6, NextProfileID: 3,
			Identifiers: []store.HeldIdentifier{held("user_id", "u1", 1, 1), held("email", "ada@example.com", 1, 1), held("group_id", "acme", 2, 3)},
			Profiles:    []store.ProfileDelta{delta(1, time.Minute, 2*time.Minute, 2), delta(1, 0, time.Minute, 3), {ID: 2, Kind: store.KindAccount, FirstSeen: t0, LastSeen: t0, Events: 1}},
			Traits: []store.TraitValue{trait(1, "name", `"Ada"`, 0, 0, 1), trait(1, "plan", `"free"`, 0, 0, 1),
				trait(1, "plan", `"pro"`, time.Hour, 0, 4), trait(1, "gone", `"x"`, 0, 0, 1), trait(1, "gone", `null`, time.Hour, 0, 5)},
			Timeline:  []store.TimelineEntry{{Profile: 1, Position: 1}, {Profile: 1, Position: 4}, {Profile: 1, Position: 5}, {Profile: 2, Position: 3}},
			Links:     []store.Link{{User: 1, Account: 2, Position: 3, At: t0}, {User: 1, Account: 2, Position: 6, At: t0}},
			Decisions: []store.Decision{{Position: 2, Identifier: store.Identifier{Type: "user_id", Value: "0"}, Code: "blocked", Reason: "blocked", At: t0}},
		})
		if p, err := st.Lookup(ctx, w, store.Identifier{Type: "email", Value: "ada@example.com"}); err != nil || p != 1 {
			t.Fatalf("lookup %v %v", p, err)
		}
		prof, err := st.Profile(ctx, w, 1)
		if err != nil || prof.Events != 5 || !prof.FirstSeen.Equal(t0) || !prof.LastSeen.Equal(t0.Add(2*time.Minute)) || prof.Kind != store.KindUser {
			t.Fatalf("profile %+v %v", prof, err)
		}
		if got := traitText(t, st, w, 1); got != `name="Ada"@1 plan="pro"@4 ` {
			t.Fatalf("traits %q (a later value wins; null clears)", got)
		}
		if tr, _ := st.Traits(ctx, w, 1, []string{"plan"}); len(tr) != 1 || tr[0].Key != "plan" {
			t.Fatalf("traits by key %+v", tr)
		}
		hist, err := st.TraitHistory(ctx, w, 1, "plan", 0, 10)
		if err != nil || len(hist) != 2 || string(hist[0].Value) != `"pro"` {
			t.Fatalf("history %+v %v", hist, err)
		}
		if hist, _ := st.TraitHistory(ctx, w, 1, "plan", hist[0].Position, 10); len(hist) != 1 || string(hist[0].Value) != `"free"` {
			t.Fatalf("history page 2 %+v", hist)
		}
		if tl, _ := st.Timeline(ctx, w, 1, 0, 2); !slices.Equal(tl, []int64{5, 4}) {
			t.Fatalf("timeline %v", tl)
		}
		if tl, _ := st.Timeline(ctx, w, 1, 4, 10); !slices.Equal(tl, []int64{1}) {
			t.Fatalf("timeline page 2 %v", tl)
		}
		for _, p := range []store.ProfileID{1, 2} {
			if links, err := st.Links(ctx, w, p); err != nil || len(links) != 1 || links[0].User != 1 || links[0].Account != 2 {
				t.Fatalf("links of %d: %+v %v", p, links, err)
			}
		}
		if ids, _ := st.Identifiers(ctx, w, 1); len(ids) != 2 || ids[0].Type != "email" {
			t.Fatalf("identifiers %+v", ids)
		}
		if d, _ := st.Decisions(ctx, w, 0, 10); len(d) != 1 || d[0].Code != "blocked" {
			t.Fatalf("decisions %+v", d)
		}
	})

	t.Run("TraitCommitsCommute", func(t *testing.T) {
		t.Parallel()
		a := []store.TraitValue{trait(1, "plan", `"late"`, time.Hour, 0, 1), trait(1, "tier", `"crm"`, 0, 10, 2)}
		b := []store.TraitValue{trait(1, "plan", `"early"`, time.Minute, 0, 3), trait(1, "tier", `"web"`, time.Hour, 0, 4)}
		var got []string
		for _, order := range [][][]store.TraitValue{{a, b}, {b, a}} {
			w := ws()
			for _, tv := range order {
				commit(t, st, &store.Changes{Workspace: w, Traits: tv, Profiles: []store.ProfileDelta{delta(1, 0, 0, 1)}})
			}
			got = append(got, traitText(t, st, w, 1))
		}
		want := `plan="late"@1 tier="crm"@2 `
		if got[0] != want || got[1] != want {
			t.Fatalf("traits depend on commit order: %q / %q, want %q (priority first, then time)", got[0], got[1], want)
		}
	})

	t.Run("HistoryKeepsChanges", func(t *testing.T) {
		t.Parallel()
		w := ws()
		for _, batch := range [][]store.TraitValue{
			{trait(1, "plan", `"a"`, time.Minute, 0, 1), trait(1, "plan", `"a"`, 2*time.Minute, 0, 2)},
			{trait(1, "plan", `"a"`, 3*time.Minute, 0, 3), trait(1, "plan", `"b"`, 4*time.Minute, 0, 4), trait(1, "plan", `"b"`, 5*time.Minute, 0, 5)},
			{trait(1, "plan", `"a"`, 6*time.Minute, 0, 6)},
		} {
			commit(t, st, &store.Changes{Workspace: w, Traits: batch, Profiles: []store.ProfileDelta{delta(1, 0, 0, 1)}})
		}
		hist, err := st.TraitHistory(ctx, w, 1, "plan", 0, 10)
		if err != nil {
			t.Fatal(err)
		}
		var got []string
		for _, h := range hist {
			got = append(got, fmt.Sprint(string(h.Value), "@", h.Position))
		}
		if want := []string{`"a"@6`, `"b"@4`, `"a"@1`}; !slices.Equal(got, want) {
			t.Fatalf("history %v, want only the changes %v", got, want)
		}
		if cur := traitText(t, st, w, 1); cur != `plan="a"@6 ` {
			t.Fatalf("current %q", cur)
		}
	})

	t.Run("MergeMovesEverything", func(t *testing.T) {
		t.Parallel()
		w := ws()
		commit(t, st, &store.Changes{Workspace: w, To: 4, NextProfileID: 4,
			Identifiers: []store.HeldIdentifier{held("user_id", "u", 1, 1), held("anonymous_id", "a", 2, 2), held("group_id", "g", 3, 3)},
			Profiles:    []store.ProfileDelta{delta(1, time.Hour, time.Hour, 1), delta(2, 0, 0, 2), {ID: 3, Kind: store.KindAccount, FirstSeen: t0, LastSeen: t0, Events: 1}},
			Traits:      []store.TraitValue{trait(1, "name", `"Old"`, 0, 0, 1), trait(2, "name", `"New Name"`, time.Hour, 0, 2), trait(2, "city", `"Oslo"`, 0, 0, 2)},
			Timeline:    []store.TimelineEntry{{Profile: 1, Position: 1}, {Profile: 2, Position: 2}, {Profile: 2, Position: 3}},
			Links:       []store.Link{{User: 2, Account: 3, Position: 3, At: t0}},
		})
		commit(t, st, &store.Changes{Workspace: w, To: 5,
			Merges:      []store.Merge{{Into: 1, From: 2, Via: store.Identifier{Type: "anonymous_id", Value: "a"}, Position: 5, At: t0}},
			Identifiers: []store.HeldIdentifier{held("email", "e@x.io", 1, 5)},
			Profiles:    []store.ProfileDelta{delta(1, 2*time.Hour, 2*time.Hour, 1)},
			Timeline:    []store.TimelineEntry{{Profile: 1, Position: 5}},
		})
		if p, _ := st.Lookup(ctx, w, store.Identifier{Type: "anonymous_id", Value: "a"}); p != 1 {
			t.Fatalf("identifier not moved: %d", p)
		}
		if got := traitText(t, st, w, 1); got != `city="Oslo"@2 name="New Name"@2 ` {
			t.Fatalf("merged traits %q", got)
		}
		if tl, _ := st.Timeline(ctx, w, 1, 0, 10); !slices.Equal(tl, []int64{5, 3, 2, 1}) {
			t.Fatalf("merged timeline %v", tl)
		}
		prof, _ := st.Profile(ctx, w, 1)
		if prof.Events != 4 || !prof.FirstSeen.Equal(t0) || !prof.LastSeen.Equal(t0.Add(2*time.Hour)) {
			t.Fatalf("merged profile %+v", prof)
		}
		if old, err := st.Profile(ctx, w, 2); err != nil || old.MergedInto != 1 {
			t.Fatalf("old profile %+v %v", old, err)
		}
		if links, _ := st.Links(ctx, w, 3); len(links) != 1 || links[0].User != 1 {
			t.Fatalf("links %+v", links)
		}
		if hist, _ := st.TraitHistory(ctx, w, 1, "name", 0, 10); len(hist) != 2 {
			t.Fatalf("history %+v", hist)
		}
		if m, _ := st.Merges(ctx, w, 1); len(m) != 1 || m[0].From != 2 || m[0].Via.Value != "a" {
			t.Fatalf("merges %+v", m)
		}
		counts := map[store.ProfileID]int{}
		if err := st.ScanMergeCounts(ctx, w, func(p store.ProfileID, n int) error { counts[p] = n; return nil }); err != nil || counts[1] != 1 || len(counts) != 1 {
			t.Fatalf("merge counts %v %v", counts, err)
		}
		n := 0
		if err := st.ScanIdentifiers(ctx, w, func(h store.HeldIdentifier) error {
			n++
			if h.Type == "anonymous_id" && (h.Profile != 1 || !h.AddedAt.Equal(t0.Add(2*time.Second))) {
				t.Errorf("scanned %+v", h)
			}
			return nil
		}); err != nil || n != 4 {
			t.Fatalf("scanned %d identifiers: %v", n, err)
		}
		// A profile created and merged away within one batch still redirects.
		commit(t, st, &store.Changes{Workspace: w, To: 6, Merges: []store.Merge{{Into: 1, From: 7, Position: 6, At: t0}}})
		if p, err := st.Profile(ctx, w, 7); err != nil || p.MergedInto != 1 {
			t.Fatalf("profile merged in its own batch %+v %v", p, err)
		}
	})

	t.Run("Search", func(t *testing.T) {
		t.Parallel()
		w := ws()
		c := &store.Changes{Workspace: w}
		for i := 1; i <= 12; i++ {
			p := store.ProfileID(i)
			c.Profiles = append(c.Profiles, delta(p, 0, 0, 1))
			c.Identifiers = append(c.Identifiers, held("user_id", fmt.Sprint("u", i), p, int64(i)))
			c.Traits = append(c.Traits, trait(p, "name", fmt.Sprintf(`"Ada Lovelace %d"`, i), 0, 0, int64(i)),
				trait(p, "tier", fmt.Sprint(i%3), 0, 0, int64(i)), trait(p, "email", fmt.Sprintf(`"ada%d@example.com"`, i), 0, 0, int64(i)))
		}
		c.Profiles = append(c.Profiles, store.ProfileDelta{ID: 13, Kind: store.KindAccount, FirstSeen: t0, LastSeen: t0, Events: 1})
		c.Traits = append(c.Traits, trait(13, "name", `"Ada Corp"`, 0, 0, 13))
		commit(t, st, c)
		count := func(s store.ProfileSearch) int {
			s.Workspace, s.Limit = w, 5
			total := 0
			for {
				page, err := st.Search(ctx, s)
				if err != nil {
					t.Fatal(err)
				}
				total += len(page)
				if len(page) < 5 {
					return total
				}
				s.After = page[len(page)-1].ID
			}
		}
		for name, tt := range map[string]struct {
			s    store.ProfileSearch
			want int
		}{
			"identifier":      {store.ProfileSearch{Identifier: &store.Identifier{Type: "user_id", Value: "u3"}}, 1},
			"trait exact":     {store.ProfileSearch{TraitKey: "tier", TraitValue: json.RawMessage("1")}, 4},
			"trait prefix":    {store.ProfileSearch{TraitKey: "email", TraitPrefix: "ada1"}, 4},
			"text word":       {store.ProfileSearch{Text: "LOVE"}, 12},
			"text email":      {store.ProfileSearch{Text: "ada1"}, 4},
			"text accounts":   {store.ProfileSearch{Text: "ada", Kind: store.KindAccount}, 1},
			"text no match":   {store.ProfileSearch{Text: "grace"}, 0},
			"trait no match":  {store.ProfileSearch{TraitKey: "tier", TraitValue: json.RawMessage(`"1"`)}, 0},
			"identifier none": {store.ProfileSearch{Identifier: &store.Identifier{Type: "email", Value: "u3"}}, 0},
		} {
			if got := count(tt.s); got != tt.want {
				t.Errorf("%s: %d profiles, want %d", name, got, tt.want)
			}
		}
	})

	t.Run("Reset", func(t *testing.T) {
		t.Parallel()
		w := ws()
		commit(t, st, &store.Changes{Workspace: w, To: 3, NextProfileID: 2,
			Identifiers: []store.HeldIdentifier{held("user_id", "u", 1, 1)}, Profiles: []store.ProfileDelta{delta(1, 0, 0, 1)}})
		l, _ := st.AcquireLease(ctx, w, "node", time.Hour)
		if err := st.Reset(ctx, w, l.Epoch+1); !errors.Is(err, store.ErrLeaseLost) {
			t.Fatalf("reset under a stale epoch: %v", err)
		}
		if err := st.Reset(ctx, w, l.Epoch); err != nil {
			t.Fatal(err)
		}
		if _, err := st.Lookup(ctx, w, store.Identifier{Type: "user_id", Value: "u"}); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("identifier survived the reset: %v", err)
		}
		if l, _ := st.AcquireLease(ctx, w, "node", time.Hour); l.Position != 0 || l.NextProfileID != 1 {
			t.Fatalf("lease after reset %+v", l)
		}
	})

	t.Run("OneOfConcurrentCommitsWins", func(t *testing.T) {
		t.Parallel()
		w := ws()
		other := open(t)
		l, err := st.AcquireLease(ctx, w, "a", time.Hour)
		if err != nil {
			t.Fatal(err)
		}
		var wg sync.WaitGroup
		errs := make([]error, 8)
		for i := range errs {
			h := st
			if i%2 == 1 {
				h = other
			}
			wg.Go(func() {
				errs[i] = h.Commit(ctx, &store.Changes{Workspace: w, Epoch: l.Epoch, From: 0, To: int64(10 + i), NextProfileID: 2,
					Profiles: []store.ProfileDelta{delta(1, 0, 0, 1)}})
			})
		}
		wg.Wait()
		ok := 0
		for _, err := range errs {
			switch {
			case err == nil:
				ok++
			case !errors.Is(err, store.ErrLeaseLost):
				t.Errorf("commit: %v", err)
			}
		}
		if p, _ := st.Profile(ctx, w, 1); ok != 1 || p.Events != 1 {
			t.Fatalf("%d commits from the same cursor succeeded; profile has %d events", ok, p.Events)
		}
	})

	t.Run("ReadPositions", func(t *testing.T) {
		t.Parallel()
		w := ws()
		b := &store.Batch{Events: []store.Event{event(w, "a"), event(w, "b"), event(w, "c")}}
		if _, err := st.Append(ctx, b, time.Hour); err != nil {
			t.Fatal(err)
		}
		got, err := st.Read(ctx, store.LogQuery{Workspace: w, Positions: []int64{3, 1, 99}, Descending: true})
		if err != nil || len(got) != 2 || got[0].Position != 3 || got[1].Position != 1 {
			t.Fatalf("read positions: %+v %v", got, err)
		}
	})
}
