// Package privacy serves the rights of the people Kith holds data on. This
// file is the right of access and portability (GDPR articles 15 and 20,
// CCPA's right to know): Export gathers everything a workspace holds on one
// profile, and the Report it returns writes it as JSON or as a ZIP of CSV
// files. Erasure, rectification and restriction come later (docs/privacy.md).
package privacy

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/kithcdp/kith/store"
)

// ReportFormat names the layout of a Report; it changes when a field's
// meaning changes, not when a field is added.
const ReportFormat = "kith.privacy.export/v1"

// ConsentValue is the computed value holding a profile's current consent
// (compute.ConsentValue; repeated here so that reading an export does not
// need the compute engine).
const ConsentValue = "consent"

// Reader is what Export reads: a subset of store.Store, so that any
// backend's store serves.
type Reader interface {
	Profile(ctx context.Context, workspace string, id store.ProfileID) (store.Profile, error)
	Traits(ctx context.Context, workspace string, id store.ProfileID, keys []string) ([]store.Trait, error)
	TraitHistory(ctx context.Context, workspace string, id store.ProfileID, key string, before int64, limit int) ([]store.TraitValue, error)
	Identifiers(ctx context.Context, workspace string, id store.ProfileID) ([]store.HeldIdentifier, error)
	Timeline(ctx context.Context, workspace string, id store.ProfileID, before int64, limit int) ([]int64, error)
	Links(ctx context.Context, workspace string, id store.ProfileID) ([]store.Link, error)
	Merges(ctx context.Context, workspace string, id store.ProfileID) ([]store.Merge, error)
	ComputedValues(ctx context.Context, workspace string, p store.ProfileID) ([]store.ComputedValue, error)
	AudienceHistory(ctx context.Context, workspace, audience string, p store.ProfileID, before int64, limit int) ([]store.AudienceChangeEntry, error)
	Ledger(ctx context.Context, workspace string, p store.ProfileID) ([]store.LedgerEntry, error)
	Definitions(ctx context.Context, workspace string) ([]store.Definition, error)
	Read(ctx context.Context, q store.LogQuery) ([]store.Event, error)
}

// Report is everything a workspace holds on one person. The bounded
// sections (identifiers, traits, computed values, links, merges,
// recipients) are read by Export; the two that grow with every event —
// the events themselves and each trait's history — are read page by page
// while the report is written (EachEvent, EachTraitChange), so that an
// export of millions of events holds one page of them in memory.
//
// The writers and the Each methods read under the context given to
// Export: cancelling it stops them.
type Report struct {
	Format      string         `json:"format"`
	Workspace   string         `json:"workspace"`
	GeneratedAt time.Time      `json:"generated_at"`
	Profile     ProfileSummary `json:"profile"`
	Identifiers []Identifier   `json:"identifiers"`
	// Traits are the current traits, by key (cleared ones are not held).
	Traits         []Trait         `json:"traits"`
	ComputedTraits []ComputedTrait `json:"computed_traits"`
	Audiences      []Audience      `json:"audiences"`
	// Consent is the current consent, nil when no event carried any.
	Consent        *Consent        `json:"consent"`
	LinkedAccounts []LinkedProfile `json:"linked_accounts"`
	Merges         []Merge         `json:"merges"`
	// Recipients is the delivery ledger: who received the person's data.
	Recipients           []Recipient          `json:"recipients"`
	PurposesAndRetention PurposesAndRetention `json:"purposes_and_retention"`

	ctx context.Context
	st  Reader
}

// ProfileSummary is the profile's identity in Kith and its counts.
type ProfileSummary struct {
	KithID int64  `json:"kith_id"`
	Kind   string `json:"kind"` // user or account
	// RequestedKithID is the id asked for when it was merged into KithID.
	RequestedKithID int64     `json:"requested_kith_id,omitempty"`
	FirstSeen       time.Time `json:"first_seen"`
	LastSeen        time.Time `json:"last_seen"`
	Events          int64     `json:"events"` // events folded into the profile
}

// Identifier is an identifier the profile holds and the event that added it.
type Identifier struct {
	Type     string    `json:"type"`
	Value    string    `json:"value"`
	AddedAt  time.Time `json:"added_at"`
	Position int64     `json:"added_by_position"` // the log position of that event
	Source   string    `json:"source"`            // that event's source ("" once retention deleted it)
}

