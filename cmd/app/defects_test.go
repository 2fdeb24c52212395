package main

import (
	"bytes"
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"maps"
	"net/http"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awss3 "github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/jackc/pgx/v5"
	"github.com/redis/go-redis/v9"

	"github.com/example/flystorage/internal/testenv"
)

// These tests reproduce issue 21's defects against the whole app, each on
// the services its row names.

// sessionCookie signs in on a with token and returns the Cookie header
// value of the session.
func sessionCookie(t *testing.T, a *testApp, token string) string {
	t.Helper()
	r := a.do(t, "POST", "/api/session", "application/json", strings.NewReader(`{"token":"`+token+`"}`), "Sec-Fetch-Site", "same-origin")
	expect(t, "signing in", r, 201)
	for _, c := range (&http.Response{Header: r.header}).Cookies() {
		if c.Name == "flystorage_session" {
			return c.Name + "=" + c.Value
		}
	}
	t.Fatalf("signing in set no flystorage_session cookie: %v", r.header["Set-Cookie"])
	return ""
}

// TestRotatingTokenEndsSessions is issue 21's row 1 on Postgres with
// Redis: a session made with the old API_TOKEN must not write once the app
// runs with a new one.
func TestRotatingTokenEndsSessions(t *testing.T) {
	redisSrv := testenv.StartRedis(t)
	apps, env := machines(t, 1, redisSrv.URL(), map[string]string{"API_TOKEN": "the-old-token-0123456"})
	old := apps[0]
	cookie := sessionCookie(t, old, "the-old-token-0123456")
	old.stop()

	env = maps.Clone(env)
	env["API_TOKEN"] = "the-new-token-6543210"
	rotated := startApp(t, env)
	page := &testApp{url: rotated.url, logs: rotated.logs} // the cookie, no token
	withCookie := []string{"Cookie", cookie, "Sec-Fetch-Site", "same-origin"}
	if s := page.do(t, "GET", "/api/session", "", nil, withCookie...).json(t); s["signed_in"] != false {
		t.Errorf("after rotating API_TOKEN, GET /api/session with the old cookie says %v, want signed_in false", s)
	}
	expectError(t, "a write with a session of the old token", page.do(t, "POST", "/api/notes", "application/json",
		strings.NewReader(`{"title":"by an old session"}`), withCookie...), 401, "unauthorized")

	// A session of the new token works.
	fresh := sessionCookie(t, page, "the-new-token-6543210")
	expect(t, "a write with a session of the new token", page.do(t, "POST", "/api/notes", "application/json",
		strings.NewReader(`{"title":"by a new session"}`), "Cookie", fresh, "Sec-Fetch-Site", "same-origin"), 201)
}

