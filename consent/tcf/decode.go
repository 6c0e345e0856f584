package tcf

import (
	"fmt"
	"strings"
	"time"
)

// MaxLength is the longest string Decode accepts, in bytes. Real TC strings
// are a few hundred bytes to a few kilobytes; the cap bounds the work and the
// memory one call can be made to spend.
const MaxLength = 64 << 10

// Segment types, the first three bits of every segment after the core.
const (
	segCore             = 0
	segDisclosedVendors = 1
	segAllowedVendors   = 2
	segPublisherTC      = 3
)

var segName = [...]string{"core", "disclosed vendors", "allowed vendors", "publisher TC"}

// Decode decodes a TC string: the core segment, then any of the Disclosed
// Vendors, Allowed Vendors (deprecated) and Publisher TC segments, in any
// order, separated by dots. Segments of a type the specification does not
// define (4–7) are skipped, so that a later revision adding one does not turn
// consent into an error; they must still be valid base64url. Bits after the
// last field of a segment (padding to a whole character) are ignored.
//
// s is not modified or retained. Errors are *Error.
func Decode(s string) (*TCString, error) {
	if s == "" {
		return nil, &Error{Code: CodeEmpty, Bit: -1, Msg: "empty string"}
	}
	if len(s) > MaxLength {
		return nil, &Error{Code: CodeTooLong, Bit: -1, Msg: fmt.Sprintf("%d bytes, more than the %d allowed", len(s), MaxLength)}
	}
	t := &TCString{}
	var seen [8]bool
	for i := 0; s != ""; i++ {
		part := s
		if j := strings.IndexByte(s, '.'); j >= 0 {
			part, s = s[:j], s[j+1:]
			if s == "" {
				return nil, &Error{Code: CodeEmpty, Bit: -1, Msg: "empty segment after the last dot"}
			}
		} else {
			s = ""
		}
		name := "segment after the core" // until its type is read
		if i == 0 {
			name = "core"
		}
		if part == "" {
			return nil, &Error{Code: CodeEmpty, Segment: name, Bit: -1, Msg: "empty segment"}
		}
		r, err := newReader(part, name)
		if err != nil {
			return nil, err
		}
		if i == 0 {
			decodeCore(r, t)
		} else {
			typ := int(r.read(3))
			if r.err != nil {
				return nil, r.err
			}
			if typ == segCore {
				return nil, r.fail(CodeSegment, 0, "a core segment after the first segment")
			}
			if seen[typ] {
				return nil, r.fail(CodeSegment, 0, fmt.Sprintf("segment type %d occurs twice", typ))
			}
			seen[typ] = true
			if typ < len(segName) {
				r.seg = segName[typ]
			}
			switch typ {
			case segDisclosedVendors:
				t.HasDisclosedVendors = true
				t.DisclosedVendors = r.vendorSection()
			case segAllowedVendors:
				t.HasAllowedVendors = true
				t.AllowedVendors = r.vendorSection()
			case segPublisherTC:
				t.Publisher = decodePublisherTC(r)
			}
		}
		if r.err != nil {
			return nil, r.err
		}
	}
	return t, nil
}

func decodeCore(r *reader, t *TCString) {
	t.Version = int(r.read(6))
	if r.err == nil && t.Version != 2 {
		r.fail(CodeVersion, 0, fmt.Sprintf("version %d; only version 2 is supported", t.Version))
		return
	}
	t.Created = deciseconds(r.read(36))
	t.LastUpdated = deciseconds(r.read(36))
	t.CmpID = int(r.read(12))
	t.CmpVersion = int(r.read(12))
	t.ConsentScreen = int(r.read(6))
	t.ConsentLanguage = r.letters("ConsentLanguage")
	t.VendorListVersion = int(r.read(12))
	t.TCFPolicyVersion = int(r.read(6))
	t.IsServiceSpecific = r.bit()
	t.UseNonStandardTexts = r.bit()
	t.SpecialFeatureOptIns = r.bitField(12)
	t.PurposesConsent = r.bitField(24)
	t.PurposesLITransparency = r.bitField(24)
	t.PurposeOneTreatment = r.bit()
	t.PublisherCC = r.letters("PublisherCC")
	t.VendorConsents = r.vendorSection()
	t.VendorLegitimateInterests = r.vendorSection()
	n := int(r.read(12)) // NumPubRestrictions
	for i := 0; i < n && r.err == nil; i++ {
		var pr PublisherRestriction
		pr.PurposeID = int(r.read(6))
		pr.Type = int(r.read(2))
		pr.Vendors = r.rangeEntries(-1)
		if r.err == nil {
			t.PublisherRestrictions = append(t.PublisherRestrictions, pr)
		}
	}
}

func decodePublisherTC(r *reader) *PublisherTC {
	p := &PublisherTC{}
	p.PurposesConsent = r.bitField(24)
	p.PurposesLITransparency = r.bitField(24)
	p.NumCustomPurposes = int(r.read(6))
	p.CustomPurposesConsent = r.bitField(p.NumCustomPurposes)
	p.CustomPurposesLITransparency = r.bitField(p.NumCustomPurposes)
	return p
}

// deciseconds converts an epoch-deciseconds field to UTC time.
func deciseconds(ds uint64) time.Time {
	return time.UnixMilli(int64(ds) * 100).UTC()
}

