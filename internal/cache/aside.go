package cache

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/example/flystorage/internal/storage"
)

// Kind names what a cached value is; it starts the value's key.
type Kind string

// The kinds the app caches, each by its id.
const (
	Note Kind = "note"
	File Kind = "file"
	// IdempotencyKey records never change once claimed, so a copy in Redis
	// is never stale; the database stays the record.
	IdempotencyKey Kind = "idempotency_key"
)

// Token is what a miss hands to Fill: the lease it took on the entry, and
// the epoch it saw. The zero Token fills nothing.
type Token struct {
	key, epoch, lease string
}

// leaseTTL bounds the time between a miss and its Fill: a slower database
// read fills nothing, which is safe.
const leaseTTL = 10 * time.Second

// maxStale is how many failed invalidations c remembers one by one; past
// it, c bypasses the whole cache until it has moved the epoch.
const maxStale = 10_000

// How an entry key holds its state, in one string so that one atomic
// script can read and change it:
//
//	absent                    nothing cached, no reader filling
//	"l" + epoch + ":" + lease a reader missed and is reading the database
//	"v" + epoch + ":" + value the cached value
//
// The epoch key holds a random string; moving it to another one makes
// every entry and lease of the old epoch worthless at once.

// getScript: KEYS epoch, entry; ARGV new epoch (if none), new lease, lease
// TTL in ms. Returns {1, value} on a hit, {0, lease, epoch} on a miss.
var getScript = redis.NewScript(`
local epoch = redis.call('GET', KEYS[1])
if not epoch then
  epoch = ARGV[1]
  redis.call('SET', KEYS[1], epoch)
end
local v = redis.call('GET', KEYS[2])
if v then
  local tag = 'v' .. epoch .. ':'
  if string.sub(v, 1, #tag) == tag then return {1, string.sub(v, #tag + 1)} end
  tag = 'l' .. epoch .. ':'
  if string.sub(v, 1, #tag) == tag then return {0, string.sub(v, #tag + 1), epoch} end
end
redis.call('SET', KEYS[2], 'l' .. epoch .. ':' .. ARGV[2], 'PX', ARGV[3])
return {0, ARGV[2], epoch}
`)

// fillScript: KEYS epoch, entry; ARGV epoch, lease, value, TTL in ms. It
// stores the value only if the epoch and the lease are the ones the miss
// saw: no invalidation (which deletes the lease) came in between.
var fillScript = redis.NewScript(`
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
if redis.call('GET', KEYS[2]) ~= 'l' .. ARGV[1] .. ':' .. ARGV[2] then return 0 end
redis.call('SET', KEYS[2], 'v' .. ARGV[1] .. ':' .. ARGV[3], 'PX', ARGV[4])
return 1
`)

func (c *Cache) caching() bool { return c.Enabled() && c.cfg.CacheTTL > 0 }

func (c *Cache) entryKey(kind Kind, id string) string { return c.key(string(kind), id) }
func (c *Cache) epochKey() string                     { return c.key("cache-epoch") }

// Get returns the cached value of kind and id, and true. On a miss it
// returns a Token: read the database, then Fill with the token and what
// was read. It never fails: when Redis is unreachable or slower than
// REDIS_TIMEOUT it misses (with a zero Token), and the caller reads the
// database as it would without Redis.
func (c *Cache) Get(ctx context.Context, kind Kind, id string) ([]byte, Token, bool) {
	if !c.caching() {
		return nil, Token{}, false
	}
	key := c.entryKey(kind, id)
	if c.stale.bypass(key) {
		c.metrics.bypassed.WithLabelValues(string(kind)).Inc()
		return nil, Token{}, false
	}
	if c.breaker.skip() {
		c.metrics.misses.WithLabelValues(string(kind)).Inc()
		return nil, Token{}, false
	}
	bctx, cancel := c.bound(ctx)
	defer cancel()
	res, err := getScript.Run(bctx, c.client, []string{c.epochKey(), key}, randomHex(8), randomHex(12), leaseTTL.Milliseconds()).Slice()
	if err == nil && !getReply(res) {
		err = fmt.Errorf("unexpected reply %v", res)
	}
	if err != nil {
		c.failed(ctx, "get", err)
		c.metrics.misses.WithLabelValues(string(kind)).Inc()
		return nil, Token{}, false
	}
	if n, _ := res[0].(int64); n == 1 {
		v, _ := res[1].(string)
		c.metrics.hits.WithLabelValues(string(kind)).Inc()
		return []byte(v), Token{}, true
	}
	c.metrics.misses.WithLabelValues(string(kind)).Inc()
	lease, _ := res[1].(string)
	epoch, _ := res[2].(string)
	return nil, Token{key: key, epoch: epoch, lease: lease}, false
}

