package main

import (
	"database/sql"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/example/flystorage/internal/testenv"
)

// TestReplicationFollowerReadsWhole: a follower never serves part of a
// transaction. The writer's database gets transactions that retitle all
// of its notes at once (bodies of 4000 bytes, so a transaction rewrites
// hundreds of pages), and the follower, which applies them in the same
// process that serves its reads, lists the notes in a tight loop: every
// list must show one title.
func TestReplicationFollowerReadsWhole(t *testing.T) {
	const notes = 200
	bucket := testenv.S3Bucket(t)
	envA := replicaEnv(t, bucket, "machine-a")
	envB := replicaEnv(t, bucket, "machine-b")
	for _, env := range []map[string]string{envA, envB} {
		env["FLY_REGION"], env["PRIMARY_REGION"], env["SQLITE_SYNC_INTERVAL"] = "ord", "ord", "20ms"
	}
	a := startCrashProc(t, envA)
	body := strings.Repeat("x", 4000)
	for i := range notes {
		if _, ok := writeNote(a.base, "gen 0", body); !ok {
			t.Fatalf("writing note %d", i)
		}
	}
	waitReplicated(t, a.base)
	b := startCrashProc(t, envB)
	if st := storageStatus(t, b.base); st.Role != "follower" {
		t.Fatalf("machine-b is %q, want a follower", st.Role)
	}

	// The writer: another connection to machine-a's database, which
	// machine-a's Litestream replicates like any of its own writes.
	db, err := sql.Open("sqlite", "file:"+envA["DATABASE_PATH"]+"?_pragma=busy_timeout(10000)")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	stop, written := make(chan struct{}), make(chan error, 1)
	go func() {
		for gen := 1; ; gen++ {
			select {
			case <-stop:
				written <- nil
				return
			default:
			}
			if _, err := db.Exec("UPDATE notes SET title = ?", fmt.Sprintf("gen %d", gen)); err != nil {
				written <- err
				return
			}
		}
	}()

	// The reader: until it has seen 30 generations.
	seen, reads, torn := map[string]bool{}, 0, 0
	deadline := time.Now().Add(2 * time.Minute)
	for len(seen) < 30 && time.Now().Before(deadline) {
		titles, err := listTitles(b.base, notes)
		reads++
		if err != nil {
			torn++
			if torn <= 5 {
				t.Errorf("read %d: %v", reads, err)
			}
			continue
		}
		seen[titles[0]] = true
		for _, title := range titles {
			if title != titles[0] {
				torn++
				if torn <= 5 {
					t.Errorf("read %d saw part of a transaction: %q and %q in one list", reads, titles[0], title)
				}
				break
			}
		}
	}
	close(stop)
	if err := <-written; err != nil {
		t.Fatalf("writing: %v", err)
	}
	t.Logf("%d reads on the follower, %d generations seen, %d torn", reads, len(seen), torn)
	if len(seen) < 30 {
		t.Fatalf("the follower showed %d generations in 2 minutes, want 30: %+v", len(seen), storageStatus(t, b.base))
	}
}

// listTitles lists the newest n notes on base and returns their titles.
func listTitles(base string, n int) ([]string, error) {
	res, err := crashClient.Get(fmt.Sprintf("%s/api/notes?limit=%d", base, n))
	if err != nil {
		return nil, err
	}
	defer res.Body.Close()
	var out struct{ Notes []struct{ Title string } }
	if err := json.NewDecoder(res.Body).Decode(&out); err != nil {
		return nil, err
	}
	if res.StatusCode != http.StatusOK || len(out.Notes) != n {
		return nil, fmt.Errorf("%d with %d notes, want 200 with %d", res.StatusCode, len(out.Notes), n)
	}
	titles := make([]string, len(out.Notes))
	for i, note := range out.Notes {
		titles[i] = note.Title
	}
	return titles, nil
}
