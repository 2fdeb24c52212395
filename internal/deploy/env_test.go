package deploy

import (
	"maps"
	"regexp"
	"slices"
	"strings"
	"testing"
)

// TestVariablesDocumented checks that every variable the app reads is in
// docs/configuration.md and in .env.example, which people copy to .env.
// Both are generated from the tables (internal/configdoc checks they are
// current); this checks the tables cover what the app reads.
func TestVariablesDocumented(t *testing.T) {
	reference := readRepoFile(t, "docs/configuration.md")
	example := readRepoFile(t, ".env.example")
	for _, name := range slices.Sorted(maps.Keys(configVars(t))) {
		if !strings.Contains(reference, "`"+name+"`") {
			t.Errorf("docs/configuration.md does not mention `%s`", name)
		}
		if !regexp.MustCompile(`(?m)^#?\s*` + name + `=`).MatchString(example) {
			t.Errorf(".env.example has no %s= line", name)
		}
	}
}
