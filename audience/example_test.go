package audience_test

import (
	"fmt"
	"time"

	"github.com/kithcdp/kith/audience"
)

func Example() {
	defs := []audience.Definition{
		{Name: "unsubscribed", Suppression: true, SuppressAll: true, Condition: `traits.unsubscribed == true`},
		{Name: "loyal", Condition: `computed.order_count >= 3`},
		{Name: "vip", Condition: `"loyal" in audiences && traits.plan == "pro" && events.performed("App Opened", 7)`},
	}
	set, err := audience.Compile(defs, map[string]string{"order_count": "user"})
	if err != nil {
		fmt.Println(err)
		return
	}
	vip := set.Audience("vip")
	p := &audience.Profile{
		Traits:     map[string]any{"plan": "pro"},
		Computed:   map[string]any{"order_count": int64(4)},
		Audiences:  map[string]bool{},
		Conditions: map[string]any{vip.Reads().Conditions[0]: int64(2)}, // App Opened twice in 7 days
		Now:        time.Now(),
	}
	for _, a := range set.Audiences() {
		in, _ := a.Eval(p)
		p.Audiences[a.Definition().Name] = in
		fmt.Println(a.Definition().Name, in)
	}
	fmt.Println("vip reads", vip.Reads().Traits, vip.Reads().Audiences)

	_, err = audience.Compile([]audience.Definition{{Name: "bad", Condition: `events.count(traits.favorite_event) > 0`}}, nil)
	fmt.Println(err)
	// Output:
	// unsubscribed false
	// loyal true
	// vip true
	// vip reads [plan] [loyal unsubscribed]
	// audience bad: condition:1:14: the event name of events.count(name[, days[, filter]]) must be a literal, like "Order Completed": event conditions are counters kept up to date as events arrive, so their arguments cannot depend on the profile (not_literal)
}
