package storetest

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/kithcdp/kith/store"
)

// Tracer is implemented by backends that can search everything they hold
// — every column of every table, and for an embedded store its files — for
// values: the proof that an erasure left no trace. Traces returns one line
// per place a needle occurs.
type Tracer interface {
	Traces(ctx context.Context, needles []string) ([]string, error)
}

func runPrivacy(t *testing.T, open func(t *testing.T) store.Store, ws func() string) {
	st := open(t)
	ctx := context.Background()

	t.Run("EraseLeavesNoTrace", func(t *testing.T) {
		t.Parallel()
		tr, ok := st.(Tracer)
		if !ok {
			t.Fatalf("%T does not implement storetest.Tracer", st)
		}
		w := ws()
		p := seedPrivacy(t, st, w)
		needles := []string{p.email, p.userID, p.anonID}
		// Before: every needle is somewhere (the search works).
		before, err := tr.Traces(ctx, needles)
		if err != nil {
			t.Fatal(err)
		}
		for _, n := range needles {
			if !slices.ContainsFunc(before, func(l string) bool { return bytes.Contains([]byte(l), []byte(fmt.Sprintf("%q", n))) }) {
				t.Fatalf("before erasure, %q was found nowhere: %q", n, before)
			}
		}

		e := store.Erasure{Workspace: w, Profiles: []store.ProfileID{1}, Identifiers: []store.Identifier{
			{Type: "email", Value: p.email}, {Type: "user_id", Value: p.userID}, {Type: "anonymous_id", Value: p.anonID}}}
		r, err := st.Erase(ctx, e)
		if err != nil {
			t.Fatal(err)
		}
		// Events 1-4 (the page of profile 5, merged into 1; the identify
		// and track of 1; its group call, on account 3's timeline too); the
		// two quarantined events holding the email; the outbox entries and
		// ledger rows of 1 and of its merged-away id 5; the dead letters of
		// 1 and the one of no profile holding the email.
		want := store.ErasureReport{Events: 4, Quarantined: 2, Outbox: 2, Ledger: 2, DeadLetters: 2}
		if got := r; got.State == 0 {
			t.Fatalf("erase reported no state rows: %+v", got)
		}
		r.State = 0
		if r != want {
			t.Fatalf("erase report %+v, want %+v (State aside)", r, want)
		}

		after, err := tr.Traces(ctx, needles)
		if err != nil {
			t.Fatal(err)
		}
		if len(after) > 0 {
			t.Fatalf("after erasure:\n%s", joinLines(after))
		}
		checkErased(t, st, w, p)
		checkKept(t, st, w, p)

		// Again: nothing more to delete, no error, still no trace.
		r, err = st.Erase(ctx, e)
		if err != nil {
			t.Fatal(err)
		}
		if r != (store.ErasureReport{}) {
			t.Fatalf("second erase deleted %+v", r)
		}
		if after, err := tr.Traces(ctx, needles); err != nil || len(after) > 0 {
			t.Fatalf("after the second erasure: %v\n%s", err, joinLines(after))
		}
		checkKept(t, st, w, p)
	})

	t.Run("EraseNeedsWorkspace", func(t *testing.T) {
		t.Parallel()
		if _, err := st.Erase(ctx, store.Erasure{Profiles: []store.ProfileID{1}}); err == nil {
			t.Fatal("erase without a workspace succeeded")
		}
	})

	t.Run("SuppressionList", func(t *testing.T) {
		t.Parallel()
		w, other := ws(), ws()
		at := time.Date(2026, 11, 24, 10, 0, 0, 123456000, time.UTC)
		d1, d2, d3 := bytes.Repeat([]byte{1}, 32), bytes.Repeat([]byte{2}, 32), bytes.Repeat([]byte{3}, 32)
		if err := st.Suppress(ctx, []store.Suppression{
			{Workspace: w, Digest: d2, Reason: "erasure", At: at},
			{Workspace: w, Digest: d1, Reason: "regulation SUPPRESS_ONLY", At: at.Add(time.Second)},
			{Workspace: other, Digest: d1, Reason: "erasure", At: at},
		}); err != nil {
			t.Fatal(err)
		}
		// An existing digest keeps its first entry.
		if err := st.Suppress(ctx, []store.Suppression{{Workspace: w, Digest: d2, Reason: "later", At: at.Add(time.Hour)}}); err != nil {
			t.Fatal(err)
		}
		if err := st.Suppress(ctx, nil); err != nil {
			t.Fatal(err)
		}
		want := []string{
			fmt.Sprintf("%s %x regulation SUPPRESS_ONLY %s", w, d1, at.Add(time.Second).Format(time.RFC3339Nano)),
			fmt.Sprintf("%s %x erasure %s", w, d2, at.Format(time.RFC3339Nano)),
		}
		if got := suppressed(t, st, w); !slices.Equal(got, want) {
			t.Fatalf("suppressed %q, want %q", got, want)
		}
		n, err := st.Unsuppress(ctx, w, [][]byte{d1, d3})
		if err != nil || n != 1 {
			t.Fatalf("unsuppress: %d, %v; want 1", n, err)
		}
		if n, err := st.Unsuppress(ctx, w, [][]byte{d1}); err != nil || n != 0 {
			t.Fatalf("unsuppress again: %d, %v; want 0", n, err)
		}
		if got := suppressed(t, st, w); !slices.Equal(got, want[1:]) {
			t.Fatalf("after unsuppress: %q, want %q", got, want[1:])
		}
		// The other workspace's list is its own.
		if got := suppressed(t, st, other); len(got) != 1 || got[0] != fmt.Sprintf("%s %x erasure %s", other, d1, at.Format(time.RFC3339Nano)) {
			t.Fatalf("other workspace: %q", got)
		}
		if got := suppressed(t, st, ws()); len(got) != 0 {
			t.Fatalf("new workspace: %q", got)
		}
		stop := errors.New("stop")
		calls := 0
		err = st.ScanSuppressed(ctx, other, func(store.Suppression) error { calls++; return stop })
		if !errors.Is(err, stop) || calls != 1 {
			t.Fatalf("scan stopped with %v after %d calls", err, calls)
		}
	})
}

