package privacy

import (
	"context"
	"encoding/json"
	"slices"
	"time"

	"github.com/kithcdp/kith/consent"
	"github.com/kithcdp/kith/store"
)

// ConsentChange is one change of a person's consent, read from their
// timeline: an event that carried consent (context.consent's
// categoryPreferences or tcString) or the Global Privacy Control signal,
// or a privacy control event that set consent, personal terms, a
// restriction or an objection (or lifted one).
type ConsentChange struct {
	Position int64 `json:"position"`
	// At is when it was said: the event's timestamp, or when the control
	// event was asked.
	At time.Time `json:"at"`
	// How is the event's type and name ("track Segment Consent Preference
	// Updated", "page Pricing", "identify"), or "privacy <action>" for a
	// control event ("privacy consent", "privacy restrict", …).
	How string `json:"how"`
	// Source is the event's source, or how the control event was asked:
	// "portal", "api" or "cli".
	Source string `json:"source"`
	// Actor is who: "person" for the person's own events, else the
	// control event's actor ("portal", "token:<name>", "cli").
	Actor string `json:"actor"`

	// What an event said.
	CategoryPreferences map[string]bool `json:"category_preferences,omitempty"`
	TCString            string          `json:"tc_string,omitempty"`
	GPC                 bool            `json:"gpc,omitempty"`
	// What a control event set.
	Consent map[string]bool `json:"consent,omitempty"`
	// Terms are the terms set; none on a "privacy terms" change is their
	// withdrawal.
	Terms   []string `json:"terms,omitempty"`
	Scope   string   `json:"scope,omitempty"`
	Request string   `json:"request,omitempty"`
}

// ActorPerson is the actor of a change the person made through their own
// events.
const ActorPerson = "person"

// consentActions are the control actions that change consent.
var consentActions = []string{ActionConsent, ActionTerms, ActionRestrict, ActionUnrestrict, ActionObject, ActionUnobject}

// ConsentChangeOf returns the consent change ev records, if it records
// one.
func ConsentChangeOf(ev *store.Event) (ConsentChange, bool) {
	c := ConsentChange{Position: ev.Position, At: ev.Timestamp.UTC(), Source: ev.Source}
	if ev.Type == store.TypePrivacy {
		var cmd Command
		if json.Unmarshal(ev.Raw, &cmd) != nil || !slices.Contains(consentActions, cmd.Action) {
			return ConsentChange{}, false
		}
		c.How, c.Source, c.Actor = "privacy "+cmd.Action, cmd.Via, cmd.Actor
		c.Consent, c.Terms, c.Scope, c.Request = cmd.Consent, cmd.Terms, cmd.Scope, cmd.Request
		return c, true
	}
	if ev.Type == store.TypeIdentity {
		return ConsentChange{}, false
	}
	c.How, c.Actor, c.GPC = ev.Type, ActorPerson, ev.Signals.GPC
	if ev.Name != "" {
		c.How += " " + ev.Name
	}
	if consent.MayHold(ev.Raw) {
		if s, err := consent.EventStatement(ev.Raw); err == nil {
			c.CategoryPreferences, c.TCString = s.Categories, s.TCString
		}
	}
	if c.CategoryPreferences == nil && c.TCString == "" && !c.GPC {
		return ConsentChange{}, false
	}
	return c, true
}

// TimelineReader reads a profile's timeline and its events.
type TimelineReader interface {
	Timeline(ctx context.Context, workspace string, id store.ProfileID, before int64, limit int) ([]int64, error)
	Read(ctx context.Context, q store.LogQuery) ([]store.Event, error)
}

// ConsentHistory calls fn with each consent change of profile p's
// timeline before position before (0: from the newest), newest first,
// reading a page of events at a time, until fn returns false or the
// timeline ends. It reports whether fn stopped it.
func ConsentHistory(ctx context.Context, st TimelineReader, workspace string, p store.ProfileID, before int64, fn func(ConsentChange) bool) (stopped bool, err error) {
	err = timelinePages(ctx, st, workspace, p, before, func(_ int, events []store.Event) (bool, error) {
		for i := range events {
			if c, ok := ConsentChangeOf(&events[i]); ok && !fn(c) {
				stopped = true
				return false, nil
			}
		}
		return true, nil
	})
	return stopped, err
}

// EachConsentChange calls fn with every consent change of the profile,
// newest first (ConsentHistory).
func (r *Report) EachConsentChange(fn func(ConsentChange) error) error {
	var ferr error
	_, err := ConsentHistory(r.ctx, r.st, r.Workspace, store.ProfileID(r.Profile.KithID), 0, func(c ConsentChange) bool {
		ferr = fn(c)
		return ferr == nil
	})
	if ferr != nil {
		return ferr
	}
	return err
}

// consentChangeRow is a change as a row of consent_history.csv.
func consentChangeRow(c ConsentChange) []string {
	bools := func(m map[string]bool) string {
		if m == nil {
			return ""
		}
		b, _ := json.Marshal(m) // sorted keys
		return string(b)
	}
	terms := ""
	if c.Terms != nil {
		b, _ := json.Marshal(c.Terms)
		terms = string(b)
	}
	gpc := ""
	if c.GPC {
		gpc = "true"
	}
	return []string{itoa(c.Position), ts(c.At), c.How, c.Source, c.Actor, bools(c.CategoryPreferences), c.TCString, gpc,
		bools(c.Consent), terms, c.Scope, c.Request}
}

// CurrentProfile reads profile p of workspace, following merges to the
// profile it now lives in (as Export does). It fails with
// store.ErrNotFound when the workspace holds no such profile.
func CurrentProfile(ctx context.Context, st Reader, workspace string, p store.ProfileID) (store.Profile, error) {
	return resolve(ctx, st, workspace, p)
}
