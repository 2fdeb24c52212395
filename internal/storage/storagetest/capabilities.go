package storagetest

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net/http"
	"strings"
	"testing"
	"testing/iotest"
	"time"

	"github.com/example/flystorage/internal/storage"
)

// This file holds the tests of the optional capabilities (capability.go
// and storage.go in internal/storage). Each is a row of databaseTests or
// blobTests that checks the capability's contract when the store, or one
// it wraps, has it, and has nothing to check otherwise.

// testWritePosition: a write moves the primary's write position forward,
// so a token taken after it is past every earlier one.
func testWritePosition(t *testing.T, db storage.Database) {
	w, ok := storage.Capability[storage.WritePositioner](db)
	if !ok {
		return
	}
	before, err := w.WritePosition(t.Context())
	if err != nil {
		t.Fatalf("WritePosition: %v", err)
	}
	mustCreate(t, db, newNote("moves the log", ""))
	after, err := w.WritePosition(t.Context())
	if err != nil || after <= before {
		t.Errorf("WritePosition after a write = %s, %v; want past %s", after, err, before)
	}
}

// testReplayPosition: on the primary the suite runs against, every
// committed write is replayed, so the replay position is at or past the
// write position taken after a write, and never goes back.
func testReplayPosition(t *testing.T, db storage.Database) {
	r, ok := storage.Capability[storage.ReplayPositioner](db)
	if !ok {
		return
	}
	first, err := r.ReplayPosition(t.Context())
	if err != nil {
		t.Fatalf("ReplayPosition: %v", err)
	}
	mustCreate(t, db, newNote("replayed", ""))
	var written storage.Position
	if w, ok := storage.Capability[storage.WritePositioner](db); ok {
		if written, err = w.WritePosition(t.Context()); err != nil {
			t.Fatalf("WritePosition: %v", err)
		}
	}
	got, err := r.ReplayPosition(t.Context())
	if err != nil || got < first || got < written {
		t.Errorf("ReplayPosition after a write = %s, %v; want at or past %s (before it) and %s (the write)", got, err, first, written)
	}
}

// testReplayLag: a primary is never behind itself.
func testReplayLag(t *testing.T, db storage.Database) {
	l, ok := storage.Capability[storage.ReplayLagger](db)
	if !ok {
		return
	}
	if lag, err := l.ReplayLag(t.Context()); err != nil || lag != 0 {
		t.Errorf("ReplayLag on a primary = %v, %v; want 0", lag, err)
	}
}

// testPoolStats: each pool has a name of its own and a positive size that
// its open connections stay within, and its counters never go back.
func testPoolStats(t *testing.T, db storage.Database) {
	p, ok := storage.Capability[storage.PoolReporter](db)
	if !ok {
		return
	}
	before := p.PoolStats()
	if len(before) == 0 {
		t.Fatal("PoolStats reported no pool")
	}
	if _, _, err := db.ListNotes(t.Context(), storage.Page{Limit: 1}); err != nil {
		t.Fatal(err)
	}
	after := p.PoolStats()
	if len(after) != len(before) {
		t.Fatalf("PoolStats reported %d pools, then %d", len(before), len(after))
	}
	names := map[string]bool{}
	for i, s := range after {
		if s.Name == "" || names[s.Name] || s.Name != before[i].Name {
			t.Errorf("pool %d is named %q (before %q); want a name of its own that stays", i, s.Name, before[i].Name)
		}
		names[s.Name] = true
		if s.Max <= 0 || s.InUse < 0 || s.Idle < 0 || s.InUse+s.Idle > s.Max {
			t.Errorf("pool %s: %d in use and %d idle of %d; want a positive size that holds them", s.Name, s.InUse, s.Idle, s.Max)
		}
		b := before[i]
		if s.Acquires < b.Acquires || s.Waits < b.Waits || s.WaitTotal < b.WaitTotal {
			t.Errorf("pool %s: counters went back from %+v to %+v", s.Name, b, s)
		}
	}
}

