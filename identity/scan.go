package identity

import (
	"bytes"
	"encoding/json"
	"strings"
	"unicode/utf8"
)

// jscan reads the few fields identity resolution needs from an event's
// JSON and skips everything else without building values, so extracting
// identifiers costs a pass over the bytes and an allocation per string
// kept. It never panics: on malformed input its methods report false.
//
// It reads what encoding/json would decode into a struct with these
// fields (which is how the rest of Kith reads events): field names match
// case-insensitively, a repeated object adds to what an earlier one set, a
// value of an unexpected type is ignored, and strings decode the same way.
// Trait keys are map keys, matched exactly.
type jscan struct {
	b []byte
	i int
}

func (s *jscan) ws() {
	for s.i < len(s.b) {
		switch s.b[s.i] {
		case ' ', '\t', '\n', '\r':
			s.i++
		default:
			return
		}
	}
}

// str reads the string starting at s.i (a quote) and returns its content
// as written, and whether it holds escapes.
func (s *jscan) str() (raw []byte, esc, ok bool) {
	start := s.i + 1
	for j := start; j < len(s.b); j++ {
		switch s.b[j] {
		case '\\':
			esc = true
			j++
		case '"':
			s.i = j + 1
			return s.b[start:j], esc, true
		}
	}
	s.i = len(s.b)
	return nil, false, false
}

// skip passes over one value of any kind.
func (s *jscan) skip() bool {
	s.ws()
	if s.i >= len(s.b) {
		return false
	}
	switch s.b[s.i] {
	case '"':
		_, _, ok := s.str()
		return ok
	case '{', '[':
		depth := 0
		for s.i < len(s.b) {
			switch s.b[s.i] {
			case '"':
				if _, _, ok := s.str(); !ok {
					return false
				}
				continue
			case '{', '[':
				depth++
			case '}', ']':
				depth--
				if depth == 0 {
					s.i++
					return true
				}
			}
			s.i++
		}
		return false
	case '}', ']', ',', ':':
		return false
	}
	s.scalar()
	return true
}

// scalar reads a number or a literal (true, false, null).
func (s *jscan) scalar() []byte {
	start := s.i
	for s.i < len(s.b) {
		switch s.b[s.i] {
		case ',', '}', ']', ' ', '\t', '\n', '\r', ':', '"':
			return s.b[start:s.i]
		}
		s.i++
	}
	return s.b[start:s.i]
}

// object calls member for every member of the object at s.i, after its
// colon; member must consume the value. A value that is not an object is
// skipped.
func (s *jscan) object(member func(key []byte, esc bool) bool) bool {
	s.ws()
	if s.i >= len(s.b) || s.b[s.i] != '{' {
		return s.skip()
	}
	s.i++
	s.ws()
	if s.i < len(s.b) && s.b[s.i] == '}' {
		s.i++
		return true
	}
	for {
		s.ws()
		if s.i >= len(s.b) || s.b[s.i] != '"' {
			return false
		}
		key, esc, ok := s.str()
		if !ok {
			return false
		}
		s.ws()
		if s.i >= len(s.b) || s.b[s.i] != ':' {
			return false
		}
		s.i++
		if !member(key, esc) {
			return false
		}
		s.ws()
		if s.i >= len(s.b) {
			return false
		}
		switch s.b[s.i] {
		case ',':
			s.i++
		case '}':
			s.i++
			return true
		default:
			return false
		}
	}
}

// array calls elem for every element of the array at s.i; elem must
// consume the element. A value that is not an array is skipped.
func (s *jscan) array(elem func() bool) bool {
	s.ws()
	if s.i >= len(s.b) || s.b[s.i] != '[' {
		return s.skip()
	}
	s.i++
	s.ws()
	if s.i < len(s.b) && s.b[s.i] == ']' {
		s.i++
		return true
	}
	for {
		if !elem() {
			return false
		}
		s.ws()
		if s.i >= len(s.b) {
			return false
		}
		switch s.b[s.i] {
		case ',':
			s.i++
		case ']':
			s.i++
			return true
		default:
			return false
		}
	}
}

// text reads a string or a number as text; any other value is skipped and
// read as "".
func (s *jscan) text() (string, bool) {
	s.ws()
	if s.i >= len(s.b) {
		return "", false
	}
	switch c := s.b[s.i]; {
	case c == '"':
		raw, esc, ok := s.str()
		return unquote(raw, esc), ok
	case c == '-' || c >= '0' && c <= '9':
		n := s.scalar()
		if !isNumber(n) {
			return "", false
		}
		return string(n), true
	}
	return "", s.skip()
}

// unquote decodes a string's content as encoding/json does (escapes, and
// invalid UTF-8 replaced); a malformed escape gives "".
func unquote(raw []byte, esc bool) string {
	if !esc && utf8.Valid(raw) {
		return string(raw)
	}
	q := make([]byte, 0, len(raw)+2)
	q = append(append(append(q, '"'), raw...), '"')
	var v string
	if json.Unmarshal(q, &v) != nil {
		return ""
	}
	return v
}

// is reports whether a key, as written, names field name (compared as
// encoding/json compares field names: case-insensitively).
func is(key []byte, esc bool, name string) bool {
	if !esc {
		return string(key) == name || bytes.EqualFold(key, []byte(name))
	}
	return strings.EqualFold(unquote(key, esc), name)
}

// isNumber reports whether b is a JSON number.
func isNumber(b []byte) bool {
	i := 0
	if i < len(b) && b[i] == '-' {
		i++
	}
	digits := func() int {
		n := 0
		for i < len(b) && b[i] >= '0' && b[i] <= '9' {
			i++
			n++
		}
		return n
	}
	switch {
	case i < len(b) && b[i] == '0':
		i++
	case digits() == 0:
		return false
	}
	if i < len(b) && b[i] == '.' {
		i++
		if digits() == 0 {
			return false
		}
	}
	if i < len(b) && (b[i] == 'e' || b[i] == 'E') {
		i++
		if i < len(b) && (b[i] == '+' || b[i] == '-') {
			i++
		}
		if digits() == 0 {
			return false
		}
	}
	return i == len(b)
}