// TestHostileInputPostgres is issue 21's rows 4, 6, 7 and 11 to 13 on
// Postgres with Redis, one app for all of them.
func TestHostileInputPostgres(t *testing.T) {
	redisSrv := testenv.StartRedis(t)
	apps, _ := machines(t, 1, redisSrv.URL(), nil)
	a := apps[0]
	note := a.sendJSON(t, "POST", "/api/notes", `{"title":"kept","body":"x"}`)
	expect(t, "a note", note, 201)
	file := a.upload(t, "a.txt", "text/plain", []byte("0123456789"))
	expect(t, "a file", file, 201)

	t.Run("row 4: malformed ids are 404", func(t *testing.T) {
		for _, id := range []string{"%00", "%ff", "x%00y"} {
			for _, rt := range []struct{ method, path string }{
				{"GET", "/api/notes/" + id}, {"PUT", "/api/notes/" + id}, {"DELETE", "/api/notes/" + id},
				{"GET", "/api/files/" + id}, {"GET", "/api/files/" + id + "/content"}, {"GET", "/api/files/" + id + "/url"},
				{"DELETE", "/api/files/" + id}, {"POST", "/api/files/uploads/" + id + "/complete"},
			} {
				expectError(t, rt.method+" "+rt.path, a.do(t, rt.method, rt.path, "application/json", strings.NewReader(`{"title":"t"}`)), 404, "not_found")
			}
		}
		if strings.Contains(a.logs.String(), "level=ERROR") {
			t.Errorf("malformed ids logged errors:\n%s", a.logs)
		}
	})

	t.Run("row 6: a retry never recreates what was deleted", func(t *testing.T) {
		key := "row-6-" + testenv.RandomHex(6)
		first := a.do(t, "POST", "/api/notes", "application/json", strings.NewReader(`{"title":"once"}`), "Idempotency-Key", key)
		expect(t, "the first POST", first, 201)
		expect(t, "deleting the note", a.do(t, "DELETE", "/api/notes/"+first.id(), "", nil), 204)
		retry := a.do(t, "POST", "/api/notes", "application/json", strings.NewReader(`{"title":"once"}`), "Idempotency-Key", key)
		if !(retry.status == 201 && retry.header.Get("Idempotent-Replayed") == "true" || retry.status == 409) {
			t.Errorf("the retry after a delete: %d %v %s, want 201 replayed or 409", retry.status, retry.header, retry.body)
		}
		expect(t, "the deleted note after the retry", a.get(t, "/api/notes/"+first.id()), 404)

		key = "row-6-" + testenv.RandomHex(6)
		up := a.do(t, "POST", "/api/files", "multipart/form-data; boundary=b", strings.NewReader(multipartBody("f.txt", "hello")), "Idempotency-Key", key)
		expect(t, "the first upload", up, 201)
		expect(t, "deleting the file", a.do(t, "DELETE", "/api/files/"+up.id(), "", nil), 204)
		retry = a.do(t, "POST", "/api/files", "multipart/form-data; boundary=b", strings.NewReader(multipartBody("f.txt", "hello")), "Idempotency-Key", key)
		if !(retry.status == 201 && retry.header.Get("Idempotent-Replayed") == "true" || retry.status == 409) {
			t.Errorf("the upload's retry after a delete: %d %v %s, want 201 replayed or 409", retry.status, retry.header, retry.body)
		}
		expect(t, "the deleted file after the retry", a.get(t, "/api/files/"+up.id()), 404)

		// A direct upload's intent, completed and its file deleted.
		key = "row-6-" + testenv.RandomHex(6)
		intent := `{"name":"d.txt","content_type":"text/plain","size":5}`
		start := a.do(t, "POST", "/api/files/uploads", "application/json", strings.NewReader(intent), "Idempotency-Key", key)
		expect(t, "starting a direct upload", start, 201)
		var target struct {
			ID, URL string
			Headers map[string]string
		}
		json.Unmarshal(start.body, &target)
		var headers []string
		for k, v := range target.Headers {
			headers = append(headers, k, v)
		}
		expect(t, "the PUT", a.do(t, "PUT", target.URL, "", strings.NewReader("hello"), headers...), 200)
		expect(t, "completing", a.sendJSON(t, "POST", "/api/files/uploads/"+target.ID+"/complete", ""), 201)
		expect(t, "deleting its file", a.do(t, "DELETE", "/api/files/"+target.ID, "", nil), 204)
		again := a.do(t, "POST", "/api/files/uploads", "application/json", strings.NewReader(intent), "Idempotency-Key", key)
		expectError(t, "the intent's retry after its file was deleted", again, 409, "conflict")
	})

	t.Run("row 7: long ids never reach Redis", func(t *testing.T) {
		rdb := redis.NewClient(&redis.Options{Addr: fmt.Sprintf("127.0.0.1:%d", redisSrv.Port)})
		defer rdb.Close()
		ctx := context.Background()
		long := strings.Repeat("a", 900_000)
		before := rdb.DBSize(ctx).Val()
		for range 20 {
			r := a.get(t, "/api/notes/"+long)
			if r.status != 404 && r.status != 414 {
				t.Fatalf("GET a 900,000-character id: %d, want 404 or 414", r.status)
			}
		}
		if after := rdb.DBSize(ctx).Val(); after != before {
			t.Errorf("20 reads of a 900,000-character id left %d keys in Redis, had %d", after, before)
		}
		expect(t, "a read with a too long path", a.get(t, "/api/notes/"+strings.Repeat("a", 5000)), 414)
	})

	t.Run("row 11: Origin must match scheme, host and port", func(t *testing.T) {
		cookie := sessionCookie(t, &testApp{url: a.url}, redisTestToken)
		host := strings.TrimPrefix(a.url, "http://")
		for _, origin := range []string{"https://" + host, "http://" + strings.Replace(host, "127.0.0.1", "localhost", 1)} {
			r := (&testApp{url: a.url}).do(t, "POST", "/api/notes", "application/json", strings.NewReader(`{"title":"t"}`), "Cookie", cookie, "Origin", origin)
			expectError(t, "a cookie write with Origin "+origin, r, 403, "forbidden")
		}
		expect(t, "a cookie write with the app's own Origin", (&testApp{url: a.url}).do(t, "POST", "/api/notes", "application/json",
			strings.NewReader(`{"title":"t"}`), "Cookie", cookie, "Origin", a.url), 201)
	})

	t.Run("row 12: the bearer scheme is case-insensitive", func(t *testing.T) {
		for _, scheme := range []string{"bearer", "BEARER", "Bearer"} {
			r := (&testApp{url: a.url}).do(t, "POST", "/api/notes", "application/json", strings.NewReader(`{"title":"t"}`), "Authorization", scheme+" "+redisTestToken)
			expect(t, "a write with "+scheme, r, 201)
		}
	})

	t.Run("row 13: text that is not UTF-8 and sizes out of range", func(t *testing.T) {
		for _, body := range []string{"{\"title\":\"a\xffb\"}", `{"title":"a\ud800b"}`, `{"title":"a\udc00"}`} {
			r := a.sendJSON(t, "POST", "/api/notes", body)
			expectError(t, "a title of "+body, r, 400, "invalid")
			if msg := r.json(t)["error"].(map[string]any)["message"]; msg != "title is not valid UTF-8" {
				t.Errorf("a title of %q: message %q, want \"title is not valid UTF-8\"", body, msg)
			}
		}
		expect(t, "a title with an escaped surrogate pair", a.sendJSON(t, "POST", "/api/notes", `{"title":"\ud83d\ude00"}`), 201)
		r := a.sendJSON(t, "PUT", "/api/notes/"+note.id(), `{"title":"ok","body":"a\ud800"}`)
		expectError(t, "a body with a lone surrogate", r, 400, "invalid")
		for _, size := range []string{"-1", "-9000000000"} {
			r := a.sendJSON(t, "POST", "/api/files/uploads", `{"name":"a","size":`+size+`}`)
			expectError(t, "an upload of size "+size, r, 400, "invalid")
			if msg, _ := r.json(t)["error"].(map[string]any)["message"].(string); !strings.Contains(msg, "out of range") {
				t.Errorf("an upload of size %s: message %q, want one saying the size is out of range", size, msg)
			}
		}
	})
}

