package delivery

import (
	"encoding/json"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/kithcdp/kith/store"
)

// mapPayload shapes a Segment event by a destination's mapping: each
// output field (dots nest objects) takes the value at a dotted path of the
// event; paths that are absent are left out. Without a mapping the event
// is sent as it is.
func mapPayload(mapping map[string]string, raw json.RawMessage) (json.RawMessage, error) {
	if len(mapping) == 0 {
		return raw, nil
	}
	var ev map[string]any
	if err := json.Unmarshal(raw, &ev); err != nil {
		return nil, err
	}
	out := map[string]any{}
	for _, field := range slices.Sorted(maps.Keys(mapping)) {
		v, ok := lookup(ev, mapping[field])
		if !ok {
			continue
		}
		put(out, strings.Split(field, "."), v)
	}
	return json.Marshal(out)
}

func lookup(m map[string]any, path string) (any, bool) {
	var cur any = m
	for seg := range strings.SplitSeq(path, ".") {
		obj, ok := cur.(map[string]any)
		if !ok {
			return nil, false
		}
		if cur, ok = obj[seg]; !ok {
			return nil, false
		}
	}
	return cur, true
}

func put(m map[string]any, segs []string, v any) {
	for _, s := range segs[:len(segs)-1] {
		next, ok := m[s].(map[string]any)
		if !ok {
			next = map[string]any{}
			m[s] = next
		}
		m = next
	}
	m[segs[len(segs)-1]] = v
}

// withExternalIDs adds synced identifiers to a payload's
// context.externalIds, in Segment's shape ({id, type, collection,
// encoding}), after those it carries. A payload that is not an object is
// left as it is.
func withExternalIDs(payload json.RawMessage, ids []store.Identifier) json.RawMessage {
	var ev map[string]any
	if json.Unmarshal(payload, &ev) != nil || ev == nil {
		return payload
	}
	ctx, _ := ev["context"].(map[string]any)
	if ctx == nil {
		ctx = map[string]any{}
		ev["context"] = ctx
	}
	list, _ := ctx["externalIds"].([]any)
	for _, id := range ids {
		list = append(list, map[string]any{"id": id.Value, "type": id.Type, "collection": "users", "encoding": "none"})
	}
	ctx["externalIds"] = list
	out, err := json.Marshal(ev)
	if err != nil {
		return payload
	}
	return out
}

// logged is the Segment event a destination receives for an event of the
// log: the event as received, with the messageId Kith gave it when it came
// without one, the corrected timestamp (so originalTimestamp and sentAt,
// from which it was corrected, are left out: a receiver that corrects clock
// skew again would shift it), and receivedAt.
func logged(ev *store.Event) json.RawMessage {
	var m map[string]json.RawMessage
	if json.Unmarshal(ev.Raw, &m) != nil || m == nil {
		return ev.Raw
	}
	str := func(s string) json.RawMessage { b, _ := json.Marshal(s); return b }
	m["messageId"] = str(ev.MessageID)
	m["timestamp"] = str(ev.Timestamp.UTC().Format(time.RFC3339Nano))
	m["receivedAt"] = str(ev.ReceivedAt.UTC().Format(time.RFC3339Nano))
	delete(m, "originalTimestamp")
	delete(m, "sentAt")
	delete(m, "writeKey")
	// The values are the event's own bytes, validated at ingest: written
	// back as they are (json.Marshal would check and compact each again),
	// keys in order as json.Marshal writes a map.
	out := make([]byte, 0, len(ev.Raw)+96)
	out = append(out, '{')
	for i, k := range slices.Sorted(maps.Keys(m)) {
		if i > 0 {
			out = append(out, ',')
		}
		key, _ := json.Marshal(k) // a string: cannot fail
		out = append(out, key...)
		out = append(out, ':')
		out = append(out, m[k]...)
	}
	return append(out, '}')
}
