package trait

import (
	"math"
	"math/big"
	"math/bits"
	"strconv"
	"strings"
)

// Caps that bound a state's size.
const (
	// maxDistinct is the number of distinct values a bucket of a
	// most_frequent, unique_list or unique_count trait keeps: the smallest
	// ones, so that what is kept does not depend on the order of events.
	maxDistinct = 1000
	// maxValueLen is the longest string value observed, in bytes; longer
	// strings are not observed.
	maxValueLen = 1024
	// maxSummand is the largest magnitude of a number that sum and avg
	// observe.
	maxSummand = 1e18
	// sumScale is the resolution of sums: 1e-9.
	sumScale = 1e9
)

// Scalar kinds, in their sort order.
const (
	sBool uint8 = iota + 1
	sNumber
	sString
)

// scalar is a JSON string, number or bool (n is 0 or 1).
type scalar struct {
	k uint8
	n float64
	s string
}

// compare orders scalars: false < true < numbers < strings (bytewise).
func compare(a, b scalar) int {
	if a.k != b.k {
		if a.k < b.k {
			return -1
		}
		return 1
	}
	switch a.k {
	case sString:
		return strings.Compare(a.s, b.s)
	default:
		switch {
		case a.n < b.n:
			return -1
		case a.n > b.n:
			return 1
		}
	}
	return 0
}

func (v scalar) appendJSON(b []byte) []byte {
	switch v.k {
	case sBool:
		return strconv.AppendBool(b, v.n != 0)
	case sNumber:
		return appendNumber(b, v.n)
	case sString:
		return appendString(b, v.s)
	}
	return append(b, "null"...)
}

// appendString writes s (valid UTF-8) as a JSON string.
func appendString(b []byte, s string) []byte {
	const hex = "0123456789abcdef"
	b = append(b, '"')
	start := 0
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c >= 0x20 && c != '"' && c != '\\' {
			continue
		}
		b = append(b, s[start:i]...)
		switch c {
		case '"', '\\':
			b = append(b, '\\', c)
		case '\n':
			b = append(b, '\\', 'n')
		case '\t':
			b = append(b, '\\', 't')
		case '\r':
			b = append(b, '\\', 'r')
		default:
			b = append(b, '\\', 'u', '0', '0', hex[c>>4], hex[c&0xf])
		}
		start = i + 1
	}
	b = append(b, s[start:]...)
	return append(b, '"')
}

// appendNumber writes f like encoding/json does.
func appendNumber(b []byte, f float64) []byte {
	if math.IsInf(f, 0) || math.IsNaN(f) {
		f = math.Copysign(math.MaxFloat64, f)
	}
	abs := math.Abs(f)
	format := byte('f')
	if abs != 0 && (abs < 1e-6 || abs >= 1e21) {
		format = 'e'
	}
	b = strconv.AppendFloat(b, f, format, -1, 64)
	if format == 'e' {
		// clean up e-09 to e-9
		n := len(b)
		if n >= 4 && b[n-4] == 'e' && b[n-3] == '-' && b[n-2] == '0' {
			b[n-2] = b[n-1]
			b = b[:n-1]
		}
	}
	return b
}

// i128 is a signed 128-bit integer (hi·2⁶⁴ + lo): sums are kept in units of
// 1e-9 so that adding is exact, hence independent of order.
type i128 struct {
	hi int64
	lo uint64
}

