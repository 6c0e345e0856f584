package ingest

import (
	"bytes"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/kithcdp/kith/store"
)

// bundle is what the tests share: a receive time and limits.
type bundle struct {
	rx  time.Time
	lim Limits
	sig store.Signals
}

func setup(t *testing.T) *bundle {
	t.Helper()
	return &bundle{
		rx:  time.Date(2026, 11, 24, 12, 16, 0, 0, time.UTC),
		lim: DefaultLimits(),
		sig: store.Signals{IP: "203.0.113.7", UserAgent: "test", GPC: true},
	}
}

// decode runs Decode and checks the invariants every result must keep.
func (b *bundle) decode(t *testing.T, call Call, body string) (Output, *Error) {
	t.Helper()
	out, err := Decode(Input{Call: call, Body: []byte(body), ReceivedAt: b.rx, Signals: b.sig}, b.lim)
	if err != nil {
		var ie *Error
		if !errors.As(err, &ie) {
			t.Fatalf("Decode returned %T, want *Error: %v", err, err)
		}
		if len(out.Events)+len(out.Quarantine)+len(out.Rejected) != 0 {
			t.Fatalf("Decode failed with %v but returned events: %+v", err, out)
		}
		return out, ie
	}
	checkOutput(t, call, []byte(body), out)
	return out, nil
}

// checkOutput asserts what holds for every successful Decode.
func checkOutput(t testing.TB, call Call, body []byte, out Output) {
	t.Helper()
	if len(out.Quarantine) != len(out.Rejected) {
		t.Fatalf("%d quarantined but %d rejected", len(out.Quarantine), len(out.Rejected))
	}
	if call != CallBatch && (len(out.Events) != 1 || len(out.Quarantine) != 0) {
		t.Fatalf("a single call gave %d events and %d quarantined", len(out.Events), len(out.Quarantine))
	}
	last := -1
	for i, r := range out.Rejected {
		if r.Index <= last || r.Code == "" || r.Message == "" {
			t.Fatalf("rejection %d is out of order or empty: %+v", i, r)
		}
		last = r.Index
		q := out.Quarantine[i]
		if q.Code != r.Code || q.Reason != r.Message || q.MessageID != r.MessageID {
			t.Fatalf("quarantined %+v does not match rejection %+v", q, r)
		}
		if !json.Valid(q.Raw) {
			t.Fatalf("quarantined raw is not JSON: %s", q.Raw)
		}
	}
	for _, e := range out.Events {
		var v map[string]json.RawMessage
		if err := json.Unmarshal(e.Raw, &v); err != nil {
			t.Fatalf("event raw is not a JSON object (%v): %s", err, e.Raw)
		}
		if _, ok := v["writeKey"]; ok {
			t.Fatalf("event raw keeps the writeKey: %s", e.Raw)
		}
		var typ string
		if err := json.Unmarshal(v["type"], &typ); err != nil || typ != e.Type {
			t.Fatalf("raw type %s, event type %q", v["type"], e.Type)
		}
		if e.MessageID == "" || e.Format != store.FormatVersion || e.Timestamp.Location() != time.UTC || e.ReceivedAt.Location() != time.UTC {
			t.Fatalf("event fields: %+v", e)
		}
		if e.Workspace != "" || e.Source != "" || e.Position != 0 {
			t.Fatalf("Decode filled fields that belong to the caller: %+v", e)
		}
		// The columns agree with what encoding/json reads from the raw event.
		cols := map[string]string{"userId": e.UserID, "anonymousId": e.AnonymousID}
		if e.Flags&store.FlagMessageIDGenerated == 0 {
			cols["messageId"] = e.MessageID
		}
		switch e.Type {
		case "track":
			cols["event"] = e.Name
		case "page", "screen":
			cols["name"] = e.Name
		}
		for k, col := range cols {
			if got := jsonText(t, v[k]); got != col {
				t.Fatalf("column %s = %q, but the raw event holds %q: %s", k, col, got, e.Raw)
			}
		}
	}
	for _, raw := range rawsOf(out) {
		if len(raw) > 0 && len(body) > 0 && &raw[0] == &body[0] {
			t.Fatal("a raw shares memory with the body")
		}
	}
}

// jsonText renders a raw string or number member as the event columns do.
func jsonText(t testing.TB, raw json.RawMessage) string {
	t.Helper()
	if len(raw) == 0 || string(raw) == "null" {
		return ""
	}
	d := json.NewDecoder(bytes.NewReader(raw))
	d.UseNumber()
	var v any
	if err := d.Decode(&v); err != nil {
		t.Fatal(err)
	}
	switch v := v.(type) {
	case string:
		return v
	case json.Number:
		return v.String()
	}
	t.Fatalf("member %s is neither a string nor a number", raw)
	return ""
}

func rawsOf(out Output) []json.RawMessage {
	var r []json.RawMessage
	for _, e := range out.Events {
		r = append(r, e.Raw)
	}
	for _, q := range out.Quarantine {
		r = append(r, q.Raw)
	}
	return r
}

func readFixture(t *testing.T, name string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func mustTime(t *testing.T, s string) time.Time {
	t.Helper()
	ts, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		t.Fatal(err)
	}
	return ts.UTC()
}

// lookup follows a dotted path through a JSON document.
func lookup(t *testing.T, raw []byte, path string) any {
	t.Helper()
	var v any
	if err := json.Unmarshal(raw, &v); err != nil {
		t.Fatal(err)
	}
	for _, k := range strings.Split(path, ".") {
		m, _ := v.(map[string]any)
		v = m[k]
	}
	return v
}

func TestCallForPath(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name string
		want Call
		ok   bool
	}{
		{"identify", CallIdentify, true}, {"i", CallIdentify, true},
		{"track", CallTrack, true}, {"t", CallTrack, true},
		{"page", CallPage, true}, {"p", CallPage, true},
		{"screen", CallScreen, true}, {"s", CallScreen, true},
		{"group", CallGroup, true}, {"g", CallGroup, true},
		{"alias", CallAlias, true}, {"a", CallAlias, true},
		{"batch", CallBatch, true}, {"import", CallBatch, true}, {"b", CallBatch, true},
		{"", "", false}, {"Track", "", false}, {"x", "", false}, {"events", "", false}, {"tracks", "", false},
	}
	for _, c := range cases {
		got, ok := CallForPath(c.name)
		if got != c.want || ok != c.ok {
			t.Errorf("CallForPath(%q) = %q, %v; want %q, %v", c.name, got, ok, c.want, c.ok)
		}
	}
}

