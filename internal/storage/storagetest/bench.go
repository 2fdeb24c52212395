package storagetest

import (
	"context"
	"fmt"
	"testing"

	"github.com/example/flystorage/internal/storage"
)

// BenchNotes reports note create and read throughput (notes/s) on db, with
// parallel callers, the same load on every engine so their figures compare.
func BenchNotes(b *testing.B, db storage.Database) {
	ctx := context.Background()
	b.Run("create", func(b *testing.B) {
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				now := storage.Now()
				if err := db.CreateNote(ctx, storage.Note{ID: storage.NewID(), Title: "bench", Body: "body", CreatedAt: now, UpdatedAt: now}); err != nil {
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
			if err := db.CreateNote(ctx, storage.Note{ID: ids[i], Title: fmt.Sprint("read ", i), CreatedAt: now, UpdatedAt: now}); err != nil {
				b.Fatal(err)
			}
		}
		b.ResetTimer()
		b.RunParallel(func(pb *testing.PB) {
			i := 0
			for pb.Next() {
				if _, err := db.GetNote(ctx, ids[i%len(ids)]); err != nil {
					b.Error(err)
					return
				}
				i++
			}
		})
		b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "notes/s")
	})
}
