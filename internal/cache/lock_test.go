package cache

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/example/flystorage/internal/storage"
	"github.com/example/flystorage/internal/testenv"
)

// waitDone waits for ctx to end, failing the test after limit.
func waitDone(t *testing.T, ctx context.Context, limit time.Duration, what string) time.Time {
	t.Helper()
	select {
	case <-ctx.Done():
		return time.Now()
	case <-time.After(limit):
		t.Fatalf("%s: the lease's context was not cancelled within %v", what, limit)
		return time.Time{}
	}
}

func TestLockShared(t *testing.T) {
	url := testenv.RedisURL(t)
	prefix := testPrefix(t, url)
	a, b := open(t, url, prefix, map[string]string{"REDIS_TIMEOUT": "100ms"}), open(t, url, prefix, map[string]string{"REDIS_TIMEOUT": "100ms"})
	ctx := t.Context()
	const ttl = 600 * time.Millisecond

	lease, err := a.Lock(ctx, "sweep", ttl)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := b.Lock(ctx, "sweep", ttl); !errors.Is(err, ErrLocked) {
		t.Fatalf("second Lock: %v, want ErrLocked", err)
	}
	if other, err := b.Lock(ctx, "backup", ttl); err != nil {
		t.Errorf("another name: %v", err)
	} else {
		other.Release(ctx)
	}
	// Renewals keep the lock well past its TTL; waiting out three TTLs is
	// waiting for Redis to expire a key that is not renewed.
	select {
	case <-lease.Context().Done():
		t.Fatalf("the lease ended while renewed: %v", context.Cause(lease.Context()))
	case <-time.After(3 * ttl):
	}
	if _, err := b.Lock(ctx, "sweep", ttl); !errors.Is(err, ErrLocked) {
		t.Fatalf("Lock after 3 TTLs of renewals: %v, want ErrLocked", err)
	}
	if err := lease.Release(ctx); err != nil {
		t.Fatalf("Release: %v", err)
	}
	if !errors.Is(context.Cause(lease.Context()), errReleased) {
		t.Errorf("after Release the context's cause is %v", context.Cause(lease.Context()))
	}
	next, err := b.Lock(ctx, "sweep", ttl)
	if err != nil {
		t.Fatalf("Lock after Release: %v", err)
	}
	next.Release(ctx)

	if _, err := a.Lock(ctx, "short", 100*time.Millisecond); !errors.Is(err, storage.ErrInvalid) {
		t.Errorf("a TTL under 4×REDIS_TIMEOUT: %v", err)
	}
}

// TestLockLost: when another client takes the key (as after an expiry),
// the next renewal fails and the holder's context ends at once.
func TestLockLost(t *testing.T) {
	url := testenv.RedisURL(t)
	prefix := testPrefix(t, url)
	c := open(t, url, prefix, map[string]string{"REDIS_TIMEOUT": "100ms"})
	const ttl = 600 * time.Millisecond
	lease, err := c.Lock(t.Context(), "sweep", ttl)
	if err != nil {
		t.Fatal(err)
	}
	if err := rawClient(t, url).Set(t.Context(), prefix+"lock:sweep", "someone else", time.Minute).Err(); err != nil {
		t.Fatal(err)
	}
	waitDone(t, lease.Context(), ttl, "lock taken over")
	if !errors.Is(context.Cause(lease.Context()), ErrLeaseLost) {
		t.Errorf("cause = %v, want ErrLeaseLost", context.Cause(lease.Context()))
	}
	if err := lease.Release(t.Context()); !errors.Is(err, ErrLeaseLost) {
		t.Errorf("Release of a lost lock: %v, want ErrLeaseLost", err)
	}
	if v := rawClient(t, url).Get(t.Context(), prefix+"lock:sweep").Val(); v != "someone else" {
		t.Errorf("Release of a lost lock deleted the new holder's key (now %q)", v)
	}
}

