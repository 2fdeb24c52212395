package backend_test

import (
	"bytes"
	"context"
	"log/slog"
	"path/filepath"
	"strings"
	"testing"

	"github.com/example/flystorage/internal/storage"
	"github.com/example/flystorage/internal/storage/backend"
	"github.com/example/flystorage/internal/testenv"
)

// TestMigrateOnStartLogsEachVersion is issue 14's defect 16: an app that
// migrates at start (MIGRATE_ON_START, or SQLite and MongoDB always) logs
// every migration it applies, on every engine, and nothing when the schema
// is current.
func TestMigrateOnStartLogsEachVersion(t *testing.T) {
	for name, env := range map[string]func(t *testing.T) map[string]string{
		"postgres": func(t *testing.T) map[string]string { return map[string]string{"DATABASE_URL": testenv.PostgresURL(t)} },
		"mysql":    func(t *testing.T) map[string]string { return map[string]string{"DATABASE_URL": testenv.MySQLURL(t)} },
		"mongodb":  func(t *testing.T) map[string]string { return map[string]string{"MONGODB_URI": testenv.MongoURI(t)} },
		"sqlite": func(t *testing.T) map[string]string {
			return map[string]string{"DATABASE_PATH": filepath.Join(t.TempDir(), "app.db")}
		},
	} {
		t.Run(name, func(t *testing.T) {
			vars := env(t)
			vars["MIGRATE_ON_START"] = "true"
			_, src, err := backend.Select(func(k string) string { return vars[k] })
			if err != nil {
				t.Fatal(err)
			}
			ctx := context.Background()
			start := func() string {
				var logs bytes.Buffer
				db, err := src.Open(ctx, storage.OpenOptions{Migrate: true, Logger: slog.New(slog.NewTextHandler(&logs, nil))})
				if err != nil {
					t.Fatal(err)
				}
				db.Close()
				return logs.String()
			}
			logs := start()
			m, err := src.Migrations(ctx)
			if err != nil {
				t.Fatal(err)
			}
			defer m.Close()
			all, err := m.Status(ctx)
			if err != nil || len(all) == 0 {
				t.Fatalf("Status = %v, %v", all, err)
			}
			for _, s := range all {
				if !strings.Contains(logs, strings.TrimSuffix(s.Name, ".sql")) {
					t.Errorf("migration %s applied without a log line; logs:\n%s", s.Name, logs)
				}
			}
			if again := start(); strings.Contains(again, "applied") {
				t.Errorf("a start on a current schema logged migrations:\n%s", again)
			}
		})
	}
}
