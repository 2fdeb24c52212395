package main

import (
	"bytes"
	"context"
	"database/sql"
	"fmt"
	neturl "net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"
	_ "modernc.org/sqlite" // The "sqlite" driver the tests inspect the file with.

	"github.com/example/flystorage/internal/config"
	"github.com/example/flystorage/internal/testenv"
)

// secret is a password distinctive enough that finding it in any output
// means a secret leaked.
const secret = "s3cr3tpw"

// migrate runs the command with args against the environment vars and
// returns what it printed.
func migrate(t *testing.T, vars map[string]string, args ...string) (stdout string, err error) {
	t.Helper()
	var out bytes.Buffer
	getenv := func(name string) string { return vars[name] }
	err = run(t.Context(), args, getenv, &out)
	return out.String(), err
}

// mustMigrate is migrate for commands that must succeed.
func mustMigrate(t *testing.T, vars map[string]string, args ...string) string {
	t.Helper()
	stdout, err := migrate(t, vars, args...)
	if err != nil {
		t.Fatalf("migrate %v: %v\nstdout:\n%s", args, err, stdout)
	}
	return stdout
}

// wantVersion checks that `migrate version` prints want.
func wantVersion(t *testing.T, vars map[string]string, want string) {
	t.Helper()
	if got := strings.TrimSpace(mustMigrate(t, vars, "version")); got != want {
		t.Errorf("migrate version printed %q, want %q", got, want)
	}
}

// wantStatus checks that `migrate status` lists both migrations, each
// applied or pending as want says.
func wantStatus(t *testing.T, vars map[string]string, want map[string]bool) {
	t.Helper()
	out := mustMigrate(t, vars, "status")
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != len(want) {
		t.Fatalf("migrate status printed %d lines, want %d:\n%s", len(lines), len(want), out)
	}
	for name, applied := range want {
		i := slices.IndexFunc(lines, func(l string) bool { return strings.Contains(l, name) })
		if i < 0 {
			t.Errorf("migrate status does not list %s:\n%s", name, out)
			continue
		}
		state := "pending"
		if applied {
			state = "applied"
		}
		if !strings.Contains(lines[i], state) {
			t.Errorf("migrate status line %q, want %s", lines[i], state)
		}
	}
}

// migration is one step of a schema: the name `migrate` reports it by, and
// the table (or collection) it creates.
type migration struct{ file, table string }

// schema lists the SQL engines' migrations in order, each with the table it
// creates. TestSchemaListsEveryMigration keeps it in step with migrations/.
var schema = []migration{
	{"00001_create_notes.sql", "notes"},
	{"00002_create_files.sql", "files"},
	{"00003_create_uploads.sql", "uploads"},
	{"00004_create_sessions_and_idempotency_keys.sql", "idempotency_keys"},
}

// mongoSchema lists MongoDB's schema steps (internal/storage/mongodb's
// steps), each with the collection it creates. Files and upload intents
// share one collection, so the steps differ from the SQL files; `migrate
// status` listing exactly these keeps the list in step.
var mongoSchema = []migration{
	{"00001_create_notes", "notes"},
	{"00002_create_files", "files"},
	{"00003_create_sessions", "sessions"},
	{"00004_create_idempotency_keys", "idempotency_keys"},
}

func TestSchemaListsEveryMigration(t *testing.T) {
	for _, engine := range []string{"postgres", "mysql", "sqlite"} {
		entries, err := os.ReadDir(filepath.Join("..", "..", "migrations", engine))
		if err != nil {
			t.Fatal(err)
		}
		var files []string
		for _, e := range entries {
			files = append(files, e.Name())
		}
		var want []string
		for _, m := range schema {
			want = append(want, m.file)
		}
		if !slices.Equal(files, want) {
			t.Errorf("migrations/%s holds %v; this test's schema lists %v", engine, files, want)
		}
	}
}

// wantTables checks that exactly the first n migrations' tables exist.
func wantTables(t *testing.T, schema []migration, tables func(t *testing.T) []string, n int) {
	t.Helper()
	got := tables(t)
	for i, m := range schema {
		if has, wanted := slices.Contains(got, m.table), i < n; has != wanted {
			t.Errorf("table %s exists: %v, want %v (tables: %v)", m.table, has, wanted, got)
		}
	}
}

