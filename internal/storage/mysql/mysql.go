// Package mysql keeps notes and file metadata in MySQL through
// database/sql and go-sql-driver/mysql: PlanetScale (Vitess), or any MySQL
// 8 or MariaDB server. DATABASE_URL selects it with the mysql:// scheme,
// the form Fly's guide gives:
//
//	mysql://user:password@host.planetscale.com/dbname?sslmode=require
//
// The schema (migrations/mysql) keeps to what Vitess accepts: no foreign
// keys, triggers or stored procedures.
package mysql

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"database/sql"
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/go-sql-driver/mysql"
	"github.com/pressly/goose/v3"
	"github.com/pressly/goose/v3/lock"

	"github.com/example/flystorage/internal/config"
	"github.com/example/flystorage/internal/storage"
	"github.com/example/flystorage/internal/storage/engine"
	"github.com/example/flystorage/migrations"
)

// Driver opens a MySQL database named by a mysql:// DATABASE_URL.
var Driver = engine.Driver{
	Name:    "mysql",
	Var:     "DATABASE_URL",
	Schemes: []string{"mysql"},
	Vars:    config.PoolVars,
	Load:    Load,
}

const urlVar = "DATABASE_URL"

// defaultPort is MySQL's, used when the URL names none.
const defaultPort = "3306"

// SSL modes, named as Postgres's sslmode so one DATABASE_URL habit serves
// both engines.
const (
	// sslDisable never encrypts.
	sslDisable = "disable"
	// sslPrefer encrypts when the server offers TLS, without verifying its
	// certificate, and falls back to plaintext when it does not. It is the
	// default when the URL has no sslmode, as it is for Postgres (libpq):
	// a local MariaDB without TLS works with nothing set, and Open warns
	// when a connection to a public host ends up in plaintext.
	sslPrefer = "prefer"
	// sslRequire encrypts, without verifying the certificate.
	sslRequire = "require"
	// sslVerifyCA encrypts and verifies the certificate chain, not the
	// host name.
	sslVerifyCA = "verify-ca"
	// sslVerifyFull encrypts and verifies the chain and the host name.
	sslVerifyFull = "verify-full"
)

var sslModes = []string{sslDisable, sslPrefer, sslRequire, sslVerifyCA, sslVerifyFull}

// urlParams are the query parameters a mysql:// URL may carry.
var urlParams = []string{"sslmode", "sslrootcert"}

// Source is a MySQL database configured but not yet opened.
type Source struct {
	cfg      *mysql.Config // TLS is set by Open, per pool (see tlsConfig)
	host     string
	sslMode  string
	roots    *x509.CertPool // from sslrootcert; nil: the system's
	pool     config.Pool
	redacted string
}

var _ storage.Source = (*Source)(nil)

// Load parses a mysql:// URL and the DB_* variables. Its errors name
// DATABASE_URL (or the DB_* variable) and never hold the password.
func Load(value string, getenv func(string) string) (storage.Source, error) {
	return load(value, getenv)
}

