package sqlite_test

import (
	"context"
	"path/filepath"
	"testing"

	"github.com/example/flystorage/internal/storage"
	"github.com/example/flystorage/internal/storage/sqlite"
	"github.com/example/flystorage/internal/storage/storagetest"
)

func TestConformance(t *testing.T) {
	storagetest.RunDatabase(t, func(t *testing.T) storage.Database {
		// A directory that does not exist yet: Open creates it.
		s, err := sqlite.Open(context.Background(), filepath.Join(t.TempDir(), "nested", "app.db"))
		if err != nil {
			t.Fatalf("Open: %v", err)
		}
		t.Cleanup(func() { s.Close() })
		return s
	})
}
