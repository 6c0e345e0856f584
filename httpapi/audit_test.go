package httpapi_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/kithcdp/kith/store"
)

const auditPath = "/v1/workspaces/acme/audit"

// auditUntil reads a workspace's audit log from the store until it holds
// n entries (reads are flushed within 100 ms) or 10 s have passed.
func auditUntil(t *testing.T, st store.Store, ws string, n int) []store.AuditEntry {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		es, err := st.Audit(context.Background(), ws, 0, 1000)
		if err != nil {
			t.Fatal(err)
		}
		if len(es) >= n || time.Now().After(deadline) {
			return es
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestAuditRecordsWritesAndPersonalReads(t *testing.T) {
	t.Parallel()
	b := setupProfiles(t)
	const adaPath = "/v1/spaces/acme/collections/users/profiles/email:ada@example.com/traits"

	// An admin change: audited before it is answered, so the entry is
	// there as soon as the answer is.
	if code, _ := b.call(t, "PUT", "/v1/workspaces/acme/audiences/vip", opsToken, `{"condition":"true"}`); code != 201 {
		t.Fatalf("PUT audience: %d", code)
	}
	es, err := b.st.Audit(context.Background(), "acme", 0, 100)
	if err != nil || len(es) != 1 {
		t.Fatalf("after the PUT: %d entries, %v", len(es), err)
	}
	put := es[0]
	if put.Actor != "ops" || put.Action != "definition.put" || put.Target != "audience:vip" || put.Method != "PUT" ||
		put.Path != "/v1/workspaces/acme/audiences/vip" || put.Status != 201 || string(put.Details) != `{"route":"compute_definitions"}` {
		t.Fatalf("PUT entry: %+v", put)
	}

	// Reads of personal data: a Profile API read (with a query that names a
	// person) and one of a profile that does not exist.
	if code, _ := b.call(t, "GET", adaPath+"?limit=5&next=ada@example.com", deskToken, ""); code != 200 {
		t.Fatalf("profile read: %d", code)
	}
	if code, _ := b.call(t, "GET", "/v1/spaces/acme/collections/users/profiles/user_id:nobody-here/traits", deskToken, ""); code != 404 {
		t.Fatalf("missing profile read: %d", code)
	}
	// Not audited: a read of configuration, refused requests, the
	// tracking API, and reading the audit log itself.
	b.call(t, "GET", "/v1/workspaces/acme/audiences/vip", opsToken, "")
	b.call(t, "GET", adaPath, "tok_wrong_1234567890", "")
	b.call(t, "GET", adaPath, pdebugToken, "")
	b.call(t, "GET", auditPath, opsToken, "")
	// The other workspace's read lands in its own log.
	if code, _ := b.call(t, "GET", "/v1/spaces/globex/collections/users/profiles/user_id:ada/traits", globexToken, ""); code != 200 {
		t.Fatalf("globex read: %d", code)
	}

	es = auditUntil(t, b.st, "acme", 3)
	if len(es) != 3 {
		t.Fatalf("%d acme entries, want 3: %+v", len(es), es)
	}
	read, missing := es[1], es[2]
	if read.Actor != "desk" || read.Action != store.AuditActionTokenUse || read.Method != "GET" || read.Status != 200 ||
		string(read.Details) != `{"route":"profile_traits"}` || !strings.HasPrefix(read.Target, "profile:email:hmac-") {
		t.Fatalf("read entry: %+v", read)
	}
	if missing.Status != 404 || !strings.HasPrefix(missing.Target, "profile:user_id:hmac-") {
		t.Fatalf("missing-profile entry: %+v", missing)
	}
	for _, e := range es {
		for _, raw := range []string{"ada@example.com", "ada%40example.com", "nobody-here"} {
			if strings.Contains(e.Path, raw) || strings.Contains(e.Target, raw) || strings.Contains(string(e.Details), raw) {
				t.Fatalf("entry %d holds the identifier %q: %+v", e.ID, raw, e)
			}
		}
	}
	// The identifier's digest is stable and keyed: the path keeps the type
	// and the limit, the other query values become digests.
	if !strings.HasPrefix(read.Path, "/v1/spaces/acme/collections/users/profiles/email:hmac-") ||
		!strings.HasSuffix(strings.SplitN(read.Path, "?", 2)[0], "/traits") ||
		!strings.Contains(read.Path, "limit=5") || !strings.Contains(read.Path, "next=hmac-") {
		t.Fatalf("read path %q", read.Path)
	}
	if read.Target != "profile:"+strings.Split(strings.Split(read.Path, "/profiles/")[1], "/")[0] {
		t.Fatalf("target %q does not match path %q", read.Target, read.Path)
	}

	g := auditUntil(t, b.st, "globex", 1)
	if len(g) != 1 || g[0].Actor != "desk" || g[0].Workspace != "globex" {
		t.Fatalf("globex entries: %+v", g)
	}
}

func TestAuditAPIPagingScopeAndWorkspace(t *testing.T) {
	t.Parallel()
	b := setupProfiles(t)
	for _, name := range []string{"a", "b", "c", "d", "e"} {
		if code, _ := b.call(t, "PUT", "/v1/workspaces/acme/audiences/"+name, opsToken, `{"condition":"true"}`); code != 201 {
			t.Fatalf("PUT %s: %d", name, code)
		}
	}
	if code, _ := b.call(t, "DELETE", "/v1/workspaces/acme/audiences/e", opsToken, ""); code != 200 && code != 204 {
		t.Fatalf("DELETE: %d", code)
	}

	// Page through with limit 2: 6 entries in 3 full pages, then an empty one.
	var actions, targets []string
	next := ""
	for pages := 0; ; pages++ {
		if pages > 10 {
			t.Fatal("paging does not end")
		}
		code, m := (&bundle{srv: b.srv}).get(t, auditPath+"?limit=2&next="+next, opsToken)
		if code != 200 {
			t.Fatalf("page %d: %d %v", pages, code, m)
		}
		data := m["data"].([]any)
		for _, d := range data {
			e := d.(map[string]any)
			actions = append(actions, e["action"].(string))
			targets = append(targets, e["target"].(string))
			if e["actor"] != "ops" || e["method"] == nil || e["status"] == nil || e["at"] == nil || e["id"] == nil {
				t.Fatalf("entry %v", e)
			}
		}
		n, _ := m["next"].(string)
		if n == "" {
			break
		}
		next = n
	}
	if strings.Join(actions, ",") != "definition.put,definition.put,definition.put,definition.put,definition.put,definition.delete" ||
		strings.Join(targets, ",") != "audience:a,audience:b,audience:c,audience:d,audience:e,audience:e" {
		t.Fatalf("actions %v targets %v", actions, targets)
	}

	// Scope admin only; a token of another workspace is refused as if the
	// workspace were not there; bad cursors are 400.
	for _, c := range []struct {
		path, token string
		want        int
	}{
		{auditPath, deskToken, 403},
		{auditPath, pdebugToken, 403},
		{auditPath, globexToken, 404},
		{"/v1/workspaces/globex/audit", opsToken, 404},
		{auditPath, "", 401},
		{auditPath + "?next=x", opsToken, 400},
		{auditPath + "?limit=0", opsToken, 400},
	} {
		code, _ := (&bundle{srv: b.srv}).get(t, c.path, c.token)
		if code != c.want {
			t.Errorf("GET %s with %q: %d, want %d", c.path, c.token, code, c.want)
		}
	}
	// None of those added entries: refused requests and audit reads are
	// not audited.
	if es, _ := b.st.Audit(context.Background(), "acme", 0, 100); len(es) != 6 {
		t.Fatalf("%d entries, want 6", len(es))
	}
}
