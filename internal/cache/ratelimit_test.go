package cache

import (
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/example/flystorage/internal/testenv"
)

// TestRedisLimiterShared: two machines hammering one client together
// allow exactly the limit in a window, no more.
func TestRedisLimiterShared(t *testing.T) {
	url := testenv.RedisURL(t)
	prefix := testPrefix(t, url)
	rate := Rate{N: 25, Per: time.Minute}
	a, b := open(t, url, prefix, nil), open(t, url, prefix, nil)
	limiters := []Limiter{a.NewLimiter(rate, time.Now), b.NewLimiter(rate, time.Now)}
	if _, ok := limiters[0].(*RedisLimiter); !ok {
		t.Fatalf("NewLimiter with Redis is a %T", limiters[0])
	}
	var allowed atomic.Int64
	var wg sync.WaitGroup
	for w := range 8 {
		wg.Go(func() {
			for range 20 {
				ok, retry := limiters[w%2].Allow(t.Context(), "203.0.113.7")
				if ok {
					allowed.Add(1)
				} else if retry <= 0 || retry > time.Minute {
					t.Errorf("retryAfter = %v, want in (0, 1m]", retry)
				}
			}
		})
	}
	wg.Wait()
	if got := allowed.Load(); got != int64(rate.N) {
		t.Errorf("allowed %d of 160 requests, want exactly %d", got, rate.N)
	}
	if ok, _ := limiters[1].Allow(t.Context(), "198.51.100.1"); !ok {
		t.Error("another client was limited")
	}
	limited := value(t, a.metrics.limited) + value(t, b.metrics.limited)
	if limited != 160-float64(rate.N) {
		t.Errorf("rate_limited_total = %v, want %d", limited, 160-rate.N)
	}
	for _, c := range []*Cache{a, b} {
		if e := value(t, c.metrics.errors.WithLabelValues("ratelimit")); e != 0 {
			t.Errorf("%v limiter commands failed; the count above may have come from the local fallback", e)
		}
	}
}

// TestRedisLimiterFailsOpenToLocal: with Redis gone the limit holds per
// machine, and calls come back within their bound.
func TestRedisLimiterFailsOpenToLocal(t *testing.T) {
	srv := testenv.StartRedis(t)
	c := open(t, srv.URL(), testPrefix(t, srv.URL()), map[string]string{"REDIS_TIMEOUT": "50ms"})
	clk := newClock()
	l := c.NewLimiter(Rate{N: 3, Per: time.Minute}, clk.Now)
	srv.Kill(t)
	var got []bool
	for range 5 {
		within(t, time.Second, "Allow with Redis down", func() {
			ok, _ := l.Allow(t.Context(), "client")
			got = append(got, ok)
		})
	}
	if want := []bool{true, true, true, false, false}; !equal(got, want) {
		t.Errorf("Allow with Redis down: %v, want %v", got, want)
	}
	if e := value(t, c.metrics.errors.WithLabelValues("ratelimit")); e != 5 {
		t.Errorf("counted %v errors, want 5", e)
	}
}

func TestLocalLimiter(t *testing.T) {
	clk := newClock()
	l := NewLocalLimiter(Rate{N: 2, Per: time.Second}, clk.Now, 3)
	allow := func(client string) bool { ok, _ := l.Allow(t.Context(), client); return ok }

	if !allow("a") || !allow("a") {
		t.Fatal("the first two requests were refused")
	}
	clk.Add(400 * time.Millisecond)
	if ok, retry := l.Allow(t.Context(), "a"); ok || retry != 600*time.Millisecond {
		t.Errorf("third request: %v, retry after %v; want refused, 600ms", ok, retry)
	}
	clk.Add(600 * time.Millisecond)
	if !allow("a") {
		t.Error("refused after the window ended")
	}

	// Bounded: a fourth client pushes out the one whose window is oldest,
	// here a, which has used its two requests and is then let in afresh.
	if !allow("a") || allow("a") {
		t.Fatal("a's second window did not hold 2")
	}
	allow("b")
	clk.Add(10 * time.Millisecond)
	allow("c")
	allow("d")
	if l.Len() != 3 {
		t.Errorf("remembers %d clients, want 3", l.Len())
	}
	if !allow("a") {
		t.Error("a was refused: it was remembered past the bound")
	}
	// Idle clients are forgotten once their window ends.
	clk.Add(time.Hour)
	allow("e")
	if l.Len() != 1 {
		t.Errorf("after an idle hour it remembers %d clients, want 1", l.Len())
	}
}

func equal(a, b []bool) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}
