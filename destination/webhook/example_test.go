package webhook_test

import (
	"fmt"
	"net/http"
	"time"

	"github.com/kithcdp/kith/destination/webhook"
)

// A receiver checks each request before it trusts it, on the raw body.
// Here with the Standard Webhooks specification's own example.
func ExampleVerify() {
	const secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
	body := []byte(`{"test": 2432232314}`)
	h := http.Header{}
	h.Set("webhook-id", "msg_p5jXN8AQM9LWM0D4loKWxJek")
	h.Set("webhook-timestamp", "1614265330")
	h.Set("webhook-signature", "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=")
	received := time.Unix(1614265330, 0).Add(3 * time.Second)

	fmt.Println(webhook.Verify(secret, h, body, 5*time.Minute, received))
	fmt.Println(webhook.Verify(secret, h, []byte(`{"test": 1}`), 5*time.Minute, received))
	fmt.Println(webhook.Verify(secret, h, body, 5*time.Minute, received.Add(time.Hour)))
	// Output:
	// <nil>
	// webhook: no matching signature
	// webhook: timestamp outside the tolerance: 1614265330 is 1h0m3s from now
}
