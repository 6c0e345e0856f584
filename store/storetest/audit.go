package storetest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/kithcdp/kith/store"
)

func auditEntry(ws, action, target string) store.AuditEntry {
	return store.AuditEntry{Workspace: ws, Actor: "ops", Action: action, Target: target, Method: "PUT",
		Path: "/v1/workspaces/" + ws + "/audiences/" + target, Status: 200,
		Details: json.RawMessage(`{"route":"compute_definitions","b":1,"a":[2]}`)}
}

// allAudit pages through a workspace's audit log with the given page size.
func allAudit(t *testing.T, st store.AuditLog, ws string, limit int) []store.AuditEntry {
	t.Helper()
	var out []store.AuditEntry
	var after int64
	for range 1000 {
		page, err := st.Audit(context.Background(), ws, after, limit)
		if err != nil {
			t.Fatal(err)
		}
		if limit > 0 && len(page) > limit {
			t.Fatalf("page of %d entries, limit %d", len(page), limit)
		}
		out = append(out, page...)
		if len(page) == 0 {
			return out
		}
		if page[0].ID <= after {
			t.Fatalf("page starts at id %d, after %d", page[0].ID, after)
		}
		after = page[len(page)-1].ID
	}
	t.Fatal("paging does not end")
	return nil
}

// runAudit runs the audit log part of the suite (store/audit.go).
func runAudit(t *testing.T, open func(t *testing.T) store.Store, ws func() string) {
	st := open(t)
	ctx := context.Background()

	t.Run("AuditAppendAndRoundTrip", func(t *testing.T) {
		t.Parallel()
		w := ws()
		at := time.Date(2025, 3, 4, 5, 6, 7, 891234567, time.FixedZone("CET", 3600))
		e := auditEntry(w, "definition.put", "audience:vip")
		e.At = at
		bare := store.AuditEntry{Workspace: w, Actor: store.AuditActorSystem, Action: "destination.disable"}
		before := time.Now().Add(-time.Second)
		if err := st.AppendAudit(ctx, e, bare); err != nil {
			t.Fatal(err)
		}
		got, err := st.Audit(ctx, w, 0, 0)
		if err != nil {
			t.Fatal(err)
		}
		if len(got) != 2 {
			t.Fatalf("%d entries, want 2", len(got))
		}
		g := got[0]
		if g.ID <= 0 || got[1].ID <= g.ID {
			t.Fatalf("ids %d, %d", g.ID, got[1].ID)
		}
		want := e
		want.ID, want.At = g.ID, at.UTC().Truncate(time.Microsecond)
		if !g.At.Equal(want.At) || g.At.Location() != time.UTC || g.Workspace != w || g.Actor != want.Actor ||
			g.Action != want.Action || g.Target != want.Target || g.Method != want.Method || g.Path != want.Path ||
			g.Status != want.Status || string(g.Details) != string(want.Details) {
			t.Fatalf("round trip:\n got %+v\nwant %+v", g, want)
		}
		b := got[1]
		if b.Details != nil || b.Target != "" || b.Status != 0 || b.Actor != store.AuditActorSystem {
			t.Fatalf("bare entry: %+v", b)
		}
		if b.At.Before(before) || b.At.After(time.Now().Add(time.Second)) {
			t.Fatalf("zero At not set to now: %v", b.At)
		}
		if err := st.AppendAudit(ctx); err != nil {
			t.Fatalf("empty append: %v", err)
		}
	})

	t.Run("AuditRefusesInvalidEntries", func(t *testing.T) {
		t.Parallel()
		w := ws()
		for _, e := range []store.AuditEntry{
			{Action: "x"},
			{Workspace: w},
			{Workspace: w, Action: "x", Details: json.RawMessage(`{"a":`)},
		} {
			// A bad entry fails the whole append: the good one is not stored.
			if err := st.AppendAudit(ctx, auditEntry(w, "ok", "t"), e); !errors.Is(err, store.ErrInvalidAudit) {
				t.Fatalf("%+v: %v, want ErrInvalidAudit", e, err)
			}
		}
		if got := allAudit(t, st, w, 0); len(got) != 0 {
			t.Fatalf("stored %d entries of refused appends", len(got))
		}
	})

	t.Run("AuditPaging", func(t *testing.T) {
		t.Parallel()
		w := ws()
		var batch []store.AuditEntry
		for i := range 25 {
			batch = append(batch, auditEntry(w, "definition.put", fmt.Sprint("audience:a", i)))
		}
		if err := st.AppendAudit(ctx, batch[:10]...); err != nil {
			t.Fatal(err)
		}
		for _, e := range batch[10:] {
			if err := st.AppendAudit(ctx, e); err != nil {
				t.Fatal(err)
			}
		}
		for _, limit := range []int{1, 7, 25, 0} {
			got := allAudit(t, st, w, limit)
			if len(got) != 25 {
				t.Fatalf("limit %d: %d entries, want 25", limit, len(got))
			}
			for i, e := range got {
				if e.Target != batch[i].Target {
					t.Fatalf("limit %d: entry %d is %q, want %q (append order)", limit, i, e.Target, batch[i].Target)
				}
			}
		}
		// Past the end: an empty page; the limit is capped like every page.
		last := allAudit(t, st, w, 0)[24].ID
		if page, err := st.Audit(ctx, w, last, 10); err != nil || len(page) != 0 {
			t.Fatalf("after the end: %d entries, %v", len(page), err)
		}
		if page, err := st.Audit(ctx, w, 0, 5000); err != nil || len(page) != 25 {
			t.Fatalf("limit above the cap: %d entries, %v", len(page), err)
		}
	})

	t.Run("AuditWorkspaceIsolation", func(t *testing.T) {
		t.Parallel()
		a, b := ws(), ws()
		if err := st.AppendAudit(ctx, auditEntry(a, "destination.pause", "destination:hook"),
			auditEntry(b, "identity.block", "identity"), auditEntry(a, "destination.resume", "destination:hook")); err != nil {
			t.Fatal(err)
		}
		ga, gb := allAudit(t, st, a, 0), allAudit(t, st, b, 0)
		if len(ga) != 2 || len(gb) != 1 || ga[0].Action != "destination.pause" || ga[1].Action != "destination.resume" ||
			gb[0].Action != "identity.block" || gb[0].Workspace != b {
			t.Fatalf("a %+v\nb %+v", ga, gb)
		}
		if got := allAudit(t, st, ws(), 0); len(got) != 0 {
			t.Fatalf("an empty workspace has %d entries", len(got))
		}
	})

	t.Run("AuditConcurrentAppendsFromNodes", func(t *testing.T) {
		t.Parallel()
		w := ws()
		nodes := []store.Store{st, open(t)}
		var wg sync.WaitGroup
		errs := make(chan error, 40)
		for n := range 4 {
			wg.Go(func() {
				for i := range 10 {
					errs <- nodes[n%2].AppendAudit(ctx, auditEntry(w, "token.use", fmt.Sprint(n, "-", i)))
				}
			})
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			if err != nil {
				t.Fatal(err)
			}
		}
		got := allAudit(t, nodes[1], w, 3)
		if len(got) != 40 {
			t.Fatalf("%d entries, want 40", len(got))
		}
		seen := map[string]bool{}
		for _, e := range got {
			if seen[e.Target] {
				t.Fatalf("entry %q twice", e.Target)
			}
			seen[e.Target] = true
		}
	})
}

