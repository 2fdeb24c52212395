package postgres

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/pressly/goose/v3"

	"github.com/example/flystorage/internal/config"
	"github.com/example/flystorage/internal/storage"
	"github.com/example/flystorage/internal/storage/engine"
	"github.com/example/flystorage/migrations"
)

// Driver opens Postgres when DATABASE_URL is a postgres:// or
// postgresql:// URL: Fly Managed Postgres (`fly mpg attach` sets it), an
// unmanaged Fly Postgres cluster (`fly postgres attach`), Supabase, Neon
// or any other.
var Driver = engine.Driver{
	Name:    "postgres",
	Var:     "DATABASE_URL",
	Schemes: []string{"postgres", "postgresql"},
	Vars: append([]config.Var{
		{Name: "DATABASE_URL", Group: "Database", Secret: true, Example: "postgres://postgres:password@localhost:5432/flystorage?sslmode=disable",
			Doc: "Postgres (`postgres://`, `postgresql://`) or MySQL (`mysql://`) URL; `fly mpg attach` sets it (the pooled URL). Add `sslmode=require` (or `verify-full`) outside Fly's private network."},
		{Name: "DIRECT_DATABASE_URL", Group: "Database", Secret: true,
			Doc: "Postgres only: a URL that bypasses a pooler, such as Managed Postgres's direct URL. Migrations (`cmd/migrate`, `MIGRATE_ON_START`) use it when set, else DATABASE_URL; either way they hold a table lock that works through any pooler."},
		{Name: "DATABASE_READ_URL", Group: "Regions", Secret: true, Example: "postgres://user:pass@syd.my-db.internal:5433/app",
			Doc: "Postgres only: a read replica near this machine. In a region other than PRIMARY_REGION, reads go there and writes are replayed to the primary (docs/regions.md); an unmanaged Fly Postgres cluster (`fly postgres`) serves the nearest replica on port 5433."},
		{Name: "DB_QUERY_EXEC_MODE", Group: "Database", Default: DefaultQueryExecMode,
			Doc: "Postgres only: pgx's query exec mode (" + strings.Join(QueryExecModes, ", ") + "). `exec` works through PgBouncer in transaction mode; `cache_statement` is faster on a direct connection."},
		{Name: "DB_SLOW_QUERY", Group: "Database", Default: DefaultSlowQuery.String(),
			Doc: "Postgres only: statements slower than this are logged, without their arguments; 0 logs none."},
	}, config.PoolVars...),
	Load: load,
}

// Defaults of the Postgres-only settings. exec works through PgBouncer in
// transaction mode, where pgx's own default, cache_statement, fails with
// "prepared statement ... already exists".
const (
	DefaultQueryExecMode = "exec"
	DefaultSlowQuery     = 200 * time.Millisecond
)

// QueryExecModes are pgx's query execution modes.
var QueryExecModes = []string{"cache_statement", "cache_describe", "describe_exec", "exec", "simple_protocol"}

// source is a configured Postgres database.
type source struct {
	url, directURL, readURL string
	opts                    Options
}