// wantEvent is what a test expects of one decoded event.
type wantEvent struct {
	typ, name, userID, anonID, messageID string
	timestamp                            string // RFC 3339
	flags                                int
}

// TestSDKPayloads decodes what the SDKs send: bodies captured from
// analytics-go v3.3.0 and @segment/analytics-next 1.84.3 (in Chromium), and
// bodies built to the shape of RudderStack's Go and JavaScript SDKs.
func TestSDKPayloads(t *testing.T) {
	t.Parallel()
	b := setup(t)
	// 12:16:00 is receivedAt; each SDK's sentAt and event times are shifted by it.
	cases := []struct {
		file     string
		call     Call
		writeKey string
		want     []wantEvent
		check    map[string]any // dotted path in the first event's raw → value
	}{
		{
			file: "analytics-go-batch.json", call: CallBatch,
			want: []wantEvent{
				// sentAt 12:15:38.612984075, timestamp 12:15:38.612558189: 425.886µs earlier.
				{"identify", "", "u-42", "3f1c2a9e-5b7d-4e0a-9c1b-2d8e6f4a7b90", "6d7bbd09-de44-496b-89c2-652a20281605", "2026-11-24T12:15:59.999574114Z", 0},
				{"track", "Order Completed", "u-42", "", "c32dbf3c-b797-4123-bbe4-1b5379f4a855", "2026-11-24T12:15:59.999577623Z", 0},
				{"page", "Pricing", "u-42", "", "0bd0bcda-0e3b-4f14-a18d-a99ff07575dd", "2026-11-24T12:15:59.999578674Z", 0},
				{"screen", "Home", "", "3f1c2a9e-5b7d-4e0a-9c1b-2d8e6f4a7b90", "c7e4cbf7-8f32-4b20-b363-089693d09a4a", "2026-11-24T12:15:59.999579173Z", 0},
				{"group", "", "u-42", "", "7fed8b0e-58e5-4c7b-9056-cd5bf434045d", "2026-11-24T12:15:59.999580384Z", 0},
				{"alias", "", "u-42", "", "cc791721-e4b2-4d8e-b466-519564445d8f", "2026-11-24T12:15:59.999581181Z", 0},
				// A historical timestamp set by the caller, corrected like the others.
				{"track", "Report Exported", "u-42", "", "ad8eba81-89b4-4438-8a39-ee4c3f52a250", "2025-11-03T08:15:21.510471925Z", 0},
			},
			check: map[string]any{"context.library.name": "analytics-go", "traits.email": "ada@example.com"},
		},
		{
			file: "analytics-next-track.json", call: CallTrack, writeKey: "wk_shop_1234567890",
			want:  []wantEvent{{"track", "Browser Clicked", "u-browser-1", "abdc7d5e-abe4-495f-81f1-1bc6de785639", "ajs-next-1795522541463-7d5eabe4-995f-41f1-9bc6-de785639e805", "2026-11-24T12:15:59.996Z", 0}},
			check: map[string]any{"context.library.version": "next-1.84.3", "properties.button": "buy", "_metadata.bundled": []any{"Segment.io"}},
		},
		{
			file: "analytics-next-identify.json", call: CallIdentify, writeKey: "wk_shop_1234567890",
			want:  []wantEvent{{"identify", "", "u-browser-1", "abdc7d5e-abe4-495f-81f1-1bc6de785639", "ajs-next-1795522541410-38abdc7d-5eab-4499-9f41-f11bc6de7856", "2026-11-24T12:15:59.955Z", 0}},
			check: map[string]any{"traits.plan": "pro"},
		},
		{
			file: "analytics-next-page.json", call: CallPage, writeKey: "wk_shop_1234567890",
			want:  []wantEvent{{"page", "Pricing", "u-browser-1", "abdc7d5e-abe4-495f-81f1-1bc6de785639", "ajs-next-1795522541477-abe4995f-41f1-4bc6-9e78-5639e805b5e7", "2026-11-24T12:15:59.996Z", 0}},
			check: map[string]any{"category": "Docs", "context.page.path": "/pricing"},
		},
		{
			file: "analytics-next-group.json", call: CallGroup, writeKey: "wk_shop_1234567890",
			want:  []wantEvent{{"group", "", "u-browser-1", "abdc7d5e-abe4-495f-81f1-1bc6de785639", "ajs-next-1795522541492-995f41f1-1bc6-4e78-9639-e805b5e7cba5", "2026-11-24T12:15:59.997Z", 0}},
			check: map[string]any{"groupId": "acct-7"},
		},
		{
			file: "analytics-next-alias.json", call: CallAlias, writeKey: "wk_shop_1234567890",
			want:  []wantEvent{{"alias", "", "u-browser-1", "abdc7d5e-abe4-495f-81f1-1bc6de785639", "ajs-next-1795522541498-41f11bc6-de78-4639-a805-b5e7cba5c118", "2026-11-24T12:15:59.997Z", 0}},
			check: map[string]any{"previousId": "legacy-42"},
		},
		{
			// /v1/b: one sentAt for the batch (the events carry none), a writeKey on each event too.
			file: "analytics-next-batch.json", call: CallBatch, writeKey: "wk_shop_1234567890",
			want: []wantEvent{
				{"identify", "", "u-browser-1", "f5d11cff-f3d0-4ec2-9000-4d5d50535a93", "ajs-next-1795522543981-34f5d11c-fff3-407e-8250-004d5d50535a", "2026-11-24T12:15:59.958Z", 0},
				{"track", "Browser Clicked", "u-browser-1", "f5d11cff-f3d0-4ec2-9000-4d5d50535a93", "ajs-next-1795522543998-1cfff3d0-7ec2-4000-8d5d-50535a934f7b", "2026-11-24T12:15:59.975Z", 0},
				{"page", "Pricing", "u-browser-1", "f5d11cff-f3d0-4ec2-9000-4d5d50535a93", "ajs-next-1795522544003-f3d07ec2-5000-4d5d-9053-5a934f7b1952", "2026-11-24T12:15:59.98Z", 0},
				{"group", "", "u-browser-1", "f5d11cff-f3d0-4ec2-9000-4d5d50535a93", "ajs-next-1795522544012-7ec25000-4d5d-4053-9a93-4f7b1952aefd", "2026-11-24T12:15:59.989Z", 0},
				{"alias", "", "u-browser-1", "f5d11cff-f3d0-4ec2-9000-4d5d50535a93", "ajs-next-1795522544016-50004d5d-5053-4a93-8f7b-1952aefd318e", "2026-11-24T12:15:59.993Z", 0},
			},
			check: map[string]any{"sentAt": "2026-11-24T12:15:44.023Z", "_metadata.bundled": []any{"Segment.io"}},
		},
		{
			// Each event has its own originalTimestamp and sentAt; no batch-level context.
			file: "rudder-go-batch.json", call: CallBatch,
			want: []wantEvent{
				{"identify", "", "u-77", "b1f0a0c2-3d4e-4f50-8a6b-7c8d9e0f1a2b", "8d4b0c1e-7f3a-4c52-9e61-0a2b3c4d5e6f", "2026-11-24T12:15:55.103344Z", 0},
				{"track", "Invoice Paid", "u-77", "b1f0a0c2-3d4e-4f50-8a6b-7c8d9e0f1a2b", "2a9c7e10-55b1-4d0e-a3f2-6b7c8d9e0f11", "2026-11-24T12:15:56.519129Z", 0},
				{"group", "", "u-77", "b1f0a0c2-3d4e-4f50-8a6b-7c8d9e0f1a2b", "f3e2d1c0-b9a8-4765-8432-10fedcba9876", "2026-11-24T12:15:57.899129Z", 0},
				{"alias", "", "u-77", "", "0e1d2c3b-4a59-4687-9564-738291a0b0c0", "2026-11-24T12:15:57.999129Z", 0},
			},
			check: map[string]any{"channel": "server", "context.library.version": "4.2.3"},
		},
		{
			// userId "" (no user yet): the anonymousId identifies the event.
			file: "rudder-js-track.json", call: CallTrack,
			want:  []wantEvent{{"track", "Trial Started", "", "c0ffee00-1234-4abc-9def-0123456789ab", "6b3e0c9a-1f2d-4e8b-9a7c-5d4e3f2a1b0c", "2026-11-24T12:15:59.981Z", 0}},
			check: map[string]any{"channel": "web", "context.page.path": "/signup"},
		},
		{
			// event and properties null on identify and page, traits in context.traits.
			file: "rudder-js-batch.json", call: CallBatch,
			want: []wantEvent{
				{"identify", "", "u-900", "c0ffee00-1234-4abc-9def-0123456789ab", "7c1d2e3f-4a5b-4c6d-8e7f-9a0b1c2d3e4f", "2026-11-24T12:15:58.85Z", 0},
				{"page", "Account", "u-900", "c0ffee00-1234-4abc-9def-0123456789ab", "8d2e3f40-5b6c-4d7e-9f80-a1b2c3d4e5f6", "2026-11-24T12:15:59.05Z", 0},
				{"track", "Plan Upgraded", "u-900", "c0ffee00-1234-4abc-9def-0123456789ab", "9e3f4051-6c7d-4e8f-a091-b2c3d4e5f607", "2026-11-24T12:15:59.65Z", 0},
			},
			check: map[string]any{"context.traits.email": "lin@example.com"},
		},
	}
	for _, c := range cases {
		t.Run(c.file, func(t *testing.T) {
			t.Parallel()
			out, err := b.decode(t, c.call, readFixture(t, c.file))
			if err != nil {
				t.Fatal(err)
			}
			if len(out.Quarantine) != 0 {
				t.Fatalf("quarantined: %+v", out.Rejected)
			}
			if out.WriteKey != c.writeKey {
				t.Errorf("writeKey %q, want %q", out.WriteKey, c.writeKey)
			}
			if len(out.Events) != len(c.want) {
				t.Fatalf("%d events, want %d", len(out.Events), len(c.want))
			}
			for i, w := range c.want {
				e := out.Events[i]
				got := wantEvent{e.Type, e.Name, e.UserID, e.AnonymousID, e.MessageID, e.Timestamp.Format(time.RFC3339Nano), e.Flags}
				if got != w {
					t.Errorf("event %d:\n got %+v\nwant %+v", i, got, w)
				}
				if !e.ReceivedAt.Equal(b.rx) || e.Signals != b.sig {
					t.Errorf("event %d: receivedAt %v signals %+v", i, e.ReceivedAt, e.Signals)
				}
			}
			for path, want := range c.check {
				got := lookup(t, out.Events[0].Raw, path)
				if gj, _ := json.Marshal(got); string(gj) != mustJSON(t, want) {
					t.Errorf("raw %s = %s, want %s", path, gj, mustJSON(t, want))
				}
			}
		})
	}
}

