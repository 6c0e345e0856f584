package trait

import (
	"encoding/json"
	"math"
	"slices"
	"strconv"
	"time"
)

// noStart marks a funnel step no chain has reached.
const noStart = math.MinInt64

// State is the maintained state of one Trait on one profile: buckets of
// partial results by UTC day (one bucket for an all-time trait) and, for a
// funnel, the progress of its chains. The zero value is empty. A State
// belongs to one Trait; it is not safe for concurrent use.
type State struct {
	b      []bucket // ascending by day
	starts []int64  // funnel: per step but the last, the latest start of a chain that reached it, or noStart
}

// bucket is the partial result of one day. Which fields are used depends on
// the kind:
//
//	count, funnel      n
//	sum, avg           n, sum
//	min, max           num
//	first, last        at, pos, val
//	most_frequent      vals, counts
//	unique_*           vals
type bucket struct {
	day    int64
	n      int64
	sum    i128
	num    float64
	at     int64 // Unix nanoseconds
	pos    int64
	val    scalar
	vals   []scalar // ascending, distinct, at most maxDistinct
	counts []int64
}

// find returns the index of day's bucket, or where it goes.
func (s *State) find(day int64) (int, bool) {
	return slices.BinarySearchFunc(s.b, day, func(b bucket, d int64) int {
		switch {
		case b.day < d:
			return -1
		case b.day > d:
			return 1
		}
		return 0
	})
}

// bucket returns day's bucket, adding an empty one if needed.
func (s *State) bucket(day int64) (*bucket, bool) {
	i, ok := s.find(day)
	if !ok {
		s.b = slices.Insert(s.b, i, bucket{day: day})
	}
	return &s.b[i], !ok
}

// Observe folds ev into s if ev counts for t: its type and name match, its
// Where condition holds (an evaluation error does not match), and the
// property is present with a usable type (a number for sum, avg, min and
// max; a string, number or bool for the other kinds, strings at most 1 KB;
// any non-null value for a count). It reports whether s changed.
func (t *Trait) Observe(s *State, ev *Event) bool {
	if s == nil || ev == nil || ev.ev == nil || t.types&typeBit(ev.ev.Type) == 0 {
		return false
	}
	if t.kind == kFunnel {
		return t.observeFunnel(s, ev)
	}
	if t.names != nil {
		if _, ok := t.names[ev.ev.Name]; !ok {
			return false
		}
	}
	var v scalar
	var fx i128
	if t.segs != nil {
		r := ev.value(t.def.Property, t.segs)
		switch t.kind {
		case kCount:
			if r.kind != rScalar && r.kind != rComposite {
				return false
			}
		case kSum, kAvg:
			if r.kind != rScalar || r.v.k != sNumber || math.Abs(r.v.n) > maxSummand {
				return false
			}
			var ok bool
			if fx, ok = fixedText(r.raw); !ok {
				return false
			}
		case kMin, kMax:
			if r.kind != rScalar || r.v.k != sNumber {
				return false
			}
		default:
			if r.kind != rScalar || len(r.v.s) > maxValueLen {
				return false
			}
		}
		v = r.v
	}
	if t.prg != nil && !match(t.prg, ev) {
		return false
	}
	b, fresh := s.bucket(t.bucketDay(ev))
	switch t.kind {
	case kCount:
		b.n++
	case kSum, kAvg:
		b.n++
		b.sum = b.sum.add(fx)
	case kMin:
		if fresh || v.n < b.num {
			b.num = v.n
			return true
		}
		return false
	case kMax:
		if fresh || v.n > b.num {
			b.num = v.n
			return true
		}
		return false
	case kFirst:
		if fresh || earlier(ev.ts, ev.ev.Position, v, b.at, b.pos, b.val) {
			b.at, b.pos, b.val = ev.ts, ev.ev.Position, v
			return true
		}
		return false
	case kLast:
		if fresh || earlier(b.at, b.pos, v, ev.ts, ev.ev.Position, b.val) {
			b.at, b.pos, b.val = ev.ts, ev.ev.Position, v
			return true
		}
		return false
	case kMostFrequent:
		return b.add(v, 1)
	case kUniqueList, kUniqueCount:
		return b.add(v, 0)
	}
	return true
}

// earlier reports whether (at, pos) comes before (at2, pos2), or, at the
// same time and position, whether v sorts before v2 (so ties are decided
// the same in any order).
func earlier(at, pos int64, v scalar, at2, pos2 int64, v2 scalar) bool {
	if at != at2 {
		return at < at2
	}
	if pos != pos2 {
		return pos < pos2
	}
	return compare(v, v2) < 0
}

