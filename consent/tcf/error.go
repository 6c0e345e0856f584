package tcf

import "fmt"

// Code classifies a decoding failure. Codes are stable: callers may branch on
// them and store them (for example in a quarantine record or an API answer).
type Code string

// Decoding failure codes.
const (
	// CodeEmpty: the string, or one of its dot-separated segments, is empty.
	CodeEmpty Code = "empty"
	// CodeTooLong: the string is longer than MaxLength bytes.
	CodeTooLong Code = "too_long"
	// CodeBase64: a character is outside the base64url alphabet (A–Z a–z
	// 0–9 - _). Padding ("=") and the standard alphabet's + and / are
	// rejected: TC strings are base64url without padding.
	CodeBase64 Code = "bad_base64"
	// CodeTruncated: a segment ends before a field it announces.
	CodeTruncated Code = "truncated"
	// CodeVersion: the core segment's Version is not 2 (v1 strings, GPP
	// strings and garbage land here).
	CodeVersion Code = "unsupported_version"
	// CodeSegment: a segment after the core is of type 0 (core), or a
	// segment type occurs twice.
	CodeSegment Code = "bad_segment"
	// CodeRangeOrder: a range entry ends before it starts, or starts at or
	// before the end of the entry before it.
	CodeRangeOrder Code = "range_order"
	// CodeRangeBounds: a range entry names vendor 0, or a vendor above the
	// section's MaxVendorId.
	CodeRangeBounds Code = "range_bounds"
	// CodeField: a field holds a value the format does not define (a
	// language or country letter above 'Z').
	CodeField Code = "bad_field"
)

// Error is the error Decode returns for malformed input.
type Error struct {
	Code    Code   // what went wrong
	Segment string // "core", "disclosed vendors", "allowed vendors", "publisher TC", "segment after the core", or "" for the whole string
	Bit     int    // bit offset within the segment where decoding stopped, or -1
	Msg     string // human-readable detail
}

func (e *Error) Error() string {
	switch {
	case e.Segment == "":
		return fmt.Sprintf("tcf: %s: %s", e.Code, e.Msg)
	case e.Bit < 0:
		return fmt.Sprintf("tcf: %s segment: %s: %s", e.Segment, e.Code, e.Msg)
	default:
		return fmt.Sprintf("tcf: %s segment at bit %d: %s: %s", e.Segment, e.Bit, e.Code, e.Msg)
	}
}

// Is reports whether target is an *Error with the same Code, so that
// errors.Is(err, &tcf.Error{Code: tcf.CodeTruncated}) works.
func (e *Error) Is(target error) bool {
	t, ok := target.(*Error)
	return ok && t.Code == e.Code
}