// load checks DATABASE_URL and the Postgres variables. Each pool setting
// comes from its DB_* variable if set, else from pgx's own parameter in
// the URL (pool_max_conns, ...), else from the default.
func load(value string, getenv func(string) string) (storage.Source, error) {
	env := config.NewEnv(getenv)
	if err := checkURL("DATABASE_URL", value); err != nil {
		return nil, err
	}
	s := &source{url: value, directURL: env("DIRECT_DATABASE_URL"), readURL: env("DATABASE_READ_URL")}
	for name, u := range map[string]string{"DIRECT_DATABASE_URL": s.directURL, "DATABASE_READ_URL": s.readURL} {
		if u == "" {
			continue
		}
		if err := checkURL(name, u); err != nil {
			return nil, err
		}
	}
	pool, err := config.LoadPool(env)
	if err != nil {
		return nil, err
	}
	inURL := func(param string) bool { u, _ := url.Parse(value); return u.Query().Has(param) }
	defaults := config.Pool{}.WithDefaults()
	if pool.MaxConns == 0 && !inURL("pool_max_conns") {
		pool.MaxConns = defaults.MaxConns
	}
	if pool.MaxConnLifetime == 0 && !inURL("pool_max_conn_lifetime") {
		pool.MaxConnLifetime = defaults.MaxConnLifetime
	}
	if pool.MaxConnIdleTime == 0 && !inURL("pool_max_conn_idle_time") {
		pool.MaxConnIdleTime = defaults.MaxConnIdleTime
	}
	if pool.ConnectTimeout == 0 && !inURL("connect_timeout") {
		pool.ConnectTimeout = defaults.ConnectTimeout
	}
	mode := env("DB_QUERY_EXEC_MODE")
	switch {
	case mode != "" && !slices.Contains(QueryExecModes, mode):
		return nil, &config.Error{Var: "DB_QUERY_EXEC_MODE", Msg: fmt.Sprintf("%q is not one of %s", mode, strings.Join(QueryExecModes, ", "))}
	case mode == "" && !inURL("default_query_exec_mode"):
		mode = DefaultQueryExecMode
	}
	slow, err := env.Duration("DB_SLOW_QUERY", DefaultSlowQuery)
	if err != nil {
		return nil, err
	}
	s.opts = Options{
		DirectURL: s.directURL, Redacted: RedactURL(value),
		MaxConns: pool.MaxConns, MinConns: pool.MinConns, MaxConnLifetime: pool.MaxConnLifetime,
		MaxConnIdleTime: pool.MaxConnIdleTime, ConnectTimeout: pool.ConnectTimeout,
		QueryExecMode: mode, SlowQuery: slow,
	}
	return s, nil
}

// checkURL accepts postgres:// and postgresql:// URLs that pgx can parse.
// Errors never repeat the URL, which holds the password.
func checkURL(name, raw string) error {
	u, err := url.Parse(raw)
	if err != nil {
		// The parser's message can quote any part of the URL, the password
		// included (a password with a '/' or '#' reads as a port).
		return &config.Error{Var: name, Msg: "is not a valid URL; percent-encode any special characters in the user name or password"}
	}
	if u.Scheme != "postgres" && u.Scheme != "postgresql" {
		return &config.Error{Var: name, Msg: fmt.Sprintf("unsupported scheme %q: use postgres:// or postgresql://", u.Scheme)}
	}
	if u.Host == "" {
		return &config.Error{Var: name, Msg: "has no host"}
	}
	if _, err := pgconn.ParseConfig(raw); err != nil {
		// pgconn masks the password in its errors; mask every secret again
		// to be sure.
		msg := err.Error()
		for _, s := range secretsOf(u) {
			msg = strings.ReplaceAll(msg, s, "xxxxx")
		}
		return &config.Error{Var: name, Msg: msg}
	}
	return nil
}

// secretParams are the URL parameters libpq and pgx read a secret from.
var secretParams = []string{"password", "sslpassword", "sslkey"}

func secretsOf(u *url.URL) []string {
	var out []string
	if p, ok := u.User.Password(); ok && p != "" {
		out = append(out, p)
	}
	for _, name := range secretParams {
		if v := u.Query().Get(name); v != "" {
			out = append(out, v)
		}
	}
	return out
}

// RedactURL returns a Postgres URL with its password, and every secret
// parameter (password, sslpassword, sslkey), replaced by xxxxx.
func RedactURL(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return "(unparsable)"
	}
	if _, ok := u.User.Password(); ok {
		u.User = url.UserPassword(u.User.Username(), "xxxxx")
	}
	q := u.Query()
	changed := false
	for _, name := range secretParams {
		if q.Has(name) {
			q.Set(name, "xxxxx")
			changed = true
		}
	}
	if changed {
		u.RawQuery = q.Encode()
	}
	return u.String()
}

