package service_test

import (
	"context"
	"testing"
	"time"

	"github.com/example/flystorage/internal/cache"
	"github.com/example/flystorage/internal/service"
	"github.com/example/flystorage/internal/storage"
	"github.com/example/flystorage/internal/testenv"
)

// TestUpdateNoteInvalidatesTheCache is the unit-level twin of cmd/app's
// TestRedisCacheReadYourWrites: with Redis, a read after an update never
// returns the note the read before it cached, on every backend.
func TestUpdateNoteInvalidatesTheCache(t *testing.T) {
	run(t, func(t *testing.T, open stores) {
		ctx := context.Background()
		cfg, err := cache.Load(func(k string) string {
			return map[string]string{"REDIS_URL": testenv.RedisURL(t)}[k]
		})
		if err != nil {
			t.Fatal(err)
		}
		cfg.KeyPrefix = "test-" + testenv.RandomHex(4) + ":"
		c, err := cache.Open(ctx, cfg, nil)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		defer c.Flush(ctx)
		s, _ := newService(t, open, func(o *service.Options) { o.Cache = c })

		n, err := s.CreateNote(ctx, storage.Note{Title: "before"})
		if err != nil {
			t.Fatal(err)
		}
		if got, err := s.GetNote(ctx, n.ID); err != nil || got.Title != "before" { // fills the cache
			t.Fatalf("GetNote = %+v, %v", got, err)
		}
		// Changed in the database behind the service's back, the note
		// still reads as cached: the second read is a hit.
		behind := n
		behind.Title, behind.UpdatedAt = "behind the cache", n.UpdatedAt.Add(time.Second)
		if _, err := s.DB().UpdateNote(ctx, behind); err != nil {
			t.Fatal(err)
		}
		if got, err := s.GetNote(ctx, n.ID); err != nil || got.Title != "before" {
			t.Fatalf("the second GetNote = %q, %v; want before, from the cache", got.Title, err)
		}
		n.Title = "after"
		if _, err := s.UpdateNote(ctx, n); err != nil {
			t.Fatal(err)
		}
		if got, err := s.GetNote(ctx, n.ID); err != nil || got.Title != "after" {
			t.Errorf("GetNote after the update = %q, %v; want after (the cached note was not invalidated)", got.Title, err)
		}
		if err := s.DeleteNote(ctx, n.ID); err != nil {
			t.Fatal(err)
		}
		if got, err := s.GetNote(ctx, n.ID); err == nil {
			t.Errorf("GetNote after the delete = %q, want not found", got.Title)
		}
	})
}
