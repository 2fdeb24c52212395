package postgres_test

import (
	"context"
	"testing"

	"github.com/example/flystorage/internal/storage"
	"github.com/example/flystorage/internal/storage/postgres"
	"github.com/example/flystorage/internal/storage/storagetest"
	"github.com/example/flystorage/internal/testenv"
)

func TestConformance(t *testing.T) {
	storagetest.RunDatabase(t, func(t *testing.T) storage.Database {
		s, err := postgres.Open(context.Background(), testenv.PostgresURL(t), postgres.Options{Migrate: true})
		if err != nil {
			t.Fatalf("Open: %v", err)
		}
		t.Cleanup(func() { s.Close() })
		return s
	})
}
