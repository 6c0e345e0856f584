package storetest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/kithcdp/kith/store"
)

func cstate(p store.ProfileID, key, data string) store.ComputeState {
	var d []byte
	if data != "-" {
		d = []byte(data)
	}
	return store.ComputeState{Profile: p, Key: key, Data: d}
}

func cvalue(p store.ProfileID, name, value string, pos int64) store.ComputedValue {
	var v json.RawMessage
	if value != "-" {
		v = json.RawMessage(value)
	}
	return store.ComputedValue{Profile: p, Name: name, Value: v, At: t0.Add(time.Duration(pos) * time.Second), Position: pos}
}

func enter(aud string, p store.ProfileID, at time.Time, pos int64) store.AudienceChange {
	return store.AudienceChange{Audience: aud, Profile: p, Entered: true, Reason: "evaluated", At: at, Position: pos}
}

func exit(aud string, p store.ProfileID, at time.Time, pos int64) store.AudienceChange {
	return store.AudienceChange{Audience: aud, Profile: p, Reason: "expired", At: at, Position: pos}
}

func outboxEntry(kind string, p store.ProfileID, pos int64, key string) store.OutboxEntry {
	return store.OutboxEntry{Kind: kind, Profile: p, Position: pos, Key: key,
		Payload: json.RawMessage(fmt.Sprintf(`{"type":"track","event":"Audience Entered","properties":{"audience":%q}}`, key)),
		At:      t0.Add(time.Duration(pos) * time.Second)}
}

