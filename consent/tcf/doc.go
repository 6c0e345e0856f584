// Package tcf decodes IAB Europe Transparency & Consent Framework (TCF) v2
// consent strings ("TC strings", the euconsent-v2 value) as specified in the
// IAB Tech Lab "Consent string and vendor list formats v2" document, v2.2
// (policy version 4) and its v2.3 revision, which keeps the same bit layout.
//
// # What Kith uses it for
//
// A TC string is the customer's own record of what they agreed to on a
// publisher's site or app. Kith treats it as evidence that belongs to the
// customer: it stores the string byte for byte as it arrived and forwards it
// unchanged to destinations that want it (the spec requires that TC strings
// are "propagated as is, and not modified"). Kith never re-encodes, edits or
// creates TC strings; only a registered CMP may do that. It decodes a string
// only to evaluate consent: does this string let vendor V process for
// purpose P? [Decode] turns the string into a [TCString]; the accessors
// ([TCString.PurposeConsent], [TCString.VendorConsent],
// [TCString.Restriction], …) read single signals, and [TCString.Allows]
// combines them into the consent decision.
//
// # What it does not do
//
//   - No Global Vendor List. Purposes, special features and vendors are bare
//     numbers here. The package does not know a vendor's name, which
//     purposes it declared, whether it declared them as consent, legitimate
//     interest or flexible, nor whether it has been deleted from the GVL. Any
//     rule that needs those facts (most of the publisher-restriction rules for
//     flexible vendors, the 2.3 disclosed-vendors rule for special purposes)
//     is the caller's to apply, with GVL data the caller holds.
//   - No encoding. The package has no encoder and no way to change a string.
//   - No policy clock. A string with TcfPolicyVersion below 4 is invalid after
//     30 September 2023 under the TCF policy, and a string whose LastUpdated
//     is older than the CMP's re-consent period is stale; both depend on
//     "now" and on the caller's policy, so Decode reports the values and does
//     not judge them.
//   - No TCF v1 (version 1 strings, deprecated since 2020) and no Global
//     Privacy Platform (GPP) strings: both are rejected as unsupported.
//
// # Input limits
//
// Decode accepts at most [MaxLength] bytes, reads every count and length from
// the string under its bit-width bound (vendor ids are 16 bits, entry counts
// 12 bits), and stores vendor sets as sorted runs of ids, so the memory it
// uses grows with the length of the input, never with the numbers written in
// it. Malformed input returns an [*Error] with a stable [Code]; Decode never
// panics.
package tcf
