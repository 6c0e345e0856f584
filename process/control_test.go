package process_test

import (
	"context"
	"encoding/json"
	"errors"
	"testing"
	"time"

	"github.com/kithcdp/kith/process"
	"github.com/kithcdp/kith/store"
)

// appendCommand writes an identity control event, as the admin API does.
func appendCommand(t *testing.T, st store.Store, ws, action, typ, value string) {
	t.Helper()
	raw, _ := json.Marshal(process.IdentityCommand{Action: action, Identifier: store.Identifier{Type: typ, Value: value}, Actor: "test"})
	now := time.Date(2026, 11, 24, 12, 0, 0, 0, time.UTC)
	ev := store.Event{Workspace: ws, Source: "kith-admin", MessageID: action + typ + value + now.String(), Type: store.TypeIdentity,
		Timestamp: now, ReceivedAt: now, Format: store.FormatVersion, Raw: raw}
	if _, err := st.Append(context.Background(), &store.Batch{Events: []store.Event{ev}}, time.Hour); err != nil {
		t.Fatal(err)
	}
}

// owner returns the profile holding an identifier, 0 if none does.
func owner(t *testing.T, st store.Store, ws, typ, value string) store.ProfileID {
	t.Helper()
	p, err := st.Lookup(context.Background(), ws, store.Identifier{Type: typ, Value: value})
	if err != nil && !errors.Is(err, store.ErrNotFound) {
		t.Fatal(err)
	}
	return p
}

// TestBlockAndRemoveRebuildProfiles: a shared family email glued a second
// visitor to a user; blocking the email splits them again, and a replay of
// the log (which holds the correction) builds the same state.
func TestBlockAndRemoveRebuildProfiles(t *testing.T) {
	t.Parallel()
	eachBackend(t, func(t *testing.T, st store.Store) {
		ctx := context.Background()
		const ws = "fix"
		rx := time.Date(2026, 11, 24, 10, 0, 0, 0, time.UTC)
		fold := func() { foldAll(t, st, ws) }
		appendEvents(t, st, ws, rx,
			`{"type":"identify","userId":"u1","anonymousId":"a1","traits":{"email":"family@example.com","name":"Ann"},"timestamp":"2026-11-24T09:00:00Z"}`,
			`{"type":"page","anonymousId":"a2","name":"Home","timestamp":"2026-11-24T09:01:00Z"}`,
			`{"type":"identify","anonymousId":"a2","traits":{"email":"family@example.com","name":"Bob"},"timestamp":"2026-11-24T09:02:00Z"}`,
		)
		fold()
		u1 := owner(t, st, ws, "user_id", "u1")
		if owner(t, st, ws, "anonymous_id", "a2") != u1 {
			t.Fatal("the shared email should have glued a2 to u1 before the correction")
		}

		appendCommand(t, st, ws, process.ActionBlock, "email", "family@example.com")
		appendEvents(t, st, ws, rx.Add(time.Hour),
			`{"type":"identify","anonymousId":"a3","traits":{"email":"family@example.com"},"timestamp":"2026-11-24T11:00:00Z"}`)
		fold()
		if got := owner(t, st, ws, "user_id", "u1"); got != u1 {
			t.Fatalf("u1 moved to profile %d; a rebuilt profile keeps its id %d", got, u1)
		}
		a2 := owner(t, st, ws, "anonymous_id", "a2")
		if a2 == 0 || a2 == u1 || owner(t, st, ws, "email", "family@example.com") != 0 {
			t.Fatalf("after blocking: a2 on %d, u1 on %d, email on %d", a2, u1, owner(t, st, ws, "email", "family@example.com"))
		}
		if a3 := owner(t, st, ws, "anonymous_id", "a3"); a3 == 0 || a3 == u1 || a3 == a2 {
			t.Fatalf("a blocked identifier linked a new event: a3 on %d", a3)
		}
		if traitMap(t, st, ws, u1)["name"] != `"Ann"` || traitMap(t, st, ws, a2)["name"] != `"Bob"` {
			t.Fatalf("traits after the split: %v / %v", traitMap(t, st, ws, u1), traitMap(t, st, ws, a2))
		}
		if p, _ := st.Profile(ctx, ws, u1); p.Events != 1 {
			t.Fatalf("u1's profile counts %d events, want 1", p.Events)
		}

		// remove detaches an identifier once; later events may link it.
		appendCommand(t, st, ws, process.ActionRemove, "anonymous_id", "a1")
		fold()
		if owner(t, st, ws, "anonymous_id", "a1") != 0 || owner(t, st, ws, "user_id", "u1") != u1 {
			t.Fatal("a1 still held after remove")
		}
		appendCommand(t, st, ws, process.ActionUnblock, "email", "family@example.com")
		appendEvents(t, st, ws, rx.Add(2*time.Hour),
			`{"type":"page","anonymousId":"a1","name":"Back","timestamp":"2026-11-24T12:00:00Z"}`,
			`{"type":"identify","anonymousId":"a4","traits":{"email":"family@example.com"},"timestamp":"2026-11-24T12:01:00Z"}`)
		fold()
		if a1 := owner(t, st, ws, "anonymous_id", "a1"); a1 == 0 || a1 == u1 {
			t.Fatalf("a1 after remove and a new page: %d", a1)
		}
		if e := owner(t, st, ws, "email", "family@example.com"); e == 0 || e != owner(t, st, ws, "anonymous_id", "a4") {
			t.Fatal("the unblocked email does not link again")
		}
		d, err := st.Decisions(ctx, ws, 0, 100)
		if err != nil || len(d) == 0 {
			t.Fatalf("decisions %v %v", d, err)
		}

		incremental := digest(t, st, ws)
		if err := newProcessor(st, 1000).Replay(ctx, ws, nil); err != nil {
			t.Fatal(err)
		}
		if replayed := digest(t, st, ws); replayed != incremental {
			t.Fatalf("replay differs from incremental folding with corrections:\n--- incremental\n%s\n--- replay\n%s", incremental, replayed)
		}
	})
}