// getReply reports whether res is getScript's {1, value} or {0, lease,
// epoch}.
func getReply(res []any) bool {
	if len(res) == 0 {
		return false
	}
	n, _ := res[0].(int64)
	return n == 1 && len(res) == 2 || n == 0 && len(res) == 3
}

// Fill caches value (what the database returned after Get missed with t)
// for CACHE_TTL, unless kind and id were invalidated since that Get: a
// reader that read the database before a write committed can never cache
// the older version over it. It fails silently, like Get.
func (c *Cache) Fill(ctx context.Context, kind Kind, id string, t Token, value []byte) {
	if !c.caching() || t.lease == "" {
		return
	}
	key := c.entryKey(kind, id)
	if t.key != key || c.stale.bypass(key) || c.breaker.skip() {
		return
	}
	bctx, cancel := c.bound(ctx)
	defer cancel()
	err := fillScript.Run(bctx, c.client, []string{c.epochKey(), key}, t.epoch, t.lease, value, c.cfg.CacheTTL.Milliseconds()).Err()
	if err != nil {
		c.failed(ctx, "fill", err)
	}
}

// Invalidate drops the cached kind and id. Call it after every database
// write of that note or file commits (create, update, delete, and any
// change of a file's row), and only then report the write as done.
//
// Redis deletes the entry and any reader's lease on it at once, so every
// reader that missed before this point fills nothing, and every later read
// misses until a reader that started after it fills: a client that saw
// its write succeed never reads the older version afterwards.
//
// Invalidate does not fail either. When Redis cannot be reached (the write
// has committed all the same), this machine remembers the entry and
// bypasses the cache for it, reads and fills alike, until a retry (every
// second, in the background) deletes it in Redis. Past maxStale such
// entries it bypasses the whole cache and moves the epoch instead, which
// drops every entry at once. Residual window, honestly: another machine
// that can reach Redis while this one cannot, or that reads the moment
// Redis comes back before this machine's retry lands (at most about a
// second later), may still serve the older version, for at most CACHE_TTL.
// The same holds if a Redis failover loses a delete Redis acknowledged.
// Invalidate goes on when ctx is cancelled: a client that hung up after
// the commit must not leave the entry behind. It runs even with
// CACHE_TTL=0, so machines still caching (an older deploy) never keep an
// entry a write has replaced.
func (c *Cache) Invalidate(ctx context.Context, kind Kind, id string) {
	if !c.Enabled() {
		return
	}
	ctx = context.WithoutCancel(ctx)
	key := c.entryKey(kind, id)
	seq := c.stale.begin(key)
	err := errSkipped
	if !c.breaker.skip() {
		bctx, cancel := c.bound(ctx)
		defer cancel()
		err = c.client.Del(bctx, key).Err()
	}
	c.stale.end(key, seq, err == nil)
	if err != nil {
		c.failed(ctx, "invalidate", err)
	}
}

// Flush drops every cached note and file at once, by moving the epoch:
// for when the database changed under the app (a restore from a backup).
// Unlike Invalidate it returns Redis's error, matching
// storage.ErrUnavailable; without Redis it does nothing.
func (c *Cache) Flush(ctx context.Context) error {
	if !c.Enabled() {
		return nil
	}
	bctx, cancel := c.bound(ctx)
	defer cancel()
	if err := c.client.Set(bctx, c.epochKey(), randomHex(8), 0).Err(); err != nil {
		c.failed(ctx, "invalidate", err)
		return fmt.Errorf("%w: flushing the cache in redis: %w", storage.ErrUnavailable, err)
	}
	return nil
}

// Read is cache-aside for a JSON-encodable T: the cached value of kind and
// id, or load's, which it then caches. load's error is returned as is and
// nothing is cached. Nor is a value a lagging replica answered (see
// storage.WatchReplicaReads): it may be older than what the primary's
// readers expect.
func Read[T any](ctx context.Context, c *Cache, kind Kind, id string, load func(context.Context) (T, error)) (T, error) {
	if !c.caching() {
		return load(ctx) // no Redis, or CACHE_TTL=0: nothing to encode
	}
	b, t, ok := c.Get(ctx, kind, id)
	if ok {
		var v T
		if err := json.Unmarshal(b, &v); err == nil {
			return v, nil
		}
		// An entry this version cannot read (an older shape): drop it.
		c.Invalidate(ctx, kind, id)
	}
	loadCtx, fromReplica := storage.WatchReplicaReads(ctx)
	v, err := load(loadCtx)
	if err != nil || fromReplica() {
		return v, err
	}
	if b, err := json.Marshal(v); err == nil {
		c.Fill(ctx, kind, id, t, b)
	}
	return v, nil
}

