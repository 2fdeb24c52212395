package storagetest

import (
	"testing"

	"github.com/example/flystorage/internal/storage"
)

// RunDescriber checks the storage.Describer contract on d: Backend names
// the engine, and Describe's "backend" entry is the same name, since the
// status output reads one and /api/storage shows the other. RunDatabase
// and RunBlobs run it as their "Describer" test.
func RunDescriber(t *testing.T, d storage.Describer) {
	t.Helper()
	backend := d.Backend()
	if backend == "" {
		t.Error(`Backend() = "", want the engine's name`)
	}
	if got := d.Describe()["backend"]; got != backend {
		t.Errorf(`Describe()["backend"] = %q, want Backend() = %q`, got, backend)
	}
}
