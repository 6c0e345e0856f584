package trait

import "testing"

func TestFixedText(t *testing.T) {
	t.Parallel()
	tests := []struct {
		in   string
		want string // decimal, or "!" when rejected
	}{
		{"0", "0"}, {"-0", "0"}, {"1", "1"}, {"19.99", "19.99"}, {"-19.99", "-19.99"},
		{"0.1234567894", "0.123456789"}, {"0.1234567895", "0.12345679"}, {"-0.0000000005", "-0.000000001"},
		{"0.00000000049", "0"}, {"1e3", "1000"}, {"1E+3", "1000"}, {"1.5e-3", "0.0015"}, {"12e-10", "0.000000001"},
		{"1e-99999", "0"}, {"0e99999", "0"}, {"0.0e5", "0"}, {"1000000000000000000", "1000000000000000000"},
		{"123456789.123456789e9", "123456789123456789"}, {"00012", "12"},
		{"", "!"}, {"-", "!"}, {"1.", "!"}, {".5", "!"}, {"1e", "!"}, {"1e+", "!"}, {"0x10", "!"}, {"1_0", "!"}, {"NaN", "!"}, {"1e30", "!"},
	}
	for _, tt := range tests {
		v, ok := fixedText([]byte(tt.in))
		got := "!"
		if ok {
			got = string(v.appendDecimal(nil))
		}
		if got != tt.want {
			t.Errorf("fixedText(%q) = %s, want %s", tt.in, got, tt.want)
		}
	}
}

func TestStrings(t *testing.T) {
	t.Parallel()
	tests := []struct{ raw, want string }{
		{`"plain"`, `"plain"`},
		{`"q\"b\\s\/"`, `"q\"b\\s/"`},
		{`"\u0001\n\t\r\u00e9\u2028"`, `"\u0001\n\t\r` + "é\u2028" + `"`},
		{"\"bad \xff utf8\"", `"bad ` + "\ufffd" + ` utf8"`},
		{`"<&>"`, `"<&>"`},
	}
	for _, tt := range tests {
		v, kind := parseScalar([]byte(tt.raw))
		if kind != rScalar {
			t.Errorf("%s: not a scalar", tt.raw)
			continue
		}
		if got := string(v.appendJSON(nil)); got != tt.want {
			t.Errorf("%s → %s, want %s", tt.raw, got, tt.want)
		}
	}
}

func TestInvalidUTF8RoundTrip(t *testing.T) {
	t.Parallel()
	tr := mustCompile(t, Definition{Name: "u", Kind: "unique_list", Property: "properties.v"})
	s := fold(tr, []ev{{at: base, props: "{\"v\":\"a\xffb\"}"}})
	got, err := tr.Decode(tr.Encode(s))
	if err != nil {
		t.Fatalf("Decode: %v", err)
	}
	if v := str(tr.Value(got, base)); v != `["a`+"\ufffd"+`b"]` {
		t.Errorf("Value = %s", v)
	}
}
