package backup_test

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/example/flystorage/internal/backup"
	"github.com/example/flystorage/internal/storage"
	"github.com/example/flystorage/internal/storage/sqlite"
	"github.com/example/flystorage/internal/testenv"
)

func bucket(t *testing.T) storage.Blobs {
	t.Helper()
	return testenv.S3Bucket(t).Blobs(t)
}

// TestBackupWhileWriting backs up while four writers keep inserting, then
// restores to a fresh path: the copy passes PRAGMA integrity_check and holds
// every note acknowledged before the backup began.
func TestBackupWhileWriting(t *testing.T) {
	ctx := context.Background()
	dbPath := filepath.Join(t.TempDir(), "app.db")
	db, err := sqlite.Open(ctx, dbPath)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	blobs := bucket(t)

	var mu sync.Mutex
	var acked []string
	stop := make(chan struct{})
	var wg sync.WaitGroup
	var writes atomic.Int64
	for w := range 4 {
		wg.Go(func() {
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				now := storage.Now()
				n := storage.Note{ID: storage.NewID(), Title: fmt.Sprintf("w%d-%d", w, i), Body: "backed up", CreatedAt: now, UpdatedAt: now}
				if err := db.CreateNote(ctx, n); err != nil {
					t.Errorf("writer: %v", err)
					return
				}
				mu.Lock()
				acked = append(acked, n.ID)
				mu.Unlock()
				writes.Add(1)
			}
		})
	}
	// Let the writers fill the database first.
	if !testenv.Eventually(30*time.Second, func() bool { return writes.Load() >= 300 }) {
		close(stop)
		wg.Wait()
		t.Fatalf("the writers made %d notes in 30s, want 300 before the backup", writes.Load())
	}
	mu.Lock()
	before := append([]string(nil), acked...)
	mu.Unlock()
	key, err := backup.Create(ctx, db, dbPath, blobs, backup.Prefix, nil)
	during := writes.Load()
	close(stop)
	wg.Wait()
	if err != nil {
		t.Fatalf("Create: %v", err)
	}
	t.Logf("backed up %s with %d notes acknowledged before it began and %d writes by its end", key, len(before), during)

	restored := filepath.Join(t.TempDir(), "restored", "app.db")
	got, err := backup.Restore(ctx, blobs, backup.Prefix, "latest", restored, backup.RestoreOptions{}, nil)
	if err != nil || got != key {
		t.Fatalf("Restore(latest) = %q, %v; want %q", got, err, key)
	}
	check, err := sql.Open("sqlite", restored)
	if err != nil {
		t.Fatal(err)
	}
	defer check.Close()
	var integrity string
	if err := check.QueryRow("PRAGMA integrity_check").Scan(&integrity); err != nil || integrity != "ok" {
		t.Fatalf("integrity_check = %q, %v", integrity, err)
	}
	have := map[string]bool{}
	rows, err := check.Query("SELECT id FROM notes")
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		var id string
		rows.Scan(&id)
		have[id] = true
	}
	rows.Close()
	missing := 0
	for _, id := range before {
		if !have[id] {
			missing++
		}
	}
	if missing > 0 || len(before) == 0 {
		t.Errorf("%d of the %d notes acknowledged before the backup are missing from it", missing, len(before))
	}
}

// TestRestoreOptions: an existing database is refused without --force,
// kept with --if-missing, and replaced with --force; a backup that is not
// gzip leaves the database as it was.
func TestRestoreOptions(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	src := filepath.Join(dir, "src.db")
	db, err := sqlite.Open(ctx, src)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	now := storage.Now()
	if err := db.CreateNote(ctx, storage.Note{ID: storage.NewID(), Title: "kept", CreatedAt: now, UpdatedAt: now}); err != nil {
		t.Fatal(err)
	}
	blobs := bucket(t)
	if _, err := backup.Restore(ctx, blobs, backup.Prefix, "latest", filepath.Join(dir, "none.db"), backup.RestoreOptions{}, nil); !errors.Is(err, backup.ErrNoBackups) {
		t.Errorf("Restore from an empty bucket = %v, want ErrNoBackups", err)
	}
	key, err := backup.Create(ctx, db, src, blobs, backup.Prefix, nil)
	if err != nil {
		t.Fatal(err)
	}

	target := filepath.Join(dir, "target.db")
	if err := os.WriteFile(target, []byte("not a database"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := backup.Restore(ctx, blobs, backup.Prefix, key, target, backup.RestoreOptions{}, nil); !errors.Is(err, backup.ErrExists) {
		t.Errorf("Restore over an existing file = %v, want ErrExists", err)
	}
	if got, err := backup.Restore(ctx, blobs, backup.Prefix, key, target, backup.RestoreOptions{IfMissing: true}, nil); got != "" || err != nil {
		t.Errorf("Restore --if-missing over an existing file = %q, %v; want a no-op", got, err)
	}
	if b, _ := os.ReadFile(target); string(b) != "not a database" {
		t.Error("--if-missing changed the existing file")
	}
	if err := blobs.Put(ctx, backup.Prefix+"app-99991231T000000.000Z.db.gz", bytesReader("garbage"), 7, ""); err != nil {
		t.Fatal(err)
	}
	if _, err := backup.Restore(ctx, blobs, backup.Prefix, "latest", target, backup.RestoreOptions{Force: true}, nil); err == nil {
		t.Error("Restore of a corrupt backup succeeded")
	}
	if b, _ := os.ReadFile(target); string(b) != "not a database" {
		t.Error("a failed restore changed the existing file")
	}
	if _, err := backup.Restore(ctx, blobs, backup.Prefix, key, target, backup.RestoreOptions{Force: true}, nil); err != nil {
		t.Fatalf("Restore --force: %v", err)
	}
	restored, err := sqlite.Open(ctx, target)
	if err != nil {
		t.Fatal(err)
	}
	defer restored.Close()
	if notes, _, err := restored.ListNotes(ctx, storage.Page{Limit: 10}); err != nil || len(notes) != 1 || notes[0].Title != "kept" {
		t.Errorf("restored notes = %+v, %v", notes, err)
	}
}

func TestPrune(t *testing.T) {
	ctx := context.Background()
	blobs := bucket(t)
	keys := []string{"app-20260101T000000.000Z", "app-20260102T000000.000Z", "app-20260103T000000.000Z", "app-20260104T000000.000Z"}
	for _, k := range keys {
		if err := blobs.Put(ctx, backup.Prefix+k+".db.gz", bytesReader("x"), 1, ""); err != nil {
			t.Fatal(err)
		}
	}
	// Another machine's backups, under its own prefix, are not this one's.
	other := backup.Prefix + "machine-2/app-20270101T000000.000Z.db.gz"
	if err := blobs.Put(ctx, other, bytesReader("x"), 1, ""); err != nil {
		t.Fatal(err)
	}
	if n, err := backup.Prune(ctx, blobs, backup.Prefix, 2); n != 2 || err != nil {
		t.Errorf("Prune(2) = %d, %v; want 2 removed", n, err)
	}
	left, err := backup.List(ctx, blobs, backup.Prefix)
	if err != nil || len(left) != 2 || left[0].Key != backup.Prefix+keys[3]+".db.gz" || left[1].Key != backup.Prefix+keys[2]+".db.gz" {
		t.Errorf("after Prune(2): %+v, %v; want the two newest", left, err)
	}
	if _, err := blobs.Stat(ctx, other); err != nil {
		t.Errorf("Prune removed another machine's backup: %v", err)
	}
}
