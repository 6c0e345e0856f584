package delivery

import (
	"bytes"
	"slices"

	"github.com/kithcdp/kith/consent"
	"github.com/kithcdp/kith/privacy"
)

// restrictsAll reports whether a profile's consent value
// (compute.ConsentValue) records a restriction of all processing
// (privacy.ScopeAll): while it lasts the person's data is stored and
// nothing more, so no destination receives anything about them — not
// events, trait changes or audience entries and exits, not even a
// strictly necessary destination. Narrower restrictions and objections
// deny purposes in the consent gate.
func restrictsAll(value []byte) bool {
	if !bytes.Contains(value, []byte(`"restricted"`)) {
		return false // most profiles: no need to decode it again
	}
	s, err := consent.ValueStatement(value)
	return err == nil && slices.Contains(s.Restricted, privacy.ScopeAll)
}
