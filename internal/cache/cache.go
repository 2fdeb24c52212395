// Package cache is flystorage's optional Redis (Upstash, from `fly redis
// create`): a cache of notes and files in front of the database, browser
// sessions, rate limits shared by every machine, and locks that keep
// periodic jobs to one machine at a time. Everything here works without
// Redis: without REDIS_URL, or while Redis is down, reads go to the
// database, sessions live in the database, rate limits are per machine,
// and locks are per process. See docs/redis.md.
//
// go-redis is the client: one well-known client whose ParseURL reads
// redis:// and rediss:// URLs with user, password and database number, and
// whose commands honour the context's deadline, which bounds each command
// by REDIS_TIMEOUT here.
package cache

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"
	"github.com/redis/go-redis/v9/maintnotifications"
)

// Cache is a connection to Redis, or, when REDIS_URL is unset, a stand-in
// whose cache always misses. A nil *Cache behaves like the stand-in too
// (but for Lock, which needs Open's), so callers need not check. Its methods never return Redis's errors to
// readers: a read that cannot reach Redis in time is a miss.
type Cache struct {
	cfg     Config
	client  *redis.Client // nil without Redis
	log     *slog.Logger
	metrics *Metrics
	errs    *errorLog
	breaker *breaker

	// stale tracks invalidations that failed (see Invalidate).
	stale staleSet
	// revoked holds the Redis keys of sessions whose deletion failed
	// (see RedisSessions.Delete).
	revoked revokedSet
	// retryEvery is how often failed invalidations are retried.
	retryEvery time.Duration
	stop       chan struct{}
	stopOnce   sync.Once
	done       sync.WaitGroup

	// noRenew makes leases wait out their deadline instead of renewing,
	// for tests.
	noRenew bool

	// locks are the names this process holds without Redis.
	locksMu sync.Mutex
	locks   map[string]bool
}

// Open connects to cfg's Redis. It does not fail when Redis is down: the
// app starts and serves without it, and the client keeps trying to
// connect. It fails only on a configuration it cannot use. Without
// REDIS_URL it returns the stand-in.
func Open(ctx context.Context, cfg Config, log *slog.Logger) (*Cache, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if cfg.KeyPrefix == "" {
		cfg.KeyPrefix = DefaultKeyPrefix
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = DefaultTimeout
	}
	c := &Cache{cfg: cfg, log: log, metrics: NewMetrics(), retryEvery: time.Second, stop: make(chan struct{}), locks: map[string]bool{}}
	c.errs = newErrorLog(log.With("redis", cfg.Redacted()), time.Now, time.Minute)
	c.breaker = &breaker{now: time.Now}
	c.stale.init()
	if !cfg.Enabled() {
		return c, nil
	}
	opts := cfg.options
	if opts == nil {
		var err error
		if opts, err = parseURL(cfg.URL); err != nil {
			return nil, err
		}
	}
	quietRedis.Do(func() { redis.SetLogger(debugLogger{log}) })
	c.client = redis.NewClient(clientOptions(*opts, cfg.Timeout))
	c.client.AddHook(breakerHook{c.breaker})
	// One ping to log how things stand; failing is fine. It may take a
	// second, so a first TLS dial to a distant Upstash can finish. Its
	// failure is the minute's one logged line: the commands that fail
	// after it are counted, not logged again.
	pctx, cancel := context.WithTimeout(ctx, max(cfg.Timeout, time.Second))
	if err := c.client.Ping(pctx).Err(); err != nil {
		c.failed(ctx, "ping", err)
	}
	cancel()
	c.done.Add(1)
	go c.retryLoop()
	return c, nil
}

// quietRedis sends go-redis's own log lines (one per failed dial while
// Redis is down) to the app's log at debug level: go-redis has one logger
// per process, and failures are counted and logged here at most once a
// minute instead.
var quietRedis sync.Once

type debugLogger struct{ log *slog.Logger }

func (l debugLogger) Printf(ctx context.Context, format string, v ...any) {
	l.log.DebugContext(ctx, fmt.Sprintf(format, v...))
}

// clientOptions bounds every command by timeout: no retries (a retry
// would stretch a command past it), socket deadlines and the context's
// deadline both set. Connections are dialled in the background with a
// longer timeout (MinIdleConns) so a first TLS handshake to a distant
// Upstash can finish even when REDIS_TIMEOUT is short.
func clientOptions(o redis.Options, timeout time.Duration) *redis.Options {
	o.MaxRetries = -1
	o.ReadTimeout = timeout
	o.WriteTimeout = timeout
	o.ContextTimeoutEnabled = true
	o.PoolTimeout = timeout
	o.DialTimeout = 5 * time.Second
	o.DialerRetries = 1
	o.MinIdleConns = 2
	o.DisableIdentity = true // no CLIENT SETINFO: not every Redis-compatible server has it
	o.MaintNotificationsConfig = &maintnotifications.Config{Mode: maintnotifications.ModeDisabled}
	if o.TLSConfig != nil {
		// go-redis's own TLS dial ignores the context; this one obeys it.
		tlsConf, dialer := o.TLSConfig, &net.Dialer{Timeout: o.DialTimeout}
		o.Dialer = func(ctx context.Context, network, addr string) (net.Conn, error) {
			return (&tls.Dialer{NetDialer: dialer, Config: tlsConf}).DialContext(ctx, network, addr)
		}
	}
	return &o
}

