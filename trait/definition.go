package trait

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"cel.dev/cel-go/cel"
)

// Kinds of computed traits.
const (
	KindCount        = "count"
	KindSum          = "sum"
	KindAvg          = "avg"
	KindMin          = "min"
	KindMax          = "max"
	KindMostFrequent = "most_frequent"
	KindFirst        = "first"
	KindLast         = "last"
	KindUniqueList   = "unique_list"
	KindUniqueCount  = "unique_count"
	KindFunnel       = "funnel"
)

// Limits of a definition.
const (
	maxBody       = 64 << 10 // bytes of a JSON definition
	maxWhere      = 4096     // bytes of a Where expression
	maxWindowDays = 3650
	maxEvents     = 100 // names in Events
	maxSteps      = 10  // steps of a funnel
	maxEventName  = 200 // bytes of one name in Events
	maxProperty   = 256 // bytes of a Property path
	maxSegments   = 8   // segments of a Property path
)

// Definition is a computed trait as written in the config file (YAML, same
// field names) or the admin API (JSON).
type Definition struct {
	// Name is the trait's name on the profile: ^[a-z][a-z0-9_]{0,63}$.
	Name string `json:"name" yaml:"name"`
	// Entity is "user" (the default) or "account"; for accounts the engine
	// aggregates over the account's users' states with Merge.
	Entity string `json:"entity,omitempty" yaml:"entity,omitempty"`
	// Kind is one of count, sum, avg, min, max, most_frequent, first, last,
	// unique_list, unique_count, funnel.
	Kind string `json:"kind" yaml:"kind"`
	// Types are the event types that count: track, page, screen, identify,
	// group. Empty means ["track"].
	Types []string `json:"types,omitempty" yaml:"types,omitempty"`
	// Events are the event names that count (a track event's name, a page's
	// or screen's name); empty means any. For a funnel they are the steps in
	// order, at least 2.
	Events []string `json:"events,omitempty" yaml:"events,omitempty"`
	// Property is the value read, as a dotted path into the event, e.g.
	// "properties.total", "context.campaign.name" or "event". It is required
	// for every kind but count and funnel; a count with a Property counts
	// only the events where it is present and not null.
	Property string `json:"property,omitempty" yaml:"property,omitempty"`
	// Where is an optional CEL condition over the event; see the package
	// documentation for its variables.
	Where string `json:"where,omitempty" yaml:"where,omitempty"`
	// WindowDays is 0 for all time, else the last N days (UTC days, today
	// included), 1..3650.
	WindowDays int `json:"window_days,omitempty" yaml:"window_days,omitempty"`
	// Within is, for a funnel only, the longest time from its first step to
	// its last: a Go duration or "Nd" days (e.g. "1h", "7d"). Required for a
	// funnel.
	Within string `json:"within,omitempty" yaml:"within,omitempty"`
}

// Error is a problem in a definition.
type Error struct {
	// Field is the definition's field at fault by its JSON name ("kind",
	// "where", ...), or "" for the body as a whole.
	Field string
	// Line and Column (1-based) locate the problem within the field's text
	// (or the body's, when Field is ""); 0 when not applicable. Problems in
	// Where give them.
	Line, Column int
	// Code is stable, for programs: missing_name, invalid_name,
	// invalid_entity, missing_kind, invalid_kind, invalid_types,
	// invalid_events, missing_property, invalid_property, invalid_where,
	// invalid_window, missing_within, invalid_within, and from Parse:
	// invalid_json, unknown_field, wrong_type, too_large.
	Code string
	// Msg is for people.
	Msg string
}

// Error formats the problem as "field:line:column: message (code)".
func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString("trait")
	if e.Field != "" {
		b.WriteString(" ")
		b.WriteString(e.Field)
	}
	if e.Line > 0 {
		fmt.Fprintf(&b, ":%d:%d", e.Line, e.Column)
	}
	b.WriteString(": ")
	b.WriteString(e.Msg)
	b.WriteString(" (")
	b.WriteString(e.Code)
	b.WriteString(")")
	return b.String()
}

var fieldNames = []string{"name", "entity", "kind", "types", "events", "property", "where", "window_days", "within"}

