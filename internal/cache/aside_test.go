package cache

import (
	"context"
	"fmt"
	"math/rand/v2"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/example/flystorage/internal/testenv"
)

func TestFillHitInvalidate(t *testing.T) {
	url := testenv.RedisURL(t)
	prefix := testPrefix(t, url)
	a, b := open(t, url, prefix, nil), open(t, url, prefix, nil)
	ctx := t.Context()

	raw := rawClient(t, url)
	if _, tok, ok := a.Get(ctx, Note, "n1"); ok || tok.lease == "" {
		t.Fatalf("first Get: hit %v, token %+v", ok, tok)
	} else if ttl, err := raw.PTTL(ctx, a.entryKey(Note, "n1")).Result(); err != nil || ttl <= 0 || ttl > leaseTTL {
		t.Errorf("the lease's PTTL is %v, %v; want up to %v", ttl, err, leaseTTL)
	} else {
		a.Fill(ctx, Note, "n1", tok, []byte(`{"v":1}`))
	}
	// The value lives CACHE_TTL.
	if ttl, err := raw.PTTL(ctx, a.entryKey(Note, "n1")).Result(); err != nil || ttl <= leaseTTL || ttl > DefaultCacheTTL {
		t.Errorf("the value's PTTL is %v, %v; want up to %v", ttl, err, DefaultCacheTTL)
	}
	for name, c := range map[string]*Cache{"a": a, "b": b} {
		if v, _, ok := c.Get(ctx, Note, "n1"); !ok || string(v) != `{"v":1}` {
			t.Errorf("machine %s: Get after Fill = %q, %v", name, v, ok)
		}
	}
	if _, _, ok := a.Get(ctx, File, "n1"); ok {
		t.Errorf("a file hit on a note's entry")
	}
	b.Invalidate(ctx, Note, "n1")
	if v, _, ok := a.Get(ctx, Note, "n1"); ok {
		t.Errorf("Get after Invalidate on another machine hit %q", v)
	}
	if got := value(t, a.metrics.hits.WithLabelValues("note")); got != 1 {
		t.Errorf("machine a counted %v hits, want 1", got)
	}
	if got := value(t, a.metrics.misses.WithLabelValues("note")); got != 2 {
		t.Errorf("machine a counted %v note misses, want 2", got)
	}
}