// multipartBody is a form with the part "file", boundary "b".
func multipartBody(name, content string) string {
	return "--b\r\nContent-Disposition: form-data; name=\"file\"; filename=\"" + name + "\"\r\nContent-Type: text/plain\r\n\r\n" + content + "\r\n--b--\r\n"
}

// TestTrailingSpaceIDMariaDB is issue 21's row 3: MariaDB's collation
// ignores trailing spaces, so the id plus a space must be refused before
// the database sees it, or the cache keeps a deleted note.
func TestTrailingSpaceIDMariaDB(t *testing.T) {
	redisSrv := testenv.StartRedis(t)
	a := startApp(t, map[string]string{
		"DATABASE_URL":     mysqlUser(t, testenv.MySQLURL(t)),
		"MIGRATE_ON_START": "true",
		"BLOB_DIR":         filepath.Join(t.TempDir(), "blobs"),
		"REDIS_URL":        redisSrv.URL(),
	})
	n := a.sendJSON(t, "POST", "/api/notes", `{"title":"kept"}`)
	expect(t, "a note", n, 201)
	expect(t, "reading it (and caching it)", a.get(t, "/api/notes/"+n.id()), 200)
	expectError(t, "PUT with a trailing space", a.sendJSON(t, "PUT", "/api/notes/"+n.id()+"%20", `{"title":"changed"}`), 404, "not_found")
	expectError(t, "DELETE with a trailing space", a.do(t, "DELETE", "/api/notes/"+n.id()+"%20", "", nil), 404, "not_found")
	if r := a.get(t, "/api/notes/"+n.id()); r.status != 200 || !strings.Contains(string(r.body), `"kept"`) {
		t.Errorf("the note after writes to its id plus a space: %d %s, want it unchanged", r.status, r.body)
	}

	f := a.upload(t, "a.txt", "text/plain", []byte("hello"))
	expect(t, "a file", f, 201)
	expect(t, "reading it (and caching it)", a.get(t, "/api/files/"+f.id()), 200)
	expectError(t, "DELETE a file with a trailing space", a.do(t, "DELETE", "/api/files/"+f.id()+"%20", "", nil), 404, "not_found")
	expect(t, "the file's bytes after a delete of its id plus a space", a.get(t, "/api/files/"+f.id()+"/content"), 200)
}

