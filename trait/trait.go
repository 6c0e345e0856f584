package trait

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"slices"
	"strings"
	"time"

	"cel.dev/cel-go/cel"
)

// keyVersion is hashed into every Key: raising it gives every trait fresh
// state (for a change in what is maintained).
const keyVersion = 1

// Trait is a compiled Definition: it folds events into States and reads
// values from them. A Trait is safe for concurrent use; States are not.
type Trait struct {
	def    Definition
	key    string
	kind   byte
	types  uint8
	names  map[string]struct{} // nil: any name (not for funnels)
	steps  []string            // funnel steps
	segs   []string            // Property split at dots; nil without one
	prg    cel.Program         // nil without Where
	window int64               // days; 0 = all time
	within int64               // funnel: nanoseconds
}

// Compile validates d and compiles its Where condition. Errors are *Error
// (or an errors.Join of them), as from Validate.
func Compile(d Definition) (*Trait, error) {
	ast, err := d.check()
	if err != nil {
		return nil, err
	}
	d = clone(d)
	t := &Trait{def: d, kind: kindCode(d.Kind), window: int64(d.WindowDays)}
	for _, ty := range d.Types {
		t.types |= typeBit(ty)
	}
	if t.types == 0 {
		t.types = tTrack
	}
	if t.kind == kFunnel {
		t.steps = d.Events
		w, _ := parseWithin(d.Within)
		t.within = int64(w)
	} else if len(d.Events) > 0 {
		t.names = make(map[string]struct{}, len(d.Events))
		for _, n := range d.Events {
			t.names[n] = struct{}{}
		}
	}
	if d.Property != "" {
		t.segs = strings.Split(d.Property, ".")
	}
	if ast != nil {
		prg, err := program(ast)
		if err != nil {
			return nil, &Error{Field: "where", Code: "invalid_where", Msg: err.Error()}
		}
		t.prg = prg
	}
	t.key = d.Name + "." + t.hash()
	return t, nil
}

func clone(d Definition) Definition {
	d.Types = slices.Clone(d.Types)
	d.Events = slices.Clone(d.Events)
	return d
}

// hash is a short hex hash of what changes the maintained state: kind,
// types and events as sets (funnel steps in order), property, where, window
// and within.
func (t *Trait) hash() string {
	h := sha256.New()
	var n [8]byte
	put := func(s string) {
		binary.BigEndian.PutUint64(n[:], uint64(len(s)))
		h.Write(n[:])
		h.Write([]byte(s))
	}
	putInt := func(v int64) {
		binary.BigEndian.PutUint64(n[:], uint64(v))
		h.Write(n[:])
	}
	putInt(keyVersion)
	put(t.def.Kind)
	putInt(int64(t.types))
	events := slices.Clone(t.def.Events)
	if t.kind != kFunnel {
		slices.Sort(events)
		events = slices.Compact(events)
	}
	putInt(int64(len(events)))
	for _, e := range events {
		put(e)
	}
	put(t.def.Property)
	put(t.def.Where)
	putInt(t.window)
	putInt(t.within)
	sum := h.Sum(nil)
	return hex.EncodeToString(sum[:8])
}

// Definition returns the definition t was compiled from.
func (t *Trait) Definition() Definition { return clone(t.def) }

// Key identifies the state t maintains: the trait's name, a dot, and 16 hex
// digits of a hash of every field that changes what is maintained (kind,
// types, events, property, where, window_days, within). Editing one of them
// gives a new Key, hence fresh state; renaming gives a new Key too. It is
// the same in every process and build of this package.
func (t *Trait) Key() string { return t.key }

// WindowDays returns the window in days, 0 for all time.
func (t *Trait) WindowDays() int { return int(t.window) }

// dayOf returns the bucket of an event: its UTC day, or 0 for an all-time
// trait.
func (t *Trait) bucketDay(ev *Event) int64 {
	if t.window == 0 {
		return 0
	}
	return ev.day
}

// windowStart returns the first day in the window at now.
func (t *Trait) windowStart(now time.Time) int64 {
	if t.window == 0 {
		return -1 << 62
	}
	return dayOf(now) - t.window + 1
}