func mustJSON(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// TestRequestErrors covers the failures that refuse a whole request.
func TestRequestErrors(t *testing.T) {
	t.Parallel()
	b := setup(t)
	b.lim.MaxBatchEvents = 3
	ev := `{"type":"track","userId":"u","event":"E"}`
	cases := []struct {
		name   string
		call   Call
		body   string
		status int
		code   string
	}{
		{"empty body", CallTrack, "", 400, CodeInvalidJSON},
		{"only spaces", CallBatch, " \n\t", 400, CodeInvalidJSON},
		{"malformed", CallTrack, `{"userId":"u",`, 400, CodeInvalidJSON},
		{"trailing garbage", CallTrack, `{"userId":"u","event":"E"} x`, 400, CodeInvalidJSON},
		{"two objects", CallTrack, `{"userId":"u","event":"E"}{}`, 400, CodeInvalidJSON},
		{"control character", CallTrack, "{\"userId\":\"u\x01\",\"event\":\"E\"}", 400, CodeInvalidJSON},
		{"array body", CallTrack, `[1,2]`, 400, CodeInvalidType},
		{"string body", CallBatch, `"batch"`, 400, CodeInvalidType},
		{"null body", CallTrack, `null`, 400, CodeInvalidType},
		{"body too large", CallBatch, `{"batch":[],"x":"` + strings.Repeat("a", 512<<10) + `"}`, 413, CodeBodyTooLarge},
		{"batch not an array", CallBatch, `{"batch":{}}`, 400, CodeInvalidBatch},
		{"batch null", CallBatch, `{"batch":null}`, 400, CodeInvalidBatch},
		{"no batch", CallBatch, `{"type":"track","userId":"u","event":"E"}`, 400, CodeInvalidBatch},
		{"two batches", CallBatch, `{"batch":[],"batch":[]}`, 400, CodeDuplicateKey},
		{"too many events", CallBatch, `{"batch":[` + strings.Repeat(ev+",", 3) + ev + `]}`, 413, CodeTooManyEvents},
		{"batch context not an object", CallBatch, `{"batch":[],"context":"web"}`, 400, CodeInvalidType},
		{"batch integrations not an object", CallBatch, `{"batch":[],"integrations":[]}`, 400, CodeInvalidType},
		{"batch writeKey not a string", CallBatch, `{"batch":[],"writeKey":7}`, 400, CodeInvalidType},
		{"batch sentAt not a time", CallBatch, `{"batch":[],"sentAt":"yesterday"}`, 400, CodeInvalidTimestamp},
		{"batch sentAt a number", CallBatch, `{"batch":[],"sentAt":1700000000000}`, 400, CodeInvalidTimestamp},
		{"invalid UTF-8 outside the events", CallBatch, "{\"batch\":[],\"context\":{\"x\":\"\xff\"}}", 400, CodeInvalidUTF8},
		{"single call invalid UTF-8", CallTrack, "{\"userId\":\"\xc3\x28\",\"event\":\"E\"}", 400, CodeInvalidUTF8},
		{"single call too large", CallTrack, `{"userId":"u","event":"E","properties":{"x":"` + strings.Repeat("a", 32<<10) + `"}}`, 413, CodeEventTooLarge},
		{"single call of no known kind", Call("batchy"), ev, 400, CodeUnknownType},
		{"type mismatch", CallTrack, `{"type":"identify","userId":"u","event":"E"}`, 400, CodeTypeMismatch},
		{"type batch on a single call", CallTrack, `{"type":"batch","userId":"u","event":"E"}`, 400, CodeTypeMismatch},
	}
	for _, c := range cases {
		_, err := b.decode(t, c.call, c.body)
		if err == nil {
			t.Errorf("%s: no error", c.name)
			continue
		}
		if err.Status != c.status || err.Code != c.code || err.Message == "" {
			t.Errorf("%s: %d %s (%s), want %d %s", c.name, err.Status, err.Code, err.Message, c.status, c.code)
		}
	}
}

// badEvents break one event rule each. TestBadEvents sends each as a single
// call (refused with 400) and inside a batch (quarantined).
var badEvents = []struct {
	name, event, code string
}{
	{"no identity", `{"type":"track","event":"E"}`, CodeMissingIdentity},
	{"empty identity", `{"type":"track","event":"E","userId":"","anonymousId":""}`, CodeMissingIdentity},
	{"null identity", `{"type":"identify","userId":null,"anonymousId":null}`, CodeMissingIdentity},
	{"userId an object", `{"type":"identify","userId":{"id":1}}`, CodeInvalidType},
	{"anonymousId a bool", `{"type":"identify","anonymousId":true}`, CodeInvalidType},
	{"messageId an array", `{"type":"identify","userId":"u","messageId":["m"]}`, CodeInvalidType},
	{"track without event", `{"type":"track","userId":"u"}`, CodeMissingEvent},
	{"track with empty event", `{"type":"track","userId":"u","event":""}`, CodeMissingEvent},
	{"track with null event", `{"type":"track","userId":"u","event":null}`, CodeMissingEvent},
	{"event a number", `{"type":"track","userId":"u","event":5}`, CodeInvalidType},
	{"page name an object", `{"type":"page","userId":"u","name":{}}`, CodeInvalidType},
	{"alias without previousId", `{"type":"alias","userId":"u"}`, CodeMissingPreviousID},
	{"alias without userId", `{"type":"alias","previousId":"p","anonymousId":"a"}`, CodeMissingUserID},
	{"group without groupId", `{"type":"group","userId":"u"}`, CodeMissingGroupID},
	{"group with empty groupId", `{"type":"group","userId":"u","groupId":""}`, CodeMissingGroupID},
	{"group without identity", `{"type":"group","groupId":"g"}`, CodeMissingIdentity},
	{"traits an array", `{"type":"identify","userId":"u","traits":[1]}`, CodeInvalidType},
	{"properties a string", `{"type":"track","userId":"u","event":"E","properties":"x"}`, CodeInvalidType},
	{"context a number", `{"type":"page","userId":"u","context":1}`, CodeInvalidType},
	{"integrations a bool", `{"type":"page","userId":"u","integrations":true}`, CodeInvalidType},
	{"type a number", `{"type":1,"userId":"u"}`, CodeInvalidType},
	{"duplicate userId", `{"type":"identify","userId":"a","userId":"b"}`, CodeDuplicateKey},
	{"duplicate via escape", `{"type":"identify","userId":"a","user\u0049d":"b"}`, CodeDuplicateKey},
	{"NUL in userId", `{"type":"identify","userId":"a\u0000b"}`, CodeInvalidValue},
	{"NUL in event name", `{"type":"track","userId":"u","event":"E\u0000"}`, CodeInvalidValue},
	{"userId too long", `{"type":"identify","userId":"` + strings.Repeat("x", 1025) + `"}`, CodeInvalidValue},
	{"messageId too long", `{"type":"identify","userId":"u","messageId":"` + strings.Repeat("m", 1025) + `"}`, CodeInvalidValue},
	{"bad timestamp", `{"type":"identify","userId":"u","timestamp":"2026-13-01T00:00:00Z"}`, CodeInvalidTimestamp},
	{"bad originalTimestamp", `{"type":"identify","userId":"u","originalTimestamp":"now"}`, CodeInvalidTimestamp},
	{"bad sentAt", `{"type":"identify","userId":"u","sentAt":"2026-01-01T25:00:00Z"}`, CodeInvalidTimestamp},
	{"timestamp a number", `{"type":"identify","userId":"u","timestamp":1700000000}`, CodeInvalidTimestamp},
	{"timestamp before 1970", `{"type":"identify","userId":"u","timestamp":"1969-12-31T23:59:59Z"}`, CodeInvalidTimestamp},
	{"sentAt absurdly late", `{"type":"identify","userId":"u","timestamp":"1970-01-02T00:00:00Z","sentAt":"9999-01-01T00:00:00Z"}`, CodeInvalidTimestamp},
}

func TestBadEvents(t *testing.T) {
	t.Parallel()
	b := setup(t)
	for _, c := range badEvents {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			var typ string
			if err := json.Unmarshal([]byte(lookupType(c.event)), &typ); err == nil {
				if call, ok := CallForPath(typ); ok {
					_, err := b.decode(t, call, c.event)
					if err == nil || err.Status != 400 || err.Code != c.code {
						t.Errorf("single call: %v, want 400 %s", err, c.code)
					}
				}
			}
			// The bad event gets a messageId unless the messageId is what is bad
			// (a bad messageId is not reported back).
			bad, wantID := strings.Replace(c.event, `{`, `{"messageId":"bad-1",`, 1), "bad-1"
			if strings.Contains(c.event, `"messageId"`) {
				bad, wantID = c.event, ""
			}
			body := `{"batch":[{"type":"track","userId":"u","event":"Good","messageId":"m0"},` + bad +
				`,{"type":"identify","anonymousId":"a","messageId":"m2"}],"context":{"library":{"name":"test"}}}`
			out, err := b.decode(t, CallBatch, body)
			if err != nil {
				t.Fatal(err)
			}
			if len(out.Events) != 2 || out.Events[0].MessageID != "m0" || out.Events[1].MessageID != "m2" {
				t.Fatalf("kept %+v", out.Events)
			}
			if len(out.Rejected) != 1 {
				t.Fatalf("rejected %+v", out.Rejected)
			}
			r, q := out.Rejected[0], out.Quarantine[0]
			if r.Index != 1 || r.Code != c.code || r.MessageID != wantID {
				t.Errorf("rejection %+v, want index 1 code %s messageId %q", r, c.code, wantID)
			}
			if !q.ReceivedAt.Equal(b.rx) || q.Signals != b.sig {
				t.Errorf("quarantined %+v", q)
			}
		})
	}
}

