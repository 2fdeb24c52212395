package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/example/flystorage/internal/app"
	"github.com/example/flystorage/internal/cache"
	"github.com/example/flystorage/internal/service"
	"github.com/example/flystorage/internal/storage"
	"github.com/example/flystorage/internal/testenv"
)

// These tests run two app processes' worth of the app ("machines" A and
// B) on one Postgres schema, one directory of files and one private
// redis-server, as machines on Fly share a database, a bucket and an
// Upstash Redis.

const redisTestToken = "redis-test-token"

// machines starts n apps on one database, one files directory and the
// Redis at redisURL, each with extra in its environment, and returns
// them and the environment they share.
func machines(t *testing.T, n int, redisURL string, extra map[string]string) ([]*testApp, map[string]string) {
	t.Helper()
	env := map[string]string{
		"DATABASE_URL":     testenv.PostgresURL(t),
		"MIGRATE_ON_START": "true",
		"BLOB_DIR":         filepath.Join(t.TempDir(), "blobs"),
		"REDIS_URL":        redisURL,
		// Generous, as the test machines are busy: a command that timed
		// out would fail open (the rate limit per machine) or leave the
		// documented window of a stale read, and the tests would flake.
		// Tests of a down Redis set their own.
		"REDIS_TIMEOUT": "2s",
		"API_TOKEN":     redisTestToken,
	}
	for k, v := range extra {
		env[k] = v
	}
	apps := make([]*testApp, n)
	for i := range apps {
		apps[i] = startApp(t, maps.Clone(env))
	}
	return apps, env
}

// metric sums every series of the counter name in a's /metrics.
func metric(t *testing.T, a *testApp, name string) float64 {
	t.Helper()
	r := a.get(t, "/metrics")
	expect(t, "/metrics", r, 200)
	return metricIn(t, string(r.body), name)
}

// metricIn sums every series of name (a metric name, or one series with
// its labels) in a Prometheus text exposition; 0 when it has none.
func metricIn(t *testing.T, text, name string) float64 {
	t.Helper()
	sum := 0.0 // a counter vector shows no line until it counts something
	sc := bufio.NewScanner(strings.NewReader(text))
	for sc.Scan() {
		line := sc.Text()
		rest, ok := strings.CutPrefix(line, name)
		if !ok || (rest != "" && rest[0] != '{' && rest[0] != ' ') {
			continue
		}
		fields := strings.Fields(line)
		v, err := strconv.ParseFloat(fields[len(fields)-1], 64)
		if err != nil {
			t.Fatalf("/metrics line %q: %v", line, err)
		}
		sum += v
	}
	return sum
}

// waitFor calls cond until it holds, failing the test after limit.
func waitFor(t *testing.T, limit time.Duration, what string, cond func() bool) {
	t.Helper()
	if !testenv.Eventually(limit, cond) {
		t.Fatalf("%s did not happen within %v", what, limit)
	}
}

// noteVersion is the version number a note's body holds.
func noteVersion(r response) (int, error) {
	var n struct{ Body string }
	if err := json.Unmarshal(r.body, &n); err != nil {
		return 0, err
	}
	return strconv.Atoi(n.Body)
}