// TestLockDeadline: a lease that cannot renew is cancelled before its key
// expires in Redis, so nobody else can hold the lock while it works; the
// old holder's Release then leaves the new holder's lock alone.
func TestLockDeadline(t *testing.T) {
	url := testenv.RedisURL(t)
	prefix := testPrefix(t, url)
	a, b := open(t, url, prefix, map[string]string{"REDIS_TIMEOUT": "100ms"}), open(t, url, prefix, map[string]string{"REDIS_TIMEOUT": "100ms"})
	a.noRenew = true
	const ttl = time.Second
	start := time.Now()
	lease, err := a.Lock(t.Context(), "sweep", ttl)
	if err != nil {
		t.Fatal(err)
	}
	cancelled := waitDone(t, lease.Context(), 2*ttl, "no renewals")
	pttl, err := rawClient(t, url).PTTL(t.Context(), prefix+"lock:sweep").Result()
	if err != nil || pttl <= 0 {
		t.Fatalf("when the lease ended the key had PTTL %v, %v: it expired first", pttl, err)
	}
	if early := cancelled.Sub(start); early < ttl-lockMargin(ttl)-50*time.Millisecond {
		t.Errorf("cancelled after %v, long before the deadline %v", early, ttl-lockMargin(ttl))
	}
	if _, err := b.Lock(t.Context(), "sweep", ttl); !errors.Is(err, ErrLocked) {
		t.Fatalf("Lock in the margin: %v, want ErrLocked", err)
	}
	// Wait for Redis to expire the key, then another machine takes it.
	var next *Lease
	if !testenv.Eventually(pttl+5*time.Second, func() bool {
		next, err = b.Lock(t.Context(), "sweep", ttl)
		return err == nil || !errors.Is(err, ErrLocked)
	}) {
		t.Fatal("the lock did not expire in Redis")
	}
	if err != nil {
		t.Fatal(err)
	}
	defer next.Release(t.Context())
	if err := lease.Release(t.Context()); !errors.Is(err, ErrLeaseLost) {
		t.Errorf("the old holder's Release: %v, want ErrLeaseLost", err)
	}
	if next.Context().Err() != nil {
		t.Error("the old holder's Release ended the new holder's lease")
	}
	if _, err := a.Lock(t.Context(), "sweep", ttl); !errors.Is(err, ErrLocked) {
		t.Errorf("the old holder's Release freed the lock: %v", err)
	}
}

// TestLockRedisPaused: a renewal that cannot reach Redis cancels the
// lease at once.
func TestLockRedisPaused(t *testing.T) {
	srv := testenv.StartRedis(t)
	c := open(t, srv.URL(), testPrefix(t, srv.URL()), map[string]string{"REDIS_TIMEOUT": "100ms"})
	const ttl = 900 * time.Millisecond
	start := time.Now()
	lease, err := c.Lock(t.Context(), "sweep", ttl)
	if err != nil {
		t.Fatal(err)
	}
	srv.Pause(t)
	defer srv.Resume(t)
	cancelled := waitDone(t, lease.Context(), 2*ttl, "Redis paused")
	if d := cancelled.Sub(start); d >= ttl {
		t.Errorf("cancelled %v after locking, when the lock may have expired (%v)", d, ttl)
	}
	if !errors.Is(context.Cause(lease.Context()), ErrLeaseLost) {
		t.Errorf("cause = %v", context.Cause(lease.Context()))
	}
	if err := lease.Release(t.Context()); !errors.Is(err, storage.ErrUnavailable) {
		t.Errorf("Release with Redis paused: %v, want ErrUnavailable", err)
	}
}

// TestLocalLock: without Redis a lock keeps one process from running a
// job twice at once.
func TestLocalLock(t *testing.T) {
	cfg, _ := load(nil)
	c, err := Open(t.Context(), cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	lease, err := c.Lock(t.Context(), "sweep", time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Lock(t.Context(), "sweep", time.Minute); !errors.Is(err, ErrLocked) {
		t.Errorf("second Lock: %v", err)
	}
	if err := lease.Release(t.Context()); err != nil || lease.Context().Err() == nil {
		t.Errorf("Release: %v, context %v", err, lease.Context().Err())
	}
	again, err := c.Lock(t.Context(), "sweep", time.Minute)
	if err != nil {
		t.Fatalf("Lock after Release: %v", err)
	}
	again.Release(t.Context())
}
