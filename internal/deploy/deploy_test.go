// Package deploy holds no code, only tests: they read the files that deploy
// flystorage (Dockerfile, fly.toml, fly.sqlite.toml, docker-compose.yml,
// scripts/docker-entrypoint.sh) and check that they agree with the code, so
// that a route, a port, a variable or a binary renamed in Go fails here
// instead of on Fly. No Docker is needed: the Dockerfile's `go build` lines
// run on the host.
package deploy

import (
	"context"
	"io"
	"log/slog"
	"maps"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/example/flystorage/internal/app"
	"github.com/example/flystorage/internal/config"
	"github.com/example/flystorage/internal/server"
	"github.com/example/flystorage/internal/service"
)

// root is the repository's root, where the deploy files live.
var root = filepath.Join("..", "..")

func readRepoFile(t *testing.T, name string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(root, name))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// flySecrets are the variables Fly's own commands set as secrets: `fly
// postgres attach` (DATABASE_URL) and `fly storage create` (the rest).
// Deploy files never set them, but the config must read them.
var flySecrets = map[string]string{
	"DATABASE_URL":          "postgres://flystorage:secret@flystorage-db.flycast:5432/flystorage?sslmode=disable",
	"BUCKET_NAME":           "flystorage",
	"AWS_ENDPOINT_URL_S3":   "https://fly.storage.tigris.dev",
	"AWS_ACCESS_KEY_ID":     "tid_test",
	"AWS_SECRET_ACCESS_KEY": "tsec_test",
}

// configVars returns every variable the app reads: the ones it documents
// (app.Vars, the table the docs are generated from), checked against
// the names app.Load actually asks for in each mode (SQLite with local
// files, Postgres with a bucket), so an undocumented read fails here.
func configVars(t *testing.T) map[string]bool {
	t.Helper()
	documented := map[string]bool{}
	for _, v := range app.Vars() {
		documented[v.Name] = true
	}
	for _, env := range []map[string]string{{}, flySecrets} {
		getenv := func(name string) string {
			if !documented[name] {
				t.Errorf("the app reads %s, which no table of variables documents", name)
			}
			return env[name]
		}
		if _, err := app.Load(getenv); err != nil {
			t.Fatalf("app.Load(%v): %v", slices.Sorted(maps.Keys(env)), err)
		}
	}
	for name := range flySecrets {
		if !documented[name] {
			t.Errorf("Fly's commands set %s, but the app does not read it", name)
		}
	}
	return documented
}

// checkVarsRead fails for each variable in env that the config does not
// read: a misspelt or removed variable in a deploy file is silently ignored
// by the app, so it is caught here.
func checkVarsRead(t *testing.T, where string, env map[string]string, read map[string]bool) {
	t.Helper()
	for _, name := range slices.Sorted(maps.Keys(env)) {
		if !read[name] {
			t.Errorf("%s sets %s, which internal/config never reads (a typo, or a variable that was removed?)", where, name)
		}
	}
}

// loadConfig runs app.Load on env as the app would see it.
func loadConfig(t *testing.T, where string, env map[string]string) app.Setup {
	t.Helper()
	setup, err := app.Load(func(name string) string { return env[name] })
	if err != nil {
		t.Fatalf("%s: the app would refuse to start: %v", where, err)
	}
	return setup
}

// newHandler returns the app's real HTTP handler on SQLite and a local
// directory in a temporary directory, opened the way cmd/app opens them.
func newHandler(t *testing.T) http.Handler {
	t.Helper()
	dir := t.TempDir()
	setup := loadConfig(t, "test", map[string]string{
		"DATABASE_PATH": filepath.Join(dir, "app.db"),
		"BLOB_DIR":      filepath.Join(dir, "blobs"),
	})
	cfg := setup.Config
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	st, err := app.Open(context.Background(), setup, log)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	svc := service.New(service.Options{DB: st.DB, Blobs: st.Blobs, KeyPrefix: cfg.FileKeyPrefix(), MaxUpload: cfg.MaxUploadBytes, Logger: log})
	return server.New(server.Options{Service: svc, MaxUploadBytes: cfg.MaxUploadBytes, Logger: log})
}

// get sends GET path with headers through h and returns the status.
func get(h http.Handler, path string, headers map[string]string) int {
	req := httptest.NewRequest(http.MethodGet, path, nil)
	for k, v := range headers {
		req.Header.Set(k, v)
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	return rec.Code
}

func TestHandlerTellsRoutesApart(t *testing.T) {
	// The checks below trust get to answer 404 for a path that is no route;
	// this proves it does, on both sides of the /api/ catch-all.
	h := newHandler(t)
	for _, path := range []string{"/no-such-route", "/api/no-such-route"} {
		if code := get(h, path, nil); code != http.StatusNotFound {
			t.Errorf("GET %s = %d, want 404", path, code)
		}
	}
	if code := get(h, "/healthz", nil); code != http.StatusOK {
		t.Errorf("GET /healthz = %d, want 200", code)
	}
}

// appShutdownTimeout is the app's default graceful shutdown timeout.
func appShutdownTimeout(t *testing.T) time.Duration {
	t.Helper()
	d, err := time.ParseDuration(mustDefault(t, "SHUTDOWN_TIMEOUT"))
	if err != nil {
		t.Fatal(err)
	}
	return d
}

// mustDefault is the documented default of an app-wide variable.
func mustDefault(t *testing.T, name string) string {
	t.Helper()
	v, ok := config.Default(name)
	if !ok {
		t.Fatalf("internal/config documents no %s", name)
	}
	return v
}
