package server_test

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

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
