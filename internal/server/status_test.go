package server_test

import (
	"bytes"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/example/flystorage/internal/server"
	"github.com/example/flystorage/internal/service"
	"github.com/example/flystorage/internal/testenv"
)

// TestStatusCountsNotesAndFiles: /api/status counts the requests that read
// and write notes and files, not the page's own polling, and reports the
// database's pools.
func TestStatusCountsNotesAndFiles(t *testing.T) {
	db, blobs := testenv.LocalStores(t)
	metrics := server.NewMetrics(db)
	srv := httptest.NewServer(server.New(server.Options{
		Service:        service.New(service.Options{DB: db, Blobs: blobs, KeyPrefix: "files/", MaxUpload: 1 << 20}),
		MaxUploadBytes: 1 << 20, Metrics: metrics,
	}))
	t.Cleanup(srv.Close)

	call := func(method, path, body string) {
		t.Helper()
		req, _ := http.NewRequest(method, srv.URL+path, strings.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
	}
	for range 3 {
		call("POST", "/api/notes", `{"title":"counted"}`)
	}
	call("GET", "/api/notes", "")
	call("GET", "/api/files", "")
	call("GET", "/api/notes/missing", "") // a read, even when it finds nothing
	for _, path := range []string{"/api/storage", "/readyz", "/api/status", "/"} {
		call("GET", path, "") // the page's own requests are not counted
	}

	res, err := http.Get(srv.URL + "/api/status")
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	var got struct {
		Pools []struct {
			Name             string
			InUse, Idle, Max int64
		}
		Requests struct{ Reads, Writes float64 }
		Cache    struct{ Hits, Misses float64 }
		Files    struct{ Public bool }
	}
	if err := json.NewDecoder(res.Body).Decode(&got); err != nil {
		t.Fatal(err)
	}
	if got.Requests.Writes != 3 || got.Requests.Reads != 3 {
		t.Errorf("/api/status counts %v writes and %v reads, want 3 and 3", got.Requests.Writes, got.Requests.Reads)
	}
	if len(got.Pools) == 0 || got.Pools[0].Max == 0 {
		t.Errorf("/api/status reports pools %+v, want SQLite's with their maximum", got.Pools)
	}
	if got.Files.Public {
		t.Error("/api/status says local files are public")
	}
}

// TestStatusTotals: /api/status gives the number of notes and of files,
// upload intents left out, counted at most once every few seconds of the
// service's clock; a database that cannot count leaves the totals out,
// answers 200, and is logged once.
func TestStatusTotals(t *testing.T) {
	db, blobs := testenv.LocalStores(t)
	start := time.Now()
	var moved atomic.Int64 // how far the test moved the clock, in nanoseconds
	var logs bytes.Buffer
	srv := httptest.NewServer(server.New(server.Options{
		Service: service.New(service.Options{DB: db, Blobs: blobs, KeyPrefix: "files/", MaxUpload: 1 << 20,
			Now: func() time.Time { return start.Add(time.Duration(moved.Load())) }}),
		MaxUploadBytes: 1 << 20, Logger: slog.New(slog.NewTextHandler(&logs, nil)),
	}))
	t.Cleanup(srv.Close)
	totals := func(when string) map[string]any {
		t.Helper()
		a := get(t, srv.URL+"/api/status")
		var got map[string]any
		if err := json.Unmarshal([]byte(a.body), &got); a.status != 200 || err != nil {
			t.Fatalf("%s: /api/status answered %d %s (%v)", when, a.status, a.body, err)
		}
		return got
	}
	expect := func(when string, notes, files float64) {
		t.Helper()
		got := totals(when)
		if got["notes_total"] != notes || got["files_total"] != files {
			t.Errorf("%s: notes_total %v, files_total %v; want %v and %v", when, got["notes_total"], got["files_total"], notes, files)
		}
	}

	expect("empty", 0, 0)
	for _, title := range []string{"one", "two"} {
		if r := post(t, srv.URL+"/api/notes", "application/json", []byte(`{"title":"`+title+`"}`), ""); r.status != 201 {
			t.Fatalf("creating a note: %d", r.status)
		}
	}
	if r := post(t, srv.URL+"/api/files", "multipart/form-data; boundary=b",
		[]byte("--b\r\nContent-Disposition: form-data; name=\"file\"; filename=\"a.txt\"\r\n\r\nhello\r\n--b--\r\n"), ""); r.status != 201 {
		t.Fatalf("uploading a file: %d", r.status)
	}
	if r := post(t, srv.URL+"/api/files/uploads", "application/json", []byte(`{"name":"b.txt","content_type":"text/plain","size":5}`), ""); r.status != 201 {
		t.Fatalf("starting a direct upload: %d", r.status)
	}
	expect("within seconds of the first count", 0, 0)
	moved.Add(int64(10 * time.Second))
	expect("10 seconds later", 2, 1)

	db.Close()
	for i := range 3 {
		moved.Add(int64(10 * time.Second))
		got := totals("with the database closed")
		if _, ok := got["notes_total"]; ok {
			t.Errorf("poll %d with the database closed gives notes_total %v", i, got["notes_total"])
		}
		if _, ok := got["files_total"]; ok {
			t.Errorf("poll %d with the database closed gives files_total %v", i, got["files_total"])
		}
	}
	if n := strings.Count(logs.String(), "counting notes and files failed"); n != 1 {
		t.Errorf("logged the failure %d times over 3 polls, want once:\n%s", n, logs.String())
	}
}
