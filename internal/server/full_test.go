package server_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"mime/multipart"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"

	"github.com/example/flystorage/internal/server"
	"github.com/example/flystorage/internal/service"
	"github.com/example/flystorage/internal/storage/localfs"
	"github.com/example/flystorage/internal/storage/sqlite"
	"github.com/example/flystorage/internal/testenv"
)

func upload(t *testing.T, url string, size int) (*http.Response, string) {
	t.Helper()
	var body bytes.Buffer
	mw := multipart.NewWriter(&body)
	w, _ := mw.CreateFormFile("file", "fill.bin")
	w.Write(bytes.Repeat([]byte("x"), size))
	mw.Close()
	res, err := http.Post(url+"/api/files", mw.FormDataContentType(), &body)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(res.Body)
	res.Body.Close()
	return res, string(b)
}

// TestFullDisk fills a real 4 MiB file system holding the SQLite database
// and the blob directory: uploads and note writes answer 507
// insufficient_storage saying the disk is full (not 500), deleting a file
// frees space so that writes work again, and /readyz and /metrics report
// the free space.
func TestFullDisk(t *testing.T) {
	dir := testenv.SmallFS(t, "4m")
	ctx := context.Background()
	db, err := sqlite.Open(ctx, filepath.Join(dir, "app.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	blobs, err := localfs.New(filepath.Join(dir, "blobs"))
	if err != nil {
		t.Fatal(err)
	}
	defer blobs.Close()
	metrics := server.NewMetrics(db)
	srv := httptest.NewServer(server.New(server.Options{Service: service.New(service.Options{DB: db, Blobs: metrics.InstrumentBlobs(blobs), KeyPrefix: "files/", MaxUpload: 8 << 20}), MaxUploadBytes: 8 << 20, Metrics: metrics}))
	defer srv.Close()

	// Fill the disk with uploads of 512 KiB; eight of them cannot fit.
	var ids []string
	var res *http.Response
	var body string
	for range 12 {
		res, body = upload(t, srv.URL, 512<<10)
		if res.StatusCode != 201 {
			break
		}
		var f struct{ ID string }
		json.Unmarshal([]byte(body), &f)
		ids = append(ids, f.ID)
	}
	if res.StatusCode != http.StatusInsufficientStorage || !strings.Contains(body, "insufficient_storage") || !strings.Contains(body, "full") {
		t.Fatalf("upload to a full disk after %d uploads: %d %s; want 507 insufficient_storage saying the disk is full", len(ids), res.StatusCode, body)
	}
	if len(ids) == 0 {
		t.Fatal("not one upload fit in 4 MiB")
	}
	// Fill the last bytes with small uploads, then notes.
	for range 200 {
		if r, _ := upload(t, srv.URL, 8<<10); r.StatusCode != 201 {
			break
		}
	}
	status := 0
	for i := range 500 {
		res, err := http.Post(srv.URL+"/api/notes", "application/json",
			strings.NewReader(fmt.Sprintf(`{"title":"n%d","body":%q}`, i, strings.Repeat("y", 32<<10))))
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(res.Body)
		res.Body.Close()
		if status = res.StatusCode; status != 201 {
			if status != http.StatusInsufficientStorage || !strings.Contains(string(b), "insufficient_storage") {
				t.Errorf("note on a full disk: %d %s; want 507 insufficient_storage", status, b)
			}
			break
		}
	}
	if status != http.StatusInsufficientStorage {
		t.Errorf("notes never hit the full disk (last status %d)", status)
	}

	// /readyz and /metrics show the free space.
	r, err := http.Get(srv.URL + "/readyz")
	if err != nil {
		t.Fatal(err)
	}
	var ready struct {
		Checks map[string]map[string]any
	}
	json.NewDecoder(r.Body).Decode(&ready)
	r.Body.Close()
	for _, name := range []string{"database", "files"} {
		if _, ok := ready.Checks[name]["free_bytes"]; !ok {
			t.Errorf("/readyz %s check has no free_bytes: %v", name, ready.Checks[name])
		}
	}
	r, err = http.Get(srv.URL + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	m, _ := io.ReadAll(r.Body)
	r.Body.Close()
	if !strings.Contains(string(m), `flystorage_volume_free_bytes{store="files"}`) || !strings.Contains(string(m), `flystorage_volume_free_bytes{store="database"}`) {
		t.Errorf("/metrics has no flystorage_volume_free_bytes for database and files")
	}

	// Deleting files frees space: it works on a full disk, and then an
	// upload fits again.
	for _, id := range ids[:2] {
		req, _ := http.NewRequest("DELETE", srv.URL+"/api/files/"+id, nil)
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(res.Body)
		res.Body.Close()
		if res.StatusCode != 204 {
			t.Fatalf("DELETE on a full disk: %d %s, want 204", res.StatusCode, b)
		}
	}
	if res, body := upload(t, srv.URL, 256<<10); res.StatusCode != 201 {
		t.Errorf("upload after deleting: %d %s, want 201", res.StatusCode, body)
	}
}
