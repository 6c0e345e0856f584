package tcf

import "sort"

// IDSet is a set of positive ids (purposes, special features or vendors)
// read from a bit field or from range entries. It is stored as sorted,
// disjoint, non-adjacent runs of ids, so a range "1-65535" costs one run, and
// a bit field costs at most one run per two bits read. The zero value is the
// empty set.
type IDSet struct {
	max  int   // the highest id the field could hold: its width, or MaxVendorId
	runs []run // sorted, disjoint, non-adjacent
}

type run struct{ lo, hi int } // inclusive

// Has reports whether id is in the set.
func (s IDSet) Has(id int) bool {
	if id <= 0 || len(s.runs) == 0 {
		return false
	}
	// First run whose hi >= id.
	i := sort.Search(len(s.runs), func(i int) bool { return s.runs[i].hi >= id })
	return i < len(s.runs) && s.runs[i].lo <= id
}

// Max is the highest id the encoded field covers: the field's width for
// purpose and special-feature bit fields, MaxVendorId for a vendor section,
// and the highest vendor listed for a publisher restriction. Ids above Max
// are not in the set.
func (s IDSet) Max() int { return s.max }

// Len is the number of ids in the set.
func (s IDSet) Len() int {
	n := 0
	for _, r := range s.runs {
		n += r.hi - r.lo + 1
	}
	return n
}

// IDs lists the ids in ascending order, nil for the empty set. It allocates
// one int per id; prefer Has for lookups.
func (s IDSet) IDs() []int {
	if len(s.runs) == 0 {
		return nil
	}
	out := make([]int, 0, s.Len())
	for _, r := range s.runs {
		for id := r.lo; id <= r.hi; id++ {
			out = append(out, id)
		}
	}
	return out
}

// add appends the run [lo, hi]; runs must be added in ascending order, not
// overlapping (callers check). Adjacent runs are merged, so the same set has
// one representation whether it came from a bit field or from ranges.
func (s *IDSet) add(lo, hi int) {
	if n := len(s.runs); n > 0 && s.runs[n-1].hi+1 == lo {
		s.runs[n-1].hi = hi
		return
	}
	s.runs = append(s.runs, run{lo, hi})
}