// TestRedisCacheReadYourWrites has writers on both machines update the
// same notes while readers on both read them through the cache. Each
// note's body is a version number, taken from a counter when its write
// starts. A read may return a write that overlapped it or a later one,
// but never one older than a write that had been acknowledged before the
// read began, to any client on either machine: the writer that wrote
// version w' before another finished it (acknowledged before w' started)
// is older, for sure, than w'. That covers each client's own writes: a
// client that has seen its write succeed never reads the version before.
func TestRedisCacheReadYourWrites(t *testing.T) {
	redisSrv := testenv.StartRedis(t)
	apps, _ := machines(t, 2, redisSrv.URL(), nil)

	type write struct {
		version    int
		start, ack time.Time
	}
	type read struct {
		version    int
		start      time.Time
		app        string
		by, note   int
		isOwnWrite bool
	}
	// Against a cache whose fill ignored its lease (plain cache-aside),
	// these numbers found stale reads in 5 runs out of 5.
	const notes, writers, readers, rounds = 2, 4, 6, 200
	ids := make([]string, notes)
	var mu sync.Mutex
	writes := make([]map[int]write, notes) // by note, by version
	var reads []read
	next := make([]atomic.Int64, notes)
	for i := range ids {
		before := time.Now()
		r := apps[0].sendJSON(t, "POST", "/api/notes", `{"title":"contended","body":"0"}`)
		expect(t, "create", r, 201)
		ids[i] = r.id()
		writes[i] = map[int]write{0: {0, before, time.Now()}}
	}

	var failures atomic.Int64
	var errMu sync.Mutex
	var errs []string
	fail := func(format string, args ...any) {
		failures.Add(1)
		errMu.Lock()
		defer errMu.Unlock()
		if len(errs) < 10 {
			errs = append(errs, fmt.Sprintf(format, args...))
		}
	}
	get := func(by, note int, a *testApp, own bool) {
		start := time.Now()
		r, err := a.try("GET", "/api/notes/"+ids[note], "")
		if err != nil || r.status != 200 {
			fail("GET: %v %d %s", err, r.status, r.body)
			return
		}
		v, err := noteVersion(r)
		if err != nil {
			fail("GET answered %s: %v", r.body, err)
			return
		}
		mu.Lock()
		defer mu.Unlock()
		reads = append(reads, read{version: v, start: start, app: a.url, by: by, note: note, isOwnWrite: own})
	}

	var wg sync.WaitGroup
	done := make(chan struct{})
	for w := range writers {
		wg.Go(func() {
			for i := range rounds {
				note := (w + i) % notes
				a, other := apps[i%2], apps[(i+1)%2]
				v := int(next[note].Add(1))
				start := time.Now()
				r, err := a.try("PUT", "/api/notes/"+ids[note], fmt.Sprintf(`{"title":"contended","body":"%d"}`, v))
				ack := time.Now()
				if err != nil || r.status != 200 {
					fail("PUT: %v %d %s", err, r.status, r.body)
					continue
				}
				mu.Lock()
				writes[note][v] = write{v, start, ack}
				mu.Unlock()
				// The writer reads its note back at once, on the other
				// machine and on its own.
				get(w, note, other, true)
				get(w, note, a, true)
			}
		})
	}
	var readersWG sync.WaitGroup
	for rd := range readers {
		readersWG.Go(func() {
			for i := 0; ; i++ {
				select {
				case <-done:
					return
				default:
				}
				get(writers+rd, (rd+i)%notes, apps[rd%2], false)
			}
		})
	}
	wg.Wait()
	close(done)
	readersWG.Wait()
	if failures.Load() > 0 {
		t.Fatalf("%d requests failed; first ones:\n%s", failures.Load(), strings.Join(errs, "\n"))
	}

	stale := 0
	for _, r := range reads {
		got, ok := writes[r.note][r.version]
		if !ok {
			t.Fatalf("a read returned version %d of note %d, which no acknowledged write wrote", r.version, r.note)
		}
		for _, w := range writes[r.note] {
			// w was acknowledged before the read began, and the version
			// read was acknowledged before w even started.
			if w.ack.Before(r.start) && got.ack.Before(w.start) {
				stale++
				if stale <= 5 {
					t.Errorf("client %d read version %d of note %d from %s (own write just before: %v), though version %d, written after it, had been acknowledged %v before the read began",
						r.by, r.version, r.note, r.app, r.isOwnWrite, w.version, r.start.Sub(w.ack))
				}
				break
			}
		}
	}
	if stale > 0 {
		t.Errorf("%d of %d reads returned a version older than an acknowledged write", stale, len(reads))
	}
	hits := []float64{metric(t, apps[0], "flystorage_cache_hits_total"), metric(t, apps[1], "flystorage_cache_hits_total")}
	t.Logf("%d writes and %d reads; cache hits on A and B: %v", writers*rounds, len(reads), hits)
	for i, h := range hits {
		if h == 0 {
			t.Errorf("machine %c never read from the cache: the test did not exercise it", 'A'+i)
		}
	}
}