// reader reads big-endian bit fields from the 6-bit characters of one
// base64url segment. Errors are sticky: after the first, every read returns
// zero, and loops stop on r.err.
type reader struct {
	buf  []byte // bits packed most significant first
	nbit int
	pos  int
	seg  string
	err  *Error
}

// b64 maps a base64url character to its 6-bit value, or 0xff.
var b64 = func() (t [256]byte) {
	const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
	for i := range t {
		t[i] = 0xff
	}
	for i := 0; i < len(alphabet); i++ {
		t[alphabet[i]] = byte(i)
	}
	return t
}()

func newReader(s, seg string) (*reader, error) {
	nbit := 6 * len(s)
	buf := make([]byte, (nbit+7)/8)
	var acc uint32
	var n, o int
	for i := 0; i < len(s); i++ {
		v := b64[s[i]]
		if v == 0xff {
			return nil, &Error{Code: CodeBase64, Segment: seg, Bit: 6 * i,
				Msg: fmt.Sprintf("character %q at offset %d is not base64url (A-Z a-z 0-9 - _, no padding)", s[i], i)}
		}
		acc = acc<<6 | uint32(v)
		n += 6
		for n >= 8 {
			n -= 8
			buf[o] = byte(acc >> n)
			o++
		}
	}
	if n > 0 {
		buf[o] = byte(acc << (8 - n))
	}
	return &reader{buf: buf, nbit: nbit, seg: seg}, nil
}

func (r *reader) fail(code Code, bit int, msg string) *Error {
	if r.err == nil {
		r.err = &Error{Code: code, Segment: r.seg, Bit: bit, Msg: msg}
	}
	return r.err
}

// read returns the next n bits (n <= 64) as an unsigned integer.
func (r *reader) read(n int) uint64 {
	if r.err != nil {
		return 0
	}
	if n > r.nbit-r.pos {
		r.fail(CodeTruncated, r.pos, fmt.Sprintf("needs %d more bits, %d left", n, r.nbit-r.pos))
		return 0
	}
	var v uint64
	for n > 0 {
		off := r.pos & 7
		take := 8 - off
		if take > n {
			take = n
		}
		b := uint64(r.buf[r.pos>>3]) >> (8 - off - take) & (1<<take - 1)
		v = v<<take | b
		r.pos += take
		n -= take
	}
	return v
}

func (r *reader) bit() bool { return r.read(1) == 1 }

// letters reads two 6-bit letters, a=0 … z=25, as upper case.
func (r *reader) letters(field string) string {
	start := r.pos
	a, b := r.read(6), r.read(6)
	if r.err != nil {
		return ""
	}
	if a > 25 || b > 25 {
		r.fail(CodeField, start, fmt.Sprintf("%s letter values %d, %d: letters are 0 (A) to 25 (Z)", field, a, b))
		return ""
	}
	return string([]byte{'A' + byte(a), 'A' + byte(b)})
}

// bitField reads n bits; bit i (from 0, left to right) is id i+1.
func (r *reader) bitField(n int) IDSet {
	s := IDSet{max: n}
	if n > r.nbit-r.pos {
		r.read(n) // records the truncation
		return s
	}
	lo := 0 // start of the current run of ones, 0 when none
	for id := 1; id <= n; id++ {
		p := r.pos + id - 1
		if r.buf[p>>3]>>(7-p&7)&1 == 1 {
			if lo == 0 {
				lo = id
			}
		} else if lo != 0 {
			s.add(lo, id-1)
			lo = 0
		}
	}
	if lo != 0 {
		s.add(lo, n)
	}
	r.pos += n
	return s
}

// vendorSection reads MaxVendorId, IsRangeEncoding and then a bit field or
// range entries.
func (r *reader) vendorSection() IDSet {
	maxID := int(r.read(16))
	if r.bit() {
		s := r.rangeEntries(maxID)
		s.max = maxID
		return s
	}
	return r.bitField(maxID)
}

// rangeEntries reads NumEntries and the entries. Entries must be ascending
// and disjoint, and, when maxID >= 0, within 1..maxID. With maxID < 0 (a
// publisher restriction, which has no MaxVendorId) the set's Max is its
// highest id.
func (r *reader) rangeEntries(maxID int) IDSet {
	var s IDSet
	n := int(r.read(12))
	prev := 0
	for i := 0; i < n && r.err == nil; i++ {
		at := r.pos
		isRange := r.bit()
		lo := int(r.read(16))
		hi := lo
		if isRange {
			hi = int(r.read(16))
		}
		switch {
		case r.err != nil:
		case lo == 0:
			r.fail(CodeRangeBounds, at, fmt.Sprintf("range entry %d names vendor 0; vendor ids start at 1", i+1))
		case hi < lo:
			r.fail(CodeRangeOrder, at, fmt.Sprintf("range entry %d ends (%d) before it starts (%d)", i+1, hi, lo))
		case lo <= prev:
			r.fail(CodeRangeOrder, at, fmt.Sprintf("range entry %d starts at %d, not after the previous entry's end %d", i+1, lo, prev))
		case maxID >= 0 && hi > maxID:
			r.fail(CodeRangeBounds, at, fmt.Sprintf("range entry %d reaches vendor %d, above MaxVendorId %d", i+1, hi, maxID))
		default:
			s.add(lo, hi)
			prev = hi
		}
	}
	if maxID < 0 {
		s.max = prev
	}
	return s
}
