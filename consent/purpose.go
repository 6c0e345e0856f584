// Package consent is Kith's consent model: the purposes a workspace
// processes personal data for (each with its lawful basis, and mapped to
// the names consent arrives under — Segment's consent categories, IAB TCF
// v2.2 purposes, Google Consent Mode v2 signals), the personal terms a
// person may set, and the evaluation that decides whether a use of an
// event or a profile is allowed, and why (docs/consent.md).
//
// The model is a function of what was said: an event's own consent
// (context.consent.categoryPreferences and context.consent.tcString, read
// by EventStatement) and the profile's consent value, which the compute
// engine keeps (read by ValueStatement). Each is resolved against a
// Catalogue into Choices, purpose by purpose, and Evaluate combines the
// two the stricter way. A purpose nothing decides is denied, unless it is
// the workspace's strictly necessary purpose, which is always allowed.
//
// The TC string is decoded (package consent/tcf) only to evaluate it; it
// is never changed.
package consent

import (
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strings"
	"sync"
)

// Basis is a lawful basis of processing (GDPR article 6(1)).
type Basis string

// Lawful bases.
const (
	BasisConsent            Basis = "consent"
	BasisContract           Basis = "contract"
	BasisLegalObligation    Basis = "legal_obligation"
	BasisVitalInterests     Basis = "vital_interests"
	BasisPublicTask         Basis = "public_task"
	BasisLegitimateInterest Basis = "legitimate_interest"
)

// MaxTCFPurpose is the highest purpose id TCF v2.2 defines.
const MaxTCFPurpose = 11

// maxCategories bounds a purpose's categories.
const maxCategories = 64

// Bases are the lawful bases a purpose may name.
var Bases = []Basis{BasisConsent, BasisContract, BasisLegalObligation, BasisVitalInterests, BasisPublicTask, BasisLegitimateInterest}

// GCMSignals are the Google Consent Mode v2 signals a purpose may map to:
// the four of v2 and the three non-advertising storage types.
var GCMSignals = []string{"ad_storage", "analytics_storage", "ad_user_data", "ad_personalization",
	"functionality_storage", "personalization_storage", "security_storage"}

// Purpose is one use of personal data a workspace declares.
type Purpose struct {
	// Name is the purpose's own name (lower case letters, digits and _),
	// as destinations declare it and the API writes it.
	Name        string `json:"name"`
	Description string `json:"description"`
	Basis       Basis  `json:"lawful_basis"`
	// Necessary marks the strictly necessary purpose: always allowed,
	// needing no consent. A catalogue has exactly one.
	Necessary bool `json:"strictly_necessary,omitempty"`
	// Categories are the consent category names that stand for the
	// purpose in an event's categoryPreferences (Segment's consent
	// categories, a CMP's category ids such as OneTrust's "C0004"),
	// matched in any case.
	Categories []string `json:"categories,omitempty"`
	// TCF are the IAB TCF v2.2 purposes (1–11) a TC string must allow for
	// the purpose to be granted by it.
	TCF []int `json:"tcf_purposes,omitempty"`
	// GCM are the Google Consent Mode signals that stand for the purpose
	// (they are also matched as category names).
	GCM []string `json:"gcm_signals,omitempty"`
	// GPC: the Global Privacy Control signal (Sec-GPC: 1) opts out of the
	// purpose — selling or sharing personal data, and the ads built on it.
	GPC bool `json:"gpc_opt_out,omitempty"`
	// Marketing: an objection to (or restriction of) marketing denies it.
	Marketing bool `json:"marketing,omitempty"`
	// Profiling: an objection to (or restriction of) profiling denies it.
	Profiling bool `json:"profiling,omitempty"`
}

// Catalogue is a workspace's set of purposes. It is immutable and safe for
// concurrent use.
type Catalogue struct {
	purposes []Purpose
	byAlias  map[string]int // lower-cased name, category or GCM signal → index
}

// ErrInvalidPurpose is wrapped by NewCatalogue's errors.
var ErrInvalidPurpose = errors.New("invalid purpose")

var purposeName = regexp.MustCompile(`^[a-z][a-z0-9_]{0,63}$`)

// NewCatalogue checks purposes and returns their catalogue. Names must be
// unique and valid; a category or GCM signal may stand for one purpose
// only; exactly one purpose is strictly necessary.
func NewCatalogue(purposes []Purpose) (*Catalogue, error) {
	c := &Catalogue{purposes: make([]Purpose, len(purposes)), byAlias: map[string]int{}}
	necessary := 0
	for i, p := range purposes {
		p.Categories, p.TCF, p.GCM = slices.Clone(p.Categories), slices.Clone(p.TCF), slices.Clone(p.GCM)
		if err := checkPurpose(p); err != nil {
			return nil, err
		}
		if p.Necessary {
			necessary++
		}
		aliases := append(append([]string{p.Name}, p.Categories...), p.GCM...)
		for _, a := range aliases {
			k := strings.ToLower(a)
			if j, dup := c.byAlias[k]; dup && j != i {
				return nil, fmt.Errorf("%w: purpose %q: %q already stands for purpose %q", ErrInvalidPurpose, p.Name, a, purposes[j].Name)
			}
			c.byAlias[k] = i
		}
		c.purposes[i] = p
	}
	if necessary != 1 {
		return nil, fmt.Errorf("%w: exactly one purpose must be strictly_necessary, not %d", ErrInvalidPurpose, necessary)
	}
	return c, nil
}