// retryLoop retries failed invalidations until Close.
func (c *Cache) retryLoop() {
	defer c.done.Done()
	tick := time.NewTicker(c.retryEvery)
	defer tick.Stop()
	for {
		select {
		case <-c.stop:
			return
		case <-tick.C:
			if c.stale.pending() {
				c.retryInvalidations(context.Background())
			}
			if keys := c.revoked.list(); len(keys) > 0 {
				c.retryRevocations(context.Background(), keys)
			}
		}
	}
}

// retryInvalidations deletes in Redis every entry whose invalidation
// failed, or moves the epoch if there were too many to remember, and
// forgets those it succeeded for. It reports whether none is left.
func (c *Cache) retryInvalidations(ctx context.Context) bool {
	keys, overflow := c.stale.failed()
	if overflow {
		seq := c.stale.next()
		bctx, cancel := c.bound(ctx)
		err := c.client.Set(bctx, c.epochKey(), randomHex(8), 0).Err()
		cancel()
		if err != nil {
			c.failed(ctx, "invalidate", err)
			return false
		}
		c.stale.clearBefore(seq)
		return !c.stale.pending()
	}
	const batch = 500
	for len(keys) > 0 {
		n := min(batch, len(keys))
		part := keys[:n]
		keys = keys[n:]
		seqs := make([]uint64, len(part))
		for i, k := range part {
			seqs[i] = c.stale.begin(k)
		}
		bctx, cancel := c.bound(ctx)
		err := c.client.Del(bctx, part...).Err()
		cancel()
		for i, k := range part {
			c.stale.end(k, seqs[i], err == nil)
		}
		if err != nil {
			c.failed(ctx, "invalidate", err)
			return false
		}
	}
	return !c.stale.pending()
}

// staleSet is the entries whose invalidation has not reached Redis:
// in flight, or failed. Each invalidation takes a sequence number when it
// starts; one that succeeds clears a failure only if it started after the
// failure did, since only then did its delete follow the failed write's
// commit.
type staleSet struct {
	mu   sync.Mutex
	seq  uint64
	keys map[string]*staleKey
	// failures is how many keys have failedAt set.
	failures int
	// overflowAt is the sequence of the first failure not remembered one
	// by one (0: none): everything is bypassed until an epoch move that
	// started after it.
	overflowAt uint64
}

type staleKey struct {
	inflight int
	failedAt uint64 // 0: not failed
}

func (s *staleSet) init() { s.keys = map[string]*staleKey{} }

func (s *staleSet) next() uint64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.seq++
	return s.seq
}

func (s *staleSet) begin(key string) uint64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.seq++
	k := s.keys[key]
	if k == nil {
		k = &staleKey{}
		s.keys[key] = k
	}
	k.inflight++
	return s.seq
}

func (s *staleSet) end(key string, seq uint64, ok bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	k := s.keys[key]
	k.inflight--
	switch {
	case ok && k.failedAt != 0 && seq > k.failedAt:
		k.failedAt = 0
		s.failures--
	case !ok && k.failedAt == 0 && s.failures >= maxStale:
		if s.overflowAt == 0 {
			s.overflowAt = seq
		}
	case !ok:
		if k.failedAt == 0 {
			s.failures++
		}
		k.failedAt = max(k.failedAt, seq)
	}
	if k.inflight == 0 && k.failedAt == 0 {
		delete(s.keys, key)
	}
}

// clearBefore forgets every failure older than seq, after an epoch move
// that started at seq.
func (s *staleSet) clearBefore(seq uint64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.overflowAt != 0 && s.overflowAt < seq {
		s.overflowAt = 0
	}
	for key, k := range s.keys {
		if k.failedAt != 0 && k.failedAt < seq {
			k.failedAt = 0
			s.failures--
		}
		if k.inflight == 0 && k.failedAt == 0 {
			delete(s.keys, key)
		}
	}
}

func (s *staleSet) bypass(key string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.overflowAt != 0 || s.keys[key] != nil
}

func (s *staleSet) pending() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.overflowAt != 0 || s.failures > 0
}

// failed returns the keys whose invalidation failed, and whether some
// were not remembered.
func (s *staleSet) failed() ([]string, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var keys []string
	for key, k := range s.keys {
		if k.failedAt != 0 {
			keys = append(keys, key)
		}
	}
	return keys, s.overflowAt != 0
}

func randomHex(n int) string {
	b := make([]byte, n)
	rand.Read(b)
	return hex.EncodeToString(b)
}
