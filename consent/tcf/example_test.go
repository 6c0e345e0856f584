package tcf_test

import (
	"errors"
	"fmt"

	"github.com/kithcdp/kith/consent/tcf"
)

// A destination that forwards to vendor 4 for purpose 1 (store and/or access
// information on a device) asks the customer's stored string whether that is
// allowed. The string itself is forwarded as it is; only the answer is
// computed here.
func ExampleTCString_Allows() {
	// The worked example of the IAB TCF v2 specification.
	const s = "CQSbk4AQSbk4ANwAAAENAwCgAAAAAAAAAAYgACPAAAAA.IDKQA4AAgAKAGQAygAAA.YAAAAAAAAAAA"
	tc, err := tcf.Decode(s)
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println("CMP", tc.CmpID, "vendor list", tc.VendorListVersion, "publisher country", tc.PublisherCC)
	fmt.Println("vendor 4 consent:", tc.VendorConsent(4), "purpose 1 consent:", tc.PurposeConsent(1))
	fmt.Println("allowed:", tc.Allows(1, 4))
	fmt.Println("disclosed vendors:", tc.DisclosedVendors.IDs())
	// Output:
	// CMP 880 vendor list 48 publisher country DE
	// vendor 4 consent: true purpose 1 consent: false
	// allowed: false
	// disclosed vendors: [1 2 3 4 5 100 404]
}

// Malformed input is an *Error with a stable code, never a panic.
func ExampleDecode_error() {
	_, err := tcf.Decode("BOEFEAyOEFEAyAHABDENAI4AAAB9vABAASA") // a TCF v1 string
	var e *tcf.Error
	if errors.As(err, &e) {
		fmt.Println(e.Code)
	}
	fmt.Println(err)
	// Output:
	// unsupported_version
	// tcf: core segment at bit 0: unsupported_version: version 1; only version 2 is supported
}
