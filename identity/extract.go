package identity

import (
	"slices"
	"strings"

	"github.com/kithcdp/kith/store"
	"github.com/nyaruka/phonenumbers"
)

// rawFields are the parts of an event's JSON that carry identifiers beyond
// userId and anonymousId (which store.Event already holds).
type rawFields struct {
	previousID string
	traits     []string // values of Compiled.traitKeys, in that order; "" when absent
	device     struct{ kind, id, ad string }
	external   []external
}

// external is one entry of context.externalIds.
type external struct{ typ, id string }

// Extract returns the identifiers an event carries, normalized, without
// duplicates, highest priority first, and a decision (code "blocked" or
// "invalid") for each value it refused. For an alias, previousId is
// returned as an anonymous_id; Graph.Resolve looks it up as a user_id
// first (see Resolve).
//
// Identifiers of one type keep the order of the fields they came from:
// userId, anonymousId, previousId, traits (by key), context.device,
// context.externalIds. That order decides which one a limit drops first.
func (c *Compiled) Extract(ev *store.Event) (ids []store.Identifier, dropped []store.Decision) {
	ids, _, dropped = c.extract(ev)
	return c.order(ids), dropped
}

// extract returns an event's identifiers in field order, unsorted, and the
// index of the alias's previousId among them (-1 if none).
func (c *Compiled) extract(ev *store.Event) (ids []store.Identifier, prev int, dropped []store.Decision) {
	var buf [4]string
	f := rawFields{traits: buf[:0]}
	if len(c.traitKeys) > len(buf) {
		f.traits = make([]string, 0, len(c.traitKeys))
	}
	f.traits = f.traits[:len(c.traitKeys)]
	c.scan(ev, &f)

	ids = make([]store.Identifier, 0, 4)
	add := func(typ, raw string) bool {
		v, code, reason := c.normalize(typ, raw)
		switch {
		case code != "":
			dropped = append(dropped, store.Decision{
				Position: ev.Position, Identifier: store.Identifier{Type: typ, Value: raw},
				Code: code, Reason: reason, At: ev.ReceivedAt,
			})
		case v != "":
			ids = append(ids, store.Identifier{Type: typ, Value: v})
			return true
		}
		return false
	}
	if ev.UserID != "" {
		add(UserID, ev.UserID)
	}
	if ev.AnonymousID != "" {
		add(AnonymousID, ev.AnonymousID)
	}
	prev = -1
	if f.previousID != "" && add(AnonymousID, f.previousID) {
		prev = len(ids) - 1
	}
	for i, v := range f.traits {
		if v != "" {
			add(c.traitIDs[c.traitKeys[i]], v)
		}
	}
	if d := f.device; d.id != "" || d.ad != "" {
		idType, adType := deviceTypes(d.kind)
		if d.id != "" {
			add(idType, d.id)
		}
		if d.ad != "" {
			add(adType, d.ad)
		}
	}
	for _, x := range f.external {
		t := strings.ToLower(strings.TrimSpace(x.typ))
		if validType(t) && t != GroupID {
			add(t, x.id)
		}
	}
	return ids, prev, dropped
}

// deviceTypes names the identifier types of a context.device's id and
// advertisingId as Segment does: ios.id and ios.idfa, android.id and
// android.idfa, <type>.id and <type>.idfa for other device types, and
// device.id and device.idfa when the type is missing or unusable.
func deviceTypes(kind string) (id, ad string) {
	switch kind = strings.ToLower(strings.TrimSpace(kind)); kind {
	case "ios":
		return "ios.id", "ios.idfa"
	case "android":
		return "android.id", "android.idfa"
	}
	if !validType(kind + ".idfa") {
		kind = "device"
	}
	return kind + ".id", kind + ".idfa"
}

// order sorts identifiers by priority, keeping field order within a type,
// and drops repeated ones.
func (c *Compiled) order(ids []store.Identifier) []store.Identifier {
	slices.SortStableFunc(ids, func(a, b store.Identifier) int { return c.compareTypes(a.Type, b.Type) })
	out := ids[:0]
	if len(ids) <= 16 {
		for i, id := range ids {
			if !slices.Contains(ids[:i], id) {
				out = append(out, id)
			}
		}
		return out
	}
	seen := make(map[store.Identifier]bool, len(ids))
	for _, id := range ids {
		if !seen[id] {
			seen[id] = true
			out = append(out, id)
		}
	}
	return out
}

// scan reads the identifier-carrying fields of the event's JSON into f.
// Traits are read from "traits" for identify calls and from
// "context.traits" for the others (a group call's traits are the
// account's); an identify call's context.traits fill what its traits lack
// (RudderStack's SDKs send an identify's traits only there). Malformed JSON yields no fields: ingest validates events, so
// this only happens to bytes that did not come through it.
func (c *Compiled) scan(ev *store.Event, f *rawFields) {
	s := &jscan{b: ev.Raw}
	identify, alias := ev.Type == "identify", ev.Type == "alias"
	traits := func(fill bool) bool {
		return s.object(func(k []byte, esc bool) bool {
			i, ok := c.traitIndex[string(k)]
			if esc {
				i, ok = c.traitIndex[unquote(k, esc)]
			}
			if !ok || (fill && f.traits[i] != "") {
				return s.skip()
			}
			v, ok := s.text()
			f.traits[i] = v
			return ok
		})
	}
	device := func() bool {
		return s.object(func(k []byte, esc bool) bool {
			var dst *string
			switch {
			case is(k, esc, "id"):
				dst = &f.device.id
			case is(k, esc, "advertisingId"):
				dst = &f.device.ad
			case is(k, esc, "type"):
				dst = &f.device.kind
			default:
				return s.skip()
			}
			v, ok := s.text()
			*dst = v
			return ok
		})
	}
	externalIDs := func() bool {
		f.external = f.external[:0]
		return s.array(func() bool {
			var x external
			ok := s.object(func(k []byte, esc bool) bool {
				var dst *string
				switch {
				case is(k, esc, "id"):
					dst = &x.id
				case is(k, esc, "type"):
					dst = &x.typ
				default:
					return s.skip()
				}
				v, ok := s.text()
				*dst = v
				return ok
			})
			if x.id != "" && x.typ != "" {
				f.external = append(f.external, x)
			}
			return ok
		})
	}
	ok := s.object(func(k []byte, esc bool) bool {
		switch {
		case alias && is(k, esc, "previousId"):
			v, ok := s.text()
			f.previousID = v
			return ok
		case identify && is(k, esc, "traits"):
			return traits(false)
		case is(k, esc, "context"):
			return s.object(func(k []byte, esc bool) bool {
				switch {
				case is(k, esc, "traits"):
					return traits(identify)
				case is(k, esc, "device"):
					return device()
				case is(k, esc, "externalIds"):
					return externalIDs()
				}
				return s.skip()
			})
		}
		return s.skip()
	})
	if !ok {
		clear(f.traits)
		f.previousID, f.device, f.external = "", struct{ kind, id, ad string }{}, nil
	}
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
	if len(v) > MaxValueLen {
		return "", "invalid", "identifier longer than 512 bytes"
	}
	return v, "", ""
}
