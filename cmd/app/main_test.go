package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime/multipart"
	"net"
	"net/http"
	"net/textproto"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awss3 "github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/jackc/pgx/v5"
	_ "modernc.org/sqlite"

	"github.com/example/flystorage/internal/config"
	"github.com/example/flystorage/internal/testenv"
)

// testApp is the whole binary, started through run on a free port.
type testApp struct {
	url   string
	logs  *logSink
	token string // sent as a bearer token when set
	// stop shuts the app down and waits for it, so that every log line is
	// written; the test's cleanup calls it too.
	stop func()
}

// startApp runs the app with exactly env as its environment (plus PORT=0)
// and returns once it listens. The app stops when the test ends, and the
// test fails if it did not stop cleanly.
func startApp(t testing.TB, env map[string]string) *testApp {
	t.Helper()
	env["PORT"] = "0"
	logs := newLogSink()
	ctx, cancel := context.WithCancel(context.Background())
	// finished is closed when run returns, with its error in runErr, so that
	// both the start and the cleanup can see it (a channel read once would
	// leave the cleanup waiting forever after an app that failed to start).
	finished := make(chan struct{})
	var runErr error
	go func() {
		defer close(finished)
		runErr = runApp(ctx, nil, func(k string) string { return env[k] }, io.Discard, logs)
	}()
	started := false
	var once sync.Once
	stop := func() {
		once.Do(func() {
			cancel()
			select {
			case <-finished:
				if started && runErr != nil {
					t.Errorf("run returned %v after shutdown", runErr)
				}
			case <-time.After(shutdownDeadline):
				t.Errorf("run did not return within %s of shutdown; logs:\n%s", shutdownDeadline, logs)
			}
		})
	}
	t.Cleanup(stop)
	select {
	case addr := <-logs.listening:
		started = true
		_, port, _ := net.SplitHostPort(addr)
		return &testApp{url: "http://127.0.0.1:" + port, logs: logs, token: env["API_TOKEN"], stop: stop}
	case <-finished:
		t.Fatalf("app exited before listening: %v\nlogs:\n%s", runErr, logs)
	case <-time.After(30 * time.Second):
		t.Fatalf("app did not listen within 30s; logs:\n%s", logs)
	}
	return nil
}

// shutdownDeadline bounds how long a test waits for the app to stop.
const shutdownDeadline = 30 * time.Second

// logSink keeps the app's log and reports the address it listens on.
type logSink struct {
	mu        sync.Mutex
	buf       bytes.Buffer
	listening chan string
}

func newLogSink() *logSink { return &logSink{listening: make(chan string, 1)} }

func (l *logSink) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.buf.Write(p)
	sc := bufio.NewScanner(bytes.NewReader(p))
	for sc.Scan() {
		line := sc.Text()
		switch {
		case strings.Contains(line, "msg=listening"):
			for _, f := range strings.Fields(line) {
				if addr, ok := strings.CutPrefix(f, "addr="); ok {
					l.listening <- addr
				}
			}
		case strings.Contains(line, `"msg":"listening"`):
			var v struct{ Addr string }
			if json.Unmarshal([]byte(line), &v) == nil {
				l.listening <- v.Addr
			}
		}
	}
	return len(p), nil
}

func (l *logSink) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.String()
}

// client has a timeout only as a guard against a hang; no test measures
// speed.
var client = &http.Client{Timeout: 2 * time.Minute}

type response struct {
	status int
	header http.Header
	body   []byte
}

func (r response) json(t *testing.T) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(r.body, &m); err != nil {
		t.Fatalf("response is not a JSON object: %v\n%s", err, r.body)
	}
	return m
}

// errorCode returns error.code of an error response.
func (r response) errorCode(t *testing.T) string {
	t.Helper()
	e, _ := r.json(t)["error"].(map[string]any)
	if e == nil || e["message"] == "" {
		t.Fatalf("no error object with a message in %s", r.body)
	}
	code, _ := e["code"].(string)
	return code
}

// do sends a request; headers are name, value pairs.
func (a *testApp) do(t *testing.T, method, path, contentType string, body io.Reader, headers ...string) response {
	t.Helper()
	target := path
	if !strings.HasPrefix(path, "http") {
		target = a.url + path
	}
	req, err := http.NewRequest(method, target, body)
	if err != nil {
		t.Fatal(err)
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	if a.token != "" && strings.HasPrefix(target, a.url) {
		req.Header.Set("Authorization", "Bearer "+a.token)
	}
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	res, err := client.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatalf("reading %s %s: %v", method, path, err)
	}
	return response{status: res.StatusCode, header: res.Header, body: b}
}

