package delivery

import (
	"bytes"
	"encoding/json"

	"github.com/kithcdp/kith/consent"
)

// The consent gate is package consent's evaluation (docs/consent.md) over
// the workspace's purpose catalogue (Options.Purposes): an event's own consent and its profile's
// current consent are each resolved into decisions per purpose, and a
// destination's purposes must be granted by one and denied by neither.

// Consent is a statement's decisions per purpose (consent.Choices): the
// event's own consent, or the profile's. A purpose not in it is not
// decided by it.
type Consent consent.Choices

// eventConsent reads Segment's context.consent.categoryPreferences from an
// event's JSON (nil when absent) and resolves them. The event's TC string
// is added by withTCString.
func eventConsent(cat *consent.Catalogue, raw []byte) Consent {
	// Most events carry none: no need to decode them. (The key in any
	// case, as encoding/json matches it, without its last letter, whose
	// case has a non-ASCII form; an escaped key is decoded.)
	if !containsFold(raw, `"categorypreference`) && !bytes.Contains(raw, []byte(`\u`)) {
		return nil
	}
	var ev struct {
		Context struct {
			Consent struct {
				CategoryPreferences map[string]json.RawMessage `json:"categoryPreferences"`
			} `json:"consent"`
		} `json:"context"`
	}
	if json.Unmarshal(raw, &ev) != nil {
		return nil
	}
	return consentOf(cat, ev.Context.Consent.CategoryPreferences)
}

// withTCString returns c with the decisions of the event's
// context.consent.tcString added for the purposes c leaves undecided.
func (c Consent) withTCString(cat *consent.Catalogue, raw []byte) Consent {
	if !containsFold(raw, `"tcstring"`) && !bytes.Contains(raw, []byte(`\u`)) {
		return c
	}
	s, err := consent.EventStatement(raw)
	if err != nil || s.TCString == "" {
		return c
	}
	return Consent(cat.ResolveTCString(consent.Choices(c), s.TCString))
}

// containsFold reports whether s holds key (lower case ASCII) in any case.
func containsFold(s []byte, key string) bool {
	for i := 0; i+len(key) <= len(s); i++ {
		if s[i] == '"' && bytes.EqualFold(s[i:i+len(key)], []byte(key)) {
			return true
		}
	}
	return false
}

// profileConsent resolves the consent value the compute engine keeps
// (categoryPreferences, tcString, gpc, terms, restrictions, objections;
// see compute.ConsentValue). A value it cannot read decides nothing.
func profileConsent(cat *consent.Catalogue, raw []byte) Consent {
	s, err := consent.ValueStatement(raw)
	if err != nil {
		return nil
	}
	return Consent(cat.Resolve(s))
}

// optOutOfSale returns c with every purpose the Global Privacy Control
// signal (Sec-GPC: 1) opts out of denied, whatever c said of them.
func (c Consent) optOutOfSale(cat *consent.Catalogue) Consent {
	return Consent(cat.OptOutOfSale(consent.Choices(c)))
}

func consentOf(cat *consent.Catalogue, prefs map[string]json.RawMessage) Consent {
	if len(prefs) == 0 {
		return nil
	}
	return Consent(cat.Resolve(consent.Statement{Categories: consent.Bools(prefs)}))
}

// allowed applies the consent gate (consent.Catalogue.Evaluate): every
// purpose must be granted by the event's consent or the profile's, and
// denied by neither (the stricter wins); a purpose neither records is
// denied unless missingAllowed (a workspace's opt-in to Segment's
// behaviour of delivering events that carry no consent at all). It
// returns the first purpose that stops delivery.
func allowed(cat *consent.Catalogue, purposes []string, event, profile Consent, missingAllowed bool) (string, bool) {
	d := cat.Evaluate(purposes, consent.Choices(event), consent.Choices(profile), missingAllowed)
	return d.Purpose, d.Allowed
}