// lookupType returns the raw "type" value of a test event.
func lookupType(event string) string {
	var v map[string]json.RawMessage
	_ = json.Unmarshal([]byte(event), &v)
	return string(v["type"])
}

// TestBatchElements covers elements of a batch that are not events at all.
func TestBatchElements(t *testing.T) {
	t.Parallel()
	b := setup(t)
	b.lim.MaxEventBytes = 100
	big := `{"type":"track","userId":"u","event":"E","messageId":"big","properties":{"x":"` + strings.Repeat("a", 100) + `"}}`
	body := "{\"batch\":[1,\"s\",null,[],{\"type\":\"page\",\"userId\":\"\xff\"}," + big + `,{},{"writeKey":"k"},{"type":"screen","userId":"u"}]}`
	out, err := b.decode(t, CallBatch, body)
	if err != nil {
		t.Fatal(err)
	}
	want := []struct {
		index int
		code  string
		raw   string
	}{
		{0, CodeInvalidType, `1`},
		{1, CodeInvalidType, `"s"`},
		{2, CodeInvalidType, `null`},
		{3, CodeInvalidType, `[]`},
		{4, CodeInvalidUTF8, "{\"type\":\"page\",\"userId\":\"\xff\"}"},
		{5, CodeEventTooLarge, big},
		{6, CodeUnknownType, `{}`},
		{7, CodeUnknownType, `{}`}, // the writeKey is removed even from quarantined events
	}
	if len(out.Rejected) != len(want) || len(out.Events) != 1 || out.Events[0].Type != "screen" {
		t.Fatalf("rejected %+v, events %+v", out.Rejected, out.Events)
	}
	for i, w := range want {
		r, q := out.Rejected[i], out.Quarantine[i]
		if r.Index != w.index || r.Code != w.code || string(q.Raw) != w.raw {
			t.Errorf("element %d: %+v raw %s, want %d %s %s", i, r, q.Raw, w.index, w.code, w.raw)
		}
	}
	if out.WriteKey != "k" {
		t.Errorf("writeKey %q, want the first event's", out.WriteKey)
	}
	// An empty batch is fine.
	out, err = b.decode(t, CallBatch, `{"batch":[ ]}`)
	if err != nil || len(out.Events)+len(out.Quarantine) != 0 {
		t.Fatalf("empty batch: %v %+v", err, out)
	}
}

