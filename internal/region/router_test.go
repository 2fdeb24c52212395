package region

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/example/flystorage/internal/storage"
	"github.com/example/flystorage/internal/testenv"
)

// app stands in for the server: it counts what it serves, and records
// whether each request's context asked for primary reads.
type app struct {
	served       int
	primaryReads []bool
	err          error // returned through the router's HandleError, if set
	rt           *Router
}

func (a *app) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	a.served++
	a.primaryReads = append(a.primaryReads, PrimaryReads(r.Context()))
	if a.err != nil {
		if !a.rt.HandleError(w, r, a.err) {
			http.Error(w, a.err.Error(), http.StatusInternalServerError)
		}
		return
	}
	if r.Method == http.MethodGet {
		w.Write([]byte("read"))
		return
	}
	w.WriteHeader(http.StatusCreated)
}

// clock is a fake time that Sleep moves.
type clock struct {
	now    time.Time
	slept  time.Duration
	sleeps int
}

func (c *clock) Now() time.Time { return c.now }
func (c *clock) Sleep(ctx context.Context, d time.Duration) error {
	c.now = c.now.Add(d)
	c.slept += d
	c.sleeps++
	return ctx.Err()
}

// primary gives a fixed write position, or fails.
type primary struct {
	pos storage.Position
	err error
}

func (p primary) WritePosition(context.Context) (storage.Position, error) { return p.pos, p.err }

// replica is at `at` until the clock passes catchUp, then at `later`.
type replica struct {
	clock     *clock
	at, later storage.Position
	catchUp   time.Time
	err       error
	calls     int
}

func (r *replica) ReplayPosition(context.Context) (storage.Position, error) {
	r.calls++
	if r.err != nil {
		return 0, r.err
	}
	if !r.clock.now.Before(r.catchUp) {
		return r.later, nil
	}
	return r.at, nil
}

var t0 = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

type setup struct {
	cfg     Config
	local   bool
	primary storage.WritePositioner
	replica *replica
}

func newRouter(s setup) (*Router, *app, *clock, *Metrics) {
	c := &clock{now: t0}
	if s.replica != nil {
		s.replica.clock = c
	}
	m := NewMetrics()
	o := Options{Config: s.cfg, Local: s.local, Primary: s.primary, Metrics: m, Now: c.Now, Sleep: c.Sleep}
	if s.replica != nil {
		o.Replica = s.replica
	}
	rt := NewRouter(o)
	return rt, &app{rt: rt}, c, m
}

var (
	syd = Config{Region: "syd", PrimaryRegion: "ord", Wait: 500 * time.Millisecond}
	ord = Config{Region: "ord", PrimaryRegion: "ord", Wait: 500 * time.Millisecond}
)

func do(h http.Handler, method, path string, body string, header ...string) *httptest.ResponseRecorder {
	req := httptest.NewRequest(method, path, strings.NewReader(body))
	if body == "" {
		req.ContentLength = 0
	}
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	w := httptest.NewRecorder()
	h.ServeHTTP(w, req)
	return w
}

func wantReplay(t *testing.T, w *httptest.ResponseRecorder, a *app) {
	t.Helper()
	if got := w.Header().Get(ReplayHeader); got != "region=ord" || w.Code != ReplayStatus {
		t.Fatalf("got %d with Fly-Replay %q, want %d with region=ord", w.Code, got, ReplayStatus)
	}
	var body struct {
		Error struct{ Code, Message string }
	}
	if err := json.Unmarshal(w.Body.Bytes(), &body); err != nil || body.Error.Code != "replay" || !strings.Contains(body.Error.Message, "ord") {
		t.Errorf("body %q: want a JSON error naming the primary region", w.Body)
	}
	if a.served != 0 {
		t.Errorf("the app served %d requests; a replayed one must write nothing", a.served)
	}
	if w.Header().Get(TokenHeader) != "" {
		t.Errorf("a replay carries a token")
	}
}

func TestWritesInAReplicaRegionAreReplayed(t *testing.T) {
	for _, req := range [][2]string{
		{"POST", "/api/notes"}, {"PUT", "/api/notes/1"}, {"DELETE", "/api/notes/1"}, {"DELETE", "/api/files/1"},
		{"POST", "/api/files/uploads"}, {"POST", "/api/files/uploads/1/complete"}, {"POST", "/api/session"},
	} {
		t.Run(req[0]+req[1], func(t *testing.T) {
			rt, a, _, m := newRouter(setup{cfg: syd, primary: primary{pos: 42}})
			wantReplay(t, do(rt.Wrap(a), req[0], req[1], `{"title":"x"}`), a)
			if n := value(m.replays.WithLabelValues(ReasonWrite)); n != 1 {
				t.Errorf("replays{reason=write} = %v, want 1", n)
			}
		})
	}
}

