package compute

import (
	"encoding/json"
	"reflect"
	"testing"
)

// TestDecode: the fast path of decode gives what encoding/json gives, for
// the values it takes and for those it leaves to encoding/json.
func TestDecode(t *testing.T) {
	t.Parallel()
	inputs := []string{
		`0`, `-0`, `1`, `-1`, `42`, `120`, `5.5`, `-0.25`, `1e3`, `1E-3`, `2.5e+10`, `9007199254740993`,
		`123456789012345678901234567890`, `1e400`, `-1e400`, `4.9e-325`,
		`01`, `1.`, `.5`, `-`, `+1`, `1e`, `0x10`, `1_000`, `Inf`, `NaN`, ` 1`, `1 `, `1.5.5`,
		`true`, `false`, `null`, `tru`, `nul`, `True`,
		`""`, `"pro"`, `"a b c"`, `"Checkout"`, `"ünïcödé"`, `"tab\there"`, `"quote\"d"`, `"\u00e9"`, "\"ctl\x01\"",
		"\"bad \xff utf8\"", `"unterminated`, `"`, `"a"b"`,
		`[]`, `[1,"a",true]`, `{"a":1}`, `{}`, ``, ` `, `x`,
	}
	for _, in := range inputs {
		var want any
		if json.Unmarshal([]byte(in), &want) != nil {
			want = nil
		}
		if got := decode(json.RawMessage(in)); !reflect.DeepEqual(got, want) {
			t.Errorf("decode(%q) = %#v, want %#v", in, got, want)
		}
	}
}

func FuzzDecode(f *testing.F) {
	for _, s := range []string{`1`, `-0.5e3`, `"x"`, `true`, `null`, `[1]`, `"\u00e9"`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		var want any
		if json.Unmarshal(in, &want) != nil {
			want = nil
		}
		if got := decode(in); !reflect.DeepEqual(got, want) {
			t.Errorf("decode(%q) = %#v, want %#v", in, got, want)
		}
	})
}
