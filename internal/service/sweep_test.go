package service_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/example/flystorage/internal/service"
	"github.com/example/flystorage/internal/storage"
)

// lookups is a database that counts the calls that look rows up by id,
// and the largest batch NamedKeys was asked about.
type lookups struct {
	storage.Database
	mu             sync.Mutex
	calls, largest int
}

func (l *lookups) count(n int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.calls++
	l.largest = max(l.largest, n)
}

func (l *lookups) NamedKeys(ctx context.Context, ids []string) (map[string]string, map[string]bool, error) {
	l.count(len(ids))
	return l.Database.NamedKeys(ctx, ids)
}

func (l *lookups) GetFile(ctx context.Context, id string) (storage.File, error) {
	l.count(1)
	return l.Database.GetFile(ctx, id)
}

func (l *lookups) GetUpload(ctx context.Context, id string) (storage.Upload, error) {
	l.count(1)
	return l.Database.GetUpload(ctx, id)
}

// fate is what the sweep must do with an object.
type fate int

const (
	kept    fate = iota // older than the grace period, and a row names it
	removed             // older than the grace period, and no row names it
	fresh               // inside the grace period: kept, never looked up
	foreign             // not a key the app makes: kept, never looked up
)

// TestSweepBatchesLookups sweeps more objects than three batches hold, of
// every kind the sweep tells apart, some inside the grace period: it looks
// them up in one call per batch of storage.NamedKeysBatch and removes
// exactly the orphans. It runs on the backends with a blob directory,
// where the test can date the objects.
func TestSweepBatchesLookups(t *testing.T) {
	for name, open := range backends {
		if !strings.HasSuffix(name, "+dir") {
			continue
		}
		t.Run(name, func(t *testing.T) {
			var db *lookups
			s, _ := newService(t, func(t *testing.T) (storage.Database, storage.Blobs) {
				inner, blobs := open(t)
				db = &lookups{Database: inner}
				return db, blobs
			})
			ctx := context.Background()
			dir := s.Blobs().Describe()["dir"]
			old := s.Now().Add(-service.SweepGrace - time.Minute)
			keep, remove := map[string]bool{}, map[string]bool{}
			ours, eligible := 0, 0
			// object writes a blob at key, dated before the grace period
			// unless it is fresh, and notes what the sweep must do with it.
			object := func(key string, want fate) {
				t.Helper()
				p := filepath.Join(dir, filepath.FromSlash(key))
				if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(p, []byte("x"), 0o644); err != nil {
					t.Fatal(err)
				}
				if want != fresh {
					if err := os.Chtimes(p, old, old); err != nil {
						t.Fatal(err)
					}
				}
				if want != foreign {
					ours++
				}
				if want == kept || want == removed {
					eligible++
				}
				if want == removed {
					remove[key] = true
				} else {
					keep[key] = true
				}
			}
			file := func(key string) storage.File {
				t.Helper()
				id, _ := storage.FileID("files/", key)
				f := storage.File{ID: id, Name: "f", ContentType: "text/plain", Size: 1, SHA256: strings.Repeat("ab", 32), Key: key, CreatedAt: storage.Now()}
				if err := db.CreateFile(ctx, f); err != nil {
					t.Fatal(err)
				}
				return f
			}
			intent := func(id string) {
				t.Helper()
				now := storage.Now()
				u := storage.Upload{ID: id, Name: "u", ContentType: "text/plain", Size: 1, Key: storage.StagingKey("files/", id),
					CreatedAt: now, ExpiresAt: now.Add(24 * time.Hour)}
				if err := db.CreateUpload(ctx, u); err != nil {
					t.Fatal(err)
				}
			}

			const orphans = 3 * storage.NamedKeysBatch
			for range orphans {
				object(storage.FileKey("files/", storage.NewID()), removed)
			}
			for range 4 {
				f := file(storage.FileKey("files/", storage.NewID()))
				object(f.Key, kept)
				object(storage.VersionKey("files/", f.ID), removed) // a losing complete's copy
				object(storage.StagingKey("files/", f.ID), removed) // a PUT repeated after the complete
			}
			for range 3 {
				f := file(storage.VersionKey("files/", storage.NewID()))
				object(f.Key, kept)
				object(storage.FileKey("files/", f.ID), removed) // the row names the version
			}
			for range 3 {
				id := storage.NewID()
				intent(id)
				object(storage.StagingKey("files/", id), kept)
			}
			for range 2 { // a complete in progress: copied, its row not yet written
				id := storage.NewID()
				intent(id)
				object(storage.VersionKey("files/", id), kept)
			}
			for range 3 {
				object(storage.StagingKey("files/", storage.NewID()), removed)
			}
			for range 5 { // an upload in progress: its row comes next
				object(storage.FileKey("files/", storage.NewID()), fresh)
			}
			for _, k := range []string{"files/not-an-id", "files/" + storage.NewID() + ".x", "backups/app.db.gz"} {
				object(k, foreign)
			}

			res, err := s.Sweep(ctx, service.SweepGrace)
			if err != nil || res.Checked != ours || res.Removed != len(remove) || res.Expired != 0 {
				t.Errorf("Sweep = %+v, %v; want %d checked, %d removed", res, err, ours, len(remove))
			}
			batches := (eligible + storage.NamedKeysBatch - 1) / storage.NamedKeysBatch
			if db.calls != batches || db.largest > storage.NamedKeysBatch {
				t.Errorf("the sweep of %d objects past the grace period made %d lookups, the largest of %d ids; want %d of at most %d",
					eligible, db.calls, db.largest, batches, storage.NamedKeysBatch)
			}
			for e, err := range s.Blobs().List(ctx, "") {
				if err != nil {
					t.Fatal(err)
				}
				if remove[e.Key] {
					t.Errorf("the sweep left %s, which no row names", e.Key)
				}
				delete(keep, e.Key)
			}
			for k := range keep {
				t.Errorf("the sweep removed %s, which it must keep", k)
			}
		})
	}
}

// TestSweepStopsWhenCancelled: a sweep whose context ends (its lock was
// lost) removes nothing more, even inside a batch already looked up.
func TestSweepStopsWhenCancelled(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	var deletes int
	s, clk := newService(t, func(t *testing.T) (storage.Database, storage.Blobs) {
		db, blobs := backends["sqlite+dir"](t)
		return db, &cancelOnDelete{Blobs: blobs, cancel: cancel, deletes: &deletes}
	})
	for range 5 {
		if err := s.Blobs().Put(ctx, storage.FileKey("files/", storage.NewID()), strings.NewReader("x"), 1, "text/plain"); err != nil {
			t.Fatal(err)
		}
	}
	clk.Add(service.SweepGrace + time.Minute)
	res, err := s.Sweep(ctx, service.SweepGrace)
	if !errors.Is(err, context.Canceled) || deletes != 1 || res.Removed != 1 {
		t.Errorf("Sweep cancelled during its first removal = %+v, %v, %d removed; want context.Canceled after 1", res, err, deletes)
	}
	if n := len(objects(t, s)); n != 4 {
		t.Errorf("%d objects left, want 4", n)
	}
}

// cancelOnDelete cancels the sweep's context during its first Delete.
type cancelOnDelete struct {
	storage.Blobs
	cancel  context.CancelFunc
	deletes *int
}

func (b *cancelOnDelete) Delete(ctx context.Context, key string) error {
	*b.deletes++
	b.cancel()
	return b.Blobs.Delete(ctx, key)
}
