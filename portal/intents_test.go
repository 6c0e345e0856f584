package portal_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"

	"github.com/kithcdp/kith/store"
)

// respond calls the intent API with token and body.
func (b *bundle) respond(t *testing.T, intent, token, body string) (int, map[string]any) {
	t.Helper()
	req, _ := http.NewRequest("POST", b.srv.URL+"/v1/workspaces/acme/intents/"+intent+"/responses", strings.NewReader(body))
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	var m map[string]any
	if err := json.Unmarshal(raw, &m); err != nil {
		t.Fatalf("not JSON: %s", raw)
	}
	return resp.StatusCode, m
}

var intentIDPattern = regexp.MustCompile(`intent-[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}`)

func TestIntentcasting(t *testing.T) {
	t.Parallel()
	b, br, _ := adaSignedIn(t)
	mustContain(t, br.get("/portal/acme/intents"), "None yet.", `<label for="looking_for">`)

	pg := br.post("/portal/acme/intents", url.Values{"looking_for": {"a road bike, size 56"}, "budget": {"800 EUR"}, "contact_by": {"email"}})
	if pg.status != http.StatusSeeOther {
		t.Fatalf("publish: %d %s", pg.status, pg.body)
	}
	b.fold(t)
	pg = br.get("/portal/acme/intents")
	mustContain(t, pg, "a road bike, size 56", "Budget 800 EUR", "No answers yet.")
	id := intentIDPattern.FindString(pg.body)
	if id == "" {
		t.Fatalf("no intent id on the page:\n%s", pg.body)
	}
	// The intent is in the log under its pseudonym only.
	evs, err := b.st.Read(context.Background(), store.LogQuery{Workspace: "acme", Name: "Intent Published"})
	if err != nil || len(evs) != 1 || evs[0].AnonymousID != id || evs[0].UserID != "" || strings.Contains(strings.ToLower(string(evs[0].Raw)), "ada") {
		t.Fatalf("the intent event: %+v %v", evs, err)
	}
	ada, _ := b.lookupAda()
	if p, err := b.st.Lookup(context.Background(), "acme", store.Identifier{Type: "anonymous_id", Value: id}); err != nil || p == ada {
		t.Fatalf("the intent's profile %v (%v) is Ada's %v", p, err, ada)
	}

	// The company answers through the admin API.
	for _, c := range []struct {
		intent, token, body string
		status              int
		code                string
	}{
		{id, "", `{"from":"Velo","message":"hi"}`, 401, "missing_token"},
		{id, "nope", `{"from":"Velo","message":"hi"}`, 401, "invalid_token"},
		{id, adminToken, `{"from":"Velo"}`, 400, "invalid_response"},
		{id, adminToken, `{"from":"Velo","message":"hi","extra":1}`, 400, "invalid_json"},
		{id, adminToken, `not json`, 400, "invalid_json"},
		{"intent-00000000-0000-4000-8000-000000000000", adminToken, `{"from":"Velo","message":"hi"}`, 404, "intent_not_found"},
		{"someone-else", adminToken, `{"from":"Velo","message":"hi"}`, 404, "intent_not_found"},
	} {
		if status, m := b.respond(t, c.intent, c.token, c.body); status != c.status || m["error"].(map[string]any)["code"] != c.code {
			t.Errorf("respond %s %q: %d %v, want %d %s", c.intent, c.body, status, m, c.status, c.code)
		}
	}
	status, m := b.respond(t, id, adminToken, `{"from":"Velo Shop","message":"The Allez 56 at 750 EUR"}`)
	if status != http.StatusCreated || m["intent"] != id {
		t.Fatalf("respond: %d %v", status, m)
	}
	b.fold(t)
	pg = br.get("/portal/acme/intents")
	mustContain(t, pg, "Velo Shop", "The Allez 56 at 750 EUR", "Accept and reveal who I am")

	// Bad accepts.
	for _, f := range []url.Values{
		{"intent": {"intent-00000000-0000-4000-8000-000000000000"}, "response": {m["response"].(string)}},
		{"intent": {id}, "response": {"nope"}},
	} {
		if pg := br.post("/portal/acme/intents/accept", f); pg.status != http.StatusNotFound {
			t.Errorf("accept %v: %d", f, pg.status)
		}
	}
	// Nobody else can accept an answer to Ada's intent.
	eve := b.browser(t)
	eve.signIn("eve@example.com")
	if pg := eve.post("/portal/acme/intents/accept", url.Values{"intent": {id}, "response": {m["response"].(string)}}); pg.status != http.StatusNotFound {
		t.Errorf("another person accepts Ada's intent: %d", pg.status)
	}
	// Accepting links the pseudonym to Ada.
	if pg := br.post("/portal/acme/intents/accept", url.Values{"intent": {id}, "response": {m["response"].(string)}}); pg.status != http.StatusSeeOther {
		t.Fatalf("accept: %d %s", pg.status, pg.body)
	}
	b.fold(t)
	if p, err := b.st.Lookup(context.Background(), "acme", store.Identifier{Type: "anonymous_id", Value: id}); err != nil || p != ada {
		t.Errorf("after acceptance the intent's profile is %v (%v), want Ada's %v", p, err, ada)
	}
	if evs, err := b.st.Read(context.Background(), store.LogQuery{Workspace: "acme", Name: "Intent Response Accepted"}); err != nil || len(evs) != 1 || evs[0].AnonymousID != id {
		t.Errorf("accepted event: %v %v", evs, err)
	}
	pg = br.get("/portal/acme/intents")
	mustContain(t, pg, "accepted")
	if strings.Contains(pg.body, "Accept and reveal who I am") {
		t.Error("an accepted intent still offers acceptance")
	}
	if pg := br.post("/portal/acme/intents/accept", url.Values{"intent": {id}, "response": {m["response"].(string)}}); pg.status != http.StatusConflict {
		t.Errorf("accept again: %d", pg.status)
	}

	// Bad publications.
	for _, c := range []struct {
		form url.Values
		says string
	}{
		{url.Values{"looking_for": {" "}, "contact_by": {"email"}}, "Say what you are looking for."},
		{url.Values{"looking_for": {strings.Repeat("x", 201)}, "contact_by": {"email"}}, "Keep it short"},
		{url.Values{"looking_for": {"a bike"}, "contact_by": {"pigeon"}}, "Choose how you want to be contacted"},
	} {
		if pg := br.post("/portal/acme/intents", c.form); pg.status != http.StatusBadRequest || !strings.Contains(pg.body, c.says) {
			t.Errorf("publish %v: %d", c.form, pg.status)
		}
	}
	// A second intent takes a new pseudonym, even before the first is folded.
	br.post("/portal/acme/intents", url.Values{"looking_for": {"a helmet"}, "contact_by": {"phone"}})
	br.post("/portal/acme/intents", url.Values{"looking_for": {"lights"}, "contact_by": {"phone"}})
	evs, _ = b.st.Read(context.Background(), store.LogQuery{Workspace: "acme", Name: "Intent Published"})
	seen := map[string]bool{}
	for _, e := range evs {
		seen[e.AnonymousID] = true
	}
	if len(evs) != 3 || len(seen) != 3 {
		t.Errorf("three intents under %d pseudonyms", len(seen))
	}
	// A person has at most 20 intents.
	for i := 3; i < 20; i++ {
		if pg := br.post("/portal/acme/intents", url.Values{"looking_for": {fmt.Sprintf("thing %d", i)}, "contact_by": {"post"}}); pg.status != http.StatusSeeOther {
			t.Fatalf("intent %d: %d", i+1, pg.status)
		}
	}
	if pg := br.post("/portal/acme/intents", url.Values{"looking_for": {"one more"}, "contact_by": {"post"}}); pg.status != http.StatusConflict || !strings.Contains(pg.body, "20 intents") {
		t.Errorf("a 21st intent: %d", pg.status)
	}
	if pg := br.post("/portal/acme/intents", url.Values{"looking_for": {"a bike"}, "budget": {strings.Repeat("9", 101)}, "contact_by": {"email"}}); pg.status != http.StatusBadRequest || !strings.Contains(pg.body, "Keep it short") {
		t.Errorf("a budget too long: %d", pg.status)
	}
}