func TestReadsInAReplicaRegionWithoutTokenAreServed(t *testing.T) {
	r := &replica{at: 10}
	rt, a, _, _ := newRouter(setup{cfg: syd, primary: primary{pos: 42}, replica: r})
	w := do(rt.Wrap(a), "GET", "/api/notes", "")
	if w.Code != 200 || a.served != 1 || a.primaryReads[0] || r.calls != 0 {
		t.Fatalf("got %d, served %d, primary reads %v, replica asked %d times; want the replica read as it is", w.Code, a.served, a.primaryReads, r.calls)
	}
}

func TestPrimaryRegionServesAndSetsTokens(t *testing.T) {
	rt, a, _, _ := newRouter(setup{cfg: ord, primary: primary{pos: 0x16_B374D848}})
	w := do(rt.Wrap(a), "POST", "/api/notes", `{"title":"x"}`)
	if w.Code != http.StatusCreated || a.served != 1 {
		t.Fatalf("got %d, served %d; want the write served", w.Code, a.served)
	}
	if got := w.Header().Get(TokenHeader); got != "16/B374D848" {
		t.Errorf("%s = %q, want 16/B374D848", TokenHeader, got)
	}
	cookies := w.Result().Cookies()
	if len(cookies) != 1 || cookies[0].Name != TokenCookie || cookies[0].Value != "16/B374D848" || !cookies[0].HttpOnly {
		t.Errorf("cookies = %v, want an HttpOnly %s=16/B374D848", cookies, TokenCookie)
	}
	if w := do(rt.Wrap(a), "GET", "/api/notes", ""); w.Header().Get(TokenHeader) != "" || len(w.Result().Cookies()) != 0 {
		t.Errorf("a read got a token")
	}
}

func TestFailedWritesGetNoToken(t *testing.T) {
	rt, _, _, _ := newRouter(setup{cfg: ord, primary: primary{pos: 42}})
	h := rt.Wrap(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { http.Error(w, "no", http.StatusBadRequest) }))
	if w := do(h, "POST", "/api/notes", "{}"); w.Header().Get(TokenHeader) != "" {
		t.Errorf("a 400 got a token")
	}
	rt, a, _, _ := newRouter(setup{cfg: ord, primary: primary{err: errors.New("primary gone")}})
	if w := do(rt.Wrap(a), "POST", "/api/notes", "{}"); w.Code != http.StatusCreated || w.Header().Get(TokenHeader) != "" {
		t.Errorf("with no position: got %d, token %q; want the write answered without a token", w.Code, w.Header().Get(TokenHeader))
	}
}

func TestOffFlyNothingChanges(t *testing.T) {
	rt, a, _, _ := newRouter(setup{cfg: Config{PrimaryRegion: "ord"}, local: true})
	for _, m := range []string{"GET", "POST", "DELETE"} {
		if w := do(rt.Wrap(a), m, "/api/notes", ""); w.Header().Get(ReplayHeader) != "" {
			t.Errorf("%s without FLY_REGION was replayed", m)
		}
	}
	if a.served != 3 {
		t.Errorf("served %d of 3", a.served)
	}
}

func TestUploadsThroughTheAppAreServedInPlace(t *testing.T) {
	rt, a, _, _ := newRouter(setup{cfg: syd, primary: primary{pos: 42}})
	w := do(rt.Wrap(a), "POST", "/api/files", "bytes")
	if w.Code != http.StatusCreated || w.Header().Get(ReplayHeader) != "" || !a.primaryReads[0] {
		t.Fatalf("got %d, replay %q, primary reads %v; want it served here with every read on the primary", w.Code, w.Header().Get(ReplayHeader), a.primaryReads)
	}
	if w.Header().Get(TokenHeader) != "0/2A" {
		t.Errorf("token = %q, want 0/2A", w.Header().Get(TokenHeader))
	}
	// Any write too large to replay, or of unknown length, is served too.
	req := httptest.NewRequest("PUT", "/api/notes/1", strings.NewReader("x"))
	req.ContentLength = -1
	w = httptest.NewRecorder()
	rt.Wrap(a).ServeHTTP(w, req)
	if w.Code != http.StatusCreated || a.served != 2 {
		t.Errorf("a write of unknown length: got %d; want it served, not replayed", w.Code)
	}
}