// AuditRefusesChanges checks that the database itself refuses to change or
// remove audit entries: exec runs one SQL statement on st's database
// directly, past the store's contract (which has no such method). A
// backend's internal test calls it.
func AuditRefusesChanges(t *testing.T, st store.Store, exec func(ctx context.Context, query string) error) {
	t.Helper()
	ctx := context.Background()
	w := fmt.Sprintf("audit-tamper-%d", time.Now().UnixNano())
	if err := st.AppendAudit(ctx, auditEntry(w, "definition.put", "audience:vip"), auditEntry(w, "definition.delete", "audience:vip")); err != nil {
		t.Fatal(err)
	}
	for _, q := range []string{
		`UPDATE audit_log SET actor = 'someone else' WHERE workspace = '` + w + `'`,
		`UPDATE audit_log SET path = '', details = NULL`,
		`DELETE FROM audit_log WHERE workspace = '` + w + `'`,
		`DELETE FROM audit_log`,
	} {
		if err := exec(ctx, q); err == nil {
			t.Errorf("%s: succeeded, want it refused", q)
		} else if !strings.Contains(err.Error(), "append-only") {
			t.Errorf("%s: %v, want the append-only refusal", q, err)
		}
	}
	got := allAudit(t, st, w, 0)
	if len(got) != 2 || got[0].Actor != "ops" || got[1].Action != "definition.delete" {
		t.Fatalf("entries after refused changes: %+v", got)
	}
	// Appending still works after the refusals.
	if err := st.AppendAudit(ctx, auditEntry(w, "definition.put", "audience:x")); err != nil {
		t.Fatal(err)
	}
}
