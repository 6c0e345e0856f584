package ingest_test

import (
	"fmt"
	"time"

	"github.com/kithcdp/kith/ingest"
)

// A batch with one invalid event: the valid ones are returned for the log,
// the invalid one for the quarantine, with a rejection for the response.
func ExampleDecode() {
	body := []byte(`{
		"batch": [
			{"type": "identify", "userId": "u-1", "messageId": "m1", "timestamp": "2026-01-02T15:03:50Z"},
			{"type": "track", "userId": "u-1", "messageId": "m2"}
		],
		"context": {"library": {"name": "analytics-go", "version": "3.0.0"}},
		"sentAt": "2026-01-02T15:04:00Z"
	}`)
	received := time.Date(2026, 1, 2, 14, 4, 0, 0, time.UTC) // the client's clock is an hour fast
	out, err := ingest.Decode(ingest.Input{Call: ingest.CallBatch, Body: body, ReceivedAt: received}, ingest.DefaultLimits())
	if err != nil {
		fmt.Println(err)
		return
	}
	for _, e := range out.Events {
		fmt.Println(e.Type, e.UserID, e.Timestamp.Format(time.RFC3339))
		fmt.Println(string(e.Raw))
	}
	for _, r := range out.Rejected {
		fmt.Println(r.Index, r.Code, r.Message)
	}
	// Output:
	// identify u-1 2026-01-02T14:03:50Z
	// {"type": "identify", "userId": "u-1", "messageId": "m1", "timestamp": "2026-01-02T15:03:50Z","context":{"library": {"name": "analytics-go", "version": "3.0.0"}},"sentAt":"2026-01-02T15:04:00Z"}
	// 1 missing_event a track call needs a non-empty event name
}

// The paths that analytics-next posts to map to calls.
func ExampleCallForPath() {
	for _, p := range []string{"t", "track", "b", "import", "events"} {
		c, ok := ingest.CallForPath(p)
		fmt.Printf("%s: %q %v\n", p, c, ok)
	}
	// Output:
	// t: "track" true
	// track: "track" true
	// b: "batch" true
	// import: "batch" true
	// events: "" false
}
