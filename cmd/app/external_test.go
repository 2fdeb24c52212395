package main

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io"
	"net/url"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/example/flystorage/internal/testenv"
)

// The MySQL and MongoDB backends run the same end-to-end tests as SQLite
// and Postgres: every endpoint through the app, each write checked with a
// plain client of the engine, as the mysql and mongosh shells would.

const (
	mysqlPassword = "my-Secret-5519"
	mongoPassword = "mongo-Secret-8023"
)

// mysqlUser creates a user with mysqlPassword on the fresh database of
// dbURL (a mysql:// URL from testenv.MySQLURL) and returns dbURL as that
// user. Unlike the Postgres test server, MySQL checks passwords, so the
// app really authenticates with the one it must keep out of sight.
func mysqlUser(t *testing.T, dbURL string) string {
	t.Helper()
	u, err := url.Parse(dbURL)
	if err != nil {
		t.Fatal(err)
	}
	admin, err := testenv.MySQLAdmin(u)
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close()
	name := "fs_" + testenv.RandomHex(4)
	ctx := context.Background()
	for _, stmt := range []string{
		fmt.Sprintf("CREATE USER '%s'@'%%' IDENTIFIED BY '%s'", name, mysqlPassword),
		fmt.Sprintf("GRANT ALL ON `%s`.* TO '%s'@'%%'", u.Path[1:], name),
	} {
		if _, err := admin.ExecContext(ctx, stmt); err != nil {
			t.Fatalf("creating the app's MySQL user: %v", err)
		}
	}
	t.Cleanup(func() {
		admin, err := testenv.MySQLAdmin(u)
		if err != nil {
			t.Errorf("dropping MySQL user %s: %v", name, err)
			return
		}
		defer admin.Close()
		if _, err := admin.ExecContext(context.Background(), fmt.Sprintf("DROP USER '%s'@'%%'", name)); err != nil {
			t.Errorf("dropping MySQL user %s: %v", name, err)
		}
	})
	app := *u
	app.User = url.UserPassword(name, mysqlPassword)
	return app.String()
}

// TestMySQLAndLocalFiles runs every endpoint with DATABASE_URL=mysql://...
// (MariaDB under test) and files in a local directory, reading the rows
// back with database/sql as the app's own user would not.
func TestMySQLAndLocalFiles(t *testing.T) {
	rootURL := testenv.MySQLURL(t)
	dbURL := mysqlUser(t, rootURL)
	blobDir := filepath.Join(t.TempDir(), "blobs")
	a := startApp(t, map[string]string{
		"DATABASE_URL":     dbURL,
		"MIGRATE_ON_START": "true",
		"BLOB_DIR":         blobDir,
		"MAX_UPLOAD_BYTES": fmt.Sprint(uploadLimit),
	})

	u, err := url.Parse(rootURL)
	if err != nil {
		t.Fatal(err)
	}
	db, err := testenv.MySQLAdmin(u)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	exerciseAPI(t, a, stores{
		database: "mysql",
		files:    "local",
		noteTitle: func(id string) (string, bool) {
			var title string
			err := db.QueryRow("SELECT title FROM notes WHERE id = ?", id).Scan(&title)
			if err != nil && !errors.Is(err, sql.ErrNoRows) {
				t.Errorf("reading note %s with a plain MySQL client: %v", id, err)
			}
			return title, err == nil
		},
		blob:      localBlob(blobDir),
		blobCount: localBlobCount(blobDir),
	})
	assertStorage(t, a, "mysql", mysqlPassword)
	assertPoolMetrics(t, a, "mysql")
	assertNoSecrets(t, a, mysqlPassword)
}

// TestMongoDBAndMinIO runs every endpoint with MONGODB_URI (FerretDB under
// test) and files in a MinIO bucket, reading documents back with a plain
// mongo client and objects with an S3 client.
func TestMongoDBAndMinIO(t *testing.T) {
	uri := testenv.MongoURI(t)
	s3env := testenv.S3Bucket(t)
	env := s3env.Env()
	// FerretDB 1.x on SQLite takes PLAIN credentials without checking
	// them, as the test Postgres trusts loopback: the password only has to
	// stay out of logs and answers.
	env["MONGODB_URI"] = strings.Replace(uri, "mongodb://", "mongodb://app:"+mongoPassword+"@", 1) + "?authMechanism=PLAIN"
	env["MIGRATE_ON_START"] = "true"
	env["MAX_UPLOAD_BYTES"] = fmt.Sprint(uploadLimit)
	a := startApp(t, env)

	ctx := context.Background()
	client, err := mongo.Connect(options.Client().ApplyURI(uri))
	if err != nil {
		t.Fatal(err)
	}
	defer client.Disconnect(ctx)
	cs, err := parseMongoDatabase(uri)
	if err != nil {
		t.Fatal(err)
	}
	notes := client.Database(cs).Collection("notes")
	exerciseAPI(t, a, stores{
		database: "mongodb",
		files:    "s3",
		noteTitle: func(id string) (string, bool) {
			var doc struct {
				Title string `bson:"title"`
			}
			err := notes.FindOne(ctx, bson.D{{Key: "_id", Value: id}}).Decode(&doc)
			if err != nil && !errors.Is(err, mongo.ErrNoDocuments) {
				t.Errorf("reading note %s with a plain mongo client: %v", id, err)
			}
			return doc.Title, err == nil
		},
		blob:      s3Blob(t, s3env),
		blobCount: s3BlobCount(t, s3env),
	})
	assertStorage(t, a, "mongodb", mongoPassword)
	assertPoolMetrics(t, a, "mongodb")
	assertNoSecrets(t, a, mongoPassword, s3env.SecretAccessKey)
}

