package server_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"mime/multipart"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"

	"github.com/example/flystorage/internal/server"
	"github.com/example/flystorage/internal/service"
	"github.com/example/flystorage/internal/storage"
	"github.com/example/flystorage/internal/testenv"
)

type reply struct {
	status   int
	id       string
	replayed bool
}

func post(t *testing.T, url, contentType string, body []byte, key string) reply {
	t.Helper()
	req, _ := http.NewRequest("POST", url, bytes.NewReader(body))
	req.Header.Set("Content-Type", contentType)
	if key != "" {
		req.Header.Set("Idempotency-Key", key)
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	var out struct{ ID string }
	json.NewDecoder(res.Body).Decode(&out)
	return reply{res.StatusCode, out.ID, res.Header.Get("Idempotent-Replayed") == "true"}
}

// TestIdempotentWrites: a retry with the same Idempotency-Key and request
// gets the first response's resource and makes no second one; the key with
// another request answers 422; concurrent retries agree on one resource.
func TestIdempotentWrites(t *testing.T) {
	db, blobs := testenv.LocalStores(t)
	svc := service.New(service.Options{DB: db, Blobs: blobs, KeyPrefix: "files/", MaxUpload: 1 << 20})
	srv := httptest.NewServer(server.New(server.Options{Service: svc, MaxUploadBytes: 1 << 20, SigningKey: bytes.Repeat([]byte("k"), 32)}))
	defer srv.Close()
	ctx := context.Background()
	count := func(list func() (int, error)) int {
		n, err := list()
		if err != nil {
			t.Fatal(err)
		}
		return n
	}
	notes := func() (int, error) {
		all, _, err := db.ListNotes(ctx, storage.Page{Limit: 100})
		return len(all), err
	}
	files := func() (int, error) {
		all, _, err := db.ListFiles(ctx, storage.Page{Limit: 100})
		return len(all), err
	}

	t.Run("notes", func(t *testing.T) {
		first := post(t, srv.URL+"/api/notes", "application/json", []byte(`{"title":"once"}`), "note-key-1")
		again := post(t, srv.URL+"/api/notes", "application/json", []byte(`{"title":"once"}`), "note-key-1")
		if first.status != 201 || again.status != 201 || again.id != first.id || first.replayed || !again.replayed {
			t.Errorf("first %+v, retry %+v: want both 201 with one id, the retry marked replayed", first, again)
		}
		if other := post(t, srv.URL+"/api/notes", "application/json", []byte(`{"title":"other"}`), "note-key-1"); other.status != 422 {
			t.Errorf("the key with another note = %d, want 422", other.status)
		}
		var wg sync.WaitGroup
		ids := make([]string, 8)
		for i := range ids {
			wg.Go(func() {
				ids[i] = post(t, srv.URL+"/api/notes", "application/json", []byte(`{"title":"raced"}`), "note-key-2").id
			})
		}
		wg.Wait()
		for _, id := range ids {
			if id == "" || id != ids[0] {
				t.Errorf("concurrent retries made ids %v, want one", ids)
				break
			}
		}
		if n := count(notes); n != 2 {
			t.Errorf("%d notes stored, want 2", n)
		}
		if none := post(t, srv.URL+"/api/notes", "application/json", []byte(`{"title":"no key"}`), ""); none.status != 201 || none.replayed {
			t.Errorf("a write without a key = %+v", none)
		}
		if bad := post(t, srv.URL+"/api/notes", "application/json", []byte(`{"title":"x"}`), string(bytes.Repeat([]byte("k"), 256))); bad.status != 400 {
			t.Errorf("a 256-character key = %d, want 400", bad.status)
		}
	})

	t.Run("files", func(t *testing.T) {
		form := func(content string) (string, []byte) {
			var b bytes.Buffer
			mw := multipart.NewWriter(&b)
			w, _ := mw.CreateFormFile("file", "a.txt")
			w.Write([]byte(content))
			mw.Close()
			return mw.FormDataContentType(), b.Bytes()
		}
		ct, body := form("hello")
		first := post(t, srv.URL+"/api/files", ct, body, "file-key-1")
		ct, body = form("hello")
		again := post(t, srv.URL+"/api/files", ct, body, "file-key-1")
		if first.status != 201 || again.id != first.id || !again.replayed {
			t.Errorf("first %+v, retry %+v: want one file", first, again)
		}
		if n := count(files); n != 1 {
			t.Errorf("%d files stored, want 1", n)
		}
		objects := 0
		for _, err := range blobs.List(ctx, "files/") {
			if err != nil {
				t.Fatal(err)
			}
			objects++
		}
		if objects != 1 {
			t.Errorf("%d objects stored, want 1: a replayed upload stores nothing", objects)
		}
	})

	t.Run("upload intents", func(t *testing.T) {
		body := []byte(`{"name":"d.bin","content_type":"application/octet-stream","size":3}`)
		first := post(t, srv.URL+"/api/files/uploads", "application/json", body, "intent-key-1")
		again := post(t, srv.URL+"/api/files/uploads", "application/json", body, "intent-key-1")
		if first.status != 201 || again.id != first.id || !again.replayed {
			t.Errorf("first %+v, retry %+v: want one intent", first, again)
		}
		changed := post(t, srv.URL+"/api/files/uploads", "application/json", []byte(`{"name":"d.bin","content_type":"application/octet-stream","size":4}`), "intent-key-1")
		if changed.status != 422 {
			t.Errorf("the key with another size = %d, want 422", changed.status)
		}
	})
}

// committedButLost is a database whose CreateNote commits and then fails
// as if the connection broke before the answer came back.
type committedButLost struct {
	storage.Database
	once sync.Once
}

func (d *committedButLost) CreateNote(ctx context.Context, n storage.Note) error {
	if err := d.Database.CreateNote(ctx, n); err != nil {
		return err
	}
	var err error
	d.once.Do(func() { err = errors.Join(storage.ErrUnavailable, storage.ErrOutcomeUnknown) })
	return err
}

// TestRetryAfterA503ThatCommitted is issue 14's defect 12: a write answered
// 503 whose row committed anyway. A retry with the same key gets that row,
// and no second one.
func TestRetryAfterA503ThatCommitted(t *testing.T) {
	db, blobs := testenv.LocalStores(t)
	svc := service.New(service.Options{DB: &committedButLost{Database: db}, Blobs: blobs, KeyPrefix: "files/", MaxUpload: 1 << 20})
	srv := httptest.NewServer(server.New(server.Options{Service: svc, MaxUploadBytes: 1 << 20}))
	defer srv.Close()
	first := post(t, srv.URL+"/api/notes", "application/json", []byte(`{"title":"committed"}`), "retry-key")
	retry := post(t, srv.URL+"/api/notes", "application/json", []byte(`{"title":"committed"}`), "retry-key")
	if first.status != 503 || retry.status != 201 || !retry.replayed {
		t.Errorf("first %+v, retry %+v: want 503, then 201 replaying the committed note", first, retry)
	}
	all, _, err := db.ListNotes(context.Background(), storage.Page{Limit: 10})
	if err != nil || len(all) != 1 || all[0].ID != retry.id {
		t.Errorf("notes stored: %v, %v; want exactly the retried one", all, err)
	}
}

// failingCreates is a database whose first failures CreateNote calls fail
// before writing anything, as with the database down.
type failingCreates struct {
	storage.Database
	mu       sync.Mutex
	failures int
}

func (d *failingCreates) CreateNote(ctx context.Context, n storage.Note) error {
	d.mu.Lock()
	fail := d.failures > 0
	d.failures--
	d.mu.Unlock()
	if fail {
		return storage.ErrUnavailable
	}
	return d.Database.CreateNote(ctx, n)
}

// TestRetryAfterFailures: any number of attempts that failed to create the
// note leave the key usable, so the next retry creates it; once deleted,
// a retry answers 409 and creates nothing.
func TestRetryAfterFailures(t *testing.T) {
	db, blobs := testenv.LocalStores(t)
	svc := service.New(service.Options{DB: &failingCreates{Database: db, failures: 3}, Blobs: blobs, KeyPrefix: "files/", MaxUpload: 1 << 20})
	srv := httptest.NewServer(server.New(server.Options{Service: svc, MaxUploadBytes: 1 << 20}))
	defer srv.Close()
	body := []byte(`{"title":"after failures"}`)
	for i := range 3 {
		if r := post(t, srv.URL+"/api/notes", "application/json", body, "failing-key"); r.status != 503 {
			t.Fatalf("attempt %d with the database failing = %+v, want 503", i+1, r)
		}
	}
	made := post(t, srv.URL+"/api/notes", "application/json", body, "failing-key")
	if made.status != 201 || made.id == "" {
		t.Fatalf("the retry after three failures = %+v, want 201 creating the note", made)
	}
	req, _ := http.NewRequest("DELETE", srv.URL+"/api/notes/"+made.id, nil)
	res, err := http.DefaultClient.Do(req)
	if err != nil || res.StatusCode != 204 {
		t.Fatalf("DELETE = %v, %v", res, err)
	}
	res.Body.Close()
	if r := post(t, srv.URL+"/api/notes", "application/json", body, "failing-key"); r.status != 409 {
		t.Errorf("a retry after the delete = %+v, want 409", r)
	}
	if all, _, err := db.ListNotes(context.Background(), storage.Page{Limit: 10}); err != nil || len(all) != 0 {
		t.Errorf("notes after the delete and a retry: %v, %v; want none", all, err)
	}
}
