package stream

import (
	"context"
	"errors"
	"testing"

	"github.com/nats-io/nats.go"

	"github.com/kithcdp/kith/destination"
	"github.com/kithcdp/kith/store"
)

// TestDelete: a deletion is one message on the subject, after the
// deliveries sent before it, with the request id as Nats-Msg-Id (a retry
// is stored once), kind "deletion", the profile, and the delete message as
// body; a bad deletion is rejected without publishing.
func TestDelete(t *testing.T) {
	t.Parallel()
	ns := startServer(t, nil)
	s := ns.sender(t, map[string]any{"subject": "kith.acme.erase"})
	ctx := context.Background()
	if err := s.Send(ctx, deliveries(1, 3)); err != nil {
		t.Fatal(err)
	}
	d := destination.Deletion{Request: "req-1", Workspace: "acme", Profile: 7,
		Identifiers: []store.Identifier{{Type: "user_id", Value: "u-ada"}, {Type: "email", Value: "ada@example.com"}}}
	for range 2 {
		if err := s.Delete(ctx, d); err != nil {
			t.Fatal(err)
		}
	}
	var de *destination.Error
	if err := s.Delete(ctx, destination.Deletion{Request: "req-2"}); !errors.As(err, &de) || !de.Reject {
		t.Fatalf("Delete naming no identifier: %v, want a Reject", err)
	}
	got := consume(t, ns.admin(t), "kith_acme_erase")
	if len(got) != 4 {
		t.Fatalf("stream holds %d messages, want the 3 deliveries and one deletion", len(got))
	}
	m := got[3]
	h := m.Headers()
	if h.Get(nats.MsgIdHdr) != "req-1" || h.Get(HeaderKind) != destination.KindDeletion || h.Get(HeaderProfile) != "7" ||
		h.Get(HeaderPosition) != "" || h.Get(HeaderAt) != "" {
		t.Errorf("headers %v", h)
	}
	if want, _ := d.Payload(); string(m.Data()) != string(want) {
		t.Errorf("body %s, want the delete message %s", m.Data(), want)
	}
}