func (s *source) Open(ctx context.Context, o storage.OpenOptions) (storage.Database, error) {
	opts := s.opts
	opts.Migrate, opts.Logger = o.Migrate, o.Logger
	db, err := Open(ctx, s.url, opts)
	if err != nil {
		return nil, fmt.Errorf("opening postgres at DATABASE_URL=%s: %s%w", s.Redacted(), hint(err), err)
	}
	return db, nil
}

// hint names, in words, the usual reasons an external Postgres (Neon,
// Supabase, ...) refuses a connection, before pgx's own message.
func hint(err error) string {
	var pgErr *pgconn.PgError
	var unknownCA x509.UnknownAuthorityError
	var badHost x509.HostnameError
	switch {
	case errors.As(err, &unknownCA):
		return "the server's certificate is not signed by a CA this machine trusts (sslrootcert, or the system's): "
	case errors.As(err, &badHost):
		return "the server's certificate is not for the host in the URL: "
	case errors.As(err, &pgErr) && pgErr.Code == "28P01": // invalid_password
		return "wrong user name or password: "
	case errors.As(err, &pgErr) && pgErr.Code == "28000" && strings.Contains(pgErr.Message, "no encryption"):
		return "the server refuses connections without TLS: use sslmode=require or verify-full: "
	}
	return ""
}

// OpenReplica opens DATABASE_READ_URL, with the pool settings of
// DATABASE_URL, without migrating: the replica follows the primary's
// schema.
func (s *source) OpenReplica(ctx context.Context, o storage.OpenOptions) (storage.Database, error) {
	if s.readURL == "" {
		return nil, nil
	}
	opts := s.opts
	opts.Migrate, opts.DirectURL, opts.Logger, opts.Redacted = false, "", o.Logger, RedactURL(s.readURL)
	db, err := Open(ctx, s.readURL, opts)
	if err != nil {
		return nil, fmt.Errorf("opening the read replica at %s: %w", RedactURL(s.readURL), err)
	}
	return db, nil
}

// Migrations prefers DIRECT_DATABASE_URL, which bypasses PgBouncer. The
// lock is goose's table lock either way, which holds through any pooler:
// a session advisory lock needs a direct connection, and with a
// DIRECT_DATABASE_URL that went through PgBouncer in transaction mode by
// mistake, concurrent `migrate up`s took it on one server connection,
// failed to release it on another, and hung
// (TestDirectURLThroughTransactionPooler in cmd/migrate).
func (s *source) Migrations(ctx context.Context) (storage.Migrations, error) {
	url := s.url
	if s.directURL != "" {
		url = s.directURL
	}
	db, err := OpenDB(url, s.opts.QueryExecMode)
	if err != nil {
		return nil, err
	}
	p, err := migrations.NewProvider(goose.DialectPostgres, db)
	if err != nil {
		db.Close()
		return nil, err
	}
	return engine.Goose(p, db, RedactURL(url)), nil
}

func (s *source) Redacted() string { return RedactURL(s.url) }

func (s *source) LogValue() slog.Value {
	attrs := []slog.Attr{slog.String("url", s.Redacted())}
	if s.directURL != "" {
		attrs = append(attrs, slog.String("direct_url", RedactURL(s.directURL)))
	}
	if s.readURL != "" {
		attrs = append(attrs, slog.String("read_url", RedactURL(s.readURL)))
	}
	o := s.opts
	attrs = append(attrs, slog.Int("max_conns", int(o.MaxConns)), slog.Int("min_conns", int(o.MinConns)),
		slog.Duration("max_conn_lifetime", o.MaxConnLifetime), slog.Duration("max_conn_idle_time", o.MaxConnIdleTime),
		slog.Duration("connect_timeout", o.ConnectTimeout), slog.String("query_exec_mode", o.QueryExecMode),
		slog.Duration("slow_query", o.SlowQuery))
	return slog.GroupValue(attrs...)
}
