package cache

import (
	"fmt"
	"log/slog"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/example/flystorage/internal/config"
)

// Defaults for the variables in Vars.
const (
	DefaultTimeout    = 100 * time.Millisecond
	DefaultCacheTTL   = 5 * time.Minute
	DefaultSessionTTL = 24 * time.Hour
	// DefaultKeyPrefix starts every key the app writes, so the app can
	// share a Redis database with something else.
	DefaultKeyPrefix = "flystorage:"
)

// Vars documents the variables Load reads.
var Vars = []config.Var{
	{Name: "REDIS_URL", Group: "Redis", Secret: true,
		Doc:     "Redis for the cache, sessions, shared rate limits and job locks: redis:// (what `fly redis create` gives) or rediss:// (TLS, Upstash outside Fly), with an optional /DB number. Unset: no Redis; the app works without it.",
		Example: "redis://default:password@fly-myapp-redis.upstash.io:6379"},
	{Name: "REDIS_TIMEOUT", Group: "Redis", Default: "100ms",
		Doc: "How long one Redis command may take; past it the app goes to the database instead. Raise it (e.g. 500ms) for Redis in another region or outside Fly."},
	{Name: "CACHE_TTL", Group: "Redis", Default: "5m",
		Doc: "How long a note or file stays cached in Redis; 0 turns the cache off."},
	{Name: "SESSION_TTL", Group: "Redis", Default: "24h",
		Doc: "How long a browser session lasts after signing in (in Redis when REDIS_URL is set, else in the database)."},
	{Name: "RATE_LIMIT", Group: "Redis",
		Doc:     "Writes (POST, PUT, DELETE under /api/) each client may make per second, minute or hour, such as 120/m; shared by every machine through Redis when REDIS_URL is set, per machine otherwise. Unset: no limit.",
		Example: "120/m"},
}

// Config is the Redis configuration. Its LogValue and Redacted mask the
// password.
type Config struct {
	// URL (REDIS_URL) holds a password. Empty: no Redis.
	URL string
	// Timeout (REDIS_TIMEOUT) bounds every Redis command.
	Timeout time.Duration
	// CacheTTL (CACHE_TTL) is how long a cached note or file lives; 0 turns
	// caching off.
	CacheTTL time.Duration
	// SessionTTL (SESSION_TTL) is how long a session lasts.
	SessionTTL time.Duration
	// RateLimit (RATE_LIMIT) is zero when there is no limit.
	RateLimit Rate
	// KeyPrefix starts every key; DefaultKeyPrefix unless a test sets its
	// own.
	KeyPrefix string

	options *redis.Options // parsed from URL; nil without Redis
}

// Enabled reports whether REDIS_URL is set.
func (c Config) Enabled() bool { return c.URL != "" }

// Redacted returns the URL with its password masked, or "" without Redis.
func (c Config) Redacted() string { return redactURL(c.URL) }

// String describes the configuration without the password.
func (c Config) String() string {
	if !c.Enabled() {
		return "redis: none, rate limit " + c.RateLimit.String()
	}
	return fmt.Sprintf("redis: %s, timeout %v, cache ttl %v, session ttl %v, rate limit %s",
		c.Redacted(), c.Timeout, c.CacheTTL, c.SessionTTL, c.RateLimit)
}

// LogValue logs the configuration without the password.
func (c Config) LogValue() slog.Value {
	if !c.Enabled() {
		return slog.GroupValue(slog.String("backend", "none"), slog.String("rate_limit", c.RateLimit.String()))
	}
	return slog.GroupValue(
		slog.String("url", c.Redacted()),
		slog.Duration("timeout", c.Timeout),
		slog.Duration("cache_ttl", c.CacheTTL),
		slog.Duration("session_ttl", c.SessionTTL),
		slog.String("rate_limit", c.RateLimit.String()),
	)
}

