package server_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"mime/multipart"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/example/flystorage/internal/server"
	"github.com/example/flystorage/internal/service"
	"github.com/example/flystorage/internal/storage"
	"github.com/example/flystorage/internal/testenv"
)

// TestDownloadAnswers holds GET /api/files/{id}/content to the answers
// docs/api.md promises for ranges and conditions, which http.ServeContent
// gives with the glue in content.go: one range 206, several ranges or
// another unit the whole file, an unsatisfiable or malformed range 416
// with code invalid and Content-Range, the ETag 304, a stale If-Range the
// whole file, and a missing object 404.
func TestDownloadAnswers(t *testing.T) {
	db, blobs := testenv.LocalStores(t)
	svc := service.New(service.Options{DB: db, Blobs: blobs, MaxUpload: 1 << 20, KeyPrefix: "files/"})
	srv := httptest.NewServer(server.New(server.Options{Service: svc, MaxUploadBytes: 1 << 20, SigningKey: []byte(strings.Repeat("k", 32))}))
	defer srv.Close()

	file := uploadDigits(t, srv.URL)
	url, etag := srv.URL+"/api/files/"+file.ID+"/content", `"`+file.SHA256+`"`

	for _, tc := range []struct {
		name         string
		headers      []string
		status       int
		body         string // for errors, the code
		contentRange string
	}{
		{"whole", nil, 200, "0123456789", ""},
		{"one range", []string{"Range", "bytes=2-4"}, 206, "234", "bytes 2-4/10"},
		{"suffix", []string{"Range", "bytes=-3"}, 206, "789", "bytes 7-9/10"},
		{"suffix longer than the file", []string{"Range", "bytes=-30"}, 206, "0123456789", "bytes 0-9/10"},
		// An end past the file ends at its last byte, size-1, so the
		// answer claims exactly the bytes it sends.
		{"end past the file", []string{"Range", "bytes=0-10"}, 206, "0123456789", "bytes 0-9/10"},
		{"end far past the file", []string{"Range", "bytes=2-50"}, 206, "23456789", "bytes 2-9/10"},
		{"several ranges", []string{"Range", "bytes=0-1,4-5"}, 200, "0123456789", ""},
		{"another unit", []string{"Range", "items=0-1"}, 200, "0123456789", ""},
		{"past the end", []string{"Range", "bytes=10-"}, 416, "invalid", "bytes */10"},
		{"empty suffix", []string{"Range", "bytes=-0"}, 416, "invalid", "bytes */10"},
		{"malformed", []string{"Range", "bytes=abc"}, 416, "invalid", "bytes */10"},
		{"If-None-Match", []string{"If-None-Match", etag}, 304, "", ""},
		{"weak If-None-Match in a list", []string{"If-None-Match", `"x", W/` + etag}, 304, "", ""},
		{"If-Range with the ETag", []string{"Range", "bytes=0-1", "If-Range", etag}, 206, "01", "bytes 0-1/10"},
		{"stale If-Range", []string{"Range", "bytes=0-1", "If-Range", `"stale"`}, 200, "0123456789", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			res := get(t, url, tc.headers...)
			if res.status != tc.status || res.body != tc.body || res.header.Get("Content-Range") != tc.contentRange {
				t.Errorf("%d %q Content-Range %q; want %d %q Content-Range %q", res.status, res.body, res.header.Get("Content-Range"), tc.status, tc.body, tc.contentRange)
			}
			if cl := res.header.Get("Content-Length"); tc.status/100 == 2 && cl != strconv.Itoa(len(res.body)) {
				t.Errorf("Content-Length %s, but %d bytes sent", cl, len(res.body))
			}
			if res.header.Get("ETag") != etag {
				t.Errorf("ETag %q, want %q", res.header.Get("ETag"), etag)
			}
		})
	}

	t.Run("missing object", func(t *testing.T) {
		for e, err := range blobs.List(context.Background(), "") {
			if err != nil {
				t.Fatal(err)
			}
			blobs.Delete(context.Background(), e.Key)
		}
		if res := get(t, url); res.status != 404 || res.body != "not_found" {
			t.Errorf("%d %q, want 404 not_found", res.status, res.body)
		}
	})
}

