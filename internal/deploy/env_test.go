package deploy

import (
	"maps"
	"regexp"
	"slices"
	"strings"
	"testing"
)

// TestVariablesDocumented checks that every variable the app reads is in
// the README and in .env.example, which people copy to .env.
func TestVariablesDocumented(t *testing.T) {
	readme := readRepoFile(t, "README.md")
	example := readRepoFile(t, ".env.example")
	for _, name := range slices.Sorted(maps.Keys(configVars(t))) {
		if !strings.Contains(readme, "`"+name+"`") {
			t.Errorf("README.md does not mention `%s`", name)
		}
		if !regexp.MustCompile(`(?m)^#?\s*` + name + `=`).MatchString(example) {
			t.Errorf(".env.example has no %s= line", name)
		}
	}
}