// TestRevokedSessionStaysRevoked is issue 21's row 10: signing out while
// Redis does not answer clears the cookie, and the session does not come
// back with Redis, on any machine, even after the machine that signed it
// out restarted before Redis answered.
func TestRevokedSessionStaysRevoked(t *testing.T) {
	redisSrv := testenv.StartRedis(t)
	apps, env := machines(t, 2, redisSrv.URL(), map[string]string{"REDIS_TIMEOUT": "300ms"})
	a, b := &testApp{url: apps[0].url}, &testApp{url: apps[1].url}
	cookie := sessionCookie(t, a, redisTestToken)
	redisSrv.Pause(t)
	r := a.do(t, "DELETE", "/api/session", "", nil, "Cookie", cookie, "Sec-Fetch-Site", "same-origin")
	cleared := false
	for _, c := range (&http.Response{Header: r.header}).Cookies() {
		cleared = cleared || c.Name == "flystorage_session" && c.MaxAge < 0
	}
	if r.status != 204 || !cleared {
		t.Errorf("signing out with Redis paused: %d, cookie cleared %v; want 204 and the cookie cleared", r.status, cleared)
	}
	apps[0].stop() // a restart before Redis answers: a's memory of the deletion is gone
	redisSrv.Resume(t)
	// A paused Redis runs what it was sent once it resumes, so a's delete
	// lands after all: wait for it, then put the session's key back before
	// each machine asks, as if the delete had never reached Redis (a's
	// restart came first, or a failover lost it).
	secret, _, _ := strings.Cut(strings.TrimPrefix(cookie, "flystorage_session="), ".")
	sum := sha256.Sum256([]byte(secret))
	key := "flystorage:session:" + hex.EncodeToString(sum[:])
	raw := redis.NewClient(&redis.Options{Addr: fmt.Sprintf("127.0.0.1:%d", redisSrv.Port)})
	defer raw.Close()
	waitFor(t, 10*time.Second, "a's delete sent to the paused Redis landing", func() bool {
		return raw.Exists(t.Context(), key).Val() == 0
	})
	restarted := &testApp{url: startApp(t, maps.Clone(env)).url}
	for name, m := range map[string]*testApp{"b": b, "a, restarted": restarted} {
		if err := raw.Set(t.Context(), key, "1", time.Hour).Err(); err != nil {
			t.Fatal(err)
		}
		if s := m.do(t, "GET", "/api/session", "", nil, "Cookie", cookie).json(t); s["signed_in"] != false {
			t.Errorf("%s: GET /api/session with the revoked cookie says %v, want signed_in false", name, s)
		}
		expectError(t, name+": a write with the revoked cookie", m.do(t, "POST", "/api/notes", "application/json",
			strings.NewReader(`{"title":"t"}`), "Cookie", cookie, "Sec-Fetch-Site", "same-origin"), 401, "unauthorized")
	}
}

// TestFlyClientIPOnlyFromTheProxy is issue 21's row 9: on Fly, a client
// that reaches the machine directly (the private network, as this test
// does) cannot pick its rate-limit key with Fly-Client-IP.
func TestFlyClientIPOnlyFromTheProxy(t *testing.T) {
	redisSrv := testenv.StartRedis(t)
	apps, _ := machines(t, 1, redisSrv.URL(), map[string]string{"FLY_APP_NAME": "defects", "RATE_LIMIT": "3/m"})
	accepted := 0
	for i := range 5 {
		r := apps[0].do(t, "POST", "/api/notes", "application/json", strings.NewReader(`{"title":"t"}`), "Fly-Client-IP", fmt.Sprintf("203.0.113.%d", i+1))
		if r.status == 201 {
			accepted++
		}
	}
	if accepted != 3 {
		t.Errorf("5 writes with 5 Fly-Client-IP values from one direct client: %d accepted, want 3", accepted)
	}
}

