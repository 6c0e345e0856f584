// Package identity resolves the identifiers people leave (user ids,
// anonymous ids, emails, phones, device ids, custom external ids) into
// profiles, with Segment's identity-resolution semantics: a priority order
// of identifier types, a limit of values per type (optionally per time
// window), blocked values, and — beyond Segment — hard caps that stop one
// bad identifier from gluing thousands of people together.
//
// Graph is the in-memory identity graph of one workspace. It is
// deterministic: the same events in the same order give the same profile
// ids and the same decisions, so a replay rebuilds what incremental
// processing built.
package identity

import (
	"cmp"
	"fmt"
	"regexp"
	"regexp/syntax"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/kithcdp/kith/store"
	"github.com/nyaruka/phonenumbers"
)

// Identifier types Kith extracts itself; custom types come from
// context.externalIds and from configured trait identifiers.
const (
	UserID      = "user_id"
	AnonymousID = "anonymous_id"
	Email       = "email"
	Phone       = "phone"
	GroupID     = "group_id" // an account key, never a user identifier
)

// Limit bounds how many values of one identifier type a profile may hold.
type Limit struct {
	Max int `json:"max"`
	// Window, if positive, counts only values added within this long before
	// the event's receivedAt (so a replay decides the same way).
	Window time.Duration `json:"window,omitempty"`
}

// Rules are a workspace's identity rules.
type Rules struct {
	// Priority lists identifier types, highest priority first. Types not
	// listed rank after them, in name order. When an event would break a
	// limit, its lowest-priority identifier is dropped first.
	Priority []string `json:"priority,omitempty"`
	// Limits per type; types not listed get DefaultLimit.
	Limits       map[string]Limit `json:"limits,omitempty"`
	DefaultLimit Limit            `json:"default_limit"`
	// Blocked values are never used as identifiers, compared
	// case-insensitively after trimming.
	Blocked []string `json:"blocked,omitempty"`
	// BlockedPatterns are RE2 expressions; a value that matches one whole
	// is blocked.
	BlockedPatterns []string `json:"blocked_patterns,omitempty"`
	// TraitIdentifiers maps a trait key to the identifier type its value
	// is (identify traits, and context.traits of other calls).
	TraitIdentifiers map[string]string `json:"trait_identifiers,omitempty"`
	// DefaultRegion is the ISO 3166 region of phone numbers written
	// without a country code (e.g. "DE"); empty accepts only numbers with
	// one.
	DefaultRegion string `json:"default_region,omitempty"`
	// MaxIdentifiers and MaxMerges are hard caps per profile.
	MaxIdentifiers int `json:"max_identifiers"`
	MaxMerges      int `json:"max_merges"`
}

// DefaultRules are Segment's defaults plus Kith's caps: user_id first and
// at most one per profile, then email, then the rest, five of each.
func DefaultRules() Rules {
	return Rules{
		Priority:         []string{UserID, Email, Phone, AnonymousID},
		Limits:           map[string]Limit{UserID: {Max: 1}},
		DefaultLimit:     Limit{Max: 5},
		Blocked:          []string{"-1", "null", "nil", "none", "undefined", "anonymous", "unknown", "n/a"},
		BlockedPatterns:  []string{`^[0-]*$`},
		TraitIdentifiers: map[string]string{"email": Email, "phone": Phone},
		MaxIdentifiers:   1000,
		MaxMerges:        100,
	}
}

// Compiled are validated rules, ready to use.
type Compiled struct {
	rank       map[string]int
	limits     map[string]Limit
	def        Limit
	blocked    map[string]bool
	blockedLen int // the longest blocked value, in bytes
	patterns   []pattern
	traitIDs   map[string]string
	traitKeys  []string       // sorted keys of traitIDs
	traitIndex map[string]int // trait key → its index in traitKeys
	region     string
	maxIDs     int
	maxMerges  int
}

// MaxValueLen is the longest identifier value, in bytes, that Extract
// accepts.
const MaxValueLen = 512

// validType reports whether t may name an identifier type: 1 to 64 of
// lower-case letters, digits and _ . : -, starting with a letter or digit.
func validType(t string) bool {
	if len(t) == 0 || len(t) > 64 {
		return false
	}
	for i := 0; i < len(t); i++ {
		switch c := t[i]; {
		case c >= 'a' && c <= 'z', c >= '0' && c <= '9':
		case i > 0 && (c == '_' || c == '.' || c == ':' || c == '-'):
		default:
			return false
		}
	}
	return true
}