func suppressed(t *testing.T, st store.Store, w string) []string {
	t.Helper()
	var out []string
	err := st.ScanSuppressed(context.Background(), w, func(s store.Suppression) error {
		out = append(out, fmt.Sprintf("%s %x %s %s", s.Workspace, s.Digest, s.Reason, s.At.Format(time.RFC3339Nano)))
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func joinLines(ls []string) string {
	var b bytes.Buffer
	for _, l := range ls {
		b.WriteString(l + "\n")
	}
	return b.String()
}

// privacySeed names what seedPrivacy stored.
type privacySeed struct {
	email, userID, anonID    string // the erased person's (profile 1, and 5 merged into it)
	email2, userID2, account string // the kept person's (profile 2) and their account (3)
}

// seedPrivacy stores through the contract everything a workspace holds on
// two people: profile 1 (with profile 5 merged into it) and profile 2,
// both linked to account 3.
//
// Log: 1 page (anonymous, profile 5), 2 identify and 3 track (profile 1),
// 4 group (profile 1 and account 3), 5 identify (profile 2), 6 group
// (profile 2 and account 3). The erased person's email is also a
// messageId, the value of properties, of a quarantined event (once as
// sent, once escaped and in capitals), of outbox payloads and dead
// letters.
func seedPrivacy(t *testing.T, st store.Store, w string) privacySeed {
	t.Helper()
	ctx := context.Background()
	n := time.Now().UnixNano()
	p := privacySeed{
		email: fmt.Sprintf("erase-%d@example.com", n), userID: fmt.Sprintf("u-erase-%d", n), anonID: fmt.Sprintf("a-erase-%d", n),
		email2: fmt.Sprintf("keep-%d@example.com", n), userID2: fmt.Sprintf("u-keep-%d", n), account: fmt.Sprintf("acme-%d", n),
	}
	now := time.Now().UTC().Truncate(time.Millisecond)
	ev := func(typ, msgID, userID, anonID string, raw map[string]any) store.Event {
		raw["type"], raw["messageId"] = typ, msgID
		if userID != "" {
			raw["userId"] = userID
		}
		if anonID != "" {
			raw["anonymousId"] = anonID
		}
		b, err := json.Marshal(raw)
		if err != nil {
			t.Fatal(err)
		}
		return store.Event{Workspace: w, Source: "web", MessageID: msgID, Type: typ, UserID: userID, AnonymousID: anonID,
			Timestamp: now, ReceivedAt: now, Format: store.FormatVersion, Raw: b,
			Signals: store.Signals{IP: "203.0.113.7", UserAgent: "test"}}
	}
	b := &store.Batch{
		Events: []store.Event{
			ev("page", "m-page-"+p.anonID, "", p.anonID, map[string]any{"name": "Home"}),
			ev("identify", "signup-"+p.email, p.userID, p.anonID, map[string]any{"traits": map[string]any{"email": p.email, "name": "Ada Erase"}}),
			ev("track", "m-track-"+p.userID, p.userID, "", map[string]any{"event": "Newsletter Signup", "properties": map[string]any{"address": p.email}}),
			ev("group", "m-group-"+p.userID, p.userID, "", map[string]any{"groupId": p.account}),
			ev("identify", "signup-"+p.email2, p.userID2, "", map[string]any{"traits": map[string]any{"email": p.email2, "name": "Bob Keep"}}),
			ev("group", "m-group-"+p.userID2, p.userID2, "", map[string]any{"groupId": p.account}),
		},
		Quarantine: []store.Quarantined{
			{Workspace: w, Source: "web", MessageID: "q1", ReceivedAt: now, Code: "missing_identity", Reason: "no id",
				Raw: json.RawMessage(`{"type":"identify","traits":{"email":"` + p.email + `"}}`)},
			{Workspace: w, Source: "web", MessageID: "q2", ReceivedAt: now, Code: "invalid_type", Reason: "bad type",
				Raw: json.RawMessage(`{"type":7,"context":{"traits":{"e":" ` + upperEscaped(p.email) + `"}}}`)},
			{Workspace: w, Source: "web", MessageID: "q3", ReceivedAt: now, Code: "missing_identity", Reason: "no id",
				Raw: json.RawMessage(`{"type":"identify","traits":{"email":"` + p.email2 + `"}}`)},
		},
	}
	if _, err := st.Append(ctx, b, time.Hour); err != nil {
		t.Fatal(err)
	}
	id := func(typ, v string) store.Identifier { return store.Identifier{Type: typ, Value: v} }
	str := func(s string) string { b, _ := json.Marshal(s); return string(b) }

	// Profile 5, anonymous, later merged into 1.
	commit(t, st, &store.Changes{Workspace: w, To: 1, NextProfileID: 6,
		Identifiers: []store.HeldIdentifier{held("anonymous_id", p.anonID, 5, 1)},
		Profiles:    []store.ProfileDelta{delta(5, 0, 0, 1)},
		Traits:      []store.TraitValue{trait(5, "name", `"Ada E."`, 0, 0, 1)},
		Timeline:    []store.TimelineEntry{{Profile: 5, Position: 1}},
	})
	acc := delta(3, 3*time.Second, 5*time.Second, 2)
	acc.Kind = store.KindAccount
	outbox := func(p store.ProfileID, pos int64, payload string) store.OutboxEntry {
		return store.OutboxEntry{Kind: store.OutboxTraitChanged, Profile: p, Position: pos, Key: "ltv", Payload: json.RawMessage(payload), At: t0}
	}
	commit(t, st, &store.Changes{Workspace: w, To: 6, NextProfileID: 6,
		Merges: []store.Merge{{Into: 1, From: 5, Via: id("anonymous_id", p.anonID), Position: 2, At: t0}},
		Identifiers: []store.HeldIdentifier{
			held("anonymous_id", p.anonID, 1, 2), held("user_id", p.userID, 1, 2), held("email", p.email, 1, 2),
			held("group_id", p.account, 3, 4),
			held("user_id", p.userID2, 2, 5), held("email", p.email2, 2, 5),
		},
		Profiles: []store.ProfileDelta{delta(1, time.Second, 3*time.Second, 3), acc, delta(2, 4*time.Second, 5*time.Second, 2)},
		Traits: []store.TraitValue{
			trait(1, "email", str("old-"+p.email), time.Second, 0, 2), trait(1, "email", str(p.email), 2*time.Second, 0, 3),
			trait(1, "name", `"Ada Erase"`, time.Second, 0, 2),
			trait(3, "name", `"Acme"`, 3*time.Second, 0, 4),
			trait(2, "email", str(p.email2), 4*time.Second, 0, 5), trait(2, "name", `"Bob Keep"`, 4*time.Second, 0, 5),
		},
		Timeline: []store.TimelineEntry{{Profile: 1, Position: 2}, {Profile: 1, Position: 3}, {Profile: 1, Position: 4},
			{Profile: 3, Position: 4}, {Profile: 2, Position: 5}, {Profile: 2, Position: 6}, {Profile: 3, Position: 6}},
		Links: []store.Link{{User: 1, Account: 3, Position: 4, At: t0}, {User: 2, Account: 3, Position: 6, At: t0}},
		Decisions: []store.Decision{
			{Position: 3, Profile: 1, Identifier: id("email", p.email), Code: "limit", Reason: "too many emails", At: t0},
			{Position: 3, Profile: 0, Identifier: id("user_id", p.userID), Code: "blocked", Reason: "blocked", At: t0},
			{Position: 5, Profile: 2, Identifier: id("email", p.email2), Code: "limit", Reason: "too many emails", At: t0},
		},
		Compute: store.ComputeChanges{
			States: []store.ComputeState{{Profile: 1, Key: "ltv@1", Data: []byte("last:" + p.email)}, {Profile: 2, Key: "ltv@1", Data: []byte("last:" + p.email2)}},
			Values: []store.ComputedValue{
				{Profile: 1, Name: "last_email", Value: json.RawMessage(str(p.email)), At: t0, Position: 3},
				{Profile: 2, Name: "last_email", Value: json.RawMessage(str(p.email2)), At: t0, Position: 5},
			},
			Audiences: []store.AudienceChange{
				{Audience: "subscribers", Profile: 1, Entered: true, Reason: "evaluated", At: t0, Position: 3},
				{Audience: "subscribers", Profile: 2, Entered: true, Reason: "evaluated", At: t0, Position: 5},
			},
			Outbox: []store.OutboxEntry{
				outbox(5, 1, `{"type":"identify","anonymousId":`+str(p.anonID)+`}`),
				outbox(1, 3, `{"type":"identify","userId":`+str(p.userID)+`,"traits":{"last_email":`+str(p.email)+`}}`),
				outbox(2, 5, `{"type":"identify","userId":`+str(p.userID2)+`,"traits":{"last_email":`+str(p.email2)+`}}`),
			},
		},
	})

	c, err := st.AcquireDelivery(ctx, w, "hook", "node", time.Hour, 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	dl := func(key string, prof store.ProfileID, pos int64, payload, msg string) store.DeadLetter {
		return store.DeadLetter{Key: key, Kind: "event", Position: pos, Profile: prof, Payload: json.RawMessage(payload),
			Error: msg, Attempts: 3, FirstAt: t0, LastAt: t0.Add(time.Minute)}
	}
	if err := st.Progress(ctx, &store.DeliveryProgress{Workspace: w, Destination: "hook", Epoch: c.Epoch, Log: 6, Outbox: 3,
		Ledger: []store.LedgerEntry{ledgerEntry(1, t0, 2, "event"), ledgerEntry(5, t0, 1, "event"), ledgerEntry(2, t0, 1, "event")},
		Dead: []store.DeadLetter{
			dl("k1", 1, 3, `{"type":"track","userId":`+str(p.userID)+`}`, "410 gone"),
			dl("k2", 0, 2, `{"type":"identify","traits":{"email":`+str(p.email)+`}}`, "400 invalid"),
			dl("k3", 2, 5, `{"type":"identify","traits":{"email":`+str(p.email2)+`}}`, "400 invalid"),
		},
	}); err != nil {
		t.Fatal(err)
	}
	return p
}

// upperEscaped returns s in capitals with "@" written as a JSON escape.
func upperEscaped(s string) string {
	return string(bytes.ReplaceAll(bytes.ToUpper([]byte(s)), []byte("@"), []byte(`\u0040`)))
}

// checkErased checks through the contract that profiles 1 and 5 are gone.
func checkErased(t *testing.T, st store.Store, w string, p privacySeed) {
	t.Helper()
	ctx := context.Background()
	for _, id := range []store.ProfileID{1, 5} {
		if _, err := st.Profile(ctx, w, id); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("profile %d: %v, want ErrNotFound", id, err)
		}
		if l, err := st.Ledger(ctx, w, id); err != nil || len(l) != 0 {
			t.Fatalf("ledger of %d: %v %+v", id, err, l)
		}
	}
	for _, v := range []store.Identifier{{Type: "email", Value: p.email}, {Type: "user_id", Value: p.userID}, {Type: "anonymous_id", Value: p.anonID}} {
		if _, err := st.Lookup(ctx, w, v); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("lookup %v: %v, want ErrNotFound", v, err)
		}
	}
	if tl, err := st.Timeline(ctx, w, 3, 0, 10); err != nil || !slices.Equal(tl, []int64{6}) {
		t.Fatalf("account's timeline %v %v, want [6]", tl, err)
	}
}

// checkKept checks that profiles 2 and 3 keep everything.
func checkKept(t *testing.T, st store.Store, w string, p privacySeed) {
	t.Helper()
	ctx := context.Background()
	if pr, err := st.Profile(ctx, w, 2); err != nil || pr.Events != 2 {
		t.Fatalf("profile 2: %+v %v", pr, err)
	}
	if got, err := st.Lookup(ctx, w, store.Identifier{Type: "email", Value: p.email2}); err != nil || got != 2 {
		t.Fatalf("lookup email2: %d %v", got, err)
	}
	if got := traitText(t, st, w, 2); got != fmt.Sprintf("email=%q@5 name=\"Bob Keep\"@5 ", p.email2) {
		t.Fatalf("traits of 2: %s", got)
	}
	if h, err := st.TraitHistory(ctx, w, 2, "email", 0, 10); err != nil || len(h) != 1 {
		t.Fatalf("history of 2: %+v %v", h, err)
	}
	if tl, err := st.Timeline(ctx, w, 2, 0, 10); err != nil || !slices.Equal(tl, []int64{6, 5}) {
		t.Fatalf("timeline of 2: %v %v", tl, err)
	}
	if ls, err := st.Links(ctx, w, 3); err != nil || len(ls) != 1 || ls[0].User != 2 {
		t.Fatalf("links of account 3: %+v %v", ls, err)
	}
	if pr, err := st.Profile(ctx, w, 3); err != nil || pr.Kind != store.KindAccount {
		t.Fatalf("account 3: %+v %v", pr, err)
	}
	if ds, err := st.Decisions(ctx, w, 0, 10); err != nil || len(ds) != 1 || ds[0].Profile != 2 {
		t.Fatalf("decisions: %+v %v", ds, err)
	}
	if vs, err := st.ComputedValues(ctx, w, 2); err != nil || len(vs) != 1 {
		t.Fatalf("computed values of 2: %+v %v", vs, err)
	}
	var states []store.ProfileID
	if err := st.ScanComputeStates(ctx, w, func(c store.ComputeState) error { states = append(states, c.Profile); return nil }); err != nil || !slices.Equal(states, []store.ProfileID{2}) {
		t.Fatalf("compute states: %v %v", states, err)
	}
	if ms, err := st.Members(ctx, w, "subscribers", 0, 10); err != nil || !slices.Equal(ms, []store.ProfileID{2}) {
		t.Fatalf("members: %v %v", ms, err)
	}
	if h, err := st.AudienceHistory(ctx, w, "subscribers", 0, 0, 10); err != nil || len(h) != 1 || h[0].Profile != 2 {
		t.Fatalf("audience history: %+v %v", h, err)
	}
	if ob, err := st.ReadOutbox(ctx, w, 0, 10); err != nil || len(ob) != 1 || ob[0].Profile != 2 {
		t.Fatalf("outbox: %+v %v", ob, err)
	}
	if l, err := st.Ledger(ctx, w, 2); err != nil || len(l) != 1 {
		t.Fatalf("ledger of 2: %+v %v", l, err)
	}
	if dls, err := st.DeadLetters(ctx, w, "hook", 0, 10); err != nil || len(dls) != 1 || dls[0].Key != "k3" {
		t.Fatalf("dead letters: %+v %v", dls, err)
	}
	evs, err := st.Read(ctx, store.LogQuery{Workspace: w})
	if err != nil {
		t.Fatal(err)
	}
	var pos []int64
	for _, e := range evs {
		pos = append(pos, e.Position)
	}
	if !slices.Equal(pos, []int64{5, 6}) {
		t.Fatalf("log positions %v, want [5 6]", pos)
	}
	if h, err := st.Head(ctx, w); err != nil || h != 6 {
		t.Fatalf("head %d %v, want 6", h, err)
	}
	qs, err := st.ListQuarantine(ctx, store.QuarantineQuery{Workspace: w})
	if err != nil || len(qs) != 1 || qs[0].MessageID != "q3" {
		t.Fatalf("quarantine: %+v %v", qs, err)
	}
}