func load(value string, getenv func(string) string) (*Source, error) {
	u, err := url.Parse(value)
	if err != nil {
		// url.Parse's error quotes the URL, password and all.
		return nil, urlError("is not a valid URL: percent-encode any reserved character in the password, and check the port (mysql://user:password@host:3306/dbname?sslmode=require)")
	}
	if u.Scheme != "mysql" {
		return nil, urlError(fmt.Sprintf("the scheme is %q; the MySQL backend takes mysql://user:password@host:3306/dbname?sslmode=require", u.Scheme))
	}
	redacted := u.Redacted()
	host := u.Hostname()
	if host == "" {
		return nil, urlError("names no host (mysql://user:password@host:3306/dbname)")
	}
	port := u.Port()
	if port == "" {
		port = defaultPort
	}
	if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 {
		return nil, urlError(fmt.Sprintf("port %q is not a number from 1 to 65535", port))
	}
	dbName := strings.TrimPrefix(u.Path, "/")
	if dbName == "" || strings.Contains(dbName, "/") {
		return nil, urlError("names no database: put it in the path (mysql://user:password@host:3306/dbname)")
	}
	q := u.Query()
	for name := range q {
		if !slices.Contains(urlParams, name) {
			return nil, urlError(fmt.Sprintf("unknown parameter %q; a mysql:// URL takes %s", name, strings.Join(urlParams, " and ")))
		}
	}
	mode := q.Get("sslmode")
	if mode == "" {
		mode = sslPrefer
	}
	if !slices.Contains(sslModes, mode) {
		return nil, urlError(fmt.Sprintf("sslmode %q is not one of %s", mode, strings.Join(sslModes, ", ")))
	}
	var roots *x509.CertPool
	if file := q.Get("sslrootcert"); file != "" {
		if mode != sslVerifyCA && mode != sslVerifyFull {
			return nil, urlError("sslrootcert needs sslmode=verify-ca or verify-full")
		}
		pem, err := os.ReadFile(file)
		if err != nil {
			return nil, urlError(fmt.Sprintf("reading sslrootcert: %v", err))
		}
		roots = x509.NewCertPool()
		if !roots.AppendCertsFromPEM(pem) {
			return nil, urlError(fmt.Sprintf("sslrootcert %s holds no PEM certificate", file))
		}
	}
	pool, err := config.LoadPool(config.NewEnv(getenv))
	if err != nil {
		return nil, err
	}
	pool = pool.WithDefaults()

	cfg := mysql.NewConfig()
	cfg.User = u.User.Username()
	cfg.Passwd, _ = u.User.Password()
	cfg.Net = "tcp"
	cfg.Addr = net.JoinHostPort(host, port)
	cfg.DBName = dbName
	cfg.ParseTime = true
	cfg.Loc = time.UTC
	cfg.Timeout = pool.ConnectTimeout
	// InterpolateParams sends each statement with its arguments in one
	// round trip, instead of prepare, execute and close: three across the
	// internet to PlanetScale. The driver escapes for the server's mode,
	// and the connection's utf8mb4 is a safe character set for it.
	cfg.InterpolateParams = true
	cfg.Logger = &mysql.NopLogger{} // errors reach the caller; the log line would repeat them
	if mode == sslPrefer {
		cfg.AllowFallbackToPlaintext = true
	}
	return &Source{cfg: cfg, host: host, sslMode: mode, roots: roots, pool: pool, redacted: redacted}, nil
}

func urlError(msg string) error { return &config.Error{Var: urlVar, Msg: msg} }

// tlsConfig returns the TLS settings of sslmode, or nil for disable. Its
// VerifyConnection records each handshake in handshakes: the driver gives
// no other way to learn whether prefer ended in TLS.
func (s *Source) tlsConfig(handshakes *atomic.Int64) *tls.Config {
	if s.sslMode == sslDisable {
		return nil
	}
	c := &tls.Config{MinVersion: tls.VersionTLS12, ServerName: s.host, RootCAs: s.roots}
	switch s.sslMode {
	case sslPrefer, sslRequire:
		c.InsecureSkipVerify = true
		c.VerifyConnection = func(tls.ConnectionState) error { handshakes.Add(1); return nil }
	case sslVerifyCA:
		// Go verifies the host name with the chain; verify the chain alone.
		c.InsecureSkipVerify = true
		c.VerifyConnection = func(cs tls.ConnectionState) error {
			handshakes.Add(1)
			return verifyChain(cs, s.roots)
		}
	case sslVerifyFull:
		c.VerifyConnection = func(tls.ConnectionState) error { handshakes.Add(1); return nil }
	}
	return c
}

// verifyChain checks the server's certificate chains to roots (the
// system's when nil), whatever host name it names.
func verifyChain(cs tls.ConnectionState, roots *x509.CertPool) error {
	if len(cs.PeerCertificates) == 0 {
		return fmt.Errorf("the server sent no certificate")
	}
	inter := x509.NewCertPool()
	for _, c := range cs.PeerCertificates[1:] {
		inter.AddCert(c)
	}
	if _, err := cs.PeerCertificates[0].Verify(x509.VerifyOptions{Roots: roots, Intermediates: inter}); err != nil {
		return &tls.CertificateVerificationError{UnverifiedCertificates: cs.PeerCertificates, Err: err}
	}
	return nil
}

// Redacted is the URL with its password masked.
func (s *Source) Redacted() string { return s.redacted }

// LogValue logs the URL (password masked), the TLS mode and the pool.
func (s *Source) LogValue() slog.Value {
	return slog.GroupValue(
		slog.String("url", s.redacted),
		slog.String("sslmode", s.sslMode),
		slog.Int("max_conns", int(s.pool.MaxConns)),
		slog.Duration("max_conn_lifetime", s.pool.MaxConnLifetime),
		slog.Duration("max_conn_idle_time", s.pool.MaxConnIdleTime),
		slog.Duration("connect_timeout", s.pool.ConnectTimeout),
	)
}

