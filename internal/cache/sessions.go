package cache

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"maps"
	"slices"
	"sync"
	"time"

	"github.com/example/flystorage/internal/storage"
)

// Sessions keeps browser sessions. The cookie holds a random 32-byte
// secret; stores key a session by the secret's SHA-256, so neither Redis
// nor the database ever holds a usable cookie. Deleting a session revokes
// it at once on every machine: every Get asks the store.
type Sessions interface {
	// Create starts a session lasting ttl and returns the secret for the
	// cookie.
	Create(ctx context.Context, ttl time.Duration) (string, error)
	// Get reports whether secret names a live session. A malformed secret
	// is simply not one. The error (matching storage.ErrUnavailable when
	// the store cannot be reached) means "unknown", not "signed out".
	Get(ctx context.Context, secret string) (bool, error)
	// Delete ends the session; ending a missing one is not an error.
	Delete(ctx context.Context, secret string) error
}

// secretBytes is the length of a session secret.
const secretBytes = 32

// newSecret returns a cookie secret and its store id.
func newSecret() (secret, id string) {
	b := make([]byte, secretBytes)
	rand.Read(b)
	secret = base64.RawURLEncoding.EncodeToString(b)
	return secret, sessionID(secret)
}

// sessionID is the store's key for secret, or "" if secret cannot be one.
func sessionID(secret string) string {
	b, err := base64.RawURLEncoding.DecodeString(secret)
	if err != nil || len(b) != secretBytes {
		return ""
	}
	sum := sha256.Sum256([]byte(secret))
	return hex.EncodeToString(sum[:])
}

// Sessions returns the session store: Redis when c has it, else db.
// Redis sessions still use db, to record a deletion Redis did not take.
func (c *Cache) Sessions(db storage.Database) Sessions {
	if c.Enabled() {
		return &RedisSessions{c: c, db: db, now: storage.Now}
	}
	return &DBSessions{DB: db, Now: storage.Now}
}

// RedisSessions keeps sessions as keys that Redis expires. With Redis
// down nobody can sign in or be recognised by cookie (Get returns an
// error); requests with the API token still work.
//
// A session deleted while Redis does not answer is recorded in the
// database as revoked (see Delete), and Get looks for that record before
// it accepts a session Redis holds: one indexed read per request with a
// session cookie, which is what makes the deletion stand on every
// machine, across restarts, whatever Redis still holds.
type RedisSessions struct {
	c   *Cache
	db  storage.Database
	now func() time.Time
}

var _ Sessions = (*RedisSessions)(nil)

func (s *RedisSessions) key(id string) string { return s.c.key("session", id) }

// revokedID is the database session id that records the revocation of the
// Redis session id: never a session's own id, which is hex.
func revokedID(id string) string { return "revoked:" + id }

// Create implements Sessions.
func (s *RedisSessions) Create(ctx context.Context, ttl time.Duration) (string, error) {
	if ttl < time.Second {
		return "", fmt.Errorf("%w: session ttl %v is under a second", storage.ErrInvalid, ttl)
	}
	secret, id := newSecret()
	if s.c.breaker.skip() {
		return "", s.unavailable(ctx, "creating a session", errSkipped)
	}
	bctx, cancel := s.c.bound(ctx)
	defer cancel()
	// SET NX EX: a clash of 256-bit secrets cannot happen, but must not
	// share a session if it did.
	ok, err := s.c.client.SetNX(bctx, s.key(id), "1", ttl).Result()
	if err != nil {
		return "", s.unavailable(ctx, "creating a session", err)
	}
	if !ok {
		return "", fmt.Errorf("%w: session id taken", storage.ErrConflict)
	}
	return secret, nil
}

// Get implements Sessions.
func (s *RedisSessions) Get(ctx context.Context, secret string) (bool, error) {
	id := sessionID(secret)
	if id == "" || s.c.revoked.has(s.key(id)) {
		return false, nil // no session, or signed out while Redis was away
	}
	if s.c.breaker.skip() {
		return false, s.unavailable(ctx, "reading a session", errSkipped)
	}
	bctx, cancel := s.c.bound(ctx)
	defer cancel()
	n, err := s.c.client.Exists(bctx, s.key(id)).Result()
	if err != nil {
		return false, s.unavailable(ctx, "reading a session", err)
	}
	if n == 0 {
		return false, nil
	}
	_, err = s.db.GetSession(ctx, revokedID(id), s.now())
	switch {
	case errors.Is(err, storage.ErrNotFound):
		return true, nil
	case err != nil:
		return false, fmt.Errorf("reading whether a session was revoked: %w", err)
	}
	return false, nil // deleted while Redis was away
}