// add counts v in the bucket's distinct values (with counts when n > 0),
// keeping the maxDistinct smallest.
func (b *bucket) add(v scalar, n int64) bool {
	i, ok := slices.BinarySearchFunc(b.vals, v, compare)
	if ok {
		if n == 0 {
			return false
		}
		b.counts[i] += n
		return true
	}
	if i >= maxDistinct {
		return false
	}
	b.vals = slices.Insert(b.vals, i, v)
	if n > 0 {
		b.counts = slices.Insert(b.counts, i, n)
	}
	if len(b.vals) > maxDistinct {
		b.vals = b.vals[:maxDistinct]
		if n > 0 {
			b.counts = b.counts[:maxDistinct]
		}
	}
	return true
}

// observeFunnel advances the funnel's chains with ev. Steps are taken in
// log order: a step counts when its timestamp is not before the start of a
// chain that reached the previous step and at most Within after it. The
// last step completes the chain (counted on its day) and consumes it. An
// event takes at most one step, the furthest it can.
func (t *Trait) observeFunnel(s *State, ev *Event) bool {
	name := ev.ev.Name
	hit := false
	for _, st := range t.steps {
		if st == name {
			hit = true
			break
		}
	}
	if !hit || (t.prg != nil && !match(t.prg, ev)) {
		return false
	}
	if len(s.starts) != len(t.steps)-1 {
		s.starts = make([]int64, len(t.steps)-1)
		for i := range s.starts {
			s.starts[i] = noStart
		}
	}
	last := len(t.steps) - 1
	// From the last step down; an event takes one step at most.
	for j := last; j >= 0; j-- {
		if t.steps[j] != name {
			continue
		}
		if j == 0 {
			if ev.ts > s.starts[0] {
				s.starts[0] = ev.ts
				return true
			}
			return false
		}
		start := s.starts[j-1]
		if start == noStart || ev.ts < start || ev.ts-start > t.within {
			continue
		}
		if j == last {
			b, _ := s.bucket(t.bucketDay(ev))
			b.n++
			s.starts[j-1] = noStart
			return true
		}
		if start > s.starts[j] {
			s.starts[j] = start
			return true
		}
	}
	return false
}

// Merge folds src into dst (profiles merged, or an account's users
// combined): dst becomes dst ⊕ src, an operation that is commutative and
// associative. src is not changed and shares nothing with dst afterwards.
func (t *Trait) Merge(dst, src *State) {
	if dst == nil || src == nil || dst == src {
		return
	}
	if len(src.starts) > 0 {
		if dst.starts == nil {
			dst.starts = slices.Clone(src.starts)
		} else {
			for i := range min(len(dst.starts), len(src.starts)) {
				dst.starts[i] = max(dst.starts[i], src.starts[i])
			}
		}
	}
	for i := range src.b {
		sb := &src.b[i]
		db, fresh := dst.bucket(sb.day)
		if fresh {
			*db = *sb
			db.vals = slices.Clone(sb.vals)
			db.counts = slices.Clone(sb.counts)
			continue
		}
		t.mergeBucket(db, sb)
	}
}

func (t *Trait) mergeBucket(d, s *bucket) {
	switch t.kind {
	case kCount, kFunnel:
		d.n += s.n
	case kSum, kAvg:
		d.n += s.n
		d.sum = d.sum.add(s.sum)
	case kMin:
		d.num = min(d.num, s.num)
	case kMax:
		d.num = max(d.num, s.num)
	case kFirst:
		if earlier(s.at, s.pos, s.val, d.at, d.pos, d.val) {
			d.at, d.pos, d.val = s.at, s.pos, s.val
		}
	case kLast:
		if earlier(d.at, d.pos, s.val, s.at, s.pos, d.val) {
			d.at, d.pos, d.val = s.at, s.pos, s.val
		}
	case kMostFrequent, kUniqueList, kUniqueCount:
		d.vals, d.counts = union(d.vals, d.counts, s.vals, s.counts, t.kind == kMostFrequent)
	}
}

// union merges two sorted value lists (adding counts when counted) and
// keeps the maxDistinct smallest.
func union(a []scalar, ac []int64, b []scalar, bc []int64, counted bool) ([]scalar, []int64) {
	return unionInto(nil, nil, a, ac, b, bc, counted)
}