func TestLocalDataReplaysEverything(t *testing.T) {
	rt, a, _, m := newRouter(setup{cfg: syd, local: true})
	for _, req := range [][2]string{{"GET", "/"}, {"GET", "/api/notes"}, {"GET", "/api/files/1/content"}, {"POST", "/api/files"}, {"PUT", "/signed/uploads/1"}} {
		wantReplay(t, do(rt.Wrap(a), req[0], req[1], ""), a)
	}
	if n := value(m.replays.WithLabelValues(ReasonLocal)); n != 5 {
		t.Errorf("replays{reason=local} = %v, want 5", n)
	}
	// Health checks are answered by the machine itself.
	if w := do(rt.Wrap(a), "GET", "/healthz", ""); w.Code != 200 || a.served != 1 {
		t.Errorf("/healthz: got %d, served %d", w.Code, a.served)
	}
	// A body Fly cannot replay is refused with a way out, not replayed.
	w := do(rt.Wrap(a), "POST", "/api/files", strings.Repeat("x", MaxReplayBody+1))
	if w.Code != http.StatusMisdirectedRequest || w.Header().Get(ReplayHeader) != "" || !strings.Contains(w.Body.String(), "fly-prefer-region: ord") {
		t.Errorf("a 1 MB+ upload: got %d, replay %q, %s", w.Code, w.Header().Get(ReplayHeader), w.Body)
	}
}

func TestReplayedRequestsAreNeverReplayedAgain(t *testing.T) {
	src := []string{ReplaySrcHeader, "instance=abc;region=syd;t=1"}
	t.Run("local", func(t *testing.T) {
		rt, a, _, _ := newRouter(setup{cfg: syd, local: true})
		w := do(rt.Wrap(a), "GET", "/api/notes", "", src...)
		if w.Code != http.StatusServiceUnavailable || w.Header().Get(ReplayHeader) != "" || a.served != 0 {
			t.Errorf("got %d with replay %q; want 503 and no replay", w.Code, w.Header().Get(ReplayHeader))
		}
	})
	t.Run("write", func(t *testing.T) {
		rt, a, _, _ := newRouter(setup{cfg: syd, primary: primary{pos: 1}})
		w := do(rt.Wrap(a), "POST", "/api/notes", "{}", src...)
		if w.Header().Get(ReplayHeader) != "" || a.served != 1 || !a.primaryReads[0] {
			t.Errorf("got %d with replay %q; want it served in place on the primary", w.Code, w.Header().Get(ReplayHeader))
		}
	})
	t.Run("behind", func(t *testing.T) {
		r := &replica{at: 1, later: 1}
		rt, a, _, _ := newRouter(setup{cfg: syd, primary: primary{pos: 5}, replica: r})
		w := do(rt.Wrap(a), "GET", "/api/notes", "", append(src, TokenHeader, "0/5")...)
		if w.Header().Get(ReplayHeader) != "" || a.served != 1 || !a.primaryReads[0] {
			t.Errorf("got %d with replay %q; want it read from the primary", w.Code, w.Header().Get(ReplayHeader))
		}
	})
	t.Run("read-only", func(t *testing.T) {
		rt, a, _, _ := newRouter(setup{cfg: syd, primary: primary{pos: 1}})
		a.err = fmt.Errorf("%w: SQLSTATE 25006", storage.ErrReadOnly)
		w := do(rt.Wrap(a), "POST", "/api/files", "x", src...)
		if w.Header().Get(ReplayHeader) != "" || w.Code != http.StatusInternalServerError {
			t.Errorf("got %d with replay %q; want the error, not a replay", w.Code, w.Header().Get(ReplayHeader))
		}
	})
}

