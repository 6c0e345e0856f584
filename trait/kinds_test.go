package trait

import (
	"testing"
	"time"
)

func TestKinds(t *testing.T) {
	t.Parallel()
	orders := []ev{
		{name: "Order Completed", at: days(20), props: `{"total":50,"sku":"b","coupon":true}`},
		{name: "Order Completed", at: days(3), props: `{"total":19.99,"sku":"a"}`},
		{name: "Order Completed", at: days(1), props: `{"total":120.01,"sku":"b"}`},
		{name: "Order Completed", at: days(0), props: `{"total":"12","sku":"c"}`}, // a string total is not a number
		{name: "Product Viewed", at: days(0), props: `{"total":1000,"sku":"z"}`},
		{name: "Order Completed", at: days(2), props: `{"sku":null}`},
	}
	oc := []string{"Order Completed"}
	tests := []struct {
		name   string
		def    Definition
		evs    []ev
		want   string // Value at base, all time
		want7  string // Value at base with a 7-day window
		wantAt string // with the 7-day window, a week after base
	}{
		{"count", Definition{Kind: "count", Events: oc}, orders, "5", "4", "0"},
		{"count any", Definition{Kind: "count"}, orders, "6", "5", "0"},
		{"count with property", Definition{Kind: "count", Events: oc, Property: "properties.total"}, orders, "4", "3", "0"},
		{"count empty", Definition{Kind: "count", Events: []string{"Nope"}}, orders, "0", "0", "0"},
		{"sum", Definition{Kind: "sum", Events: oc, Property: "properties.total"}, orders, "190", "140", "<nil>"},
		{"sum negative", Definition{Kind: "sum", Property: "properties.v"}, []ev{{at: days(1), props: `{"v":-0.5}`}, {at: days(1), props: `{"v":-2}`}}, "-2.5", "-2.5", "<nil>"},
		{"sum empty", Definition{Kind: "sum", Events: []string{"Nope"}, Property: "properties.total"}, orders, "<nil>", "<nil>", "<nil>"},
		{"avg", Definition{Kind: "avg", Events: oc, Property: "properties.total"}, orders, "63.333333333333336", "70", "<nil>"},
		{"min", Definition{Kind: "min", Property: "properties.total"}, orders, "19.99", "19.99", "<nil>"},
		{"max", Definition{Kind: "max", Events: oc, Property: "properties.total"}, orders, "120.01", "120.01", "<nil>"},
		{"first", Definition{Kind: "first", Events: oc, Property: "properties.sku"}, orders, `"b"`, `"a"`, "<nil>"},
		{"last", Definition{Kind: "last", Events: oc, Property: "properties.sku"}, orders, `"c"`, `"c"`, "<nil>"},
		{"first bool", Definition{Kind: "first", Property: "properties.coupon"}, orders, "true", "<nil>", "<nil>"},
		{"most_frequent", Definition{Kind: "most_frequent", Events: oc, Property: "properties.sku"}, orders, `"b"`, `"a"`, "<nil>"},
		{"most_frequent numbers", Definition{Kind: "most_frequent", Property: "properties.v"}, []ev{
			{at: days(1), props: `{"v":2}`}, {at: days(1), props: `{"v":2.0}`}, {at: days(1), props: `{"v":"2"}`}, {at: days(1), props: `{"v":"2"}`}, {at: days(9), props: `{"v":2}`},
		}, "2", "2", "<nil>"}, // a tie between 2 and "2" goes to the smaller
		{"unique_list", Definition{Kind: "unique_list", Property: "properties.sku"}, orders, `["a","b","c","z"]`, `["a","b","c","z"]`, "<nil>"},
		{"unique_list mixed", Definition{Kind: "unique_list", Property: "properties.v"}, []ev{
			{at: days(1), props: `{"v":"x"}`}, {at: days(1), props: `{"v":10}`}, {at: days(1), props: `{"v":false}`}, {at: days(1), props: `{"v":9.5}`}, {at: days(1), props: `{"v":{"o":1}}`}, {at: days(1), props: `{"v":"é\"q"}`},
		}, `[false,9.5,10,"x","é\"q"]`, `[false,9.5,10,"x","é\"q"]`, "<nil>"},
		{"unique_count", Definition{Kind: "unique_count", Events: oc, Property: "properties.sku"}, orders, "3", "3", "0"},
		{"property at top level", Definition{Kind: "unique_list", Types: []string{"track", "page"}, Property: "event"}, append([]ev{{typ: "page", name: "Home", at: days(1)}}, orders...), `["Order Completed","Product Viewed"]`, `["Order Completed","Product Viewed"]`, "<nil>"},
		{"page name", Definition{Kind: "unique_list", Types: []string{"page"}, Property: "name"}, append([]ev{{typ: "page", name: "Home", at: days(1)}}, orders...), `["Home"]`, `["Home"]`, "<nil>"},
		{"nested property", Definition{Kind: "last", Property: "context.campaign.name"}, []ev{
			{at: days(1), extra: `"context":{"campaign":{"name":"spring","source":"x"}}`},
			{at: days(2), extra: `"context":{"campaign":{"name":"winter"}}`},
			{at: days(0), extra: `"context":{"campaign":"flat"}`},
		}, `"spring"`, `"spring"`, "<nil>"},
		{"where", Definition{Kind: "count", Events: oc, Where: `properties.total > 100`}, orders, "1", "1", "0"},
		{"where on traits", Definition{Kind: "count", Types: []string{"identify", "track"}, Where: `traits.plan == "pro"`}, []ev{
			{typ: "identify", at: days(1), extra: `"traits":{"plan":"pro"}`},
			{at: days(1), extra: `"context":{"traits":{"plan":"pro"}}`},
			{at: days(1), extra: `"context":{"traits":{"plan":"free"}}`},
		}, "2", "2", "0"},
		{"where type and timestamp", Definition{Kind: "count", Types: []string{"track", "page"}, Where: `type == "page" && timestamp > timestamp("2025-03-01T00:00:00Z")`}, []ev{
			{typ: "page", at: days(1)}, {typ: "page", at: days(30)}, {at: days(1)},
		}, "1", "1", "0"},
		{"where event and strings", Definition{Kind: "count", Where: `event.startsWith("Order") && properties.sku.lowerAscii() in ["a", "b"]`}, orders, "3", "2", "0"},
		{"funnel", Definition{Kind: "funnel", Events: []string{"Product Viewed", "Order Completed"}, Within: "1d"}, []ev{
			{name: "Product Viewed", at: days(10)},
			{name: "Order Completed", at: days(10).Add(time.Hour)},
			{name: "Product Viewed", at: days(2)},
			{name: "Order Completed", at: days(0)}, // too late
			{name: "Product Viewed", at: days(1)},
			{name: "Order Completed", at: days(1).Add(time.Minute)},
			{name: "Order Completed", at: days(1).Add(2 * time.Minute)}, // chain consumed
		}, "2", "1", "0"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			tt.def.Name = "t"
			all := mustCompile(t, tt.def)
			if got := str(all.Value(fold(all, tt.evs), base)); got != tt.want {
				t.Errorf("all time: Value = %s, want %s", got, tt.want)
			}
			tt.def.WindowDays = 7
			win := mustCompile(t, tt.def)
			s := fold(win, tt.evs)
			if got := str(win.Value(s, base)); got != tt.want7 {
				t.Errorf("7 days: Value = %s, want %s", got, tt.want7)
			}
			later := base.AddDate(0, 0, 7)
			if got := str(win.Value(s, later)); got != tt.wantAt {
				t.Errorf("7 days, a week later: Value = %s, want %s", got, tt.wantAt)
			}
		})
	}
}
