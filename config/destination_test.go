package config

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"path/filepath"

	"github.com/kithcdp/kith/delivery"
	"github.com/kithcdp/kith/store"
)

const hookSecret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"

var destEnv = map[string]string{
	"HOOK_SECRET": hookSecret,
	"HOOK_URL":    "https://hooks.example.com/kith",
	"CRM_KEY":     "wk_crm_123456",
}

func parseDest(src string) (*Config, error) {
	return parse([]byte(strings.TrimLeft(src, "\n")), "kith.yaml", func(name string) (string, bool) {
		v, ok := destEnv[name]
		return v, ok
	})
}

func TestParseDestinations(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	cfg, err := parseDest(`
workspaces:
  - slug: acme
    consent: {deliver_without_consent: true}
    destinations:
      - name: crm-hook
        type: webhook
        events: {types: [track], names: [Order Completed], where: "properties.total > 10"}
        purposes: [analytics]
        mapping: {order: properties.order_id}
        id_sync: {type: email, mode: last}
        retry_for: 8h
        config:
          url: ${HOOK_URL}
          secrets: ["${HOOK_SECRET}"]
          batch: 10
          headers: {X-Team: growth}
      - name: warehouse
        type: forward
        strictly_necessary: true
        events: {}
        config: {url: "https://kith2.example.com", write_key: "${CRM_KEY}", gzip: true}
      - name: bus
        type: nats
        traits: ["*"]
        audiences: [vip]
        strictly_necessary: true
        config: {url: "nats://127.0.0.1:4222", subject: kith.acme.crm, token: "$$tok"}
      - name: ads
        type: audience_export
        audiences: ["*"]
        purposes: [advertising]
        config: {dir: ` + dir + `/ads, platform: meta}
  - slug: plain
`)
	if err != nil {
		t.Fatal(err)
	}
	w := cfg.Workspaces[0]
	if !w.DeliverWithoutConsent || cfg.Workspaces[1].DeliverWithoutConsent {
		t.Errorf("deliver_without_consent: %v, %v", w.DeliverWithoutConsent, cfg.Workspaces[1].DeliverWithoutConsent)
	}
	var names []string
	for _, d := range w.Destinations {
		if d.Workspace != "acme" || d.Kind != store.DefinitionDestination || d.Origin != "config" {
			t.Errorf("destination %+v", d)
		}
		names = append(names, d.Name)
		if _, err := delivery.Parse(d.Body); err != nil {
			t.Errorf("%s: the stored body does not parse: %v", d.Name, err)
		}
	}
	if strings.Join(names, ",") != "crm-hook,warehouse,bus,ads" {
		t.Fatalf("destinations %v", names)
	}
	var hook delivery.Definition
	_ = json.Unmarshal(w.Destinations[0].Body, &hook)
	var hc map[string]any
	_ = json.Unmarshal(hook.Config, &hc)
	if hc["url"] != "https://hooks.example.com/kith" || hc["secrets"].([]any)[0] != hookSecret || hc["batch"] != 10.0 {
		t.Errorf("webhook config %s", hook.Config)
	}
	if hook.RetryFor != "8h" || hook.IDSync.Mode != "last" || hook.Events.Where == "" {
		t.Errorf("webhook definition %+v", hook)
	}
	if !strings.Contains(string(w.Destinations[2].Body), `"token":"$tok"`) {
		t.Errorf("$$ was not a literal dollar: %s", w.Destinations[2].Body)
	}
	// Checking the export made no files where the sender will write.
	if entries, _ := filepath.Glob(dir + "/*"); len(entries) != 0 {
		t.Errorf("checking an audience export touched its directory: %v", entries)
	}
}