// RunReplicaReader checks the replica-read contract (storage.ServedByReplica)
// on db with ctx, which must read the primary: a read made with it
// returns the write just committed, never an older version, and is not
// reported as served by a replica.
func RunReplicaReader(t *testing.T, ctx context.Context, db storage.Database) {
	t.Helper()
	n := newNote("before", "")
	mustCreate(t, db, n)
	n.Title = "after"
	if _, err := db.UpdateNote(ctx, n); err != nil {
		t.Fatalf("UpdateNote: %v", err)
	}
	watched, fromReplica := storage.WatchReplicaReads(ctx)
	got, err := db.GetNote(watched, n.ID)
	if err != nil || got.Title != "after" {
		t.Errorf("a read of the primary = %q, %v; want the write just committed", got.Title, err)
	}
	if fromReplica() {
		t.Error("a read of the primary was reported as served by the replica")
	}
}

// testPresigner puts through a presigned PUT with the headers it names,
// reads back through a presigned GET as the named attachment, and copies.
func testPresigner(t *testing.T, b storage.Blobs) {
	p, ok := storage.Capability[storage.Presigner](b)
	if !ok {
		return
	}
	ctx := t.Context()
	data := randomBytes(10 << 10)
	k := blobKey("presigned")
	url, headers, err := p.PresignPut(ctx, k, "text/plain", int64(len(data)), time.Minute)
	if err != nil {
		t.Fatalf("PresignPut: %v", err)
	}
	if status := send(t, "PUT", url, headers, data); status != http.StatusOK {
		t.Fatalf("presigned PUT = %d, want 200", status)
	}
	assertBlob(t, b, k, data)
	// The URL uploads exactly size bytes: another length is refused.
	if status := send(t, "PUT", url, headers, data[1:]); status < 400 {
		t.Errorf("presigned PUT of %d bytes, signed for %d = %d, want a refusal", len(data)-1, len(data), status)
	}

	get, err := p.PresignGet(ctx, k, time.Minute, "report final.txt")
	if err != nil {
		t.Fatalf("PresignGet: %v", err)
	}
	resp, err := http.Get(get)
	if err != nil {
		t.Fatal(err)
	}
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if cd := resp.Header.Get("Content-Disposition"); resp.StatusCode != 200 || err != nil || !bytes.Equal(body, data) ||
		!strings.Contains(cd, "attachment") || !strings.Contains(cd, "report final.txt") {
		t.Errorf("presigned GET = %d, %d bytes, %v, Content-Disposition %q; want 200, the blob, as attachment report final.txt", resp.StatusCode, len(body), err, cd)
	}

	dst := blobKey("copy")
	if err := p.Copy(ctx, k, dst); err != nil {
		t.Fatalf("Copy: %v", err)
	}
	assertBlob(t, b, dst, data)
}

// send makes one request with body and headers, and returns its status.
func send(t *testing.T, method, url string, headers map[string]string, body []byte) int {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), method, url, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range headers {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode
}

// testMultipartAborter: AbortStale leaves finished blobs alone, and a Put
// that failed past its first part left no upload for it to abort.
func testMultipartAborter(t *testing.T, b storage.Blobs) {
	a, ok := storage.Capability[storage.MultipartAborter](b)
	if !ok {
		return
	}
	ctx := t.Context()
	prefix := blobKey("")
	kept := prefix + "kept"
	if err := b.Put(ctx, kept, strings.NewReader("done"), 4, "text/plain"); err != nil {
		t.Fatal(err)
	}
	failed := io.MultiReader(bytes.NewReader(randomBytes(9<<20)), iotest.ErrReader(errors.New("client went away")))
	if err := b.Put(ctx, prefix+"failed", failed, -1, "text/plain"); err == nil {
		t.Fatal("Put of a failing reader succeeded")
	}
	n, err := a.AbortStale(ctx, prefix, time.Now().Add(time.Hour))
	if err != nil || n != 0 {
		t.Errorf("AbortStale after a failed Put = %d, %v; want 0: the Put aborts its own upload", n, err)
	}
	assertBlob(t, b, kept, []byte("done"))
}
