package export

import (
	"crypto/sha256"
	"encoding/hex"
	"strings"

	"github.com/nyaruka/phonenumbers"
)

// Platforms: whose upload format and normalization rules a file follows.
const (
	// PlatformMeta is Meta (Facebook, Instagram) Customer File Custom
	// Audiences.
	PlatformMeta = "meta"
	// PlatformGoogle is Google Ads Customer Match.
	PlatformGoogle = "google"
)

// Identifier types exported. Other identifier types a profile holds are
// not matched by these platforms' contact lists and are left out.
const (
	TypeEmail = "email"
	TypePhone = "phone"
)

// HashSHA256 returns the lower-case hexadecimal SHA-256 of s, the form
// both platforms take for hashed identifiers.
func HashSHA256(s string) string {
	sum := sha256.Sum256([]byte(s))
	return hex.EncodeToString(sum[:])
}

// NormalizeEmail returns email as platform hashes it, and false if it is
// not an email address (no single '@' with text on both sides, or
// whitespace inside).
//
// Both platforms trim leading and trailing whitespace and lower-case the
// address. Meta documents exactly that ("John_Smith@gmail.com" →
// "john_smith@gmail.com"). Google Customer Match documents that removing
// the periods before gmail.com and googlemail.com is not required, and
// documents no removal of "+suffix" parts, so neither is done: the address
// is hashed as the person gave it. (The period removal is a rule of
// Campaign Manager 360 enhanced conversions, not of Customer Match.)
func NormalizeEmail(platform, email string) (string, bool) {
	_ = platform // the same rule for both, see above
	e := strings.ToLower(strings.TrimSpace(email))
	at := strings.IndexByte(e, '@')
	if at <= 0 || at == len(e)-1 || strings.IndexByte(e[at+1:], '@') >= 0 || strings.ContainsAny(e, " \t\r\n") {
		return "", false
	}
	return e, true
}

// NormalizePhone returns phone as platform hashes it, and false if no
// number with a country code can be made of it.
//
// The number is parsed with libphonenumber; region (an ISO 3166 code such
// as "US" or "GB") is the country assumed for numbers written without a
// country code, and may be empty when numbers are stored in E.164, as
// Kith's identity rules store them.
//
// Google Customer Match takes E.164 with its '+' ("+12125650000"). Meta
// takes digits only, with the country code and without '+' or leading
// zeros ("(650)555-1212" in the US → "16505551212"). For a number that
// libphonenumber cannot parse, Meta's rule is applied to the digits as
// they are (which assumes they start with a country code); for Google
// such a number is left out unless it was written with '+' or "00".
func NormalizePhone(platform, phone, region string) (string, bool) {
	if len(phone) > maxPhoneLen {
		return "", false
	}
	e164 := ""
	if isE164(phone) {
		// Kith's identity rules store phones so: no parsing needed.
		e164 = phone
	} else if n, err := phonenumbers.Parse(phone, region); err == nil && n.GetCountryCode() != 0 {
		e164 = phonenumbers.Format(n, phonenumbers.E164)
	}
	if e164 == "" {
		t := strings.TrimSpace(phone)
		intl := strings.HasPrefix(t, "+") || strings.HasPrefix(t, "00")
		digits := strings.TrimLeft(digitsOf(t), "0")
		if len(digits) < 4 || len(digits) > 15 {
			return "", false
		}
		if platform == PlatformMeta {
			return digits, true
		}
		if !intl {
			return "", false
		}
		e164 = "+" + digits
	}
	if platform == PlatformMeta {
		return strings.TrimPrefix(e164, "+"), true
	}
	return e164, true
}

// isE164 reports whether s is '+' and 8 to 15 digits, the first not 0.
func isE164(s string) bool {
	if len(s) < 9 || len(s) > 16 || s[0] != '+' || s[1] == '0' {
		return false
	}
	for i := 1; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

// maxPhoneLen bounds the phone numbers parsed: a written number with
// spaces and punctuation fits well within it.
const maxPhoneLen = 64

func digitsOf(s string) string {
	var b strings.Builder
	for _, r := range s {
		if r >= '0' && r <= '9' {
			b.WriteRune(r)
		}
	}
	return b.String()
}
