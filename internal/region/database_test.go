package region_test

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/example/flystorage/internal/region"
	"github.com/example/flystorage/internal/storage"
	"github.com/example/flystorage/internal/storage/postgres"
	"github.com/example/flystorage/internal/storage/storagetest"
	"github.com/example/flystorage/internal/testenv"
)

// stores opens a throwaway primary (migrated) and its streaming replica.
func stores(t *testing.T) (*testenv.ReplicaPair, *postgres.Store, *postgres.Store) {
	t.Helper()
	pair := testenv.Replication(t)
	ctx := context.Background()
	primary, err := postgres.Open(ctx, pair.PrimaryURL(), postgres.Options{Migrate: true})
	if err != nil {
		t.Fatalf("opening the primary: %v", err)
	}
	t.Cleanup(func() { primary.Close() })
	pair.WaitReplayed(t) // the replica has the schema
	replica, err := postgres.Open(ctx, pair.ReplicaURL(), postgres.Options{})
	if err != nil {
		t.Fatalf("opening the replica: %v", err)
	}
	t.Cleanup(func() { replica.Close() })
	return pair, primary, replica
}

func note(title string) storage.Note {
	now := storage.Now()
	return storage.Note{ID: storage.NewID(), Title: title, CreatedAt: now, UpdatedAt: now}
}