func TestReadOnlyReplicaErrorBecomesReplay(t *testing.T) {
	rt, a, _, m := newRouter(setup{cfg: syd, primary: primary{pos: 1}})
	a.err = fmt.Errorf("creating file: %w", fmt.Errorf("%w: SQLSTATE 25006", storage.ErrReadOnly))
	w := do(rt.Wrap(a), "POST", "/api/files", "small")
	if w.Header().Get(ReplayHeader) != "region=ord" || w.Code != ReplayStatus || w.Header().Get(TokenHeader) != "" {
		t.Fatalf("got %d with replay %q and token %q; want a replay to ord and no token", w.Code, w.Header().Get(ReplayHeader), w.Header().Get(TokenHeader))
	}
	if n := value(m.replays.WithLabelValues(ReasonReadOnly)); n != 1 {
		t.Errorf("replays{reason=read_only} = %v, want 1", n)
	}
	a.err = storage.ErrUnavailable
	if w := do(rt.Wrap(a), "POST", "/api/files", "small"); w.Header().Get(ReplayHeader) != "" {
		t.Errorf("another error was replayed")
	}
}

func TestTokenWaitCatchesUp(t *testing.T) {
	r := &replica{at: 99, later: 100, catchUp: t0.Add(200 * time.Millisecond)}
	rt, a, c, m := newRouter(setup{cfg: syd, primary: primary{pos: 100}, replica: r})
	w := do(rt.Wrap(a), "GET", "/api/notes/1", "", "Cookie", TokenCookie+"=0/64")
	if w.Code != 200 || a.served != 1 || a.primaryReads[0] {
		t.Fatalf("got %d, served %d, primary reads %v; want it served from the replica", w.Code, a.served, a.primaryReads)
	}
	if c.slept != 200*time.Millisecond {
		t.Errorf("waited %s, want 200ms (until the replica caught up)", c.slept)
	}
	if n := value(m.waits.WithLabelValues(WaitCaughtUp)); n != 1 {
		t.Errorf("waits{caught_up} = %v", n)
	}
	// The router remembers how far the replica got: an older token does
	// not ask again.
	calls := r.calls
	do(rt.Wrap(a), "GET", "/api/notes/1", "", TokenHeader, "0/50")
	if r.calls != calls {
		t.Errorf("an older token asked the replica again")
	}
}

// TestTokenBeyondThePrimaryIsIgnored: a token past the primary's own
// position (FFFFFFFF/FFFFFFFF from anyone) is read from the replica at
// once, after one look at each, instead of polling for REPLICA_WAIT. The
// poller's first pause lasts until the test ends, so a read that waited
// for a second answer would show.
func TestTokenBeyondThePrimaryIsIgnored(t *testing.T) {
	c := &clock{now: t0}
	r := &replica{clock: c, at: 99, later: 100, catchUp: t0.Add(time.Hour)}
	paused := make(chan struct{})
	defer close(paused)
	m := NewMetrics()
	rt := NewRouter(Options{Config: syd, Primary: primary{pos: 100}, Replica: r, Metrics: m, Now: c.Now,
		Sleep: func(context.Context, time.Duration) error { <-paused; return nil }})
	a := &app{rt: rt}
	w := do(rt.Wrap(a), "GET", "/api/notes/1", "", TokenHeader, "FFFFFFFF/FFFFFFFF")
	if w.Code != 200 || a.served != 1 || a.primaryReads[0] || w.Header().Get(ReplayHeader) != "" {
		t.Fatalf("got %d, served %d, replay %q; want it read from the replica at once", w.Code, a.served, w.Header().Get(ReplayHeader))
	}
	if r.calls != 1 {
		t.Errorf("asked the replica %d times, want one question", r.calls)
	}
	if n := value(m.waits.WithLabelValues(WaitTimeout)); n != 0 {
		t.Errorf("waits{timeout} = %v, want 0", n)
	}
}

// TestTokenWaitsShareOneQuestion: a read that starts waiting while the
// poller's question is on its way is woken by the answer, which reaches
// its token too: two reads, one question.
func TestTokenWaitsShareOneQuestion(t *testing.T) {
	r := &heldReplica{asked: make(chan struct{}, 1), answer: make(chan storage.Position)}
	c := &clock{now: t0}
	rt := NewRouter(Options{Config: syd, Primary: primary{pos: 200}, Replica: r, Now: c.Now, Sleep: c.Sleep})
	h := rt.Wrap(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.Write([]byte("read")) }))
	codes := make(chan int, 2)
	read := func(token string) { codes <- do(h, "GET", "/api/notes/1", "", TokenHeader, token).Code }
	go read("0/64") // 100
	<-r.asked
	go read("0/96") // 150
	if !testenv.Eventually(10*time.Second, func() bool {
		rt.waiting.mu.Lock()
		defer rt.waiting.mu.Unlock()
		return len(rt.waiting.set) == 2
	}) {
		t.Fatal("the second read never started waiting")
	}
	r.answer <- 150
	for range 2 {
		if code := <-codes; code != http.StatusOK {
			t.Errorf("a read got %d, want 200 from the replica", code)
		}
	}
	if n := r.calls.Load(); n != 1 {
		t.Errorf("two reads asked the replica %d times, want once", n)
	}
}