// TestRedisSessionsAcrossMachines signs in on A, writes on B with the
// cookie, signs out on B, and finds the cookie refused on A.
func TestRedisSessionsAcrossMachines(t *testing.T) {
	redisSrv := testenv.StartRedis(t)
	apps, _ := machines(t, 2, redisSrv.URL(), nil)
	// The page's requests carry the cookie, not the token.
	a, b := &testApp{url: apps[0].url, logs: apps[0].logs}, &testApp{url: apps[1].url, logs: apps[1].logs}
	note := `{"title":"by cookie","body":"x"}`
	page := []string{"Sec-Fetch-Site", "same-origin"}

	expectError(t, "a write on B before signing in", b.do(t, "POST", "/api/notes", "application/json", strings.NewReader(note), page...), 401, "unauthorized")
	r := a.do(t, "POST", "/api/session", "application/json", strings.NewReader(`{"token":"`+redisTestToken+`"}`), page...)
	expect(t, "signing in on A", r, 201)
	var cookie string
	for _, c := range (&http.Response{Header: r.header}).Cookies() {
		if c.Name == "flystorage_session" {
			cookie = c.Name + "=" + c.Value
		}
	}
	if cookie == "" {
		t.Fatalf("signing in set no flystorage_session cookie: %v", r.header["Set-Cookie"])
	}
	withCookie := append([]string{"Cookie", cookie}, page...)

	expect(t, "a write on B with A's cookie", b.do(t, "POST", "/api/notes", "application/json", strings.NewReader(note), withCookie...), 201)
	if s := b.do(t, "GET", "/api/session", "", nil, withCookie...).json(t); s["signed_in"] != true {
		t.Errorf("B does not see A's session: %v", s)
	}
	expect(t, "signing out on B", b.do(t, "DELETE", "/api/session", "", nil, withCookie...), 204)
	expectError(t, "a write on A with the signed-out cookie", a.do(t, "POST", "/api/notes", "application/json", strings.NewReader(note), withCookie...), 401, "unauthorized")
}

// TestRedisSharedRateLimit sends 30 writes from one client, alternating
// between A and B, with RATE_LIMIT=10/m on both: 10 pass in all, not 10
// on each.
func TestRedisSharedRateLimit(t *testing.T) {
	redisSrv := testenv.StartRedis(t)
	apps, _ := machines(t, 2, redisSrv.URL(), map[string]string{"RATE_LIMIT": "10/m"})
	accepted := map[int]int{}
	limited := 0
	for i := range 30 {
		a := apps[i%2]
		r := a.sendJSON(t, "POST", "/api/notes", fmt.Sprintf(`{"title":"write %d"}`, i))
		switch r.status {
		case 201:
			accepted[i%2]++
		case 429:
			limited++
			if code := r.errorCode(t); code != "rate_limited" {
				t.Errorf("write %d: 429 with code %q, want rate_limited", i, code)
			}
			secs, err := strconv.Atoi(r.header.Get("Retry-After"))
			if err != nil || secs < 1 || secs > 60 {
				t.Errorf("write %d: Retry-After %q, want 1 to 60 seconds", i, r.header.Get("Retry-After"))
			}
		default:
			t.Fatalf("write %d: status %d: %s", i, r.status, r.body)
		}
	}
	if accepted[0]+accepted[1] != 10 || limited != 20 {
		t.Errorf("accepted %d on A and %d on B, limited %d; want 10 accepted in all, 20 limited", accepted[0], accepted[1], limited)
	}
}

