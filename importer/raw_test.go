package importer

import "testing"

func TestSetMessageID(t *testing.T) {
	t.Parallel()
	const id = "imp-0123"
	for _, c := range []struct{ raw, want string }{
		{`{"type":"track"}`, `{"type":"track","messageId":"imp-0123"}`},
		{`{"type":"track" }`, `{"type":"track" ,"messageId":"imp-0123"}`},
		{`{"messageId":null,"type":"track"}`, `{"messageId":"imp-0123","type":"track"}`},
		{`{"type":"track", "messageId" :  "" }`, `{"type":"track", "messageId" :  "imp-0123" }`},
		{`{"type":"track","message\u0049d":null}`, `{"type":"track","message\u0049d":"imp-0123"}`},
		{`{"type":"track","properties":{"messageId":"x"}}`, `{"type":"track","properties":{"messageId":"x"},"messageId":"imp-0123"}`},
		{`{"type":"track","properties":{"a":"\u00e9"}}`, `{"type":"track","properties":{"a":"\u00e9"},"messageId":"imp-0123"}`},
	} {
		if got := string(setMessageID([]byte(c.raw), id)); got != c.want {
			t.Errorf("setMessageID(%s)\n got %s\nwant %s", c.raw, got, c.want)
		}
	}
}