func TestIdentifiers(t *testing.T) {
	t.Parallel()
	b := setup(t)
	cases := []struct {
		name, body            string
		userID, anonID, msgID string
		generated             bool
	}{
		{"strings", `{"userId":"u-1","anonymousId":"a-1","messageId":"m-1","event":"E"}`, "u-1", "a-1", "m-1", false},
		{"numbers as sent", `{"userId":12345,"anonymousId":-7.5e3,"messageId":42,"event":"E"}`, "12345", "-7.5e3", "42", false},
		{"escapes decoded", `{"userId":"caf\u00e9 \"x\"","event":"E"}`, "café \"x\"", "", "", true},
		{"escaped quotes and backslashes", `{"userId":"a\\","anonymousId":"\\\"","event":"say \"hi\""}`, `a\`, `\"`, "", true},
		{"lone surrogate becomes U+FFFD", `{"userId":"\ud83d","event":"E"}`, "\ufffd", "", "", true},
		{"null messageId generated", `{"userId":"u","messageId":null,"event":"E"}`, "u", "", "", true},
		{"empty messageId generated", `{"userId":"u","messageId":"","event":"E"}`, "u", "", "", true},
		{"userId null, anonymousId set", `{"userId":null,"anonymousId":"a","event":"E"}`, "", "a", "", true},
		{"after a byte order mark", "\xef\xbb\xbf{\"userId\":\"u\",\"event\":\"E\"}", "u", "", "", true},
		{"1024-byte userId", `{"userId":"` + strings.Repeat("u", 1024) + `","event":"E"}`, strings.Repeat("u", 1024), "", "", true},
	}
	for _, c := range cases {
		out, err := b.decode(t, CallTrack, c.body)
		if err != nil {
			t.Errorf("%s: %v", c.name, err)
			continue
		}
		e := out.Events[0]
		gen := e.Flags&store.FlagMessageIDGenerated != 0
		if e.UserID != c.userID || e.AnonymousID != c.anonID || gen != c.generated || (!gen && e.MessageID != c.msgID) {
			t.Errorf("%s: userId %q anonymousId %q messageId %q generated %v", c.name, e.UserID, e.AnonymousID, e.MessageID, gen)
		}
		if gen && len(e.MessageID) != 36 {
			t.Errorf("%s: generated messageId %q is not a UUID", c.name, e.MessageID)
		}
	}
}

func TestTimestamps(t *testing.T) {
	t.Parallel()
	b := setup(t) // receivedAt 2026-11-24T12:16:00Z
	cases := []struct {
		name  string
		event string // fields added to a track event
		batch string // fields added to the batch, if run as a batch
		want  string
		flags int
	}{
		{"nothing: receivedAt", ``, ``, "2026-11-24T12:16:00Z", 0},
		{"timestamp alone is used as is", `"timestamp":"2026-11-20T08:00:00.5+01:00"`, ``, "2026-11-20T07:00:00.5Z", 0},
		{"originalTimestamp alone is used as is", `"originalTimestamp":"2026-11-20T08:00:00Z"`, ``, "2026-11-20T08:00:00Z", 0},
		{"sentAt alone: receivedAt", `"sentAt":"2020-01-01T00:00:00Z"`, ``, "2026-11-24T12:16:00Z", 0},
		{"fast client clock corrected", `"timestamp":"2026-11-24T13:15:50Z","sentAt":"2026-11-24T13:16:00Z"`, ``, "2026-11-24T12:15:50Z", 0},
		{"slow client clock corrected", `"timestamp":"2026-11-24T11:00:00Z","sentAt":"2026-11-24T11:05:00Z"`, ``, "2026-11-24T12:11:00Z", 0},
		{"originalTimestamp wins over timestamp", `"originalTimestamp":"2026-11-24T10:00:00Z","timestamp":"2000-01-01T00:00:00Z","sentAt":"2026-11-24T10:00:30Z"`, ``, "2026-11-24T12:15:30Z", 0},
		{"batch sentAt corrects", `"timestamp":"2026-11-24T13:15:00Z"`, `"sentAt":"2026-11-24T13:16:00Z"`, "2026-11-24T12:15:00Z", 0},
		{"event sentAt wins over the batch's", `"timestamp":"2026-11-24T13:15:00Z","sentAt":"2026-11-24T13:15:30Z"`, `"sentAt":"2026-11-24T13:16:00Z"`, "2026-11-24T12:15:30Z", 0},
		{"null and empty times are absent", `"timestamp":null,"originalTimestamp":"","sentAt":null`, ``, "2026-11-24T12:16:00Z", 0},
		{"within the skew is kept", `"timestamp":"2026-11-24T12:25:00Z"`, ``, "2026-11-24T12:25:00Z", 0},
		{"future is clamped", `"timestamp":"2026-11-24T12:26:01Z"`, ``, "2026-11-24T12:16:00Z", store.FlagTimestampClamped},
		{"event after sentAt is clamped", `"timestamp":"2026-11-24T14:00:00Z","sentAt":"2026-11-24T13:00:00Z"`, ``, "2026-11-24T12:16:00Z", store.FlagTimestampClamped},
		{"far past historical import", `"timestamp":"2012-12-02T00:30:08.276Z"`, ``, "2012-12-02T00:30:08.276Z", 0},
		{"one-digit month as in Segment's docs", `"timestamp":"2015-2-02T00:30:08.276Z"`, ``, "2015-02-02T00:30:08.276Z", 0},
	}
	for _, c := range cases {
		ev := `{"userId":"u","event":"E"` + strings.TrimSuffix(","+c.event, ",") + `}`
		var out Output
		var err *Error
		if c.batch == "" {
			out, err = b.decode(t, CallTrack, ev)
		} else {
			out, err = b.decode(t, CallBatch, `{"batch":[`+strings.Replace(ev, "{", `{"type":"track",`, 1)+`],`+c.batch+`}`)
		}
		if err != nil || len(out.Events) != 1 {
			t.Errorf("%s: %v %+v", c.name, err, out.Rejected)
			continue
		}
		e := out.Events[0]
		if !e.Timestamp.Equal(mustTime(t, c.want)) || e.Flags != c.flags|store.FlagMessageIDGenerated {
			t.Errorf("%s: timestamp %s flags %b, want %s %b", c.name, e.Timestamp.Format(time.RFC3339Nano), e.Flags, c.want, c.flags)
		}
	}
}

// With KeepTimes (file imports) event times are kept as recorded: no
// correction by sentAt, timestamp before originalTimestamp.
func TestKeepTimes(t *testing.T) {
	t.Parallel()
	b := setup(t) // receivedAt 2026-11-24T12:16:00Z
	cases := []struct {
		name  string
		event string // fields added to a track event
		want  string
		flags int
	}{
		{"sentAt does not correct", `"timestamp":"2020-03-01T10:00:00Z","sentAt":"2020-03-01T10:00:05Z"`, "2020-03-01T10:00:00Z", 0},
		{"timestamp wins over originalTimestamp", `"timestamp":"2020-03-01T10:00:00Z","originalTimestamp":"2020-03-01T11:00:00Z"`, "2020-03-01T10:00:00Z", 0},
		{"originalTimestamp alone", `"originalTimestamp":"2020-03-01T11:00:00Z","sentAt":"2020-03-01T11:00:09Z"`, "2020-03-01T11:00:00Z", 0},
		{"no time: receivedAt", `"sentAt":"2020-03-01T11:00:09Z"`, "2026-11-24T12:16:00Z", 0},
		{"future is still clamped", `"timestamp":"2027-01-01T00:00:00Z"`, "2026-11-24T12:16:00Z", store.FlagTimestampClamped},
	}
	for _, c := range cases {
		body := `{"userId":"u","event":"E",` + c.event + `}`
		out, err := Decode(Input{Call: CallTrack, Body: []byte(body), ReceivedAt: b.rx, KeepTimes: true}, b.lim)
		if err != nil {
			t.Errorf("%s: %v", c.name, err)
			continue
		}
		e := out.Events[0]
		if !e.Timestamp.Equal(mustTime(t, c.want)) || e.Flags != c.flags|store.FlagMessageIDGenerated {
			t.Errorf("%s: timestamp %s flags %b, want %s %b", c.name, e.Timestamp.Format(time.RFC3339Nano), e.Flags, c.want, c.flags)
		}
	}
}

func TestParseTime(t *testing.T) {
	t.Parallel()
	good := map[string]string{
		"2026-01-02T15:04:05.000Z":            "2026-01-02T15:04:05Z",
		"2026-01-02T15:04:05.123456789+01:00": "2026-01-02T14:04:05.123456789Z",
		"2026-01-02T15:04:05.1234567891234Z":  "2026-01-02T15:04:05.123456789Z",
		"2026-01-02T15:04:05+00:00":           "2026-01-02T15:04:05Z",
		"2026-01-02T15:04:05-05:30":           "2026-01-02T20:34:05Z",
		"2026-01-02T15:04:05.123456":          "2026-01-02T15:04:05.123456Z",
		"2026-01-02 15:04:05+0100":            "2026-01-02T14:04:05Z",
		"2026-01-02T15:04:05,5Z":              "2026-01-02T15:04:05.5Z",
		"2026-01-02T15:04Z":                   "2026-01-02T15:04:00Z",
		"2026-01-02t15:04:05z":                "2026-01-02T15:04:05Z",
		"2026-01-02T15:04:05+01":              "2026-01-02T14:04:05Z",
		"2026-01-02":                          "2026-01-02T00:00:00Z",
		"2015-2-2":                            "2015-02-02T00:00:00Z",
		"2024-02-29T00:00:00Z":                "2024-02-29T00:00:00Z",
		"1970-01-01T00:00:00Z":                "1970-01-01T00:00:00Z",
		"9999-12-31T23:59:59Z":                "9999-12-31T23:59:59Z",
	}
	for in, want := range good {
		got, ok := parseTime(in)
		if !ok || !got.Equal(mustTime(t, want)) || got.Location() != time.UTC {
			t.Errorf("parseTime(%q) = %v, %v; want %s", in, got, ok, want)
		}
	}
	bad := []string{
		"", "now", "2026", "2026-01", "26-01-02", "02/01/2026", "2026-00-10", "2026-13-01", "2026-02-30",
		"2025-02-29", "2026-01-32", "2026-01-02T", "2026-01-02T24:00:00Z", "2026-01-02T12:60:00Z",
		"2026-01-02T12:00:61Z", "2026-01-02T12:00:00.Z", "2026-01-02T12:00:00+25:00", "2026-01-02T12:00:00+01:60",
		"2026-01-02T12:00:00 UTC", "2026-01-02T12:00:00Zjunk", "2026-01-02T1:00:00Z", "1969-12-31T23:59:59Z",
		"12026-01-02T00:00:00Z", "2026-01-02T12:00:00+1", "2026-01-02T12", "Mon, 02 Jan 2026 15:04:05 GMT", "1700000000",
	}
	for _, in := range bad {
		if got, ok := parseTime(in); ok {
			t.Errorf("parseTime(%q) = %v, want failure", in, got)
		}
	}
}

// TestRaw checks the exact bytes stored for each event.
func TestRaw(t *testing.T) {
	t.Parallel()
	b := setup(t)
	cases := []struct {
		name  string
		call  Call
		body  string
		raw   string // of the first event or, if no event, the first quarantined one
		quar  bool
		flags int
	}{
		{"single call kept byte for byte", CallTrack,
			` { "type" : "track",` + "\n" + `  "userId":"u", "event":"E","messageId":"m","properties":{ "a" : [1, 2] } }` + "\n",
			`{ "type" : "track",` + "\n" + `  "userId":"u", "event":"E","messageId":"m","properties":{ "a" : [1, 2] } }`, false, 0},
		{"batch event kept byte for byte", CallBatch,
			`{"batch":[ {"type":"track", "userId":"u","event":"E","messageId":"m"} ]}`,
			`{"type":"track", "userId":"u","event":"E","messageId":"m"}`, false, 0},
		{"single call gets its type", CallTrack,
			`{"userId":"u","event":"E","messageId":"m"}`,
			`{"userId":"u","event":"E","messageId":"m","type":"track"}`, false, 0},
		{"null type filled", CallPage,
			`{"type":null,"userId":"u","messageId":"m"}`,
			`{"type":"page","userId":"u","messageId":"m"}`, false, 0},
		{"writeKey first removed", CallTrack,
			`{"writeKey":"k", "type":"track","userId":"u","event":"E","messageId":"m"}`,
			`{"type":"track","userId":"u","event":"E","messageId":"m"}`, false, 0},
		{"writeKey in the middle removed", CallTrack,
			`{"type":"track","userId":"u", "writeKey":"k","event":"E","messageId":"m"}`,
			`{"type":"track","userId":"u","event":"E","messageId":"m"}`, false, 0},
		{"writeKey last removed, type added", CallTrack,
			`{"userId":"u","event":"E","messageId":"m","writeKey":"k" }`,
			`{"userId":"u","event":"E","messageId":"m","type":"track" }`, false, 0},
		{"batch context added", CallBatch,
			`{"batch":[{"type":"track","userId":"u","event":"E","messageId":"m"}],"context":{"library":{"name":"lib"}}}`,
			`{"type":"track","userId":"u","event":"E","messageId":"m","context":{"library":{"name":"lib"}}}`, false, 0},
		{"batch context merged, the event's keys win", CallBatch,
			`{"context":{"library":{"name":"lib"},"ip":"1.1.1.1","locale":"en"},"batch":[{"type":"track","userId":"u","event":"E","messageId":"m","context":{"ip":"2.2.2.2","page":{"path":"/"}}}]}`,
			`{"type":"track","userId":"u","event":"E","messageId":"m","context":{"ip":"2.2.2.2","page":{"path":"/"},"library":{"name":"lib"},"locale":"en"}}`, false, 0},
		{"merge is shallow: the event's library replaces the batch's", CallBatch,
			`{"context":{"library":{"name":"lib","version":"1"}},"batch":[{"type":"track","userId":"u","event":"E","messageId":"m","context":{"library":{"name":"mine"}}}]}`,
			`{"type":"track","userId":"u","event":"E","messageId":"m","context":{"library":{"name":"mine"}}}`, false, 0},
		{"empty event context filled", CallBatch,
			`{"context":{"a":1},"batch":[{"type":"track","userId":"u","event":"E","messageId":"m","context":{ }}]}`,
			`{"type":"track","userId":"u","event":"E","messageId":"m","context":{"a":1 }}`, false, 0},
		{"null event context replaced", CallBatch,
			`{"context":{"a":1},"batch":[{"type":"track","userId":"u","event":"E","messageId":"m","context":null}]}`,
			`{"type":"track","userId":"u","event":"E","messageId":"m","context":{"a":1}}`, false, 0},
		{"integrations merged", CallBatch,
			`{"integrations":{"All":false,"Mixpanel":true},"batch":[{"type":"track","userId":"u","event":"E","messageId":"m","integrations":{"Mixpanel":false}}]}`,
			`{"type":"track","userId":"u","event":"E","messageId":"m","integrations":{"Mixpanel":false,"All":false}}`, false, 0},
		{"empty batch context changes nothing", CallBatch,
			`{"context":{},"integrations":null,"batch":[{"type":"track","userId":"u","event":"E","messageId":"m"}]}`,
			`{"type":"track","userId":"u","event":"E","messageId":"m"}`, false, 0},
		{"batch sentAt added", CallBatch,
			`{"sentAt":"2026-11-24T12:15:59Z","batch":[{"type":"track","userId":"u","event":"E","messageId":"m"}]}`,
			`{"type":"track","userId":"u","event":"E","messageId":"m","sentAt":"2026-11-24T12:15:59Z"}`, false, 0},
		{"event sentAt kept", CallBatch,
			`{"sentAt":"2026-11-24T12:15:59Z","batch":[{"type":"track","userId":"u","event":"E","messageId":"m","sentAt":"2026-11-24T12:15:58Z"}]}`,
			`{"type":"track","userId":"u","event":"E","messageId":"m","sentAt":"2026-11-24T12:15:58Z"}`, false, 0},
		{"everything at once", CallBatch,
			`{"writeKey":"k","sentAt":"2026-11-24T12:15:59Z","context":{"library":{"name":"lib"}},"integrations":{"All":true},"batch":[{"writeKey":"k","type":"track","userId":"u","event":"E","messageId":"m","context":{"ip":"1.1.1.1"}}]}`,
			`{"type":"track","userId":"u","event":"E","messageId":"m","context":{"ip":"1.1.1.1","library":{"name":"lib"}},"integrations":{"All":true},"sentAt":"2026-11-24T12:15:59Z"}`, false, 0},
		{"quarantined events are merged too", CallBatch,
			`{"context":{"library":{"name":"lib"}},"sentAt":"2026-11-24T12:15:59Z","batch":[{"writeKey":"k","type":"track","userId":"u","messageId":"m"}]}`,
			`{"type":"track","userId":"u","messageId":"m","context":{"library":{"name":"lib"}},"sentAt":"2026-11-24T12:15:59Z"}`, true, 0},
		{"quarantined event with a bad context is kept as sent", CallBatch,
			`{"context":{"library":{"name":"lib"}},"batch":[{"type":"track","userId":"u","event":"E","context":"x"}]}`,
			`{"type":"track","userId":"u","event":"E","context":"x"}`, true, 0},
		{"escaped keys compared decoded", CallBatch,
			`{"context":{"libr\u0061ry":{"name":"lib"},"x":1},"batch":[{"type":"track","userId":"u","event":"E","messageId":"m","context":{"library":{}}}]}`,
			`{"type":"track","userId":"u","event":"E","messageId":"m","context":{"library":{},"x":1}}`, false, 0},
	}
	for _, c := range cases {
		out, err := b.decode(t, c.call, c.body)
		if err != nil {
			t.Errorf("%s: %v", c.name, err)
			continue
		}
		var raw json.RawMessage
		switch {
		case c.quar && len(out.Quarantine) == 1:
			raw = out.Quarantine[0].Raw
		case !c.quar && len(out.Events) == 1:
			raw = out.Events[0].Raw
		default:
			t.Errorf("%s: events %+v quarantined %+v", c.name, out.Events, out.Rejected)
			continue
		}
		if string(raw) != c.raw {
			t.Errorf("%s:\n got %s\nwant %s", c.name, raw, c.raw)
		}
	}
}

// TestRawIsACopy checks that changing the body after Decode changes no event.
func TestRawIsACopy(t *testing.T) {
	t.Parallel()
	b := setup(t)
	body := []byte(readFixture(t, "rudder-go-batch.json"))
	out, err := Decode(Input{Call: CallBatch, Body: body, ReceivedAt: b.rx}, b.lim)
	if err != nil {
		t.Fatal(err)
	}
	before := string(out.Events[0].Raw)
	for i := range body {
		body[i] = ' '
	}
	if string(out.Events[0].Raw) != before {
		t.Fatal("an event's raw changed with the body")
	}
}
