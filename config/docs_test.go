package config

import (
	"os"
	"strings"
	"testing"
)

// docExamples returns the YAML examples of docs/configuration.md.
func docExamples(t testing.TB) []string {
	t.Helper()
	doc, err := os.ReadFile("../docs/configuration.md")
	if err != nil {
		t.Fatal(err)
	}
	var blocks []string
	for _, part := range strings.Split(string(doc), "```yaml\n")[1:] {
		block, _, _ := strings.Cut(part, "```")
		blocks = append(blocks, block)
	}
	return blocks
}

// TestDocExamples keeps the documentation's examples valid.
func TestDocExamples(t *testing.T) {
	t.Parallel()
	blocks := docExamples(t)
	if len(blocks) == 0 {
		t.Fatal("docs/configuration.md has no YAML example")
	}
	anyEnv := func(name string) (string, bool) { return "secret_for_" + strings.ToLower(name), true }
	for i, b := range blocks {
		if _, err := parse([]byte(b), "docs/configuration.md", anyEnv); err != nil {
			t.Errorf("example %d: %v", i+1, err)
		}
	}
}
