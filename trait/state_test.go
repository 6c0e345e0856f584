package trait

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"
	"time"
)

func dayStart(t time.Time) time.Time { return t.Truncate(24 * time.Hour) }

func TestExpire(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		def  Definition
	}{
		{"count", Definition{Name: "n", Kind: "count", WindowDays: 7}},
		{"sum", Definition{Name: "n", Kind: "sum", Property: "properties.v", WindowDays: 7}},
		{"unique_count", Definition{Name: "n", Kind: "unique_count", Property: "properties.v", WindowDays: 7}},
		{"funnel", Definition{Name: "n", Kind: "funnel", Events: []string{"a", "b"}, Within: "1h", WindowDays: 7}},
	}
	// Events 10, 3 and 0 days before base: one value each.
	evs := []ev{
		{name: "a", at: days(10), props: `{"v":1}`}, {name: "b", at: days(10).Add(time.Minute), props: `{"v":1}`},
		{name: "a", at: days(3), props: `{"v":2}`}, {name: "b", at: days(3).Add(time.Minute), props: `{"v":2}`},
		{name: "a", at: days(0), props: `{"v":4}`}, {name: "b", at: days(0).Add(time.Minute), props: `{"v":4}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			tr := mustCompile(t, tt.def)
			s := fold(tr, evs)
			if len(s.b) != 3 {
				t.Fatalf("%d buckets, want 3", len(s.b))
			}
			per := func(n int) string { // the value of n events' worth
				switch tt.name {
				case "sum":
					return []string{"<nil>", "8", "12"}[n]
				case "count":
					return fmt.Sprint(2 * n)
				}
				return fmt.Sprint(n)
			}
			// At base: the events of days 3 and 0; the first bucket left.
			if got := str(tr.Value(s, base)); got != per(2) {
				t.Errorf("Value(base) = %s, want %s", got, per(2))
			}
			next := tr.Expire(s, base)
			if len(s.b) != 2 {
				t.Errorf("after Expire(base): %d buckets, want 2", len(s.b))
			}
			want := dayStart(days(3)).AddDate(0, 0, 7)
			if !next.Equal(want) {
				t.Errorf("Expire(base) = %v, want %v", next, want)
			}
			// Just before the change the value holds; at it, it falls.
			if got := str(tr.Value(s, next.Add(-time.Nanosecond))); got != per(2) {
				t.Errorf("Value(next-1ns) = %s, want %s", got, per(2))
			}
			if got := str(tr.Value(s, next)); got != per(1) {
				t.Errorf("Value(next) = %s, want %s", got, per(1))
			}
			next2 := tr.Expire(s, next)
			if want := dayStart(base).AddDate(0, 0, 7); !next2.Equal(want) || len(s.b) != 1 {
				t.Errorf("Expire(next) = %v with %d buckets, want %v with 1", next2, len(s.b), want)
			}
			if got := tr.Expire(s, next2); !got.IsZero() || len(s.b) != 0 {
				t.Errorf("Expire(next2) = %v with %d buckets, want zero time and none", got, len(s.b))
			}
			if got := str(tr.Value(s, next2)); got != per(0) {
				t.Errorf("Value(next2) = %s, want %s", got, per(0))
			}
			if tt.name != "funnel" && !tr.Empty(s) {
				t.Error("not Empty after everything expired")
			}
		})
	}
	t.Run("all time never expires", func(t *testing.T) {
		t.Parallel()
		tr := mustCompile(t, Definition{Name: "n", Kind: "count"})
		s := fold(tr, evs)
		if got := tr.Expire(s, base.AddDate(100, 0, 0)); !got.IsZero() || str(tr.Value(s, base.AddDate(100, 0, 0))) != "6" {
			t.Errorf("Expire = %v, Value = %s", got, tr.Value(s, base))
		}
	})
}

func TestFunnel(t *testing.T) {
	t.Parallel()
	h := func(n int) time.Time { return days(5).Add(time.Duration(n) * time.Minute) }
	tests := []struct {
		name   string
		steps  []string
		within string
		evs    []ev
		want   string
	}{
		{"in order", []string{"a", "b"}, "1h", []ev{{name: "a", at: h(0)}, {name: "b", at: h(30)}}, "1"},
		{"exactly within", []string{"a", "b"}, "1h", []ev{{name: "a", at: h(0)}, {name: "b", at: h(60)}}, "1"},
		{"too slow", []string{"a", "b"}, "1h", []ev{{name: "a", at: h(0)}, {name: "b", at: h(61)}}, "0"},
		{"wrong order", []string{"a", "b"}, "1h", []ev{{name: "b", at: h(0)}, {name: "a", at: h(1)}}, "0"},
		{"logged late, stamped before the start", []string{"a", "b"}, "1h", []ev{{name: "a", at: h(10)}, {name: "b", at: h(5)}}, "0"},
		{"latest start wins", []string{"a", "b"}, "1h", []ev{{name: "a", at: h(0)}, {name: "a", at: h(50)}, {name: "b", at: h(100)}}, "1"},
		{"consumed", []string{"a", "b"}, "1h", []ev{{name: "a", at: h(0)}, {name: "b", at: h(1)}, {name: "b", at: h(2)}}, "1"},
		{"twice", []string{"a", "b"}, "1h", []ev{{name: "a", at: h(0)}, {name: "b", at: h(1)}, {name: "a", at: h(2)}, {name: "b", at: h(3)}}, "2"},
		{"three steps", []string{"a", "b", "c"}, "1h", []ev{{name: "a", at: h(0)}, {name: "c", at: h(1)}, {name: "b", at: h(2)}, {name: "c", at: h(3)}}, "1"},
		{"three steps too slow", []string{"a", "b", "c"}, "1h", []ev{{name: "a", at: h(0)}, {name: "b", at: h(2)}, {name: "c", at: h(61)}}, "0"},
		{"skipped step", []string{"a", "b", "c"}, "1h", []ev{{name: "a", at: h(0)}, {name: "c", at: h(3)}}, "0"},
		{"repeated name", []string{"a", "a"}, "1h", []ev{{name: "a", at: h(0)}, {name: "a", at: h(1)}, {name: "a", at: h(2)}}, "1"},
		{"repeated name, three", []string{"a", "a", "a"}, "1h", []ev{{name: "a", at: h(0)}, {name: "a", at: h(1)}}, "0"},
		{"days", []string{"a", "b"}, "2d", []ev{{name: "a", at: h(0)}, {name: "b", at: h(47 * 60)}}, "1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			tr := mustCompile(t, Definition{Name: "f", Kind: "funnel", Events: tt.steps, Within: tt.within})
			if got := str(tr.Value(fold(tr, tt.evs), base)); got != tt.want {
				t.Errorf("Value = %s, want %s", got, tt.want)
			}
		})
	}
	t.Run("merge keeps the latest start", func(t *testing.T) {
		t.Parallel()
		tr := mustCompile(t, Definition{Name: "f", Kind: "funnel", Events: []string{"a", "b"}, Within: "1h"})
		a := fold(tr, []ev{{name: "a", at: h(0)}})
		b := fold(tr, []ev{{name: "a", at: h(30)}, {name: "b", at: h(31)}})
		tr.Merge(a, b)
		if got := str(tr.Value(a, base)); got != "1" {
			t.Errorf("merged Value = %s, want 1", got)
		}
		if !tr.Observe(a, ev{name: "b", at: h(59)}.event(9)) || str(tr.Value(a, base)) != "2" {
			t.Errorf("the chain started at h(0) should complete: Value = %s", tr.Value(a, base))
		}
	})
}

// randomEvents makes events with values drawn from a small pool (so that
// values repeat), over 20 days, some without the property or with one of
// an unusable type.
func randomEvents(r *rand.Rand, n, pool int) []ev {
	vals := []string{`true`, `false`, `null`, `{"x":1}`, `[1]`, `"s"`, `0.1`, `0.2`, `0.3`, `-7.25`, `19.99`, `1e-7`, `3`, `3.0`}
	for i := range pool {
		vals = append(vals, fmt.Sprintf(`"v%03d"`, i), fmt.Sprintf(`%d.%02d`, i, i%100))
	}
	names := []string{"a", "b", "c"}
	out := make([]ev, n)
	for i := range out {
		props := `{}`
		if r.IntN(10) > 0 {
			props = `{"v":` + vals[r.IntN(len(vals))] + `}`
		}
		// Timestamps collide now and then, to exercise tie-breaking.
		at := days(r.IntN(20)).Add(time.Duration(r.IntN(50)) * time.Hour)
		out[i] = ev{name: names[r.IntN(len(names))], at: at, props: props}
	}
	return out
}

func TestOrderIndependence(t *testing.T) {
	t.Parallel()
	kinds := []string{"count", "sum", "avg", "min", "max", "most_frequent", "first", "last", "unique_list", "unique_count"}
	for _, kind := range kinds {
		for _, window := range []int{0, 1, 7} {
			for _, pool := range []int{20, 1500} { // 1500 exceeds the cap of distinct values
				t.Run(fmt.Sprintf("%s/%dd/%d", kind, window, pool), func(t *testing.T) {
					t.Parallel()
					d := Definition{Name: "p", Kind: kind, Property: "properties.v", WindowDays: window, Events: []string{"a", "b"}}
					tr := mustCompile(t, d)
					r := rand.New(rand.NewPCG(uint64(len(kind)), uint64(window*10000+pool)))
					n := 300
					if pool > 100 {
						n = 5000
					}
					evs := randomEvents(r, n, pool)
					events := make([]*Event, len(evs))
					for i, e := range evs {
						events[i] = e.event(int64(i + 1))
					}
					ref := &State{}
					for _, e := range events {
						tr.Observe(ref, e)
					}
					nows := []time.Time{base, base.AddDate(0, 0, 5), days(10)}
					for round := range 5 {
						// Shuffle, deal into k states, merge them in random order.
						perm := r.Perm(len(events))
						k := 1 + r.IntN(6)
						parts := make([]*State, k)
						for i := range parts {
							parts[i] = &State{}
						}
						for _, i := range perm {
							tr.Observe(parts[r.IntN(k)], events[i])
						}
						r.Shuffle(k, func(i, j int) { parts[i], parts[j] = parts[j], parts[i] })
						for len(parts) > 1 {
							i := r.IntN(len(parts) - 1)
							tr.Merge(parts[i], parts[i+1])
							parts = append(parts[:i+1], parts[i+2:]...)
						}
						got := parts[0]
						for _, now := range nows {
							if a, b := str(tr.Value(got, now)), str(tr.Value(ref, now)); a != b {
								t.Fatalf("round %d, now %v: Value = %.200s, in log order %.200s", round, now, a, b)
							}
						}
						if !bytes.Equal(tr.Encode(got), tr.Encode(ref)) {
							t.Fatalf("round %d: encoded states differ", round)
						}
					}
				})
			}
		}
	}
}

func TestMergeLeavesSourceAlone(t *testing.T) {
	t.Parallel()
	tr := mustCompile(t, Definition{Name: "u", Kind: "most_frequent", Property: "properties.v", WindowDays: 3})
	a := fold(tr, []ev{{at: days(1), props: `{"v":"x"}`}})
	b := fold(tr, []ev{{at: days(1), props: `{"v":"y"}`}, {at: days(2), props: `{"v":"z"}`}})
	before := tr.Encode(b)
	tr.Merge(a, b)
	tr.Observe(a, ev{at: days(2), props: `{"v":"a"}`}.event(10))
	tr.Observe(a, ev{at: days(2), props: `{"v":"z"}`}.event(11))
	if !bytes.Equal(tr.Encode(b), before) {
		t.Error("Merge let dst share memory with src")
	}
	if got := str(tr.Value(a, base)); got != `"z"` {
		t.Errorf("Value = %s, want \"z\"", got)
	}
	tr.Merge(a, a) // no-op
	tr.Merge(a, nil)
	if got := str(tr.Value(a, base)); got != `"z"` {
		t.Errorf("after self-merge Value = %s", got)
	}
}

func TestSums(t *testing.T) {
	t.Parallel()
	tests := []struct {
		vals []string
		sum  string
		avg  string
	}{
		{[]string{"0.1", "0.2"}, "0.3", "0.15"},
		{[]string{"19.99", "19.99", "19.99"}, "59.97", "19.99"},
		{[]string{"1e18", "1e18"}, "2000000000000000000", "1000000000000000000"},
		{[]string{"1e19"}, "<nil>", "<nil>"}, // beyond maxSummand
		{[]string{"-1e-9", "0"}, "-0.000000001", "-5e-10"},
		{[]string{"1e-10"}, "0", "0"},
		{[]string{"-0"}, "0", "0"},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.vals, "+"), func(t *testing.T) {
			t.Parallel()
			var evs []ev
			for _, v := range tt.vals {
				evs = append(evs, ev{at: base, props: `{"v":` + v + `}`})
			}
			for kind, want := range map[string]string{"sum": tt.sum, "avg": tt.avg} {
				tr := mustCompile(t, Definition{Name: "s", Kind: kind, Property: "properties.v"})
				if got := str(tr.Value(fold(tr, evs), base)); got != want {
					t.Errorf("%s = %s, want %s", kind, got, want)
				}
			}
		})
	}
	t.Run("i128", func(t *testing.T) {
		t.Parallel()
		fixed := func(s string) i128 {
			v, ok := fixedText([]byte(s))
			if !ok {
				t.Fatalf("fixedText(%s) failed", s)
			}
			return v
		}
		big := fixed("1e18")
		var s i128
		for range 1000 {
			s = s.add(big)
		}
		if got := string(s.appendDecimal(nil)); got != "1000000000000000000000" {
			t.Errorf("1000 × 1e18 = %s", got)
		}
		s = s.add(fixed("-1e18").add(fixed("-0.5")))
		if got := string(s.appendDecimal(nil)); got != "998999999999999999999.5" {
			t.Errorf("got %s", got)
		}
		if got := string(fixed("-1000000000000000000.0").appendDecimal(nil)); got != "-1000000000000000000" {
			t.Errorf("got %s", got)
		}
	})
}

func TestObserveReportsChange(t *testing.T) {
	t.Parallel()
	tests := []struct {
		kind string
		vals []string
		want []bool
	}{
		{"count", []string{"1", "1"}, []bool{true, true}},
		{"min", []string{"5", "7", "3", "3"}, []bool{true, false, true, false}},
		{"max", []string{"5", "7", "3"}, []bool{true, true, false}},
		{"unique_list", []string{`"a"`, `"b"`, `"a"`}, []bool{true, true, false}},
		{"most_frequent", []string{`"a"`, `"a"`}, []bool{true, true}},
		{"first", []string{`"a"`, `"b"`}, []bool{true, false}},
		{"last", []string{`"a"`, `"b"`}, []bool{true, true}},
		{"sum", []string{`"a"`, `1`, `null`}, []bool{false, true, false}},
	}
	for _, tt := range tests {
		t.Run(tt.kind, func(t *testing.T) {
			t.Parallel()
			d := Definition{Name: "c", Kind: tt.kind, Property: "properties.v"}
			tr := mustCompile(t, d)
			s := &State{}
			for i, v := range tt.vals {
				e := ev{at: base.Add(time.Duration(i) * time.Second), props: `{"v":` + v + `}`}
				if got := tr.Observe(s, e.event(int64(i+1))); got != tt.want[i] {
					t.Errorf("Observe #%d (%s) = %v, want %v", i, v, got, tt.want[i])
				}
			}
		})
	}
	t.Run("type and name", func(t *testing.T) {
		t.Parallel()
		tr := mustCompile(t, Definition{Name: "c", Kind: "count", Events: []string{"a"}})
		s := &State{}
		if tr.Observe(s, ev{typ: "page", name: "a", at: base}.event(1)) || tr.Observe(s, ev{name: "b", at: base}.event(2)) || tr.Observe(nil, ev{name: "a"}.event(3)) {
			t.Error("observed an event of another type or name")
		}
		if !tr.Empty(s) || !tr.Empty(nil) {
			t.Error("not Empty")
		}
	})
}

func TestEncodeDecode(t *testing.T) {
	t.Parallel()
	kinds := []string{"count", "sum", "avg", "min", "max", "most_frequent", "first", "last", "unique_list", "unique_count", "funnel"}
	r := rand.New(rand.NewPCG(1, 2))
	evs := randomEvents(r, 400, 30)
	for _, kind := range kinds {
		for _, window := range []int{0, 30} {
			t.Run(fmt.Sprintf("%s/%d", kind, window), func(t *testing.T) {
				t.Parallel()
				d := Definition{Name: "e", Kind: kind, Property: "properties.v", WindowDays: window}
				if kind == "funnel" {
					d.Property, d.Events, d.Within = "", []string{"a", "b", "c"}, "1d"
				}
				tr := mustCompile(t, d)
				for _, s := range []*State{{}, fold(tr, evs[:1]), fold(tr, evs)} {
					enc := tr.Encode(s)
					got, err := tr.Decode(enc)
					if err != nil {
						t.Fatalf("Decode(Encode(s)): %v", err)
					}
					if !bytes.Equal(tr.Encode(got), enc) {
						t.Error("Encode(Decode(b)) != b")
					}
					if a, b := str(tr.Value(got, base)), str(tr.Value(s, base)); a != b {
						t.Errorf("decoded Value = %s, want %s", a, b)
					}
					if tr.Empty(got) != tr.Empty(s) {
						t.Error("Empty differs")
					}
					for cut := range enc {
						if _, err := tr.Decode(enc[:cut]); err == nil {
							t.Fatalf("Decode of %d of %d bytes succeeded", cut, len(enc))
						}
					}
					if _, err := tr.Decode(append(enc, 0)); err == nil {
						t.Error("Decode accepted a trailing byte")
					}
				}
			})
		}
	}
	t.Run("other kind or version", func(t *testing.T) {
		t.Parallel()
		count := mustCompile(t, Definition{Name: "e", Kind: "count"})
		sum := mustCompile(t, Definition{Name: "e", Kind: "sum", Property: "properties.v"})
		enc := count.Encode(fold(count, []ev{{at: base}}))
		if _, err := sum.Decode(enc); err == nil {
			t.Error("a sum decoded a count's state")
		}
		enc[0] = 9
		if _, err := count.Decode(enc); err == nil {
			t.Error("decoded version 9")
		}
	})
}
