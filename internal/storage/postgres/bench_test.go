package postgres_test

import (
	"context"
	"fmt"
	"testing"

	"github.com/example/flystorage/internal/storage"
	"github.com/example/flystorage/internal/storage/postgres"
	"github.com/example/flystorage/internal/testenv"
)

// BenchmarkNotes reports note create and read throughput (notes/s) over
// pgxpool straight to Postgres, in the app's default exec mode and in pgx's
// cache_statement mode, and through PgBouncer in transaction mode:
//
//	make test TESTFLAGS="-run ^$ -bench Notes ./internal/storage/postgres"
func BenchmarkNotes(b *testing.B) {
	targets := []struct {
		name, mode string
		url        func(testing.TB) string
	}{
		{"direct/exec", "exec", testenv.PostgresURL},
		{"direct/cache_statement", "cache_statement", testenv.PostgresURL},
		{"pgbouncer/exec", "exec", func(tb testing.TB) string { return testenv.PgBouncerDatabase(tb).Pooled }},
	}
	for _, target := range targets {
		b.Run(target.name, func(b *testing.B) {
			ctx := context.Background()
			s, err := postgres.Open(ctx, target.url(b), postgres.Options{Migrate: true, QueryExecMode: target.mode, MaxConns: 20})
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
		})
	}
}
