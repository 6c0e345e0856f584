package tcf

import "time"

// Publisher restriction types (the RestrictionType field of a
// PubRestrictionEntry). The value 3 is undefined in the specification; it is
// decoded as it is and treated as a prohibition by Allows.
const (
	// RestrictionNotAllowed: the publisher does not allow the vendor to
	// process for the purpose at all, whatever the vendor declared.
	RestrictionNotAllowed = 0
	// RestrictionRequireConsent: a vendor that declared the purpose as
	// legitimate interest and flexible must rely on consent instead.
	RestrictionRequireConsent = 1
	// RestrictionRequireLegitimateInterest: a vendor that declared the
	// purpose as consent and flexible must rely on legitimate interest
	// instead.
	RestrictionRequireLegitimateInterest = 2
	// RestrictionUndefined is the value the specification leaves undefined.
	RestrictionUndefined = 3
)

// TCString is a decoded TC string. Field names follow the specification's.
// Purposes, special features and vendors are numbered from 1; the sets hold
// the ids whose bit is 1.
type TCString struct {
	// Core segment.

	Version           int       // always 2
	Created           time.Time // UTC; encoded in deciseconds, since v2.2 rounded to the day and equal to LastUpdated
	LastUpdated       time.Time // UTC
	CmpID             int
	CmpVersion        int
	ConsentScreen     int
	ConsentLanguage   string // two upper-case letters, ISO 639-1, e.g. "EN"
	VendorListVersion int
	TCFPolicyVersion  int // 4 for TCF v2.2 (5 for v2.3); 2 for v2.0 strings
	// IsServiceSpecific must be true since global scope was deprecated
	// (September 2021); the spec says a vendor must consider a string with
	// IsServiceSpecific=0 invalid. Allows refuses such strings.
	IsServiceSpecific bool
	// UseNonStandardTexts (formerly UseNonStandardStacks): the CMP modified
	// the standard stack descriptions or illustrations.
	UseNonStandardTexts    bool
	SpecialFeatureOptIns   IDSet // 12 bits
	PurposesConsent        IDSet // 24 bits
	PurposesLITransparency IDSet // 24 bits; since v2.2 purposes 3–6 must be 0
	// PurposeOneTreatment: Purpose 1 was not disclosed to the user, because
	// the publisher's jurisdiction (PublisherCC) handles it differently.
	PurposeOneTreatment       bool
	PublisherCC               string // two upper-case letters, ISO 3166-1 alpha-2, e.g. "DE"
	VendorConsents            IDSet
	VendorLegitimateInterests IDSet
	PublisherRestrictions     []PublisherRestriction

	// Optional segments.

	// HasDisclosedVendors reports whether the Disclosed Vendors segment
	// (type 1) was present; it is mandatory from TCF v2.3 on.
	HasDisclosedVendors bool
	DisclosedVendors    IDSet
	// HasAllowedVendors reports whether an Allowed Vendors segment (type 2)
	// was present. The segment belonged to the out-of-band legal bases that
	// were deprecated with global scope in 2021; it is decoded for
	// completeness and ignored by every other method.
	HasAllowedVendors bool
	AllowedVendors    IDSet
	// Publisher is the Publisher TC segment (type 3), nil when absent. It is
	// the publisher's own signals; vendors should not rely on it.
	Publisher *PublisherTC
}

// PublisherRestriction is one PubRestrictionEntry of the core segment.
type PublisherRestriction struct {
	PurposeID int
	Type      int // one of the Restriction* constants
	Vendors   IDSet
}

// PublisherTC is the Publisher Purposes Transparency and Consent segment.
type PublisherTC struct {
	PurposesConsent              IDSet // 24 bits
	PurposesLITransparency       IDSet // 24 bits
	NumCustomPurposes            int
	CustomPurposesConsent        IDSet // NumCustomPurposes bits
	CustomPurposesLITransparency IDSet // NumCustomPurposes bits
}

