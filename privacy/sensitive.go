package privacy

import (
	"context"

	"github.com/kithcdp/kith/secret"
	"github.com/kithcdp/kith/store"
)

// opened is a Reader whose traits, trait history and events come with
// their sealed sensitive values opened (secret.OpenJSON): the access
// export gives the person their data, not its encrypted form.
type opened struct {
	Reader
	workspace string
}

// openSealed wraps st for an export of workspace.
func openSealed(st Reader, workspace string) Reader { return opened{Reader: st, workspace: workspace} }

func (o opened) Traits(ctx context.Context, workspace string, id store.ProfileID, keys []string) ([]store.Trait, error) {
	ts, err := o.Reader.Traits(ctx, workspace, id, keys)
	for i := range ts {
		ts[i].Value = secret.OpenJSON(o.workspace, ts[i].Value)
	}
	return ts, err
}

func (o opened) TraitHistory(ctx context.Context, workspace string, id store.ProfileID, key string, before int64, limit int) ([]store.TraitValue, error) {
	hs, err := o.Reader.TraitHistory(ctx, workspace, id, key, before, limit)
	for i := range hs {
		hs[i].Value = secret.OpenJSON(o.workspace, hs[i].Value)
	}
	return hs, err
}

func (o opened) Read(ctx context.Context, q store.LogQuery) ([]store.Event, error) {
	es, err := o.Reader.Read(ctx, q)
	for i := range es {
		es[i].Raw = secret.OpenJSON(o.workspace, es[i].Raw)
	}
	return es, err
}
