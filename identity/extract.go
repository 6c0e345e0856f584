package identity

import (
	"encoding/json"
	"slices"
	"strconv"
	"strings"

	"github.com/kithcdp/kith/store"
	"github.com/nyaruka/phonenumbers"
)

// identityFields are the parts of an event's JSON that carry identifiers
// beyond userId and anonymousId.
type identityFields struct {
	PreviousID json.RawMessage            `json:"previousId"`
	Traits     map[string]json.RawMessage `json:"traits"`
	Context    struct {
		Traits map[string]json.RawMessage `json:"traits"`
		Device struct {
			ID            json.RawMessage `json:"id"`
			AdvertisingID json.RawMessage `json:"advertisingId"`
			Type          json.RawMessage `json:"type"`
		} `json:"device"`
		ExternalIDs []struct {
			ID   json.RawMessage `json:"id"`
			Type json.RawMessage `json:"type"`
		} `json:"externalIds"`
	} `json:"context"`
}

// Extract returns the identifiers an event carries, normalized, without
// duplicates, highest priority first, and a decision for each value it
// refused (blocked or malformed). For an alias, previousId is returned as an
// anonymous_id; Graph.Resolve looks it up as a user_id first.
func (c *Compiled) Extract(ev *store.Event) (ids []store.Identifier, dropped []store.Decision) {
	var f identityFields
	// Ingest validated the JSON; a field of an unexpected shape leaves the
	// struct partly filled, which only loses identifiers.
	_ = json.Unmarshal(ev.Raw, &f)
	add := func(typ, raw string) {
		v, code, reason := c.normalize(typ, raw)
		switch {
		case code != "":
			dropped = append(dropped, store.Decision{
				Position: ev.Position, Identifier: store.Identifier{Type: typ, Value: raw},
				Code: code, Reason: reason, At: ev.ReceivedAt,
			})
		case v != "":
			ids = append(ids, store.Identifier{Type: typ, Value: v})
		}
	}
	if ev.UserID != "" {
		add(UserID, ev.UserID)
	}
	if ev.AnonymousID != "" {
		add(AnonymousID, ev.AnonymousID)
	}
	if ev.Type == "alias" {
		if prev := text(f.PreviousID); prev != "" {
			add(AnonymousID, prev)
		}
	}
	traits := f.Context.Traits
	if ev.Type == "identify" {
		traits = f.Traits
	}
	for _, k := range c.traitKeys {
		if v := text(traits[k]); v != "" {
			add(c.traitIDs[k], v)
		}
	}
	d := f.Context.Device
	if kind := strings.ToLower(text(d.Type)); kind != "" || len(d.ID) > 0 || len(d.AdvertisingID) > 0 {
		if !typeRE.MatchString(kind) {
			kind = "device"
		}
		if id := text(d.ID); id != "" {
			add(kind+".id", id)
		}
		if ad := text(d.AdvertisingID); ad != "" {
			add(kind+".idfa", ad)
		}
	}
	for _, x := range f.Context.ExternalIDs {
		t := strings.ToLower(strings.TrimSpace(text(x.Type)))
		if !typeRE.MatchString(t) || t == GroupID {
			continue
		}
		if id := text(x.ID); id != "" {
			add(t, id)
		}
	}
	slices.SortFunc(ids, c.compare)
	return slices.Compact(ids), dropped
}

// normalize returns the canonical form of an identifier value, or a
// decision code and reason when the value cannot be one.
func (c *Compiled) normalize(typ, raw string) (v, code, reason string) {
	v = strings.TrimSpace(raw)
	switch typ {
	case Email:
		v = strings.ToLower(v)
		if at := strings.IndexByte(v, '@'); at < 1 || at == len(v)-1 {
			return "", "invalid", "not an email address"
		}
	case Phone:
		n, err := phonenumbers.Parse(v, c.region)
		if err != nil || !phonenumbers.IsValidNumber(n) {
			if c.region == "" && !strings.HasPrefix(v, "+") {
				return "", "invalid", "phone number without a country code, and no default_region is set"
			}
			return "", "invalid", "not a phone number"
		}
		v = phonenumbers.Format(n, phonenumbers.E164)
	}
	if c.isBlocked(v) {
		return "", "blocked", "the value is on the blocked list"
	}
	if len(v) > 512 {
		return "", "invalid", "identifier longer than 512 bytes"
	}
	return v, "", ""
}

// text reads a JSON string or number as text; anything else is "".
func text(raw json.RawMessage) string {
	if len(raw) == 0 {
		return ""
	}
	switch raw[0] {
	case '"':
		var s string
		if json.Unmarshal(raw, &s) != nil {
			return ""
		}
		return s
	case '-', '0', '1', '2', '3', '4', '5', '6', '7', '8', '9':
		if _, err := strconv.ParseFloat(string(raw), 64); err == nil {
			return string(raw)
		}
	}
	return ""
}