// Trait is a current trait, or one value in a trait's history.
type Trait struct {
	Key       string          `json:"key"`
	Value     json.RawMessage `json:"value"`
	Source    string          `json:"source"`
	Timestamp time.Time       `json:"timestamp"` // the setting event's timestamp
	Position  int64           `json:"position"`  // the setting event's log position
}

// ComputedTrait is a value Kith computed from the person's events.
type ComputedTrait struct {
	Name       string          `json:"name"`
	Value      json.RawMessage `json:"value"`
	ComputedAt time.Time       `json:"computed_at"`
	Position   int64           `json:"position"` // the log position folded when it was computed
}

// Audience is an audience the person is in, or was in, with the history
// of their entries and exits (newest first).
type Audience struct {
	Name       string           `json:"name"`
	Member     bool             `json:"member"`
	ComputedAt time.Time        `json:"computed_at,omitzero"`
	Position   int64            `json:"position,omitempty"`
	History    []AudienceChange `json:"history"`
}

// AudienceChange is one entry into or exit from an audience.
type AudienceChange struct {
	Change   string    `json:"change"` // entered or exited
	Reason   string    `json:"reason"` // evaluated, expired, merged, removed
	At       time.Time `json:"at"`
	Position int64     `json:"position"`
}

// Consent is the person's current consent: the categoryPreferences (and
// TC string) of the latest event that carried any (Segment's
// context.consent), with the changes made since through privacy control
// events, the Global Privacy Control opt-out, and the person's terms,
// restrictions and objections (docs/consent.md).
type Consent struct {
	CategoryPreferences map[string]json.RawMessage `json:"category_preferences"`
	GivenAt             time.Time                  `json:"given_at"` // that event's timestamp
	Position            int64                      `json:"position"`
	TCString            string                     `json:"tc_string,omitempty"`
	GPC                 bool                       `json:"gpc,omitempty"`
	Terms               []string                   `json:"terms,omitempty"`
	Restricted          []string                   `json:"restricted,omitempty"`
	Objected            []string                   `json:"objected,omitempty"`
}

// LinkedProfile is an account (for a user; a user for an account) the
// profile is linked to by a group call.
type LinkedProfile struct {
	KithID      int64              `json:"kith_id"`
	Kind        string             `json:"kind"`
	Identifiers []store.Identifier `json:"identifiers"`
	LinkedAt    time.Time          `json:"linked_at"`
	Position    int64              `json:"position"`
}

// Merge records that another profile was merged into this one.
type Merge struct {
	MergedKithID int64            `json:"merged_kith_id"`
	Via          store.Identifier `json:"via"`
	Position     int64            `json:"position"`
	At           time.Time        `json:"at"`
}

// Recipient is what a destination received about the person on one day.
type Recipient struct {
	Destination       string    `json:"destination"`
	Type              string    `json:"type,omitempty"` // webhook, forward, nats, audience_export ("" once deleted)
	Day               string    `json:"day"`            // YYYY-MM-DD (UTC)
	Kinds             []string  `json:"kinds"`          // event, trait_changed, audience_entered, …
	Deliveries        int64     `json:"deliveries"`
	Last              time.Time `json:"last"`
	Purposes          []string  `json:"purposes"` // the consent purposes the destination declares
	StrictlyNecessary bool      `json:"strictly_necessary,omitempty"`
}

// Purpose is one use of the data.
type Purpose struct {
	Name        string `json:"name"`
	Description string `json:"description"`
}

// PurposesAndRetention states what the data is used for and how long it
// is kept.
type PurposesAndRetention struct {
	Purposes []Purpose `json:"purposes"`
	// EventRetentionDays is how long events are kept after they are
	// received; 0 means no period is set (kept until erased).
	EventRetentionDays int `json:"event_retention_days"`
	// Retention says the same in words, for each kind of data.
	Retention []Purpose `json:"retention"`
}

// Event is one of the person's events as received.
type Event struct {
	Position   int64     `json:"position"`
	MessageID  string    `json:"message_id"`
	Type       string    `json:"type"`
	Name       string    `json:"name,omitempty"` // track: event name; page/screen: name
	Source     string    `json:"source"`
	Timestamp  time.Time `json:"timestamp"`
	ReceivedAt time.Time `json:"received_at"`
	Signals    Signals   `json:"signals"` // what the request that carried it told
	// Raw is the event byte for byte as Kith stored it (the batch's
	// context merged in).
	Raw json.RawMessage `json:"raw"`
}