// TestPageMongoDBAndMinIO shows "Notes in mongodb" and sends a file larger
// than one part straight to the bucket, which keeps an upload intent in
// MongoDB until the page completes it.
func TestPageMongoDBAndMinIO(t *testing.T) {
	bucket := testenv.S3Bucket(t)
	env := bucket.Env()
	env["MONGODB_URI"] = testenv.MongoURI(t)
	env["MIGRATE_ON_START"] = "true"
	env["MAX_UPLOAD_BYTES"] = fmt.Sprint(64 << 20)
	a := startApp(t, env)
	exercisePage(t, a, "mongodb", "s3", 12<<20)
	a.stop() // every log line written
	if !strings.Contains(a.logs.String(), `route="POST /api/files/uploads/{id}/complete"`) {
		t.Error("the page did not use the direct upload flow for a file larger than a part")
	}
}

// TestPageMySQLAndLocalFiles shows "Notes in mysql".
func TestPageMySQLAndLocalFiles(t *testing.T) {
	a := startApp(t, map[string]string{
		"DATABASE_URL":     testenv.MySQLURL(t),
		"MIGRATE_ON_START": "true",
		"BLOB_DIR":         t.TempDir(),
		"MAX_UPLOAD_BYTES": fmt.Sprint(64 << 20),
	})
	exercisePage(t, a, "mysql", "local", 5<<20)
}

// parseMongoDatabase returns the database named in a mongodb:// URI's path.
func parseMongoDatabase(uri string) (string, error) {
	_, rest, _ := strings.Cut(uri, "://")
	rest, _, _ = strings.Cut(rest, "?")
	_, db, ok := strings.Cut(rest, "/")
	if !ok || db == "" {
		return "", fmt.Errorf("%q names no database", uri)
	}
	return db, nil
}

// assertStorage checks that /api/storage names the engine and shows its
// URL with the password masked.
func assertStorage(t *testing.T, a *testApp, backend, secret string) {
	t.Helper()
	r := a.get(t, "/api/storage")
	expect(t, "storage", r, 200)
	db, _ := r.json(t)["database"].(map[string]any)
	if db["backend"] != backend {
		t.Errorf("/api/storage database = %v, want backend %s", db, backend)
	}
	if u, _ := db["url"].(string); !strings.Contains(u, ":xxxxx@") {
		t.Errorf("/api/storage database url = %q, want the URL with its password masked as xxxxx", u)
	}
	if strings.Contains(string(r.body), secret) {
		t.Errorf("/api/storage shows the password: %s", r.body)
	}
}

// assertPoolMetrics checks that /metrics has the engine's connection pool
// gauges, and that the pool has opened at least one connection by now.
func assertPoolMetrics(t *testing.T, a *testApp, pool string) {
	t.Helper()
	r := a.get(t, "/metrics")
	expect(t, "metrics", r, 200)
	var open float64
	found := map[string]bool{}
	for _, line := range strings.Split(string(r.body), "\n") {
		for _, state := range []string{"in_use", "idle"} {
			prefix := fmt.Sprintf(`flystorage_db_pool_connections{pool=%q,state=%q} `, pool, state)
			if v, ok := strings.CutPrefix(line, prefix); ok {
				found[state] = true
				var n float64
				fmt.Sscan(v, &n)
				open += n
			}
		}
		if strings.HasPrefix(line, fmt.Sprintf(`flystorage_db_pool_max_connections{pool=%q} `, pool)) {
			found["max"] = true
		}
	}
	if !found["in_use"] || !found["idle"] || !found["max"] {
		t.Errorf("/metrics lacks the %s pool gauges (found %v)", pool, found)
	} else if open < 1 {
		t.Errorf("/metrics reports %v open %s connections after serving requests, want at least 1", open, pool)
	}
}