// PurposeConsent reports whether the user consented to purpose id (1–24).
func (t *TCString) PurposeConsent(id int) bool { return t.PurposesConsent.Has(id) }

// PurposeLegitimateInterest reports whether legitimate-interest transparency
// was established for purpose id and the user did not object to it.
func (t *TCString) PurposeLegitimateInterest(id int) bool {
	return t.PurposesLITransparency.Has(id)
}

// VendorConsent reports whether the user consented to vendor id.
func (t *TCString) VendorConsent(id int) bool { return t.VendorConsents.Has(id) }

// VendorLegitimateInterest reports whether legitimate-interest transparency
// was established for vendor id and the user did not object to it.
func (t *TCString) VendorLegitimateInterest(id int) bool {
	return t.VendorLegitimateInterests.Has(id)
}

// SpecialFeatureOptIn reports whether the user opted in to special feature
// id (1–12), for example 1, "use precise geolocation data".
func (t *TCString) SpecialFeatureOptIn(id int) bool { return t.SpecialFeatureOptIns.Has(id) }

// Restriction reports the publisher restriction on vendor for purpose. When
// more than one entry covers the pair (the spec does not forbid it), a
// RestrictionNotAllowed wins; otherwise the first entry in string order does.
func (t *TCString) Restriction(purpose, vendor int) (restrictionType int, ok bool) {
	for _, r := range t.PublisherRestrictions {
		if r.PurposeID != purpose || !r.Vendors.Has(vendor) {
			continue
		}
		if r.Type == RestrictionNotAllowed {
			return RestrictionNotAllowed, true
		}
		if !ok {
			restrictionType, ok = r.Type, true
		}
	}
	return restrictionType, ok
}

// Allows reports whether the string gives vendor a legal basis of consent to
// process personal data for purpose. It is true only when all of these hold:
//
//   - the string is service-specific (IsServiceSpecific=1; the spec makes a
//     string with 0 invalid since global scope was deprecated);
//   - the user consented to the purpose (PurposesConsent);
//   - the user consented to the vendor (VendorConsents);
//   - no publisher restriction for this purpose and vendor is "not allowed"
//     (0, which every vendor must respect) or "require legitimate interest"
//     (2, which rules out consent as the basis: a flexible vendor must switch
//     to legitimate interest, a non-flexible consent vendor must not
//     process). A "require consent" restriction (1) asks for exactly what
//     Allows checks, so it passes. The undefined type 3 is treated as a
//     prohibition.
//
// Its limits, by design:
//
//   - Consent only. A vendor that declared the purpose under legitimate
//     interest is judged by PurposeLegitimateInterest and
//     VendorLegitimateInterest (never for purposes 1 and 3–6, which TCF v2.2
//     does not allow on legitimate interest), unless a restriction of type 1
//     or 0 applies. Which basis a vendor declared is in the Global Vendor
//     List, which this package does not read.
//   - Purpose 1 treatment. When PurposeOneTreatment is set, Purpose 1 was
//     not disclosed, so its consent bit is 0 and Allows(1, v) is false.
//     Whether the publisher's country (PublisherCC) needs consent for storage
//     on a device is a legal judgement left to the caller.
//   - No GVL checks: a vendor that did not declare the purpose must not
//     process for it even when both bits are set, and deleted vendors stay
//     deleted. Special purposes and features have no consent bits and are
//     not covered.
//   - No clock: policy versions below 4 and strings older than the re-consent
//     period are not rejected here.
//
// Purpose and vendor ids outside their ranges give false.
func (t *TCString) Allows(purpose, vendor int) bool {
	if t == nil || !t.IsServiceSpecific {
		return false
	}
	if !t.PurposeConsent(purpose) || !t.VendorConsent(vendor) {
		return false
	}
	if rt, ok := t.Restriction(purpose, vendor); ok && rt != RestrictionRequireConsent {
		return false
	}
	return true
}