// TestRedisDownMidRun kills Redis (connections refused at once), or
// pauses it (commands hang until REDIS_TIMEOUT), under a stream of reads
// and writes on one machine: every request still succeeds, from the
// database, in a bounded time; /readyz says "degraded"; the failures are
// counted and logged once; and when Redis comes back at the same address
// (a new, empty one after a kill) the cache works again.
func TestRedisDownMidRun(t *testing.T) {
	t.Run("killed", func(t *testing.T) {
		testRedisDown(t, (*testenv.RedisServer).Kill, (*testenv.RedisServer).Restart)
	})
	t.Run("paused", func(t *testing.T) {
		testRedisDown(t, (*testenv.RedisServer).Pause, (*testenv.RedisServer).Resume)
	})
}

func testRedisDown(t *testing.T, down, back func(*testenv.RedisServer, testing.TB)) {
	redisSrv := testenv.StartRedis(t)
	apps, _ := machines(t, 1, redisSrv.URL(), map[string]string{"REDIS_TIMEOUT": "100ms"})
	a := apps[0]
	r := a.sendJSON(t, "POST", "/api/notes", `{"title":"steady","body":"0"}`)
	expect(t, "create", r, 201)
	id := r.id()
	cachedRead := func() bool {
		before := metric(t, a, "flystorage_cache_hits_total")
		expect(t, "read", a.get(t, "/api/notes/"+id), 200)
		expect(t, "read", a.get(t, "/api/notes/"+id), 200)
		return metric(t, a, "flystorage_cache_hits_total") > before
	}
	if !cachedRead() {
		t.Fatal("the cache does not answer before Redis goes down")
	}

	// The bound proves "no hang"; the figures logged are what the
	// requests took.
	const bound = 2 * time.Second
	type result struct {
		op     string
		status int
		took   time.Duration
		err    error
		killed bool
	}
	var killed atomic.Bool
	var mu sync.Mutex
	var results []result
	count := func(afterKill bool) int {
		mu.Lock()
		defer mu.Unlock()
		n := 0
		for _, r := range results {
			if r.killed == afterKill {
				n++
			}
		}
		return n
	}
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for w := range 2 {
		wg.Go(func() {
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				op, method, path, body := "read", "GET", "/api/notes/"+id, ""
				switch i % 3 {
				case 1:
					op, method, body = "update", "PUT", fmt.Sprintf(`{"title":"steady","body":"%d-%d"}`, w, i)
				case 2:
					op, method, path, body = "create", "POST", "/api/notes", `{"title":"more"}`
				}
				wasKilled := killed.Load()
				start := time.Now()
				r, err := a.try(method, path, body)
				res := result{op, r.status, time.Since(start), err, wasKilled}
				mu.Lock()
				results = append(results, res)
				mu.Unlock()
			}
		})
	}
	waitFor(t, 30*time.Second, "30 requests with Redis up", func() bool { return count(false) >= 30 })
	killedAt := time.Now()
	down(redisSrv, t)
	killed.Store(true)
	waitFor(t, 60*time.Second, "150 requests with Redis down", func() bool { return count(true) >= 150 })

	ready := a.get(t, "/readyz")
	expect(t, "/readyz with Redis down", ready, 200)
	body := ready.json(t)
	checks, _ := body["checks"].(map[string]any)
	cacheCheck, _ := checks["cache"].(map[string]any)
	if body["status"] != "degraded" || cacheCheck["status"] != "degraded" {
		t.Errorf("/readyz with Redis down answered %s; want status and checks.cache.status \"degraded\"", ready.body)
	}
	if n := metric(t, a, "flystorage_redis_errors_total"); n == 0 {
		t.Error("flystorage_redis_errors_total is 0 with Redis down")
	}

	back(redisSrv, t)
	close(stop)
	wg.Wait()
	restarted := time.Now()
	waitFor(t, 30*time.Second, "a cache hit after Redis came back", cachedRead)
	t.Logf("the cache answered again %v after Redis came back", time.Since(restarted).Round(time.Millisecond))

	var worst [2]time.Duration
	var took [2][]time.Duration
	for _, r := range results {
		if r.err != nil || r.status >= 300 {
			t.Errorf("%s with Redis %s: %d %v", r.op, map[bool]string{true: "down", false: "up"}[r.killed], r.status, r.err)
		}
		if r.took > bound {
			t.Errorf("%s took %v with Redis down=%v, more than %v", r.op, r.took, r.killed, bound)
		}
		k := 0
		if r.killed {
			k = 1
		}
		worst[k] = max(worst[k], r.took)
		took[k] = append(took[k], r.took)
	}
	for k, label := range []string{"with Redis up", "with Redis down"} {
		slices.Sort(took[k])
		t.Logf("%d requests %s: median %v, p99 %v, max %v", len(took[k]), label,
			took[k][len(took[k])/2].Round(time.Microsecond), took[k][len(took[k])*99/100].Round(time.Microsecond), worst[k].Round(time.Microsecond))
	}
	// One line per interval (a minute), however many commands failed.
	a.stop() // every log line written
	logged := strings.Count(a.logs.String(), "redis command failed")
	if limit := 1 + int(time.Since(killedAt)/time.Minute); logged < 1 || logged > limit {
		t.Errorf("the failure was logged %d times; want 1 to %d", logged, limit)
	}
}