func TestReplicaReadsYourWrites(t *testing.T) {
	pair, primary, replica := stores(t)
	ctx := context.Background()
	db := region.NewDatabase(primary, replica, region.DatabaseOptions{})

	// Writes through the wrapper go to the primary: on the replica they
	// would fail as read-only.
	if err := replica.CreateNote(ctx, note("direct")); !errors.Is(err, storage.ErrReadOnly) {
		t.Fatalf("a write on the replica: got %v, want storage.ErrReadOnly (SQLSTATE 25006)", err)
	}
	before := pair.ReplicaScans(t, "notes")

	// Each write's token, waited for, makes the replica return the write,
	// though it applies every transaction 300ms late.
	rt := region.NewRouter(region.Options{Config: region.Config{Region: "syd", PrimaryRegion: "ord", Wait: 10 * time.Second},
		Primary: primary, Replica: replica})
	const n = 10
	for i := range n {
		nt := note("note")
		if err := db.CreateNote(ctx, nt); err != nil {
			t.Fatalf("write %d: %v", i, err)
		}
		token, err := primary.WritePosition(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if !waitThroughRouter(t, rt, token) {
			t.Fatalf("write %d: the replica did not reach %s within 10s", i, token)
		}
		got, err := db.GetNote(ctx, nt.ID)
		if err != nil || got.Title != "note" {
			t.Fatalf("read %d after waiting for %s: %v", i, token, err)
		}
	}
	if _, _, err := db.ListNotes(ctx, storage.Page{Limit: 5}); err != nil {
		t.Fatal(err)
	}
	storagetest.RunReplicaReader(t, region.WithPrimaryReads(ctx), db)
	// The replica's own statistics count every read. Its backends publish
	// them when they exit, or after up to 10s idle: close them.
	replica.Close()
	after := pair.WaitReplicaScans(t, "notes", before+n+1)
	t.Logf("the replica counted %d scans of notes for %d reads", after-before, n+1)
}

// waitThroughRouter sends a read carrying token through the router and
// reports whether it was served (true) rather than replayed.
func waitThroughRouter(t *testing.T, rt *region.Router, token storage.Position) bool {
	t.Helper()
	served := false
	h := rt.Wrap(httpHandler(func() { served = true }))
	w := get(h, "/api/notes/x", token.String())
	if !served && w.Header().Get(region.ReplayHeader) == "" {
		t.Fatalf("neither served nor replayed: %d %s", w.Code, w.Body)
	}
	return served
}

func TestReplicaPositionsAndLag(t *testing.T) {
	pair, primary, replica := stores(t)
	ctx := context.Background()
	if err := primary.CreateNote(ctx, note("x")); err != nil {
		t.Fatal(err)
	}
	written, err := primary.WritePosition(ctx)
	if err != nil || written == 0 {
		t.Fatalf("WritePosition: %v, %v", written, err)
	}
	if own, err := primary.ReplayPosition(ctx); err != nil || own < written {
		t.Errorf("ReplayPosition on a primary = %v, %v; want its own position, at least %v", own, err, written)
	}
	if lag, err := primary.ReplayLag(ctx); err != nil || lag != 0 {
		t.Errorf("ReplayLag on a primary = %v, %v; want 0", lag, err)
	}
	if _, err := replica.WritePosition(ctx); err == nil {
		t.Errorf("WritePosition on a replica succeeded")
	}
	pair.WaitReplayed(t)
	replayed, err := replica.ReplayPosition(ctx)
	if err != nil || replayed < written {
		t.Errorf("ReplayPosition on the caught-up replica = %v, %v; want at least %v", replayed, err, written)
	}
	if lag, err := replica.ReplayLag(ctx); err != nil || lag < 0 || lag > time.Minute {
		t.Errorf("ReplayLag = %v, %v", lag, err)
	}
	rt := region.NewRouter(region.Options{Config: region.Config{Region: "syd", PrimaryRegion: "ord"}, Primary: primary, Replica: replica})
	d := rt.Describe(ctx)
	if d["replica_lag_bytes"] == "unknown" || d["replica_lag_seconds"] == "unknown" {
		t.Errorf("Describe() = %v: want the lag in bytes and seconds", d)
	}
}

func TestReplicaDownFallsBackToPrimary(t *testing.T) {
	pair, primary, replica := stores(t)
	ctx := context.Background()
	var logs bytes.Buffer
	now := time.Now()
	m := region.NewMetrics()
	db := region.NewDatabase(primary, replica, region.DatabaseOptions{
		RetryAfter: time.Minute, Metrics: m, Now: func() time.Time { return now },
		Logger: slog.New(slog.NewTextHandler(&logs, nil)),
	})
	nt := note("kept")
	if err := db.CreateNote(ctx, nt); err != nil {
		t.Fatal(err)
	}
	pair.WaitReplayed(t)
	// storage.WatchReplicaReads: reads come from the replica unless marked.
	if !fromReplica(db, ctx, nt.ID) || fromReplica(db, region.WithPrimaryReads(ctx), nt.ID) {
		t.Errorf("a read's answer from the replica = %v, and %v marked WithPrimaryReads; want true and false",
			fromReplica(db, ctx, nt.ID), fromReplica(db, region.WithPrimaryReads(ctx), nt.ID))
	}

	pair.Replica.Stop(t)
	// A context marked for primary reads never tries the replica.
	untouched := region.NewMetrics()
	if _, _, err := region.NewDatabase(primary, replica, region.DatabaseOptions{Metrics: untouched}).
		ListNotes(region.WithPrimaryReads(ctx), storage.Page{Limit: 1}); err != nil {
		t.Fatal(err)
	}
	if got := fallbacks(t, untouched); got != 0 {
		t.Errorf("a read marked WithPrimaryReads tried the replica (%v fallbacks)", got)
	}
	for i := range 3 {
		if got, err := db.GetNote(ctx, nt.ID); err != nil || got.ID != nt.ID {
			t.Fatalf("read %d with the replica down: %v", i, err)
		}
	}
	if _, _, err := db.ListFiles(ctx, storage.Page{Limit: 1}); err != nil {
		t.Fatalf("ListFiles with the replica down: %v", err)
	}
	if n, err := db.CountNotes(ctx); err != nil || n != 1 {
		t.Errorf("CountNotes with the replica down = %d, %v; want the primary's 1", n, err)
	}
	if n, err := db.CountFiles(ctx); err != nil || n != 0 {
		t.Errorf("CountFiles with the replica down = %d, %v; want the primary's 0", n, err)
	}
	if n := strings.Count(logs.String(), "read replica"); n != 1 {
		t.Errorf("logged %d warnings, want one per interval:\n%s", n, logs.String())
	}
	if !strings.Contains(db.Describe()["reads"], "primary") {
		t.Errorf("Describe()[reads] = %q, want primary", db.Describe()["reads"])
	}
	storagetest.RunDescriber(t, db) // the primary's name, read through the wrapper
	if got := fallbacks(t, m); got != 6 {
		t.Errorf("fallbacks = %v, want 6", got)
	}
	if fromReplica(db, ctx, nt.ID) {
		t.Errorf("a read was marked as the replica's while reads fall back to the primary")
	}
	if _, err := db.GetNote(ctx, storage.NewID()); !errors.Is(err, storage.ErrNotFound) {
		t.Errorf("a missing note through the fallback: %v, want ErrNotFound", err)
	}

	// Back up, and once the interval passes, reads return to the replica.
	pair.Replica.Start(t)
	now = now.Add(2 * time.Minute)
	before := pair.ReplicaScans(t, "notes")
	if _, err := db.GetNote(ctx, nt.ID); err != nil {
		t.Fatalf("read with the replica back: %v", err)
	}
	if r := db.Describe()["reads"]; r != "replica" || !fromReplica(db, ctx, nt.ID) {
		t.Errorf("Describe()[reads] = %q and a read from the replica %v, want replica and true", r, fromReplica(db, ctx, nt.ID))
	}
	replica.Close() // its backends publish their statistics as they exit
	pair.WaitReplicaScans(t, "notes", before+1)
}

// TestSweepReadsThePrimary: the sweep removes objects no row names, so
// its lookups must see the primary's rows, never a replica behind it. The
// replica here is an empty database, a replica that has replayed nothing.
func TestSweepReadsThePrimary(t *testing.T) {
	ctx := context.Background()
	primary, _ := testenv.LocalStores(t)
	replica, _ := testenv.LocalStores(t)
	db := region.NewDatabase(primary, replica, region.DatabaseOptions{})
	id := storage.NewID()
	f := storage.File{ID: id, Name: "a", ContentType: "text/plain", Size: 1, SHA256: strings.Repeat("ab", 32),
		Key: "files/" + id, CreatedAt: storage.Now()}
	if err := db.CreateFile(ctx, f); err != nil {
		t.Fatal(err)
	}
	if _, err := db.GetFile(ctx, id); !errors.Is(err, storage.ErrNotFound) {
		t.Fatalf("GetFile through the wrapper = %v; want it read from the (empty) replica", err)
	}
	files, _, err := db.NamedKeys(ctx, []string{id})
	if err != nil || files[id] != f.Key {
		t.Errorf("NamedKeys through the wrapper = %v, %v; want the primary's row, naming %s", files, err, f.Key)
	}
}

// TestReplicaWaitsShareOnePoll: reads in a replica region waiting for a
// token the replica has not reached ask it how far it has replayed
// through one poller, so that twenty of them cost the replica the queries
// of one, about REPLICA_WAIT / 10ms. Replay is paused, so every read
// waits all of REPLICA_WAIT and is replayed. The test runs in a synctest
// bubble: its clock moves only while every goroutine waits on it, never
// while a query is on its way to Postgres, so the count does not depend
// on how fast this machine answers.
func TestReplicaWaitsShareOnePoll(t *testing.T) {
	pair := testenv.Replication(t)
	ctx := context.Background()
	primary, err := postgres.Open(ctx, pair.PrimaryURL(), postgres.Options{Migrate: true})
	if err != nil {
		t.Fatalf("opening the primary: %v", err)
	}
	t.Cleanup(func() { primary.Close() })
	pair.WaitReplayed(t)
	execSQL(t, pair.ReplicaURL(), "SELECT pg_wal_replay_pause()")
	t.Cleanup(func() { execSQL(t, pair.ReplicaURL(), "SELECT pg_wal_replay_resume()") })
	if err := primary.CreateNote(ctx, note("unseen")); err != nil {
		t.Fatal(err)
	}
	token, err := primary.WritePosition(ctx)
	if err != nil {
		t.Fatal(err)
	}

	const readers, wait, poll = 20, 500 * time.Millisecond, 10 * time.Millisecond
	synctest.Test(t, func(t *testing.T) {
		// The bubble's own pool: connections made in it belong to it.
		replica, err := postgres.Open(ctx, pair.ReplicaURL(), postgres.Options{})
		if err != nil {
			t.Fatalf("opening the replica: %v", err)
		}
		defer replica.Close()
		counted := &countingReplica{ReplayPositioner: replica}
		rt := region.NewRouter(region.Options{Config: region.Config{Region: "syd", PrimaryRegion: "ord", Wait: wait},
			Primary: primary, Replica: counted, Poll: poll})
		h := rt.Wrap(httpHandler(func() {}))
		var wg sync.WaitGroup
		var replayed atomic.Int32
		for range readers {
			wg.Go(func() {
				if w := get(h, "/api/notes/x", token.String()); w.Header().Get(region.ReplayHeader) != "" {
					replayed.Add(1)
				}
			})
		}
		wg.Wait()
		if n := replayed.Load(); n != readers {
			t.Fatalf("%d of %d reads were replayed, want all: the replica is paused before %s", n, readers, token)
		}
		// One question when the wait starts and one every poll until
		// REPLICA_WAIT passes, whoever waits.
		if n, most := counted.calls.Load(), int64(wait/poll)+2; n > most {
			t.Errorf("%d reads waiting at once asked the replica %d times, want at most %d (one poller's)", readers, n, most)
		} else {
			t.Logf("%d reads waiting %s at once asked the replica %d times", readers, wait, n)
		}
	})
}

// countingReplica counts the replica's answers about its replay position.
type countingReplica struct {
	storage.ReplayPositioner
	calls atomic.Int64
}

func (c *countingReplica) ReplayPosition(ctx context.Context) (storage.Position, error) {
	c.calls.Add(1)
	return c.ReplayPositioner.ReplayPosition(ctx)
}

// execSQL runs one statement on url on a connection of its own.
func execSQL(t *testing.T, url, sql string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatalf("connecting to %s: %v", url, err)
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, sql); err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
}

// fromReplica reads note id through db and reports whether db marked the
// read as the replica's (storage.WatchReplicaReads).
func fromReplica(db *region.Database, ctx context.Context, id string) bool {
	ctx, served := storage.WatchReplicaReads(ctx)
	db.GetNote(ctx, id)
	return served()
}

// TestCountsReadTheReplica: counts are reads, so they go to the replica
// (here an empty database, a replica that has replayed nothing), and to
// the primary when the context asks for it.
func TestCountsReadTheReplica(t *testing.T) {
	ctx := context.Background()
	primary, _ := testenv.LocalStores(t)
	replica, _ := testenv.LocalStores(t)
	db := region.NewDatabase(primary, replica, region.DatabaseOptions{})
	if err := db.CreateNote(ctx, note("on the primary")); err != nil {
		t.Fatal(err)
	}
	if n, err := db.CountNotes(ctx); err != nil || n != 0 {
		t.Errorf("CountNotes through the wrapper = %d, %v; want the (empty) replica's 0", n, err)
	}
	if n, err := db.CountNotes(region.WithPrimaryReads(ctx)); err != nil || n != 1 {
		t.Errorf("CountNotes WithPrimaryReads = %d, %v; want the primary's 1", n, err)
	}
}
