package webhook_test

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/kithcdp/kith/destination"
	"github.com/kithcdp/kith/destination/webhook"
	"github.com/kithcdp/kith/store"
)

// ada is a person with every kind of identifier the deletion message
// names.
var ada = destination.Deletion{
	Request: "req-7f3a", Workspace: "acme", Profile: 42,
	Identifiers: []store.Identifier{
		{Type: "anonymous_id", Value: "anon-1"}, {Type: "user_id", Value: "u-ada"}, {Type: "email", Value: "ada@example.com"},
		{Type: "email", Value: "ada@work.example"}, {Type: "phone", Value: "+15555550100"}, {Type: "crm_id", Value: "C-9"},
	},
}

// TestDelete: a deletion is one signed POST to the events' endpoint whose
// webhook-id is the request id and whose body names every identifier;
// with batch > 1 it comes as a batch of one, as events do; a retry sends
// the same webhook-id.
func TestDelete(t *testing.T) {
	t.Parallel()
	for _, batch := range []string{"", `, "batch": 50`} {
		rc := newReceiver(t, nil)
		s := newSender(t, cfg(rc.srv.URL+"/hook", batch))
		del, ok := s.(destination.Deleter)
		if !ok {
			t.Fatal("the webhook sender is no Deleter")
		}
		for range 2 {
			if err := del.Delete(context.Background(), ada); err != nil {
				t.Fatal(err)
			}
		}
		got := rc.requests()
		if len(got) != 2 {
			t.Fatalf("%d requests, want 2", len(got))
		}
		for _, r := range got {
			if id := r.header.Get("Webhook-Id"); id != ada.Request {
				t.Errorf("webhook-id %q, want the request id", id)
			}
			if err := webhook.Verify(secretA, r.header, r.body, 0, time.Now()); err != nil || !independentCheck(t, secretA, r.header, r.body) {
				t.Errorf("signature: %v", err)
			}
			body := r.body
			if batch != "" {
				var b struct{ Batch []json.RawMessage }
				if err := json.Unmarshal(body, &b); err != nil || len(b.Batch) != 1 {
					t.Fatalf("body %s: want a batch of one (%v)", body, err)
				}
				body = b.Batch[0]
			}
			var msg struct {
				Type, MessageID, UserID, AnonymousID string
				Context                              struct {
					ExternalIDs []struct{ ID, Type, Collection, Encoding string }
					Traits      map[string]string
				}
			}
			if err := json.Unmarshal(body, &msg); err != nil {
				t.Fatalf("body %s: %v", body, err)
			}
			if msg.Type != "delete" || msg.MessageID != ada.Request || msg.UserID != "u-ada" || msg.AnonymousID != "anon-1" {
				t.Errorf("message %+v", msg)
			}
			if len(msg.Context.ExternalIDs) != len(ada.Identifiers) {
				t.Errorf("externalIds %+v: want every identifier", msg.Context.ExternalIDs)
			}
			for i, x := range msg.Context.ExternalIDs {
				if x.ID != ada.Identifiers[i].Value || x.Type != ada.Identifiers[i].Type || x.Collection != "users" || x.Encoding != "none" {
					t.Errorf("externalIds[%d] = %+v", i, x)
				}
			}
			if msg.Context.Traits["email"] != "ada@example.com" || msg.Context.Traits["phone"] != "+15555550100" || len(msg.Context.Traits) != 2 {
				t.Errorf("traits %v: want the first email and phone", msg.Context.Traits)
			}
		}
	}
}

// TestDeleteFailures: a deletion is classified as events are (410 is
// permanent, 503 retried); one without a request id or an identifier is
// rejected before anything is sent; the guarded default client refuses a
// private address.
func TestDeleteFailures(t *testing.T) {
	t.Parallel()
	var status atomic.Int64
	status.Store(http.StatusGone)
	rc := newReceiver(t, func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(int(status.Load())) })
	del := newSender(t, cfg(rc.srv.URL, "")).(destination.Deleter)
	failure(t, del.Delete(context.Background(), ada), true, false, 410)
	status.Store(http.StatusServiceUnavailable)
	failure(t, del.Delete(context.Background(), ada), false, false, 503)
	sent := len(rc.requests())
	for _, bad := range []destination.Deletion{
		{Identifiers: ada.Identifiers},
		{Request: "r1"},
		{Request: "r1", Identifiers: []store.Identifier{{Type: "email"}}},
	} {
		failure(t, del.Delete(context.Background(), bad), false, true, 0)
	}
	if n := len(rc.requests()); n != sent {
		t.Errorf("%d requests for bad deletions", n-sent)
	}

	guarded, err := webhook.New(json.RawMessage(cfg(rc.srv.URL, "")), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer guarded.Close()
	de := failure(t, guarded.(destination.Deleter).Delete(context.Background(), ada), true, false, 0)
	if !strings.Contains(de.Msg, "forbidden") {
		t.Errorf("Msg %q: want the egress guard's refusal", de.Msg)
	}
}