// TestRedisLockOneSweepAtATime runs `app sweep` on machine B while machine
// A holds the sweep's lock in the shared Redis: B skips and removes
// nothing; once A lets go, B's sweep removes the orphan.
func TestRedisLockOneSweepAtATime(t *testing.T) {
	redisSrv := testenv.StartRedis(t)
	_, env := machines(t, 1, redisSrv.URL(), nil)
	setup, err := app.Load(func(k string) string { return env[k] })
	if err != nil {
		t.Fatal(err)
	}
	orphan := filepath.Join(env["BLOB_DIR"], setup.Config.FileKeyPrefix(), storage.NewID())
	if err := os.MkdirAll(filepath.Dir(orphan), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(orphan, []byte("left by a crash"), 0o644); err != nil {
		t.Fatal(err)
	}
	old := time.Now().Add(-2 * time.Hour)
	if err := os.Chtimes(orphan, old, old); err != nil {
		t.Fatal(err)
	}

	machineA, err := cache.Open(context.Background(), setup.Cache, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer machineA.Close()
	lease, err := machineA.Lock(context.Background(), app.SweepLock(setup.Config), time.Minute)
	if err != nil {
		t.Fatalf("machine A taking the sweep's lock: %v", err)
	}
	sweep := func() string {
		var stdout bytes.Buffer
		if err := runApp(context.Background(), []string{"sweep"}, func(k string) string { return env[k] }, &stdout, io.Discard); err != nil {
			t.Fatalf("app sweep: %v", err)
		}
		return stdout.String()
	}
	if got := sweep(); got != "skipped: another machine is sweeping\n" {
		t.Errorf("app sweep while A holds the lock printed %q", got)
	}
	if _, err := os.Stat(orphan); err != nil {
		t.Errorf("B swept while A held the lock: %v", err)
	}
	if err := lease.Release(context.Background()); err != nil {
		t.Fatalf("releasing A's lease: %v", err)
	}
	if got := sweep(); !strings.Contains(got, "removed 1 that no file names") {
		t.Errorf("app sweep after A let go printed %q", got)
	}
	if _, err := os.Stat(orphan); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("the orphan is still there after B's sweep: %v", err)
	}
}

// TestRedisLockLostStopsSweep runs the sweep as the server's job does,
// under locked, over five orphans. While the first is being deleted,
// another machine takes the lock (as it could once the lock expired): the
// lease's next renewal finds the lock gone and cancels the job, which
// deletes nothing more.
func TestRedisLockLostStopsSweep(t *testing.T) {
	redisSrv := testenv.StartRedis(t)
	_, env := machines(t, 1, redisSrv.URL(), map[string]string{"REDIS_TIMEOUT": "500ms"})
	ctx := context.Background()
	setup, err := app.Load(func(k string) string { return env[k] })
	if err != nil {
		t.Fatal(err)
	}
	st, err := app.Open(ctx, setup, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	prefix := setup.Config.FileKeyPrefix()
	for range 5 {
		if err := st.Blobs.Put(ctx, prefix+storage.NewID(), strings.NewReader("orphan"), 6, "text/plain"); err != nil {
			t.Fatal(err)
		}
	}
	rc, err := cache.Open(ctx, setup.Cache, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	other := redis.NewClient(&redis.Options{Addr: fmt.Sprintf("127.0.0.1:%d", redisSrv.Port)})
	defer other.Close()

	name := app.SweepLock(setup.Config)
	blobs := &hookedBlobs{Blobs: st.Blobs}
	blobs.onDelete = func(ctx context.Context) {
		if blobs.deletes.Load() > 1 {
			return
		}
		// The lock expired and another machine took it.
		if err := other.Set(ctx, cache.DefaultKeyPrefix+"lock:"+name, "another machine's token", time.Minute).Err(); err != nil {
			t.Errorf("taking the lock from outside: %v", err)
		}
		select {
		case <-ctx.Done():
		case <-time.After(10 * time.Second):
			t.Error("the job's context was not cancelled within 10s of losing the lock")
		}
	}
	var jobCtx context.Context
	svc := service.New(service.Options{DB: st.DB, Blobs: blobs, KeyPrefix: prefix, Cache: rc})
	var res service.SweepResult
	err = app.Locked(ctx, rc, name, 2*time.Second, slog.New(slog.DiscardHandler), func(ctx context.Context) error {
		jobCtx = ctx
		var err error
		res, err = svc.Sweep(ctx, 0)
		return err
	})
	if !errors.Is(err, context.Canceled) {
		t.Errorf("the sweep that lost its lock returned %v, want context.Canceled", err)
	}
	if jobCtx == nil || !errors.Is(context.Cause(jobCtx), cache.ErrLeaseLost) {
		t.Errorf("the job's context ended with %v, want cache.ErrLeaseLost", context.Cause(jobCtx))
	}
	if n := blobs.deletes.Load(); n != 1 || res.Removed != 1 {
		t.Errorf("the sweep deleted %d objects (counted %d removed) after losing its lock during the first; want 1", n, res.Removed)
	}
	left := 0
	for _, err := range st.Blobs.List(ctx, prefix) {
		if err != nil {
			t.Fatal(err)
		}
		left++
	}
	if left != 4 {
		t.Errorf("%d orphans left, want 4", left)
	}
}

// hookedBlobs calls onDelete (with the caller's context) before each
// Delete, and counts them.
type hookedBlobs struct {
	storage.Blobs
	onDelete func(ctx context.Context)
	deletes  atomic.Int64
}

func (b *hookedBlobs) Delete(ctx context.Context, key string) error {
	b.deletes.Add(1)
	b.onDelete(ctx)
	return b.Blobs.Delete(ctx, key)
}

// BenchmarkGetNoteCache is GET /api/notes/{id} over HTTP to one app on
// Postgres: without Redis (off), with the cache (on: every read a hit
// after the first), and with a cache that always misses (miss: CACHE_TTL
// of 1ms, so each read pays the lookup, the database and the fill).
// Parallel clients read 100 notes in turn, the load shape of
// internal/storage/postgres's BenchmarkNotes/read.
//
//	make test TESTFLAGS="-run ^$ -bench GetNoteCache ./cmd/app"
func BenchmarkGetNoteCache(b *testing.B) {
	for _, mode := range []string{"off", "on", "miss"} {
		b.Run("cache="+mode, func(b *testing.B) {
			env := map[string]string{
				"DATABASE_URL":     testenv.PostgresURL(b),
				"MIGRATE_ON_START": "true",
				"BLOB_DIR":         b.TempDir(),
			}
			if mode != "off" {
				env["REDIS_URL"] = testenv.StartRedis(b).URL()
			}
			if mode == "miss" {
				env["CACHE_TTL"] = "1ms"
			}
			a := startApp(b, env)
			hc := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 64}}
			defer hc.CloseIdleConnections()
			get := func(path string) ([]byte, error) {
				res, err := hc.Get(a.url + path)
				if err != nil {
					return nil, err
				}
				defer res.Body.Close()
				body, err := io.ReadAll(res.Body)
				if err == nil && res.StatusCode != 200 {
					err = fmt.Errorf("GET %s: %d %s", path, res.StatusCode, body)
				}
				return body, err
			}
			ids := make([]string, 100)
			for i := range ids {
				r, err := a.try("POST", "/api/notes", fmt.Sprintf(`{"title":"read %d","body":"a note of a typical size, a line or two of text"}`, i))
				if err != nil || r.status != 201 {
					b.Fatalf("creating a note: %v %d %s", err, r.status, r.body)
				}
				ids[i] = r.id()
				if _, err := get("/api/notes/" + ids[i]); err != nil { // fills the cache
					b.Fatal(err)
				}
			}
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				i := 0
				for pb.Next() {
					if _, err := get("/api/notes/" + ids[i%len(ids)]); err != nil {
						b.Error(err)
						return
					}
					i++
				}
			})
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "notes/s")
			b.StopTimer()
			if mode == "on" {
				m, err := get("/metrics")
				if err != nil {
					b.Fatal(err)
				}
				if !bytes.Contains(m, []byte(`flystorage_cache_hits_total{kind="note"}`)) {
					b.Fatal("the cache answered no read")
				}
			}
		})
	}
}

