package audience

import (
	"crypto/sha256"
	"encoding/hex"
	"strconv"

	"github.com/kithcdp/kith/trait"
)

// eventTypes are the event types whose name an event condition matches:
// a track event's name, a page's or a screen's.
var eventTypes = []string{"track", "page", "screen"}

// conditionDefinition is the implicit computed trait that maintains an
// event call's value: a count of the named event (count, performed) or
// the completions of a two-step funnel (then), over the last Days days
// (0: ever). Its name is derived from what it counts, so that the same
// condition in two audiences is one counter.
func conditionDefinition(entity string, c eventCall) trait.Definition {
	d := trait.Definition{
		Entity:     entity,
		Types:      append([]string(nil), eventTypes...),
		WindowDays: int(c.Days),
	}
	if c.Fn == "then" {
		d.Kind = "funnel"
		d.Events = []string{c.Name, c.Then}
		d.Within = c.Within
	} else {
		d.Kind = "count"
		d.Events = []string{c.Name}
		d.Where = c.Filter
	}
	h := sha256.New()
	for _, s := range []string{entity, d.Kind, c.Name, c.Then, c.Within, strconv.FormatInt(c.Days, 10), c.Filter} {
		h.Write([]byte(strconv.Quote(s)))
	}
	d.Name = "audience_" + d.Kind + "_" + hex.EncodeToString(h.Sum(nil)[:8])
	return d
}
