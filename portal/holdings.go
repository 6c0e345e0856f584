package portal

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"time"

	"github.com/kithcdp/kith/consent"
	"github.com/kithcdp/kith/privacy"
	"github.com/kithcdp/kith/store"
)

// eventsPerPage is how many events the timeline shows at a time.
const eventsPerPage = 50

// holdings is what the home page shows a signed-in person.
type holdings struct {
	Found       bool // a profile holds the email
	Report      *privacy.Report
	Audiences   []string // the audiences the person is in now
	Events      []eventRow
	OlderBefore int64 // the before= of the next (older) page; 0: none
	Paged       bool  // this is not the newest page
	Purposes    []purposeRow
	GPC         bool     // the Global Privacy Control signal was applied
	Terms       []string // the personal terms the person chose
}

// eventRow is one event of the timeline.
type eventRow struct {
	Type, Name, Source string
	Timestamp          time.Time
}

// purposeRow is one consent purpose and where it stands.
type purposeRow struct {
	Name, Description string
	State             string // for people: granted, withdrawn, not given, always on
	Granted           bool
	Necessary         bool   // strictly necessary: no consent asked, no toggle
	By                string // what decided (consent.Choice.By): gpc, terms:…, categoryPreferences.…
}

// readHoldings reads what ws holds on the session's email. before pages
// the events (0: the newest).
func (p *Portal) readHoldings(ctx context.Context, v *visit, before int64) (*holdings, error) {
	h := &holdings{}
	rep, err := p.report(ctx, v)
	if err != nil {
		return nil, err
	}
	if rep == nil {
		return h, nil
	}
	h.Found, h.Report = true, rep
	for _, a := range rep.Audiences {
		if a.Member {
			h.Audiences = append(h.Audiences, a.Name)
		}
	}
	id := store.ProfileID(rep.Profile.KithID)
	if err := p.readEvents(ctx, v.ws, id, before, h); err != nil {
		return nil, err
	}
	stmt, err := p.consentOf(ctx, v.ws, id)
	if err != nil {
		return nil, err
	}
	h.GPC, h.Terms = stmt.GPC, stmt.Terms
	cat := p.purposes(v.ws)
	states, _ := cat.State(cat.Resolve(stmt))
	for _, st := range states {
		row := purposeRow{Name: st.Name, Description: st.Description, Necessary: st.Necessary, Granted: st.Status == consent.StatusGranted, By: st.By}
		switch {
		case st.Necessary:
			row.State = "always on: no consent needed"
		case st.Status == consent.StatusGranted:
			row.State = "granted"
		case st.Status == consent.StatusDenied:
			row.State = "withdrawn"
		default:
			row.State = "not given"
		}
		h.Purposes = append(h.Purposes, row)
	}
	return h, nil
}

// report exports what ws holds on the session's email; nil when it holds
// nothing.
func (p *Portal) report(ctx context.Context, v *visit) (*privacy.Report, error) {
	id, err := p.lookup(ctx, v)
	if err == nil {
		var rep *privacy.Report
		if rep, err = privacy.Export(ctx, p.o.Store, v.ws, id, v.now, p.exportOptions(v.ws)...); err == nil {
			return rep, nil
		}
	}
	if errors.Is(err, store.ErrNotFound) {
		return nil, nil // none, or erased between the lookup and the export
	}
	return nil, err
}

// statement reads the consent value of the profile holding the session's
// email, without the rest of the export: found is false when ws holds
// nothing on the email.
func (p *Portal) statement(ctx context.Context, v *visit) (found bool, st consent.Statement, err error) {
	id, err := p.lookup(ctx, v)
	if err == nil {
		var prof store.Profile
		if prof, err = privacy.CurrentProfile(ctx, p.o.Store, v.ws, id); err == nil {
			st, err = p.consentOf(ctx, v.ws, prof.ID)
			return err == nil, st, err
		}
	}
	if errors.Is(err, store.ErrNotFound) {
		return false, consent.Statement{}, nil
	}
	return false, consent.Statement{}, err
}

// exportOptions states ws's retention in exports.
func (p *Portal) exportOptions(ws string) []privacy.Option {
	if w, ok := p.o.Registry.Workspace(ws); ok {
		return []privacy.Option{privacy.WithRetention(w.Retention)}
	}
	return nil
}

// readEvents reads one page of the profile's timeline, newest first.
func (p *Portal) readEvents(ctx context.Context, ws string, id store.ProfileID, before int64, h *holdings) error {
	positions, err := p.o.Store.Timeline(ctx, ws, id, before, eventsPerPage+1)
	if err != nil {
		return fmt.Errorf("read the timeline: %w", err)
	}
	h.Paged = before > 0
	if len(positions) > eventsPerPage {
		positions = positions[:eventsPerPage]
		h.OlderBefore = positions[len(positions)-1]
	}
	if len(positions) == 0 {
		return nil
	}
	evs, err := p.o.Store.Read(ctx, store.LogQuery{Workspace: ws, Positions: positions, Descending: true, Limit: len(positions)})
	if err != nil {
		return fmt.Errorf("read events: %w", err)
	}
	for _, e := range evs {
		h.Events = append(h.Events, eventRow{Type: e.Type, Name: e.Name, Source: e.Source, Timestamp: e.Timestamp})
	}
	return nil
}

// consentOf reads the profile's consent value (the computed value
// privacy.ConsentValue: categoryPreferences, GPC, terms, restrictions),
// which the export shows only in part.
func (p *Portal) consentOf(ctx context.Context, ws string, id store.ProfileID) (consent.Statement, error) {
	vals, err := p.o.Store.ComputedValues(ctx, ws, id)
	if err != nil {
		return consent.Statement{}, fmt.Errorf("read the consent value: %w", err)
	}
	for _, c := range vals {
		if c.Name == privacy.ConsentValue {
			st, _ := consent.ValueStatement(c.Value) // a value of another shape states no consent
			return st, nil
		}
	}
	return consent.Statement{}, nil
}

// purposes is the catalogue of consent purposes the portal offers in
// workspace ws: the workspace's own (config consent.purposes).
func (p *Portal) purposes(ws string) *consent.Catalogue {
	if w, ok := p.o.Registry.Workspace(ws); ok && w.Purposes != nil {
		return w.Purposes
	}
	return consent.Default()
}

// holdingsPage is the home page of a signed-in person.
func (p *Portal) holdingsPage(w http.ResponseWriter, r *http.Request, v *visit) {
	var before int64
	if b := r.URL.Query().Get("before"); b != "" {
		n, err := strconv.ParseInt(b, 10, 64)
		if err != nil || n < 1 {
			p.render(w, v, http.StatusBadRequest, "error", "Bad request", nil, "", "The page of events asked for does not exist (before must be a positive number).")
			return
		}
		before = n
	}
	h, err := p.readHoldings(r.Context(), v, before)
	if err != nil {
		p.storeFailed(w, v, "read what we hold", err)
		return
	}
	p.render(w, v, http.StatusOK, "home", "What we hold about you", h, "", "")
}
