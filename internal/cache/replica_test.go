package cache

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/example/flystorage/internal/storage"
	"github.com/example/flystorage/internal/testenv"
)

// TestReadNeverFillsAReplicasAnswer: Read returns what a replica answered
// (storage.ServedByReplica) but never caches it, so a later read loads
// again and caches its own, which the next read finds.
func TestReadNeverFillsAReplicasAnswer(t *testing.T) {
	url := testenv.RedisURL(t)
	c := open(t, url, testPrefix(t, url), nil)
	ctx := t.Context()
	loads := 0
	load := func(v string, replica bool) func(context.Context) (string, error) {
		return func(ctx context.Context) (string, error) {
			loads++
			if replica {
				storage.ServedByReplica(ctx)
			}
			return v, nil
		}
	}
	if v, err := Read(ctx, c, Note, "p1", load("old", true)); err != nil || v != "old" {
		t.Fatalf("Read answered by a replica = %q, %v", v, err)
	}
	if v, err := Read(ctx, c, Note, "p1", load("new", false)); err != nil || v != "new" {
		t.Errorf("Read after a replica's = %q, %v; want new, loaded, since the replica's filled nothing", v, err)
	}
	if v, err := Read(ctx, c, Note, "p1", load("old", true)); err != nil || v != "new" || loads != 2 {
		t.Errorf("Read after the primary's = %q, %v after %d loads; want new from the cache, 2 loads", v, err, loads)
	}
}

// TestRedisSessionsDeletedWhileDown: signing out while Redis does not
// answer ends the session at once on this machine, and in Redis once it
// answers again.
func TestRedisSessionsDeletedWhileDown(t *testing.T) {
	srv := testenv.StartRedis(t)
	c := open(t, srv.URL(), testPrefix(t, srv.URL()), map[string]string{"REDIS_TIMEOUT": "200ms"})
	db, _ := testenv.LocalStores(t)
	s := c.Sessions(db)
	secret, err := s.Create(t.Context(), time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	srv.Pause(t)
	// A paused Redis still receives what is written to it and runs it on
	// Resume; fail commands until the breaker opens, so the Delete below
	// sends nothing and only the retry can reach Redis.
	if !testenv.Eventually(10*time.Second, func() bool { s.Get(t.Context(), secret); return c.breaker.skip() }) {
		t.Fatal("the breaker did not open with Redis paused")
	}
	if err := s.Delete(t.Context(), secret); err != nil {
		t.Errorf("Delete with Redis paused = %v, want nil (retried later)", err)
	}
	if ok, err := s.Get(t.Context(), secret); ok || err != nil {
		t.Errorf("Get after that Delete = %v, %v; want false at once", ok, err)
	}
	srv.Resume(t)
	raw := rawClient(t, srv.URL())
	key := s.(*RedisSessions).key(sessionID(secret))
	// The deletion is retried every second.
	if !testenv.Eventually(10*time.Second, func() bool { return raw.Exists(context.Background(), key).Val() == 0 }) {
		t.Fatal("the session's delete did not reach Redis within 10s of Redis answering again")
	}
}

// TestRevokedWhileDownStaysRevoked is issue 21's row 10: a session
// deleted while Redis does not answer stays deleted on every machine once
// Redis answers again, even if the machine that deleted it never told
// Redis (it restarted, or Redis failed over and lost the delete).
func TestRevokedWhileDownStaysRevoked(t *testing.T) {
	srv := testenv.StartRedis(t)
	db, _ := testenv.LocalStores(t)
	prefix := testPrefix(t, srv.URL())
	a := open(t, srv.URL(), prefix, map[string]string{"REDIS_TIMEOUT": "200ms"})
	s := a.Sessions(db)
	secret, err := s.Create(t.Context(), time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	srv.Pause(t)
	if !testenv.Eventually(10*time.Second, func() bool { s.Get(t.Context(), secret); return a.breaker.skip() }) {
		t.Fatal("the breaker did not open with Redis paused")
	}
	if err := s.Delete(t.Context(), secret); err != nil {
		t.Errorf("Delete with Redis paused = %v, want nil (recorded in the database)", err)
	}
	a.Close() // a restart: what a kept in memory is gone
	srv.Resume(t)
	// Whether a's delete reached Redis (a paused Redis runs what it was
	// sent once it resumes) is not the question: put the key back, as if
	// it had not.
	key := s.(*RedisSessions).key(sessionID(secret))
	if err := rawClient(t, srv.URL()).Set(t.Context(), key, "1", time.Hour).Err(); err != nil {
		t.Fatal(err)
	}
	for name, m := range map[string]*Cache{"another machine": open(t, srv.URL(), prefix, nil), "a, restarted": open(t, srv.URL(), prefix, nil)} {
		if ok, err := m.Sessions(db).Get(t.Context(), secret); ok || err != nil {
			t.Errorf("%s: Get of the session deleted while Redis was away = %v, %v; want false", name, ok, err)
		}
	}
}

// TestRevokedSetIsBounded: the sessions this machine remembers deleting
// while Redis is away are at most maxRevoked; past it, it remembers no
// more (the database's record still stands).
func TestRevokedSetIsBounded(t *testing.T) {
	var s revokedSet
	for i := range maxRevoked + 10 {
		s.add(fmt.Sprint("key", i))
	}
	if n := len(s.list()); n != maxRevoked {
		t.Errorf("the set holds %d keys after %d adds, want at most %d", n, maxRevoked+10, maxRevoked)
	}
}
