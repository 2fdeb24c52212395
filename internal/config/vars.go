package config

import (
	"fmt"
	"strconv"
	"strings"
	"time"
)

// Var documents one environment variable: docs/configuration.md and
// .env.example are generated from every Var the app declares (this
// package's table, and each driver's own), and a test fails when they
// drift.
type Var struct {
	Name    string
	Group   string // the docs' section: Database, Files, Server, ...
	Default string // as the docs show it; empty when there is none
	Doc     string // one or two sentences
	Secret  bool   // never logged; .env.example leaves it blank
	Example string // a value for .env.example (commented out)
}

// Env reads variables with surrounding white space trimmed, and parses
// them into typed values whose errors are *Error naming the variable.
// Drivers read their own variables through it.
type Env func(string) string

// NewEnv wraps getenv.
func NewEnv(getenv func(string) string) Env {
	return func(name string) string { return strings.TrimSpace(getenv(name)) }
}

// Int reads a whole number in [min, max], or def when the variable is
// unset.
func (e Env) Int(name string, def, min, max int64) (int64, error) {
	v := e(name)
	if v == "" {
		return def, nil
	}
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil || n < min || n > max {
		return 0, &Error{Var: name, Msg: fmt.Sprintf("%q is not a whole number from %d to %d", v, min, max)}
	}
	return n, nil
}

// Duration reads a non-negative Go duration such as 300ms, 5s or 10m, or
// def when the variable is unset.
func (e Env) Duration(name string, def time.Duration) (time.Duration, error) {
	v := e(name)
	if v == "" {
		return def, nil
	}
	d, err := parseDurationValue(v)
	if err != nil {
		return 0, &Error{Var: name, Msg: fmt.Sprintf("%q %s", v, err)}
	}
	return d, nil
}

// Bool reads true or false (or 1, 0, t, f), false when unset.
func (e Env) Bool(name string) (bool, error) {
	v := e(name)
	if v == "" {
		return false, nil
	}
	b, err := parseBoolValue(v)
	if err != nil {
		return false, &Error{Var: name, Msg: fmt.Sprintf("%q %s", v, err)}
	}
	return b, nil
}

// Pool is the connection pool every database server driver takes, from
// the DB_* variables. A zero field was not set: the driver then keeps its
// URL's own setting, if it has one, or the default below.
type Pool struct {
	MaxConns        int32         // DB_MAX_CONNS
	MinConns        int32         // DB_MIN_CONNS
	MaxConnLifetime time.Duration // DB_MAX_CONN_LIFETIME
	MaxConnIdleTime time.Duration // DB_MAX_CONN_IDLE_TIME
	ConnectTimeout  time.Duration // DB_CONNECT_TIMEOUT
}

// Pool defaults. The size follows the Fly guide's pooling example; the
// lifetimes follow Managed Postgres's advice (its proxy drains connections,
// so recycle them within 10 minutes and drop idle ones after 5), which
// also suits PlanetScale and Atlas, whose proxies close old connections.
const (
	DefaultMaxConns        = 20
	DefaultMaxConnLifetime = 10 * time.Minute
	DefaultMaxConnIdleTime = 5 * time.Minute
	DefaultConnectTimeout  = 5 * time.Second
)

// PoolVars documents the DB_* variables.
var PoolVars = []Var{
	{Name: "DB_MAX_CONNS", Group: "Database", Default: "20", Doc: "Most connections the pool opens (MongoDB: maxPoolSize)."},
	{Name: "DB_MIN_CONNS", Group: "Database", Default: "0", Doc: "Connections the pool keeps open when idle."},
	{Name: "DB_MAX_CONN_LIFETIME", Group: "Database", Default: "10m", Doc: "Connections are replaced after this long, so a provider's proxy that drains old connections never cuts one in use."},
	{Name: "DB_MAX_CONN_IDLE_TIME", Group: "Database", Default: "5m", Doc: "Idle connections are closed after this long."},
	{Name: "DB_CONNECT_TIMEOUT", Group: "Database", Default: "5s", Doc: "How long to wait for a new connection before the request fails with 503."},
}

// LoadPool reads the DB_* variables, leaving unset ones zero.
func LoadPool(env Env) (Pool, error) {
	var p Pool
	maxConns, err := env.Int("DB_MAX_CONNS", 0, 1, 10000)
	if err != nil {
		return p, err
	}
	minConns, err := env.Int("DB_MIN_CONNS", 0, 0, 10000)
	if err != nil {
		return p, err
	}
	p.MaxConns, p.MinConns = int32(maxConns), int32(minConns)
	if p.MaxConns > 0 && p.MinConns > p.MaxConns {
		return p, &Error{Var: "DB_MIN_CONNS", Msg: fmt.Sprintf("%d is more than DB_MAX_CONNS (%d)", p.MinConns, p.MaxConns)}
	}
	for _, d := range []struct {
		name string
		dst  *time.Duration
	}{
		{"DB_MAX_CONN_LIFETIME", &p.MaxConnLifetime},
		{"DB_MAX_CONN_IDLE_TIME", &p.MaxConnIdleTime},
		{"DB_CONNECT_TIMEOUT", &p.ConnectTimeout},
	} {
		if *d.dst, err = env.Duration(d.name, 0); err != nil {
			return p, err
		}
	}
	return p, nil
}

// WithDefaults fills every unset field with its default.
func (p Pool) WithDefaults() Pool {
	if p.MaxConns == 0 {
		p.MaxConns = DefaultMaxConns
	}
	if p.MaxConnLifetime == 0 {
		p.MaxConnLifetime = DefaultMaxConnLifetime
	}
	if p.MaxConnIdleTime == 0 {
		p.MaxConnIdleTime = DefaultMaxConnIdleTime
	}
	if p.ConnectTimeout == 0 {
		p.ConnectTimeout = DefaultConnectTimeout
	}
	return p
}
