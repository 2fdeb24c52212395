package cache

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/example/flystorage/internal/storage"
)

// ErrLocked is Lock's error when another holder has the lock.
var ErrLocked = errors.New("lock is held by another machine or job")

// ErrLeaseLost is the cause of a Lease's cancellation when the lock could
// not be renewed in time, and Release's error when the lock was no longer
// this lease's.
var ErrLeaseLost = errors.New("lock lease lost")

// Lease is a held lock. Work under the lock runs with Context, which is
// cancelled before the lock can expire in Redis, so a holder that lost its
// lock stops before another machine can take it.
type Lease struct {
	ctx     context.Context
	cancel  context.CancelCauseFunc
	release func(context.Context) error
	once    sync.Once
	err     error
	done    chan struct{} // closed when renewing has stopped
}

// Context is cancelled when the lease is released, when it could not be
// renewed, or when its parent is; context.Cause tells which.
func (l *Lease) Context() context.Context { return l.ctx }

// Release cancels Context and gives the lock up. It returns ErrLeaseLost
// if the lock had already expired (and was perhaps taken), or an error
// matching storage.ErrUnavailable if Redis could not be told, in which case
// the lock expires by itself. Calling it again returns the same.
func (l *Lease) Release(ctx context.Context) error {
	l.once.Do(func() {
		l.cancel(errReleased)
		<-l.done
		l.err = l.release(ctx)
	})
	return l.err
}

var errReleased = errors.New("lock released")

// lockMargin is how long before the lock's expiry in Redis a lease's
// Context is cancelled at the latest: a quarter of its TTL. Work under the
// lock must check the context between steps that each take less than
// that, so the last one ends before another holder can start.
func lockMargin(ttl time.Duration) time.Duration { return ttl / 4 }

// renewScript: KEYS lock; ARGV token, ttl ms.
var renewScript = redis.NewScript(`
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('PEXPIRE', KEYS[1], ARGV[2])
end
return 0
`)

// releaseScript: KEYS lock; ARGV token.
var releaseScript = redis.NewScript(`
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0
`)

// Lock takes the lock name for ttl, or returns ErrLocked at once if
// another holder has it. With Redis the lock is shared by every machine
// (SET NX PX with a random token), renewed every ttl/3 while held, and the
// lease's Context is cancelled at once when a renewal fails, and at the
// latest lockMargin before the lock could expire. ttl must be at least
// four times REDIS_TIMEOUT. An error matching storage.ErrUnavailable means
// Redis could not say: skip the job this time.
//
// Without Redis the lock only keeps this process from running the job
// twice at once, as each machine did before Redis.
//
// Always Release the lease. Its Context derives from ctx: when ctx ends,
// renewing stops and the lock expires after ttl.
func (c *Cache) Lock(ctx context.Context, name string, ttl time.Duration) (*Lease, error) {
	if !c.Enabled() {
		return c.lockLocal(ctx, name)
	}
	if ttl < 4*c.cfg.Timeout {
		return nil, fmt.Errorf("%w: lock ttl %v is under 4×REDIS_TIMEOUT (%v)", storage.ErrInvalid, ttl, c.cfg.Timeout)
	}
	key, token := c.key("lock", name), randomHex(16)
	if c.breaker.skip() {
		return nil, fmt.Errorf("%w: taking lock %s: %w", storage.ErrUnavailable, name, errSkipped)
	}
	sent := time.Now() // Redis's expiry runs from a moment after this one
	bctx, cancel := c.bound(ctx)
	ok, err := c.client.SetNX(bctx, key, token, ttl).Result()
	cancel()
	if err != nil {
		c.failed(ctx, "lock", err)
		return nil, fmt.Errorf("%w: taking lock %s in redis: %w", storage.ErrUnavailable, name, err)
	}
	if !ok {
		return nil, ErrLocked
	}
	lctx, lcancel := context.WithCancelCause(ctx)
	l := &Lease{ctx: lctx, cancel: lcancel, done: make(chan struct{})}
	l.release = func(ctx context.Context) error {
		bctx, cancel := c.bound(context.WithoutCancel(ctx))
		defer cancel()
		n, err := releaseScript.Run(bctx, c.client, []string{key}, token).Int()
		switch {
		case err != nil:
			c.failed(ctx, "lock", err)
			return fmt.Errorf("%w: releasing lock %s in redis: %w", storage.ErrUnavailable, name, err)
		case n == 0:
			return ErrLeaseLost
		}
		return nil
	}
	go c.renew(l, key, token, ttl, sent)
	return l, nil
}

// renew keeps l's lock until l's context ends, and cancels it when a
// renewal fails or cannot finish before the deadline.
func (c *Cache) renew(l *Lease, key, token string, ttl time.Duration, sent time.Time) {
	defer close(l.done)
	timer := time.NewTimer(0)
	defer timer.Stop()
	for {
		deadline := sent.Add(ttl - lockMargin(ttl))
		if c.noRenew { // a test of the deadline
			timer.Reset(time.Until(deadline))
		} else {
			timer.Reset(time.Until(sent.Add(ttl / 3)))
		}
		select {
		case <-l.ctx.Done():
			return
		case <-timer.C:
		}
		if c.noRenew {
			l.cancel(ErrLeaseLost)
			return
		}
		next := time.Now()
		if d := next.Add(c.cfg.Timeout); d.Before(deadline) {
			deadline = d
		}
		rctx, cancel := context.WithDeadline(context.WithoutCancel(l.ctx), deadline)
		n, err := renewScript.Run(rctx, c.client, []string{key}, token, ttl.Milliseconds()).Int()
		cancel()
		if err != nil || n != 1 {
			if err != nil {
				c.failed(l.ctx, "lock", err)
			}
			l.cancel(ErrLeaseLost)
			return
		}
		sent = next
	}
}

func (c *Cache) lockLocal(ctx context.Context, name string) (*Lease, error) {
	c.locksMu.Lock()
	defer c.locksMu.Unlock()
	if c.locks[name] {
		return nil, ErrLocked
	}
	c.locks[name] = true
	lctx, cancel := context.WithCancelCause(ctx)
	done := make(chan struct{})
	close(done)
	return &Lease{ctx: lctx, cancel: cancel, done: done, release: func(context.Context) error {
		c.locksMu.Lock()
		defer c.locksMu.Unlock()
		delete(c.locks, name)
		return nil
	}}, nil
}