// Signals are facts about the request that carried an event.
type Signals struct {
	IP        string `json:"ip,omitempty"`
	UserAgent string `json:"user_agent,omitempty"`
	Origin    string `json:"origin,omitempty"`
	GPC       bool   `json:"gpc,omitempty"` // the request carried Sec-GPC: 1
}

// Option adjusts an export.
type Option func(*options)

type options struct {
	retention time.Duration
	purposes  []Purpose
}

// WithRetention states the workspace's event retention (its config
// retention; 0: none).
func WithRetention(d time.Duration) Option { return func(o *options) { o.retention = d } }

// WithPurposes replaces the default statement of what the data is used
// for (DefaultPurposes).
func WithPurposes(p ...Purpose) Option { return func(o *options) { o.purposes = p } }

// DefaultPurposes are the uses Kith itself makes of the data it holds.
// Recipients lists each destination with the consent purposes it
// declares.
var DefaultPurposes = []Purpose{
	{"identity_resolution", "Recognize the person across devices, browsers and accounts by linking the identifiers listed here into one profile."},
	{"customer_profile", "Keep the traits the person or the company's systems sent, with their history, for the company's service, sales and marketing teams."},
	{"profiling_and_segmentation", "Compute traits and audience memberships from the person's events (listed under computed traits and audiences)."},
	{"activation", "Send events, trait changes and audience changes to the recipients listed, each only for the consent purposes it declares, as the person's consent allows."},
}

// identityCalls are the calls retention keeps because they carry
// identity, so that a replay after retention rebuilds the same profiles.
var identityCalls = []string{"identify", "alias", "group"}

// KeptOnRetention are the event types retention never deletes: the calls
// that carry identity, and the control events (identity corrections and
// privacy decisions), so that a replay after retention reproduces them.
var KeptOnRetention = append(slices.Clone(identityCalls), store.TypeIdentity, store.TypePrivacy)

// pageSize is how many events or trait values are read at a time.
const pageSize = 1000

// Export gathers what workspace holds on profile p — following merges to
// the profile p now lives in — as of now. It fails with store.ErrNotFound
// when the workspace holds no such profile.
func Export(ctx context.Context, st Reader, workspace string, p store.ProfileID, now time.Time, opts ...Option) (*Report, error) {
	var o options
	for _, opt := range opts {
		opt(&o)
	}
	if o.purposes == nil {
		o.purposes = DefaultPurposes
	}
	st = openSealed(st, workspace) // sensitive.go: sealed sensitive traits opened
	prof, err := resolve(ctx, st, workspace, p)
	if err != nil {
		return nil, err
	}
	r := &Report{
		Format: ReportFormat, Workspace: workspace, GeneratedAt: now.UTC(), ctx: ctx, st: st,
		Profile: ProfileSummary{KithID: int64(prof.ID), Kind: prof.Kind, FirstSeen: prof.FirstSeen.UTC(), LastSeen: prof.LastSeen.UTC(), Events: prof.Events},
	}
	if prof.ID != p {
		r.Profile.RequestedKithID = int64(p)
	}
	id := prof.ID
	if err := r.readIdentifiers(ctx, st, workspace, id); err != nil {
		return nil, err
	}
	traits, err := st.Traits(ctx, workspace, id, nil)
	if err != nil {
		return nil, fmt.Errorf("read traits: %w", err)
	}
	r.Traits = make([]Trait, len(traits))
	for i, t := range traits {
		r.Traits[i] = Trait{Key: t.Key, Value: t.Value, Source: t.Source, Timestamp: t.Timestamp.UTC(), Position: t.Position}
	}
	defs, err := st.Definitions(ctx, workspace)
	if err != nil {
		return nil, fmt.Errorf("read definitions: %w", err)
	}
	if err := r.readComputed(ctx, st, workspace, id, defs); err != nil {
		return nil, err
	}
	if err := r.readLinks(ctx, st, workspace, prof); err != nil {
		return nil, err
	}
	merges, err := st.Merges(ctx, workspace, id)
	if err != nil {
		return nil, fmt.Errorf("read merges: %w", err)
	}
	r.Merges = make([]Merge, len(merges))
	for i, m := range merges {
		r.Merges[i] = Merge{MergedKithID: int64(m.From), Via: m.Via, Position: m.Position, At: m.At.UTC()}
	}
	if err := r.readRecipients(ctx, st, workspace, id, defs); err != nil {
		return nil, err
	}
	r.PurposesAndRetention = purposesAndRetention(o)
	return r, nil
}

