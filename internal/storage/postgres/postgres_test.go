package postgres_test

import (
	"context"
	"strings"
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

// TestNamedKeysInEveryExecMode: NamedKeys passes its ids as one text
// array, which each of pgx's query exec modes encodes its own way (the
// simple protocol as a literal in the statement's text).
func TestNamedKeysInEveryExecMode(t *testing.T) {
	url := testenv.PostgresURL(t)
	ctx := context.Background()
	for i, mode := range postgres.QueryExecModes {
		t.Run(mode, func(t *testing.T) {
			s, err := postgres.Open(ctx, url, postgres.Options{Migrate: i == 0, QueryExecMode: mode})
			if err != nil {
				t.Fatalf("Open: %v", err)
			}
			defer s.Close()
			id := storage.NewID()
			f := storage.File{ID: id, Name: "f", ContentType: "text/plain", SHA256: strings.Repeat("ab", 32), Key: "files/" + id, CreatedAt: storage.Now()}
			if err := s.CreateFile(ctx, f); err != nil {
				t.Fatal(err)
			}
			files, uploads, err := s.NamedKeys(ctx, []string{storage.NewID(), id, `a "quoted", {braced} id`})
			if err != nil || len(files) != 1 || files[id] != f.Key || len(uploads) != 0 {
				t.Errorf("NamedKeys = %v, %v, %v; want only %s naming %s", files, uploads, err, id, f.Key)
			}
		})
	}
}
