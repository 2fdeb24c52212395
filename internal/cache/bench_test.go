package cache

import (
	"context"
	"testing"
	"time"

	"github.com/example/flystorage/internal/testenv"
)

// BenchmarkGetHit is one cached read: one script round trip.
func BenchmarkGetHit(b *testing.B) {
	c := benchCache(b)
	ctx := context.Background()
	_, tok, _ := c.Get(ctx, Note, "hot")
	c.Fill(ctx, Note, "hot", tok, []byte(`{"id":"hot","body":"a note of a typical size, a line or two of text"}`))
	for b.Loop() {
		if _, _, ok := c.Get(ctx, Note, "hot"); !ok {
			b.Fatal("miss")
		}
	}
}

// BenchmarkMissFillInvalidate is a write followed by a read: Invalidate,
// then a miss and its Fill.
func BenchmarkMissFillInvalidate(b *testing.B) {
	c := benchCache(b)
	ctx := context.Background()
	for b.Loop() {
		c.Invalidate(ctx, Note, "n")
		_, tok, _ := c.Get(ctx, Note, "n")
		c.Fill(ctx, Note, "n", tok, []byte(`{"id":"n"}`))
	}
}

// BenchmarkRateLimit is one shared rate-limit decision.
func BenchmarkRateLimit(b *testing.B) {
	c := benchCache(b)
	l := c.NewLimiter(Rate{N: 1_000_000, Per: time.Hour}, time.Now)
	for b.Loop() {
		l.Allow(context.Background(), "203.0.113.7")
	}
}

func benchCache(b *testing.B) *Cache {
	url := testenv.RedisURL(b)
	prefix := "flystorage-bench-" + testenv.RandomHex(6) + ":"
	cfg, err := Load(func(name string) string {
		return map[string]string{"REDIS_URL": url, "REDIS_TIMEOUT": "2s"}[name]
	})
	if err != nil {
		b.Fatal(err)
	}
	cfg.KeyPrefix = prefix
	c, err := Open(context.Background(), cfg, nil)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() {
		ctx := context.Background()
		keys, _ := c.client.Keys(ctx, prefix+"*").Result()
		if len(keys) > 0 {
			c.client.Del(ctx, keys...)
		}
		c.Close()
	})
	return c
}