// try sends a JSON request and returns the error instead of failing, for
// use from several goroutines.
func (a *testApp) try(method, path, body string) (response, error) {
	req, err := http.NewRequest(method, a.url+path, strings.NewReader(body))
	if err != nil {
		return response{}, err
	}
	req.Header.Set("Content-Type", "application/json")
	if a.token != "" {
		req.Header.Set("Authorization", "Bearer "+a.token)
	}
	res, err := client.Do(req)
	if err != nil {
		return response{}, err
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	return response{status: res.StatusCode, header: res.Header, body: b}, err
}

// id returns the "id" of a JSON answer, or "".
func (r response) id() string {
	var v struct{ ID string }
	json.Unmarshal(r.body, &v)
	return v.ID
}

func (a *testApp) get(t *testing.T, path string) response { return a.do(t, "GET", path, "", nil) }

func (a *testApp) sendJSON(t *testing.T, method, path, body string) response {
	return a.do(t, method, path, "application/json", strings.NewReader(body))
}

// upload posts data as the multipart part "file".
func (a *testApp) upload(t *testing.T, name, contentType string, data []byte) response {
	t.Helper()
	var buf bytes.Buffer
	mw := multipart.NewWriter(&buf)
	mw.WriteField("comment", "a form field before the file is skipped")
	h := textproto.MIMEHeader{}
	h.Set("Content-Disposition", fmt.Sprintf(`form-data; name="file"; filename="%s"`, name))
	h.Set("Content-Type", contentType)
	pw, _ := mw.CreatePart(h)
	pw.Write(data)
	mw.Close()
	return a.do(t, "POST", "/api/files", mw.FormDataContentType(), &buf)
}

func expect(t *testing.T, what string, r response, status int) {
	t.Helper()
	if r.status != status {
		t.Fatalf("%s: status %d, want %d; body: %s", what, r.status, status, r.body)
	}
}

func expectError(t *testing.T, what string, r response, status int, code string) {
	t.Helper()
	expect(t, what, r, status)
	if got := r.errorCode(t); got != code {
		t.Errorf("%s: error code %q, want %q", what, got, code)
	}
}

// stores lets a test look at the stores behind the API directly, the way
// psql, sqlite3 and an S3 listing would.
type stores struct {
	database, files string
	noteTitle       func(id string) (string, bool) // the stored title, if the row exists
	blob            func(id string) ([]byte, bool) // the stored bytes, if the object exists
	blobCount       func() int                     // objects under files/
}

const uploadLimit = 1 << 20

// exerciseAPI covers every endpoint and error case against one mode.
func exerciseAPI(t *testing.T, a *testApp, be stores) {
	t.Run("Health", func(t *testing.T) {
		r := a.get(t, "/healthz")
		expect(t, "healthz", r, 200)
		if r.json(t)["status"] != "ok" {
			t.Errorf("healthz body %s", r.body)
		}
		r = a.get(t, "/readyz")
		expect(t, "readyz", r, 200)
		checks := r.json(t)["checks"].(map[string]any)
		for name, backend := range map[string]string{"database": be.database, "files": be.files} {
			c := checks[name].(map[string]any)
			if c["status"] != "ok" || c["backend"] != backend {
				t.Errorf("readyz %s = %v, want ok from %s", name, c, backend)
			}
		}
		r = a.get(t, "/api/storage")
		expect(t, "storage", r, 200)
		s := r.json(t)
		if s["database"].(map[string]any)["backend"] != be.database || s["files"].(map[string]any)["backend"] != be.files {
			t.Errorf("/api/storage = %s, want %s and %s", r.body, be.database, be.files)
		}
	})

	t.Run("Notes", func(t *testing.T) {
		r := a.sendJSON(t, "POST", "/api/notes", `{"title":"Groceries","body":"milk, eggs"}`)
		expect(t, "create note", r, 201)
		n := r.json(t)
		id, _ := n["id"].(string)
		if r.header.Get("Location") != "/api/notes/"+id || n["title"] != "Groceries" || n["body"] != "milk, eggs" {
			t.Fatalf("create note: Location %q, body %s", r.header.Get("Location"), r.body)
		}
		created, err := time.Parse(time.RFC3339Nano, n["created_at"].(string))
		if err != nil || !strings.HasSuffix(n["created_at"].(string), "Z") || time.Since(created) > time.Minute {
			t.Errorf("created_at %v is not a recent RFC 3339 UTC time", n["created_at"])
		}
		if title, ok := be.noteTitle(id); !ok || title != "Groceries" {
			t.Errorf("the database holds title %q (row found: %v), want Groceries", title, ok)
		}

		r = a.get(t, "/api/notes/"+id)
		expect(t, "get note", r, 200)
		if r.json(t)["title"] != "Groceries" {
			t.Errorf("get note: %s", r.body)
		}
		expectError(t, "get missing note", a.get(t, "/api/notes/01a20f9f-09cd-7584-a6ae-16e2b0ac4721"), 404, "not_found")
		expectError(t, "get note with a junk id", a.get(t, "/api/notes/junk"), 404, "not_found")

		r = a.sendJSON(t, "PUT", "/api/notes/"+id, `{"title":"Groceries (done)","body":""}`)
		expect(t, "update note", r, 200)
		u := r.json(t)
		if u["title"] != "Groceries (done)" || u["created_at"] != n["created_at"] || u["updated_at"] == n["updated_at"] {
			t.Errorf("update note: %s (before: %s)", r.body, n)
		}
		if title, _ := be.noteTitle(id); title != "Groceries (done)" {
			t.Errorf("after update the database holds %q", title)
		}
		expectError(t, "update missing note", a.sendJSON(t, "PUT", "/api/notes/01a20f9f-09cd-7584-a6ae-16e2b0ac4721", `{"title":"x"}`), 404, "not_found")
		expectError(t, "update with empty title", a.sendJSON(t, "PUT", "/api/notes/"+id, `{"title":""}`), 400, "invalid")

		for name, body := range map[string]string{
			"empty title":      `{"title":"","body":"x"}`,
			"missing title":    `{"body":"x"}`,
			"title too long":   fmt.Sprintf(`{"title":%q}`, strings.Repeat("x", 201)),
			"body too long":    fmt.Sprintf(`{"title":"t","body":%q}`, strings.Repeat("x", 64<<10+1)),
			"unknown field":    `{"title":"t","colour":"red"}`,
			"malformed JSON":   `{"title":`,
			"trailing data":    `{"title":"t"} {"title":"u"}`,
			"empty body":       ``,
			"title not string": `{"title":7}`,
		} {
			expectError(t, "create note with "+name, a.sendJSON(t, "POST", "/api/notes", body), 400, "invalid")
		}
		expect(t, "create note with a 200-character title", a.sendJSON(t, "POST", "/api/notes", fmt.Sprintf(`{"title":%q}`, strings.Repeat("é", 200))), 201)
		expectError(t, "create note with a huge body", a.sendJSON(t, "POST", "/api/notes", fmt.Sprintf(`{"title":"t","body":%q}`, strings.Repeat("x", 1<<20))), 413, "too_large")

		r = a.do(t, "DELETE", "/api/notes/"+id, "", nil)
		expect(t, "delete note", r, 204)
		if _, ok := be.noteTitle(id); ok {
			t.Errorf("the row of a deleted note is still in the database")
		}
		expectError(t, "delete note again", a.do(t, "DELETE", "/api/notes/"+id, "", nil), 404, "not_found")
		expectError(t, "get deleted note", a.get(t, "/api/notes/"+id), 404, "not_found")
	})

	t.Run("ListNotes", func(t *testing.T) {
		var want []string
		for i := range 5 {
			r := a.sendJSON(t, "POST", "/api/notes", fmt.Sprintf(`{"title":"page %d"}`, i))
			expect(t, "create note", r, 201)
			want = append([]string{r.json(t)["id"].(string)}, want...)
		}
		var got []string
		path := "/api/notes?limit=2"
		for range 10 {
			r := a.get(t, path)
			expect(t, "list notes", r, 200)
			m := r.json(t)
			for _, n := range m["notes"].([]any) {
				got = append(got, n.(map[string]any)["id"].(string))
			}
			next, isString := m["next_cursor"].(string)
			if !isString {
				if m["next_cursor"] != nil {
					t.Fatalf("next_cursor = %v, want a string or null", m["next_cursor"])
				}
				break
			}
			path = "/api/notes?limit=2&cursor=" + next
		}
		// Other subtests' notes (the 200-character one) come after ours.
		if len(got) < len(want) || strings.Join(got[:len(want)], ",") != strings.Join(want, ",") {
			t.Errorf("paged ids %v, want newest first starting %v", got, want)
		}
		r := a.get(t, "/api/notes")
		if n := len(r.json(t)["notes"].([]any)); n != len(got) {
			t.Errorf("default limit listed %d notes, want all %d", n, len(got))
		}
		for _, q := range []string{"limit=0", "limit=201", "limit=two", "cursor=nonsense"} {
			expectError(t, "list notes with "+q, a.get(t, "/api/notes?"+q), 400, "invalid")
		}
	})

	t.Run("Files", func(t *testing.T) {
		data := make([]byte, 700<<10)
		rand.Read(data)
		sum := sha256.Sum256(data)
		r := a.upload(t, "../../holiday photo.png", "image/png", data)
		expect(t, "upload", r, 201)
		f := r.json(t)
		id, _ := f["id"].(string)
		if f["name"] != "holiday photo.png" || f["content_type"] != "image/png" || f["size"] != float64(len(data)) ||
			f["sha256"] != hex.EncodeToString(sum[:]) || r.header.Get("Location") != "/api/files/"+id {
			t.Fatalf("upload answered %s (Location %q)", r.body, r.header.Get("Location"))
		}
		if stored, ok := be.blob(id); !ok || !bytes.Equal(stored, data) {
			t.Errorf("the store holds %d bytes (found: %v), want the %d uploaded", len(stored), ok, len(data))
		}

		r = a.get(t, "/api/files/"+id)
		expect(t, "get file", r, 200)
		if r.json(t)["sha256"] != f["sha256"] {
			t.Errorf("get file: %s", r.body)
		}
		r = a.get(t, "/api/files/"+id+"/content")
		expect(t, "download", r, 200)
		if !bytes.Equal(r.body, data) {
			t.Errorf("download returned %d bytes, not the %d uploaded", len(r.body), len(data))
		}
		for h, want := range map[string]string{
			"ETag":                   `"` + hex.EncodeToString(sum[:]) + `"`,
			"Accept-Ranges":          "bytes",
			"Content-Type":           "image/png",
			"Content-Length":         fmt.Sprint(len(data)),
			"Content-Disposition":    `attachment; filename="holiday photo.png"`,
			"X-Content-Type-Options": "nosniff",
		} {
			if got := r.header.Get(h); got != want {
				t.Errorf("download %s = %q, want %q", h, got, want)
			}
		}

		// A range, a conditional request, and a range past the end.
		r = a.do(t, "GET", "/api/files/"+id+"/content", "", nil, "Range", "bytes=1000-1999")
		expect(t, "ranged download", r, 206)
		if !bytes.Equal(r.body, data[1000:2000]) || r.header.Get("Content-Range") != fmt.Sprintf("bytes 1000-1999/%d", len(data)) || r.header.Get("Content-Length") != "1000" {
			t.Errorf("ranged download: %d bytes, Content-Range %q, Content-Length %q", len(r.body), r.header.Get("Content-Range"), r.header.Get("Content-Length"))
		}
		r = a.do(t, "GET", "/api/files/"+id+"/content", "", nil, "Range", "bytes=-10")
		if r.status != 206 || !bytes.Equal(r.body, data[len(data)-10:]) {
			t.Errorf("suffix range: %d, %d bytes", r.status, len(r.body))
		}
		etag := `"` + hex.EncodeToString(sum[:]) + `"`
		r = a.do(t, "GET", "/api/files/"+id+"/content", "", nil, "If-None-Match", etag)
		if r.status != 304 || len(r.body) != 0 {
			t.Errorf("If-None-Match with the ETag: %d with %d bytes, want 304 and none", r.status, len(r.body))
		}
		r = a.do(t, "GET", "/api/files/"+id+"/content", "", nil, "Range", "bytes=0-9", "If-Range", `"stale"`)
		if r.status != 200 || len(r.body) != len(data) {
			t.Errorf("Range with a stale If-Range: %d, %d bytes; want the whole file", r.status, len(r.body))
		}
		r = a.do(t, "GET", "/api/files/"+id+"/content", "", nil, "Range", fmt.Sprintf("bytes=%d-", len(data)))
		if r.status != 416 || r.header.Get("Content-Range") != fmt.Sprintf("bytes */%d", len(data)) {
			t.Errorf("range past the end: %d, Content-Range %q; want 416", r.status, r.header.Get("Content-Range"))
		}

		r = a.get(t, "/api/files?limit=1")
		expect(t, "list files", r, 200)
		if files := r.json(t)["files"].([]any); len(files) != 1 || files[0].(map[string]any)["id"] != id {
			t.Errorf("list files: %s", r.body)
		}

		r = a.upload(t, "résumé\t.txt", "not a media type", []byte("hi"))
		expect(t, "upload with odd name and type", r, 201)
		odd := r.json(t)
		if odd["name"] != "résumé.txt" || odd["content_type"] != "application/octet-stream" {
			t.Errorf("odd upload stored as %s", r.body)
		}
		r = a.get(t, "/api/files/"+odd["id"].(string)+"/content")
		if cd := r.header.Get("Content-Disposition"); cd != `attachment; filename*=utf-8''r%C3%A9sum%C3%A9.txt` {
			t.Errorf("Content-Disposition for a non-ASCII name = %q", cd)
		}

		expect(t, "delete file", a.do(t, "DELETE", "/api/files/"+id, "", nil), 204)
		if _, ok := be.blob(id); ok {
			t.Errorf("the object of a deleted file is still in the store")
		}
		expectError(t, "get deleted file", a.get(t, "/api/files/"+id), 404, "not_found")
		expectError(t, "download deleted file", a.get(t, "/api/files/"+id+"/content"), 404, "not_found")
		expectError(t, "delete file again", a.do(t, "DELETE", "/api/files/"+id, "", nil), 404, "not_found")
		expect(t, "delete odd file", a.do(t, "DELETE", "/api/files/"+odd["id"].(string), "", nil), 204)
	})

	t.Run("BadUploads", func(t *testing.T) {
		before := be.blobCount()
		expectError(t, "upload over MAX_UPLOAD_BYTES", a.upload(t, "big.bin", "application/octet-stream", make([]byte, uploadLimit+1)), 413, "too_large")
		// A body that claims no length and runs past the limit midway.
		var buf bytes.Buffer
		mw := multipart.NewWriter(&buf)
		pw, _ := mw.CreateFormFile("file", "big.bin")
		pw.Write(make([]byte, 3*uploadLimit))
		mw.Close()
		req, _ := http.NewRequest("POST", a.url+"/api/files", io.MultiReader(&buf)) // no Content-Length
		req.Header.Set("Content-Type", mw.FormDataContentType())
		if a.token != "" {
			req.Header.Set("Authorization", "Bearer "+a.token)
		}
		res, err := client.Do(req)
		if err != nil {
			t.Fatalf("streamed oversized upload: %v", err)
		}
		res.Body.Close()
		if res.StatusCode != 413 {
			t.Errorf("streamed oversized upload: status %d, want 413", res.StatusCode)
		}
		expect(t, "upload of exactly MAX_UPLOAD_BYTES", a.upload(t, "edge.bin", "application/octet-stream", make([]byte, uploadLimit)), 201)

		expectError(t, "upload that is not multipart", a.sendJSON(t, "POST", "/api/files", `{"file":"x"}`), 400, "invalid")
		var empty bytes.Buffer
		mw = multipart.NewWriter(&empty)
		mw.WriteField("other", "x")
		mw.Close()
		expectError(t, "upload with no file part", a.do(t, "POST", "/api/files", mw.FormDataContentType(), &empty), 400, "invalid")
		if after := be.blobCount(); after != before+1 {
			t.Errorf("the store holds %d objects after the bad uploads, want %d (only the edge-sized one kept)", after, before+1)
		}
		r := a.get(t, "/api/files?limit=200")
		for _, f := range r.json(t)["files"].([]any) {
			if name := f.(map[string]any)["name"]; name == "big.bin" {
				t.Errorf("a refused upload is listed: %v", f)
			}
		}
	})

	t.Run("UnknownRoute", func(t *testing.T) {
		expectError(t, "unknown API route", a.get(t, "/api/nothing-here"), 404, "not_found")
	})
}

func TestSQLiteAndLocalFiles(t *testing.T) {
	dir := t.TempDir()
	dbPath := filepath.Join(dir, "volume", "app.db")
	a := startApp(t, map[string]string{"DATABASE_PATH": dbPath, "MAX_UPLOAD_BYTES": fmt.Sprint(uploadLimit)})
	blobDir := filepath.Join(dir, "volume", "blobs")
	db, err := sql.Open("sqlite", dbPath)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	exerciseAPI(t, a, stores{
		database: "sqlite",
		files:    "local",
		noteTitle: func(id string) (string, bool) {
			var title string
			err := db.QueryRow("SELECT title FROM notes WHERE id = ?", id).Scan(&title)
			return title, err == nil
		},
		blob:      localBlob(blobDir),
		blobCount: localBlobCount(blobDir),
	})
}

// localBlob reads a file's bytes from a blob directory, as ls and cat would.
func localBlob(blobDir string) func(id string) ([]byte, bool) {
	return func(id string) ([]byte, bool) {
		b, err := os.ReadFile(filepath.Join(blobDir, "files", id))
		return b, err == nil
	}
}

// s3Blob reads a file's object from the test's bucket.
func s3Blob(t *testing.T, s3env testenv.S3) func(id string) ([]byte, bool) {
	s3c := s3env.Client()
	return func(id string) ([]byte, bool) {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		out, err := s3c.GetObject(ctx, &awss3.GetObjectInput{Bucket: &s3env.Bucket, Key: aws.String("files/" + id)})
		if err != nil {
			return nil, false
		}
		defer out.Body.Close()
		b, err := io.ReadAll(out.Body)
		return b, err == nil
	}
}

// s3BlobCount counts every object in the test's own bucket, and every
// multipart upload left unfinished.
func s3BlobCount(t *testing.T, s3env testenv.S3) func() int {
	s3c := s3env.Client()
	return func() int {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		n := 0
		p := awss3.NewListObjectsV2Paginator(s3c, &awss3.ListObjectsV2Input{Bucket: &s3env.Bucket})
		for p.HasMorePages() {
			page, err := p.NextPage(ctx)
			if err != nil {
				t.Fatalf("listing the bucket: %v", err)
			}
			n += len(page.Contents)
		}
		uploads, err := s3c.ListMultipartUploads(ctx, &awss3.ListMultipartUploadsInput{Bucket: &s3env.Bucket})
		if err != nil {
			t.Fatalf("listing multipart uploads: %v", err)
		}
		return n + len(uploads.Uploads)
	}
}

// localBlobCount counts the files and the uploads in progress in a blob
// directory.
func localBlobCount(blobDir string) func() int {
	return func() int {
		entries, _ := os.ReadDir(filepath.Join(blobDir, "files"))
		tmp, _ := os.ReadDir(filepath.Join(blobDir, ".tmp"))
		return len(entries) + len(tmp)
	}
}

func TestPostgresAndMinIO(t *testing.T) {
	dbURL, password := withPassword(t, testenv.PostgresURL(t), pgPassword)
	s3env := testenv.S3Bucket(t)
	env := s3env.Env()
	env["DATABASE_URL"] = dbURL
	env["MIGRATE_ON_START"] = "true"
	env["MAX_UPLOAD_BYTES"] = fmt.Sprint(uploadLimit)
	// As on Fly: JSON logs, and writes need the token.
	env["FLY_APP_NAME"] = "flystorage-test"
	env["API_TOKEN"] = apiToken
	a := startApp(t, env)

	ctx := context.Background()
	conn, err := pgx.Connect(ctx, dbURL)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	exerciseAPI(t, a, stores{
		database: "postgres",
		files:    "s3",
		noteTitle: func(id string) (string, bool) {
			var title string
			err := conn.QueryRow(ctx, "SELECT title FROM notes WHERE id = $1", id).Scan(&title)
			return title, err == nil
		},
		blob:      s3Blob(t, s3env),
		blobCount: s3BlobCount(t, s3env),
	})
	assertNoSecrets(t, a, password, s3env.SecretAccessKey, apiToken)
	for _, line := range strings.Split(strings.TrimSpace(a.logs.String()), "\n") {
		if !json.Valid([]byte(line)) {
			t.Errorf("on Fly every log line must be JSON; got %q", line)
		}
	}
}

const apiToken = "token-Of-The-Test-6630-abcdef"

const pgPassword = "pg-Secret-7781"

// withPassword returns raw with a password, and the password: raw's own
// when it has one (TEST_DATABASE_URL's, which the server checks), otherwise
// password, which a server that trusts loopback connections ignores; either
// way it has to stay out of logs and answers.
func withPassword(t *testing.T, raw, password string) (string, string) {
	t.Helper()
	u, err := url.Parse(raw)
	if err != nil {
		t.Fatal(err)
	}
	if own, ok := u.User.Password(); ok && own != "" {
		return raw, own
	}
	u.User = url.UserPassword(u.User.Username(), password)
	return u.String(), password
}

// assertNoSecrets checks the logs and every answer that describes the
// backends for the secrets.
//
// It stops the app first, so that every log line has been written.
func assertNoSecrets(t *testing.T, a *testApp, secrets ...string) {
	t.Helper()
	seen := string(a.get(t, "/api/storage").body) + string(a.get(t, "/readyz").body)
	a.stop()
	seen += a.logs.String()
	for _, s := range secrets {
		if strings.Contains(seen, s) {
			t.Errorf("a secret (%d characters) appears in the logs or in /api/storage or /readyz", len(s))
		}
	}
}

func TestPostgresSchemaBehind(t *testing.T) {
	dbURL := testenv.PostgresURL(t)
	err := runApp(context.Background(), nil, func(k string) string {
		return map[string]string{"DATABASE_URL": dbURL, "PORT": "0"}[k]
	}, io.Discard, io.Discard)
	if err == nil || !strings.Contains(err.Error(), "migrate up") || config.ExitCode(err) != 1 {
		t.Errorf("run on an empty schema = %v, want an error telling to run `migrate up`", err)
	}
}

// TestStoreDown runs the app against a bucket whose endpoint refuses
// connections: uploads answer 503 and leave no row, readiness says which
// store is down, and notes keep working.
func TestStoreDown(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closed := ln.Addr().String()
	ln.Close()
	a := startApp(t, map[string]string{
		"DATABASE_PATH":         filepath.Join(t.TempDir(), "app.db"),
		"BUCKET_NAME":           "nowhere",
		"AWS_ENDPOINT_URL_S3":   "http://" + closed,
		"AWS_ACCESS_KEY_ID":     "key",
		"AWS_SECRET_ACCESS_KEY": "secret-that-must-not-leak",
		// Files only: a replicated database does not start without its
		// bucket (TestReplicationBucketDown).
		"SQLITE_REPLICATION": "off",
	})
	r := a.upload(t, "a.txt", "text/plain", []byte("hello"))
	expectError(t, "upload with the store down", r, 503, "unavailable")
	if !strings.Contains(string(r.body), "the file store is unavailable") || strings.Contains(string(r.body), closed) {
		t.Errorf("upload with the store down answered %s, want a message naming the file store and not its address", r.body)
	}
	r = a.get(t, "/api/files")
	if files := r.json(t)["files"].([]any); len(files) != 0 {
		t.Errorf("a failed upload left %d rows: %s", len(files), r.body)
	}
	r = a.get(t, "/readyz")
	expect(t, "readyz with the store down", r, 503)
	checks := r.json(t)["checks"].(map[string]any)
	if checks["files"].(map[string]any)["status"] != "unavailable" || checks["database"].(map[string]any)["status"] != "ok" {
		t.Errorf("readyz = %s, want files unavailable and database ok", r.body)
	}
	expect(t, "create note with the store down", a.sendJSON(t, "POST", "/api/notes", `{"title":"still works"}`), 201)
	assertNoSecrets(t, a, "secret-that-must-not-leak")
}

// TestStoreStalls runs the app against a bucket endpoint that accepts
// connections and then never reads nor answers, the way a store behind a
// dead network path looks: an upload still ends in 503 and leaves no row,
// because every S3 connection gives up after S3_TIMEOUT without progress.
func TestStoreStalls(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var held []net.Conn
	var mu sync.Mutex
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			held = append(held, c) // never read, never answered
			mu.Unlock()
		}
	}()
	t.Cleanup(func() {
		ln.Close()
		mu.Lock()
		defer mu.Unlock()
		for _, c := range held {
			c.Close()
		}
	})
	a := startApp(t, map[string]string{
		"SQLITE_REPLICATION":    "off", // files only, as in TestStoreDown
		"DATABASE_PATH":         filepath.Join(t.TempDir(), "app.db"),
		"BUCKET_NAME":           "stalled",
		"AWS_ENDPOINT_URL_S3":   "http://" + ln.Addr().String(),
		"AWS_ACCESS_KEY_ID":     "key",
		"AWS_SECRET_ACCESS_KEY": "secret",
		"S3_TIMEOUT":            "1s",
	})
	for _, size := range []int{5, 9 << 20} { // one PUT, and a multipart upload
		expectError(t, fmt.Sprintf("upload of %d bytes to a stalled store", size), a.upload(t, "a.bin", "application/octet-stream", make([]byte, size)), 503, "unavailable")
	}
	if files := a.get(t, "/api/files").json(t)["files"].([]any); len(files) != 0 {
		t.Errorf("uploads to a stalled store left %d rows", len(files))
	}
	if r := a.get(t, "/readyz"); r.status != 503 {
		t.Errorf("readyz with a stalled store: %d %s", r.status, r.body)
	}
}