// Delete implements Sessions. When Redis does not answer, the session is
// still ended: Delete records it in the database as revoked until it
// would have expired (SESSION_TTL), where every machine's Get finds it,
// before and after a restart. This machine also refuses it at once and
// deletes it in Redis once Redis answers again, retrying every second
// (like a failed invalidation). If the database fails too, Delete returns
// its error: only this machine's memory holds the deletion then, and the
// session may come back.
func (s *RedisSessions) Delete(ctx context.Context, secret string) error {
	id := sessionID(secret)
	if id == "" {
		return nil
	}
	key := s.key(id)
	err := errSkipped
	if !s.c.breaker.skip() {
		bctx, cancel := s.c.bound(ctx)
		defer cancel()
		err = s.c.client.Del(bctx, key).Err()
	}
	if err == nil {
		return nil
	}
	s.c.failed(ctx, "session", err)
	s.c.revoked.add(key)
	now := s.now()
	tomb := storage.Session{ID: revokedID(id), CreatedAt: now, ExpiresAt: now.Add(s.c.cfg.SessionTTL)}
	// The client may hang up now; its session must end all the same.
	dctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	if err := s.db.CreateSession(dctx, tomb); err != nil && !errors.Is(err, storage.ErrConflict) {
		return fmt.Errorf("recording a session's deletion while redis does not answer: %w", err)
	}
	return nil
}

func (s *RedisSessions) unavailable(ctx context.Context, doing string, err error) error {
	s.c.failed(ctx, "session", err)
	return fmt.Errorf("%w: %s in redis: %w", storage.ErrUnavailable, doing, err)
}

// maxRevoked is how many sessions deleted while Redis did not answer a
// machine remembers, to refuse them itself and delete them in Redis later.
const maxRevoked = 10_000

// revokedSet is the keys of sessions deleted while Redis did not answer,
// at most maxRevoked of them: past it, the database's records alone keep
// those sessions ended, and Redis expires their keys.
type revokedSet struct {
	mu   sync.Mutex
	keys map[string]bool
}

func (s *revokedSet) add(key string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.keys == nil {
		s.keys = map[string]bool{}
	}
	if len(s.keys) < maxRevoked {
		s.keys[key] = true
	}
}

func (s *revokedSet) has(key string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.keys[key]
}

func (s *revokedSet) list() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Collect(maps.Keys(s.keys))
}

func (s *revokedSet) remove(keys []string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, k := range keys {
		delete(s.keys, k)
	}
}

// retryRevocations deletes in Redis the sessions whose deletion failed.
func (c *Cache) retryRevocations(ctx context.Context, keys []string) {
	bctx, cancel := c.bound(ctx)
	defer cancel()
	if err := c.client.Del(bctx, keys...).Err(); err != nil {
		c.failed(ctx, "session", err)
		return
	}
	c.revoked.remove(keys)
}

// DBSessions keeps sessions in the database, for an app without Redis.
type DBSessions struct {
	DB  storage.Database
	Now func() time.Time // storage.Now in the app; a test moves it
}

var _ Sessions = (*DBSessions)(nil)

// Create implements Sessions.
func (s *DBSessions) Create(ctx context.Context, ttl time.Duration) (string, error) {
	if ttl < time.Second {
		return "", fmt.Errorf("%w: session ttl %v is under a second", storage.ErrInvalid, ttl)
	}
	secret, id := newSecret()
	now := s.Now()
	if err := s.DB.CreateSession(ctx, storage.Session{ID: id, CreatedAt: now, ExpiresAt: now.Add(ttl)}); err != nil {
		return "", fmt.Errorf("creating a session: %w", err)
	}
	return secret, nil
}

// Get implements Sessions.
func (s *DBSessions) Get(ctx context.Context, secret string) (bool, error) {
	id := sessionID(secret)
	if id == "" {
		return false, nil
	}
	_, err := s.DB.GetSession(ctx, id, s.Now())
	switch {
	case errors.Is(err, storage.ErrNotFound):
		return false, nil
	case err != nil:
		return false, fmt.Errorf("reading a session: %w", err)
	}
	return true, nil
}

// Delete implements Sessions.
func (s *DBSessions) Delete(ctx context.Context, secret string) error {
	id := sessionID(secret)
	if id == "" {
		return nil
	}
	if err := s.DB.DeleteSession(ctx, id); err != nil {
		return fmt.Errorf("deleting a session: %w", err)
	}
	return nil
}