// computeText lists a workspace's compute states and computed values,
// sorted, as "p/key=data" and "p/name=value@pos".
func computeText(t *testing.T, st store.Store, ws string) (states, values []string) {
	t.Helper()
	ctx := context.Background()
	if err := st.ScanComputeStates(ctx, ws, func(s store.ComputeState) error {
		states = append(states, fmt.Sprintf("%d/%s=%s", s.Profile, s.Key, s.Data))
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if err := st.ScanComputedValues(ctx, ws, func(v store.ComputedValue) error {
		values = append(values, fmt.Sprintf("%d/%s=%s@%d", v.Profile, v.Name, v.Value, v.Position))
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	slices.Sort(states)
	slices.Sort(values)
	return states, values
}

// membersText lists a workspace's memberships, sorted, as "audience/p".
func membersText(t *testing.T, st store.Store, ws string) []string {
	t.Helper()
	var out []string
	if err := st.ScanMembers(context.Background(), ws, func(a string, p store.ProfileID) error {
		out = append(out, fmt.Sprintf("%s/%d", a, p))
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	slices.Sort(out)
	return out
}

// allMembers pages through an audience's members, limit at a time.
func allMembers(t *testing.T, st store.Store, ws, aud string, limit int) []store.ProfileID {
	t.Helper()
	var out []store.ProfileID
	var after store.ProfileID
	for {
		page, err := st.Members(context.Background(), ws, aud, after, limit)
		if err != nil {
			t.Fatal(err)
		}
		if len(page) > limit {
			t.Fatalf("page of %d members, limit %d", len(page), limit)
		}
		out = append(out, page...)
		if len(page) < limit {
			return out
		}
		after = page[len(page)-1]
	}
}

// allHistory pages through an audience's history, limit at a time, as
// "+p@pos" and "-p@pos", newest first.
func allHistory(t *testing.T, st store.Store, ws, aud string, p store.ProfileID, limit int) []string {
	t.Helper()
	var out []string
	var before int64
	for {
		page, err := st.AudienceHistory(context.Background(), ws, aud, p, before, limit)
		if err != nil {
			t.Fatal(err)
		}
		for i, e := range page {
			if e.Audience != aud || (before > 0 && e.Seq >= before) || (i > 0 && e.Seq >= page[i-1].Seq) {
				t.Fatalf("history entry %+v after seq %d", e, before)
			}
			sign := "-"
			if e.Entered {
				sign = "+"
			}
			out = append(out, fmt.Sprintf("%s%d@%d", sign, e.Profile, e.Position))
		}
		if len(page) < limit {
			return out
		}
		before = page[len(page)-1].Seq
	}
}

// allOutbox pages through a workspace's outbox, limit at a time.
func allOutbox(t *testing.T, st store.Store, ws string, limit int) []store.OutboxEntry {
	t.Helper()
	var out []store.OutboxEntry
	var after int64
	for {
		page, err := st.ReadOutbox(context.Background(), ws, after, limit)
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range page {
			if e.ID <= after || e.Workspace != ws {
				t.Fatalf("outbox entry %+v after id %d", e, after)
			}
			after = e.ID
		}
		out = append(out, page...)
		if len(page) < limit {
			return out
		}
	}
}

func outboxText(es []store.OutboxEntry) []string {
	var out []string
	for _, e := range es {
		out = append(out, fmt.Sprintf("%s/%d@%d/%s", e.Kind, e.Profile, e.Position, e.Key))
	}
	return out
}

// runCompute runs the compute part of the suite (store/compute.go):
// ComputeStore and the compute changes of Commit, and Definitions.
func runCompute(t *testing.T, open func(t *testing.T) store.Store, ws func() string) {
	st := open(t)
	ctx := context.Background()

	t.Run("ComputeStatesAndValues", func(t *testing.T) {
		t.Parallel()
		w := ws()
		commit(t, st, &store.Changes{Workspace: w, To: 3, Compute: store.ComputeChanges{
			States: []store.ComputeState{cstate(1, "orders:1", "a"), cstate(1, "orders:1", "b"), cstate(1, "gone:1", "x"),
				cstate(2, "orders:1", "\x00\xff binary"), cstate(3, "empty:1", "")},
			Values: []store.ComputedValue{cvalue(1, "orders", `1`, 1), cvalue(1, "orders", `{ "n" : 2 }`, 2),
				cvalue(1, "ltv", `9.5`, 2), cvalue(2, "orders", `"x"`, 3), cvalue(2, "gone", `true`, 3)},
		}})
		commit(t, st, &store.Changes{Workspace: w, To: 4, Compute: store.ComputeChanges{
			// Deleted by nil; a delete and a re-set in one batch: the last wins.
			States: []store.ComputeState{cstate(1, "gone:1", "-"), cstate(2, "orders:1", "-"), cstate(2, "orders:1", "again"),
				cstate(9, "absent:1", "-")},
			Values: []store.ComputedValue{cvalue(2, "gone", "-", 4), cvalue(1, "ltv", "-", 4), cvalue(1, "ltv", `10`, 4),
				cvalue(9, "absent", "-", 4)},
		}})
		states, values := computeText(t, st, w)
		if want := []string{"1/orders:1=b", "2/orders:1=again", "3/empty:1="}; !slices.Equal(states, want) {
			t.Fatalf("states %q, want %q", states, want)
		}
		if want := []string{`1/ltv=10@4`, `1/orders={"n":2}@2`, `2/orders="x"@3`}; !slices.Equal(values, want) {
			t.Fatalf("values %q, want %q", values, want)
		}
		if err := st.ScanComputeStates(ctx, w, func(s store.ComputeState) error {
			if s.Data == nil {
				t.Errorf("state %d/%s scanned with nil data (nil deletes)", s.Profile, s.Key)
			}
			return nil
		}); err != nil {
			t.Fatal(err)
		}
		got, err := st.ComputedValues(ctx, w, 1)
		if err != nil || len(got) != 2 || got[0].Name != "ltv" || got[1].Name != "orders" {
			t.Fatalf("computed values by name %+v %v", got, err)
		}
		if v := got[1]; string(v.Value) != `{"n":2}` || !v.At.Equal(t0.Add(2*time.Second)) || v.Position != 2 || v.Profile != 1 {
			t.Fatalf("computed value %+v", v)
		}
		if got, err := st.ComputedValues(ctx, w, 7); err != nil || len(got) != 0 {
			t.Fatalf("values of a profile without any %+v %v", got, err)
		}
		// An error of fn stops a scan and is returned as it is.
		stop := errors.New("stop")
		n := 0
		if err := st.ScanComputeStates(ctx, w, func(store.ComputeState) error { n++; return stop }); err != stop || n != 1 {
			t.Fatalf("scan after fn failed: %v after %d calls", err, n)
		}
		if err := st.ScanComputedValues(ctx, w, func(store.ComputedValue) error { return stop }); err != stop {
			t.Fatalf("scan values after fn failed: %v", err)
		}
	})

	t.Run("ScanTraitsAndLinks", func(t *testing.T) {
		t.Parallel()
		w := ws()
		commit(t, st, &store.Changes{Workspace: w, To: 5,
			Profiles: []store.ProfileDelta{delta(1, 0, 0, 1), delta(2, 0, 0, 1), {ID: 3, Kind: store.KindAccount, FirstSeen: t0, LastSeen: t0, Events: 1}},
			Traits: []store.TraitValue{trait(1, "plan", `"free"`, 0, 0, 1), trait(1, "plan", `"pro"`, time.Hour, 0, 2),
				trait(1, "city", `"Oslo"`, 0, 0, 1), trait(2, "plan", `"x"`, 0, 0, 3), trait(2, "plan", `null`, time.Hour, 0, 4),
				trait(2, "email", `"b@x.io"`, 0, 0, 3)},
			Links: []store.Link{{User: 1, Account: 3, Position: 5, At: t0}, {User: 2, Account: 3, Position: 5, At: t0}},
		})
		var got []string
		if err := st.ScanTraits(ctx, w, []string{"plan", "email", "absent"}, func(p store.ProfileID, tr store.Trait) error {
			got = append(got, fmt.Sprintf("%d/%s=%s@%d/%s", p, tr.Key, tr.Value, tr.Position, tr.Source))
			if !tr.Timestamp.Equal(t0) && !tr.Timestamp.Equal(t0.Add(time.Hour)) {
				t.Errorf("trait timestamp %v", tr.Timestamp)
			}
			return nil
		}); err != nil {
			t.Fatal(err)
		}
		slices.Sort(got)
		if want := []string{`1/plan="pro"@2/web`, `2/email="b@x.io"@3/web`}; !slices.Equal(got, want) {
			t.Fatalf("scanned traits %q, want %q (current values of the given keys; null is no value)", got, want)
		}
		if err := st.ScanTraits(ctx, w, nil, func(store.ProfileID, store.Trait) error {
			t.Error("no keys scanned a trait")
			return nil
		}); err != nil {
			t.Fatal(err)
		}
		var links []string
		if err := st.ScanLinks(ctx, w, func(l store.Link) error {
			links = append(links, fmt.Sprintf("%d>%d@%d", l.User, l.Account, l.Position))
			if !l.At.Equal(t0) {
				t.Errorf("link at %v", l.At)
			}
			return nil
		}); err != nil {
			t.Fatal(err)
		}
		slices.Sort(links)
		if want := []string{"1>3@5", "2>3@5"}; !slices.Equal(links, want) {
			t.Fatalf("links %q, want %q", links, want)
		}
	})

	t.Run("AudienceMembersAndHistory", func(t *testing.T) {
		t.Parallel()
		w := ws()
		var changes []store.AudienceChange
		for p := store.ProfileID(1); p <= 25; p++ {
			changes = append(changes, enter("vip", p, t0, int64(p)))
		}
		// In one batch, in order: 3 exits; 4 exits and enters again; 5
		// enters again while a member (it keeps its since); 30 exits
		// without being a member.
		changes = append(changes, exit("vip", 3, t0.Add(time.Minute), 26), exit("vip", 4, t0.Add(time.Minute), 27),
			enter("vip", 4, t0.Add(2*time.Minute), 28), enter("vip", 5, t0.Add(3*time.Minute), 29),
			exit("vip", 30, t0.Add(time.Minute), 30), enter("other", 1, t0, 31))
		commit(t, st, &store.Changes{Workspace: w, To: 31, Compute: store.ComputeChanges{Audiences: changes}})
		var want []store.ProfileID
		for p := store.ProfileID(1); p <= 25; p++ {
			if p != 3 {
				want = append(want, p)
			}
		}
		for _, limit := range []int{1, 10, 24, 100} {
			if got := allMembers(t, st, w, "vip", limit); !slices.Equal(got, want) {
				t.Fatalf("members by %d: %v, want %v", limit, got, want)
			}
		}
		if n, err := st.MemberCount(ctx, w, "vip"); err != nil || n != 24 {
			t.Fatalf("member count %d %v", n, err)
		}
		if n, err := st.MemberCount(ctx, w, "nobody"); err != nil || n != 0 {
			t.Fatalf("member count of an empty audience %d %v", n, err)
		}
		if page, err := st.Members(ctx, w, "vip", 0, 0); err != nil || len(page) != 24 {
			t.Fatalf("members with the default limit: %d %v", len(page), err)
		}
		if m := membersText(t, st, w); len(m) != 25 || m[0] != "other/1" || !slices.Contains(m, "vip/4") || slices.Contains(m, "vip/3") {
			t.Fatalf("scanned members %q", m)
		}

		// The next batch: 4 and 5 exit, 3 enters again.
		commit(t, st, &store.Changes{Workspace: w, To: 34, Compute: store.ComputeChanges{Audiences: []store.AudienceChange{
			exit("vip", 4, t0.Add(time.Hour), 32), exit("vip", 5, t0.Add(time.Hour), 33), enter("vip", 3, t0.Add(time.Hour), 34)}}})
		hist := allHistory(t, st, w, "vip", 0, 4)
		if len(hist) != 33 || !slices.Equal(hist[:8], []string{"+3@34", "-5@33", "-4@32", "-30@30", "+5@29", "+4@28", "-4@27", "-3@26"}) ||
			hist[32] != "+1@1" {
			t.Fatalf("history %q", hist)
		}
		if all := allHistory(t, st, w, "vip", 0, 1000); !slices.Equal(all, hist) {
			t.Fatalf("history in one page %q, in pages of 4 %q", all, hist)
		}
		if h := allHistory(t, st, w, "vip", 4, 2); !slices.Equal(h, []string{"-4@32", "+4@28", "-4@27", "+4@4"}) {
			t.Fatalf("history of profile 4 %q", h)
		}
		if h := allHistory(t, st, w, "other", 0, 10); !slices.Equal(h, []string{"+1@31"}) {
			t.Fatalf("history of another audience %q", h)
		}
		page, err := st.AudienceHistory(ctx, w, "vip", 3, 0, 1)
		if err != nil || len(page) != 1 {
			t.Fatalf("history page %+v %v", page, err)
		}
		if e := page[0]; !e.Entered || e.Reason != "evaluated" || !e.At.Equal(t0.Add(time.Hour)) || e.Position != 34 || e.Profile != 3 || e.Seq <= 0 {
			t.Fatalf("history entry %+v", e)
		}
		if page, _ := st.AudienceHistory(ctx, w, "vip", 3, page[0].Seq, 10); len(page) != 2 || page[0].Entered || page[0].Reason != "expired" {
			t.Fatalf("exit entry %+v", page)
		}
		if got := allMembers(t, st, w, "vip", 100); len(got) != 23 || !slices.Contains(got, 3) || slices.Contains(got, 4) || slices.Contains(got, 5) {
			t.Fatalf("members after the second batch %v", got)
		}
	})

	t.Run("AudienceOverlapAndTraitLift", func(t *testing.T) {
		t.Parallel()
		w := ws()
		// Users 1…10, account 11, user 12 merged into 1. vip = {1, 2, 3},
		// active = {2, 3, 4, 5}. plan: pro for 1…4 (and 12 before its
		// merge), free for 5…10; city Oslo for 1, 2 and 5; every user a
		// different email; the account has plan pro too.
		var profiles []store.ProfileDelta
		var traits []store.TraitValue
		for p := store.ProfileID(1); p <= 12; p++ {
			d := delta(p, 0, 0, 1)
			if p == 11 {
				d.Kind = store.KindAccount
			}
			profiles = append(profiles, d)
			plan := `"free"`
			if p <= 4 || p >= 11 {
				plan = `"pro"`
			}
			traits = append(traits, trait(p, "plan", plan, 0, 0, int64(p)))
			if p != 11 {
				traits = append(traits, trait(p, "email", fmt.Sprintf(`"p%d@x.io"`, p), 0, 0, int64(p)))
			}
			if p == 1 || p == 2 || p == 5 {
				traits = append(traits, trait(p, "city", `"Oslo"`, 0, 0, int64(p)))
			}
		}
		traits = append(traits, trait(3, "city", `null`, 0, 0, 3)) // cleared: no value
		var changes []store.AudienceChange
		for _, p := range []store.ProfileID{1, 2, 3} {
			changes = append(changes, enter("vip", p, t0, int64(p)))
		}
		for _, p := range []store.ProfileID{2, 3, 4, 5} {
			changes = append(changes, enter("active", p, t0, int64(p)))
		}
		commit(t, st, &store.Changes{Workspace: w, To: 12, Profiles: profiles, Traits: traits,
			Compute: store.ComputeChanges{Audiences: changes}})
		commit(t, st, &store.Changes{Workspace: w, To: 13, Merges: []store.Merge{{Into: 1, From: 12, Position: 13, At: t0}}})
		// Another workspace's rows count for nothing.
		commit(t, st, &store.Changes{Workspace: w + "-other", To: 1, Profiles: []store.ProfileDelta{delta(1, 0, 0, 1)},
			Traits:  []store.TraitValue{trait(1, "plan", `"pro"`, 0, 0, 1)},
			Compute: store.ComputeChanges{Audiences: []store.AudienceChange{enter("vip", 1, t0, 1), enter("active", 1, t0, 1)}}})

		for _, c := range []struct {
			a, b string
			want int64
		}{{"vip", "active", 2}, {"active", "vip", 2}, {"vip", "vip", 3}, {"vip", "nobody", 0}, {"nobody", "nobody", 0}} {
			if n, err := st.AudienceOverlap(ctx, w, c.a, c.b); err != nil || n != c.want {
				t.Errorf("overlap of %s and %s: %d %v, want %d", c.a, c.b, n, err, c.want)
			}
		}
		if n, err := st.ProfileCount(ctx, w, store.KindUser); err != nil || n != 10 {
			t.Errorf("user profiles %d %v, want 10 (12 is merged)", n, err)
		}
		if n, err := st.ProfileCount(ctx, w, store.KindAccount); err != nil || n != 1 {
			t.Errorf("account profiles %d %v, want 1", n, err)
		}
		if n, err := st.ProfileCount(ctx, ws(), store.KindUser); err != nil || n != 0 {
			t.Errorf("profiles of an empty workspace %d %v", n, err)
		}

		text := func(ls []store.TraitLift) []string {
			var out []string
			for _, l := range ls {
				out = append(out, fmt.Sprintf("%s=%s %d/%d", l.Key, l.Value, l.Members, l.Overall))
			}
			return out
		}
		// vip's plan pro: 3 of the 4 users holding it; city Oslo: 2 of 3;
		// each email 1 of 1 (left out from 2 members on).
		got, err := st.TraitLift(ctx, w, "vip", store.KindUser, 2, 10)
		if want := []string{`plan="pro" 3/4`, `city="Oslo" 2/3`}; err != nil || !slices.Equal(text(got), want) {
			t.Fatalf("lift of vip: %q %v, want %q", text(got), err, want)
		}
		// Profile 1 holds 12's email since the merge (the later value).
		got, err = st.TraitLift(ctx, w, "vip", store.KindUser, 1, 3)
		if want := []string{`email="p12@x.io" 1/1`, `email="p2@x.io" 1/1`, `email="p3@x.io" 1/1`}; err != nil || !slices.Equal(text(got), want) {
			t.Fatalf("lift of vip from 1 member, 3 values: %q %v, want %q", text(got), err, want)
		}
		got, err = st.TraitLift(ctx, w, "active", store.KindUser, 2, 10)
		if want := []string{`plan="pro" 3/4`, `city="Oslo" 2/3`}; err != nil || !slices.Equal(text(got), want) {
			t.Fatalf("lift of active: %q %v, want %q", text(got), err, want)
		}
		if got, err := st.TraitLift(ctx, w, "nobody", store.KindUser, 1, 10); err != nil || len(got) != 0 {
			t.Fatalf("lift of an empty audience: %q %v", text(got), err)
		}
		if got, err := st.TraitLift(ctx, w, "vip", store.KindUser, 4, 10); err != nil || len(got) != 0 {
			t.Fatalf("lift with min_members above the audience: %q %v", text(got), err)
		}
	})

	t.Run("AudienceSizes", func(t *testing.T) {
		t.Parallel()
		w := ws()
		today := t0.Truncate(24 * time.Hour)
		d := func(days int, h time.Duration) time.Time { return today.AddDate(0, 0, days).Add(h) }
		commit(t, st, &store.Changes{Workspace: w, To: 7, Compute: store.ComputeChanges{Audiences: []store.AudienceChange{
			enter("vip", 9, d(-30, 0), 1), // before every window asked for
			enter("vip", 1, d(-3, 10*time.Hour), 2),
			enter("vip", 2, d(-2, 12*time.Hour), 3),
			exit("vip", 1, d(0, -time.Nanosecond), 4), // the last instant of yesterday
			exit("vip", 2, d(0, 0), 5),                // midnight: today
			enter("vip", 3, d(0, 9*time.Hour), 6),
			enter("other", 4, d(-1, 0), 7),
		}}})
		sizes := func(days int, now time.Time) []string {
			got, err := st.AudienceSizes(ctx, w, "vip", days, now)
			if err != nil {
				t.Fatal(err)
			}
			var out []string
			for _, s := range got {
				if !s.Day.Equal(s.Day.UTC().Truncate(24*time.Hour)) || s.Day.Location() != time.UTC {
					t.Fatalf("day %v is not a UTC midnight", s.Day)
				}
				out = append(out, fmt.Sprintf("%s=%d", s.Day.Format("01-02"), s.Members))
			}
			return out
		}
		if got, want := sizes(5, t0), []string{"11-20=1", "11-21=2", "11-22=3", "11-23=2", "11-24=2"}; !slices.Equal(got, want) {
			t.Fatalf("sizes %q, want %q", got, want)
		}
		// Days end at UTC midnight, whatever now's zone.
		if got, want := sizes(2, t0.In(time.FixedZone("UTC-9", -9*3600))), []string{"11-23=2", "11-24=2"}; !slices.Equal(got, want) {
			t.Fatalf("sizes %q, want %q", got, want)
		}
		if got := sizes(1, d(-31, 0)); !slices.Equal(got, []string{"10-24=0"}) {
			t.Fatalf("sizes before the first change %q", got)
		}
		if got := sizes(0, t0); len(got) != 0 {
			t.Fatalf("sizes of 0 days %q", got)
		}
		if got := sizes(1000, t0); len(got) != 366 || got[365] != "11-24=2" || got[0] != "11-24=0" {
			t.Fatalf("sizes capped at 366 days: %d, %q … %q", len(got), got[0], got[len(got)-1])
		}
	})

	t.Run("OutboxIdentity", func(t *testing.T) {
		t.Parallel()
		w := ws()
		e1 := outboxEntry(store.OutboxAudienceEntered, 1, 10, "vip")
		e1.Workspace = "ignored: the Changes' workspace counts"
		commit(t, st, &store.Changes{Workspace: w, To: 12, Compute: store.ComputeChanges{Outbox: []store.OutboxEntry{
			e1,
			outboxEntry(store.OutboxAudienceEntered, 2, 10, "vip"),
			outboxEntry(store.OutboxAudienceEntered, 1, 10, "vip"), // the same identity in one batch
			outboxEntry(store.OutboxAudienceEntered, 1, 10, "other"),
			outboxEntry(store.OutboxAudienceExited, 1, 10, "vip"),
			outboxEntry(store.OutboxAudienceEntered, 1, 11, "vip"),
		}}})
		// A replay of the same decisions, and a new one.
		commit(t, st, &store.Changes{Workspace: w, To: 13, Compute: store.ComputeChanges{Outbox: []store.OutboxEntry{
			outboxEntry(store.OutboxAudienceExited, 1, 10, "vip"), outboxEntry(store.OutboxAudienceExited, 2, 13, "vip"),
			outboxEntry(store.OutboxAudienceEntered, 2, 10, "vip"),
		}}})
		want := []string{"audience_entered/1@10/vip", "audience_entered/2@10/vip", "audience_entered/1@10/other",
			"audience_exited/1@10/vip", "audience_entered/1@11/vip", "audience_exited/2@13/vip"}
		for _, limit := range []int{1, 2, 6, 100} {
			if got := outboxText(allOutbox(t, st, w, limit)); !slices.Equal(got, want) {
				t.Fatalf("outbox by %d: %q, want %q (in order, each identity once)", limit, got, want)
			}
		}
		all := allOutbox(t, st, w, 100)
		if e := all[0]; string(e.Payload) != string(e1.Payload) || !e.At.Equal(e1.At) || e.ID <= 0 {
			t.Fatalf("outbox entry %+v", e)
		}
		if page, err := st.ReadOutbox(ctx, w, all[5].ID, 10); err != nil || len(page) != 0 {
			t.Fatalf("outbox after its end %+v %v", page, err)
		}
		if page, err := st.ReadOutbox(ctx, w, all[2].ID, 0); err != nil || len(page) != 3 || page[0].ID != all[3].ID {
			t.Fatalf("outbox after an id, default limit %+v %v", page, err)
		}
	})

	t.Run("RebuildKeepsMembershipsAndMergesMoveNothing", func(t *testing.T) {
		t.Parallel()
		w := ws()
		commit(t, st, &store.Changes{Workspace: w, To: 3, NextProfileID: 4,
			Profiles: []store.ProfileDelta{delta(1, 0, 0, 1), delta(2, 0, 0, 1), delta(3, 0, 0, 1)},
			Compute: store.ComputeChanges{
				States:    []store.ComputeState{cstate(1, "k", "1"), cstate(1, "j", "1"), cstate(2, "k", "2"), cstate(3, "k", "3")},
				Values:    []store.ComputedValue{cvalue(1, "n", `1`, 1), cvalue(2, "n", `2`, 2), cvalue(3, "n", `3`, 3)},
				Audiences: []store.AudienceChange{enter("vip", 1, t0, 1), enter("vip", 2, t0, 2), enter("vip", 3, t0, 3)},
			}})
		// Profile 1 is rebuilt: its states and values go, and the engine
		// writes one state again in the batch. Profile 3 merges into 2:
		// its compute rows stay where they are.
		commit(t, st, &store.Changes{Workspace: w, To: 4, Rebuilt: []store.ProfileID{1},
			Merges:   []store.Merge{{Into: 2, From: 3, Via: store.Identifier{Type: "user_id", Value: "u"}, Position: 4, At: t0}},
			Profiles: []store.ProfileDelta{delta(1, 0, 0, 1)},
			Compute:  store.ComputeChanges{States: []store.ComputeState{cstate(1, "k", "again")}}})
		states, values := computeText(t, st, w)
		if want := []string{"1/k=again", "2/k=2", "3/k=3"}; !slices.Equal(states, want) {
			t.Fatalf("states %q, want %q", states, want)
		}
		if want := []string{"2/n=2@2", "3/n=3@3"}; !slices.Equal(values, want) {
			t.Fatalf("values %q, want %q", values, want)
		}
		if m := membersText(t, st, w); !slices.Equal(m, []string{"vip/1", "vip/2", "vip/3"}) {
			t.Fatalf("members %q (a rebuild keeps memberships, a merge moves none)", m)
		}
		if h := allHistory(t, st, w, "vip", 1, 10); !slices.Equal(h, []string{"+1@1"}) {
			t.Fatalf("history of the rebuilt profile %q", h)
		}
		// Without compute changes, a rebuild still drops them.
		commit(t, st, &store.Changes{Workspace: w, To: 5, Rebuilt: []store.ProfileID{2}, Profiles: []store.ProfileDelta{delta(2, 0, 0, 1)}})
		if states, values := computeText(t, st, w); !slices.Equal(states, []string{"1/k=again", "3/k=3"}) || !slices.Equal(values, []string{"3/n=3@3"}) {
			t.Fatalf("after rebuilding 2: states %q values %q", states, values)
		}
	})

	t.Run("ResetKeepsOutbox", func(t *testing.T) {
		t.Parallel()
		w := ws()
		cc := store.ComputeChanges{
			States:    []store.ComputeState{cstate(1, "k", "1")},
			Values:    []store.ComputedValue{cvalue(1, "n", `1`, 1)},
			Audiences: []store.AudienceChange{enter("vip", 1, t0, 1)},
			Outbox:    []store.OutboxEntry{outboxEntry(store.OutboxAudienceEntered, 1, 1, "vip")},
		}
		commit(t, st, &store.Changes{Workspace: w, To: 1, NextProfileID: 2, Profiles: []store.ProfileDelta{delta(1, 0, 0, 1)}, Compute: cc})
		before := allOutbox(t, st, w, 10)
		l, err := st.AcquireLease(ctx, w, "node", time.Hour)
		if err != nil {
			t.Fatal(err)
		}
		if err := st.Reset(ctx, w, l.Epoch); err != nil {
			t.Fatal(err)
		}
		if states, values := computeText(t, st, w); len(states)+len(values) != 0 {
			t.Fatalf("after reset: states %q values %q", states, values)
		}
		if m := membersText(t, st, w); len(m) != 0 {
			t.Fatalf("members after reset %q", m)
		}
		if h := allHistory(t, st, w, "vip", 0, 10); len(h) != 0 {
			t.Fatalf("history after reset %q", h)
		}
		if n, _ := st.MemberCount(ctx, w, "vip"); n != 0 {
			t.Fatalf("member count after reset %d", n)
		}
		if sz, _ := st.AudienceSizes(ctx, w, "vip", 1, t0); len(sz) != 1 || sz[0].Members != 0 {
			t.Fatalf("sizes after reset %+v", sz)
		}
		if after := allOutbox(t, st, w, 10); len(after) != 1 || after[0].ID != before[0].ID {
			t.Fatalf("outbox after reset %+v, before %+v", after, before)
		}
		// The replay makes the same decisions: the same state again, and
		// the outbox entry is not added twice.
		commit(t, st, &store.Changes{Workspace: w, To: 1, NextProfileID: 2, Profiles: []store.ProfileDelta{delta(1, 0, 0, 1)}, Compute: cc})
		if after := allOutbox(t, st, w, 10); len(after) != 1 || after[0].ID != before[0].ID {
			t.Fatalf("outbox after replay %+v, before %+v", after, before)
		}
		if m := membersText(t, st, w); !slices.Equal(m, []string{"vip/1"}) {
			t.Fatalf("members after replay %q", m)
		}
		if h := allHistory(t, st, w, "vip", 0, 10); !slices.Equal(h, []string{"+1@1"}) {
			t.Fatalf("history after replay %q", h)
		}
	})

	t.Run("LostLeaseWritesNoCompute", func(t *testing.T) {
		t.Parallel()
		w := ws()
		l, err := st.AcquireLease(ctx, w, "a", time.Hour)
		if err != nil {
			t.Fatal(err)
		}
		cc := store.ComputeChanges{
			States:    []store.ComputeState{cstate(1, "k", "1")},
			Values:    []store.ComputedValue{cvalue(1, "n", `1`, 1)},
			Audiences: []store.AudienceChange{enter("vip", 1, t0, 1)},
			Outbox:    []store.OutboxEntry{outboxEntry(store.OutboxAudienceEntered, 1, 1, "vip")},
		}
		for _, c := range []*store.Changes{
			{Workspace: w, Epoch: l.Epoch + 1, From: 0, To: 1, NextProfileID: 2, Compute: cc}, // a stale (or future) epoch
			{Workspace: w, Epoch: l.Epoch, From: 5, To: 6, NextProfileID: 2, Compute: cc},     // a moved cursor
		} {
			if err := st.Commit(ctx, c); !errors.Is(err, store.ErrLeaseLost) {
				t.Fatalf("commit under a lost lease: %v", err)
			}
		}
		states, values := computeText(t, st, w)
		if len(states)+len(values) != 0 || len(membersText(t, st, w)) != 0 || len(allHistory(t, st, w, "vip", 0, 10)) != 0 ||
			len(allOutbox(t, st, w, 10)) != 0 {
			t.Fatalf("a refused commit wrote compute rows: %q %q %q", states, values, membersText(t, st, w))
		}
	})

	t.Run("ComputeWorkspacesIsolated", func(t *testing.T) {
		t.Parallel()
		a, b := ws(), ws()
		for i, w := range []string{a, b} {
			p := store.ProfileID(1)
			commit(t, st, &store.Changes{Workspace: w, To: 1, NextProfileID: 2,
				Profiles: []store.ProfileDelta{delta(p, 0, 0, 1)},
				Traits:   []store.TraitValue{trait(p, "plan", fmt.Sprintf(`"%s"`, w), 0, 0, 1)},
				Links:    []store.Link{{User: p, Account: 2, Position: 1, At: t0}},
				Compute: store.ComputeChanges{
					States:    []store.ComputeState{cstate(p, "k", w)},
					Values:    []store.ComputedValue{cvalue(p, "n", fmt.Sprintf(`"%s"`, w), 1)},
					Audiences: []store.AudienceChange{enter("vip", p, t0.AddDate(0, 0, -i), 1)},
					Outbox:    []store.OutboxEntry{outboxEntry(store.OutboxAudienceEntered, p, 1, "vip")},
				}})
		}
		// Reset one; the other keeps everything.
		l, err := st.AcquireLease(ctx, a, "node", time.Hour)
		if err != nil {
			t.Fatal(err)
		}
		if err := st.Reset(ctx, a, l.Epoch); err != nil {
			t.Fatal(err)
		}
		states, values := computeText(t, st, b)
		if !slices.Equal(states, []string{"1/k=" + b}) || !slices.Equal(values, []string{fmt.Sprintf(`1/n="%s"@1`, b)}) {
			t.Fatalf("workspace b: states %q values %q", states, values)
		}
		if m := membersText(t, st, b); !slices.Equal(m, []string{"vip/1"}) {
			t.Fatalf("members of b %q", m)
		}
		if n, _ := st.MemberCount(ctx, b, "vip"); n != 1 {
			t.Fatalf("member count of b %d", n)
		}
		if m := allMembers(t, st, b, "vip", 10); len(m) != 1 {
			t.Fatalf("members of b %v", m)
		}
		if h := allHistory(t, st, b, "vip", 0, 10); len(h) != 1 {
			t.Fatalf("history of b %q", h)
		}
		if sz, _ := st.AudienceSizes(ctx, b, "vip", 2, t0); len(sz) != 2 || sz[0].Members != 1 || sz[1].Members != 1 {
			t.Fatalf("sizes of b %+v", sz)
		}
		if v, _ := st.ComputedValues(ctx, b, 1); len(v) != 1 || !strings.Contains(string(v[0].Value), b) {
			t.Fatalf("computed values of b %+v", v)
		}
		n := 0
		if err := st.ScanTraits(ctx, b, []string{"plan"}, func(_ store.ProfileID, tr store.Trait) error {
			n++
			if !strings.Contains(string(tr.Value), b) {
				t.Errorf("trait of another workspace: %s", tr.Value)
			}
			return nil
		}); err != nil || n != 1 {
			t.Fatalf("scanned %d traits of b: %v", n, err)
		}
		n = 0
		if err := st.ScanLinks(ctx, b, func(store.Link) error { n++; return nil }); err != nil || n != 1 {
			t.Fatalf("scanned %d links of b: %v", n, err)
		}
		for _, w := range []string{a, b} {
			if o := allOutbox(t, st, w, 10); len(o) != 1 || o[0].Workspace != w {
				t.Fatalf("outbox of %s: %+v", w, o)
			}
		}
	})

	t.Run("Definitions", func(t *testing.T) {
		t.Parallel()
		w, other := ws(), ws()
		put := func(d store.Definition) store.Definition {
			t.Helper()
			got, err := st.PutDefinition(ctx, d)
			if err != nil {
				t.Fatal(err)
			}
			return got
		}
		d := store.Definition{Workspace: w, Kind: store.DefinitionTrait, Name: "orders", Body: json.RawMessage(`{"count": "Order Completed"}`), Origin: "api"}
		first := put(d)
		if first.Version != 1 || first.UpdatedAt.IsZero() || string(first.Body) != `{"count":"Order Completed"}` || first.Origin != "api" ||
			first.Workspace != w || first.Kind != d.Kind || first.Name != d.Name {
			t.Fatalf("first put %+v", first)
		}
		// The same body (insignificant whitespace aside) and origin: nothing changes.
		same := d
		same.Body = json.RawMessage(`{ "count" : "Order Completed" }`)
		if got := put(same); got.Version != 1 || !got.UpdatedAt.Equal(first.UpdatedAt) || string(got.Body) != string(first.Body) {
			t.Fatalf("unchanged put %+v, first %+v", got, first)
		}
		changed := d
		changed.Body = json.RawMessage(`{"count":"Signed Up"}`)
		second := put(changed)
		if second.Version != 2 || second.UpdatedAt.Before(first.UpdatedAt) || string(second.Body) != `{"count":"Signed Up"}` {
			t.Fatalf("changed put %+v", second)
		}
		// Another origin with the same body: stored, the version stays.
		moved := changed
		moved.Origin = "config"
		if got := put(moved); got.Version != 2 || got.Origin != "config" {
			t.Fatalf("origin change %+v", got)
		}
		if got := put(d); got.Version != 3 || got.Origin != "api" {
			t.Fatalf("body back to the first %+v", got)
		}
		put(store.Definition{Workspace: w, Kind: store.DefinitionAudience, Name: "vip", Body: json.RawMessage(`{}`), Origin: "config"})
		put(store.Definition{Workspace: w, Kind: store.DefinitionTrait, Name: "ltv", Body: json.RawMessage(`{}`), Origin: "api"})
		put(store.Definition{Workspace: other, Kind: store.DefinitionTrait, Name: "orders", Body: json.RawMessage(`[]`), Origin: "api"})
		list, err := st.Definitions(ctx, w)
		if err != nil {
			t.Fatal(err)
		}
		var names []string
		for _, d := range list {
			names = append(names, fmt.Sprintf("%s/%s@%d", d.Kind, d.Name, d.Version))
			if d.Workspace != w || d.UpdatedAt.IsZero() || len(d.Body) == 0 {
				t.Errorf("listed %+v", d)
			}
		}
		if want := []string{"audience/vip@1", "trait/ltv@1", "trait/orders@3"}; !slices.Equal(names, want) {
			t.Fatalf("definitions %q, want %q", names, want)
		}
		if list[2].Origin != "api" || string(list[2].Body) != string(first.Body) {
			t.Fatalf("listed %+v", list[2])
		}
		if err := st.DeleteDefinition(ctx, w, store.DefinitionTrait, "orders"); err != nil {
			t.Fatal(err)
		}
		if err := st.DeleteDefinition(ctx, w, store.DefinitionTrait, "orders"); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("second delete: %v", err)
		}
		if err := st.DeleteDefinition(ctx, w, store.DefinitionAudience, "ltv"); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("delete of another kind: %v", err)
		}
		if l, _ := st.Definitions(ctx, w); len(l) != 2 {
			t.Fatalf("definitions after a delete %+v", l)
		}
		// Deleted and put again, even with the same body, a definition goes
		// on from its last version: a version never names two bodies.
		if got := put(d); got.Version != 4 {
			t.Fatalf("put after delete %+v", got)
		}
		if l, _ := st.Definitions(ctx, other); len(l) != 1 || string(l[0].Body) != `[]` {
			t.Fatalf("definitions of another workspace %+v", l)
		}
		if l, err := st.Definitions(ctx, ws()); err != nil || len(l) != 0 {
			t.Fatalf("definitions of an empty workspace %+v %v", l, err)
		}
		for _, bad := range []store.Definition{
			{Workspace: w, Kind: "segment", Name: "x", Body: json.RawMessage(`{}`)},
			{Workspace: w, Kind: store.DefinitionTrait, Name: "", Body: json.RawMessage(`{}`)},
			{Workspace: w, Kind: store.DefinitionTrait, Name: "x", Body: json.RawMessage(`{`)},
		} {
			if _, err := st.PutDefinition(ctx, bad); err == nil {
				t.Errorf("put %+v: no error", bad)
			}
		}
	})
}