// upstashPassword is the Redis password in the Upstash tests: finding it in
// a log line means a secret leaked.
const upstashPassword = "Upstash-pw-6620"

// TestUpstashTLS runs the app with REDIS_URL=rediss://default:<password>@
// 127.0.0.1:<port>, as Upstash serves Redis outside Fly: TLS only, with a
// password, and a certificate from a CA the machine trusts through
// SSL_CERT_FILE (as Fly machines trust Upstash's through the system's
// roots). The apps run as processes, since Go reads SSL_CERT_FILE from the
// process's environment. The cache, sessions across machines and the
// shared rate limit work over it; a wrong password or an untrusted
// certificate is one clear logged error, and the app serves from the
// database as it does with Redis down.
func TestUpstashTLS(t *testing.T) {
	srv := testenv.StartRedis(t, testenv.RedisOptions{TLS: true, Password: upstashPassword})
	redisURL := fmt.Sprintf("rediss://default:%s@127.0.0.1:%d", upstashPassword, srv.Port)

	t.Run("cache and sessions", func(t *testing.T) {
		apps := processMachines(t, 2, map[string]string{"REDIS_URL": redisURL, "SSL_CERT_FILE": srv.CertFile})
		a, b := apps[0], apps[1]
		r := a.sendJSON(t, "POST", "/api/notes", `{"title":"cached","body":"x"}`)
		expect(t, "create", r, 201)
		for range 2 {
			expect(t, "read on B", b.get(t, "/api/notes/"+r.id()), 200)
		}
		if metric(t, b, "flystorage_cache_hits_total") == 0 {
			t.Error("B never read from the cache over TLS")
		}

		page := []string{"Sec-Fetch-Site", "same-origin"}
		signIn := a.do(t, "POST", "/api/session", "application/json", strings.NewReader(`{"token":"`+redisTestToken+`"}`), page...)
		expect(t, "signing in on A", signIn, 201)
		var cookie string
		for _, c := range (&http.Response{Header: signIn.header}).Cookies() {
			if c.Name == "flystorage_session" {
				cookie = c.Name + "=" + c.Value
			}
		}
		withCookie := append([]string{"Cookie", cookie}, page...)
		cookieOnly := &testApp{url: b.url, logs: b.logs}
		expect(t, "a write on B with A's cookie", cookieOnly.do(t, "POST", "/api/notes", "application/json", strings.NewReader(`{"title":"by cookie"}`), withCookie...), 201)

		for _, m := range apps {
			if ready := m.get(t, "/readyz").json(t); ready["status"] != "ok" {
				t.Errorf("/readyz over TLS: %v, want ok", ready)
			}
			assertNoSecrets(t, m, upstashPassword) // and stops it
		}
	})

	t.Run("shared rate limit", func(t *testing.T) {
		apps := processMachines(t, 2, map[string]string{"REDIS_URL": redisURL, "SSL_CERT_FILE": srv.CertFile, "RATE_LIMIT": "10/m"})
		accepted, limited := 0, 0
		for i := range 20 {
			switch r := apps[i%2].sendJSON(t, "POST", "/api/notes", fmt.Sprintf(`{"title":"write %d"}`, i)); r.status {
			case 201:
				accepted++
			case 429:
				limited++
			default:
				t.Fatalf("write %d: %d %s", i, r.status, r.body)
			}
		}
		if accepted != 10 || limited != 10 {
			t.Errorf("accepted %d and limited %d writes over two machines; want 10 and 10: one limit through Redis", accepted, limited)
		}
	})

	otherCA := testenv.NewTestCA(t).WriteFile(t, t.TempDir())
	for _, c := range []struct{ name, url, certFile, cause string }{
		{"wrong password", strings.Replace(redisURL, upstashPassword, "Wrong-pw-4410", 1), srv.CertFile, "WRONGPASS"},
		{"untrusted certificate", redisURL, otherCA, "certificate signed by unknown authority"},
	} {
		t.Run(c.name, func(t *testing.T) {
			a := processMachines(t, 1, map[string]string{"REDIS_URL": c.url, "SSL_CERT_FILE": c.certFile})[0]
			r := a.sendJSON(t, "POST", "/api/notes", `{"title":"without the cache"}`)
			expect(t, "create without the cache", r, 201)
			for range 5 {
				expect(t, "read without the cache", a.get(t, "/api/notes/"+r.id()), 200)
			}
			if ready := a.get(t, "/readyz").json(t); ready["status"] != "degraded" {
				t.Errorf("/readyz with Redis refusing the app: %v, want degraded", ready)
			}
			assertNoSecrets(t, a, upstashPassword, "Wrong-pw-4410") // and stops it
			var redisErrors []string
			for _, line := range strings.Split(a.logs.String(), "\n") {
				if (strings.Contains(line, "level=WARN") || strings.Contains(line, "level=ERROR")) && strings.Contains(strings.ToLower(line), "redis") {
					redisErrors = append(redisErrors, line)
				}
			}
			if len(redisErrors) != 1 || !strings.Contains(redisErrors[0], c.cause) || !strings.Contains(redisErrors[0], "REDIS_URL") {
				t.Errorf("logged %d Redis errors, want one naming REDIS_URL and %q:\n%s", len(redisErrors), c.cause, strings.Join(redisErrors, "\n"))
			}
		})
	}
}

// processMachines starts n apps as processes (see startCrashProc) on one
// Postgres schema and one files directory, with extra in their
// environment, as machines on Fly share a database.
func processMachines(t *testing.T, n int, extra map[string]string) []*testApp {
	t.Helper()
	env := map[string]string{
		"DATABASE_URL":     testenv.PostgresURL(t),
		"MIGRATE_ON_START": "true",
		"BLOB_DIR":         filepath.Join(t.TempDir(), "blobs"),
		"REDIS_TIMEOUT":    "2s",
		"API_TOKEN":        redisTestToken,
	}
	maps.Copy(env, extra)
	apps := make([]*testApp, n)
	for i := range apps {
		p := startCrashProc(t, env)
		apps[i] = &testApp{url: p.base, logs: p.logs, token: redisTestToken, stop: p.kill}
	}
	return apps
}
