package portal

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/google/uuid"
	"github.com/kithcdp/kith/privacy"
	"github.com/kithcdp/kith/store"
)

// Request is a data-subject request as the portal shows it.
type Request struct {
	ID       string
	Kind     string // RequestErasure
	Status   string // StatusReceived, StatusInProgress, StatusCompleted
	Received time.Time
	// Deadline is when the law requires the request to be completed.
	Deadline  time.Time
	Completed time.Time // zero until completed
}

// Request kinds and statuses.
const (
	RequestErasure   = "erasure"
	StatusReceived   = "received"
	StatusInProgress = "in_progress"
	StatusCompleted  = "completed"
)

// Requests tracks data-subject requests to completion: what the portal
// needs of the workspace's request tracker.
type Requests interface {
	// Submit records a request of kind about the person identified by id
	// and starts carrying it out.
	Submit(ctx context.Context, ws, kind string, id store.Identifier) (Request, error)
	// Get returns a request by id, or an error wrapping store.ErrNotFound.
	Get(ctx context.Context, ws, id string) (Request, error)
}

// responseTime is the time the GDPR gives to answer a request (article
// 12(3): one month).
const responseTime = 30 * 24 * time.Hour

// appendErasures is the Requests used until the workspace's request
// tracker (privacy.Requests) is wired in: Submit appends the erasure
// command to the log directly, and Get tells completion by whether a
// profile still holds the identifier. It remembers its requests in memory,
// on this node only.
type appendErasures struct {
	append AppendFunc
	lookup func(ctx context.Context, ws string, id store.Identifier) (store.ProfileID, error)
	now    func() time.Time

	mu sync.Mutex
	m  map[string]erasure // request id → what it erases
}

type erasure struct {
	ws       string
	id       store.Identifier
	received time.Time
}

func (a *appendErasures) Submit(ctx context.Context, ws, kind string, id store.Identifier) (Request, error) {
	if kind != RequestErasure {
		return Request{}, fmt.Errorf("request kind %q is not supported", kind)
	}
	now := a.now().UTC()
	req := Request{ID: uuid.NewString(), Kind: kind, Status: StatusReceived, Received: now, Deadline: now.Add(responseTime)}
	cmd := privacy.Command{Action: privacy.ActionErase, Identifier: id, Request: req.ID, Actor: actorPortal, Via: actorPortal}
	ev, err := cmd.Event(ws, now)
	if err != nil {
		return Request{}, err
	}
	if _, err := a.append(ctx, &store.Batch{Events: []store.Event{ev}}); err != nil {
		return Request{}, fmt.Errorf("append the erasure: %w", err)
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.m == nil {
		a.m = map[string]erasure{}
	}
	a.m[req.ID] = erasure{ws: ws, id: id, received: now}
	return req, nil
}

func (a *appendErasures) Get(ctx context.Context, ws, id string) (Request, error) {
	a.mu.Lock()
	e, ok := a.m[id]
	a.mu.Unlock()
	if !ok || e.ws != ws {
		return Request{}, fmt.Errorf("request %s: %w", id, store.ErrNotFound)
	}
	req := Request{ID: id, Kind: RequestErasure, Status: StatusInProgress, Received: e.received, Deadline: e.received.Add(responseTime)}
	_, err := a.lookup(ctx, ws, e.id)
	switch {
	case errors.Is(err, store.ErrNotFound):
		req.Status = StatusCompleted
	case err != nil:
		return Request{}, err
	}
	return req, nil
}
