package config

import (
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/kithcdp/kith/consent"
	"gopkg.in/yaml.v3"
)

// A workspace's consent model (docs/consent.md), under consent: beside
// deliver_without_consent:
//
//	consent:
//	  store_requires: [analytics]
//	  purposes:
//	    - name: advertising           # a default purpose: the fields given replace its own
//	      categories: [Advertising, Targeting, C0004]
//	    - name: loyalty               # a purpose of the workspace's own
//	      description: Points and rewards.
//	      lawful_basis: contract
//	      categories: [Loyalty]
//
// purposes override the default purposes (consent.Default) by name and add new ones; the
// result is checked by consent.NewCatalogue. store_requires names the
// purposes an event's own consent must not deny for it to be stored.

// consentModel collects the consent model's fields while the consent
// mapping is parsed, to check them together once it is.
type consentModel struct {
	purposes      *yaml.Node
	storeRequires *yaml.Node
}

// fields are the consent model's fields of the consent mapping.
func (m *consentModel) fields() []field {
	return []field{
		{name: "purposes", parse: func(n *yaml.Node, _ string) { m.purposes = n }},
		{name: "store_requires", parse: func(n *yaml.Node, _ string) { m.storeRequires = n }},
	}
}

// apply parses the collected fields into w (path is the consent mapping's).
func (m *consentModel) apply(p *parser, path string, w *Workspace) {
	cat := consent.Default()
	if m.purposes != nil {
		cat = p.purposes(m.purposes, join(path, "purposes"))
		if cat == nil {
			return
		}
		w.Purposes = cat
	}
	if m.storeRequires != nil {
		w.StoreRequires = p.storeRequires(m.storeRequires, join(path, "store_requires"), cat)
	}
}

// purposes parses the purposes list over the default purposes. It
// returns nil when it reported an error.
func (p *parser) purposes(n *yaml.Node, path string) *consent.Catalogue {
	before := len(p.errs)
	all := consent.Default().Purposes()
	at := map[string]*yaml.Node{} // purpose name → its item, for errors
	p.list(n, path, func(_ int, n *yaml.Node, path string) {
		var pu consent.Purpose
		given := map[string]func(*consent.Purpose){}
		set := func(name string, f func(*consent.Purpose)) { given[name] = f }
		flag := func(name string, to func(*consent.Purpose) *bool) field {
			return field{name: name, parse: func(n *yaml.Node, path string) {
				v := str(p, n, path, parseBool)
				set(name, func(x *consent.Purpose) { *to(x) = v })
			}}
		}
		texts := func(name string, to func(*consent.Purpose) *[]string) field {
			return field{name: name, parse: func(n *yaml.Node, path string) {
				v := p.texts(n, path)
				set(name, func(x *consent.Purpose) { *to(x) = v })
			}}
		}
		p.fields(n, path, []field{
			{name: "name", required: true, parse: func(n *yaml.Node, path string) {
				pu.Name, _ = p.scalar(n, path)
			}},
			{name: "description", parse: func(n *yaml.Node, path string) {
				s, _ := p.scalar(n, path)
				set("description", func(x *consent.Purpose) { x.Description = s })
			}},
			{name: "lawful_basis", parse: func(n *yaml.Node, path string) {
				b := str(p, n, path, parseBasis)
				set("lawful_basis", func(x *consent.Purpose) { x.Basis = b })
			}},
			flag("strictly_necessary", func(x *consent.Purpose) *bool { return &x.Necessary }),
			texts("categories", func(x *consent.Purpose) *[]string { return &x.Categories }),
			{name: "tcf_purposes", parse: func(n *yaml.Node, path string) {
				var ids []int
				p.list(n, path, func(_ int, n *yaml.Node, path string) {
					ids = append(ids, str(p, n, path, parseTCFPurpose))
				})
				set("tcf_purposes", func(x *consent.Purpose) { x.TCF = ids })
			}},
			texts("gcm_signals", func(x *consent.Purpose) *[]string { return &x.GCM }),
			flag("gpc_opt_out", func(x *consent.Purpose) *bool { return &x.GPC }),
			flag("marketing", func(x *consent.Purpose) *bool { return &x.Marketing }),
			flag("profiling", func(x *consent.Purpose) *bool { return &x.Profiling }),
		})
		if pu.Name == "" {
			return
		}
		if _, dup := at[pu.Name]; dup {
			p.errorf(n, join(path, "name"), "purpose %q is already declared", pu.Name)
			return
		}
		at[pu.Name] = n
		i := slices.IndexFunc(all, func(d consent.Purpose) bool { return d.Name == pu.Name })
		if i < 0 {
			// A new purpose: on consent unless it says otherwise.
			all = append(all, consent.Purpose{Name: pu.Name, Basis: consent.BasisConsent})
			i = len(all) - 1
		}
		for _, f := range given {
			f(&all[i])
		}
	})
	if len(p.errs) > before {
		return nil
	}
	cat, err := consent.NewCatalogue(all)
	if err != nil {
		// Report it at the purpose it names, if it is one of the list.
		line := n
		msg := strings.TrimPrefix(err.Error(), consent.ErrInvalidPurpose.Error()+": ")
		for name, item := range at {
			if strings.Contains(msg, strconv.Quote(name)) && (line == n || item.Line < line.Line) {
				line = item
			}
		}
		p.errorf(line, path, "%s", msg)
		return nil
	}
	return cat
}

// storeRequires parses the purposes events must not deny to be stored.
func (p *parser) storeRequires(n *yaml.Node, path string, cat *consent.Catalogue) []string {
	return p.distinct(n, path, "purpose ", func(s string) (string, string) {
		pu, ok := cat.Lookup(s)
		switch {
		case !ok:
			return "", fmt.Sprintf("unknown purpose %q (known: %s)", s, purposeNames(cat))
		case pu.Necessary:
			return "", fmt.Sprintf("%q is strictly necessary: it cannot be denied, so it cannot be required", s)
		}
		return pu.Name, ""
	})
}

func purposeNames(cat *consent.Catalogue) string {
	var names []string
	for _, pu := range cat.Purposes() {
		names = append(names, pu.Name)
	}
	return strings.Join(names, ", ")
}

// texts parses a list of text values.
func (p *parser) texts(n *yaml.Node, path string) []string {
	var out []string
	p.list(n, path, func(_ int, n *yaml.Node, path string) {
		if s, ok := p.scalar(n, path); ok {
			out = append(out, s)
		}
	})
	return out
}

func parseBasis(s string) (consent.Basis, string) {
	b, err := consent.ParseBasis(s)
	if err != nil {
		return "", err.Error()
	}
	return b, ""
}

func parseTCFPurpose(s string) (int, string) {
	id, err := strconv.Atoi(s)
	if err != nil || id < 1 || id > consent.MaxTCFPurpose {
		return 0, fmt.Sprintf("%q: TCF v2.2 purposes are 1 to %d", s, consent.MaxTCFPurpose)
	}
	return id, ""
}
