package server_test

import (
	"bytes"
	"context"
	"fmt"
	"mime/multipart"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/example/flystorage/internal/server"
	"github.com/example/flystorage/internal/storage"
	"github.com/example/flystorage/internal/testenv"
)

// flakyInsert is a real SQLite database whose CreateFile fails as if the
// connection broke after the statement was sent: the insert may or may not
// have been applied (applied says which), and the database may or may not
// still answer reads (reachable says which).
type flakyInsert struct {
	storage.Database
	applied, reachable bool
}

var errBroken = fmt.Errorf("%w (%w): connection reset", storage.ErrUnavailable, storage.ErrOutcomeUnknown)

func (f *flakyInsert) CreateFile(ctx context.Context, file storage.File) error {
	if f.applied {
		if err := f.Database.CreateFile(ctx, file); err != nil {
			return err
		}
	}
	return errBroken
}

func (f *flakyInsert) GetFile(ctx context.Context, id string) (storage.File, error) {
	if !f.reachable {
		return storage.File{}, fmt.Errorf("%w: still down", storage.ErrUnavailable)
	}
	return f.Database.GetFile(ctx, id)
}

// TestUploadWhoseInsertOutcomeIsUnknown checks the three ways an insert
// with an unknown outcome resolves: the row is there (201, object kept),
// the row is surely not there (503, object deleted), or nobody can tell
// (503, object kept for the orphan sweep rather than risk a listed file
// without its bytes).
func TestUploadWhoseInsertOutcomeIsUnknown(t *testing.T) {
	for _, tc := range []struct {
		name               string
		applied, reachable bool
		status             int
		objects            int
	}{
		{"row was written", true, true, 201, 1},
		{"row was not written", false, true, 503, 0},
		{"cannot tell", false, false, 503, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			db, blobs := testenv.LocalStores(t)
			srv := httptest.NewServer(server.New(server.Options{
				DB: &flakyInsert{Database: db, applied: tc.applied, reachable: tc.reachable}, Blobs: blobs, MaxUploadBytes: 1 << 20, KeyPrefix: "files/",
			}))
			defer srv.Close()

			var body bytes.Buffer
			mw := multipart.NewWriter(&body)
			w, _ := mw.CreateFormFile("file", "a.txt")
			w.Write([]byte("hello"))
			mw.Close()
			res, err := http.Post(srv.URL+"/api/files", mw.FormDataContentType(), &body)
			if err != nil {
				t.Fatal(err)
			}
			res.Body.Close()
			if res.StatusCode != tc.status {
				t.Errorf("status %d, want %d", res.StatusCode, tc.status)
			}
			n := 0
			for _, err := range blobs.List(context.Background(), "files/") {
				if err != nil {
					t.Fatal(err)
				}
				n++
			}
			if n != tc.objects {
				t.Errorf("%d objects stored, want %d", n, tc.objects)
			}
		})
	}
}