type answer struct {
	status int
	header http.Header
	body   string // the body, or an error's code
}

func get(t *testing.T, url string, headers ...string) answer {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, url, nil)
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	body, _ := io.ReadAll(res.Body)
	a := answer{status: res.StatusCode, header: res.Header, body: string(body)}
	if res.StatusCode >= 400 {
		var e struct{ Error struct{ Code string } }
		json.Unmarshal(body, &e)
		a.body = e.Error.Code
	}
	return a
}

// countingBlobs counts the objects a server opens.
type countingBlobs struct {
	storage.Blobs
	gets atomic.Int64
}

func (b *countingBlobs) Get(ctx context.Context, key string, rng *storage.ByteRange) (io.ReadCloser, storage.BlobInfo, error) {
	b.gets.Add(1)
	return b.Blobs.Get(ctx, key, rng)
}

// TestHeadOfContentReadsNoObject: HEAD of a file's content answers GET's
// headers (size, ETag, Content-Range for a range) from the file's row,
// and never opens the object.
func TestHeadOfContentReadsNoObject(t *testing.T) {
	db, local := testenv.LocalStores(t)
	blobs := &countingBlobs{Blobs: local}
	svc := service.New(service.Options{DB: db, Blobs: blobs, MaxUpload: 1 << 20, KeyPrefix: "files/"})
	srv := httptest.NewServer(server.New(server.Options{Service: svc, MaxUploadBytes: 1 << 20}))
	defer srv.Close()
	file := uploadDigits(t, srv.URL)
	url := srv.URL + "/api/files/" + file.ID + "/content"
	before := blobs.gets.Load()

	for _, tc := range []struct {
		rng, length, contentRange string
		status                    int
	}{{"", "10", "", 200}, {"bytes=2-4", "3", "bytes 2-4/10", 206}} {
		req, _ := http.NewRequest(http.MethodHead, url, nil)
		if tc.rng != "" {
			req.Header.Set("Range", tc.rng)
		}
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		h := res.Header
		if res.StatusCode != tc.status || h.Get("Content-Length") != tc.length || h.Get("Content-Range") != tc.contentRange ||
			h.Get("ETag") != `"`+file.SHA256+`"` || !strings.Contains(h.Get("Content-Disposition"), "digits.txt") {
			t.Errorf("HEAD Range %q: %d, headers %v; want %d, Content-Length %s, Content-Range %q, the ETag and the name",
				tc.rng, res.StatusCode, h, tc.status, tc.length, tc.contentRange)
		}
	}
	if n := blobs.gets.Load() - before; n != 0 {
		t.Errorf("two HEADs opened the object %d times, want 0", n)
	}
	if res := get(t, url); res.status != 200 || blobs.gets.Load()-before != 1 {
		t.Errorf("GET after the HEADs: %d, %d opens; want 200 and 1", res.status, blobs.gets.Load()-before)
	}
}

// uploadedFile is the part of a POST /api/files answer the tests use.
type uploadedFile struct{ ID, SHA256 string }

// uploadDigits uploads digits.txt, holding "0123456789", to the server at
// base.
func uploadDigits(t *testing.T, base string) uploadedFile {
	t.Helper()
	var form bytes.Buffer
	mw := multipart.NewWriter(&form)
	part, _ := mw.CreateFormFile("file", "digits.txt")
	part.Write([]byte("0123456789"))
	mw.Close()
	res, err := http.Post(base+"/api/files", mw.FormDataContentType(), &form)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	if res.StatusCode != http.StatusCreated {
		t.Fatalf("upload: %s", res.Status)
	}
	var file uploadedFile
	if err := json.NewDecoder(res.Body).Decode(&file); err != nil {
		t.Fatalf("upload's answer: %v", err)
	}
	return file
}
