package cache

import (
	"context"
	"errors"
	"net"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"
)

// While Redis is unreachable every command would wait out REDIS_TIMEOUT.
// After breakerFailures commands in a row fail, the cache, sessions, rate
// limits and taking locks skip Redis for breakerCooldown, as if it had
// failed at once; then commands try again, and one more failure skips it
// again. Renewing and releasing locks, retrying failed invalidations and
// Ping always try: they are how the breaker learns Redis is back.
const (
	breakerFailures = 5
	breakerCooldown = time.Second
)

// errSkipped is the failure of a command the breaker skipped.
var errSkipped = errors.New("redis failed repeatedly; skipping it for a moment")

type breaker struct {
	mu        sync.Mutex
	now       func() time.Time
	failures  int
	openUntil time.Time
}

// skip reports whether commands should not go to Redis now.
func (b *breaker) skip() bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.now().Before(b.openUntil)
}

func (b *breaker) result(ok bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if ok {
		b.failures, b.openUntil = 0, time.Time{}
		return
	}
	b.failures++
	if b.failures >= breakerFailures {
		b.openUntil = b.now().Add(breakerCooldown)
		b.failures = breakerFailures - 1 // after the cooldown one failure reopens it
	}
}

// breakerHook feeds every command's outcome to the breaker: an answer from
// Redis, even an error reply, is success; a timeout or a broken connection
// is failure; a caller that gave up is neither.
type breakerHook struct{ b *breaker }

func (h breakerHook) DialHook(next redis.DialHook) redis.DialHook {
	return func(ctx context.Context, network, addr string) (net.Conn, error) { return next(ctx, network, addr) }
}

func (h breakerHook) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		err := next(ctx, cmd)
		h.observe(ctx, err)
		return err
	}
}

func (h breakerHook) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		err := next(ctx, cmds)
		h.observe(ctx, err)
		return err
	}
}

func (h breakerHook) observe(ctx context.Context, err error) {
	var reply redis.Error
	switch {
	case err == nil, errors.As(err, &reply):
		h.b.result(true)
	case errors.Is(ctx.Err(), context.Canceled):
	default:
		h.b.result(false)
	}
}
