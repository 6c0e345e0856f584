package portal

import (
	"crypto/ed25519"
	"encoding/base64"
	"encoding/json"
	"maps"
	"slices"
	"time"

	"github.com/kithcdp/kith/privacy"
	"github.com/kithcdp/kith/store"
)

// ReceiptVersion is the Kantara Initiative Consent Receipt Specification
// version the portal's receipts follow.
const ReceiptVersion = "KI-CR-v1.1.0"

// Receipt is a consent receipt (Kantara Initiative Consent Receipt
// Specification v1.1): the record, given to the person, of one consent
// decision they made in the portal. It is signed as a JWS (Receipt.Sign)
// with the portal's Ed25519 key, published in its JWKS.
type Receipt struct {
	Version          string          `json:"version"`
	Jurisdiction     string          `json:"jurisdiction"`
	ConsentTimestamp int64           `json:"consentTimestamp"` // unix seconds
	CollectionMethod string          `json:"collectionMethod"`
	ConsentReceiptID string          `json:"consentReceiptID"` // the control event's messageId
	PublicKey        string          `json:"publicKey"`        // the signing key, base64url Ed25519
	Language         string          `json:"language"`
	PIIPrincipalID   string          `json:"piiPrincipalId"` // the person's email
	PIIControllers   []PIIController `json:"piiControllers"`
	PolicyURL        string          `json:"policyUrl"`
	Services         []Service       `json:"services"`
	Sensitive        bool            `json:"sensitive"`
	SPICat           []string        `json:"spiCat"`
	// LogPosition is Kith's: the position of the control event in the
	// workspace's log, where the decision can be found again.
	LogPosition int64 `json:"kithLogPosition"`
}

// PIIController is the company holding the data.
type PIIController struct {
	PIIController    string `json:"piiController"`
	OnBehalf         bool   `json:"onBehalf"`
	Contact          string `json:"contact"`
	Address          string `json:"address"`
	Email            string `json:"email"`
	Phone            string `json:"phone"`
	PIIControllerURL string `json:"piiControllerUrl,omitempty"`
}

// Service is a service the consent is for, with its purposes.
type Service struct {
	Service  string           `json:"service"`
	Purposes []ReceiptPurpose `json:"purposes"`
}

// ReceiptPurpose is one purpose of a service and the decision on it.
type ReceiptPurpose struct {
	Purpose              string   `json:"purpose"`
	PurposeCategory      []string `json:"purposeCategory"`
	ConsentType          string   `json:"consentType"` // EXPLICIT: the person clicked
	PIICategory          []string `json:"piiCategory"`
	PrimaryPurpose       bool     `json:"primaryPurpose"`
	Termination          string   `json:"termination"`
	ThirdPartyDisclosure bool     `json:"thirdPartyDisclosure"`
	// Granted is Kith's: whether the person granted (true) or withdrew
	// (false) consent to the purpose.
	Granted bool `json:"kithGranted"`
}

// Controller describes the company for receipts and signed terms.
type Controller struct {
	Name, Contact, Address, Email, Phone, URL string
}

// receiptFor builds the receipt of a consent control event.
func (p *Portal) receiptFor(ws string, ev store.Event, cmd privacy.Command, policyURL string) Receipt {
	r := Receipt{
		Version: ReceiptVersion, Jurisdiction: p.o.Jurisdiction, ConsentTimestamp: ev.Timestamp.Unix(),
		CollectionMethod: "Kith customer portal: the person changed a consent toggle while signed in with a one-time code sent to their email",
		ConsentReceiptID: ev.MessageID, PublicKey: base64.RawURLEncoding.EncodeToString(p.keys.signKey.Public().(ed25519.PublicKey)),
		Language: "en", PIIPrincipalID: cmd.Identifier.Value,
		PIIControllers: []PIIController{p.controller(ws).pii()},
		PolicyURL:      policyURL, SPICat: []string{}, LogPosition: ev.Position,
	}
	svc := Service{Service: ws}
	for _, name := range slices.Sorted(maps.Keys(cmd.Consent)) {
		svc.Purposes = append(svc.Purposes, ReceiptPurpose{
			Purpose: name, PurposeCategory: []string{name}, ConsentType: "EXPLICIT",
			PIICategory: []string{"identifiers", "traits", "events"},
			Termination: "until withdrawn in the portal", ThirdPartyDisclosure: true, Granted: cmd.Consent[name],
		})
	}
	r.Services = []Service{svc}
	return r
}

// signReceipt returns r signed as a compact JWS.
func (p *Portal) signReceipt(r Receipt) string {
	payload, _ := json.Marshal(r) // plain data: cannot fail
	return p.keys.signJWS("JWT", payload)
}

// controller is the company named in ws's receipts.
func (p *Portal) controller(ws string) Controller {
	c := p.o.Controller
	if c.Name == "" {
		c.Name = ws
	}
	return c
}

// pii is c as a receipt's or an agreement's PIIController.
func (c Controller) pii() PIIController {
	return PIIController{PIIController: c.Name, Contact: c.Contact, Address: c.Address, Email: c.Email, Phone: c.Phone, PIIControllerURL: c.URL}
}

// receiptTime formats a receipt's timestamp for people.
func receiptTime(unix int64) string {
	return time.Unix(unix, 0).UTC().Format("2 January 2006, 15:04 UTC")
}