// Enabled reports whether c talks to Redis.
func (c *Cache) Enabled() bool { return c != nil && c.client != nil }

// Config returns the configuration c was opened with.
func (c *Cache) Config() Config { return c.cfg }

// Close stops retrying failed invalidations and closes the connections.
func (c *Cache) Close() error {
	if !c.Enabled() {
		return nil
	}
	c.stopRetrying()
	return c.client.Close()
}

func (c *Cache) stopRetrying() {
	c.stopOnce.Do(func() { close(c.stop) })
	c.done.Wait()
}

// Ping checks that Redis answers within REDIS_TIMEOUT, for /readyz: an
// error there means "degraded" (the app still serves, from the database).
// It returns nil without Redis.
func (c *Cache) Ping(ctx context.Context) error {
	if !c.Enabled() {
		return nil
	}
	ctx, cancel := c.bound(ctx)
	defer cancel()
	if err := c.client.Ping(ctx).Err(); err != nil {
		c.failed(ctx, "ping", err)
		return fmt.Errorf("redis at %s: %w", c.cfg.Redacted(), err)
	}
	return nil
}

// Describe is the cache's part of /api/storage, without the password.
func (c *Cache) Describe() map[string]any {
	if !c.Enabled() {
		rate := Rate{}
		if c != nil {
			rate = c.cfg.RateLimit
		}
		return map[string]any{"backend": "none", "rate_limit": rate.String()}
	}
	return map[string]any{
		"backend":     "redis",
		"url":         c.cfg.Redacted(),
		"timeout":     c.cfg.Timeout.String(),
		"cache_ttl":   c.cfg.CacheTTL.String(),
		"session_ttl": c.cfg.SessionTTL.String(),
		"rate_limit":  c.cfg.RateLimit.String(),
	}
}

// Collectors returns the cache's metrics, for the app's registry.
func (c *Cache) Collectors() []prometheus.Collector {
	if c == nil {
		return nil
	}
	return c.metrics.Collectors()
}

// Register adds the cache's metrics to reg.
func (c *Cache) Register(reg prometheus.Registerer) error {
	for _, m := range c.Collectors() {
		if err := reg.Register(m); err != nil {
			return err
		}
	}
	return nil
}

// Metrics returns the counters c updates, to share with a local Limiter.
func (c *Cache) Metrics() *Metrics {
	if c == nil {
		return nil
	}
	return c.metrics
}

// bound gives one Redis command its REDIS_TIMEOUT.
func (c *Cache) bound(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(ctx, c.cfg.Timeout)
}

func (c *Cache) key(parts ...string) string {
	k := c.cfg.KeyPrefix
	for i, p := range parts {
		if i > 0 {
			k += ":"
		}
		k += p
	}
	return k
}

// failed counts and logs (at most once a minute) a Redis command that did
// not succeed. ctx is the caller's: a caller that gave up (its context
// ended) is not Redis's failure and is not counted.
func (c *Cache) failed(ctx context.Context, op string, err error) {
	if ctx.Err() != nil {
		return
	}
	c.metrics.errors.WithLabelValues(op).Inc()
	c.errs.log(op, err)
}

// errorLog logs a failure at most once per interval, with how many it did
// not log, so a Redis outage does not flood the logs.
type errorLog struct {
	mu         sync.Mutex
	logger     *slog.Logger
	now        func() time.Time
	interval   time.Duration
	last       time.Time
	suppressed int
}

func newErrorLog(logger *slog.Logger, now func() time.Time, interval time.Duration) *errorLog {
	return &errorLog{logger: logger, now: now, interval: interval}
}

func (l *errorLog) log(op string, err error) {
	l.mu.Lock()
	now := l.now()
	if !l.last.IsZero() && now.Sub(l.last) < l.interval {
		l.suppressed++
		l.mu.Unlock()
		return
	}
	suppressed := l.suppressed
	l.last, l.suppressed = now, 0
	l.mu.Unlock()
	attrs := []any{"op", op, "err", err, "unlogged_failures", suppressed}
	if why := cause(err); why != "" {
		attrs = append([]any{"cause", why}, attrs...)
	}
	l.logger.Warn("redis command failed; going on without redis", attrs...)
}

// cause says in words why Redis refused the app when waiting will not fix
// it: the password or the certificate in an Upstash-style rediss:// URL.
// Other failures (Redis down, slow) say enough themselves.
func cause(err error) string {
	var unknownCA x509.UnknownAuthorityError
	var badHost x509.HostnameError
	switch {
	case redis.HasErrorPrefix(err, "WRONGPASS"), redis.HasErrorPrefix(err, "NOAUTH"):
		return "REDIS_URL's user name or password is wrong"
	case errors.As(err, &unknownCA):
		return "REDIS_URL's server has a certificate from a CA this machine does not trust (the system's roots, or SSL_CERT_FILE)"
	case errors.As(err, &badHost):
		return "REDIS_URL's host is not a name the server's certificate is for"
	}
	return ""
}
