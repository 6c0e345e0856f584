package trait

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"unicode/utf8"
)

// encVersion is the first byte of an encoded State.
const encVersion = 1

// Encode writes s in a compact binary form: a version byte, the kind, then
// the buckets (day as a delta, then the kind's fields) and a funnel's
// chains. The same state always gives the same bytes.
func (t *Trait) Encode(s *State) []byte {
	if s == nil {
		s = &State{}
	}
	out := make([]byte, 0, 8+len(s.b)*12)
	out = append(out, encVersion, t.kind)
	out = binary.AppendUvarint(out, uint64(len(s.b)))
	prev := int64(0)
	for i := range s.b {
		b := &s.b[i]
		if i == 0 {
			out = binary.AppendVarint(out, b.day)
		} else {
			out = binary.AppendUvarint(out, uint64(b.day-prev))
		}
		prev = b.day
		switch t.kind {
		case kCount, kFunnel:
			out = binary.AppendUvarint(out, uint64(b.n))
		case kSum, kAvg:
			out = binary.AppendUvarint(out, uint64(b.n))
			out = binary.AppendVarint(out, b.sum.hi)
			out = binary.AppendUvarint(out, b.sum.lo)
		case kMin, kMax:
			out = binary.LittleEndian.AppendUint64(out, math.Float64bits(b.num))
		case kFirst, kLast:
			out = binary.AppendVarint(out, b.at)
			out = binary.AppendVarint(out, b.pos)
			out = appendScalar(out, b.val)
		case kMostFrequent, kUniqueList, kUniqueCount:
			out = binary.AppendUvarint(out, uint64(len(b.vals)))
			for j, v := range b.vals {
				out = appendScalar(out, v)
				if t.kind == kMostFrequent {
					out = binary.AppendUvarint(out, uint64(b.counts[j]))
				}
			}
		}
	}
	if t.kind == kFunnel {
		if t.Empty(&State{starts: s.starts}) {
			out = append(out, 0)
		} else {
			out = append(out, 1)
			for _, st := range s.starts {
				if st == noStart {
					out = append(out, 0)
				} else {
					out = append(out, 1)
					out = binary.AppendVarint(out, st)
				}
			}
		}
	}
	return out
}

func appendScalar(out []byte, v scalar) []byte {
	switch v.k {
	case sBool:
		return append(out, byte(v.n)) // 0 or 1
	case sNumber:
		out = append(out, 2)
		return binary.LittleEndian.AppendUint64(out, math.Float64bits(v.n))
	}
	out = append(out, 3)
	out = binary.AppendUvarint(out, uint64(len(v.s)))
	return append(out, v.s...)
}

// errCorrupt is wrapped by every Decode error.
var errCorrupt = errors.New("corrupt trait state")

// Decode reads a State written by Encode for this trait's kind. It rejects
// anything else (another version or kind, truncated or trailing bytes,
// values out of order or beyond the caps) with an error.
func (t *Trait) Decode(data []byte) (*State, error) {
	// Strings are cut from one copy of data: one allocation for all.
	d := decoder{b: data, s: string(data)}
	s, err := t.decode(&d)
	if err != nil {
		return nil, fmt.Errorf("%s: decode state: %w: %v", t.key, errCorrupt, err)
	}
	return s, nil
}

type decoder struct {
	b   []byte // what is left to read
	s   string // all of the input, as a string
	err error
}

func (d *decoder) fail(msg string) {
	if d.err == nil {
		d.err = errors.New(msg)
	}
}

func (d *decoder) byte() byte {
	if d.err != nil || len(d.b) == 0 {
		d.fail("truncated")
		return 0
	}
	c := d.b[0]
	d.b = d.b[1:]
	return c
}

func (d *decoder) uvarint() uint64 {
	if d.err != nil {
		return 0
	}
	v, n := binary.Uvarint(d.b)
	if n <= 0 || (n > 1 && d.b[n-1] == 0) { // overlong: not canonical
		d.fail("bad varint")
		return 0
	}
	d.b = d.b[n:]
	return v
}

func (d *decoder) varint() int64 {
	if d.err != nil {
		return 0
	}
	v, n := binary.Varint(d.b)
	if n <= 0 || (n > 1 && d.b[n-1] == 0) { // overlong: not canonical
		d.fail("bad varint")
		return 0
	}
	d.b = d.b[n:]
	return v
}

// count reads a positive count.
func (d *decoder) count() int64 {
	v := d.uvarint()
	if d.err == nil && (v == 0 || v > math.MaxInt64) {
		d.fail("bad count")
	}
	return int64(v)
}