// Compile validates the rules. Errors name the field, e.g.
// "blocked_patterns[1]: error parsing regexp: …".
func (r Rules) Compile() (*Compiled, error) {
	c := &Compiled{
		rank: map[string]int{}, limits: map[string]Limit{}, def: r.DefaultLimit,
		blocked: map[string]bool{}, traitIDs: map[string]string{}, traitIndex: map[string]int{},
		region: strings.ToUpper(r.DefaultRegion), maxIDs: r.MaxIdentifiers, maxMerges: r.MaxMerges,
	}
	for i, t := range r.Priority {
		if !validType(t) {
			return nil, fmt.Errorf("priority[%d]: %q is not an identifier type (lower-case letters, digits, _ . : -)", i, t)
		}
		if _, dup := c.rank[t]; dup {
			return nil, fmt.Errorf("priority[%d]: %q is listed twice", i, t)
		}
		c.rank[t] = i
	}
	if c.def.Max < 1 || c.def.Window < 0 {
		return nil, fmt.Errorf("default_limit: max must be at least 1 and window not negative")
	}
	for t, l := range r.Limits {
		if !validType(t) {
			return nil, fmt.Errorf("limits: %q is not an identifier type", t)
		}
		if l.Max < 1 || l.Window < 0 {
			return nil, fmt.Errorf("limits.%s: max must be at least 1 and window not negative", t)
		}
		c.limits[t] = l
	}
	for _, v := range r.Blocked {
		v = strings.ToLower(strings.TrimSpace(v))
		c.blocked[v] = true
		c.blockedLen = max(c.blockedLen, len(v))
	}
	for i, p := range r.BlockedPatterns {
		if _, err := regexp.Compile(p); err != nil {
			return nil, fmt.Errorf("blocked_patterns[%d]: %w", i, err)
		}
		c.patterns = append(c.patterns, compilePattern(p))
	}
	for k, t := range r.TraitIdentifiers {
		if k == "" || !validType(t) || t == GroupID {
			return nil, fmt.Errorf("trait_identifiers.%s: %q is not a user identifier type", k, t)
		}
		c.traitIDs[k] = t
		c.traitKeys = append(c.traitKeys, k)
	}
	slices.Sort(c.traitKeys)
	for i, k := range c.traitKeys {
		c.traitIndex[k] = i
	}
	if c.region != "" && phonenumbers.GetCountryCodeForRegion(c.region) == 0 {
		return nil, fmt.Errorf("default_region: %q is not an ISO 3166 region code", r.DefaultRegion)
	}
	if c.maxIDs < 1 || c.maxMerges < 1 {
		return nil, fmt.Errorf("max_identifiers and max_merges must be at least 1")
	}
	return c, nil
}

// limit returns the limit of an identifier type.
func (c *Compiled) limit(t string) Limit {
	if l, ok := c.limits[t]; ok {
		return l
	}
	return c.def
}

// compareTypes orders identifier types by priority, highest first: the
// listed ones in their order, then the others by name.
func (c *Compiled) compareTypes(a, b string) int {
	if a == b {
		return 0
	}
	ra, oka := c.rank[a]
	rb, okb := c.rank[b]
	switch {
	case oka && !okb:
		return -1
	case !oka && okb:
		return 1
	case oka && okb:
		return cmp.Compare(ra, rb)
	}
	return strings.Compare(a, b)
}

// isBlocked reports whether a value may not be an identifier.
func (c *Compiled) isBlocked(v string) bool {
	if len(v) <= c.blockedLen && c.blocked[strings.ToLower(v)] {
		return true
	}
	for _, p := range c.patterns {
		if p.match(v) {
			return true
		}
	}
	return false
}

// pattern is a compiled blocked pattern, matched against whole values. A
// pattern that is one ASCII character class repeated (like the default
// ^[0-]*$) is matched with a byte table instead of the regexp engine: it
// runs on every identifier of every event.
type pattern struct {
	re    *regexp.Regexp
	class *[256]bool // non-nil: the value matches if every byte is in class
	empty bool       // with class: whether the empty value matches
}

func compilePattern(p string) pattern {
	whole := `^(?:` + p + `)$`
	out := pattern{re: regexp.MustCompile(whole)}
	re, err := syntax.Parse(whole, syntax.Perl)
	if err != nil {
		return out
	}
	re = re.Simplify()
	subs := []*syntax.Regexp{re}
	if re.Op == syntax.OpConcat {
		subs = re.Sub
	}
	for len(subs) > 0 && subs[0].Op == syntax.OpBeginText {
		subs = subs[1:]
	}
	for len(subs) > 0 && subs[len(subs)-1].Op == syntax.OpEndText {
		subs = subs[:len(subs)-1]
	}
	if len(subs) != 1 || (subs[0].Op != syntax.OpStar && subs[0].Op != syntax.OpPlus) {
		return out
	}
	cc := subs[0].Sub[0]
	if cc.Op != syntax.OpCharClass {
		return out
	}
	var class [256]bool
	for i := 0; i+1 < len(cc.Rune); i += 2 {
		lo, hi := cc.Rune[i], cc.Rune[i+1]
		if hi >= utf8.RuneSelf {
			return out // non-ASCII: leave it to the regexp engine
		}
		for r := lo; r <= hi; r++ {
			class[r] = true
		}
	}
	out.class, out.empty = &class, subs[0].Op == syntax.OpStar
	return out
}

func (p pattern) match(v string) bool {
	if p.class == nil {
		return p.re.MatchString(v)
	}
	if v == "" {
		return p.empty
	}
	for i := 0; i < len(v); i++ {
		if !p.class[v[i]] {
			return false
		}
	}
	return true
}

// Normalize returns an identifier in the form the graph holds it (e.g. an
// email trimmed and lower-cased, a phone number in E.164), or false if the
// value cannot be an identifier of its type.
func (c *Compiled) Normalize(id store.Identifier) (store.Identifier, bool) {
	if id.Type == GroupID {
		id.Value = strings.TrimSpace(id.Value)
		return id, id.Value != ""
	}
	v, code, _ := c.normalize(id.Type, id.Value)
	if code != "" {
		return id, false
	}
	id.Value = v
	return id, true
}
