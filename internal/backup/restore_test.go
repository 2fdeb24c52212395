package backup_test

import (
	"bytes"
	"compress/gzip"
	"context"
	"database/sql"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/example/flystorage/internal/backup"
	"github.com/example/flystorage/internal/storage"
	"github.com/example/flystorage/internal/storage/localfs"
	"github.com/example/flystorage/internal/storage/sqlite"
)

func localBucket(t *testing.T) storage.Blobs {
	t.Helper()
	b, err := localfs.New(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close() })
	return b
}

// appDB makes an app database at path holding one note titled title.
func appDB(t *testing.T, path, title string) {
	t.Helper()
	ctx := context.Background()
	db, err := sqlite.Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	now := storage.Now()
	if err := db.CreateNote(ctx, storage.Note{ID: storage.NewID(), Title: title, CreatedAt: now, UpdatedAt: now}); err != nil {
		t.Fatal(err)
	}
}

func titles(t *testing.T, path string) []string {
	t.Helper()
	db, err := sql.Open("sqlite", "file:"+path+"?mode=ro")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	rows, err := db.Query("SELECT title FROM notes ORDER BY title")
	if err != nil {
		t.Fatalf("reading notes of %s: %v", path, err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var s string
		rows.Scan(&s)
		out = append(out, s)
	}
	return out
}

func putGzip(t *testing.T, blobs storage.Blobs, key string, data []byte) {
	t.Helper()
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	zw.Write(data)
	zw.Close()
	if err := blobs.Put(context.Background(), key, &buf, -1, "application/gzip"); err != nil {
		t.Fatal(err)
	}
}

// TestRestoreRefusesForeignDatabases: a gzipped empty file and an unrelated
// SQLite database pass integrity_check but are not this app's database:
// restore refuses them and the existing notes stay. A real backup replaces
// the database, keeping the old one beside it until the next start.
func TestRestoreRefusesForeignDatabases(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	target := filepath.Join(dir, "app.db")
	appDB(t, target, "mine")
	blobs := localBucket(t)

	foreign := filepath.Join(dir, "foreign.db")
	fdb, err := sql.Open("sqlite", "file:"+foreign)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := fdb.Exec("CREATE TABLE recipes (name TEXT); INSERT INTO recipes VALUES ('soup')"); err != nil {
		t.Fatal(err)
	}
	fdb.Close()
	foreignBytes, err := os.ReadFile(foreign)
	if err != nil {
		t.Fatal(err)
	}
	putGzip(t, blobs, backup.Prefix+"app-20260101T000000.000Z.db.gz", nil)
	putGzip(t, blobs, backup.Prefix+"app-20260102T000000.000Z.db.gz", foreignBytes)

	for _, key := range []string{"app-20260101T000000.000Z.db.gz", "app-20260102T000000.000Z.db.gz"} {
		_, err := backup.Restore(ctx, blobs, backup.Prefix, backup.Prefix+key, target, backup.RestoreOptions{Force: true}, nil)
		if !errors.Is(err, backup.ErrNotAppDatabase) {
			t.Errorf("Restore --force of %s = %v, want ErrNotAppDatabase", key, err)
		}
		if got := titles(t, target); len(got) != 1 || got[0] != "mine" {
			t.Fatalf("after refusing %s the database holds %v, want [mine]", key, got)
		}
	}

	// A real backup of another app database replaces it.
	other := filepath.Join(dir, "other.db")
	appDB(t, other, "theirs")
	odb, err := sqlite.Open(ctx, other)
	if err != nil {
		t.Fatal(err)
	}
	key, err := backup.Create(ctx, odb, other, blobs, backup.Prefix, nil)
	odb.Close()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := backup.Restore(ctx, blobs, backup.Prefix, key, target, backup.RestoreOptions{Force: true}, nil); err != nil {
		t.Fatalf("Restore --force of a real backup: %v", err)
	}
	if got := titles(t, target); len(got) != 1 || got[0] != "theirs" {
		t.Errorf("restored database holds %v, want [theirs]", got)
	}
	var kept []string
	matches, _ := filepath.Glob(target + ".before-restore-*")
	for _, m := range matches {
		if !strings.HasSuffix(m, "-wal") {
			kept = append(kept, m)
		}
	}
	if len(kept) != 1 {
		t.Fatalf("kept %v beside the database, want one app.db.before-restore-<time>", kept)
	}
	if got := titles(t, kept[0]); len(got) != 1 || got[0] != "mine" {
		t.Errorf("the replaced database %s holds %v, want [mine]", kept[0], got)
	}

	// The next successful start removes it.
	db, err := sqlite.Open(ctx, target)
	if err != nil {
		t.Fatal(err)
	}
	db.Close()
	if left, _ := filepath.Glob(target + ".before-restore-*"); len(left) != 0 {
		t.Errorf("after a successful start %v remain", left)
	}
}

// TestRestoreRefusesWhileTheAppRuns: while a process has the database open
// through sqlite.Open, restore --force refuses with ErrInUse and changes
// nothing; once it closes, restore works.
func TestRestoreRefusesWhileTheAppRuns(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	target := filepath.Join(dir, "app.db")
	appDB(t, target, "mine")
	other := filepath.Join(dir, "other.db")
	appDB(t, other, "theirs")
	blobs := localBucket(t)
	odb, err := sqlite.Open(ctx, other)
	if err != nil {
		t.Fatal(err)
	}
	key, err := backup.Create(ctx, odb, other, blobs, backup.Prefix, nil)
	odb.Close()
	if err != nil {
		t.Fatal(err)
	}

	running, err := sqlite.Open(ctx, target)
	if err != nil {
		t.Fatal(err)
	}
	_, err = backup.Restore(ctx, blobs, backup.Prefix, key, target, backup.RestoreOptions{Force: true}, nil)
	if !errors.Is(err, sqlite.ErrInUse) || !strings.Contains(err.Error(), "stop the app") {
		t.Errorf("Restore --force while the app runs = %v, want ErrInUse telling to stop the app", err)
	}
	if got := titles(t, target); len(got) != 1 || got[0] != "mine" {
		t.Errorf("a refused restore changed the database: %v", got)
	}
	running.Close()
	if _, err := backup.Restore(ctx, blobs, backup.Prefix, key, target, backup.RestoreOptions{Force: true}, nil); err != nil {
		t.Errorf("Restore --force after the app stopped: %v", err)
	}
}
