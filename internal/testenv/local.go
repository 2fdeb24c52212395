package testenv

import (
	"context"
	"path/filepath"
	"testing"

	"github.com/example/flystorage/internal/storage/localfs"
	"github.com/example/flystorage/internal/storage/sqlite"
)

// LocalStores opens the embedded default's stores in a fresh directory: a
// SQLite database and a blob directory beside it, closed when the test
// ends.
func LocalStores(t testing.TB) (*sqlite.Store, *localfs.Dir) {
	t.Helper()
	dir := t.TempDir()
	db, err := sqlite.Open(context.Background(), filepath.Join(dir, "app.db"))
	if err != nil {
		t.Fatalf("opening SQLite: %v", err)
	}
	t.Cleanup(func() { db.Close() })
	blobs, err := localfs.New(filepath.Join(dir, "blobs"))
	if err != nil {
		t.Fatalf("opening the blob directory: %v", err)
	}
	t.Cleanup(func() { blobs.Close() })
	return db, blobs
}