// TestFillLosesToInvalidate plays the classic cache-aside race step by
// step, with a reader and a writer on different machines: the reader
// misses and reads the old row; the writer commits and invalidates; the
// reader's fill of the old row must not land.
func TestFillLosesToInvalidate(t *testing.T) {
	url := testenv.RedisURL(t)
	prefix := testPrefix(t, url)
	reader, writer := open(t, url, prefix, nil), open(t, url, prefix, nil)
	ctx := t.Context()

	for _, tc := range []struct {
		name string
		// between runs after the reader's database read, before its fill.
		between func(t *testing.T, id string)
	}{
		{"invalidate", func(t *testing.T, id string) {
			writer.Invalidate(ctx, Note, id)
		}},
		{"invalidate, then another reader misses", func(t *testing.T, id string) {
			writer.Invalidate(ctx, Note, id)
			if _, tok, ok := writer.Get(ctx, Note, id); ok || tok.lease == "" {
				t.Fatalf("second reader: hit %v, token %+v", ok, tok)
			}
		}},
		{"another reader joins the lease, then invalidate", func(t *testing.T, id string) {
			_, tok, _ := writer.Get(ctx, Note, id)
			writer.Invalidate(ctx, Note, id)
			writer.Fill(ctx, Note, id, tok, []byte("old"))
		}},
		{"flush", func(t *testing.T, id string) {
			if err := writer.Flush(ctx); err != nil {
				t.Fatal(err)
			}
		}},
		{"epoch moves", func(t *testing.T, id string) {
			seq := writer.stale.next()
			writer.stale.mu.Lock()
			writer.stale.overflowAt = seq
			writer.stale.mu.Unlock()
			if !writer.retryInvalidations(ctx) {
				t.Fatal("moving the epoch failed")
			}
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			id := testenv.RandomHex(4)
			_, tok, ok := reader.Get(ctx, Note, id)
			if ok || tok.lease == "" {
				t.Fatalf("reader: hit %v, token %+v", ok, tok)
			}
			old := []byte("old") // what the reader read from the database
			tc.between(t, id)    // the writer commits "new" and invalidates
			reader.Fill(ctx, Note, id, tok, old)
			for name, c := range map[string]*Cache{"reader": reader, "writer": writer} {
				if v, _, ok := c.Get(ctx, Note, id); ok {
					t.Errorf("%s's machine read %q after the invalidation", name, v)
				}
			}
		})
	}

	t.Run("a fill with no race lands", func(t *testing.T) {
		id := testenv.RandomHex(4)
		_, tok, _ := reader.Get(ctx, Note, id)
		reader.Fill(ctx, Note, id, tok, []byte("new"))
		if v, _, ok := writer.Get(ctx, Note, id); !ok || string(v) != "new" {
			t.Errorf("Get = %q, %v; want new", v, ok)
		}
	})
	t.Run("flush drops cached values", func(t *testing.T) {
		id := testenv.RandomHex(4)
		_, tok, _ := reader.Get(ctx, Note, id)
		reader.Fill(ctx, Note, id, tok, []byte("v"))
		if err := writer.Flush(ctx); err != nil {
			t.Fatal(err)
		}
		if v, _, ok := reader.Get(ctx, Note, id); ok {
			t.Errorf("Get after Flush = %q", v)
		}
	})
	t.Run("a token fills only its own entry", func(t *testing.T) {
		id := testenv.RandomHex(4)
		_, tok, _ := reader.Get(ctx, Note, id)
		reader.Fill(ctx, File, id, tok, []byte("wrong"))
		if v, _, ok := writer.Get(ctx, File, id); ok {
			t.Errorf("a note's token filled a file: %q", v)
		}
	})
}

// fakeDB is a database of versioned rows, and the highest version of each
// whose write a client has seen succeed.
type fakeDB struct {
	mu    sync.RWMutex
	rows  map[string]int
	acked map[string]*atomic.Int64
}

func newFakeDB(ids []string) *fakeDB {
	db := &fakeDB{rows: map[string]int{}, acked: map[string]*atomic.Int64{}}
	for _, id := range ids {
		db.acked[id] = new(atomic.Int64)
	}
	return db
}

func (db *fakeDB) read(id string) int {
	db.mu.RLock()
	defer db.mu.RUnlock()
	return db.rows[id]
}

func (db *fakeDB) write(id string) int {
	db.mu.Lock()
	defer db.mu.Unlock()
	db.rows[id]++
	return db.rows[id]
}

// ack records that a client saw version v of id written.
func (db *fakeDB) ack(id string, v int) {
	a := db.acked[id]
	for old := a.Load(); int64(v) > old && !a.CompareAndSwap(old, int64(v)); old = a.Load() {
	}
}

