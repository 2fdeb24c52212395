package mysql_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/example/flystorage/internal/storage"
	"github.com/example/flystorage/internal/storage/mysql"
	"github.com/example/flystorage/internal/storage/storagetest"
	"github.com/example/flystorage/internal/testenv"
)

// open opens the database at url, migrated, closed when the test ends.
func open(t testing.TB, url string, env map[string]string) storage.Database {
	t.Helper()
	src, err := mysql.Driver.Load(url, func(k string) string { return env[k] })
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	db, err := src.Open(context.Background(), storage.OpenOptions{Migrate: true})
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

func TestConformance(t *testing.T) {
	storagetest.RunDatabase(t, func(t *testing.T) storage.Database {
		return open(t, testenv.MySQLURL(t), nil)
	})
}

// TestPlainClientReadsRows: what the Store writes is ordinary rows that any
// MySQL client reads back, times in UTC.
func TestPlainClientReadsRows(t *testing.T) {
	dbURL := testenv.MySQLURL(t)
	s := open(t, dbURL, nil)
	ctx := context.Background()
	now := storage.Now()
	n := storage.Note{ID: storage.NewID(), Title: "héllo", Body: "wörld ✓", CreatedAt: now, UpdatedAt: now}
	if err := s.CreateNote(ctx, n); err != nil {
		t.Fatal(err)
	}
	f := storage.File{ID: storage.NewID(), Name: "a.txt", ContentType: "text/plain", Size: 3, SHA256: strings.Repeat("ab", 32), CreatedAt: now}
	f.Key = "files/" + f.ID
	if err := s.CreateFile(ctx, f); err != nil {
		t.Fatal(err)
	}

	u, _ := url.Parse(dbURL)
	plain, err := testenv.MySQLAdmin(u)
	if err != nil {
		t.Fatal(err)
	}
	defer plain.Close()
	var title, body string
	var created time.Time
	if err := plain.QueryRowContext(ctx, "SELECT title, body, created_at FROM notes WHERE id = ?", n.ID).Scan(&title, &body, &created); err != nil {
		t.Fatalf("reading the note with a plain client: %v", err)
	}
	if title != n.Title || body != n.Body || !created.Equal(n.CreatedAt) {
		t.Errorf("plain client read note %q, %q, %v; want %q, %q, %v", title, body, created, n.Title, n.Body, n.CreatedAt)
	}
	var name, key string
	var size int64
	if err := plain.QueryRowContext(ctx, "SELECT name, `key`, size FROM files WHERE id = ?", f.ID).Scan(&name, &key, &size); err != nil {
		t.Fatalf("reading the file with a plain client: %v", err)
	}
	if name != f.Name || key != f.Key || size != f.Size {
		t.Errorf("plain client read file %q, %q, %d; want %q, %q, %d", name, key, size, f.Name, f.Key, f.Size)
	}
}

// TestConcurrentMigrations: four `migrate up` at once on one fresh
// database all succeed, and each migration is applied once, because they
// take goose's table lock in turn.
func TestConcurrentMigrations(t *testing.T) {
	dbURL := testenv.MySQLURL(t)
	ctx := context.Background()
	const runs = 4
	var wg sync.WaitGroup
	errs := make([]error, runs)
	applied := make([]int, runs)
	for i := range runs {
		wg.Go(func() {
			src, err := mysql.Driver.Load(dbURL, func(string) string { return "" })
			if err != nil {
				errs[i] = err
				return
			}
			m, err := src.Migrations(ctx)
			if err != nil {
				errs[i] = err
				return
			}
			defer m.Close()
			res, err := m.Up(ctx)
			applied[i], errs[i] = len(res), err
		})
	}
	wg.Wait()
	total := 0
	for i, err := range errs {
		if err != nil {
			t.Errorf("Up %d: %v", i, err)
		}
		total += applied[i]
	}
	u, _ := url.Parse(dbURL)
	plain, err := testenv.MySQLAdmin(u)
	if err != nil {
		t.Fatal(err)
	}
	defer plain.Close()
	rows, err := plain.QueryContext(ctx, "SELECT version_id, COUNT(*) FROM goose_db_version WHERE version_id > 0 GROUP BY version_id ORDER BY version_id")
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var got []string
	for rows.Next() {
		var v, n int64
		if err := rows.Scan(&v, &n); err != nil {
			t.Fatal(err)
		}
		got = append(got, fmt.Sprintf("%d×%d", v, n))
	}
	if want := "1×1 2×1 3×1 4×1"; strings.Join(got, " ") != want {
		t.Errorf("goose_db_version holds %v, want each of 4 versions once (%s)", got, want)
	}
	if total != 4 {
		t.Errorf("the runs applied %d migrations between them (%v), want 4", total, applied)
	}
}

// TestSchemaBehind: without Migrate, Open refuses a database whose schema
// is behind, and takes it once migrated.
func TestSchemaBehind(t *testing.T) {
	dbURL := testenv.MySQLURL(t)
	ctx := context.Background()
	src, err := mysql.Driver.Load(dbURL, func(string) string { return "" })
	if err != nil {
		t.Fatal(err)
	}
	if db, err := src.Open(ctx, storage.OpenOptions{}); !errors.Is(err, storage.ErrSchemaBehind) {
		if db != nil {
			db.Close()
		}
		t.Fatalf("Open(empty database) = %v, want ErrSchemaBehind", err)
	}
	m, err := src.Migrations(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	if _, err := m.Up(ctx); err != nil {
		t.Fatal(err)
	}
	if v, err := m.Version(ctx); err != nil || v != 4 {
		t.Errorf("Version after Up = %d, %v; want 4", v, err)
	}
	db, err := src.Open(ctx, storage.OpenOptions{})
	if err != nil {
		t.Fatalf("Open(migrated) = %v", err)
	}
	db.Close()
	// Down works too: every migration has one.
	if res, err := m.DownTo(ctx, 0); err != nil || len(res) != 4 {
		t.Errorf("DownTo(0) = %d results, %v; want 4", len(res), err)
	}
}

// TestPlaintextLoopbackIsQuiet: plaintext to loopback crosses no network,
// so it gets no warning, and Describe says tls=false.
func TestPlaintextLoopbackIsQuiet(t *testing.T) {
	src, err := mysql.Driver.Load(testenv.MySQLURL(t), func(string) string { return "" })
	if err != nil {
		t.Fatal(err)
	}
	var logs bytes.Buffer
	db, err := src.Open(context.Background(), storage.OpenOptions{Migrate: true, Logger: slog.New(slog.NewTextHandler(&logs, nil))})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if got := db.Describe(); got["backend"] != "mysql" || got["tls"] != "false" || got["url"] != src.Redacted() {
		t.Errorf("Describe = %v, want backend mysql, tls false, url %s", got, src.Redacted())
	}
	if strings.Contains(logs.String(), "not encrypted") {
		t.Errorf("plaintext on loopback logged a warning: %s", logs.String())
	}
}

// TestUnreachable: a server that is not there fails Open with
// ErrUnavailable within the connect timeout, naming no password.
func TestUnreachable(t *testing.T) {
	src, err := mysql.Driver.Load("mysql://app:s3cret-pw@127.0.0.1:1/db?sslmode=disable",
		func(k string) string { return map[string]string{"DB_CONNECT_TIMEOUT": "2s"}[k] })
	if err != nil {
		t.Fatal(err)
	}
	db, err := src.Open(context.Background(), storage.OpenOptions{})
	if err == nil {
		db.Close()
		t.Fatal("Open(nothing listening) succeeded")
	}
	if !errors.Is(err, storage.ErrUnavailable) || strings.Contains(err.Error(), "s3cret-pw") {
		t.Errorf("Open(nothing listening) = %v; want ErrUnavailable without the password", err)
	}
}

// TestBadPassword: the server refusing the credentials is ErrRefused.
func TestBadPassword(t *testing.T) {
	u, err := url.Parse(testenv.MySQLURL(t))
	if err != nil {
		t.Fatal(err)
	}
	u.User = url.UserPassword("flystorage_no_such_user", "wrong-pw")
	src, err := mysql.Driver.Load(u.String(), func(string) string { return "" })
	if err != nil {
		t.Fatal(err)
	}
	db, err := src.Open(context.Background(), storage.OpenOptions{})
	if err == nil {
		db.Close()
		t.Fatal("Open(bad credentials) succeeded")
	}
	if !errors.Is(err, storage.ErrRefused) || strings.Contains(err.Error(), "wrong-pw") {
		t.Errorf("Open(bad credentials) = %v; want ErrRefused without the password", err)
	}
}

func TestPoolStats(t *testing.T) {
	db := open(t, testenv.MySQLURL(t), map[string]string{"DB_MAX_CONNS": "7"})
	st := db.(storage.PoolReporter).PoolStats()
	if len(st) != 1 || st[0].Name != "mysql" || st[0].Max != 7 || st[0].InUse+st[0].Idle < 1 {
		t.Errorf("PoolStats = %+v, want one pool named mysql of at most 7, with the connection Open made", st)
	}
}

// TestSchemaBodyLimit: the schema holds a body of exactly
// storage.MaxBodyBytes (more than TEXT's 65535) and refuses one byte more.
func TestSchemaBodyLimit(t *testing.T) {
	db := open(t, testenv.MySQLURL(t), nil)
	ctx := context.Background()
	now := storage.Now()
	note := func(body string) storage.Note {
		return storage.Note{ID: storage.NewID(), Title: "t", Body: body, CreatedAt: now, UpdatedAt: now}
	}
	full := note(strings.Repeat("b", storage.MaxBodyBytes))
	if err := db.CreateNote(ctx, full); err != nil {
		t.Fatalf("CreateNote(%d-byte body): %v", storage.MaxBodyBytes, err)
	}
	if got, err := db.GetNote(ctx, full.ID); err != nil || got.Body != full.Body {
		t.Errorf("GetNote(%d-byte body) = %d bytes, %v", storage.MaxBodyBytes, len(got.Body), err)
	}
	if err := db.CreateNote(ctx, note(strings.Repeat("b", storage.MaxBodyBytes+1))); !errors.Is(err, storage.ErrInvalid) {
		t.Errorf("CreateNote(%d-byte body) = %v, want ErrInvalid", storage.MaxBodyBytes+1, err)
	}
}