// heldReplica says it was asked on asked, then answers what the test
// sends on answer.
type heldReplica struct {
	asked  chan struct{}
	answer chan storage.Position
	calls  atomic.Int32
}

func (r *heldReplica) ReplayPosition(context.Context) (storage.Position, error) {
	r.calls.Add(1)
	r.asked <- struct{}{}
	return <-r.answer, nil
}

func TestTokenWaitTimesOutIntoReplay(t *testing.T) {
	r := &replica{at: 99, later: 100, catchUp: t0.Add(time.Hour)}
	rt, a, c, m := newRouter(setup{cfg: syd, primary: primary{pos: 100}, replica: r})
	wantReplay(t, do(rt.Wrap(a), "GET", "/api/notes/1", "", TokenHeader, "0/64"), a)
	if c.slept != 500*time.Millisecond {
		t.Errorf("waited %s, want REPLICA_WAIT (500ms)", c.slept)
	}
	if n := value(m.waits.WithLabelValues(WaitTimeout)); n != 1 {
		t.Errorf("waits{timeout} = %v", n)
	}
	if n := value(m.replays.WithLabelValues(ReasonBehind)); n != 1 {
		t.Errorf("replays{behind} = %v", n)
	}
}

func TestTokenWaitReplicaDownReadsPrimary(t *testing.T) {
	r := &replica{err: fmt.Errorf("%w: connection refused", storage.ErrUnavailable)}
	rt, a, _, m := newRouter(setup{cfg: syd, primary: primary{pos: 1}, replica: r})
	w := do(rt.Wrap(a), "GET", "/api/notes/1", "", TokenHeader, "0/64")
	if w.Code != 200 || !a.primaryReads[0] {
		t.Fatalf("got %d, primary reads %v; want it read from the primary", w.Code, a.primaryReads)
	}
	if n := value(m.waits.WithLabelValues(WaitError)); n != 1 {
		t.Errorf("waits{error} = %v", n)
	}
	// A malformed token is ignored.
	w = do(rt.Wrap(a), "GET", "/api/notes/1", "", TokenHeader, "not-a-token")
	if w.Code != 200 || a.primaryReads[1] || r.calls != 1 {
		t.Errorf("a malformed token: got %d, primary reads %v, replica asked %d times", w.Code, a.primaryReads, r.calls)
	}
}

func TestMetricsRegister(t *testing.T) {
	reg := prometheus.NewRegistry()
	if err := NewMetrics().Register(reg); err != nil {
		t.Fatal(err)
	}
	families, err := reg.Gather()
	n := 0
	for _, f := range families {
		n += len(f.GetMetric())
	}
	if err != nil || n != 8 { // 4 replay reasons, 3 wait outcomes, fallbacks
		t.Errorf("gathered %d series (%v), want 8", n, err)
	}
}

func TestDescribe(t *testing.T) {
	r := &replica{at: 90, later: 90}
	rt, _, _, _ := newRouter(setup{cfg: syd, primary: primary{pos: 100}, replica: r})
	d := rt.Describe(context.Background())
	if d["region"] != "syd" || d["primary_region"] != "ord" || d["replica_lag_bytes"] != "10" || !strings.Contains(d["reads"], "replica") {
		t.Errorf("Describe() = %v", d)
	}
	rt, _, _, _ = newRouter(setup{cfg: syd, local: true})
	if d := rt.Describe(context.Background()); !strings.Contains(d["reads"], "replayed to ord") {
		t.Errorf("SQLite: Describe() = %v", d)
	}
}

// value reads a counter.
func value(c prometheus.Counter) float64 {
	var m dto.Metric
	if err := c.Write(&m); err != nil {
		panic(err)
	}
	return m.GetCounter().GetValue()
}