// wantApplied checks the version and status after the first n migrations.
func wantApplied(t *testing.T, schema []migration, vars map[string]string, n int) {
	t.Helper()
	wantVersion(t, vars, fmt.Sprint(n))
	status := map[string]bool{}
	for i, m := range schema {
		status[m.file] = i < n
	}
	wantStatus(t, vars, status)
}

// testCycle migrates the database that vars name up, down, down to 0 and up
// again, checking the version, the status and the tables at each step.
func testCycle(t *testing.T, schema []migration, vars map[string]string, tables func(t *testing.T) []string) {
	all, last := len(schema), schema[len(schema)-1].file
	// reported counts the migrations named in out.
	reported := func(out string) int {
		n := 0
		for _, m := range schema {
			if strings.Contains(out, m.file) {
				n++
			}
		}
		return n
	}

	out := mustMigrate(t, vars, "up")
	for _, m := range schema {
		if !strings.Contains(out, m.file) {
			t.Errorf("migrate up does not report %s:\n%s", m.file, out)
		}
	}
	wantApplied(t, schema, vars, all)
	wantTables(t, schema, tables, all)

	// A second up finds nothing to do.
	out = mustMigrate(t, vars, "up")
	if !strings.Contains(out, "no pending migrations") || reported(out) != 0 {
		t.Errorf("second migrate up applied something:\n%s", out)
	}
	wantApplied(t, schema, vars, all)

	out = mustMigrate(t, vars, "down")
	if !strings.Contains(out, last) || reported(out) != 1 {
		t.Errorf("migrate down does not report rolling back only %s:\n%s", last, out)
	}
	wantApplied(t, schema, vars, all-1)
	wantTables(t, schema, tables, all-1)

	mustMigrate(t, vars, "down-to", "0")
	wantApplied(t, schema, vars, 0)
	wantTables(t, schema, tables, 0)

	// At version 0 there is nothing to roll back: said in words, and not a
	// failure.
	for _, args := range [][]string{{"down"}, {"down-to", "0"}} {
		if out := mustMigrate(t, vars, args...); !strings.Contains(out, "nothing to roll back") {
			t.Errorf("migrate %s at version 0 printed %q, want it to say there is nothing to roll back", strings.Join(args, " "), out)
		}
	}

	mustMigrate(t, vars, "up")
	wantApplied(t, schema, vars, all)
	wantTables(t, schema, tables, all)
}

func TestSQLite(t *testing.T) {
	// The directory does not exist yet: migrate creates it, as on a fresh
	// volume.
	path := filepath.Join(t.TempDir(), "volume", "app.db")
	vars := map[string]string{"DATABASE_PATH": path}

	testCycle(t, schema, vars, func(t *testing.T) []string {
		t.Helper()
		db, err := sql.Open("sqlite", path)
		if err != nil {
			t.Fatalf("opening %s: %v", path, err)
		}
		defer db.Close()
		rows, err := db.QueryContext(t.Context(), `SELECT name FROM sqlite_master WHERE type = 'table'`)
		if err != nil {
			t.Fatalf("listing tables: %v", err)
		}
		return collect(t, rows)
	})
}

func TestPostgres(t *testing.T) {
	url := testenv.PostgresURL(t)
	vars := map[string]string{"DATABASE_URL": url}

	testCycle(t, schema, vars, func(t *testing.T) []string {
		t.Helper()
		conn, err := pgx.Connect(t.Context(), url)
		if err != nil {
			t.Fatalf("connecting to the test schema: %v", err)
		}
		defer conn.Close(t.Context())
		rows, err := conn.Query(t.Context(),
			`SELECT table_name FROM information_schema.tables WHERE table_schema = current_schema()`)
		if err != nil {
			t.Fatalf("listing tables: %v", err)
		}
		names, err := pgx.CollectRows(rows, pgx.RowTo[string])
		if err != nil {
			t.Fatalf("listing tables: %v", err)
		}
		return names
	})
}

