package cache

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"net"
	"strings"
	"sync"
	"testing"
	"time"
)

// syncBuffer is a log destination tests read while the cache writes.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// deadURL is a Redis URL with a password on a port nothing listens on.
func deadURL(t *testing.T) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	ln.Close()
	return fmt.Sprintf("redis://default:s3cret@127.0.0.1:%d/0", port)
}

// TestRedisDownAtStart: the app opens and serves with Redis down; failures
// are counted every time and logged once a minute, without the password.
func TestRedisDownAtStart(t *testing.T) {
	var logs syncBuffer
	log := slog.New(slog.NewTextHandler(&logs, nil))
	cfg, err := load(map[string]string{"REDIS_URL": deadURL(t), "REDIS_TIMEOUT": "50ms"})
	if err != nil {
		t.Fatal(err)
	}
	c, err := Open(t.Context(), cfg, log)
	if err != nil {
		t.Fatalf("Open with Redis down: %v", err)
	}
	defer c.Close()
	c.stopRetrying() // this test counts every command
	// Open's ping failed, and said so once, naming the Redis it tried.
	if n := strings.Count(logs.String(), "redis command failed"); n != 1 || !strings.Contains(logs.String(), "op=ping") || !strings.Contains(logs.String(), "redis=redis://default:xxxxx@") {
		t.Errorf("Open with Redis down logged %d failures, want 1 for its ping with the URL masked:\n%s", n, logs.String())
	}
	atOpen := logs.String()
	clk := newClock()
	c.errs = newErrorLog(log, clk.Now, time.Minute)
	c.breaker.mu.Lock()
	c.breaker.now, c.breaker.failures = clk.Now, 0 // forget Open's ping
	c.breaker.mu.Unlock()

	for range 5 {
		within(t, time.Second, "Get with Redis down", func() {
			if _, tok, ok := c.Get(t.Context(), Note, "n"); ok || tok != (Token{}) {
				t.Errorf("Get with Redis down: hit %v, token %+v", ok, tok)
			}
		})
	}
	if got := value(t, c.metrics.errors.WithLabelValues("get")); got != 5 {
		t.Errorf("counted %v get errors, want 5", got)
	}
	commands := func() string { return strings.TrimPrefix(logs.String(), atOpen) }
	if n := strings.Count(commands(), "redis command failed"); n != 1 {
		t.Errorf("logged %d failures in the first minute, want 1:\n%s", n, commands())
	}
	clk.Add(time.Minute)
	c.Get(t.Context(), Note, "n")
	if n := strings.Count(commands(), "redis command failed"); n != 2 || !strings.Contains(commands(), "unlogged_failures=4") {
		t.Errorf("after a minute: %d lines, want 2, the second counting 4 unlogged:\n%s", n, logs.String())
	}
	// A caller that gives up is not Redis's failure.
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	c.Get(ctx, Note, "n")
	if got := value(t, c.metrics.errors.WithLabelValues("get")); got != 6 {
		t.Errorf("counted %v get errors after a cancelled Get, want 6", got)
	}
	// Five failures in a row opened the breaker: Redis is skipped for a
	// second, then tried again.
	if !c.breaker.skip() {
		t.Fatal("the breaker is closed after repeated failures")
	}
	c.Get(t.Context(), Note, "n")
	c.Invalidate(t.Context(), Note, "n")
	if got := value(t, c.metrics.errors.WithLabelValues("get")); got != 6 {
		t.Errorf("a Get went to Redis with the breaker open (%v errors)", got)
	}
	if !c.stale.bypass(c.entryKey(Note, "n")) {
		t.Error("an Invalidate the breaker skipped was not remembered as failed")
	}
	clk.Add(breakerCooldown)
	c.Get(t.Context(), Note, "n")
	if got := value(t, c.metrics.errors.WithLabelValues("get")); got != 6 {
		t.Errorf("the key is bypassed, yet a Get went to Redis (%v errors)", got)
	}
	c.Get(t.Context(), File, "f")
	if got := value(t, c.metrics.errors.WithLabelValues("get")); got != 7 {
		t.Errorf("after the cooldown a Get did not try Redis (%v errors, want 7)", got)
	}
	if err := c.Ping(t.Context()); err == nil || strings.Contains(err.Error(), "s3cret") {
		t.Errorf("Ping = %v; want an error without the password", err)
	}
	if d := fmt.Sprint(c.Describe()); !strings.Contains(d, "xxxxx") || strings.Contains(d, "s3cret") {
		t.Errorf("Describe() = %s", d)
	}
	if strings.Contains(logs.String(), "s3cret") {
		t.Errorf("the log holds the password:\n%s", logs.String())
	}
}
