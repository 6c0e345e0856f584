package delivery

import (
	"bytes"
	"encoding/json"
	"strings"
)

// Consent is a set of consent preferences: purpose (lower-cased category
// name) → granted. A purpose not in the set has no recorded consent.
type Consent map[string]bool

// eventConsent reads Segment's context.consent.categoryPreferences from an
// event's JSON (nil when absent).
func eventConsent(raw []byte) Consent {
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
	return consentOf(ev.Context.Consent.CategoryPreferences)
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

// profileConsent reads the value the compute engine keeps
// ({"categoryPreferences": {...}, "timestamp": ..., "gpc": true}).
func profileConsent(raw []byte) Consent {
	var v struct {
		CategoryPreferences map[string]json.RawMessage `json:"categoryPreferences"`
		GPC                 bool                       `json:"gpc"`
	}
	if json.Unmarshal(raw, &v) != nil {
		return nil
	}
	c := consentOf(v.CategoryPreferences)
	if v.GPC {
		c = c.optOutOfSale()
	}
	return c
}

// SaleAndSharing are the purposes the Global Privacy Control signal
// (Sec-GPC: 1) opts out of — selling or sharing personal data, and the ads
// built on it — as purpose names a destination declares: the generic
// ones, and Google Consent Mode's advertising signals.
var SaleAndSharing = []string{"advertising", "sale", "sharing", "targeting", "ad_storage", "ad_user_data", "ad_personalization"}

// optOutOfSale returns c with every purpose of SaleAndSharing denied,
// whatever c said of them (GPC wins over an earlier or conflicting grant).
func (c Consent) optOutOfSale() Consent {
	out := make(Consent, len(c)+len(SaleAndSharing))
	for k, v := range c {
		out[k] = v
	}
	for _, p := range SaleAndSharing {
		out[p] = false
	}
	return out
}

func consentOf(prefs map[string]json.RawMessage) Consent {
	if len(prefs) == 0 {
		return nil
	}
	c := Consent{}
	for k, v := range prefs {
		var granted bool
		if json.Unmarshal(v, &granted) == nil {
			c[strings.ToLower(k)] = granted
		}
	}
	return c
}

// allowed applies the consent gate: every purpose must be granted by the
// event's consent or the profile's, and denied by neither (the stricter
// wins); a purpose neither records is denied unless missingAllowed (a
// workspace's opt-in to Segment's behaviour of delivering events that carry
// no consent at all). It returns the first purpose that stops delivery.
func allowed(purposes []string, event, profile Consent, missingAllowed bool) (string, bool) {
	for _, p := range purposes {
		p = strings.ToLower(p)
		ev, evOK := event[p]
		pr, prOK := profile[p]
		if (evOK && !ev) || (prOK && !pr) || (!evOK && !prOK && !missingAllowed) {
			return p, false
		}
	}
	return "", true
}
