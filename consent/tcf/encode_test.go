package tcf

// A TC string encoder for tests only: the package itself never encodes
// (Kith forwards the customer's string unchanged). Written from the
// specification's field tables.

import (
	"strings"
	"time"
)

const b64Alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"

// bitWriter appends big-endian bit fields.
type bitWriter struct{ bits []byte } // one byte per bit, 0 or 1

func (w *bitWriter) int(v uint64, n int) {
	for i := n - 1; i >= 0; i-- {
		w.bits = append(w.bits, byte(v>>i&1))
	}
}

func (w *bitWriter) bool(b bool) {
	if b {
		w.int(1, 1)
	} else {
		w.int(0, 1)
	}
}

// string pads to whole 6-bit characters with zeros and encodes base64url.
func (w *bitWriter) string() string {
	var sb strings.Builder
	for i := 0; i < len(w.bits); i += 6 {
		v := 0
		for j := 0; j < 6; j++ {
			v <<= 1
			if i+j < len(w.bits) {
				v |= int(w.bits[i+j])
			}
		}
		sb.WriteByte(b64Alphabet[v])
	}
	return sb.String()
}

func (w *bitWriter) letters(s string) {
	w.int(uint64(s[0]-'A'), 6)
	w.int(uint64(s[1]-'A'), 6)
}

func (w *bitWriter) time(t time.Time) { w.int(uint64(t.UnixMilli()/100), 36) }

// bitField writes width bits for ids 1..width.
func (w *bitWriter) bitField(s IDSet, width int) {
	for id := 1; id <= width; id++ {
		w.bool(s.Has(id))
	}
}

// ranges writes NumEntries and one entry per run of s.
func (w *bitWriter) ranges(s IDSet) {
	w.int(uint64(len(s.runs)), 12)
	for _, r := range s.runs {
		w.bool(r.lo != r.hi)
		w.int(uint64(r.lo), 16)
		if r.lo != r.hi {
			w.int(uint64(r.hi), 16)
		}
	}
}

// vendorSection writes MaxVendorId (s.Max()), IsRangeEncoding and the ids.
// A set of more runs than NumEntries can count is written as a bit field.
func (w *bitWriter) vendorSection(s IDSet, useRanges bool) {
	useRanges = useRanges && len(s.runs) < 1<<12
	w.int(uint64(s.max), 16)
	w.bool(useRanges)
	if useRanges {
		w.ranges(s)
	} else {
		w.bitField(s, s.max)
	}
}

// coreHeader writes the core segment from Version to PublisherCC.
func (w *bitWriter) coreHeader(t *TCString) {
	w.int(uint64(t.Version), 6)
	w.time(t.Created)
	w.time(t.LastUpdated)
	w.int(uint64(t.CmpID), 12)
	w.int(uint64(t.CmpVersion), 12)
	w.int(uint64(t.ConsentScreen), 6)
	w.letters(t.ConsentLanguage)
	w.int(uint64(t.VendorListVersion), 12)
	w.int(uint64(t.TCFPolicyVersion), 6)
	w.bool(t.IsServiceSpecific)
	w.bool(t.UseNonStandardTexts)
	w.bitField(t.SpecialFeatureOptIns, 12)
	w.bitField(t.PurposesConsent, 24)
	w.bitField(t.PurposesLITransparency, 24)
	w.bool(t.PurposeOneTreatment)
	w.letters(t.PublisherCC)
}

// encodeOptions chooses the encodings the format leaves open.
type encodeOptions struct {
	consentRanges, liRanges, disclosedRanges, allowedRanges bool
	// order of the optional segments, by segment type; nil means 1, 2, 3.
	order []int
}

func encode(t *TCString, o encodeOptions) string {
	var w bitWriter
	w.coreHeader(t)
	w.vendorSection(t.VendorConsents, o.consentRanges)
	w.vendorSection(t.VendorLegitimateInterests, o.liRanges)
	w.int(uint64(len(t.PublisherRestrictions)), 12)
	for _, r := range t.PublisherRestrictions {
		w.int(uint64(r.PurposeID), 6)
		w.int(uint64(r.Type), 2)
		w.ranges(r.Vendors)
	}
	segs := []string{w.string()}
	order := o.order
	if order == nil {
		order = []int{1, 2, 3}
	}
	for _, typ := range order {
		var w bitWriter
		switch {
		case typ == 1 && t.HasDisclosedVendors:
			w.int(1, 3)
			w.vendorSection(t.DisclosedVendors, o.disclosedRanges)
		case typ == 2 && t.HasAllowedVendors:
			w.int(2, 3)
			w.vendorSection(t.AllowedVendors, o.allowedRanges)
		case typ == 3 && t.Publisher != nil:
			p := t.Publisher
			w.int(3, 3)
			w.bitField(p.PurposesConsent, 24)
			w.bitField(p.PurposesLITransparency, 24)
			w.int(uint64(p.NumCustomPurposes), 6)
			w.bitField(p.CustomPurposesConsent, p.NumCustomPurposes)
			w.bitField(p.CustomPurposesLITransparency, p.NumCustomPurposes)
		default:
			continue
		}
		segs = append(segs, w.string())
	}
	return strings.Join(segs, ".")
}

// set builds an IDSet with the given Max from ids in ascending order.
func set(maxID int, ids ...int) IDSet {
	s := IDSet{max: maxID}
	for _, id := range ids {
		s.add(id, id)
	}
	return s
}

// span builds an IDSet with the given Max holding lo..hi.
func span(maxID, lo, hi int) IDSet {
	s := IDSet{max: maxID}
	s.add(lo, hi)
	return s
}
