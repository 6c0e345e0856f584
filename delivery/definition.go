package delivery

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/kithcdp/kith/store"
	"github.com/kithcdp/kith/trait"
)

// Definition is a destination as written in the config file (YAML, same
// field names) or the admin API (JSON).
type Definition struct {
	// Name names the destination in its workspace: ^[a-z][a-z0-9_-]{0,63}$.
	Name string `json:"name" yaml:"name"`
	// Type is the destination's protocol: webhook, forward, nats or
	// audience_export.
	Type string `json:"type" yaml:"type"`
	// Events, if set, subscribes the destination to events from the log.
	Events *EventFilter `json:"events,omitempty" yaml:"events,omitempty"`
	// Traits subscribes it to changes of these computed traits ("*": all).
	Traits []string `json:"traits,omitempty" yaml:"traits,omitempty"`
	// Audiences subscribes it to entries and exits of these audiences
	// ("*": all).
	Audiences []string `json:"audiences,omitempty" yaml:"audiences,omitempty"`
	// Purposes are the consent purposes the destination needs, e.g.
	// ["advertising"]: a delivery goes only where both the event's own
	// consent and the profile's current consent grant every one of them.
	Purposes []string `json:"purposes,omitempty" yaml:"purposes,omitempty"`
	// StrictlyNecessary declares that the destination needs no consent
	// (e.g. order confirmations). It is never a default: a destination
	// without Purposes must declare it.
	StrictlyNecessary bool `json:"strictly_necessary,omitempty" yaml:"strictly_necessary,omitempty"`
	// Mapping, if set, shapes what is sent: each key is a field of the
	// payload (dots nest objects) and each value a dotted path into the
	// Segment event. Without it the Segment event is sent as it is.
	Mapping map[string]string `json:"mapping,omitempty" yaml:"mapping,omitempty"`
	// IDSync adds the profile's identifiers of one type to every delivery.
	IDSync *IDSync `json:"id_sync,omitempty" yaml:"id_sync,omitempty"`
	// RetryFor is how long a failing delivery is retried before it goes to
	// the dead letters (Go duration; default 4h, at most 72h).
	RetryFor string `json:"retry_for,omitempty" yaml:"retry_for,omitempty"`
	// Config holds the type's own settings (URL, secrets, subject, ...).
	Config json.RawMessage `json:"config,omitempty" yaml:"-"`
}

// EventFilter selects events from the log. Empty lists match everything.
type EventFilter struct {
	Sources []string `json:"sources,omitempty" yaml:"sources,omitempty"`
	Types   []string `json:"types,omitempty" yaml:"types,omitempty"`
	Names   []string `json:"names,omitempty" yaml:"names,omitempty"` // track event / page or screen names
	// Where is a CEL condition over the event, as a computed trait's
	// (variables type, event, properties, context, traits, timestamp).
	Where string `json:"where,omitempty" yaml:"where,omitempty"`
}

// IDSync chooses which values of an identifier type are sent: the first
// the profile got, the last, or all.
type IDSync struct {
	Type string `json:"type" yaml:"type"`
	Mode string `json:"mode" yaml:"mode"` // first, last or all
}

// Types of destination.
const (
	TypeWebhook        = "webhook"
	TypeForward        = "forward"
	TypeNATS           = "nats"
	TypeAudienceExport = "audience_export"
)

// DefaultRetryFor is how long failing deliveries are retried by default.
const DefaultRetryFor = 4 * time.Hour

var (
	nameRE   = regexp.MustCompile(`^[a-z][a-z0-9_-]{0,63}$`)
	eventTyp = []string{"identify", "track", "page", "screen", "group", "alias"}
)

// Parse decodes and validates a destination definition (JSON, unknown
// fields rejected).
func Parse(body []byte) (Definition, error) {
	var d Definition
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&d); err != nil {
		return d, fmt.Errorf("destination: %w", err)
	}
	if dec.More() {
		return d, errors.New("destination: trailing data after the definition")
	}
	return d, d.Validate()
}

// Validate reports every problem of the definition.
func (d Definition) Validate() error {
	var errs []error
	bad := func(format string, a ...any) { errs = append(errs, fmt.Errorf(format, a...)) }
	if !nameRE.MatchString(d.Name) {
		bad("name %q must match %s", d.Name, nameRE)
	}
	switch d.Type {
	case TypeWebhook, TypeForward, TypeNATS, TypeAudienceExport:
	default:
		bad("type %q: want webhook, forward, nats or audience_export", d.Type)
	}
	if d.Events == nil && len(d.Traits) == 0 && len(d.Audiences) == 0 {
		bad("subscribe to something: events, traits or audiences")
	}
	if d.Events != nil {
		for _, t := range d.Events.Types {
			if !slices.Contains(eventTyp, t) {
				bad("events.types: %q is not an event type (%s)", t, strings.Join(eventTyp, ", "))
			}
		}
		if _, err := d.Events.compile(); err != nil {
			bad("events.where: %v", err)
		}
	}
	if len(d.Purposes) == 0 && !d.StrictlyNecessary {
		bad("declare the consent purposes the destination needs (purposes: [advertising, ...]) or strictly_necessary: true")
	}
	if len(d.Purposes) > 0 && d.StrictlyNecessary {
		bad("a destination needs purposes or is strictly necessary, not both")
	}
	for out, path := range d.Mapping {
		if out == "" || path == "" || strings.Contains(out, "..") || strings.Contains(path, "..") {
			bad("mapping %q: %q: both must be dotted paths", out, path)
		}
	}
	if d.IDSync != nil {
		if d.IDSync.Type == "" {
			bad("id_sync.type: name an identifier type, like email")
		}
		if !slices.Contains([]string{"first", "last", "all"}, d.IDSync.Mode) {
			bad("id_sync.mode %q: want first, last or all", d.IDSync.Mode)
		}
	}
	if _, err := d.retryFor(); err != nil {
		bad("retry_for: %v", err)
	}
	return errors.Join(errs...)
}

func (d Definition) retryFor() (time.Duration, error) {
	if d.RetryFor == "" {
		return DefaultRetryFor, nil
	}
	v, err := time.ParseDuration(d.RetryFor)
	if err != nil || v < time.Minute || v > 72*time.Hour {
		return 0, fmt.Errorf("%q: want a duration from 1m to 72h", d.RetryFor)
	}
	return v, nil
}

// compile returns the filter's Where as a trait that counts matching
// events (nil without a Where).
func (f *EventFilter) compile() (*trait.Trait, error) {
	if f.Where == "" {
		return nil, nil
	}
	return trait.Compile(trait.Definition{
		Name: "where", Kind: trait.KindCount,
		Types: []string{"identify", "track", "page", "screen", "group"}, Where: f.Where,
	})
}

// matcher decides which events a destination receives.
type matcher struct {
	f     *EventFilter
	where *trait.Trait
}

func (m *matcher) match(ev *store.Event) bool {
	f := m.f
	if f == nil {
		return false
	}
	if len(f.Sources) > 0 && !slices.Contains(f.Sources, ev.Source) {
		return false
	}
	if len(f.Types) > 0 && !slices.Contains(f.Types, ev.Type) {
		return false
	}
	if len(f.Names) > 0 && !slices.Contains(f.Names, ev.Name) {
		return false
	}
	if m.where == nil {
		return true
	}
	return m.where.Observe(&trait.State{}, trait.NewEvent(ev))
}

// wants reports whether a list subscribes to name ("*" is everything).
func wants(list []string, name string) bool {
	return slices.Contains(list, "*") || slices.Contains(list, name)
}