// resolve reads profile p, following merges (a chain is flattened at each
// merge, so a few steps suffice; 100 bounds a corrupt cycle).
func resolve(ctx context.Context, st Reader, workspace string, p store.ProfileID) (store.Profile, error) {
	id := p
	for range 100 {
		prof, err := st.Profile(ctx, workspace, id)
		if err != nil {
			if errors.Is(err, store.ErrNotFound) {
				return store.Profile{}, fmt.Errorf("profile %d: %w", p, store.ErrNotFound)
			}
			return store.Profile{}, fmt.Errorf("read profile %d: %w", id, err)
		}
		if prof.MergedInto == 0 {
			return prof, nil
		}
		id = prof.MergedInto
	}
	return store.Profile{}, fmt.Errorf("profile %d: merges do not end: %w", p, store.ErrNotFound)
}

func (r *Report) readIdentifiers(ctx context.Context, st Reader, ws string, id store.ProfileID) error {
	held, err := st.Identifiers(ctx, ws, id)
	if err != nil {
		return fmt.Errorf("read identifiers: %w", err)
	}
	positions := make([]int64, 0, len(held))
	for _, h := range held {
		positions = append(positions, h.Position)
	}
	sources, err := eventSources(ctx, st, ws, positions)
	if err != nil {
		return fmt.Errorf("read identifiers' events: %w", err)
	}
	r.Identifiers = make([]Identifier, len(held))
	for i, h := range held {
		r.Identifiers[i] = Identifier{Type: h.Type, Value: h.Value, AddedAt: h.AddedAt.UTC(), Position: h.Position, Source: sources[h.Position]}
	}
	return nil
}

// eventSources returns the source of the events at positions (those the
// log still holds).
func eventSources(ctx context.Context, st Reader, ws string, positions []int64) (map[int64]string, error) {
	positions = slices.Clone(positions)
	slices.Sort(positions)
	positions = slices.Compact(positions)
	out := make(map[int64]string, len(positions))
	for len(positions) > 0 {
		chunk := positions[:min(len(positions), pageSize)]
		positions = positions[len(chunk):]
		events, err := st.Read(ctx, store.LogQuery{Workspace: ws, Positions: chunk, Limit: len(chunk)})
		if err != nil {
			return nil, err
		}
		for _, e := range events {
			out[e.Position] = e.Source
		}
	}
	return out, nil
}

// readComputed splits the computed values into the consent, audience
// memberships (values named by the workspace's audience definitions) and
// computed traits (the rest), and reads each audience's history for the
// profile.
func (r *Report) readComputed(ctx context.Context, st Reader, ws string, id store.ProfileID, defs []store.Definition) error {
	vals, err := st.ComputedValues(ctx, ws, id)
	if err != nil {
		return fmt.Errorf("read computed values: %w", err)
	}
	audiences := map[string]bool{}
	for _, d := range defs {
		if d.Kind == store.DefinitionAudience {
			audiences[d.Name] = true
		}
	}
	r.ComputedTraits, r.Audiences = []ComputedTrait{}, []Audience{}
	seen := map[string]bool{}
	for _, v := range vals {
		switch {
		case v.Name == ConsentValue:
			var c struct {
				CategoryPreferences map[string]json.RawMessage `json:"categoryPreferences"`
				Timestamp           time.Time                  `json:"timestamp"`
				Position            int64                      `json:"position"`
				TCString            string                     `json:"tcString"`
				GPC                 bool                       `json:"gpc"`
				Terms               []string                   `json:"terms"`
				Restricted          []string                   `json:"restricted"`
				Objected            []string                   `json:"objected"`
			}
			if err := json.Unmarshal(v.Value, &c); err != nil {
				return fmt.Errorf("read consent: %w", err)
			}
			r.Consent = &Consent{CategoryPreferences: c.CategoryPreferences, GivenAt: c.Timestamp.UTC(), Position: c.Position,
				TCString: c.TCString, GPC: c.GPC, Terms: c.Terms, Restricted: c.Restricted, Objected: c.Objected}
		case audiences[v.Name]:
			seen[v.Name] = true
			a := Audience{Name: v.Name, Member: string(v.Value) == "true", ComputedAt: v.At.UTC(), Position: v.Position}
			if a.History, err = audienceHistory(ctx, st, ws, v.Name, id); err != nil {
				return err
			}
			r.Audiences = append(r.Audiences, a)
		default:
			r.ComputedTraits = append(r.ComputedTraits, ComputedTrait{Name: v.Name, Value: v.Value, ComputedAt: v.At.UTC(), Position: v.Position})
		}
	}
	// Audiences the profile has a history in but no value (e.g. left
	// before a rebuild) are listed too.
	for name := range audiences {
		if seen[name] {
			continue
		}
		h, err := audienceHistory(ctx, st, ws, name, id)
		if err != nil {
			return err
		}
		if len(h) > 0 {
			r.Audiences = append(r.Audiences, Audience{Name: name, History: h})
		}
	}
	slices.SortFunc(r.Audiences, func(a, b Audience) int { return strings.Compare(a.Name, b.Name) })
	return nil
}

