package delivery_test

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"testing"
	"time"

	"github.com/kithcdp/kith/compute"
	"github.com/kithcdp/kith/identity"
	"github.com/kithcdp/kith/ingest"
	"github.com/kithcdp/kith/process"
	"github.com/kithcdp/kith/store"
)

// pageReader is what the worker reads a page's identifiers and profiles
// with when the store has it (both backends do).
type pageReader interface {
	LookupAll(ctx context.Context, workspace string, ids []store.Identifier) (map[store.Identifier]store.ProfileID, error)
	ComputedValuesOf(ctx context.Context, workspace string, profiles []store.ProfileID, names []string) (map[store.ProfileID][]store.ComputedValue, error)
}

// TestPageReader: LookupAll and ComputedValuesOf agree with Lookup and
// ComputedValues one at a time, and leave out what is not held.
func TestPageReader(t *testing.T) {
	eachBackend(t, func(t *testing.T, st store.Store) {
		pr, ok := st.(pageReader)
		if !ok {
			t.Fatal("the store reads no pages")
		}
		ctx := context.Background()
		var calls []string
		for i := range 30 {
			calls = append(calls, fmt.Sprintf(`{"type":"track","event":"E","userId":"u%d","anonymousId":"a%d","messageId":"m%d"}`, i%12, i, i))
		}
		out, err := ingest.Decode(ingest.Input{Call: ingest.CallBatch, Body: []byte(`{"batch":[` + fmt.Sprint(joinComma(calls)) + `]}`), ReceivedAt: time.Now()}, ingest.DefaultLimits())
		if err != nil {
			t.Fatal(err)
		}
		for k := range out.Events {
			out.Events[k].Workspace, out.Events[k].Source = "ws", "web"
		}
		if _, err := st.Append(ctx, &store.Batch{Events: out.Events}, time.Hour); err != nil {
			t.Fatal(err)
		}
		rules, _ := identity.DefaultRules().Compile()
		p := process.New(process.Options{Store: st, Owner: "folder", LeaseTTL: time.Minute,
			Rules: func(string) (*identity.Compiled, error) { return rules, nil }})
		if err := p.CatchUp(ctx, "ws", nil); err != nil {
			t.Fatal(err)
		}
		var ids []store.Identifier
		for i := range 31 { // a30 and u30 are held by none
			ids = append(ids, store.Identifier{Type: identity.UserID, Value: fmt.Sprintf("u%d", i)},
				store.Identifier{Type: identity.AnonymousID, Value: fmt.Sprintf("a%d", i)})
		}
		got, err := pr.LookupAll(ctx, "ws", ids)
		if err != nil {
			t.Fatal(err)
		}
		want := map[store.Identifier]store.ProfileID{}
		profiles := map[store.ProfileID]bool{}
		for _, id := range ids {
			p, err := st.Lookup(ctx, "ws", id)
			if err == nil {
				want[id] = p
				profiles[p] = true
			}
		}
		if len(want) != 42 || !maps.Equal(got, want) {
			t.Fatalf("LookupAll: %d found, want %d (%v)", len(got), len(want), got)
		}
		ps := slices.Sorted(maps.Keys(profiles))
		names := []string{compute.ConsentValue, "events_count"}
		vals, err := pr.ComputedValuesOf(ctx, "ws", append(ps, 999999), names)
		if err != nil {
			t.Fatal(err)
		}
		for _, p := range ps {
			all, err := st.ComputedValues(ctx, "ws", p)
			if err != nil {
				t.Fatal(err)
			}
			var w []store.ComputedValue
			for _, v := range all {
				if slices.Contains(names, v.Name) {
					w = append(w, v)
				}
			}
			if fmt.Sprint(vals[p]) != fmt.Sprint(w) {
				t.Fatalf("profile %d: %v, want %v", p, vals[p], w)
			}
		}
		if len(vals[999999]) != 0 {
			t.Fatalf("a profile that does not exist has %v", vals[999999])
		}
	})
}

func joinComma(s []string) string {
	out := ""
	for i, x := range s {
		if i > 0 {
			out += ","
		}
		out += x
	}
	return out
}
