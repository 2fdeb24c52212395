package service_test

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"github.com/example/flystorage/internal/cache"
	"github.com/example/flystorage/internal/region"
	"github.com/example/flystorage/internal/service"
	"github.com/example/flystorage/internal/storage"
	"github.com/example/flystorage/internal/testenv"
)

// failingReplica fails the next GetNote when fail is set, as a replica
// that is down does, so that region.Database rests it.
type failingReplica struct {
	storage.Database
	fail atomic.Bool
}

func (r *failingReplica) GetNote(ctx context.Context, id string) (storage.Note, error) {
	if r.fail.Swap(false) {
		return storage.Note{}, storage.ErrUnavailable
	}
	return r.Database.GetNote(ctx, id)
}

// TestReplicaReadNeverFillsTheCache is issue 21's row 2 at the service:
// what a lagging replica answered is never cached for the primary's
// readers, even when the replica's rest after a failure ends in the middle
// of a read (the store that answers decides, not a look beforehand).
func TestReplicaReadNeverFillsTheCache(t *testing.T) {
	ctx := context.Background()
	url := testenv.RedisURL(t)
	cfg, err := cache.Load(func(k string) string { return map[string]string{"REDIS_URL": url}[k] })
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

	primary, blobs := testenv.LocalStores(t)
	replicaDB, _ := testenv.LocalStores(t)
	replica := &failingReplica{Database: replicaDB}
	now := time.Now()
	old := storage.Note{ID: storage.NewID(), Title: "old", CreatedAt: now, UpdatedAt: now}
	current := old
	current.Title = "current"
	if err := primary.CreateNote(ctx, current); err != nil {
		t.Fatal(err)
	}
	if err := replicaDB.CreateNote(ctx, old); err != nil {
		t.Fatal(err)
	}

	// The region's clock stands still until jump is set; from then on
	// its first reading is the moment it was set, and every later one a
	// minute on, past the replica's rest.
	var jump atomic.Bool
	var readings atomic.Int32
	clock := func() time.Time {
		if jump.Load() && readings.Add(1) > 1 {
			return now.Add(time.Minute)
		}
		return now
	}
	regional := region.NewDatabase(primary, replica, region.DatabaseOptions{Now: clock})
	replica.fail.Store(true)
	if _, err := regional.GetNote(ctx, storage.NewID()); err == nil {
		t.Fatal("a read of a missing note found one")
	}
	inSyd := service.New(service.Options{DB: regional, Blobs: blobs, Cache: c})
	inOrd := service.New(service.Options{DB: primary, Blobs: blobs, Cache: c})

	jump.Store(true)
	if _, err := inSyd.GetNote(ctx, old.ID); err != nil {
		t.Fatal(err)
	}
	if got, err := inOrd.GetNote(ctx, old.ID); err != nil || got.Title != "current" {
		t.Errorf("the primary's reader got %q, %v after a read whose replica came back during it; want current", got.Title, err)
	}

	c.Invalidate(ctx, cache.Note, old.ID)
	if got, err := inSyd.GetNote(ctx, old.ID); err != nil || got.Title != "old" {
		t.Fatalf("a read from the replica got %q, %v; want old: the test needs a replica behind", got.Title, err)
	}
	if got, err := inOrd.GetNote(ctx, old.ID); err != nil || got.Title != "current" {
		t.Errorf("the primary's reader got %q, %v after a read from the replica; want current", got.Title, err)
	}
}