func audienceHistory(ctx context.Context, st Reader, ws, audience string, id store.ProfileID) ([]AudienceChange, error) {
	out := []AudienceChange{}
	var before int64
	for {
		page, err := st.AudienceHistory(ctx, ws, audience, id, before, pageSize)
		if err != nil {
			return nil, fmt.Errorf("read the history of audience %s: %w", audience, err)
		}
		for _, c := range page {
			ch := "exited"
			if c.Entered {
				ch = "entered"
			}
			out = append(out, AudienceChange{Change: ch, Reason: c.Reason, At: c.At.UTC(), Position: c.Position})
		}
		if len(page) < pageSize {
			return out, nil
		}
		before = page[len(page)-1].Seq
	}
}

func (r *Report) readLinks(ctx context.Context, st Reader, ws string, prof store.Profile) error {
	links, err := st.Links(ctx, ws, prof.ID)
	if err != nil {
		return fmt.Errorf("read links: %w", err)
	}
	other, kind := func(l store.Link) store.ProfileID { return l.Account }, store.KindAccount
	if prof.Kind == store.KindAccount {
		other, kind = func(l store.Link) store.ProfileID { return l.User }, store.KindUser
	}
	r.LinkedAccounts = make([]LinkedProfile, 0, len(links))
	for _, l := range links {
		held, err := st.Identifiers(ctx, ws, other(l))
		if err != nil {
			return fmt.Errorf("read a linked profile's identifiers: %w", err)
		}
		ids := make([]store.Identifier, len(held))
		for i, h := range held {
			ids[i] = h.Identifier
		}
		r.LinkedAccounts = append(r.LinkedAccounts, LinkedProfile{KithID: int64(other(l)), Kind: kind, Identifiers: ids, LinkedAt: l.At.UTC(), Position: l.Position})
	}
	return nil
}

func (r *Report) readRecipients(ctx context.Context, st Reader, ws string, id store.ProfileID, defs []store.Definition) error {
	entries, err := st.Ledger(ctx, ws, id)
	if err != nil {
		return fmt.Errorf("read the delivery ledger: %w", err)
	}
	type destination struct {
		Type              string   `json:"type"`
		Purposes          []string `json:"purposes"`
		StrictlyNecessary bool     `json:"strictly_necessary"`
	}
	dests := map[string]destination{}
	for _, d := range defs {
		if d.Kind != store.DefinitionDestination {
			continue
		}
		var v destination // only these fields: the config (URLs, secrets) stays out
		if json.Unmarshal(d.Body, &v) == nil {
			dests[d.Name] = v
		}
	}
	r.Recipients = make([]Recipient, 0, len(entries))
	for _, e := range entries {
		d := dests[e.Destination]
		kinds, purposes := e.Kinds, d.Purposes
		if kinds == nil {
			kinds = []string{}
		}
		if purposes == nil {
			purposes = []string{}
		}
		r.Recipients = append(r.Recipients, Recipient{
			Destination: e.Destination, Type: d.Type, Day: e.Day.UTC().Format(time.DateOnly), Kinds: kinds,
			Deliveries: e.Deliveries, Last: e.Last.UTC(), Purposes: purposes, StrictlyNecessary: d.StrictlyNecessary,
		})
	}
	return nil
}

