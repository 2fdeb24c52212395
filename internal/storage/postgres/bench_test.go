package postgres_test

import (
	"context"
	"testing"

	"github.com/example/flystorage/internal/storage/postgres"
	"github.com/example/flystorage/internal/storage/storagetest"
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

			storagetest.BenchNotes(b, s)
		})
	}
}
