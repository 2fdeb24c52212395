package sqlite_test

import (
	"context"
	"fmt"
	"path/filepath"
	"testing"

	"github.com/example/flystorage/internal/storage"
	"github.com/example/flystorage/internal/storage/sqlite"
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

	b.Run("create", func(b *testing.B) {
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				now := storage.Now()
				if err := s.CreateNote(ctx, storage.Note{ID: storage.NewID(), Title: "bench", Body: "body", CreatedAt: now, UpdatedAt: now}); err != nil {
					b.Error(err)
					return
				}
			}
		})
		b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "notes/s")
	})

	b.Run("read", func(b *testing.B) {
		ids := make([]string, 100)
		for i := range ids {
			now := storage.Now()
			ids[i] = storage.NewID()
			if err := s.CreateNote(ctx, storage.Note{ID: ids[i], Title: fmt.Sprint("read ", i), CreatedAt: now, UpdatedAt: now}); err != nil {
				b.Fatal(err)
			}
		}
		b.ResetTimer()
		b.RunParallel(func(pb *testing.PB) {
			i := 0
			for pb.Next() {
				if _, err := s.GetNote(ctx, ids[i%len(ids)]); err != nil {
					b.Error(err)
					return
				}
				i++
			}
		})
		b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "notes/s")
	})
}
