package delivery

import (
	"context"
	"encoding/json"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/kithcdp/kith/compute"
	"github.com/kithcdp/kith/destination"
	"github.com/kithcdp/kith/store"
)

// gateStore holds one profile, 7, that restricted all processing and
// whose ledger shows a delivery to "hook"; it counts the ledger reads. The
// rest of store.Store is not used.
type gateStore struct {
	store.Store
	ledgerReads int
}

func (s *gateStore) Cursors(context.Context) (map[string]int64, error) {
	return map[string]int64{"acme": 1}, nil
}

func (s *gateStore) ComputedValues(context.Context, string, store.ProfileID) ([]store.ComputedValue, error) {
	return []store.ComputedValue{{Name: compute.ConsentValue, Value: json.RawMessage(`{"restricted":["all"]}`)}}, nil
}

func (s *gateStore) Ledger(_ context.Context, ws string, p store.ProfileID) ([]store.LedgerEntry, error) {
	s.ledgerReads++
	return []store.LedgerEntry{{Workspace: ws, Destination: "hook", Profile: p, Deliveries: 1}}, nil
}

// TestGateExitsReadTheLedgerOnce: a person who restricted all processing
// gets no event, but the exits from the audiences a destination received
// them in (removals) — all of them, with one ledger read for the batch.
func TestGateExitsReadTheLedgerOnce(t *testing.T) {
	t.Parallel()
	st := &gateStore{}
	w := &worker{e: New(Options{Store: st, Metrics: prometheus.NewRegistry()}), ws: "acme", def: Definition{Name: "hook", StrictlyNecessary: true}}
	batch := []item{{d: destination.Delivery{Kind: destination.KindEvent, Profile: 7}}}
	for _, aud := range []string{"buyers", "vip", "churned"} {
		batch = append(batch, item{d: destination.Delivery{Kind: destination.KindAudienceExited, Profile: 7, Audience: aud}})
	}
	out := &outcome{}
	keep := w.gate(context.Background(), batch, out, false)
	if len(keep) != 3 || out.filtered != 1 {
		t.Errorf("kept %d and filtered %d of the event and three exits: want the exits and not the event", len(keep), out.filtered)
	}
	for _, it := range keep {
		if it.d.Kind != destination.KindAudienceExited {
			t.Errorf("kept a %s", it.d.Kind)
		}
	}
	if st.ledgerReads != 1 {
		t.Errorf("%d ledger reads for one person's exits, want 1", st.ledgerReads)
	}
}