func TestMySQL(t *testing.T) {
	url := testenv.MySQLURL(t)
	vars := map[string]string{"DATABASE_URL": url}

	testCycle(t, schema, vars, func(t *testing.T) []string {
		t.Helper()
		db := mysqlClient(t, url)
		rows, err := db.QueryContext(t.Context(),
			`SELECT table_name FROM information_schema.tables WHERE table_schema = DATABASE()`)
		if err != nil {
			t.Fatalf("listing tables: %v", err)
		}
		return collect(t, rows)
	})
}

// mysqlClient opens a plain database/sql client on the database of a
// mysql:// URL, closed when the test ends.
func mysqlClient(t *testing.T, raw string) *sql.DB {
	t.Helper()
	u, err := neturl.Parse(raw)
	if err != nil {
		t.Fatal(err)
	}
	db, err := testenv.MySQLAdmin(u)
	if err != nil {
		t.Fatalf("connecting to the test database: %v", err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

// TestMongoDB runs the cycle on MongoDB's schema steps: collections instead
// of tables, and schema_migrations instead of goose_db_version.
func TestMongoDB(t *testing.T) {
	uri := testenv.MongoURI(t)
	vars := map[string]string{"MONGODB_URI": uri}

	testCycle(t, mongoSchema, vars, func(t *testing.T) []string {
		t.Helper()
		client, err := mongo.Connect(options.Client().ApplyURI(uri))
		if err != nil {
			t.Fatalf("connecting to the test database: %v", err)
		}
		defer client.Disconnect(t.Context())
		_, rest, _ := strings.Cut(uri, "://")
		rest, _, _ = strings.Cut(rest, "?")
		_, name, _ := strings.Cut(rest, "/")
		names, err := client.Database(name).ListCollectionNames(t.Context(), bson.D{})
		if err != nil {
			t.Fatalf("listing collections: %v", err)
		}
		return names
	})
}

// collect returns the first column of every row.
func collect(t *testing.T, rows *sql.Rows) []string {
	t.Helper()
	defer rows.Close()
	var names []string
	for rows.Next() {
		var name string
		if err := rows.Scan(&name); err != nil {
			t.Fatalf("scanning: %v", err)
		}
		names = append(names, name)
	}
	if err := rows.Err(); err != nil {
		t.Fatalf("reading rows: %v", err)
	}
	return names
}

func TestUsageErrors(t *testing.T) {
	tests := [][]string{
		{"sideways"},
		{"down-to"},
		{"down-to", "one"},
		{"down-to", "-1"},
		{"down-to", "0", "1"},
		{"up", "extra"},
		{"down", "extra"},
		{"status", "extra"},
		{"version", "extra"},
	}
	for _, args := range tests {
		t.Run(strings.Join(args, " "), func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "app.db")
			_, err := migrate(t, map[string]string{"DATABASE_PATH": path}, args...)
			if err == nil {
				t.Fatalf("migrate %v succeeded, want a usage error", args)
			}
			if got := config.ExitCode(err); got != 2 {
				t.Errorf("ExitCode(%v) = %d, want 2", err, got)
			}
			// A bad command line is refused before the database is touched.
			if _, statErr := os.Stat(path); !os.IsNotExist(statErr) {
				t.Errorf("migrate %v created %s (stat: %v)", args, path, statErr)
			}
		})
	}
}

func TestUnsupportedDatabaseURL(t *testing.T) {
	_, err := migrate(t, map[string]string{"DATABASE_URL": "redis://app:" + secret + "@127.0.0.1/0"}, "up")
	if err == nil {
		t.Fatal("migrate up succeeded with a redis:// DATABASE_URL")
	}
	if got := config.ExitCode(err); got != 2 {
		t.Errorf("ExitCode(%v) = %d, want 2", err, got)
	}
	if !strings.Contains(err.Error(), "DATABASE_URL") {
		t.Errorf("error %q does not name DATABASE_URL", err)
	}
	if strings.Contains(err.Error(), secret) {
		t.Errorf("error %q contains the password", err)
	}
}

func TestUnreachablePostgres(t *testing.T) {
	// Nothing listens on port 1, so every command fails to connect; that is
	// a failure to run (1), not a configuration error (2).
	urls := map[string]string{
		"userinfo": "postgres://postgres:" + secret + "@127.0.0.1:1/x?sslmode=disable&connect_timeout=2",
		"query":    "postgres://postgres@127.0.0.1:1/x?password=" + secret + "&sslmode=disable&connect_timeout=2",
	}
	for where, url := range urls {
		for _, command := range []string{"up", "down", "status", "version"} {
			t.Run(where+" "+command, func(t *testing.T) {
				stdout, err := migrate(t, map[string]string{"DATABASE_URL": url}, command)
				if err == nil {
					t.Fatalf("migrate %s succeeded against a closed port", command)
				}
				if got := config.ExitCode(err); got != 1 {
					t.Errorf("ExitCode(%v) = %d, want 1", err, got)
				}
				for what, s := range map[string]string{"error": err.Error(), "stdout": stdout} {
					if strings.Contains(s, secret) {
						t.Errorf("%s contains the password: %s", what, s)
					}
				}
			})
		}
	}
}

// TestMain lets a test run this package's main in a child process: the test
// binary re-executed with FLYSTORAGE_RUN_MIGRATE=1 is the migrate command.
func TestMain(m *testing.M) {
	if os.Getenv("FLYSTORAGE_RUN_MIGRATE") == "1" {
		main()
		return
	}
	os.Exit(m.Run())
}

// TestConcurrentUp starts four `migrate up` processes at once against one
// empty database, as overlapping deploys could: all succeed, and the lock
// makes each migration apply exactly once. It runs with a direct URL alone,
// with Managed Postgres's pair of a pooled and a direct URL (migrating over
// the direct one), and with only a URL through PgBouncer in transaction
// mode, where a second up and a status must work too; the lock is goose's
// table lock in all three.
func TestConcurrentUp(t *testing.T) {
	t.Run("direct URL", func(t *testing.T) {
		url := testenv.PostgresURL(t)
		concurrentUp(t, []string{"DATABASE_URL=" + url}, pgApplied(url))
	})
	t.Run("pooled and direct URLs", func(t *testing.T) {
		db := testenv.PgBouncerDatabase(t)
		concurrentUp(t, []string{"DATABASE_URL=" + db.Pooled, "DIRECT_DATABASE_URL=" + db.Direct}, pgApplied(db.Direct))
	})
	t.Run("pooled URL only", func(t *testing.T) {
		db := testenv.PgBouncerDatabase(t)
		concurrentUp(t, []string{"DATABASE_URL=" + db.Pooled}, pgApplied(db.Direct))
		vars := map[string]string{"DATABASE_URL": db.Pooled}
		for range 3 {
			if out := mustMigrate(t, vars, "up"); !strings.Contains(out, "no pending migrations") {
				t.Errorf("another up through PgBouncer applied something:\n%s", out)
			}
		}
		wantApplied(t, schema, vars, len(schema))
	})
}

// TestConcurrentUpMySQL starts four `migrate up` processes at once against
// one empty MySQL database: all succeed, and goose's lock makes each
// migration apply exactly once.
func TestConcurrentUpMySQL(t *testing.T) {
	url := testenv.MySQLURL(t)
	concurrentUp(t, []string{"DATABASE_URL=" + url}, func(t *testing.T) []versionCount {
		rows, err := mysqlClient(t, url).QueryContext(t.Context(), versionCounts)
		if err != nil {
			t.Fatalf("reading goose_db_version: %v", err)
		}
		defer rows.Close()
		var got []versionCount
		for rows.Next() {
			var v versionCount
			if err := rows.Scan(&v.Version, &v.Count); err != nil {
				t.Fatal(err)
			}
			got = append(got, v)
		}
		if err := rows.Err(); err != nil {
			t.Fatal(err)
		}
		return got
	})
}

// concurrentUp runs four `migrate up` processes at once with env and checks
// with applied, which reads goose_db_version's rows per version, that each
// migration was applied once.
func concurrentUp(t *testing.T, env []string, applied func(t *testing.T) []versionCount) {
	const processes = 4
	cmds := make([]*exec.Cmd, processes)
	outs := make([]bytes.Buffer, processes)
	for i := range cmds {
		cmds[i] = exec.Command(os.Args[0], "up")
		cmds[i].Env = append([]string{"FLYSTORAGE_RUN_MIGRATE=1"}, env...)
		cmds[i].Stdout, cmds[i].Stderr = &outs[i], &outs[i]
	}
	for i, c := range cmds {
		if err := c.Start(); err != nil {
			t.Fatalf("starting migrate %d: %v", i, err)
		}
	}
	for i, c := range cmds {
		if err := c.Wait(); err != nil {
			t.Errorf("migrate up #%d: %v\n%s", i, err, outs[i].String())
		}
	}
	got := applied(t)
	want := []versionCount{{0, 1}}
	for i := range schema {
		want = append(want, versionCount{int64(i + 1), 1})
	}
	if !slices.Equal(got, want) {
		t.Errorf("goose_db_version rows per version = %v, want %v (each once)", got, want)
	}
}

// versionCount is how many rows of goose_db_version record one version.
type versionCount struct {
	Version int64
	Count   int64
}

const versionCounts = "SELECT version_id, count(*) FROM goose_db_version GROUP BY version_id ORDER BY version_id"

// pgApplied reads goose_db_version through a direct Postgres URL.
func pgApplied(directURL string) func(t *testing.T) []versionCount {
	return func(t *testing.T) []versionCount {
		conn, err := pgx.Connect(t.Context(), directURL)
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close(t.Context())
		rows, _ := conn.Query(t.Context(), versionCounts)
		got, err := pgx.CollectRows(rows, pgx.RowToStructByPos[versionCount])
		if err != nil {
			t.Fatal(err)
		}
		return got
	}
}

// TestPrefersDirectURL points DATABASE_URL at nothing and
// DIRECT_DATABASE_URL at the database: migrate uses the direct one.
func TestPrefersDirectURL(t *testing.T) {
	vars := map[string]string{
		"DATABASE_URL":        "postgres://postgres@127.0.0.1:1/pooled?sslmode=disable&connect_timeout=2",
		"DIRECT_DATABASE_URL": testenv.PostgresURL(t),
	}
	mustMigrate(t, vars, "up")
	wantVersion(t, vars, fmt.Sprint(len(schema)))
}

// TestDirectURLThroughTransactionPooler sets DIRECT_DATABASE_URL, by
// mistake, to a URL through PgBouncer in transaction mode, and runs four
// `migrate up` at once, then three more one after another, as repeated
// deploys would. Each either works, or fails at once with a message
// naming DIRECT_DATABASE_URL; none may hang, and each migration is applied
// once.
func TestDirectURLThroughTransactionPooler(t *testing.T) {
	db := testenv.StartPgBouncer(t, testenv.TransactionPooling)
	env := []string{"FLYSTORAGE_RUN_MIGRATE=1", "DATABASE_URL=" + db.Pooled, "DIRECT_DATABASE_URL=" + db.Pooled}
	// A hang is anything longer than a working migration takes on this
	// busy machine; goose would retry a lock it cannot get for minutes.
	const limit = 30 * time.Second
	upAll := func(n int) {
		t.Helper()
		ctx, cancel := context.WithTimeout(t.Context(), limit)
		defer cancel()
		cmds := make([]*exec.Cmd, n)
		outs := make([]bytes.Buffer, n)
		for i := range cmds {
			cmds[i] = exec.CommandContext(ctx, os.Args[0], "up")
			cmds[i].Env = env
			cmds[i].Stdout, cmds[i].Stderr = &outs[i], &outs[i]
			if err := cmds[i].Start(); err != nil {
				t.Fatalf("starting migrate %d: %v", i, err)
			}
		}
		for i, c := range cmds {
			err := c.Wait()
			switch {
			case ctx.Err() != nil:
				t.Fatalf("migrate up #%d with DIRECT_DATABASE_URL through a transaction pooler hung for %v:\n%s", i, limit, outs[i].String())
			case err != nil && !strings.Contains(outs[i].String(), "DIRECT_DATABASE_URL"):
				t.Errorf("migrate up #%d failed without naming DIRECT_DATABASE_URL: %v\n%s", i, err, outs[i].String())
			}
		}
	}
	upAll(4)
	for range 3 {
		upAll(1)
	}
	got := pgApplied(db.Direct)(t)
	for _, v := range got {
		if v.Count > 1 {
			t.Errorf("goose_db_version rows per version = %v, want each once", got)
			break
		}
	}
}
