package mongodb_test

import (
	"context"
	"fmt"
	"testing"

	"github.com/example/flystorage/internal/storage"
	"github.com/example/flystorage/internal/testenv"
)

// BenchmarkNotes reports note create and read throughput (notes/s) over the
// driver's pool of 20 connections, shaped like the Postgres benchmark so
// the figures compare (the tests' server is FerretDB, not MongoDB):
//
//	make test TESTFLAGS="-run ^$ -bench Notes ./internal/storage/mongodb"
func BenchmarkNotes(b *testing.B) {
	ctx := context.Background()
	s := open(b, testenv.MongoURI(b), map[string]string{"DB_MAX_CONNS": "20"})

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
