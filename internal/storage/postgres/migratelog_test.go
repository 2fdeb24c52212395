package postgres

import (
	"bytes"
	"context"
	"io/fs"
	"log/slog"
	"strings"
	"testing"

	"github.com/example/flystorage/internal/testenv"
	"github.com/example/flystorage/migrations"
)

// TestMigrateOnStartLogsEachVersion: MIGRATE_ON_START applies migrations at
// Open and logs each one it applied; a second Open applies and logs none.
func TestMigrateOnStartLogsEachVersion(t *testing.T) {
	url := testenv.PostgresURL(t)
	dir, err := migrations.Dir("postgres")
	if err != nil {
		t.Fatal(err)
	}
	files, err := fs.Glob(dir, "*.sql")
	if err != nil || len(files) == 0 {
		t.Fatalf("no postgres migrations: %v", err)
	}
	var logs bytes.Buffer
	s, err := Open(context.Background(), url, Options{Migrate: true, Logger: slog.New(slog.NewTextHandler(&logs, nil))})
	if err != nil {
		t.Fatal(err)
	}
	s.Close()
	for _, f := range files {
		if !strings.Contains(logs.String(), "name="+f) {
			t.Errorf("migration %s applied without a log line; logs:\n%s", f, logs.String())
		}
	}

	logs.Reset()
	s, err = Open(context.Background(), url, Options{Migrate: true, Logger: slog.New(slog.NewTextHandler(&logs, nil))})
	if err != nil {
		t.Fatal(err)
	}
	s.Close()
	if strings.Contains(logs.String(), "applied migration") {
		t.Errorf("an up-to-date schema logged migrations: %s", logs.String())
	}
}
