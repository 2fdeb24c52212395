package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/example/flystorage/internal/testenv"
)

// pgStores reads the database behind the API directly, as psql would, and
// files from a local directory.
func pgStores(t *testing.T, dbURL, blobDir string) stores {
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, dbURL)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close(ctx) })
	return stores{
		database: "postgres",
		files:    "local",
		noteTitle: func(id string) (string, bool) {
			var title string
			err := conn.QueryRow(ctx, "SELECT title FROM notes WHERE id = $1", id).Scan(&title)
			return title, err == nil
		},
		blob:      localBlob(blobDir),
		blobCount: localBlobCount(blobDir),
	}
}

// TestPoolerModes runs the app untouched, with no DB_* variable set, the
// three ways Managed Postgres and others are reached: through PgBouncer in
// session mode (MPG's default), in transaction mode (MPG's opt-in), and
// directly. Migrations take the direct URL, as release_command does with
// DIRECT_DATABASE_URL; then every endpoint and a concurrent load of
// writes and reads answer 2xx only.
func TestPoolerModes(t *testing.T) {
	for _, mode := range []string{testenv.SessionPooling, testenv.TransactionPooling, "direct"} {
		t.Run(mode, func(t *testing.T) {
			var db testenv.PgBouncer
			if mode == "direct" {
				url := testenv.PostgresURL(t)
				db = testenv.PgBouncer{Pooled: url, Direct: url}
			} else {
				db = testenv.StartPgBouncer(t, mode)
			}
			blobDir := filepath.Join(t.TempDir(), "blobs")
			env := map[string]string{
				"DATABASE_URL":        db.Pooled,
				"DIRECT_DATABASE_URL": db.Direct,
				"MIGRATE_ON_START":    "true",
				"BLOB_DIR":            blobDir,
				"MAX_UPLOAD_BYTES":    fmt.Sprint(uploadLimit),
			}
			a := startApp(t, env)
			exerciseAPI(t, a, pgStores(t, db.Direct, blobDir))
			if errs := mixedLoad(a, 16, 25); len(errs) > 0 {
				t.Errorf("%d of %d operations failed with %s pooling; first: %v\nthe app's errors:\n%s", len(errs), 16*25, mode, errs[0], logLines(a, "level=ERROR", 5))
			}
		})
	}
}

// mixedLoad runs workers goroutines, each doing rounds of create, read,
// update, list and delete, and returns what went wrong.
func mixedLoad(a *testApp, workers, rounds int) []error {
	var mu sync.Mutex
	var errs []error
	fail := func(format string, args ...any) {
		mu.Lock()
		defer mu.Unlock()
		errs = append(errs, fmt.Errorf(format, args...))
	}
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			for r := range rounds {
				res, err := a.try("POST", "/api/notes", fmt.Sprintf(`{"title":"load %d/%d","body":"x"}`, w, r))
				if err != nil || res.status != 201 {
					fail("create: %v %d %s", err, res.status, res.body)
					continue
				}
				id := res.id()
				for _, step := range []struct {
					method, path, body string
					status             int
				}{
					{"GET", "/api/notes/" + id, "", 200},
					{"PUT", "/api/notes/" + id, `{"title":"updated"}`, 200},
					{"GET", "/api/notes?limit=5", "", 200},
					{"DELETE", "/api/notes/" + id, "", 204},
				} {
					if res, err := a.try(step.method, step.path, step.body); err != nil || res.status != step.status {
						fail("%s %s: %v %d %s", step.method, step.path, err, res.status, res.body)
					}
				}
			}
		})
	}
	wg.Wait()
	return errs
}

// TestPoolNeverExceedsMaxConns loads the app far past DB_MAX_CONNS and
// watches pg_stat_activity: the server never sees more connections from
// the app than that.
func TestPoolNeverExceedsMaxConns(t *testing.T) {
	const maxConns = 3
	appName := "flystorage_" + testenv.RandomHex(4)
	dbURL := testenv.PostgresURL(t) + "&application_name=" + appName
	a := startApp(t, map[string]string{
		"DATABASE_URL":     dbURL,
		"MIGRATE_ON_START": "true",
		"DB_MAX_CONNS":     fmt.Sprint(maxConns),
		"BLOB_DIR":         t.TempDir(),
	})
	ctx := context.Background()
	watcher, err := pgx.Connect(ctx, testenv.PostgresURL(t))
	if err != nil {
		t.Fatal(err)
	}
	defer watcher.Close(ctx)

	var peak atomic.Int64
	stop := make(chan struct{})
	watched := make(chan struct{})
	go func() {
		defer close(watched)
		for {
			var n int64
			if err := watcher.QueryRow(ctx, "SELECT count(*) FROM pg_stat_activity WHERE application_name = $1", appName).Scan(&n); err == nil && n > peak.Load() {
				peak.Store(n)
			}
			select {
			case <-stop:
				return
			case <-time.After(5 * time.Millisecond):
			}
		}
	}()
	errs := mixedLoad(a, 32, 10)
	close(stop)
	<-watched
	if len(errs) > 0 {
		t.Errorf("%d operations failed under load; first: %v", len(errs), errs[0])
	}
	if p := peak.Load(); p < 1 || p > maxConns {
		t.Errorf("peak server connections from the app = %d, want 1 to DB_MAX_CONNS (%d)", p, maxConns)
	}
}

