package server_test

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/example/flystorage/internal/server"
	"github.com/example/flystorage/internal/service"
	"github.com/example/flystorage/internal/testenv"
)

// TestConcurrentCompletesKeepTheBytes is issue 14's defect 1: two completes
// of one direct upload at once must both leave the file whole. The loser
// used to take its not-found for a failed insert and delete the object the
// winner had just recorded.
func TestConcurrentCompletesKeepTheBytes(t *testing.T) {
	db, blobs := testenv.LocalStores(t)
	svc := service.New(service.Options{DB: db, Blobs: blobs, MaxUpload: 1 << 20, KeyPrefix: "files/"})
	srv := httptest.NewServer(server.New(server.Options{Service: svc, MaxUploadBytes: 1 << 20, SigningKey: []byte(strings.Repeat("k", 32))}))
	defer srv.Close()

	for round := range 10 {
		content := []byte(strings.Repeat("x", 1000+round))
		var intent struct {
			ID, URL string
		}
		res, err := http.Post(srv.URL+"/api/files/uploads", "application/json",
			strings.NewReader(`{"name":"a.txt","content_type":"text/plain","size":`+strconv.Itoa(len(content))+`}`))
		if err != nil {
			t.Fatal(err)
		}
		json.NewDecoder(res.Body).Decode(&intent)
		res.Body.Close()
		req, _ := http.NewRequest(http.MethodPut, intent.URL, bytes.NewReader(content))
		req.Header.Set("Content-Type", "text/plain")
		if res, err := http.DefaultClient.Do(req); err != nil || res.StatusCode != http.StatusOK {
			t.Fatalf("PUT the bytes: %v %v", res.Status, err)
		}

		var wg sync.WaitGroup
		statuses := make([]int, 2)
		for i := range statuses {
			wg.Go(func() {
				res, err := http.Post(srv.URL+"/api/files/uploads/"+intent.ID+"/complete", "application/json", nil)
				if err != nil {
					t.Error(err)
					return
				}
				res.Body.Close()
				statuses[i] = res.StatusCode
			})
		}
		wg.Wait()
		for _, s := range statuses {
			if s != http.StatusCreated && s != http.StatusOK {
				t.Errorf("round %d: completes answered %v, want 201 and 200 (the second as a repeated complete)", round, statuses)
			}
		}
		res, err = http.Get(srv.URL + "/api/files/" + intent.ID + "/content")
		if err != nil {
			t.Fatal(err)
		}
		got := new(bytes.Buffer)
		got.ReadFrom(res.Body)
		res.Body.Close()
		if res.StatusCode != http.StatusOK || !bytes.Equal(got.Bytes(), content) {
			t.Fatalf("round %d: after two completes the content answers %d with %d bytes, want 200 with %d", round, res.StatusCode, got.Len(), len(content))
		}
	}
}
