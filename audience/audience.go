package audience

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"regexp"
	"sort"
	"strings"
	"time"

	"cel.dev/cel-go/cel"

	"github.com/kithcdp/kith/trait"
)

// Entities an audience can be about.
const (
	EntityUser    = "user"
	EntityAccount = "account"
)

// MaxConditionLen is the longest condition accepted, in bytes.
const MaxConditionLen = 8 << 10

// Definition is an audience as a workspace defines it.
type Definition struct {
	Name                string `json:"name" yaml:"name"`                         // ^[a-z][a-z0-9_]{0,63}$; also the boolean trait set on members
	Entity              string `json:"entity,omitempty" yaml:"entity,omitempty"` // "user" (default) or "account"
	Condition           string `json:"condition" yaml:"condition"`               // CEL, type bool
	Description         string `json:"description,omitempty" yaml:"description,omitempty"`
	Suppression         bool   `json:"suppression,omitempty" yaml:"suppression,omitempty"`                   // this audience is a suppression list
	SuppressAll         bool   `json:"suppress_all,omitempty" yaml:"suppress_all,omitempty"`                 // (suppression lists) members are excluded from every audience and from all activation
	RespectSuppressions bool   `json:"respect_suppressions,omitempty" yaml:"respect_suppressions,omitempty"` // opt in: members of any suppression list are excluded from this audience
}

func (d Definition) entity() string {
	if d.Entity == "" {
		return EntityUser
	}
	return d.Entity
}

var nameRE = regexp.MustCompile(`^[a-z][a-z0-9_]{0,63}$`)

// Parse decodes one definition from JSON. Unknown fields and trailing data
// are rejected with an *Error of code "json" (Field names the unknown
// field). Parse does not check the definition: Compile does.
func Parse(body []byte) (Definition, error) {
	var d Definition
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&d); err != nil {
		e := &Error{Code: CodeJSON, Msg: "decode audience definition: " + err.Error()}
		if f, ok := strings.CutPrefix(err.Error(), "json: unknown field "); ok {
			e.Field = strings.Trim(f, `"`)
			e.Msg = fmt.Sprintf("unknown field %q; allowed: name, entity, condition, description, suppression, suppress_all, respect_suppressions", e.Field)
		}
		var te *json.UnmarshalTypeError
		if errors.As(err, &te) {
			e.Field = te.Field
		}
		return Definition{}, e
	}
	if _, err := dec.Token(); err != io.EOF {
		return Definition{}, &Error{Code: CodeJSON, Msg: "decode audience definition: data after the JSON object"}
	}
	return d, nil
}

// Set is a workspace's audiences, compiled together.
type Set struct {
	order      []*Audience
	byName     map[string]*Audience
	conditions []*trait.Trait
	traitKeys  []string
}

// Audiences returns the audiences in evaluation order: suppression lists
// first, then every audience after the audiences it reads.
func (s *Set) Audiences() []*Audience { return s.order }

// Audience returns the audience of that name, or nil.
func (s *Set) Audience(name string) *Audience { return s.byName[name] }

// Conditions returns the implicit computed traits (maintained counters)
// of the audiences' event conditions, one per Key, ordered by Key.
func (s *Set) Conditions() []*trait.Trait { return s.conditions }

// TraitKeys returns every profile trait key an audience reads, on its own
// profiles or on related ones, sorted.
func (s *Set) TraitKeys() []string { return s.traitKeys }

// Audience is one compiled audience.
type Audience struct {
	def   Definition
	reads Reads
	prg   cel.Program
	// events maps the literal arguments of each event call to the Key of
	// its maintained counter.
	events map[eventCall]string
	// conds are the implicit computed traits of those calls.
	conds []*trait.Trait
	// suppressedBy are the suppression lists whose members are excluded.
	suppressedBy []string
}

// Definition returns the definition, with Entity filled in.
func (a *Audience) Definition() Definition { return a.def }

// Reads returns what the audience reads, to know when to re-evaluate it.
func (a *Audience) Reads() Reads { return a.reads }

// Reads is what an audience's decision depends on. The engine re-evaluates
// an audience on a profile when one of these changes.
type Reads struct {
	Traits     []string // profile trait keys read (traits.x, traits["x"], and on accounts/users)
	Computed   []string // computed trait names (of the profile, and of related profiles)
	Audiences  []string // other audiences read (include/exclude, also of related profiles), and the suppression lists that apply
	Conditions []string // keys of implicit counters (trait.Trait.Key)
	Now        bool     // reads now: must be re-evaluated as time passes
	Related    bool     // reads accounts (for users) or users (for accounts)
}

// Profile is what an audience sees of one profile.
type Profile struct {
	Traits     map[string]any  // decoded JSON values of (at least) the trait keys the set reads
	Computed   map[string]any  // computed trait values
	Audiences  map[string]bool // memberships already decided (earlier audiences in the order, and current ones)
	Conditions map[string]any  // implicit counter values by trait Key (e.g. int64 counts)
	Now        time.Time
	Related    []*Profile // a user's accounts, or an account's users
}

func sortedKeys(m map[string]bool) []string {
	if len(m) == 0 {
		return nil
	}
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}