func (d *decoder) float() float64 {
	if d.err != nil || len(d.b) < 8 {
		d.fail("truncated")
		return 0
	}
	f := math.Float64frombits(binary.LittleEndian.Uint64(d.b))
	d.b = d.b[8:]
	if math.IsNaN(f) || math.IsInf(f, 0) || (f == 0 && math.Signbit(f)) {
		d.fail("bad number")
	}
	return f
}

func (d *decoder) scalar() scalar {
	switch d.byte() {
	case 0:
		return scalar{k: sBool}
	case 1:
		return scalar{k: sBool, n: 1}
	case 2:
		return scalar{k: sNumber, n: d.float()}
	case 3:
		n := d.uvarint()
		if d.err != nil || n > maxValueLen || n > uint64(len(d.b)) {
			d.fail("bad string")
			return scalar{}
		}
		off := len(d.s) - len(d.b)
		s := d.s[off : off+int(n)]
		d.b = d.b[n:]
		if !utf8.ValidString(s) {
			// Values come from decoded JSON, hence valid UTF-8.
			d.fail("bad string")
		}
		return scalar{k: sString, s: s}
	}
	d.fail("bad value tag")
	return scalar{}
}

func (t *Trait) decode(d *decoder) (*State, error) {
	if v := d.byte(); d.err == nil && v != encVersion {
		return nil, fmt.Errorf("unknown version %d", v)
	}
	if k := d.byte(); d.err == nil && k != t.kind {
		return nil, fmt.Errorf("state of kind %d, not %s", k, t.def.Kind)
	}
	n := d.uvarint()
	if d.err != nil {
		return nil, d.err
	}
	// Every bucket takes at least two bytes.
	if n > uint64(len(d.b))/2 || (t.window == 0 && n > 1) {
		return nil, errors.New("bad bucket count")
	}
	s := &State{}
	if n > 0 {
		s.b = make([]bucket, n)
	}
	for i := range s.b {
		b := &s.b[i]
		if i == 0 {
			b.day = d.varint()
			if t.window == 0 && b.day != 0 {
				d.fail("bad day")
			}
			if b.day < -1<<40 || b.day > 1<<40 {
				d.fail("bad day")
			}
		} else {
			delta := d.uvarint()
			if delta == 0 || delta > 1<<41 {
				d.fail("bad day")
			}
			b.day = s.b[i-1].day + int64(delta)
			if b.day > 1<<40 {
				d.fail("bad day")
			}
		}
		switch t.kind {
		case kCount, kFunnel:
			b.n = d.count()
		case kSum, kAvg:
			b.n = d.count()
			b.sum.hi = d.varint()
			b.sum.lo = d.uvarint()
		case kMin, kMax:
			b.num = d.float()
		case kFirst, kLast:
			b.at = d.varint()
			b.pos = d.varint()
			b.val = d.scalar()
		case kMostFrequent, kUniqueList, kUniqueCount:
			m := d.uvarint()
			if d.err == nil && (m == 0 || m > maxDistinct || m > uint64(len(d.b))) {
				d.fail("bad value count")
			}
			if d.err != nil {
				break
			}
			b.vals = make([]scalar, m)
			if t.kind == kMostFrequent {
				b.counts = make([]int64, m)
			}
			for j := range b.vals {
				b.vals[j] = d.scalar()
				if j > 0 && d.err == nil && compare(b.vals[j-1], b.vals[j]) >= 0 {
					d.fail("values out of order")
				}
				if t.kind == kMostFrequent {
					b.counts[j] = d.count()
				}
			}
		}
		if d.err != nil {
			return nil, d.err
		}
	}
	if t.kind == kFunnel {
		switch d.byte() {
		case 0:
		case 1:
			s.starts = make([]int64, len(t.steps)-1)
			for i := range s.starts {
				switch d.byte() {
				case 0:
					s.starts[i] = noStart
				case 1:
					s.starts[i] = d.varint()
					if s.starts[i] == noStart {
						d.fail("bad start")
					}
				default:
					d.fail("bad start")
				}
			}
			if d.err == nil && t.Empty(&State{starts: s.starts}) {
				d.fail("bad start")
			}
		default:
			d.fail("bad chains")
		}
	}
	if d.err != nil {
		return nil, d.err
	}
	if len(d.b) > 0 {
		return nil, errors.New("trailing bytes")
	}
	return s, nil
}