// TestPostgresRecovers stops Postgres under the running app: requests that
// need it answer 503 without hanging, readiness turns 503, an upload leaves
// nothing behind, and once Postgres is back the app serves again without a
// restart and has lost no acknowledged write.
func TestPostgresRecovers(t *testing.T) {
	cluster := testenv.NewCluster(t, testenv.ClusterOptions{})
	blobDir := filepath.Join(t.TempDir(), "blobs")
	a := startApp(t, map[string]string{
		"DATABASE_URL":       strings.Replace(cluster.URL("disable"), "postgres://postgres@", "postgres://postgres:"+pgPassword+"@", 1),
		"MIGRATE_ON_START":   "true",
		"DB_CONNECT_TIMEOUT": "2s",
		"BLOB_DIR":           blobDir,
	})
	var acked []string
	create := func(title string) (response, error) {
		res, err := a.try("POST", "/api/notes", fmt.Sprintf(`{"title":%q}`, title))
		if err == nil && res.status == 201 {
			acked = append(acked, res.id())
		}
		return res, err
	}
	for i := range 5 {
		if res, err := create(fmt.Sprint("before ", i)); err != nil || res.status != 201 {
			t.Fatalf("create before the outage: %v %d %s", err, res.status, res.body)
		}
	}

	cluster.Stop(t)
	for _, r := range []struct{ method, path, body string }{
		{"POST", "/api/notes", `{"title":"during"}`},
		{"GET", "/api/notes", ""},
		{"GET", "/api/notes/" + acked[0], ""},
	} {
		res, err := a.try(r.method, r.path, r.body)
		if err != nil || res.status != 503 || res.errorCode(t) != "unavailable" {
			t.Errorf("%s %s with Postgres down: %v %d %s, want 503 unavailable", r.method, r.path, err, res.status, res.body)
		}
		// The client learns which store failed, not its address or user.
		if !strings.Contains(string(res.body), "the database is unavailable") || strings.Contains(string(res.body), "127.0.0.1") || strings.Contains(string(res.body), "user=") {
			t.Errorf("%s %s with Postgres down answered %s, want a message naming the database and nothing of its connection", r.method, r.path, res.body)
		}
	}
	if res := a.upload(t, "during.txt", "text/plain", []byte("lost?")); res.status != 503 {
		t.Errorf("upload with Postgres down: %d %s, want 503", res.status, res.body)
	}
	if entries, _ := os.ReadDir(filepath.Join(blobDir, "files")); len(entries) != 0 {
		t.Errorf("an upload refused for the database left %d objects behind", len(entries))
	}
	res := a.get(t, "/readyz")
	if res.status != 503 || !strings.Contains(string(res.body), `"database":{"backend":"postgres","error"`) {
		t.Errorf("readyz with Postgres down: %d %s", res.status, res.body)
	}

	cluster.Start(t)
	var err error
	if !testenv.Eventually(5*time.Second, func() bool {
		res, err = create("after")
		return err == nil && res.status == 201
	}) {
		t.Fatalf("the app did not serve within 5s of Postgres being back: %v %d %s", err, res.status, res.body)
	}
	if res := a.get(t, "/readyz"); res.status != 200 {
		t.Errorf("readyz after recovery: %d %s", res.status, res.body)
	}
	for _, id := range acked {
		if res := a.get(t, "/api/notes/"+id); res.status != 200 {
			t.Errorf("acknowledged note %s: %d after the outage", id, res.status)
		}
	}
	assertNoSecrets(t, a, pgPassword)
}

// TestSlowQueryLog logs every statement (DB_SLOW_QUERY=1ns) and checks the
// log has the SQL but not the values: a note's title is user data.
func TestSlowQueryLog(t *testing.T) {
	a := startApp(t, map[string]string{
		"DATABASE_URL":     testenv.PostgresURL(t),
		"MIGRATE_ON_START": "true",
		"DB_SLOW_QUERY":    "1ns",
		"BLOB_DIR":         t.TempDir(),
	})
	const private = "Private-Title-4417"
	expect(t, "create note", a.sendJSON(t, "POST", "/api/notes", `{"title":"`+private+`","body":"private body 9931"}`), 201)
	a.stop() // every log line written
	logs := a.logs.String()
	if !strings.Contains(logs, `msg="slow query"`) || !strings.Contains(logs, "INSERT INTO notes") {
		t.Errorf("no slow-query line with the INSERT in the log:\n%s", logs)
	}
	if strings.Contains(logs, private) || strings.Contains(logs, "9931") {
		t.Errorf("the log holds a query's argument values:\n%s", logs)
	}
}

// logLines returns the first n lines of a's log that contain substr.
func logLines(a *testApp, substr string, n int) string {
	var out []string
	for _, line := range strings.Split(a.logs.String(), "\n") {
		if strings.Contains(line, substr) && len(out) < n {
			out = append(out, line)
		}
	}
	return strings.Join(out, "\n")
}
