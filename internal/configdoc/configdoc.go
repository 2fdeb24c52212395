// Package configdoc writes docs/configuration.md and .env.example from the
// variable tables: internal/config's, each database driver's, the cache's
// and the regions' (app.Vars). A test fails when either file drifts
// from the tables; `go test ./internal/configdoc -update` rewrites them.
package configdoc

import (
	"bytes"
	"fmt"
	"slices"
	"strings"

	"github.com/example/flystorage/internal/config"
)

// groups orders the sections; a group not listed comes after them.
var groups = []string{"Database", "Files", "Redis", "Regions", "Server", "Backups"}

// byGroup splits vars into sections in the order of groups, each keeping
// the tables' order.
func byGroup(vars []config.Var) [][]config.Var {
	order := slices.Clone(groups)
	for _, v := range vars {
		if !slices.Contains(order, v.Group) {
			order = append(order, v.Group)
		}
	}
	out := make([][]config.Var, len(order))
	for _, v := range vars {
		i := slices.Index(order, v.Group)
		out[i] = append(out[i], v)
	}
	return slices.DeleteFunc(out, func(s []config.Var) bool { return len(s) == 0 })
}

const generated = "Generated from the variable tables by `go test ./internal/configdoc -update`; do not edit by hand."

// Markdown is docs/configuration.md.
func Markdown(vars []config.Var) []byte {
	var b bytes.Buffer
	fmt.Fprintf(&b, "# Configuration\n\n")
	fmt.Fprintf(&b, "The app reads only environment variables, as Fly and the providers set them. ")
	fmt.Fprintf(&b, "Each is optional: with none set, `go run ./cmd/app` runs on SQLite and a directory under `./data`. ")
	fmt.Fprintf(&b, "A bad value stops the app with exit status 2 and a message naming the variable. ")
	fmt.Fprintf(&b, "Secrets are never logged or shown by `/api/storage`.\n\n")
	fmt.Fprintf(&b, "The database is chosen by exactly one of `DATABASE_URL`, `MONGODB_URI` and `DATABASE_PATH` ")
	fmt.Fprintf(&b, "(the [registry](architecture.md) maps each scheme to its driver); a variable that only another database reads is refused.\n\n")
	fmt.Fprintf(&b, "<!-- %s -->\n", generated)
	for _, section := range byGroup(vars) {
		fmt.Fprintf(&b, "\n## %s\n\n| Variable | Default | Description |\n|---|---|---|\n", section[0].Group)
		for _, v := range section {
			def := "—"
			if v.Default != "" {
				def = "`" + v.Default + "`"
			}
			doc := strings.ReplaceAll(v.Doc, "|", `\|`)
			if v.Secret {
				doc += " **Secret.**"
			}
			fmt.Fprintf(&b, "| `%s` | %s | %s |\n", v.Name, def, doc)
		}
	}
	return b.Bytes()
}

// EnvExample is .env.example. Every line is commented out, so a copy
// changes nothing until a line is uncommented.
func EnvExample(vars []config.Var) []byte {
	var b bytes.Buffer
	fmt.Fprintf(&b, "# Copy to .env (ignored by git; `make run` loads it) and uncomment what you set.\n")
	fmt.Fprintf(&b, "# Never commit real values. docs/configuration.md describes every variable.\n")
	fmt.Fprintf(&b, "# %s\n", generated)
	for _, section := range byGroup(vars) {
		fmt.Fprintf(&b, "\n# --- %s ---\n", section[0].Group)
		for _, v := range section {
			for _, line := range wrap(strings.ReplaceAll(v.Doc, "`", ""), 76) {
				fmt.Fprintf(&b, "# %s\n", line)
			}
			value := v.Example
			if value == "" {
				value = v.Default
			}
			fmt.Fprintf(&b, "# %s=%s\n", v.Name, value)
		}
	}
	return b.Bytes()
}

// wrap breaks text into lines of at most width characters at spaces.
func wrap(text string, width int) []string {
	var lines []string
	line := ""
	for _, word := range strings.Fields(text) {
		if line != "" && len(line)+1+len(word) > width {
			lines = append(lines, line)
			line = ""
		}
		if line != "" {
			line += " "
		}
		line += word
	}
	if line != "" {
		lines = append(lines, line)
	}
	return lines
}
