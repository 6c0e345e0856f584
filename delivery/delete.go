package delivery

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/kithcdp/kith/destination"
	"github.com/kithcdp/kith/store"
)

// ErrDeleteUnsupported is returned (wrapped) by Engine.Delete when the
// destination does not exist or its type cannot delete a person (a
// forward to another Tracking API, which has no delete call).
var ErrDeleteUnsupported = errors.New("the destination cannot delete")

// DefaultDeleteTimeout is Options.DeleteTimeout when unset.
const DefaultDeleteTimeout = 30 * time.Second

// Delete asks destination name of workspace ws to delete what it holds on
// a person, for a data-subject erasure request. It returns nil when the
// destination took the deletion, ErrDeleteUnsupported (wrapped) when it
// does not exist or cannot delete, and otherwise a *destination.Error
// saying whether trying again may help (neither Permanent nor Reject).
//
// The deletion goes through the destination's Sender as configured, with
// the same egress guard and timeouts as its deliveries, within
// Options.DeleteTimeout: the Sender of the worker running on this node,
// between two of its sends, or else one made for the deletion. Neither
// the consent gate nor a restriction applies, and a paused or disabled
// destination is asked too. Delete is idempotent by d.Request: senders
// pass it on as the idempotency key, so the caller may retry.
func (e *Engine) Delete(ctx context.Context, ws, name string, d destination.Deletion) error {
	if d.Workspace == "" {
		d.Workspace = ws
	}
	if d.Workspace != ws {
		return &destination.Error{Reject: true, Msg: fmt.Sprintf("deletion %s is of workspace %q, not %q", d.Request, d.Workspace, ws)}
	}
	if err := d.Check(); err != nil {
		return err
	}
	defs, err := e.o.Store.Definitions(ctx, ws)
	if err != nil {
		return &destination.Error{Msg: fmt.Sprintf("read the destinations of %s: %v", ws, err)}
	}
	var body []byte
	for _, def := range defs {
		if def.Kind == store.DefinitionDestination && def.Name == name {
			body = def.Body
		}
	}
	if body == nil {
		return fmt.Errorf("%w: %s has no destination %q", ErrDeleteUnsupported, ws, name)
	}
	ctx, cancel := context.WithTimeout(ctx, e.o.DeleteTimeout)
	defer cancel()
	e.mu.Lock()
	w := e.workers[ws+"/"+name]
	e.mu.Unlock()
	if w != nil && w.body == string(body) {
		if ok, err := w.delete(ctx, d); ok {
			return err
		}
	}
	def, err := Parse(body)
	if err != nil {
		return &destination.Error{Permanent: true, Msg: err.Error()}
	}
	s, err := e.o.Senders(ws, def)
	if err != nil {
		return &destination.Error{Permanent: true, Msg: fmt.Sprintf("%s destination: %v", def.Type, err)}
	}
	defer s.Close()
	return deleteWith(ctx, s, d)
}

// delete runs a deletion on the worker's sender between its sends (a
// Sender is used by one goroutine at a time, and an export's directory
// by one Sender); false when the worker has stopped.
func (w *worker) delete(ctx context.Context, d destination.Deletion) (bool, error) {
	select {
	case w.sending <- struct{}{}:
		defer func() { <-w.sending }()
	case <-ctx.Done():
		return true, &destination.Error{Msg: "the destination's send in progress did not end in time: " + ctx.Err().Error()}
	}
	if w.closed {
		return false, nil
	}
	return true, deleteWith(ctx, w.sender, d)
}

// deleteWith asks s to delete, if it can; its failures are
// *destination.Error.
func deleteWith(ctx context.Context, s destination.Sender, d destination.Deletion) error {
	del, ok := s.(destination.Deleter)
	if !ok {
		return fmt.Errorf("%w: a %T has no delete call", ErrDeleteUnsupported, s)
	}
	err := del.Delete(ctx, d)
	var de *destination.Error
	switch {
	case err == nil:
		return nil
	case errors.As(err, &de):
		return de
	}
	return &destination.Error{Msg: err.Error()}
}