// TestConcurrentReadersAndWriters runs writers and readers on two machines
// over a few hot ids: a reader must never see a version older than one
// whose write had been acknowledged before the read began.
func TestConcurrentReadersAndWriters(t *testing.T) {
	url := testenv.RedisURL(t)
	prefix := testPrefix(t, url)
	machines := []*Cache{open(t, url, prefix, nil), open(t, url, prefix, nil)}
	ids := []string{"a", "b", "c"}
	db := newFakeDB(ids)
	const workers, opsEach = 8, 400

	var wg sync.WaitGroup
	var stale atomic.Int64
	for w := range workers {
		wg.Go(func() {
			r := rand.New(rand.NewPCG(uint64(w), 1))
			for range opsEach {
				c := machines[r.IntN(len(machines))]
				id := ids[r.IntN(len(ids))]
				if r.IntN(5) == 0 { // a write
					v := db.write(id)
					c.Invalidate(t.Context(), Note, id)
					db.ack(id, v)
					continue
				}
				seen := db.acked[id].Load()
				got, err := Read(t.Context(), c, Note, id, func(context.Context) (int, error) { return db.read(id), nil })
				if err != nil {
					t.Error(err)
					return
				}
				if int64(got) < seen {
					stale.Add(1)
					t.Errorf("read version %d of %s after version %d was acknowledged", got, id, seen)
				}
			}
		})
	}
	wg.Wait()
	var hits float64
	for _, c := range machines {
		hits += value(t, c.metrics.hits.WithLabelValues("note"))
		if e := value(t, c.metrics.errors.WithLabelValues("get")); e > 0 {
			t.Logf("%v reads failed (timeouts on a busy machine)", e)
		}
	}
	if hits == 0 {
		t.Errorf("no read was a hit: the test proved nothing about the cache")
	}
	t.Logf("%d operations, %v hits, %d stale", workers*opsEach, hits, stale.Load())
}

// TestRedisKilledMidRun kills Redis while readers and writers keep going:
// every call still returns within its bound, reads answer from the
// database, and no error reaches the caller.
func TestRedisKilledMidRun(t *testing.T) {
	srv := testenv.StartRedis(t)
	prefix := testPrefix(t, srv.URL())
	c := open(t, srv.URL(), prefix, map[string]string{"REDIS_TIMEOUT": "50ms"})
	db := newFakeDB([]string{"x", "y"})

	var ops atomic.Int64
	running, killed := make(chan struct{}), make(chan struct{})
	var wg sync.WaitGroup
	for w := range 4 {
		wg.Go(func() {
			r := rand.New(rand.NewPCG(uint64(w), 2))
			afterKill := 0
			for afterKill < 100 {
				select {
				case <-killed:
					afterKill++
				default:
				}
				id := []string{"x", "y"}[r.IntN(2)]
				within(t, time.Second, "a call with Redis dying", func() {
					if r.IntN(4) == 0 {
						v := db.write(id)
						c.Invalidate(t.Context(), Note, id)
						db.ack(id, v)
						return
					}
					seen := db.acked[id].Load()
					got, err := Read(t.Context(), c, Note, id, func(context.Context) (int, error) { return db.read(id), nil })
					if err != nil || int64(got) < seen {
						t.Errorf("Read = %d, %v; acknowledged %d", got, err, seen)
					}
				})
				if ops.Add(1) == 200 {
					close(running)
				}
			}
		})
	}
	select {
	case <-running:
	case <-time.After(30 * time.Second):
		t.Fatal("200 operations took more than 30s")
	}
	srv.Kill(t)
	close(killed)
	wg.Wait()
	var errs float64
	for _, op := range []string{"get", "fill", "invalidate"} {
		errs += value(t, c.metrics.errors.WithLabelValues(op))
	}
	if errs == 0 {
		t.Error("no Redis error was counted after the kill")
	}
	if err := c.Ping(t.Context()); err == nil {
		t.Error("Ping succeeded with Redis dead")
	} else if !strings.Contains(err.Error(), fmt.Sprint(srv.Port)) {
		t.Errorf("Ping's error %q does not name the server", err)
	}
}