// TestUnmerge undoes one merge: the merged-away profile gets its id back
// with the events that were its own, and a replay agrees.
func TestUnmerge(t *testing.T) {
	t.Parallel()
	eachBackend(t, func(t *testing.T, st store.Store) {
		ctx := context.Background()
		const ws = "unmerge"
		rx := time.Date(2026, 11, 24, 10, 0, 0, 0, time.UTC)
		fold := func() { foldAll(t, st, ws) }
		appendEvents(t, st, ws, rx,
			`{"type":"identify","userId":"u1","anonymousId":"a1","traits":{"name":"Ann"},"timestamp":"2026-11-24T09:00:00Z"}`,
			`{"type":"page","anonymousId":"a2","name":"Home","timestamp":"2026-11-24T09:01:00Z"}`,
			`{"type":"identify","userId":"u1","anonymousId":"a2","timestamp":"2026-11-24T09:02:00Z"}`,
			`{"type":"page","anonymousId":"a2","name":"Again","timestamp":"2026-11-24T09:03:00Z"}`,
		)
		fold()
		u1, a2 := owner(t, st, ws, "user_id", "u1"), owner(t, st, ws, "anonymous_id", "a2")
		merges, err := st.Merges(ctx, ws, u1)
		if u1 == 0 || a2 != u1 || err != nil || len(merges) != 1 {
			t.Fatalf("before: u1 %d a2 %d merges %+v %v", u1, a2, merges, err)
		}
		m := merges[0]
		raw, _ := json.Marshal(process.IdentityCommand{Action: process.ActionUnmerge, Identifier: m.Via, From: m.From, Position: m.Position, Actor: "test"})
		ev := store.Event{Workspace: ws, Source: "kith-admin", MessageID: "unmerge-1", Type: store.TypeIdentity,
			Timestamp: rx, ReceivedAt: rx, Format: store.FormatVersion, Raw: raw}
		if _, err := st.Append(ctx, &store.Batch{Events: []store.Event{ev}}, time.Hour); err != nil {
			t.Fatal(err)
		}
		fold()
		if got := owner(t, st, ws, "user_id", "u1"); got != u1 {
			t.Fatalf("u1 moved to %d", got)
		}
		if got := owner(t, st, ws, "anonymous_id", "a2"); got != m.From {
			t.Fatalf("a2 is on profile %d, want its own id %d back", got, m.From)
		}
		back, err := st.Profile(ctx, ws, m.From)
		if err != nil || back.MergedInto != 0 || back.Events != 2 {
			t.Fatalf("restored profile %+v %v: want 2 events, no redirect", back, err)
		}
		if p, _ := st.Profile(ctx, ws, u1); p.Events != 2 {
			t.Fatalf("u1's profile has %d events, want 2", p.Events)
		}
		incremental := digest(t, st, ws)
		if err := newProcessor(st, 1000).Replay(ctx, ws, nil); err != nil {
			t.Fatal(err)
		}
		if replayed := digest(t, st, ws); replayed != incremental {
			t.Fatalf("replay differs:\n--- incremental\n%s\n--- replay\n%s", incremental, replayed)
		}
	})
}
