package importer_test

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"strings"

	"github.com/kithcdp/kith/importer"
	"github.com/kithcdp/kith/store"
	"github.com/kithcdp/kith/store/sqlite"
)

// Import a CRM export into workspace "acme" as source "crm": each row
// becomes an identify call, bad rows go to the rejects writer.
func ExampleRun() {
	ctx := context.Background()
	dir, _ := os.MkdirTemp("", "kith-example")
	defer os.RemoveAll(dir)
	st, err := sqlite.Open(ctx, dir)
	if err != nil {
		fmt.Println(err)
		return
	}
	defer st.Close()
	// kith serve creates these from the config file.
	_ = st.PutWorkspace(ctx, store.Workspace{Slug: "acme", Settings: json.RawMessage(`{}`)})
	_ = st.PutSource(ctx, store.Source{Workspace: "acme", Slug: "crm", Settings: json.RawMessage(`{}`)})

	csv := "crm_id,email,lifetime_value\n" +
		"c-1,ada@example.com,1200.50\n" +
		"c-2,bob@example.com,n/a\n"
	mapping, err := importer.ParseMapping("crm_id=userId,email=traits.email,lifetime_value=traits.ltv:number")
	if err != nil {
		fmt.Println(err)
		return
	}
	sum, err := importer.Run(ctx, st, importer.Options{
		Workspace: "acme",
		Source:    "crm",
		Format:    importer.CSV,
		Mapping:   mapping,
		Rejects:   os.Stdout,
	}, strings.NewReader(csv))
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Printf("%d events, %d duplicates, %d rows, %d rejected\n", sum.Events, sum.Duplicates, sum.Lines, sum.Rejected)

	evs, _ := st.Read(ctx, store.LogQuery{Workspace: "acme"})
	fmt.Println(evs[0].UserID, strings.Replace(string(evs[0].Raw), evs[0].MessageID, "imp-…", 1))
	// Output:
	// {"line":3,"code":"invalid_value","message":"column \"lifetime_value\": \"n/a\" is not a number","raw":"c-2,bob@example.com,n/a"}
	// 1 events, 0 duplicates, 2 rows, 1 rejected
	// c-1 {"type":"identify","userId":"c-1","traits":{"email":"ada@example.com","ltv":1200.50},"messageId":"imp-…"}
}
