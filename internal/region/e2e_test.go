package region_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"mime/multipart"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/example/flystorage/internal/region"
	"github.com/example/flystorage/internal/server"
	"github.com/example/flystorage/internal/service"
	"github.com/example/flystorage/internal/storage"
	"github.com/example/flystorage/internal/storage/localfs"
	"github.com/example/flystorage/internal/storage/sqlite"
	"github.com/example/flystorage/internal/testenv"
)

// TestWriteThenReadAcrossRegions runs two machines behind a proxy that
// replays as Fly's does: ord (primary region, on the primary) and syd (a
// replica region, reading a streaming replica that applies every
// transaction 300ms late). Clients in syd write a note and read it back at
// once, 200 times: each write is replayed to ord, and each read is served
// in syd once the replica holds the write, or replayed to ord. Every read
// must see its write.
//
// The machines are the server package behind the router, wired by hand as
// cmd/app will; one local directory stands in for Tigris, which both
// regions share.
func TestWriteThenReadAcrossRegions(t *testing.T) {
	pair, primary, replica := stores(t)
	blobs, err := localfs.New(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	machine := func(cfg region.Config, db *region.Database) *httptest.Server {
		o := region.Options{Config: cfg, Primary: primary}
		var sdb storage.Database = primary
		if db != nil {
			o.Replica = replica
			sdb = db
		}
		svc := service.New(service.Options{DB: sdb, Blobs: blobs, KeyPrefix: "files/", MaxUpload: 8 << 20})
		srv := server.Options{Service: svc, SigningKey: []byte("test-signing-key-0123456789abcdef"), MaxUploadBytes: 8 << 20}
		s := httptest.NewServer(region.NewRouter(o).Wrap(server.New(srv)))
		t.Cleanup(s.Close)
		return s
	}
	wait := 2 * time.Second
	ord := machine(region.Config{Region: "ord", PrimaryRegion: "ord", Wait: wait}, nil)
	syd := machine(region.Config{Region: "syd", PrimaryRegion: "ord", Wait: wait},
		region.NewDatabase(primary, replica, region.DatabaseOptions{}))
	proxy := testenv.NewReplayProxy(t, map[string]string{"ord": ord.URL, "syd": syd.URL})

	const clients, pairs = 10, 20
	var wg sync.WaitGroup
	errs := make(chan error, clients*pairs)
	for c := range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range pairs {
				if err := writeThenRead(proxy.URL, fmt.Sprintf("note %d-%d", c, i), true); err != nil {
					errs <- err
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}

	var writes, replayedWrites, readsInSyd, readsReplayed int
	for _, h := range proxy.Hops() {
		switch {
		case h.Method == "POST" && h.Region == "syd":
			writes++
			if h.ReplayTo != "ord" {
				t.Errorf("a write in syd was answered %d without a replay", h.Status)
			}
		case h.Method == "POST" && h.Region == "ord":
			replayedWrites++
		case h.Method == "GET" && h.Region == "syd" && h.ReplayTo == "":
			readsInSyd++
		case h.Method == "GET" && h.Region == "ord":
			readsReplayed++
		}
	}
	if writes != clients*pairs || replayedWrites != writes || readsInSyd+readsReplayed != clients*pairs {
		t.Errorf("writes %d (replayed %d), reads in syd %d, reads replayed %d; want %d of each pair",
			writes, replayedWrites, readsInSyd, readsReplayed, clients*pairs)
	}
	t.Logf("%d reads served in syd from the replica, %d replayed to ord", readsInSyd, readsReplayed)

	// An upload through the app over 1 MB cannot be replayed: syd serves it,
	// its row goes to the primary, and it reads back at once.
	hops := len(proxy.Hops())
	id, token := upload(t, proxy.URL, 2<<20)
	if h := proxy.Hops()[hops]; h.Region != "syd" || h.ReplayTo != "" || h.Status != http.StatusCreated {
		t.Errorf("the upload: %+v, want it served in syd", h)
	}
	if _, err := primary.GetFile(context.Background(), id); err != nil {
		t.Errorf("the uploaded file's row is not on the primary: %v", err)
	}
	req, _ := http.NewRequest("GET", proxy.URL+"/api/files/"+id, nil)
	req.Header.Set(testenv.EntryRegionHeader, "syd")
	req.Header.Set(region.TokenHeader, token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	var f struct{ Size int64 }
	json.NewDecoder(resp.Body).Decode(&f)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || f.Size != 2<<20 {
		t.Errorf("reading the upload back: %d, size %d", resp.StatusCode, f.Size)
	}
	// The replica's own counters show the reads served in syd.
	replica.Close()
	pair.WaitReplicaScans(t, "notes", int64(readsInSyd))
}

// writeThenRead creates a note through syd and reads it back with the
// token the write returned, which it requires when needToken.
func writeThenRead(base, title string, needToken bool) error {
	req, _ := http.NewRequest("POST", base+"/api/notes", strings.NewReader(fmt.Sprintf(`{"title":%q}`, title)))
	req.Header.Set(testenv.EntryRegionHeader, "syd")
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	var created struct{ ID string }
	if resp.StatusCode != http.StatusCreated || json.NewDecoder(resp.Body).Decode(&created) != nil {
		return fmt.Errorf("creating %q: status %d", title, resp.StatusCode)
	}
	token := resp.Header.Get(region.TokenHeader)
	if token == "" && needToken {
		return fmt.Errorf("creating %q: no %s", title, region.TokenHeader)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	req, _ = http.NewRequestWithContext(ctx, "GET", base+"/api/notes/"+created.ID, nil)
	req.Header.Set(testenv.EntryRegionHeader, "syd")
	if token != "" {
		req.Header.Set(region.TokenHeader, token)
	}
	resp, err = http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	var got struct{ Title string }
	if resp.StatusCode != http.StatusOK || json.NewDecoder(resp.Body).Decode(&got) != nil || got.Title != title {
		return fmt.Errorf("reading %q back with token %s: status %d, title %q", title, token, resp.StatusCode, got.Title)
	}
	return nil
}

// upload posts size bytes to /api/files through syd and returns the file's
// id and the token.
func upload(t *testing.T, base string, size int) (string, string) {
	t.Helper()
	var body bytes.Buffer
	mw := multipart.NewWriter(&body)
	part, _ := mw.CreateFormFile("file", "big.bin")
	part.Write(bytes.Repeat([]byte{'x'}, size))
	mw.Close()
	req, _ := http.NewRequest("POST", base+"/api/files", &body)
	req.Header.Set(testenv.EntryRegionHeader, "syd")
	req.Header.Set("Content-Type", mw.FormDataContentType())
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var f struct{ ID string }
	if err := json.NewDecoder(resp.Body).Decode(&f); err != nil || resp.StatusCode != http.StatusCreated {
		t.Fatalf("uploading %d bytes through syd: status %d, %v", size, resp.StatusCode, err)
	}
	token := resp.Header.Get(region.TokenHeader)
	if token == "" {
		t.Fatalf("the upload returned no %s", region.TokenHeader)
	}
	return f.ID, token
}

// TestSQLiteMachineOutsidePrimaryRegionReplaysEverything runs ord and syd
// on SQLite, each with its own file as on its own volume: every request
// entering syd is served by ord, and syd's file is never touched.
func TestSQLiteMachineOutsidePrimaryRegionReplaysEverything(t *testing.T) {
	machine := func(cfg region.Config) (*httptest.Server, *sqlite.Store) {
		db, err := sqlite.Open(context.Background(), filepath.Join(t.TempDir(), "app.db"))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { db.Close() })
		blobs, err := localfs.New(t.TempDir())
		if err != nil {
			t.Fatal(err)
		}
		svc := service.New(service.Options{DB: db, Blobs: blobs, KeyPrefix: "files/", MaxUpload: 8 << 20})
		h := region.NewRouter(region.Options{Config: cfg, Local: true}).Wrap(server.New(server.Options{Service: svc, MaxUploadBytes: 8 << 20}))
		s := httptest.NewServer(h)
		t.Cleanup(s.Close)
		return s, db
	}
	ord, ordDB := machine(region.Config{Region: "ord", PrimaryRegion: "ord"})
	syd, sydDB := machine(region.Config{Region: "syd", PrimaryRegion: "ord"})
	proxy := testenv.NewReplayProxy(t, map[string]string{"ord": ord.URL, "syd": syd.URL})

	for i := range 5 {
		if err := writeThenRead(proxy.URL, fmt.Sprintf("note %d", i), false); err != nil {
			t.Fatal(err)
		}
	}
	if notes, _, err := ordDB.ListNotes(context.Background(), storage.Page{Limit: 10}); err != nil || len(notes) != 5 {
		t.Errorf("ord holds %d notes (%v), want 5", len(notes), err)
	}
	if notes, _, err := sydDB.ListNotes(context.Background(), storage.Page{Limit: 10}); err != nil || len(notes) != 0 {
		t.Errorf("syd's own file holds %d notes (%v), want none", len(notes), err)
	}
	for _, h := range proxy.Hops() {
		if h.Region == "syd" && h.ReplayTo != "ord" {
			t.Errorf("syd served %s %s itself (%d)", h.Method, h.Path, h.Status)
		}
	}
	// A body Fly cannot replay is refused by syd with the way out.
	var body bytes.Buffer
	body.Write(bytes.Repeat([]byte{'x'}, 2<<20))
	req, _ := http.NewRequest("POST", proxy.URL+"/api/files", &body)
	req.Header.Set(testenv.EntryRegionHeader, "syd")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusMisdirectedRequest {
		t.Errorf("a 2 MB upload entering syd: %d, want 421 (fly-prefer-region)", resp.StatusCode)
	}
}
