package delivery_test

import (
	"bytes"
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	kithsecret "github.com/kithcdp/kith/secret"
	"github.com/kithcdp/kith/store"
)

// TestSensitiveTraitsDeliveredOpened: an event whose sensitive trait was
// sealed at ingestion reaches the destination with the value, while its
// dead letter keeps the envelope.
func TestSensitiveTraitsDeliveredOpened(t *testing.T) {
	t.Parallel()
	keys, err := kithsecret.NewTraitKeys([]byte("0123456789abcdef0123456789abcdef"))
	if err != nil {
		t.Fatal(err)
	}
	paths, err := kithsecret.CompileTraitPaths([]string{"ssn"})
	if err != nil {
		t.Fatal(err)
	}
	sealed := func(t *testing.T, call string) string {
		out, changed, err := keys.SealTraits("acme", json.RawMessage(call), paths)
		if err != nil || !changed {
			t.Fatalf("seal %s: %v", call, err)
		}
		return string(out)
	}
	eachBackend(t, func(t *testing.T, st store.Store) {
		f := setup(t, st, webhookDef, false)
		f.rcv.script(func(body []byte) (int, http.Header) {
			if bytes.Contains(body, []byte(`"Bad"`)) {
				return 400, nil
			}
			return 200, nil
		})
		f.send(t,
			sealed(t, track("m1", "A", `,"context":{"traits":{"ssn":"111-11-1111"}}`)),
			sealed(t, track("m2", "Bad", `,"context":{"traits":{"ssn":"222-22-2222"}}`)))
		waitFor(t, "a dead letter", func() bool { return len(f.dead(t)) == 1 })
		all := strings.Join(f.rcv.bodies(), "\n")
		if !strings.Contains(all, "111-11-1111") || strings.Contains(all, kithsecret.SealedKey) {
			t.Errorf("the destination received %s", all)
		}
		if d := f.dead(t)[0]; strings.Contains(string(d.Payload), "222-22-2222") || !strings.Contains(string(d.Payload), kithsecret.SealedKey) {
			t.Errorf("dead letter payload %s: want the envelope", d.Payload)
		}
	})
}
