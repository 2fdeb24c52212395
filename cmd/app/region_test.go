package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"io"
	"mime/multipart"
	"net/http"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	awss3 "github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/jackc/pgx/v5"

	"github.com/example/flystorage/internal/region"
	"github.com/example/flystorage/internal/testenv"
)

// TestRegionReplicaRegion is issue 13's scenario on real replication: a
// throwaway primary and a streaming replica made with pg_basebackup -R that
// applies each transaction 300ms late, the app twice through run (ord, the
// primary region, on the primary; syd on the replica through
// DATABASE_READ_URL), one MinIO bucket shared by both as Tigris is, and a
// proxy in front that replays as Fly's does. Requests enter in syd, as a
// Sydney user's would.
//
// The two apps are two run calls in this process, each with its own
// environment map: they share no state (each has its own pools, router,
// metrics registry and logger; nothing in the app reads the process
// environment or keeps package-level state), so they are as separate as
// two processes, and start much faster.
func TestRegionReplicaRegion(t *testing.T) {
	pair := testenv.Replication(t)
	bucket := testenv.S3Bucket(t)
	start := func(extra map[string]string) *testApp {
		env := bucket.Env()
		env["DATABASE_URL"] = pair.PrimaryURL()
		env["MAX_UPLOAD_BYTES"] = fmt.Sprint(8 << 20)
		for k, v := range extra {
			env[k] = v
		}
		return startApp(t, env)
	}
	ord := start(map[string]string{"FLY_REGION": "ord", "PRIMARY_REGION": "ord", "MIGRATE_ON_START": "true"})
	pair.WaitReplayed(t) // syd does not migrate: its replica needs the tables first
	syd := start(map[string]string{"FLY_REGION": "syd", "PRIMARY_REGION": "ord", "DATABASE_READ_URL": pair.ReplicaURL()})
	proxy := testenv.NewReplayProxy(t, map[string]string{"ord": ord.url, "syd": syd.url})
	front := &testApp{url: proxy.URL}
	inSyd := func(method, path, contentType string, body io.Reader, headers ...string) response {
		return front.do(t, method, path, contentType, body, append([]string{testenv.EntryRegionHeader, "syd"}, headers...)...)
	}

	// Writes land once, on the primary: each is replayed from syd to ord.
	var ids []string
	for i := range 5 {
		r := inSyd("POST", "/api/notes", "application/json", strings.NewReader(fmt.Sprintf(`{"title":"written in syd %d"}`, i)))
		expect(t, "a note created through syd", r, 201)
		ids = append(ids, r.id())
	}
	if n := countRows(t, pair.PrimaryURL(), "SELECT count(*) FROM notes WHERE title LIKE 'written in syd %'"); n != 5 {
		t.Errorf("the primary holds %d notes written through syd, want each of the 5 once", n)
	}

	// Plain reads, without a token, are served in syd (by its replica,
	// which the replica's own counters prove below).
	pair.WaitReplayed(t)
	for _, id := range ids {
		expect(t, "a note read through syd", inSyd("GET", "/api/notes/"+id, "", nil), 200)
	}
	expect(t, "the notes listed through syd", inSyd("GET", "/api/notes", "", nil), 200)

	// Read your writes: 200 pairs despite the replica's delay.
	const clients, pairs = 10, 20
	var wg sync.WaitGroup
	errs := make(chan error, clients*pairs)
	for c := range clients {
		wg.Go(func() {
			for i := range pairs {
				if err := writeThenReadInSyd(proxy.URL, fmt.Sprintf("pair %d-%d", c, i)); err != nil {
					errs <- err
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if n := countRows(t, pair.PrimaryURL(), "SELECT count(*) FROM notes WHERE title LIKE 'pair %'"); n != clients*pairs {
		t.Errorf("the primary holds %d notes from the pairs, want each of the %d once", n, clients*pairs)
	}

	// An upload over 1 MB cannot be replayed: syd serves it, the bytes go
	// to the bucket, the row to the primary, and it reads back at once.
	hops := len(proxy.Hops())
	data := make([]byte, 2<<20)
	rand.Read(data)
	up := inSydUpload(t, front, "big.bin", data)
	expect(t, "a 2 MiB upload through syd", up, 201)
	if h := proxy.Hops()[hops]; h.Region != "syd" || h.ReplayTo != "" {
		t.Errorf("the upload went %+v, want it served in syd", h)
	}
	var key string
	var size int64
	queryRow(t, pair.PrimaryURL(), "SELECT key, size FROM files WHERE id = $1", []any{up.id()}, &key, &size)
	if size != int64(len(data)) {
		t.Errorf("the upload's row on the primary says %d bytes, want %d", size, len(data))
	}
	head, err := bucket.Client().HeadObject(context.Background(), &awss3.HeadObjectInput{Bucket: &bucket.Bucket, Key: &key})
	if err != nil || head.ContentLength == nil || *head.ContentLength != int64(len(data)) {
		t.Errorf("the object %s in the bucket: %v, want %d bytes", key, err, len(data))
	}
	got := inSyd("GET", "/api/files/"+up.id()+"/content", "", nil, region.TokenHeader, up.header.Get(region.TokenHeader))
	if got.status != 200 || !bytes.Equal(got.body, data) {
		t.Errorf("reading the upload back through syd: status %d, %d bytes, want the %d uploaded", got.status, len(got.body), len(data))
	}

	// The proxy's log: every write entering syd was replayed to ord, and
	// syd served the rest of the reads itself.
	var writes, replayedWrites, readsInSyd int
	for _, h := range proxy.Hops() {
		switch {
		case h.Method == "POST" && h.Region == "syd" && h.Path == "/api/notes":
			writes++
			if h.ReplayTo != "ord" {
				t.Errorf("a note written in syd was answered %d without a replay", h.Status)
			}
		case h.Method == "POST" && h.Region == "ord":
			replayedWrites++
		case h.Method == "GET" && h.Region == "syd" && h.ReplayTo == "" && strings.HasPrefix(h.Path, "/api/notes"):
			readsInSyd++
		}
	}
	if writes != 5+clients*pairs || replayedWrites != writes {
		t.Errorf("%d notes written in syd, %d replayed to ord; want %d of each", writes, replayedWrites, 5+clients*pairs)
	}
	if readsInSyd < 6 {
		t.Errorf("syd served %d reads of notes itself, want at least the 6 without a token", readsInSyd)
	}

	// What syd tells about itself.
	storage := inSyd("GET", "/api/storage", "", nil)
	expect(t, "/api/storage in syd", storage, 200)
	var described struct{ Region map[string]string }
	json.Unmarshal(storage.body, &described)
	d := described.Region
	if d["region"] != "syd" || d["primary_region"] != "ord" || !strings.Contains(d["reads"], "replica") {
		t.Errorf("/api/storage's region in syd: %v, want region syd, primary_region ord, reads on the replica", d)
	}
	if _, err := strconv.ParseFloat(d["replica_lag_seconds"], 64); err != nil {
		t.Errorf("replica_lag_seconds is %q, want a number", d["replica_lag_seconds"])
	}
	if _, err := strconv.ParseUint(d["replica_lag_bytes"], 10, 64); err != nil {
		t.Errorf("replica_lag_bytes is %q, want a number", d["replica_lag_bytes"])
	}
	var inOrd struct{ Region map[string]string }
	json.Unmarshal(front.do(t, "GET", "/api/storage", "", nil, testenv.EntryRegionHeader, "ord").body, &inOrd)
	if d := inOrd.Region; d["region"] != "ord" || d["primary_region"] != "ord" || !strings.HasPrefix(d["reads"], "here") {
		t.Errorf("/api/storage's region in ord: %v, want region ord, primary_region ord, reads here", d)
	}
	metrics := string(inSyd("GET", "/metrics", "", nil).body)
	if n := metricIn(t, metrics, `flystorage_region_replays_total{reason="write"}`); n < float64(writes) {
		t.Errorf("syd's /metrics counts %v write replays, want at least %d", n, writes)
	}
	if n := metricIn(t, metrics, `flystorage_region_replica_waits_total{outcome="caught_up"}`) +
		metricIn(t, metrics, `flystorage_region_replica_waits_total{outcome="timeout"}`); n < clients*pairs {
		t.Errorf("syd's /metrics counts %v waits for the replica, want one for each of the %d reads with a token", n, clients*pairs)
	}

	// The page in syd shows where it runs.
	t.Run("Page", func(t *testing.T) {
		p := openPage(t, syd.url+"/")
		p.until(t, "the region panel is drawn", textOf("region-here")+` === "syd"`)
		text := p.text(t, "#panel-region") + p.text(t, "#panel-replication")
		for _, want := range []string{"in syd", "primary region is ord", "the replica at DATABASE_READ_URL", "Lag"} {
			if !strings.Contains(text, want) {
				t.Errorf("the page says %q, want %q in it", text, want)
			}
		}
		p.noProblems(t)
	})

	// The replica's own counters show the reads syd served. A session
	// publishes its counts when it ends, so syd's sessions on the replica
	// are ended first; syd reconnects when it needs them.
	if n := countRows(t, pair.ReplicaURL(), "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE backend_type = 'client backend' AND pid <> pg_backend_pid()"); n == 0 {
		t.Error("syd holds no session on the replica")
	}
	scans := pair.WaitReplicaScans(t, "notes", int64(readsInSyd))
	t.Logf("syd served %d reads of notes, the replica counts %d scans of notes; %v reads with a token were replayed to ord",
		readsInSyd, scans, metricIn(t, metrics, `flystorage_region_replays_total{reason="behind"}`))

	// A stopped replica: syd reads the primary instead, and counts it.
	before := metricIn(t, string(inSyd("GET", "/metrics", "", nil).body), "flystorage_region_read_fallbacks_total")
	pair.Replica.Stop(t)
	expect(t, "a note read through syd with its replica down", inSyd("GET", "/api/notes/"+ids[0], "", nil), 200)
	expect(t, "notes listed through syd with its replica down", inSyd("GET", "/api/notes", "", nil), 200)
	metrics = string(inSyd("GET", "/metrics", "", nil).body)
	if n := metricIn(t, metrics, "flystorage_region_read_fallbacks_total"); n <= before {
		t.Errorf("syd's /metrics counts %v reads sent to the primary, %v before the replica stopped; want more", n, before)
	}
}

// TestRegionSQLiteReplaysEverything: SQLite lives on one machine's volume,
// so an app in syd with its primary region ord answers nothing itself.
func TestRegionSQLiteReplaysEverything(t *testing.T) {
	machine := func(code string) *testApp {
		dir := t.TempDir()
		return startApp(t, map[string]string{"FLY_REGION": code, "PRIMARY_REGION": "ord",
			"DATABASE_PATH": filepath.Join(dir, "app.db"), "BLOB_DIR": filepath.Join(dir, "files")})
	}
	ord, syd := machine("ord"), machine("syd")
	proxy := testenv.NewReplayProxy(t, map[string]string{"ord": ord.url, "syd": syd.url})
	front := &testApp{url: proxy.URL}

	expect(t, "a note in ord", ord.sendJSON(t, "POST", "/api/notes", `{"title":"kept in ord"}`), 201)
	r := front.do(t, "GET", "/api/notes", "", nil, testenv.EntryRegionHeader, "syd")
	expect(t, "the notes listed entering syd", r, 200)
	if !strings.Contains(string(r.body), "kept in ord") {
		t.Errorf("the notes listed entering syd: %s, want ord's note", r.body)
	}
	hops := proxy.Hops()
	if len(hops) != 2 || hops[0].Region != "syd" || hops[0].ReplayTo != "ord" || hops[1].Region != "ord" || hops[1].Status != 200 {
		t.Errorf("GET /api/notes entering syd went %+v, want syd replaying it to ord, and ord answering", hops)
	}
	// Asked directly, syd answers even /api/storage with a replay.
	if r := syd.get(t, "/api/storage"); r.header.Get(region.ReplayHeader) != "region=ord" {
		t.Errorf("/api/storage asked of syd itself: %d %s %s, want a replay to ord", r.status, r.header.Get(region.ReplayHeader), r.body)
	}
}

// writeThenReadInSyd creates a note through syd and reads it back at once
// with the consistency token the write returned.
func writeThenReadInSyd(base, title string) error {
	send := func(method, path, token, body string) (response, error) {
		req, _ := http.NewRequest(method, base+path, strings.NewReader(body))
		req.Header.Set(testenv.EntryRegionHeader, "syd")
		req.Header.Set("Content-Type", "application/json")
		if token != "" {
			req.Header.Set(region.TokenHeader, token)
		}
		res, err := client.Do(req)
		if err != nil {
			return response{}, err
		}
		defer res.Body.Close()
		b, err := io.ReadAll(res.Body)
		return response{status: res.StatusCode, header: res.Header, body: b}, err
	}
	w, err := send("POST", "/api/notes", "", fmt.Sprintf(`{"title":%q}`, title))
	if err != nil || w.status != 201 {
		return fmt.Errorf("creating %q: %v %d %s", title, err, w.status, w.body)
	}
	token := w.header.Get(region.TokenHeader)
	if token == "" {
		return fmt.Errorf("creating %q: no %s", title, region.TokenHeader)
	}
	r, err := send("GET", "/api/notes/"+w.id(), token, "")
	var note struct{ Title string }
	json.Unmarshal(r.body, &note)
	if err != nil || r.status != 200 || note.Title != title {
		return fmt.Errorf("reading %q back with token %s: %v %d %s", title, token, err, r.status, r.body)
	}
	return nil
}

// inSydUpload posts data as the multipart part "file", entering syd.
func inSydUpload(t *testing.T, front *testApp, name string, data []byte) response {
	t.Helper()
	var buf bytes.Buffer
	mw := multipart.NewWriter(&buf)
	part, _ := mw.CreateFormFile("file", name)
	part.Write(data)
	mw.Close()
	return front.do(t, "POST", "/api/files", mw.FormDataContentType(), &buf, testenv.EntryRegionHeader, "syd")
}

// countRows runs a query returning one number, as psql would.
func countRows(t *testing.T, url, sql string) int {
	t.Helper()
	var n int
	queryRow(t, url, sql, nil, &n)
	return n
}

func queryRow(t *testing.T, url, sql string, args []any, dst ...any) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	if err := conn.QueryRow(ctx, sql, args...).Scan(dst...); err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
}

// TestNoTokenWithoutRegions: a consistency token costs the primary a query
// per write, so an app that knows no regions (FLY_REGION or PRIMARY_REGION
// unset) answers writes without one.
func TestNoTokenWithoutRegions(t *testing.T) {
	a := startApp(t, map[string]string{"DATABASE_URL": testenv.PostgresURL(t), "MIGRATE_ON_START": "true"})
	r := a.sendJSON(t, "POST", "/api/notes", `{"title":"single region"}`)
	expect(t, "create", r, 201)
	if tok := r.header.Get(region.TokenHeader); tok != "" {
		t.Errorf("a write without regions carries %s: %q", region.TokenHeader, tok)
	}
}