func purposesAndRetention(o options) PurposesAndRetention {
	days := int((o.retention + 24*time.Hour - 1) / (24 * time.Hour))
	events := "No retention period is set: events are kept until they are erased."
	if days > 0 {
		kept := strings.Join(identityCalls[:len(identityCalls)-1], ", ") + " and " + identityCalls[len(identityCalls)-1]
		events = fmt.Sprintf("Events are deleted %d days after they are received, except %s calls, which carry identity, and the records of privacy decisions (consent, corrections, restrictions), which are kept while the profile exists.", days, kept)
	}
	return PurposesAndRetention{
		Purposes:           slices.Clone(o.purposes),
		EventRetentionDays: days,
		Retention: []Purpose{
			{"events", events},
			{"profile", "The profile, its identifiers, traits, trait history, computed traits and audience memberships are kept while the profile exists, until the person asks for erasure."},
			{"recipients", "The record of deliveries to recipients is kept so that corrections and erasures can be passed on to them."},
		},
	}
}

// EachTraitChange calls fn with every value each current trait has had,
// trait by trait in key order, newest first within a trait, reading the
// history a page at a time. (The history of a trait that is cleared now
// is not listed: the store lists current traits only.)
func (r *Report) EachTraitChange(fn func(Trait) error) error {
	id := store.ProfileID(r.Profile.KithID)
	for _, t := range r.Traits {
		var before int64
		for {
			page, err := r.st.TraitHistory(r.ctx, r.Workspace, id, t.Key, before, pageSize)
			if err != nil {
				return fmt.Errorf("read the history of trait %s: %w", t.Key, err)
			}
			for _, h := range page {
				if err := fn(Trait{Key: h.Key, Value: h.Value, Source: h.Source, Timestamp: h.Timestamp.UTC(), Position: h.Position}); err != nil {
					return err
				}
			}
			if len(page) < pageSize {
				break
			}
			before = page[len(page)-1].Position
		}
	}
	return nil
}

// EachEvent calls fn with every event of the profile's timeline, newest
// first, reading a page at a time. It returns the number of timeline
// entries whose event the log no longer holds (deleted by retention).
func (r *Report) EachEvent(fn func(Event) error) (missing int64, err error) {
	err = timelinePages(r.ctx, r.st, r.Workspace, store.ProfileID(r.Profile.KithID), 0, func(entries int, events []store.Event) (bool, error) {
		missing += int64(entries - len(events))
		for _, e := range events {
			ev := Event{
				Position: e.Position, MessageID: e.MessageID, Type: e.Type, Name: e.Name, Source: e.Source,
				Timestamp: e.Timestamp.UTC(), ReceivedAt: e.ReceivedAt.UTC(), Raw: e.Raw,
				Signals: Signals{IP: e.Signals.IP, UserAgent: e.Signals.UserAgent, Origin: e.Signals.Origin, GPC: e.Signals.GPC},
			}
			if err := fn(ev); err != nil {
				return false, err
			}
		}
		return true, nil
	})
	return missing, err
}

// timelinePages calls fn with each page of profile p's timeline before
// position before (0: from the newest), newest first — the number of
// timeline entries of the page and the events the log still holds of
// them — until fn returns false or an error, or the timeline ends.
func timelinePages(ctx context.Context, st TimelineReader, workspace string, p store.ProfileID, before int64, fn func(entries int, events []store.Event) (bool, error)) error {
	for {
		positions, err := st.Timeline(ctx, workspace, p, before, pageSize)
		if err != nil {
			return fmt.Errorf("read the timeline: %w", err)
		}
		if len(positions) == 0 {
			return nil
		}
		events, err := st.Read(ctx, store.LogQuery{Workspace: workspace, Positions: positions, Descending: true, Limit: len(positions)})
		if err != nil {
			return fmt.Errorf("read events: %w", err)
		}
		if more, err := fn(len(positions), events); err != nil || !more {
			return err
		}
		if len(positions) < pageSize {
			return nil
		}
		before = positions[len(positions)-1]
	}
}
