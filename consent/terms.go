package consent

// Term is one of the personal terms a person may set ("My terms", after
// IEEE 7012: the person proposes the terms, the company agrees to them).
// A term denies the purposes it covers, whatever consent says.
type Term struct {
	Name        string `json:"name"`
	Description string `json:"description"`
	// covers reports whether the term denies a purpose (by its flags, so
	// that a term covers a workspace's own purposes too).
	covers func(Purpose) bool
}

// Covers reports whether t denies purpose p.
func (t Term) Covers(p Purpose) bool { return !p.Necessary && t.covers(p) }

// Terms is the catalogue of personal terms, by name.
var Terms = []Term{
	{Name: "no-third-party-sharing", Description: "Do not sell or share my data with third parties, nor use it for their ads.",
		covers: func(p Purpose) bool { return p.GPC }},
	{Name: "no-tracking-off-site", Description: "Do not follow me across other sites and apps to profile me for ads.",
		covers: func(p Purpose) bool { return p.GPC && p.Profiling }},
	{Name: "no-profiling", Description: "Do not profile me: no personalization, no audiences built from what I do.",
		covers: func(p Purpose) bool { return p.Profiling }},
	{Name: "no-marketing", Description: "Do not send me marketing, nor show me ads built from my data.",
		covers: func(p Purpose) bool { return p.Marketing }},
}

// LookupTerm returns the term of this name.
func LookupTerm(name string) (Term, bool) {
	for _, t := range Terms {
		if t.Name == name {
			return t, true
		}
	}
	return Term{}, false
}

// Restriction and objection scopes (the values of privacy.Command.Scope).
const (
	ScopeAll       = "all"       // restriction of all processing but storage
	ScopeMarketing = "marketing" // marketing and advertising
	ScopeProfiling = "profiling" // personalization and audiences
)

// scopeCovers reports whether a restriction or objection of scope denies
// purpose p. An unknown scope covers nothing.
func scopeCovers(scope string, p Purpose) bool {
	if p.Necessary {
		return false
	}
	switch scope {
	case ScopeAll:
		return true
	case ScopeMarketing:
		return p.Marketing
	case ScopeProfiling:
		return p.Profiling
	}
	return false
}
