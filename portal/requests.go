package portal

import (
	"context"

	"github.com/kithcdp/kith/privacy"
	"github.com/kithcdp/kith/store"
)

// Requests carries out and tracks data-subject requests: what the portal
// needs of *privacy.Requests.
type Requests interface {
	// Submit records a request and starts carrying it out.
	Submit(ctx context.Context, s privacy.Submission) (store.PrivacyRequest, error)
	// Get returns a request, advanced if it is in progress, or an error
	// wrapping store.ErrNotFound.
	Get(ctx context.Context, ws, id string) (store.PrivacyRequest, error)
	// Accessed completes an access request whose export was downloaded.
	Accessed(ctx context.Context, r store.PrivacyRequest) (store.PrivacyRequest, error)
}