// TestRegionDefects is issue 21's rows 2, 4, 5 and 8 on REG: ord on a
// primary, syd on its replica, one bucket and one Redis, behind a proxy
// that replays as Fly's does.
func TestRegionDefects(t *testing.T) {
	pair := testenv.Replication(t)
	bucket := testenv.S3Bucket(t)
	redisSrv := testenv.StartRedis(t)
	start := func(extra map[string]string) *testApp {
		env := bucket.Env()
		env["DATABASE_URL"] = pair.PrimaryURL()
		env["REDIS_URL"] = redisSrv.URL()
		env["REDIS_TIMEOUT"] = "2s"
		env["RATE_LIMIT"] = "10/m"
		maps.Copy(env, extra)
		return startApp(t, env)
	}
	ord := start(map[string]string{"FLY_REGION": "ord", "PRIMARY_REGION": "ord", "MIGRATE_ON_START": "true"})
	pair.WaitReplayed(t)
	syd := start(map[string]string{"FLY_REGION": "syd", "PRIMARY_REGION": "ord", "DATABASE_READ_URL": pair.ReplicaURL()})
	proxy := testenv.NewReplayProxy(t, map[string]string{"ord": ord.url, "syd": syd.url})
	front := &testApp{url: proxy.URL}
	inSyd := func(method, path, body string, headers ...string) response {
		return front.do(t, method, path, "application/json", strings.NewReader(body), append([]string{testenv.EntryRegionHeader, "syd"}, headers...)...)
	}

	t.Run("row 2: a replica's read never fills the primary's cache", func(t *testing.T) {
		n := ord.sendJSON(t, "POST", "/api/notes", `{"title":"v1"}`)
		expect(t, "a note at ord", n, 201)
		pair.WaitReplayed(t)
		execSQL(t, pair.ReplicaURL(), "SELECT pg_wal_replay_pause()")
		defer execSQL(t, pair.ReplicaURL(), "SELECT pg_wal_replay_resume()")
		expect(t, "updating it at ord", ord.sendJSON(t, "PUT", "/api/notes/"+n.id(), `{"title":"v2"}`), 200)
		if r := syd.get(t, "/api/notes/"+n.id()); !strings.Contains(string(r.body), `"v1"`) {
			t.Fatalf("syd read %d %s while its replica was paused, want v1: the test needs a replica behind", r.status, r.body)
		}
		if r := ord.get(t, "/api/notes/"+n.id()); !strings.Contains(string(r.body), `"v2"`) {
			t.Errorf("ord read %d %s after its own write and a read in syd, want v2", r.status, r.body)
		}
	})

	t.Run("row 4: a malformed id never marks the replica down", func(t *testing.T) {
		for _, id := range []string{"%00", "%ff"} {
			expectError(t, "GET /api/notes/"+id+" in syd", inSyd("GET", "/api/notes/"+id, ""), 404, "not_found")
		}
		if reads := syd.get(t, "/api/storage").json(t); !strings.Contains(fmt.Sprint(reads), "reads:replica") {
			t.Errorf("syd's /api/storage after malformed ids: %v, want reads from the replica", reads)
		}
	})

	t.Run("row 8: a token beyond the primary is not waited for", func(t *testing.T) {
		n := ord.sendJSON(t, "POST", "/api/notes", `{"title":"read me"}`)
		expect(t, "a note at ord", n, 201)
		pair.WaitReplayed(t)
		before := metric(t, syd, "flystorage_region_replica_waits_total")
		for _, h := range [][]string{{"Consistency-Token", "FFFFFFFF/FFFFFFFF"}, {"Cookie", "consistency_token=FFFFFFFF/FFFFFFFF"}} {
			hops := len(proxy.Hops())
			expect(t, "a read in syd with "+h[0]+" far ahead", inSyd("GET", "/api/notes/"+n.id(), "", h...), 200)
			if hop := proxy.Hops()[hops]; hop.Region != "syd" || hop.ReplayTo != "" {
				t.Errorf("a read with a bogus token went %+v, want it served in syd at once", hop)
			}
		}
		if after := metric(t, syd, "flystorage_region_replica_waits_total"); after != before {
			t.Errorf("reads with a token beyond the primary waited on the replica (%v waits, had %v)", after, before)
		}
	})

	t.Run("row 5: a replayed write counts once", func(t *testing.T) {
		// The client's window starts afresh, whatever the subtests before
		// spent of it: its count goes from this test's Redis.
		raw := redis.NewClient(&redis.Options{Addr: fmt.Sprintf("127.0.0.1:%d", redisSrv.Port)})
		defer raw.Close()
		keys, err := raw.Keys(t.Context(), "flystorage:rate:*").Result()
		if err != nil {
			t.Fatal(err)
		}
		if len(keys) > 0 {
			if err := raw.Del(t.Context(), keys...).Err(); err != nil {
				t.Fatal(err)
			}
		}
		accepted := 0
		for i := range 12 {
			r := inSyd("POST", "/api/notes", fmt.Sprintf(`{"title":"limited %d"}`, i))
			if r.status == 201 {
				accepted++
			}
		}
		if accepted != 10 {
			t.Errorf("12 writes entering at syd with RATE_LIMIT=10/m: %d accepted, want 10", accepted)
		}
	})
}

