package webhook_test

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"strconv"
	"testing"
	"time"

	"github.com/kithcdp/kith/destination/webhook"
)

// FuzzVerify feeds Verify arbitrary headers and bodies: it never panics,
// accepts a request only if the independent computation matches one of
// its entries, and always accepts a correctly signed one.
func FuzzVerify(f *testing.F) {
	f.Add("msg_1", "1614265330", "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=", []byte(`{"test": 2432232314}`))
	f.Add("", "", "", []byte(nil))
	f.Add("a.b", "-1", "v1, v1,", []byte("."))
	key, _ := base64.StdEncoding.DecodeString(secretA[len("whsec_"):])
	now := time.Unix(1614265330, 0)
	f.Fuzz(func(t *testing.T, id, ts, sig string, body []byte) {
		h := http.Header{}
		h.Set("webhook-id", id)
		h.Set("webhook-timestamp", ts)
		h.Set("webhook-signature", sig)
		if webhook.Verify(secretA, h, body, 0, now) == nil && !independentCheck(t, secretA, h, body) {
			// Accepted: one entry must be the right signature (the
			// independent check splits on single spaces only).
			m := hmac.New(sha256.New, key)
			m.Write([]byte(h.Get("webhook-id") + "." + h.Get("webhook-timestamp") + "."))
			m.Write(body)
			want := "v1," + base64.StdEncoding.EncodeToString(m.Sum(nil))
			if !containsField(h.Get("webhook-signature"), want) {
				t.Fatalf("accepted %q %q %q", id, ts, sig)
			}
		}
		if id == "" || h.Get("webhook-id") != id {
			return
		}
		m := hmac.New(sha256.New, key)
		sec := strconv.FormatInt(now.Unix(), 10)
		m.Write([]byte(id + "." + sec + "."))
		m.Write(body)
		h.Set("webhook-timestamp", sec)
		h.Set("webhook-signature", "v1,"+base64.StdEncoding.EncodeToString(m.Sum(nil)))
		if err := webhook.Verify(secretA, h, body, 0, now); err != nil {
			t.Fatalf("a correct signature of %q rejected: %v", id, err)
		}
	})
}

func containsField(s, want string) bool {
	for _, f := range splitFields(s) {
		if f == want {
			return true
		}
	}
	return false
}

func splitFields(s string) []string {
	var out []string
	start := -1
	for i := 0; i <= len(s); i++ {
		if i == len(s) || s[i] == ' ' || s[i] == '\t' || s[i] == '\n' || s[i] == '\r' || s[i] == '\v' || s[i] == '\f' {
			if start >= 0 {
				out = append(out, s[start:i])
				start = -1
			}
		} else if start < 0 {
			start = i
		}
	}
	return out
}

// FuzzParseConfig: any configuration is accepted or refused with an error,
// never a panic, and an accepted one builds a Sender.
func FuzzParseConfig(f *testing.F) {
	f.Add(`{"url":"https://x.example","secrets":["` + secretA + `"],"batch":10,"timeout":"1s","headers":{"A":"b"}}`)
	f.Add(`{"url":"http://[::1]:80","allow_http":true,"secrets":["whsec_"],"timeout":1e300}`)
	f.Fuzz(func(t *testing.T, cfg string) {
		if _, err := webhook.ParseConfig(json.RawMessage(cfg)); err != nil {
			return
		}
		if _, err := webhook.New(json.RawMessage(cfg), nil); err != nil {
			t.Fatalf("ParseConfig accepted what New refuses: %v", err)
		}
	})
}