// Parse reads a definition from JSON and validates it. Unknown fields
// (names are matched exactly), values of the wrong JSON type and trailing
// data are rejected. Every error is an *Error, or an errors.Join of them.
func Parse(body []byte) (Definition, error) {
	var d Definition
	if len(body) > maxBody {
		return d, &Error{Code: "too_large", Msg: fmt.Sprintf("a definition is at most %d bytes", maxBody)}
	}
	if err := checkKeys(body); err != nil {
		return d, err
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&d); err != nil {
		return Definition{}, jsonError(body, err)
	}
	if _, err := dec.Token(); err != io.EOF {
		line, col := lineCol(body, int(dec.InputOffset()))
		return Definition{}, &Error{Line: line, Column: col, Code: "invalid_json", Msg: "unexpected data after the definition"}
	}
	if err := d.Validate(); err != nil {
		return Definition{}, err
	}
	return d, nil
}

// checkKeys rejects top-level keys that are not exactly a field's JSON name
// (encoding/json would accept "Kind" for "kind").
func checkKeys(body []byte) error {
	i := skipWS(body, 0)
	if i >= len(body) || body[i] != '{' {
		return nil // the decoder reports it
	}
	var bad error
	eachField(body[i:], func(key, _ []byte) {
		if bad == nil && !slices.Contains(fieldNames, string(key)) {
			bad = &Error{Field: string(key), Code: "unknown_field", Msg: fmt.Sprintf("unknown field %q", key)}
		}
	})
	return bad
}

func jsonError(body []byte, err error) error {
	var syn *json.SyntaxError
	var typ *json.UnmarshalTypeError
	switch {
	case errors.As(err, &syn):
		line, col := lineCol(body, int(syn.Offset))
		return &Error{Line: line, Column: col, Code: "invalid_json", Msg: syn.Error()}
	case errors.As(err, &typ):
		field := typ.Field
		if field == "" {
			return &Error{Code: "invalid_json", Msg: "a definition is a JSON object"}
		}
		return &Error{Field: field, Code: "wrong_type", Msg: fmt.Sprintf("%s must be %s, not %s", field, jsonTypeName(typ.Type.Kind().String()), typ.Value)}
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		return &Error{Code: "invalid_json", Msg: "the definition is empty or cut short"}
	}
	if name, ok := strings.CutPrefix(err.Error(), "json: unknown field "); ok {
		name, _ = strconv.Unquote(name)
		return &Error{Field: name, Code: "unknown_field", Msg: fmt.Sprintf("unknown field %q", name)}
	}
	return &Error{Code: "invalid_json", Msg: err.Error()}
}

func jsonTypeName(kind string) string {
	switch kind {
	case "string":
		return "a string"
	case "slice":
		return "an array of strings"
	case "int":
		return "an integer"
	}
	return kind
}

// lineCol returns the 1-based line and column of byte offset off in b.
func lineCol(b []byte, off int) (int, int) {
	off = min(max(off, 0), len(b))
	line := 1 + bytes.Count(b[:off], []byte("\n"))
	col := off - bytes.LastIndexByte(b[:off], '\n')
	return line, col
}

var nameRE = regexp.MustCompile(`^[a-z][a-z0-9_]{0,63}$`)

// Validate reports every problem of d, each as an *Error (several are
// joined with errors.Join; errors.As finds the first). The Where condition
// is compiled to check it.
func (d Definition) Validate() error {
	_, err := d.check()
	return err
}