func TestParseDestinationErrors(t *testing.T) {
	t.Parallel()
	head := "workspaces:\n  - slug: acme\n    destinations:\n"
	tests := []struct {
		name, src string
		want      []string // substrings of the error
	}{
		{"bad secret at its line", `
      - name: hook
        type: webhook
        events: {}
        strictly_necessary: true
        config:
          url: https://h.example.com
          secrets: [whsec_short]
`, []string{"kith.yaml:10: workspaces[0].destinations[0].config.secrets: webhook config: secrets[0]"}},
		{"http url", `
      - {name: hook, type: webhook, events: {}, strictly_necessary: true,
         config: {url: "http://h.example.com", secrets: ["${HOOK_SECRET}"]}}
`, []string{"destinations[0].config.url: webhook config: url: http is not allowed"}},
		{"unknown setting", `
      - name: fwd
        type: forward
        events: {}
        strictly_necessary: true
        config:
          url: https://k.example.com
          write_key: abc
          colour: blue
`, []string{"kith.yaml:11: workspaces[0].destinations[0].config.colour:", `unknown field "colour"`}},
		{"definition problems at their fields", `
      - name: Hook
        type: carrier-pigeon
        events: {types: [click]}
`, []string{
			"kith.yaml:4: workspaces[0].destinations[0].name:",
			"kith.yaml:5: workspaces[0].destinations[0].type:",
			"kith.yaml:6: workspaces[0].destinations[0].events: events.types",
			"workspaces[0].destinations[0]: declare the consent purposes",
		}},
		{"unknown field", `
      - {name: hook, type: nats, events: {}, strictly_necessary: true, colour: red, config: {subject: a.b}}
`, []string{"destinations[0].colour:", `unknown field "colour"`}},
		{"env not set", `
      - {name: hook, type: forward, events: {}, strictly_necessary: true, config: {url: "https://x.example.com", write_key: "${NOPE}"}}
`, []string{"destinations[0].config.write_key: environment variable NOPE is not set"}},
		{"config not a mapping", `
      - {name: hook, type: forward, events: {}, strictly_necessary: true, config: "url=x"}
`, []string{"destinations[0].config: must be a mapping"}},
		{"duplicate", `
      - {name: a, type: nats, events: {}, strictly_necessary: true, config: {subject: a.b}}
      - {name: a, type: nats, events: {}, strictly_necessary: true, config: {subject: a.c}}
`, []string{"kith.yaml:5: workspaces[0].destinations[1].name: destination \"a\" is already declared"}},
		{"consent value", `
      - {name: a, type: nats, events: {}, strictly_necessary: true, config: {subject: a.b}}
    consent: {deliver_without_consent: yes}
`, []string{"consent.deliver_without_consent: \"yes\": write true or false"}},
		{"consent field", `
      - {name: a, type: nats, events: {}, strictly_necessary: true, config: {subject: a.b}}
    consent: {allow: true}
`, []string{`consent: unknown field "allow"`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			_, err := parseDest(head + strings.TrimLeft(tt.src, "\n"))
			if err == nil {
				t.Fatal("no error")
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error\n%v\nlacks %q", err, w)
				}
			}
			if strings.Contains(err.Error(), hookSecret) {
				t.Errorf("the error quotes a secret: %v", err)
			}
			var ce *Error
			if !errors.As(err, &ce) {
				t.Errorf("not a config error: %T", err)
			}
		})
	}
}

func TestDestinationProblems(t *testing.T) {
	t.Parallel()
	_, _, err := ParseDestination([]byte(`{"name":"x","type":"webhook","events":{},"strictly_necessary":true,"config":{"url":"https://a.example.com","secrets":["nope"]}}`))
	pr := DestinationProblems("x", err)
	if len(pr) != 1 || pr[0].Field != "config.secrets" || pr[0].Kind != "destination" || pr[0].Code != "invalid_definition" {
		t.Errorf("problems %+v", pr)
	}
	_, _, err = ParseDestination([]byte(`{"name":"x","type":"webhook"}`))
	if pr := DestinationProblems("x", err); len(pr) != 2 {
		t.Errorf("problems %+v", pr)
	}
	// A definition's problems and its settings' are reported together.
	_, _, err = ParseDestination([]byte(`{"name":"x","type":"webhook","events":{},"config":{"url":"http://hooks.example.com","secrets":["whsec_abc"]}}`))
	if pr := DestinationProblems("x", err); len(pr) != 2 || pr[0].Field != "" || pr[1].Field != "config.url" {
		t.Errorf("problems %+v", pr)
	}
}