func TestConfigErrorsExit2(t *testing.T) {
	for name, env := range map[string]map[string]string{
		"both databases": {"DATABASE_URL": "postgres://u:pw-Both-1@h/db", "DATABASE_PATH": "/data/app.db"},
		"bad port":       {"PORT": "eighty"},
		"bad scheme":     {"DATABASE_URL": "redis://u:pw-Both-1@h/db"},
		"two databases":  {"DATABASE_URL": "mysql://u:pw-Both-1@h/db", "MONGODB_URI": "mongodb://u:pw-Both-1@h/db"},
	} {
		var stderr bytes.Buffer
		err := runApp(context.Background(), nil, func(k string) string { return env[k] }, io.Discard, &stderr)
		if config.ExitCode(err) != 2 {
			t.Errorf("%s: run = %v (exit %d), want a configuration error (exit 2)", name, err, config.ExitCode(err))
		}
		if err != nil && strings.Contains(err.Error()+stderr.String(), "pw-Both-1") {
			t.Errorf("%s: the error shows the password: %v", name, err)
		}
	}
	err := runApp(context.Background(), []string{"frobnicate"}, func(string) string { return "" }, io.Discard, io.Discard)
	if config.ExitCode(err) != 2 {
		t.Errorf("unknown command: run = %v, want exit 2", err)
	}
}

