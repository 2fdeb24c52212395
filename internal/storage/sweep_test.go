package storage_test

import (
	"context"
	"errors"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/example/flystorage/internal/storage"
	"github.com/example/flystorage/internal/storage/postgres"
	"github.com/example/flystorage/internal/testenv"
)

func TestSweepSQLiteAndLocalFiles(t *testing.T) {
	db, blobs := testenv.LocalStores(t)
	testSweep(t, db, blobs)
}

func TestSweepPostgresAndS3(t *testing.T) {
	ctx := context.Background()
	db, err := postgres.Open(ctx, testenv.PostgresURL(t), postgres.Options{Migrate: true})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	testSweep(t, db, testenv.S3Bucket(t).Blobs(t))
}

// testSweep stores a file with its row, an orphan object, and objects that
// are not files': the sweep removes the orphan only, and only once it is
// older than the grace period.
func testSweep(t *testing.T, db storage.Database, blobs storage.Blobs) {
	ctx := context.Background()
	put := func(key string) {
		t.Helper()
		if err := blobs.Put(ctx, key, strings.NewReader("data"), 4, "text/plain"); err != nil {
			t.Fatalf("Put(%s): %v", key, err)
		}
	}
	kept := storage.File{ID: storage.NewID(), Name: "kept", ContentType: "text/plain", Size: 4, SHA256: strings.Repeat("0", 64), CreatedAt: storage.Now()}
	kept.Key = storage.FileKey("files/", kept.ID)
	put(kept.Key)
	if err := db.CreateFile(ctx, kept); err != nil {
		t.Fatal(err)
	}
	orphan := storage.FileKey("files/", storage.NewID())
	put(orphan)
	// A staging object no intent names (a presigned PUT repeated after its
	// upload completed), and one whose upload is still open.
	strayStaged := storage.StagingKey("files/", storage.NewID())
	put(strayStaged)
	open := storage.Upload{ID: storage.NewID(), Name: "open", ContentType: "text/plain", Size: 4, CreatedAt: storage.Now(), ExpiresAt: storage.Now().Add(time.Hour)}
	open.Key = storage.StagingKey("files/", open.ID)
	put(open.Key)
	if err := db.CreateUpload(ctx, open); err != nil {
		t.Fatal(err)
	}
	notOurs := []string{"files/not-an-id", "backups/app.db.gz"}
	for _, k := range notOurs {
		put(k)
	}
	log := slog.New(slog.DiscardHandler)

	res, err := storage.Sweep(ctx, db, blobs, "files/", storage.SweepGrace, log)
	if err != nil || res.Removed != 0 || res.Checked != 4 {
		t.Errorf("Sweep with a grace period = %+v, %v; want 4 checked and none removed (the orphans are new)", res, err)
	}
	res, err = storage.Sweep(ctx, db, blobs, "files/", -time.Minute, log)
	if err != nil || res.Removed != 2 {
		t.Errorf("Sweep = %+v, %v; want the orphan and the stray staging object removed", res, err)
	}
	for _, k := range []string{orphan, strayStaged} {
		if _, err := blobs.Stat(ctx, k); !errors.Is(err, storage.ErrNotFound) {
			t.Errorf("%s still stored: %v", k, err)
		}
	}
	for _, k := range append(notOurs, kept.Key, open.Key) {
		if _, err := blobs.Stat(ctx, k); err != nil {
			t.Errorf("Sweep removed %s, which it must keep: %v", k, err)
		}
	}
}
