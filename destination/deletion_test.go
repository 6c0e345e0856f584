package destination_test

import (
	"errors"
	"testing"

	"github.com/kithcdp/kith/destination"
	"github.com/kithcdp/kith/store"
)

// TestDeletionPayload: the delete message names the first identifier of
// each type Segment has a field for, lists every identifier, and leaves
// out what the person does not have; a deletion that names no one, or
// has no request id, is rejected.
func TestDeletionPayload(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		ids  []store.Identifier
		want string
	}{
		{"anonymous only", []store.Identifier{{Type: "anonymous_id", Value: "a1"}, {Type: "anonymous_id", Value: "a2"}},
			`{"type":"delete","messageId":"r1","anonymousId":"a1","context":{"externalIds":[` +
				`{"id":"a1","type":"anonymous_id","collection":"users","encoding":"none"},` +
				`{"id":"a2","type":"anonymous_id","collection":"users","encoding":"none"}]}}`},
		{"custom type and a phone", []store.Identifier{{Type: "crm_id", Value: "C-1"}, {Type: "phone", Value: "+15555550100"}},
			`{"type":"delete","messageId":"r1","context":{"externalIds":[` +
				`{"id":"C-1","type":"crm_id","collection":"users","encoding":"none"},` +
				`{"id":"+15555550100","type":"phone","collection":"users","encoding":"none"}],"traits":{"phone":"+15555550100"}}}`},
	} {
		got, err := destination.Deletion{Request: "r1", Identifiers: tc.ids}.Payload()
		if err != nil || string(got) != tc.want {
			t.Errorf("%s: %s, %v\nwant %s", tc.name, got, err, tc.want)
		}
	}
	for _, bad := range []destination.Deletion{
		{},
		{Request: "r1"},
		{Identifiers: []store.Identifier{{Type: "email", Value: "a@b.c"}}},
		{Request: "r1", Identifiers: []store.Identifier{{Type: "", Value: "x"}}},
	} {
		_, err := bad.Payload()
		var de *destination.Error
		if !errors.As(err, &de) || !de.Reject || de.Permanent {
			t.Errorf("Payload of %+v: %v, want a Reject", bad, err)
		}
	}
}