// execSQL runs one statement on url, ignoring what it returns.
func execSQL(t *testing.T, url, sql string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, sql); err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
}

// TestUploadURLDeadAfterComplete is issue 21's row 14 on MinIO: a PUT to
// a direct upload's URL after the upload completed must not leave an
// object no row names.
func TestUploadURLDeadAfterComplete(t *testing.T) {
	a, bucket := s3App(t, nil)
	data := []byte("the bytes of a direct upload")
	r, put := directUploadURL(t, a, "a.txt", "text/plain", data)
	expect(t, "complete", r, 201)
	again := a.do(t, "PUT", put[0], "", bytes.NewReader(bytes.Repeat([]byte("x"), len(data))), put[1:]...)
	if again.status < 400 {
		t.Errorf("a PUT to the upload URL after completion: %d, want it refused", again.status)
	}
	var key string
	queryRowSQLite(t, a, r.id(), &key)
	// The files' prefix only: SQLite's replica shares the bucket.
	prefix, _, _ := strings.Cut(key, "/")
	out, err := bucket.Client().ListObjectsV2(context.Background(), &awss3.ListObjectsV2Input{Bucket: &bucket.Bucket, Prefix: aws.String(prefix + "/")})
	if err != nil {
		t.Fatal(err)
	}
	for _, o := range out.Contents {
		if *o.Key != key && *o.Size > 0 {
			t.Errorf("the bucket holds %s (%d bytes), which no row names", *o.Key, *o.Size)
		}
	}
}

// queryRowSQLite reads the key of file id from a's /api/storage-described
// SQLite database.
func queryRowSQLite(t *testing.T, a *testApp, id string, key *string) {
	t.Helper()
	desc := a.get(t, "/api/storage").json(t)
	path, _ := desc["database"].(map[string]any)["path"].(string)
	db, err := sql.Open("sqlite", path)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if err := db.QueryRow("SELECT key FROM files WHERE id = ?", id).Scan(key); err != nil {
		t.Fatalf("reading file %s's key: %v", id, err)
	}
}

