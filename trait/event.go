package trait

import (
	"bytes"
	"encoding/json"
	"math"
	"strconv"
	"time"
	"unicode/utf8"

	"github.com/kithcdp/kith/store"
)

// Event is one log event as traits read it. Its JSON is read lazily, once,
// and shared by every Trait that looks at it: the top-level fields are
// indexed on the first property read, a property path is resolved once,
// and properties, context and traits are decoded into maps only when a
// Where condition uses them. An Event is for one goroutine at a time.
type Event struct {
	ev      *store.Event
	day     int64 // UTC day of ev.Timestamp
	ts      int64 // ev.Timestamp in Unix nanoseconds
	indexed bool
	top     []field
	topBuf  [16]field
	paths   []resolved
	objs    [3]*jsonObject
}

type field struct {
	key []byte // unescaped; aliases Raw when it had no escapes
	val []byte
}

// resolved is a property path read from the event.
type resolved struct {
	path string
	raw  []byte
	v    scalar
	kind uint8 // rAbsent, rNull, rObject, rScalar
}

const (
	rAbsent uint8 = iota
	rNull
	rComposite
	rScalar
)

const (
	objProperties = iota
	objContext
	objTraits
)

// NewEvent wraps a log event. ev.Raw is the event's Segment JSON; Type,
// Name, Timestamp and Position are read from ev. The Event keeps ev.
func NewEvent(ev *store.Event) *Event {
	ns := ev.Timestamp.UnixNano()
	if ev.Timestamp.Year() < 1678 || ev.Timestamp.Year() > 2261 {
		// Outside UnixNano's range: clamp, so that order stays sane.
		if ev.Timestamp.Year() < 1678 {
			ns = math.MinInt64 + 1
		} else {
			ns = math.MaxInt64
		}
	}
	return &Event{ev: ev, day: dayOf(ev.Timestamp), ts: ns}
}

// dayOf is t's UTC day number since the Unix epoch.
func dayOf(t time.Time) int64 {
	s := t.Unix()
	d := s / 86400
	if s%86400 < 0 {
		d--
	}
	return d
}

func (e *Event) index() {
	e.indexed = true
	e.top = e.topBuf[:0]
	eachField(e.ev.Raw, func(key, val []byte) {
		e.top = append(e.top, field{key, val})
	})
}

// topField returns the raw value of a top-level field (the last one, like
// encoding/json, when a key repeats).
func (e *Event) topField(key string) ([]byte, bool) {
	if !e.indexed {
		e.index()
	}
	for i := len(e.top) - 1; i >= 0; i-- {
		if string(e.top[i].key) == key {
			return e.top[i].val, true
		}
	}
	return nil, false
}

// value reads a property path (split in segs), once per Event.
func (e *Event) value(path string, segs []string) *resolved {
	for i := range e.paths {
		if e.paths[i].path == path {
			return &e.paths[i]
		}
	}
	r := resolved{path: path}
	raw, ok := e.topField(segs[0])
	for _, s := range segs[1:] {
		if !ok {
			break
		}
		raw, ok = lookup(raw, s)
	}
	if ok {
		r.raw = raw
		r.v, r.kind = parseScalar(raw)
	}
	e.paths = append(e.paths, r)
	return &e.paths[len(e.paths)-1]
}

// object returns properties, context or traits (traits falls back to
// context.traits, where track events carry them) as a lazily decoded CEL
// map; absent or not an object gives an empty map.
func (e *Event) object(which int) *jsonObject {
	if o := e.objs[which]; o != nil {
		return o
	}
	var raw []byte
	var ok bool
	switch which {
	case objProperties:
		raw, ok = e.topField("properties")
	case objContext:
		raw, ok = e.topField("context")
	case objTraits:
		raw, ok = e.topField("traits")
		if !ok || len(raw) == 0 || raw[0] != '{' {
			if c, cok := e.topField("context"); cok {
				raw, ok = lookup(c, "traits")
			}
		}
	}
	if !ok || len(raw) == 0 || raw[0] != '{' {
		raw = []byte("{}")
	}
	o := newJSONObject(raw)
	e.objs[which] = o
	return o
}

// parseScalar interprets a raw JSON value.
func parseScalar(raw []byte) (scalar, uint8) {
	if len(raw) == 0 {
		return scalar{}, rAbsent
	}
	switch raw[0] {
	case '{', '[':
		return scalar{}, rComposite
	case 'n':
		return scalar{}, rNull
	case 't':
		return scalar{k: sBool, n: 1}, rScalar
	case 'f':
		return scalar{k: sBool}, rScalar
	case '"':
		s, ok := unquote(raw)
		if !ok {
			return scalar{}, rAbsent
		}
		return scalar{k: sString, s: s}, rScalar
	}
	f, err := strconv.ParseFloat(string(raw), 64)
	if err != nil || math.IsInf(f, 0) || math.IsNaN(f) {
		return scalar{}, rAbsent
	}
	if f == 0 {
		f = 0 // no negative zero
	}
	return scalar{k: sNumber, n: f}, rScalar
}