// fixedText converts a JSON number's text (|v| <= maxSummand) to units of
// 1e-9 exactly, rounding half away from zero at the tenth decimal.
func fixedText(raw []byte) (i128, bool) {
	i := 0
	neg := false
	if i < len(raw) && raw[i] == '-' {
		neg = true
		i++
	}
	start := i
	for i < len(raw) && raw[i] >= '0' && raw[i] <= '9' {
		i++
	}
	intEnd := i
	fracStart, fracEnd := i, i
	if i < len(raw) && raw[i] == '.' {
		i++
		fracStart = i
		for i < len(raw) && raw[i] >= '0' && raw[i] <= '9' {
			i++
		}
		fracEnd = i
	}
	if intEnd == start || (fracStart > intEnd && fracEnd == fracStart) {
		return i128{}, false
	}
	exp := 0
	if i < len(raw) && (raw[i] == 'e' || raw[i] == 'E') {
		i++
		eneg := false
		if i < len(raw) && (raw[i] == '+' || raw[i] == '-') {
			eneg = raw[i] == '-'
			i++
		}
		if i == len(raw) {
			return i128{}, false
		}
		for ; i < len(raw); i++ {
			c := raw[i]
			if c < '0' || c > '9' {
				return i128{}, false
			}
			if exp < 100_000 {
				exp = exp*10 + int(c-'0')
			}
		}
		if eneg {
			exp = -exp
		}
	}
	if i != len(raw) {
		return i128{}, false
	}
	// The digit at index k of int+frac digits is worth 10^(point-1-k) units
	// of 1e-9.
	point := intEnd - start + exp + 9
	digits := func(k int) (byte, bool) { // the k-th digit of int then frac
		if n := intEnd - start; k < n {
			return raw[start+k], true
		} else if k-n < fracEnd-fracStart {
			return raw[fracStart+k-n], true
		}
		return 0, false
	}
	var hi, lo uint64
	k := 0
	for ; ; k++ {
		c, ok := digits(k)
		if !ok {
			// Trailing zeros up to the units.
			for pw := point - k; pw > 0 && (hi|lo) != 0 && hi < 1<<62; pw-- {
				hi, lo = mul10(hi, lo)
			}
			break
		}
		if pw := point - 1 - k; pw < 0 {
			if pw == -1 && c >= '5' {
				var carry uint64
				lo, carry = bits.Add64(lo, 1, 0)
				hi += carry
			}
			break
		}
		if hi >= 1<<62 {
			return i128{}, false
		}
		hi, lo = mul10(hi, lo)
		var carry uint64
		lo, carry = bits.Add64(lo, uint64(c-'0'), 0)
		hi += carry
	}
	if hi >= 1<<62 {
		return i128{}, false
	}
	v := i128{hi: int64(hi), lo: lo}
	if neg {
		v = v.neg()
	}
	return v, true
}

func mul10(hi, lo uint64) (uint64, uint64) {
	h, l := bits.Mul64(lo, 10)
	return hi*10 + h, l
}

func (a i128) neg() i128 {
	lo, c := bits.Add64(^a.lo, 1, 0)
	return i128{hi: ^a.hi + int64(c), lo: lo}
}

// add adds, saturating at the ends of the range.
func (a i128) add(b i128) i128 {
	lo, c := bits.Add64(a.lo, b.lo, 0)
	hi := a.hi + b.hi + int64(c)
	if (a.hi >= 0) == (b.hi >= 0) && (hi >= 0) != (a.hi >= 0) {
		if a.hi >= 0 {
			return i128{hi: math.MaxInt64, lo: math.MaxUint64}
		}
		return i128{hi: math.MinInt64}
	}
	return i128{hi: hi, lo: lo}
}

func (a i128) float() float64 {
	if a.hi < 0 {
		if a.hi == math.MinInt64 && a.lo == 0 {
			return -math.Ldexp(1, 127) / sumScale
		}
		return -a.neg().float()
	}
	return (float64(a.hi)*(1<<64) + float64(a.lo)) / sumScale
}

// appendDecimal writes a as an exact decimal number of units 1e-9.
func (a i128) appendDecimal(b []byte) []byte {
	var digits []byte
	if (a.hi == 0 && a.lo < 1<<63) || (a.hi == -1 && a.lo >= 1<<63) {
		digits = strconv.AppendInt(nil, int64(a.lo), 10)
	} else {
		n := new(big.Int).SetInt64(a.hi)
		n.Lsh(n, 64)
		n.Add(n, new(big.Int).SetUint64(a.lo))
		digits = n.Append(nil, 10)
	}
	if digits[0] == '-' {
		b = append(b, '-')
		digits = digits[1:]
	}
	const frac = 9
	for len(digits) <= frac {
		digits = append([]byte{'0'}, digits...)
	}
	intPart, fracPart := digits[:len(digits)-frac], digits[len(digits)-frac:]
	for len(fracPart) > 0 && fracPart[len(fracPart)-1] == '0' {
		fracPart = fracPart[:len(fracPart)-1]
	}
	b = append(b, intPart...)
	if len(fracPart) > 0 {
		b = append(b, '.')
		b = append(b, fracPart...)
	}
	return b
}