// TestIdempotencyKeyRetryEndToEnd is the end-to-end twin of the server's
// and service's idempotency unit tests, on Postgres: a retried POST with
// the same Idempotency-Key gets the first answer back, marked replayed,
// and creates nothing more; the same key with another request is 422.
func TestIdempotencyKeyRetryEndToEnd(t *testing.T) {
	dbURL := testenv.PostgresURL(t)
	a := startApp(t, map[string]string{
		"DATABASE_URL":     dbURL,
		"MIGRATE_ON_START": "true",
		"BLOB_DIR":         filepath.Join(t.TempDir(), "blobs"),
	})
	key := "e2e-" + testenv.RandomHex(8)
	title := "once " + key
	first := a.do(t, "POST", "/api/notes", "application/json", strings.NewReader(`{"title":"`+title+`"}`), "Idempotency-Key", key)
	expect(t, "the first POST", first, 201)
	for i := range 3 {
		retry := a.do(t, "POST", "/api/notes", "application/json", strings.NewReader(`{"title":"`+title+`"}`), "Idempotency-Key", key)
		expect(t, "a retry", retry, 201)
		if retry.id() != first.id() || retry.header.Get("Idempotent-Replayed") != "true" || retry.header.Get("Location") != "/api/notes/"+first.id() {
			t.Errorf("retry %d: id %s, Idempotent-Replayed %q, Location %q; want %s, true and its location",
				i, retry.id(), retry.header.Get("Idempotent-Replayed"), retry.header.Get("Location"), first.id())
		}
	}
	if n := countRows(t, dbURL, "SELECT count(*) FROM notes WHERE title = '"+title+"'"); n != 1 {
		t.Errorf("%d notes titled %q after a POST and three retries, want 1", n, title)
	}
	expectError(t, "the key with another request", a.do(t, "POST", "/api/notes", "application/json",
		strings.NewReader(`{"title":"something else"}`), "Idempotency-Key", key), 422, "idempotency_key_reused")
}

// TestSQLiteFullDiskGroups is the end-to-end twin of the SQLite writer's
// group tests: concurrent note writes, committed in groups, fill a small
// disk holding the database. When a group's transaction fails (SQLite
// rolls it back on a full disk), each write gets its own outcome: every
// write answered 201 is stored, every other one is not, and each failure
// is a 507 that says the disk is full.
func TestSQLiteFullDiskGroups(t *testing.T) {
	dir := testenv.SmallFS(t, "2m")
	a := startApp(t, map[string]string{
		"DATABASE_PATH": filepath.Join(dir, "app.db"),
		"BLOB_DIR":      filepath.Join(t.TempDir(), "blobs"),
	})
	const writers, each = 8, 40
	type outcome struct {
		title string
		r     response
	}
	results := make(chan outcome, writers*each)
	var wg sync.WaitGroup
	for w := range writers {
		wg.Go(func() {
			for i := range each {
				title := fmt.Sprintf("w%d-%d", w, i)
				r, err := a.try("POST", "/api/notes", fmt.Sprintf(`{"title":%q,"body":%q}`, title, strings.Repeat("z", 16<<10)))
				if err != nil {
					t.Errorf("%s: %v", title, err)
					return
				}
				results <- outcome{title, r}
				if r.status != 201 && r.status != 507 {
					t.Errorf("%s: %d %s, want 201 or 507", title, r.status, r.body)
				}
			}
		})
	}
	wg.Wait()
	close(results)
	acked := map[string]bool{}
	full := 0
	for o := range results {
		if o.r.status == 201 {
			acked[o.title] = true
			continue
		}
		full++
		if o.r.status == 507 {
			e, _ := o.r.json(t)["error"].(map[string]any)
			if msg, _ := e["message"].(string); e["code"] != "insufficient_storage" || !strings.Contains(msg, "is full") {
				t.Errorf("%s: 507 %s, want the code insufficient_storage and a message that the disk is full", o.title, o.r.body)
			}
		}
	}
	if full == 0 {
		t.Fatalf("%d writes of 16 KiB never filled a 2 MiB disk", writers*each)
	}
	stored := map[string]bool{}
	for cursor := ""; ; {
		r := a.get(t, "/api/notes?limit=200"+cursor)
		expect(t, "listing the notes", r, 200)
		var page struct {
			Notes      []struct{ Title string }
			NextCursor *string `json:"next_cursor"`
		}
		if err := json.Unmarshal(r.body, &page); err != nil {
			t.Fatal(err)
		}
		for _, n := range page.Notes {
			stored[n.Title] = true
		}
		if page.NextCursor == nil {
			break
		}
		cursor = "&cursor=" + *page.NextCursor
	}
	for title := range acked {
		if !stored[title] {
			t.Errorf("note %s was answered 201 but is not stored", title)
		}
	}
	for title := range stored {
		if !acked[title] {
			t.Errorf("note %s is stored but its write failed", title)
		}
	}
	t.Logf("%d writes stored, %d refused with a full disk", len(acked), full)
}