// TestTokenJoinsAStalePrimaryQuestion: a read whose token is past the
// replica joins a question to the primary that was asked before its write
// committed. That answer is older than the token, but the token is not
// beyond the primary: the read must still wait for the replica, and then
// replay, never be served stale data from the replica.
func TestTokenJoinsAStalePrimaryQuestion(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		p := &heldPrimary{release: make(chan struct{}), first: 100, then: 200}
		r := &replica{clock: &clock{now: t0}, at: 50, later: 50, catchUp: t0.Add(time.Hour)}
		rt := NewRouter(Options{Config: syd, Primary: p, Replica: r})
		h := rt.Wrap(&app{})
		codes := make(chan *httptest.ResponseRecorder, 2)
		go func() { codes <- do(h, "GET", "/api/notes/1", "", TokenHeader, "0/5A") }() // 90: asks the primary
		synctest.Wait()
		go func() { codes <- do(h, "GET", "/api/notes/1", "", TokenHeader, "0/96") }() // 150: joins the question
		// The poller's next question tells the second read it is behind;
		// in the bubble this moves only the fake clock.
		time.Sleep(50 * time.Millisecond)
		synctest.Wait()
		close(p.release)
		for range 2 {
			if w := <-codes; w.Header().Get(ReplayHeader) == "" {
				t.Errorf("a read with a token past the replica was served from it (%d), want a replay to the primary", w.Code)
			}
		}
	})
}

// heldPrimary answers its first question with first once release is
// closed, and every later one with then at once.
type heldPrimary struct {
	release     chan struct{}
	first, then storage.Position
	calls       atomic.Int32
}

func (p *heldPrimary) WritePosition(context.Context) (storage.Position, error) {
	if p.calls.Add(1) == 1 {
		<-p.release
		return p.first, nil
	}
	return p.then, nil
}

// TestReplaysPredictsWrap holds Replays to what Wrap does: it reports true
// exactly for the requests Wrap answers with a replay before the app sees
// them, so a rate limit counts a request only where it is served.
func TestReplaysPredictsWrap(t *testing.T) {
	for _, tc := range []struct {
		name          string
		cfg           Config
		local         bool
		method, path  string
		contentLength int64 // -1 unknown; 0 means the body's length
		header        []string
		want          bool
	}{
		{"write in a replica region", syd, false, "POST", "/api/notes", 0, nil, true},
		{"delete in a replica region", syd, false, "DELETE", "/api/notes/1", 0, nil, true},
		{"read in a replica region", syd, false, "GET", "/api/notes", 0, nil, false},
		{"upload served in place", syd, false, "POST", "/api/files", 0, nil, false},
		{"write of unknown length", syd, false, "POST", "/api/notes", -1, nil, false},
		{"write too large to replay", syd, false, "PUT", "/api/notes/1", MaxReplayBody + 1, nil, false},
		{"write already replayed", syd, false, "POST", "/api/notes", 0, []string{ReplaySrcHeader, "instance=x;region=ord"}, false},
		{"health check", syd, false, "GET", "/healthz", 0, nil, false},
		{"local data: a read", syd, true, "GET", "/api/notes", 0, nil, true},
		{"local data: a write", syd, true, "POST", "/api/notes", 0, nil, true},
		{"local data: a health check", syd, true, "GET", "/readyz", 0, nil, false},
		{"local data: too large", syd, true, "POST", "/api/files", MaxReplayBody + 1, nil, false},
		{"local data: already replayed", syd, true, "GET", "/api/notes", 0, []string{ReplaySrcHeader, "instance=x;region=ord"}, false},
		{"write in the primary region", ord, false, "POST", "/api/notes", 0, nil, false},
		{"local data in the primary region", ord, true, "GET", "/api/notes", 0, nil, false},
		{"off Fly", Config{}, true, "POST", "/api/notes", 0, nil, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rt, a, _, _ := newRouter(setup{cfg: tc.cfg, local: tc.local})
			req := func() *http.Request {
				r := httptest.NewRequest(tc.method, tc.path, strings.NewReader(`{"title":"t"}`))
				if tc.contentLength != 0 {
					r.ContentLength = tc.contentLength
				}
				for i := 0; i+1 < len(tc.header); i += 2 {
					r.Header.Set(tc.header[i], tc.header[i+1])
				}
				return r
			}
			got := rt.Replays(req())
			w := httptest.NewRecorder()
			rt.Wrap(a).ServeHTTP(w, req())
			replayed := w.Header().Get(ReplayHeader) != ""
			if got != tc.want || replayed != tc.want {
				t.Errorf("Replays = %v and Wrap replayed: %v (%d, app served %d); want both %v", got, replayed, w.Code, a.served, tc.want)
			}
			if replayed && a.served != 0 {
				t.Errorf("Wrap replayed after the app served it")
			}
		})
	}
}
