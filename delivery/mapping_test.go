package delivery

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/kithcdp/kith/store"
)

// TestLogged: the payload of a log event is valid JSON holding the event's
// fields as received (nested values byte for byte), with Kith's messageId,
// corrected timestamp and receivedAt, and without what the timestamp was
// corrected from.
func TestLogged(t *testing.T) {
	t.Parallel()
	ev := &store.Event{
		MessageID: "m-1", Timestamp: time.Date(2026, 12, 3, 9, 0, 0, 5, time.UTC), ReceivedAt: time.Date(2026, 12, 3, 9, 0, 1, 0, time.UTC),
		Raw: json.RawMessage(`{"type":"track","event":"A \"quoted\"","properties":{"b": [1, 2], "é":"x"},
			"originalTimestamp":"2020-01-01T00:00:00Z","sentAt":"2020-01-01T00:00:01Z","writeKey":"wk","timestamp":"2020-01-01T00:00:00Z"}`),
	}
	out := logged(ev)
	if !json.Valid(out) {
		t.Fatalf("not JSON: %s", out)
	}
	var got map[string]json.RawMessage
	if err := json.Unmarshal(out, &got); err != nil {
		t.Fatal(err)
	}
	want := map[string]string{
		"type": `"track"`, "event": `"A \"quoted\""`, "properties": `{"b": [1, 2], "é":"x"}`,
		"messageId": `"m-1"`, "timestamp": `"2026-12-03T09:00:00.000000005Z"`, "receivedAt": `"2026-12-03T09:00:01Z"`,
	}
	if len(got) != len(want) {
		t.Errorf("fields %s, want %v", out, want)
	}
	for k, v := range want {
		if string(got[k]) != v {
			t.Errorf("%s = %s, want %s", k, got[k], v)
		}
	}
	if string(logged(&store.Event{Raw: json.RawMessage(`[1]`)})) != `[1]` {
		t.Error("a payload that is not an object is not sent as it is")
	}
}
