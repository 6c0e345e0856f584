package ingest

import (
	"encoding/json"
	"strings"
	"testing"
)

// validCases are bodies on both sides of each JSON rule; TestValidJSON
// checks validJSON against encoding/json.Valid on each, and on every prefix
// of each (most prefixes are cut values).
var validCases = []string{
	``, ` `, `{}`, `[]`, ` {} `, "\t[\n]\r", `{`, `}`, `[`, `]`, `{]`, `[}`, `{}}`, `[]]`, `{} {}`, `{},`,
	`null`, `true`, `false`, `nul`, `tru`, `fals`, `nulll`, `truex`, `True`, `[true,false,null]`, `[true false]`,
	`0`, `-0`, `-`, `01`, `-01`, `1.`, `1.5`, `.5`, `1e5`, `1E+5`, `1e-5`, `1e`, `1e+`, `-1.5e10`, `1.5.5`, `+1`, `0x1`,
	`123456789012345678901234567890`, `[1,2,3]`, `[1,,2]`, `[,1]`, `[1,]`, `{"a":1}`, `{"a":1,}`, `{"a" 1}`, `{"a":}`,
	`{a:1}`, `{"a":1 "b":2}`, `{"a":1,"b":[{"c":{}}]}`, `{"a":{"b":{"c":[[],[{}]]}}}`, `[{"a":1},{"b":2}]`, `{1:2}`,
	`""`, `"abc"`, `"a`, `"\"`, `"\\"`, `"\/\b\f\n\r\t"`, `"\x"`, `"\u00e9"`, `"\u00E9"`, `"\u00g9"`, `"\u00"`,
	`"\ud83d\ude00"`, "\"tab\there\"", "\"nl\nhere\"", "\"\x1f\"", "\"\x7f\"", "\"\xff\xfe\"", "\"caf\xc3\xa9\"",
	`"a long string that spans several words of eight bytes \" with a quote and a \\ backslash"`,
	`"0123456"`, `"01234567"`, `"012345678"`, `"0123456\"`, "\"0123456\x00\"", `{"key":"value","n":-12.5e-3}`,
}

func TestValidJSON(t *testing.T) {
	t.Parallel()
	for _, c := range validCases {
		for n := range len(c) + 1 {
			b := []byte(c[:n])
			if got, want := validJSON(b), json.Valid(b); got != want {
				t.Errorf("validJSON(%q) = %v, json.Valid says %v", b, got, want)
			}
		}
	}
}

func TestValidJSONDepth(t *testing.T) {
	t.Parallel()
	for _, depth := range []int{1, 63, 64, 65, maxDepth - 1, maxDepth, maxDepth + 1} {
		for _, open := range []string{"[", `{"a":`} {
			close := "]"
			if open != "[" {
				close = "}"
			}
			b := []byte(strings.Repeat(open, depth) + "1" + strings.Repeat(close, depth))
			if got, want := validJSON(b), json.Valid(b); got != want || got != (depth <= maxDepth) {
				t.Errorf("%d × %s: validJSON %v, json.Valid %v", depth, open, got, want)
			}
		}
	}
	// Alternating containers, so that each level's kind must be remembered.
	var b strings.Builder
	for i := range 200 {
		if i%3 == 0 {
			b.WriteString(`{"k":`)
		} else {
			b.WriteString("[")
		}
	}
	b.WriteString("0")
	for i := 199; i >= 0; i-- {
		if i%3 == 0 {
			b.WriteString("}")
		} else {
			b.WriteString("]")
		}
	}
	if !validJSON([]byte(b.String())) {
		t.Error("200 alternating levels refused")
	}
	if bad := strings.Replace(b.String(), "]}", "}}", 1); validJSON([]byte(bad)) {
		t.Error("a mismatched closing bracket accepted")
	}
}