// TestSweepCommand runs `app sweep` beside a running app: an old object no
// row names is removed, and an old object with its row is kept.
func TestSweepCommand(t *testing.T) {
	dir := t.TempDir()
	env := map[string]string{"DATABASE_PATH": filepath.Join(dir, "app.db")}
	a := startApp(t, env)
	r := a.upload(t, "kept.txt", "text/plain", []byte("kept"))
	expect(t, "upload", r, 201)
	filesDir := filepath.Join(dir, "blobs", "files")
	kept := filepath.Join(filesDir, r.id())
	orphan := filepath.Join(filesDir, "01a20f9f-09cd-7584-a6ae-16e2b0ac4721")
	if err := os.WriteFile(orphan, []byte("left by a crash"), 0o644); err != nil {
		t.Fatal(err)
	}
	old := time.Now().Add(-2 * time.Hour)
	for _, p := range []string{kept, orphan} {
		if err := os.Chtimes(p, old, old); err != nil {
			t.Fatal(err)
		}
	}
	var stdout bytes.Buffer
	if err := runApp(context.Background(), []string{"sweep"}, func(k string) string { return env[k] }, &stdout, io.Discard); err != nil {
		t.Fatalf("app sweep: %v", err)
	}
	if got := stdout.String(); got != "removed 0 expired uploads; checked 2 objects, removed 1 that no file names; purged 0 expired sessions and keys\n" {
		t.Errorf("app sweep printed %q", got)
	}
	if _, err := os.Stat(orphan); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("the orphan is still there: %v", err)
	}
	if _, err := os.Stat(kept); err != nil {
		t.Errorf("the swept directory lost a file that has its row: %v", err)
	}
	expect(t, "download after the sweep", a.get(t, "/api/files/"+r.id()+"/content"), 200)
}