func checkPurpose(p Purpose) error {
	bad := func(format string, a ...any) error {
		return fmt.Errorf("%w: purpose %q: %s", ErrInvalidPurpose, p.Name, fmt.Sprintf(format, a...))
	}
	if !purposeName.MatchString(p.Name) {
		return fmt.Errorf("%w: name %q: use lower case letters, digits and _ (at most 64, starting with a letter)", ErrInvalidPurpose, p.Name)
	}
	if _, err := ParseBasis(string(p.Basis)); err != nil {
		return bad("lawful_basis %v", err)
	}
	if len(p.Categories) > maxCategories {
		return bad("more than %d categories", maxCategories)
	}
	for _, cat := range p.Categories {
		if strings.TrimSpace(cat) == "" || len(cat) > 128 {
			return bad("category %q: must be 1 to 128 characters, not blank", cat)
		}
	}
	for _, id := range p.TCF {
		if id < 1 || id > MaxTCFPurpose {
			return bad("tcf purpose %d: TCF v2.2 purposes are 1 to %d", id, MaxTCFPurpose)
		}
	}
	for _, s := range p.GCM {
		if !slices.Contains(GCMSignals, s) {
			return bad("gcm signal %q: want one of %s", s, strings.Join(GCMSignals, ", "))
		}
	}
	if p.Necessary && (p.GPC || p.Marketing || p.Profiling) {
		return bad("the strictly necessary purpose cannot be opted out of (gpc_opt_out, marketing, profiling)")
	}
	return nil
}

// ParseBasis returns the lawful basis named s.
func ParseBasis(s string) (Basis, error) {
	if !slices.Contains(Bases, Basis(s)) {
		names := make([]string, len(Bases))
		for i, b := range Bases {
			names[i] = string(b)
		}
		return "", fmt.Errorf("%q: want one of %s", s, strings.Join(names, ", "))
	}
	return Basis(s), nil
}

// Purposes returns the catalogue's purposes, in their order.
func (c *Catalogue) Purposes() []Purpose {
	out := slices.Clone(c.purposes)
	for i := range out {
		out[i].Categories, out[i].TCF, out[i].GCM = slices.Clone(out[i].Categories), slices.Clone(out[i].TCF), slices.Clone(out[i].GCM)
	}
	return out
}

// Lookup returns the purpose a name stands for — its own name, one of its
// categories or GCM signals, in any case.
func (c *Catalogue) Lookup(name string) (Purpose, bool) {
	i, ok := c.byAlias[strings.ToLower(name)]
	if !ok {
		return Purpose{}, false
	}
	return c.purposes[i], true
}

// key is the name Choices keep a decision under: the purpose's name, or
// for a name no purpose stands for, the name in lower case (a destination
// may declare a purpose the catalogue does not know, matched by name).
func (c *Catalogue) key(name string) string {
	if i, ok := c.byAlias[strings.ToLower(name)]; ok {
		return c.purposes[i].Name
	}
	return strings.ToLower(name)
}

// defaultPurposes are the purposes of a workspace that declares none.
var defaultPurposes = []Purpose{
	{Name: "necessary", Description: "Provide the service the person asked for and keep it secure: sign-in, orders, receipts, fraud prevention.",
		Basis: BasisContract, Necessary: true,
		Categories: []string{"Necessary", "Strictly Necessary", "Essential", "Required", "C0001"},
		GCM:        []string{"security_storage", "functionality_storage"}},
	{Name: "analytics", Description: "Measure how the site and app are used, to improve them.",
		Basis:      BasisConsent,
		Categories: []string{"Analytics", "Performance", "Statistics", "Measurement", "C0002"},
		TCF:        []int{1, 8, 9}, GCM: []string{"analytics_storage"}},
	{Name: "personalization", Description: "Tailor content and recommendations to the person from what they did.",
		Basis: BasisConsent, Profiling: true,
		Categories: []string{"Personalization", "Personalisation", "Functional", "Preferences", "C0003"},
		TCF:        []int{1, 5, 6}, GCM: []string{"personalization_storage"}},
	{Name: "advertising", Description: "Show ads chosen from the person's profile and measure them, on this site and others.",
		Basis: BasisConsent, GPC: true, Marketing: true, Profiling: true,
		Categories: []string{"Advertising", "Targeting", "Ads", "Retargeting", "C0004"},
		TCF:        []int{1, 2, 3, 4, 7}, GCM: []string{"ad_storage", "ad_user_data", "ad_personalization"}},
	{Name: "marketing", Description: "Send the person marketing messages by email, SMS and push.",
		Basis: BasisConsent, Marketing: true,
		Categories: []string{"Marketing", "Email", "SMS", "Email Marketing", "Direct Marketing"}},
	{Name: "sale_sharing", Description: "Sell or share personal data with third parties (CCPA/CPRA sale and sharing).",
		Basis: BasisConsent, GPC: true,
		Categories: []string{"Sale", "Sharing", "Sale of Personal Data", "Data Sharing"}},
}

// Default returns the catalogue of a workspace that declares no purposes
// of its own: necessary, analytics, personalization, advertising,
// marketing and sale_sharing (docs/consent.md).
func Default() *Catalogue { return defaultCatalogue() }

var defaultCatalogue = sync.OnceValue(func() *Catalogue {
	c, err := NewCatalogue(defaultPurposes)
	if err != nil {
		panic("consent: the default purposes are invalid: " + err.Error()) // TestDefaultCatalogue keeps them valid
	}
	return c
})
