package cache

import (
	"context"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"github.com/redis/go-redis/v9"

	"github.com/example/flystorage/internal/testenv"
)

// testPrefix is a key prefix of the test's own on a shared Redis; every
// key under it is deleted when the test ends.
func testPrefix(t *testing.T, url string) string {
	t.Helper()
	prefix := "flystorage-test-" + testenv.RandomHex(6) + ":"
	t.Cleanup(func() {
		opts, err := redis.ParseURL(url)
		if err != nil {
			t.Errorf("cleaning up: %v", err)
			return
		}
		opts.MaxRetries = -1 // a test may have killed the server
		client := redis.NewClient(opts)
		defer client.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		iter := client.Scan(ctx, 0, prefix+"*", 1000).Iterator()
		var keys []string
		for iter.Next(ctx) {
			keys = append(keys, iter.Val())
		}
		if err := iter.Err(); err != nil {
			if ctx.Err() == nil && !strings.Contains(err.Error(), "refused") {
				t.Errorf("listing %s* keys: %v", prefix, err)
			}
			return
		}
		if len(keys) > 0 {
			if err := client.Del(ctx, keys...).Err(); err != nil {
				t.Errorf("deleting %s* keys: %v", prefix, err)
			}
		}
	})
	return prefix
}

// open opens a Cache on url with the test's prefix: one "machine". The
// timeout is generous, as the test machines are busy; tests of a down
// Redis pass a shorter one.
func open(t *testing.T, url, prefix string, env map[string]string) *Cache {
	t.Helper()
	vars := map[string]string{"REDIS_URL": url, "REDIS_TIMEOUT": "2s"}
	for k, v := range env {
		vars[k] = v
	}
	cfg, err := Load(func(name string) string { return vars[name] })
	if err != nil {
		t.Fatal(err)
	}
	cfg.KeyPrefix = prefix
	c, err := Open(context.Background(), cfg, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// rawClient is a plain client, for looking at what the cache wrote.
func rawClient(t *testing.T, url string) *redis.Client {
	t.Helper()
	opts, err := redis.ParseURL(url)
	if err != nil {
		t.Fatal(err)
	}
	client := redis.NewClient(opts)
	t.Cleanup(func() { client.Close() })
	return client
}

// value reads a counter.
func value(t *testing.T, m prometheus.Metric) float64 {
	t.Helper()
	var d dto.Metric
	if err := m.Write(&d); err != nil {
		t.Fatal(err)
	}
	return d.GetCounter().GetValue()
}

// clock is a fake time that tests move.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func newClock() *clock { return &clock{t: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)} }

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) Add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// within fails the test if f takes longer than limit: a bound on a call
// that must not hang, not a speed goal.
func within(t *testing.T, limit time.Duration, what string, f func()) {
	t.Helper()
	start := time.Now()
	f()
	if d := time.Since(start); d > limit {
		t.Errorf("%s took %v, more than %v", what, d, limit)
	}
}