// TestFailedInvalidation: a write commits while Redis cannot be reached,
// so its invalidation fails. This machine must not serve the old entry,
// not while Redis is away, and not after it returns with the entry still
// in it; the retry then deletes it for every machine.
func TestFailedInvalidation(t *testing.T) {
	srv := testenv.StartRedis(t)
	prefix := testPrefix(t, srv.URL())
	env := map[string]string{"REDIS_TIMEOUT": "200ms"}
	a, b := open(t, srv.URL(), prefix, env), open(t, srv.URL(), prefix, env)
	ctx := t.Context()

	_, tok, _ := a.Get(ctx, Note, "n")
	a.Fill(ctx, Note, "n", tok, []byte("v1"))
	if v, _, ok := b.Get(ctx, Note, "n"); !ok || string(v) != "v1" {
		t.Fatalf("Get = %q, %v; want v1 cached", v, ok)
	}

	srv.Pause(t)
	// The database now holds v2; a's invalidation cannot reach Redis.
	within(t, 2*time.Second, "Invalidate with Redis paused", func() { a.Invalidate(ctx, Note, "n") })
	if got := value(t, a.metrics.errors.WithLabelValues("invalidate")); got != 1 {
		t.Fatalf("invalidate errors = %v, want 1", got)
	}
	if v, tok, ok := a.Get(ctx, Note, "n"); ok || tok != (Token{}) {
		t.Errorf("Get while the invalidation is pending: %q, %v, token %+v", v, ok, tok)
	}
	srv.Resume(t)
	// Redis is back with v1 in it; until the retry lands, a bypasses it.
	if v, tok, ok := a.Get(ctx, Note, "n"); ok || tok != (Token{}) {
		t.Errorf("Get after Redis returned, before the retry: %q, %v, token %+v", v, ok, tok)
	}
	if got := value(t, a.metrics.bypassed.WithLabelValues("note")); got < 2 {
		t.Errorf("bypassed = %v, want 2 or more", got)
	}
	if !a.retryInvalidations(ctx) {
		t.Fatal("the retry failed with Redis back")
	}
	for name, c := range map[string]*Cache{"a": a, "b": b} {
		if v, tok, ok := c.Get(ctx, Note, "n"); ok || tok.lease == "" {
			t.Errorf("machine %s after the retry: %q, %v, token %+v; want a miss with a lease", name, v, ok, tok)
		}
	}
}

// TestRetryInBackground: the background loop retries a failed
// invalidation by itself once Redis answers.
func TestRetryInBackground(t *testing.T) {
	srv := testenv.StartRedis(t)
	prefix := testPrefix(t, srv.URL())
	c := open(t, srv.URL(), prefix, map[string]string{"REDIS_TIMEOUT": "200ms"})
	srv.Pause(t)
	c.Invalidate(t.Context(), File, "f")
	srv.Resume(t)
	if !testenv.Eventually(10*time.Second, func() bool { return !c.stale.pending() }) {
		t.Fatal("the failed invalidation was not retried within 10s")
	}
	if _, tok, _ := c.Get(t.Context(), File, "f"); tok.lease == "" {
		t.Error("the cache is still bypassed after the retry")
	}
}

func TestStaleSet(t *testing.T) {
	var s staleSet
	s.init()
	early := s.begin("k")
	late := s.begin("k")
	s.end("k", late, false) // the later invalidation fails...
	s.end("k", early, true) // ...an earlier one's success does not clear it
	if !s.bypass("k") || !s.pending() {
		t.Fatal("an older success cleared a newer failure")
	}
	retry := s.begin("k")
	s.end("k", retry, true)
	if s.bypass("k") || s.pending() || len(s.keys) != 0 {
		t.Fatalf("a newer success left %+v", s.keys)
	}

	// Past maxStale failures, everything is bypassed until the epoch
	// moves.
	for i := range maxStale + 1 {
		k := strconv.Itoa(i)
		s.end(k, s.begin(k), false)
	}
	if !s.bypass("never-written") {
		t.Fatal("overflow does not bypass every key")
	}
	if keys, overflow := s.failed(); len(keys) != maxStale || !overflow {
		t.Fatalf("failed() = %d keys, %v", len(keys), overflow)
	}
	s.clearBefore(s.next())
	if s.pending() || s.bypass("1") || len(s.keys) != 0 {
		t.Fatalf("moving the epoch left %d keys, overflow %d", len(s.keys), s.overflowAt)
	}
}