// openDB opens a pool of at most maxConns connections (the DB_* settings
// otherwise), counting TLS handshakes in handshakes.
func (s *Source) openDB(maxConns int, handshakes *atomic.Int64) (*sql.DB, error) {
	cfg := s.cfg.Clone()
	cfg.TLS = s.tlsConfig(handshakes)
	connector, err := mysql.NewConnector(cfg)
	if err != nil {
		return nil, err
	}
	db := sql.OpenDB(connector)
	db.SetMaxOpenConns(maxConns)
	// database/sql keeps only 2 idle connections by default, and would
	// close and reopen the rest under load; keep them all until
	// ConnMaxIdleTime. It has no minimum, so DB_MIN_CONNS does not apply.
	db.SetMaxIdleConns(maxConns)
	db.SetConnMaxLifetime(s.pool.MaxConnLifetime)
	db.SetConnMaxIdleTime(s.pool.MaxConnIdleTime)
	return db, nil
}

// Open connects, checks the server answers, warns when the connection
// crosses a network in plaintext, and checks the schema is current (or
// migrates it when o.Migrate).
func (s *Source) Open(ctx context.Context, o storage.OpenOptions) (storage.Database, error) {
	return s.open(ctx, o)
}

func (s *Source) open(ctx context.Context, o storage.OpenOptions) (*Store, error) {
	log := o.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	var handshakes atomic.Int64
	db, err := s.openDB(int(s.pool.MaxConns), &handshakes)
	if err != nil {
		return nil, fmt.Errorf("opening %s: %w", s.redacted, err)
	}
	st := &Store{db: db, maxConns: int64(s.pool.MaxConns), describe: map[string]string{"backend": "mysql", "url": s.redacted}}
	// The pool is empty, so this query opens the first connection, and
	// handshakes says whether it is encrypted.
	if err := st.Ping(ctx); err != nil {
		db.Close()
		return nil, fmt.Errorf("connecting to %s: %w", s.redacted, err)
	}
	encrypted := handshakes.Load() > 0
	st.describe["tls"] = strconv.FormatBool(encrypted)
	if !encrypted && !engine.PrivateHost(s.host) {
		log.Warn("the database connection is not encrypted: anyone on the network path can read it; add sslmode=require (or verify-full) to DATABASE_URL (docs/external-databases.md)",
			"host", s.host)
	}
	if err := s.checkSchema(ctx, o.Migrate, log); err != nil {
		db.Close()
		return nil, err
	}
	return st, nil
}

// checkSchema migrates, or fails with storage.ErrSchemaBehind when
// migrations are pending.
func (s *Source) checkSchema(ctx context.Context, migrate bool, log *slog.Logger) error {
	m, err := s.migrations()
	if err != nil {
		return err
	}
	defer m.db.Close()
	if migrate {
		if err := migrations.Up(ctx, m.p, log); err != nil {
			return fmt.Errorf("migrating %s: %w", s.redacted, translate(err))
		}
		return nil
	}
	pending, err := m.p.HasPending(ctx)
	if err != nil {
		return fmt.Errorf("reading the schema version of %s: %w", s.redacted, translate(err))
	}
	if pending {
		return storage.ErrSchemaBehind
	}
	return nil
}

type gooseDB struct {
	p  *goose.Provider
	db *sql.DB
}

// migrationConns is the pool size for migrations: goose holds one
// connection while its lock takes another and a heartbeat a third.
const migrationConns = 3

// migrations opens a goose provider on a pool of its own. It takes
// goose's table lock, a row in goose_lock with a lease kept alive by a
// heartbeat: unlike MySQL's GET_LOCK, it holds through Vitess, which may
// run a session's statements on different backend connections. Several
// `migrate up` at once apply each migration once.
func (s *Source) migrations() (*gooseDB, error) {
	var handshakes atomic.Int64
	db, err := s.openDB(migrationConns, &handshakes)
	if err != nil {
		return nil, err
	}
	fsys, err := migrations.Dir("mysql")
	if err != nil {
		db.Close()
		return nil, err
	}
	// Retry every second for up to five minutes: a deploy waiting on
	// another's migrations goes on as soon as it can.
	locker, err := lock.NewMySQLTableLocker(lock.WithTableLockTimeout(time.Second, 300))
	if err != nil {
		db.Close()
		return nil, fmt.Errorf("creating the migration lock: %w", err)
	}
	p, err := goose.NewProvider(goose.DialectMySQL, db, fsys, goose.WithLocker(locker))
	if err != nil {
		db.Close()
		return nil, err
	}
	return &gooseDB{p: p, db: db}, nil
}

// Migrations opens the schema history for cmd/migrate, after checking the
// server answers.
func (s *Source) Migrations(ctx context.Context) (storage.Migrations, error) {
	m, err := s.migrations()
	if err != nil {
		return nil, err
	}
	if err := m.db.PingContext(ctx); err != nil {
		m.db.Close()
		return nil, fmt.Errorf("connecting to %s: %w", s.redacted, translate(err))
	}
	return engine.Goose(m.p, m.db, s.redacted), nil
}