// check validates d and returns the checked Where expression (nil without
// one).
func (d Definition) check() (*cel.Ast, error) {
	var errs []error
	bad := func(field, code, format string, args ...any) {
		errs = append(errs, &Error{Field: field, Code: code, Msg: fmt.Sprintf(format, args...)})
	}
	switch {
	case d.Name == "":
		bad("name", "missing_name", "a trait needs a name")
	case !nameRE.MatchString(d.Name):
		bad("name", "invalid_name", "name %q must be a lowercase letter then up to 63 lowercase letters, digits or _", d.Name)
	}
	switch d.Entity {
	case "", "user", "account":
	default:
		bad("entity", "invalid_entity", "entity %q is neither user nor account", d.Entity)
	}
	kind := kindCode(d.Kind)
	switch {
	case d.Kind == "":
		bad("kind", "missing_kind", "a trait needs a kind")
	case kind == 0:
		bad("kind", "invalid_kind", "unknown kind %q (count, sum, avg, min, max, most_frequent, first, last, unique_list, unique_count, funnel)", d.Kind)
	}
	for _, t := range d.Types {
		if typeBit(t) == 0 {
			bad("types", "invalid_types", "unknown event type %q (track, page, screen, identify, group)", t)
		}
	}
	if len(d.Events) > maxEvents {
		bad("events", "invalid_events", "at most %d events", maxEvents)
	}
	for _, e := range d.Events {
		if e == "" || len(e) > maxEventName {
			bad("events", "invalid_events", "an event name has 1 to %d bytes", maxEventName)
			break
		}
	}
	if kind == kFunnel && (len(d.Events) < 2 || len(d.Events) > maxSteps) {
		bad("events", "invalid_events", "a funnel has 2 to %d steps in events", maxSteps)
	}
	switch {
	case d.Property == "" && kind != 0 && kind != kCount && kind != kFunnel:
		bad("property", "missing_property", "a %s trait needs a property to read", d.Kind)
	case d.Property != "" && kind == kFunnel:
		bad("property", "invalid_property", "a funnel reads no property")
	case d.Property != "" && !validPath(d.Property):
		bad("property", "invalid_property", "property %q must be a dotted path of up to %d non-empty names (%d bytes at most)", d.Property, maxSegments, maxProperty)
	}
	if d.WindowDays < 0 || d.WindowDays > maxWindowDays {
		bad("window_days", "invalid_window", "window_days is 0 (all time) or 1 to %d", maxWindowDays)
	}
	if kind == kFunnel {
		if d.Within == "" {
			bad("within", "missing_within", "a funnel needs within, the longest time from first to last step (e.g. \"1h\", \"7d\")")
		} else if _, err := parseWithin(d.Within); err != nil {
			bad("within", "invalid_within", "%v", err)
		}
	} else if d.Within != "" && kind != 0 {
		bad("within", "invalid_within", "within applies to funnels only")
	}
	ast, werrs := checkWhere(d.Where)
	errs = append(errs, werrs...)
	switch len(errs) {
	case 0:
		return ast, nil
	case 1:
		return nil, errs[0]
	}
	return nil, errors.Join(errs...)
}

func validPath(p string) bool {
	if len(p) > maxProperty {
		return false
	}
	segs := strings.Split(p, ".")
	if len(segs) > maxSegments {
		return false
	}
	for _, s := range segs {
		if s == "" {
			return false
		}
	}
	return true
}

// parseWithin reads a funnel's Within: a Go duration or "Nd".
func parseWithin(s string) (time.Duration, error) {
	const maxWithin = maxWindowDays * 24 * time.Hour
	var d time.Duration
	if n, ok := strings.CutSuffix(s, "d"); ok {
		days, err := strconv.Atoi(n)
		if err != nil || days < 1 || days > maxWindowDays {
			return 0, fmt.Errorf("within %q: days are a whole number from 1 to %d", s, maxWindowDays)
		}
		d = time.Duration(days) * 24 * time.Hour
	} else {
		var err error
		d, err = time.ParseDuration(s)
		if err != nil {
			return 0, fmt.Errorf("within %q is neither a duration (\"90m\", \"1h\") nor days (\"7d\")", s)
		}
	}
	if d <= 0 || d > maxWithin {
		return 0, fmt.Errorf("within %q must be positive and at most %d days", s, maxWindowDays)
	}
	return d, nil
}

// Kind codes, also written in encoded states.
const (
	kCount byte = iota + 1
	kSum
	kAvg
	kMin
	kMax
	kMostFrequent
	kFirst
	kLast
	kUniqueList
	kUniqueCount
	kFunnel
)

func kindCode(k string) byte {
	switch k {
	case KindCount:
		return kCount
	case KindSum:
		return kSum
	case KindAvg:
		return kAvg
	case KindMin:
		return kMin
	case KindMax:
		return kMax
	case KindMostFrequent:
		return kMostFrequent
	case KindFirst:
		return kFirst
	case KindLast:
		return kLast
	case KindUniqueList:
		return kUniqueList
	case KindUniqueCount:
		return kUniqueCount
	case KindFunnel:
		return kFunnel
	}
	return 0
}

// Event type bits.
const (
	tTrack uint8 = 1 << iota
	tPage
	tScreen
	tIdentify
	tGroup
)

func typeBit(t string) uint8 {
	switch t {
	case "track":
		return tTrack
	case "page":
		return tPage
	case "screen":
		return tScreen
	case "identify":
		return tIdentify
	case "group":
		return tGroup
	}
	return 0
}
