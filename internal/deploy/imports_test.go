package deploy

import (
	"os/exec"
	"slices"
	"strings"
	"testing"
)

// module is the module path every package of ours starts with.
const module = "github.com/example/flystorage/"

// layers are the app's packages from the bottom up (docs/architecture.md,
// "Layers"). A package imports packages of its own layer or below, never
// above; the rules below narrow some layers further.
var layers = [][]string{
	// The domain: types, interfaces and error kinds.
	{"internal/storage"},
	// Drivers and infrastructure.
	{"internal/storage/engine", "internal/storage/postgres", "internal/storage/mysql", "internal/storage/mongodb",
		"internal/storage/sqlite", "internal/storage/s3", "internal/storage/localfs", "internal/storage/storagetest",
		"internal/config", "internal/cache", "internal/region", "internal/replication", "migrations", "web"},
	// The registry: which driver the environment selects.
	{"internal/storage/backend"},
	// The service, between HTTP and the stores.
	{"internal/service"},
	// HTTP.
	{"internal/server"},
	// The composition root, and the commands that call it.
	{"internal/app", "cmd/app", "cmd/migrate"},
}

// tools stand outside the layers: test helpers, generators, benchmarks and
// these tests. They may import any layer but the commands, and no layered
// package imports them.
var tools = []string{"internal/testenv", "internal/configdoc", "internal/deploy", "scripts/bench", "scripts/uploadbench"}

// drivers are the backend packages: each imports the domain and what the
// drivers share, never a sibling (docs/architecture.md, "Adding a backend").
var drivers = []string{"internal/storage/postgres", "internal/storage/mysql", "internal/storage/mongodb",
	"internal/storage/sqlite", "internal/storage/s3", "internal/storage/localfs"}

// only lists, for some packages, every package of ours they may import.
var only = map[string][]string{
	// The domain imports nothing of ours.
	"internal/storage": {},
	// The configuration table knows no driver, and nothing else of ours.
	"internal/config": {},
	// What the drivers share rests on the domain and the table alone.
	"internal/storage/engine": {"internal/storage", "internal/config"},
	// The registry imports the domain and the drivers: loading Redis and
	// the regions is the root's job.
	"internal/storage/backend": append([]string{"internal/storage", "internal/storage/engine", "internal/config"}, drivers...),
}

// TestImportRules holds the packages to the layering with go list: no
// package imports one above it, the domain imports nothing of ours nor
// database/sql, drivers import no sibling, and the registry imports only
// the domain and the drivers. A new package must be placed in a layer.
func TestImportRules(t *testing.T) {
	layer := map[string]int{}
	for i, pkgs := range layers {
		for _, p := range pkgs {
			layer[p] = i
		}
	}
	for _, p := range tools {
		layer[p] = -1
	}
	for _, d := range drivers {
		only[d] = []string{"internal/storage", "internal/storage/engine", "internal/config", "migrations"}
	}
	cmd := exec.Command("go", "list", "-f", `{{.ImportPath}}{{range .Imports}} {{.}}{{end}}`, "./...")
	cmd.Dir = root
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	checked := 0
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		fields := strings.Fields(line)
		pkg := strings.TrimPrefix(fields[0], module)
		l, placed := layer[pkg]
		if !placed {
			t.Errorf("%s is in no layer: add it to layers or tools in internal/deploy/imports_test.go (docs/architecture.md, \"Layers\")", pkg)
			continue
		}
		for _, imp := range fields[1:] {
			if pkg == "internal/storage" && (imp == "database/sql" || strings.HasPrefix(imp, "database/sql/")) {
				t.Errorf("the domain, internal/storage, imports %s: SQL helpers belong in internal/storage/engine or a driver", imp)
			}
			ours, ok := strings.CutPrefix(imp, module)
			if !ok {
				continue
			}
			checked++
			il, iplaced := layer[ours]
			switch {
			case !iplaced:
				// Reported as a package of its own above.
			case slices.Contains(tools, ours) && l >= 0:
				t.Errorf("%s imports %s, a test or build tool", pkg, ours)
			case l >= 0 && il > l:
				t.Errorf("%s imports %s, which stands above it in the layers", pkg, ours)
			case l < 0 && strings.HasPrefix(ours, "cmd/"):
				t.Errorf("%s imports the command %s", pkg, ours)
			}
			if allowed, ok := only[pkg]; ok && !slices.Contains(allowed, ours) {
				t.Errorf("%s imports %s; it may import only %v", pkg, ours, allowed)
			}
		}
	}
	if checked < 20 {
		t.Fatalf("go list showed %d imports between our packages; the rules checked next to nothing:\n%s", checked, out)
	}
}