// externalPassword is the SCRAM password of the external Postgres: finding
// it in any error or log line means a secret leaked.
const externalPassword = "Neon-Like-pw-7731"

// TestExternalPostgresTLS serves Postgres as Neon and Supabase do: TLS
// only, with a certificate from a CA of its own, and scram-sha-256
// passwords. The app works with sslmode=verify-full and the CA as
// sslrootcert, and with sslmode=require&channel_binding=require
// (SCRAM-SHA-256-PLUS); a wrong CA, a wrong password and sslmode=disable
// each stop it within seconds with an error that names DATABASE_URL and
// the cause, and never the password.
func TestExternalPostgresTLS(t *testing.T) {
	cluster := testenv.NewCluster(t, testenv.ClusterOptions{TLS: true, Password: externalPassword})
	wrongCA := testenv.NewTestCA(t).WriteFile(t, t.TempDir())
	for name, dbURL := range map[string]string{
		"verify-full":             cluster.URL("verify-full") + "&sslrootcert=" + cluster.CertFile(),
		"require+channel_binding": cluster.URL("require") + "&channel_binding=require",
	} {
		t.Run(name, func(t *testing.T) {
			a := startApp(t, map[string]string{"DATABASE_URL": dbURL, "MIGRATE_ON_START": "true", "BLOB_DIR": t.TempDir()})
			r := a.sendJSON(t, "POST", "/api/notes", `{"title":"over TLS","body":"x"}`)
			expect(t, "create note", r, 201)
			expect(t, "read note", a.get(t, "/api/notes/"+r.id()), 200)
			assertStorage(t, a, "postgres", externalPassword)
			if db, _ := a.get(t, "/api/storage").json(t)["database"].(map[string]any); db["tls"] != "true" {
				t.Errorf("/api/storage database = %v, want tls true", db)
			}
			assertNoSecrets(t, a, externalPassword)
		})
	}
	// sslrootcert=system, as PlanetScale's URLs have: the system's roots,
	// which SSL_CERT_FILE replaces, so the app runs as a process.
	t.Run("verify-full with the system's roots", func(t *testing.T) {
		p := startCrashProc(t, map[string]string{
			"DATABASE_URL":     cluster.URL("verify-full") + "&sslrootcert=system",
			"SSL_CERT_FILE":    cluster.CertFile(),
			"MIGRATE_ON_START": "true",
			"BLOB_DIR":         t.TempDir(),
		})
		a := &testApp{url: p.base, logs: p.logs, stop: p.kill}
		expect(t, "create note", a.sendJSON(t, "POST", "/api/notes", `{"title":"system roots"}`), 201)
		assertNoSecrets(t, a, externalPassword)
	})
	for _, c := range []struct{ name, url, cause string }{
		{"wrong CA", cluster.URL("verify-full") + "&sslrootcert=" + wrongCA, "not signed by a CA this machine trusts"},
		// This process's system roots, without SSL_CERT_FILE, lack the test CA.
		{"system roots without the CA", cluster.URL("verify-full") + "&sslrootcert=system", "not signed by a CA this machine trusts"},
		{"wrong password", strings.Replace(cluster.URL("require"), externalPassword, "Wrong-pw-5150", 1), "wrong user name or password"},
		{"sslmode=disable", cluster.URL("disable"), "refuses connections without TLS"},
	} {
		t.Run(c.name, func(t *testing.T) {
			err, logs, took := runFails(t, map[string]string{"DATABASE_URL": c.url, "MIGRATE_ON_START": "true", "BLOB_DIR": t.TempDir()})
			msg := err.Error()
			t.Logf("the app stopped after %v: %s", took.Round(time.Millisecond), msg)
			if !strings.Contains(msg, "DATABASE_URL") || !strings.Contains(msg, c.cause) {
				t.Errorf("the app stopped with %q, want an error naming DATABASE_URL and %q", msg, c.cause)
			}
			for _, pw := range []string{externalPassword, "Wrong-pw-5150"} {
				if strings.Contains(msg+logs, pw) {
					t.Errorf("the error or the log shows the password: %s\n%s", msg, logs)
				}
			}
			if took > 10*time.Second {
				t.Errorf("the app took %v to give up, want seconds", took)
			}
		})
	}
}

// runFails runs the app with env, which must keep it from starting, and
// returns its error, its log and how long it took to give up.
func runFails(t *testing.T, env map[string]string) (error, string, time.Duration) {
	t.Helper()
	env["PORT"] = "0"
	logs := newLogSink()
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	start := time.Now()
	err := runApp(ctx, nil, func(k string) string { return env[k] }, io.Discard, logs)
	took := time.Since(start)
	if err == nil || ctx.Err() != nil {
		t.Fatalf("the app started or hung (run = %v after %v), want it to fail; logs:\n%s", err, took, logs)
	}
	return err, logs.String(), took
}
