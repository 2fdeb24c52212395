package server_test

import (
	"bytes"
	"encoding/json"
	"mime/multipart"
	"net/http"
	"net/http/httptest"
	"os"
	"regexp"
	"strings"
	"testing"

	"github.com/example/flystorage/internal/server"
	"github.com/example/flystorage/internal/service"
	"github.com/example/flystorage/internal/testenv"
)

func newLocalServer(t *testing.T) *httptest.Server {
	t.Helper()
	db, blobs := testenv.LocalStores(t)
	srv := httptest.NewServer(server.New(server.Options{Service: service.New(service.Options{DB: db, Blobs: blobs, KeyPrefix: "files/", MaxUpload: 1 << 20}), MaxUploadBytes: 1 << 20}))
	t.Cleanup(srv.Close)
	return srv
}

func errorCode(t *testing.T, res *http.Response) string {
	t.Helper()
	var body struct {
		Error struct{ Code, Message string }
	}
	if err := json.NewDecoder(res.Body).Decode(&body); err != nil {
		t.Fatalf("error body: %v", err)
	}
	return body.Error.Code
}

// TestRangePastTheEndCodeMatchesDocs: docs/api.md's error table names the
// code a 416 answer carries; the server must answer with that code.
func TestRangePastTheEndCodeMatchesDocs(t *testing.T) {
	doc, err := os.ReadFile("../../docs/api.md")
	if err != nil {
		t.Fatal(err)
	}
	// The error table's rows read "| `code` | status | ..."; find the one
	// naming 416.
	m := regexp.MustCompile("(?m)^\\| `([a-z_]+)` \\| \\d{3} \\|.*\\b416\\b").FindSubmatch(doc)
	if m == nil {
		t.Fatal("docs/api.md's error table names no code for 416")
	}
	documented := string(m[1])

	srv := newLocalServer(t)
	var body bytes.Buffer
	mw := multipart.NewWriter(&body)
	w, _ := mw.CreateFormFile("file", "a.txt")
	w.Write([]byte("hello"))
	mw.Close()
	res, err := http.Post(srv.URL+"/api/files", mw.FormDataContentType(), &body)
	if err != nil {
		t.Fatal(err)
	}
	var f struct{ ID string }
	json.NewDecoder(res.Body).Decode(&f)
	res.Body.Close()
	if res.StatusCode != 201 {
		t.Fatalf("upload: %d", res.StatusCode)
	}

	req, _ := http.NewRequest("GET", srv.URL+"/api/files/"+f.ID+"/content", nil)
	req.Header.Set("Range", "bytes=10-")
	res, err = http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	if code := errorCode(t, res); res.StatusCode != 416 || code != documented {
		t.Errorf("range past the end: %d %q; docs/api.md documents 416 %q", res.StatusCode, code, documented)
	}
}

// TestWrongMethodAnswers405: a known path with a method it does not serve
// answers 405 with Allow listing the methods it does, not 404.
func TestWrongMethodAnswers405(t *testing.T) {
	srv := newLocalServer(t)
	for _, tc := range []struct{ method, path, allow string }{
		{"PATCH", "/api/notes/0193d1f0-0000-7000-8000-000000000000", "DELETE, GET, HEAD, PUT"},
		{"DELETE", "/api/notes", "GET, HEAD, POST"},
		{"PUT", "/api/files/uploads/x/complete", "POST"},
	} {
		req, _ := http.NewRequest(tc.method, srv.URL+tc.path, strings.NewReader("{}"))
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		code := errorCode(t, res)
		res.Body.Close()
		if res.StatusCode != 405 || code != "method_not_allowed" || res.Header.Get("Allow") != tc.allow {
			t.Errorf("%s %s: %d %q Allow %q; want 405 method_not_allowed Allow %q",
				tc.method, tc.path, res.StatusCode, code, res.Header.Get("Allow"), tc.allow)
		}
	}
	res, err := http.Get(srv.URL + "/api/nothing")
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != 404 {
		t.Errorf("GET /api/nothing: %d, want 404", res.StatusCode)
	}
}