// unionInto is union appending to vals[:0] and counts[:0], which must not
// overlap a, ac, b or bc.
func unionInto(vals []scalar, counts []int64, a []scalar, ac []int64, b []scalar, bc []int64, counted bool) ([]scalar, []int64) {
	vals, counts = vals[:0], counts[:0]
	if n := min(len(a)+len(b), maxDistinct); cap(vals) < n {
		vals = make([]scalar, 0, n)
		if counted {
			counts = make([]int64, 0, n)
		}
	}
	i, j := 0, 0
	for len(vals) < maxDistinct && (i < len(a) || j < len(b)) {
		c := 0
		switch {
		case i == len(a):
			c = 1
		case j == len(b):
			c = -1
		default:
			c = compare(a[i], b[j])
		}
		var n int64
		switch {
		case c < 0:
			vals = append(vals, a[i])
			if counted {
				n = ac[i]
			}
			i++
		case c > 0:
			vals = append(vals, b[j])
			if counted {
				n = bc[j]
			}
			j++
		default:
			vals = append(vals, a[i])
			if counted {
				n = ac[i] + bc[j]
			}
			i++
			j++
		}
		if counted {
			counts = append(counts, n)
		}
	}
	return vals, counts
}

// Value returns the trait's value at now from the buckets in the window
// (days from now−WindowDays+1 on; all buckets for an all-time trait), as
// JSON; nil means no value. count, unique_count and funnel give 0 when
// nothing was observed; the other kinds give no value.
func (t *Trait) Value(s *State, now time.Time) json.RawMessage {
	var bs []bucket
	if s != nil {
		i, _ := s.find(t.windowStart(now))
		bs = s.b[i:]
	}
	switch t.kind {
	case kCount, kFunnel:
		var n int64
		for i := range bs {
			n += bs[i].n
		}
		return strconv.AppendInt(nil, n, 10)
	case kSum, kAvg:
		if len(bs) == 0 {
			return nil
		}
		var sum i128
		var n int64
		for i := range bs {
			sum = sum.add(bs[i].sum)
			n += bs[i].n
		}
		if t.kind == kSum {
			return sum.appendDecimal(nil)
		}
		return appendNumber(nil, sum.float()/float64(n))
	case kMin, kMax:
		if len(bs) == 0 {
			return nil
		}
		v := bs[0].num
		for i := range bs[1:] {
			if t.kind == kMin {
				v = min(v, bs[i+1].num)
			} else {
				v = max(v, bs[i+1].num)
			}
		}
		return appendNumber(nil, v)
	case kFirst, kLast:
		if len(bs) == 0 {
			return nil
		}
		w := bs[0]
		for i := range bs[1:] {
			b := &bs[i+1]
			if t.kind == kFirst && earlier(b.at, b.pos, b.val, w.at, w.pos, w.val) ||
				t.kind == kLast && earlier(w.at, w.pos, b.val, b.at, b.pos, w.val) {
				w = *b
			}
		}
		return w.val.appendJSON(nil)
	}
	// Distinct values: their union over the window.
	var vals []scalar
	var counts []int64
	counted := t.kind == kMostFrequent
	if len(bs) == 1 {
		vals, counts = bs[0].vals, bs[0].counts
	} else {
		// Two buffers in turn: the union so far and the next.
		var spare []scalar
		var spareCounts []int64
		for i := range bs {
			spare, spareCounts = unionInto(spare, spareCounts, vals, counts, bs[i].vals, bs[i].counts, counted)
			vals, counts, spare, spareCounts = spare, spareCounts, vals, counts
		}
	}
	switch t.kind {
	case kUniqueCount:
		return strconv.AppendInt(nil, int64(len(vals)), 10)
	case kUniqueList:
		if len(vals) == 0 {
			return nil
		}
		out := []byte{'['}
		for i, v := range vals {
			if i > 0 {
				out = append(out, ',')
			}
			out = v.appendJSON(out)
		}
		return append(out, ']')
	case kMostFrequent:
		best := -1
		for i := range vals {
			// vals ascend: a later value wins only with a larger count.
			if best < 0 || counts[i] > counts[best] {
				best = i
			}
		}
		if best < 0 {
			return nil
		}
		return vals[best].appendJSON(nil)
	}
	return nil
}

// Expire drops the buckets that have left the window at now, so that the
// state stays small, and returns when the value may next change by time
// alone: the start of the UTC day on which the oldest remaining bucket
// leaves the window. It returns the zero time when no change by time is
// due (an all-time trait, or no buckets).
func (t *Trait) Expire(s *State, now time.Time) time.Time {
	if s == nil || t.window == 0 {
		return time.Time{}
	}
	i, _ := s.find(t.windowStart(now))
	if i > 0 {
		n := copy(s.b, s.b[i:])
		clear(s.b[n:])
		s.b = s.b[:n]
	}
	if len(s.b) == 0 {
		return time.Time{}
	}
	return time.Unix((s.b[0].day+t.window)*86400, 0).UTC()
}

// Empty reports whether s holds nothing: no bucket and no funnel chain in
// progress.
func (t *Trait) Empty(s *State) bool {
	if s == nil {
		return true
	}
	if len(s.b) > 0 {
		return false
	}
	for _, st := range s.starts {
		if st != noStart {
			return false
		}
	}
	return true
}