// unquote decodes a JSON string literal.
func unquote(raw []byte) (string, bool) {
	if len(raw) < 2 || raw[0] != '"' || raw[len(raw)-1] != '"' {
		return "", false
	}
	in := raw[1 : len(raw)-1]
	plain := true
	for _, c := range in {
		if c == '\\' || c < 0x20 {
			plain = false
			break
		}
	}
	if plain && utf8.Valid(in) {
		return string(in), true
	}
	// Escapes, or invalid UTF-8 (which encoding/json replaces with U+FFFD).
	var s string
	if json.Unmarshal(raw, &s) != nil {
		return "", false
	}
	return s, true
}

// A small JSON scanner: it finds fields without decoding what it skips.
// It assumes mostly valid JSON (ingest validated the events) and never
// panics on invalid input: it then finds nothing more.

func skipWS(b []byte, i int) int {
	for i < len(b) {
		switch b[i] {
		case ' ', '\t', '\n', '\r':
			i++
		default:
			return i
		}
	}
	return i
}

// skipString returns the index after the string starting at b[i] == '"',
// and whether it holds escapes.
func skipString(b []byte, i int) (int, bool, bool) {
	esc := false
	i++
	for i <= len(b) {
		j := bytes.IndexByte(b[i:], '"')
		if j < 0 {
			break
		}
		q := i + j
		if bytes.IndexByte(b[i:q], '\\') < 0 {
			return q + 1, esc, true
		}
		esc = true
		// The quote is escaped when an odd run of backslashes precedes it.
		k := q
		for k > i && b[k-1] == '\\' {
			k--
		}
		if (q-k)%2 == 0 {
			return q + 1, esc, true
		}
		i = q + 1
	}
	return 0, false, false
}

// structural marks the bytes skipValue stops at inside objects and arrays.
var structural = [256]bool{'"': true, '{': true, '}': true, '[': true, ']': true}

// skipValue returns the index after the value starting at b[i].
func skipValue(b []byte, i int) (int, bool) {
	if i >= len(b) {
		return 0, false
	}
	switch b[i] {
	case '"':
		j, _, ok := skipString(b, i)
		return j, ok
	case '{', '[':
		depth := 0
		for {
			for i < len(b) && !structural[b[i]] {
				i++
			}
			if i >= len(b) {
				return 0, false
			}
			switch b[i] {
			case '"':
				j, _, ok := skipString(b, i)
				if !ok {
					return 0, false
				}
				i = j
				continue
			case '{', '[':
				depth++
			default:
				depth--
				if depth == 0 {
					return i + 1, true
				}
			}
			i++
		}
	}
	j := i
	for j < len(b) {
		switch b[j] {
		case ',', '}', ']', ' ', '\t', '\n', '\r':
			return j, j > i
		}
		j++
	}
	return j, j > i
}

// eachField calls fn with every field of the JSON object obj, in order.
func eachField(obj []byte, fn func(key, val []byte)) {
	i := skipWS(obj, 0)
	if i >= len(obj) || obj[i] != '{' {
		return
	}
	i = skipWS(obj, i+1)
	if i < len(obj) && obj[i] == '}' {
		return
	}
	for i < len(obj) && obj[i] == '"' {
		end, esc, ok := skipString(obj, i)
		if !ok {
			return
		}
		key := obj[i+1 : end-1]
		if esc {
			k, ok := unquote(obj[i:end])
			if !ok {
				return
			}
			key = []byte(k)
		}
		i = skipWS(obj, end)
		if i >= len(obj) || obj[i] != ':' {
			return
		}
		i = skipWS(obj, i+1)
		vend, ok := skipValue(obj, i)
		if !ok {
			return
		}
		fn(key, obj[i:vend])
		i = skipWS(obj, vend)
		if i >= len(obj) || obj[i] != ',' {
			return
		}
		i = skipWS(obj, i+1)
	}
}

// lookup returns the raw value of key in the JSON object obj (the last one
// when it repeats).
func lookup(obj []byte, key string) ([]byte, bool) {
	var out []byte
	found := false
	i := skipWS(obj, 0)
	if i >= len(obj) || obj[i] != '{' {
		return nil, false
	}
	i = skipWS(obj, i+1)
	for i < len(obj) && obj[i] == '"' {
		end, esc, ok := skipString(obj, i)
		if !ok {
			return out, found
		}
		var match bool
		if esc {
			k, ok := unquote(obj[i:end])
			match = ok && k == key
		} else {
			match = string(obj[i+1:end-1]) == key
		}
		i = skipWS(obj, end)
		if i >= len(obj) || obj[i] != ':' {
			return out, found
		}
		i = skipWS(obj, i+1)
		vend, ok := skipValue(obj, i)
		if !ok {
			return out, found
		}
		if match {
			out, found = obj[i:vend], true
		}
		i = skipWS(obj, vend)
		if i >= len(obj) || obj[i] != ',' {
			return out, found
		}
		i = skipWS(obj, i+1)
	}
	return out, found
}