// Load reads the variables in Vars through getenv. Its error is a
// *config.Error naming the variable, and never holds the password.
func Load(getenv func(string) string) (Config, error) {
	env := config.NewEnv(getenv)
	c := Config{URL: env("REDIS_URL"), KeyPrefix: DefaultKeyPrefix}
	var err error
	if c.URL != "" {
		if c.options, err = parseURL(c.URL); err != nil {
			return c, err
		}
	}
	if c.Timeout, err = env.Duration("REDIS_TIMEOUT", DefaultTimeout); err != nil {
		return c, err
	}
	if c.Timeout == 0 {
		return c, &config.Error{Var: "REDIS_TIMEOUT", Msg: "must be more than 0"}
	}
	if c.CacheTTL, err = env.Duration("CACHE_TTL", DefaultCacheTTL); err != nil {
		return c, err
	}
	if c.CacheTTL > 0 && c.CacheTTL < time.Millisecond {
		return c, &config.Error{Var: "CACHE_TTL", Msg: "must be 0 (off) or at least 1ms"}
	}
	if c.SessionTTL, err = env.Duration("SESSION_TTL", DefaultSessionTTL); err != nil {
		return c, err
	}
	if c.SessionTTL < time.Second {
		return c, &config.Error{Var: "SESSION_TTL", Msg: "must be at least 1s"}
	}
	if v := env("RATE_LIMIT"); v != "" {
		if c.RateLimit, err = ParseRate(v); err != nil {
			return c, &config.Error{Var: "RATE_LIMIT", Msg: err.Error()}
		}
	}
	return c, nil
}

// parseURL checks REDIS_URL itself before go-redis sees it, so no error
// quotes the URL (url.Parse's errors do, password and all).
func parseURL(raw string) (*redis.Options, error) {
	bad := func(msg string) error { return &config.Error{Var: "REDIS_URL", Msg: msg} }
	u, err := url.Parse(raw)
	if err != nil {
		return nil, bad("is not a URL such as redis://default:password@host:6379")
	}
	// Messages quote no part of the URL but a scheme: a password holding
	// a "/" or "?" ends the host early, and would show up as the port or
	// the database.
	switch {
	case u.Scheme == "redis", u.Scheme == "rediss":
	case strings.HasPrefix(raw, u.Scheme+"://") && len(u.Scheme) <= 10:
		return nil, bad(fmt.Sprintf("scheme %q is not redis:// or rediss:// (TLS)", u.Scheme))
	default:
		return nil, bad("does not start with redis:// or rediss:// (TLS)")
	}
	if u.Hostname() == "" {
		return nil, bad("has no host: redis://default:password@host:6379")
	}
	if p := u.Port(); p != "" {
		if n, err := strconv.Atoi(p); err != nil || n < 1 || n > 65535 {
			return nil, bad("port is not a number from 1 to 65535 (a password with / or ? in it must be percent-encoded)")
		}
	}
	if db := strings.Trim(u.Path, "/"); db != "" {
		if n, err := strconv.Atoi(db); err != nil || n < 0 || n > 15 || strings.Contains(db, "/") {
			return nil, bad("database (the path after the port) is not a number from 0 to 15")
		}
	}
	if u.RawQuery != "" || u.Fragment != "" {
		// go-redis would take pool and timeout settings from the query;
		// REDIS_TIMEOUT owns those here.
		return nil, bad("takes no ?parameters; use REDIS_TIMEOUT for timeouts")
	}
	opts, err := redis.ParseURL(raw)
	if err != nil {
		return nil, bad("cannot be read by the Redis client") // its message may quote the URL
	}
	return opts, nil
}

func redactURL(raw string) string {
	if raw == "" {
		return ""
	}
	u, err := url.Parse(raw)
	if err != nil {
		return "(unparsable)"
	}
	return u.Redacted()
}

// Rate is N requests per Per. The zero Rate is no limit.
type Rate struct {
	N   int
	Per time.Duration
}

// Off reports whether r is no limit.
func (r Rate) Off() bool { return r.N == 0 }

// String returns r as RATE_LIMIT spells it, or "off".
func (r Rate) String() string {
	if r.Off() {
		return "off"
	}
	unit, ok := map[time.Duration]string{time.Second: "s", time.Minute: "m", time.Hour: "h"}[r.Per]
	if !ok {
		unit = r.Per.String()
	}
	return fmt.Sprintf("%d/%s", r.N, unit)
}

// ParseRate reads a rate such as 120/m, 10/s or 1000/h.
func ParseRate(s string) (Rate, error) {
	n, unit, ok := strings.Cut(strings.TrimSpace(s), "/")
	count, err := strconv.Atoi(n)
	if !ok || err != nil || count < 1 || count > 1_000_000 {
		return Rate{}, fmt.Errorf("%q is not a rate such as 120/m (a count from 1 to 1000000, then /s, /m or /h)", s)
	}
	per, ok := map[string]time.Duration{"s": time.Second, "m": time.Minute, "h": time.Hour}[unit]
	if !ok {
		return Rate{}, fmt.Errorf("%q is not a rate such as 120/m: the unit must be /s, /m or /h", s)
	}
	return Rate{N: count, Per: per}, nil
}
