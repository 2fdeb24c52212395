package configdoc_test

import (
	"bytes"
	"flag"
	"os"
	"path/filepath"
	"testing"

	"github.com/example/flystorage/internal/app"
	"github.com/example/flystorage/internal/configdoc"
)

var update = flag.Bool("update", false, "rewrite docs/configuration.md and .env.example from the variable tables")

// TestGeneratedFiles fails when docs/configuration.md or .env.example
// drifts from the variable tables; -update rewrites both.
func TestGeneratedFiles(t *testing.T) {
	vars := app.Vars()
	for name, want := range map[string][]byte{
		filepath.Join("docs", "configuration.md"): configdoc.Markdown(vars),
		".env.example": configdoc.EnvExample(vars),
	} {
		path := filepath.Join("..", "..", name)
		if *update {
			if err := os.WriteFile(path, want, 0o644); err != nil {
				t.Fatal(err)
			}
			continue
		}
		got, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, want) {
			t.Errorf("%s is not what the variable tables generate: run `go test ./internal/configdoc -update` and commit it", name)
		}
	}
}
