package cache

import (
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/example/flystorage/internal/storage"
	"github.com/example/flystorage/internal/testenv"
)

// TestRedisSessions: two machines share sessions; deleting one on either
// revokes it on both at once.
func TestRedisSessions(t *testing.T) {
	url := testenv.RedisURL(t)
	prefix := testPrefix(t, url)
	db, _ := testenv.LocalStores(t)
	a, b := open(t, url, prefix, nil).Sessions(db), open(t, url, prefix, nil).Sessions(db)
	if _, ok := a.(*RedisSessions); !ok {
		t.Fatalf("Sessions() with Redis is a %T", a)
	}
	testSessions(t, a, b)

	// Redis holds the secret's hash, never the secret, and expires it.
	secret, err := a.Create(t.Context(), time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256([]byte(secret))
	raw := rawClient(t, url)
	ttl, err := raw.TTL(t.Context(), prefix+"session:"+hex.EncodeToString(sum[:])).Result()
	if err != nil || ttl <= 59*time.Minute || ttl > time.Hour {
		t.Errorf("the session key's TTL is %v, %v; want an hour", ttl, err)
	}
	keys, err := raw.Keys(t.Context(), prefix+"*").Result()
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range keys {
		if v := raw.Get(t.Context(), k).Val(); strings.Contains(k+v, secret) {
			t.Errorf("Redis holds the cookie's secret in %s", k)
		}
	}
}

// TestRedisSessionsDown: with Redis gone a session is unknown, not absent.
func TestRedisSessionsDown(t *testing.T) {
	srv := testenv.StartRedis(t)
	c := open(t, srv.URL(), testPrefix(t, srv.URL()), map[string]string{"REDIS_TIMEOUT": "100ms"})
	db, _ := testenv.LocalStores(t)
	s := c.Sessions(db)
	secret, err := s.Create(t.Context(), time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	srv.Kill(t)
	within(t, 2*time.Second, "a session read with Redis down", func() {
		if ok, err := s.Get(t.Context(), secret); ok || !errors.Is(err, storage.ErrUnavailable) {
			t.Errorf("Get with Redis down = %v, %v; want ErrUnavailable", ok, err)
		}
	})
	if _, err := s.Create(t.Context(), time.Hour); !errors.Is(err, storage.ErrUnavailable) {
		t.Errorf("Create with Redis down: %v", err)
	}
}

// TestDBSessions: without Redis, sessions live in the database, expire on
// its clock, and are revoked for every machine sharing it.
func TestDBSessions(t *testing.T) {
	db, _ := testenv.LocalStores(t)
	clk := newClock()
	cfg, _ := load(nil)
	c, err := Open(t.Context(), cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	a := c.Sessions(db)
	da, ok := a.(*DBSessions)
	if !ok {
		t.Fatalf("Sessions() without Redis is a %T", a)
	}
	da.Now = clk.Now
	b := &DBSessions{DB: db, Now: clk.Now}
	testSessions(t, a, b)

	secret, err := a.Create(t.Context(), time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	clk.Add(59 * time.Minute)
	if ok, err := b.Get(t.Context(), secret); !ok || err != nil {
		t.Errorf("Get before expiry = %v, %v", ok, err)
	}
	clk.Add(time.Minute)
	if ok, err := b.Get(t.Context(), secret); ok || err != nil {
		t.Errorf("Get at expiry = %v, %v; want false", ok, err)
	}
}

// testSessions runs what every Sessions must do, with a and b two machines
// sharing one store.
func testSessions(t *testing.T, a, b Sessions) {
	t.Helper()
	ctx := t.Context()
	secret, err := a.Create(ctx, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	if raw, err := base64.RawURLEncoding.DecodeString(secret); err != nil || len(raw) != 32 {
		t.Errorf("secret %q is not 32 bytes in base64url: %v", secret, err)
	}
	other, _ := a.Create(ctx, time.Hour)
	if other == secret {
		t.Error("two sessions got one secret")
	}
	for name, s := range map[string]Sessions{"a": a, "b": b} {
		if ok, err := s.Get(ctx, secret); !ok || err != nil {
			t.Errorf("machine %s: Get = %v, %v", name, ok, err)
		}
	}
	if err := b.Delete(ctx, secret); err != nil {
		t.Fatal(err)
	}
	for name, s := range map[string]Sessions{"a": a, "b": b} {
		if ok, err := s.Get(ctx, secret); ok || err != nil {
			t.Errorf("machine %s after Delete: Get = %v, %v; want false", name, ok, err)
		}
	}
	if ok, _ := a.Get(ctx, other); !ok {
		t.Error("deleting one session ended another")
	}
	if err := b.Delete(ctx, secret); err != nil {
		t.Errorf("deleting a deleted session: %v", err)
	}
	for _, bad := range []string{"", "x", secret + "x", "not base64 at all!!", secret[:20]} {
		if ok, err := a.Get(ctx, bad); ok || err != nil {
			t.Errorf("Get(%q) = %v, %v; want false", bad, ok, err)
		}
	}
	if _, err := a.Create(ctx, time.Millisecond); !errors.Is(err, storage.ErrInvalid) {
		t.Errorf("Create with a 1ms ttl: %v", err)
	}
}
