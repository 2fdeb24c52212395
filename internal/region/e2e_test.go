package region_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/example/flystorage/internal/region"
	"github.com/example/flystorage/internal/server"
	"github.com/example/flystorage/internal/storage/localfs"
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
		srvDB := server.Options{DB: primary, Blobs: blobs, SigningKey: []byte("test-signing-key-0123456789abcdef")}
		if db != nil {
			o.Replica = replica
			srvDB.DB = db
		}
		s := httptest.NewServer(region.NewRouter(o).Wrap(server.New(srvDB)))
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
				if err := writeThenRead(proxy.URL, fmt.Sprintf("note %d-%d", c, i)); err != nil {
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
	// The replica's own counters show the reads served in syd.
	replica.Close()
	pair.WaitReplicaScans(t, "notes", int64(readsInSyd))
}

// writeThenRead creates a note through syd and reads it back with the
// token the write returned.
func writeThenRead(base, title string) error {
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
	if token == "" {
		return fmt.Errorf("creating %q: no %s", title, region.TokenHeader)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	req, _ = http.NewRequestWithContext(ctx, "GET", base+"/api/notes/"+created.ID, nil)
	req.Header.Set(testenv.EntryRegionHeader, "syd")
	req.Header.Set(region.TokenHeader, token)
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
