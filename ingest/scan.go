package ingest

import (
	"bytes"
	"encoding/json"
)

// The scanner below walks JSON that validJSON (which accepts what
// encoding/json.Valid accepts) has already accepted, so it never checks
// syntax: it only finds where values end. It reads the top level of an
// object and leaves nested values as byte ranges, which is what keeps
// decoding fast (nothing below the top level is decoded).

// member is one member of a JSON object, as offsets into the scanned bytes.
type member struct {
	comma    int // offset of the comma before the member, or -1 for the first
	keyStart int // offset of the key's opening quote
	valStart int // offset of the value's first byte
	valEnd   int // offset just past the value
}

// objectScanner iterates over the members of one JSON object.
type objectScanner struct {
	b     []byte
	i     int // next offset to read
	comma int // offset of the comma just read, or -1
	n     int // members returned so far
}

// newObjectScanner starts scanning the object whose '{' is at b[start].
func newObjectScanner(b []byte, start int) objectScanner {
	return objectScanner{b: b, i: start + 1, comma: -1}
}

// next returns the next member and its raw key (the bytes between the
// quotes, still escaped), or ok=false after the closing brace; end is then
// the offset just past it.
func (s *objectScanner) next() (m member, key []byte, ok bool) {
	b := s.b
	s.i = skipSpace(b, s.i)
	if b[s.i] == '}' {
		s.i++
		return member{}, nil, false
	}
	if b[s.i] == ',' {
		s.comma = s.i
		s.i = skipSpace(b, s.i+1)
	}
	m.comma = s.comma
	m.keyStart = s.i
	keyEnd := skipString(b, s.i)
	key = b[s.i+1 : keyEnd-1]
	s.i = skipSpace(b, keyEnd)
	s.i = skipSpace(b, s.i+1) // the colon
	m.valStart = s.i
	m.valEnd = skipValue(b, s.i)
	s.i = m.valEnd
	s.n++
	return m, key, true
}

// end is the offset just past the object's closing brace, valid once next
// has returned ok=false.
func (s *objectScanner) end() int { return s.i }

// skipSpace returns the offset of the first non-space byte at or after i.
func skipSpace(b []byte, i int) int {
	for i < len(b) && (b[i] == ' ' || b[i] == '\n' || b[i] == '\r' || b[i] == '\t') {
		i++
	}
	return i
}

// skipValue returns the offset just past the value that starts at b[i].
func skipValue(b []byte, i int) int {
	switch b[i] {
	case '"':
		return skipString(b, i)
	case '{', '[':
		return skipContainer(b, i)
	default: // number, true, false, null
		for i < len(b) {
			switch b[i] {
			case ',', '}', ']', ' ', '\n', '\r', '\t':
				return i
			}
			i++
		}
		return i
	}
}

// skipString returns the offset just past the string whose opening quote is
// at b[i].
func skipString(b []byte, i int) int {
	i++
	for {
		j := bytes.IndexByte(b[i:], '"')
		if j < 0 {
			return len(b) // unreachable for valid JSON
		}
		i += j + 1
		// The quote ends the string unless an odd number of backslashes
		// precede it.
		k := i - 2
		for b[k] == '\\' {
			k--
		}
		if (i-2-k)%2 == 0 {
			return i
		}
	}
}

// skipContainer returns the offset just past the object or array that opens
// at b[i].
func skipContainer(b []byte, i int) int {
	depth := 0
	for i < len(b) {
		switch b[i] {
		case '"':
			i = skipString(b, i)
			continue
		case '{', '[':
			depth++
		case '}', ']':
			depth--
			if depth == 0 {
				return i + 1
			}
		}
		i++
	}
	return i
}

// arrayElements returns the [start, end) offsets of the elements of the
// array that opens at b[start], stopping early once there are more than max.
func arrayElements(b []byte, start, max int) [][2]int {
	var out [][2]int
	i := skipSpace(b, start+1)
	if b[i] == ']' {
		return out
	}
	for {
		e := skipValue(b, i)
		out = append(out, [2]int{i, e})
		if len(out) > max {
			return out
		}
		i = skipSpace(b, e)
		if b[i] == ']' {
			return out
		}
		i = skipSpace(b, i+1) // the comma
	}
}

// unquote returns the text of a JSON string value (with its quotes).
func unquote(v []byte) string {
	inner := v[1 : len(v)-1]
	if bytes.IndexByte(inner, '\\') < 0 {
		return string(inner)
	}
	var s string
	_ = json.Unmarshal(v, &s) // v is valid JSON, so this cannot fail
	return s
}

// keyString returns a raw object key as text, decoding escapes if any.
func keyString(raw []byte) string {
	if bytes.IndexByte(raw, '\\') < 0 {
		return string(raw)
	}
	var s string
	_ = json.Unmarshal(append(append([]byte{'"'}, raw...), '"'), &s)
	return s
}

// keyIs reports whether a raw object key is name.
func keyIs(raw []byte, name string) bool {
	if bytes.IndexByte(raw, '\\') < 0 {
		return string(raw) == name
	}
	return keyString(raw) == name
}
