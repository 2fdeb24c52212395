package cache

import (
	"container/list"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"
)

// Limiter decides whether a client (an IP address, a token) may make one
// more request. When it may not, retryAfter says when it may again.
type Limiter interface {
	Allow(ctx context.Context, client string) (ok bool, retryAfter time.Duration)
}

// Limiter returns RATE_LIMIT's limiter: shared through Redis when c has
// it, else per machine; nil when RATE_LIMIT is unset.
func (c *Cache) Limiter() Limiter {
	if c == nil || c.cfg.RateLimit.Off() {
		return nil
	}
	return c.NewLimiter(c.cfg.RateLimit, time.Now)
}

// NewLimiter returns a limiter of rate r: a RedisLimiter that falls back
// to a LocalLimiter (on clock now) when Redis fails, or only the local one
// without Redis.
func (c *Cache) NewLimiter(r Rate, now func() time.Time) Limiter {
	local := NewLocalLimiter(r, now, DefaultMaxClients)
	local.metrics = c.Metrics()
	if c.Enabled() {
		return &RedisLimiter{c: c, rate: r, local: local}
	}
	return local
}

// limitScript counts a request in the client's window: the key lives one
// window from its first request. KEYS counter; ARGV limit, window in ms.
// Returns {allowed (1 or 0), ms until the window ends}.
var limitScript = redis.NewScript(`
local n = redis.call('INCR', KEYS[1])
if n == 1 then redis.call('PEXPIRE', KEYS[1], ARGV[2]) end
local ttl = redis.call('PTTL', KEYS[1])
if ttl < 0 then
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
  ttl = tonumber(ARGV[2])
end
if n <= tonumber(ARGV[1]) then return {1, ttl} end
return {0, ttl}
`)

// RedisLimiter counts each client's requests in Redis, in fixed windows
// that start with a client's first request: every machine counts in the
// same key in one atomic script, so together they never allow more than
// the limit in a window. When Redis fails it fails open, to its local
// limiter (the limit then holds per machine), never closed.
type RedisLimiter struct {
	c     *Cache
	rate  Rate
	local *LocalLimiter
}

var _ Limiter = (*RedisLimiter)(nil)

// Allow implements Limiter.
func (l *RedisLimiter) Allow(ctx context.Context, client string) (bool, time.Duration) {
	if l.c.breaker.skip() {
		return l.local.Allow(ctx, client)
	}
	bctx, cancel := l.c.bound(ctx)
	defer cancel()
	res, err := limitScript.Run(bctx, l.c.client, []string{l.c.key("rate", clientKey(client))}, l.rate.N, l.rate.Per.Milliseconds()).Int64Slice()
	if err == nil && len(res) != 2 {
		err = redis.Nil
	}
	if err != nil {
		l.c.failed(ctx, "ratelimit", err)
		return l.local.Allow(ctx, client)
	}
	if res[0] == 1 {
		return true, 0
	}
	l.c.metrics.limited.Inc()
	return false, time.Duration(res[1]) * time.Millisecond
}

// clientKey keeps keys short whatever the client string is.
func clientKey(client string) string {
	if len(client) <= 64 {
		return client
	}
	sum := sha256.Sum256([]byte(client))
	return hex.EncodeToString(sum[:])
}

// DefaultMaxClients bounds a LocalLimiter's memory.
const DefaultMaxClients = 10_000

// LocalLimiter counts each client's requests in this process, in fixed
// windows that start with a client's first request. It remembers at most
// max clients: idle ones (whose window ended) go first, and when every
// one is active, the one whose window is oldest.
type LocalLimiter struct {
	rate    Rate
	now     func() time.Time
	max     int
	metrics *Metrics // nil: not counted

	mu      sync.Mutex
	clients map[string]*list.Element // of *window
	order   list.List                // by window start, oldest first
}

type window struct {
	client string
	start  time.Time
	n      int
}

var _ Limiter = (*LocalLimiter)(nil)

// NewLocalLimiter returns a limiter of rate r on clock now, remembering
// at most max clients.
func NewLocalLimiter(r Rate, now func() time.Time, max int) *LocalLimiter {
	return &LocalLimiter{rate: r, now: now, max: max, clients: map[string]*list.Element{}}
}

// Allow implements Limiter.
func (l *LocalLimiter) Allow(_ context.Context, client string) (bool, time.Duration) {
	l.mu.Lock()
	defer l.mu.Unlock()
	now := l.now()
	// Forget clients whose window has ended.
	for e := l.order.Front(); e != nil; e = l.order.Front() {
		w := e.Value.(*window)
		if now.Sub(w.start) < l.rate.Per {
			break
		}
		l.order.Remove(e)
		delete(l.clients, w.client)
	}
	e := l.clients[client]
	if e == nil {
		if l.order.Len() >= l.max {
			oldest := l.order.Front()
			l.order.Remove(oldest)
			delete(l.clients, oldest.Value.(*window).client)
		}
		e = l.order.PushBack(&window{client: client, start: now})
		l.clients[client] = e
	}
	w := e.Value.(*window)
	w.n++
	if w.n <= l.rate.N {
		return true, 0
	}
	if l.metrics != nil {
		l.metrics.limited.Inc()
	}
	return false, w.start.Add(l.rate.Per).Sub(now)
}

// Len returns how many clients l remembers.
func (l *LocalLimiter) Len() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.clients)
}
