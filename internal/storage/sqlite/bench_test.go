package sqlite_test

import (
	"context"
	"path/filepath"
	"testing"

	"github.com/example/flystorage/internal/storage/sqlite"
	"github.com/example/flystorage/internal/storage/storagetest"
)

// BenchmarkNotes reports note create and read throughput (notes/s) on a
// database file in a temporary directory, in the same shape as the other
// engines' BenchmarkNotes: writes go through the one writer connection,
// reads through the reader pool.
//
//	go test -run '^$' -bench Notes ./internal/storage/sqlite
func BenchmarkNotes(b *testing.B) {
	ctx := context.Background()
	s, err := sqlite.Open(ctx, filepath.Join(b.TempDir(), "bench.db"))
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()

	storagetest.BenchNotes(b, s)
}
