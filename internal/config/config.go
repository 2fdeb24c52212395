// Package config reads flystorage's configuration from the environment,
// exactly as Fly sets it, and validates it before anything is opened.
package config

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
)

// Defaults that make `go run ./cmd/app` work on a fresh machine.
const (
	DefaultDatabasePath   = "data/app.db"
	DefaultPort           = 8080
	DefaultMaxUploadBytes = 100 << 20
	DefaultRegion         = "auto"
	DefaultSweepInterval  = time.Hour
	DefaultBackupKeep     = 14
	// DefaultShutdownTimeout is just under fly.toml's kill_timeout (30s),
	// after which Fly kills the machine.
	DefaultShutdownTimeout = 25 * time.Second
	DefaultKeyPrefix       = "files/"
	DefaultPresignTTL      = 15 * time.Minute
	DefaultPartSize        = 8 << 20
	DefaultConcurrency     = 3
	// MinPartSize is S3's smallest part but the last.
	MinPartSize = 5 << 20
)

// Database engines.
const (
	Postgres = "postgres"
	SQLite   = "sqlite"
)

// Config is the effective configuration. Its String and LogValue mask every
// password and secret key.
type Config struct {
	// Database is Postgres when DATABASE_URL is set, SQLite otherwise.
	Database     string
	DatabaseURL  string // DATABASE_URL; holds a password
	DatabasePath string // DATABASE_PATH, or DefaultDatabasePath
	// DirectDatabaseURL (DIRECT_DATABASE_URL) bypasses a connection pooler
	// such as Managed Postgres's PgBouncer. Migrations use it when set: they
	// hold a session advisory lock, which transaction pooling cannot keep.
	DirectDatabaseURL string
	// Pool tunes the Postgres connection pool.
	Pool PostgresPool
	// MigrateOnStart makes the app apply pending Postgres migrations itself.
	// SQLite always migrates at start (see the README, "Migrations").
	MigrateOnStart bool

	// BlobDir is where files go when S3 is nil.
	BlobDir string
	// S3 is set when BUCKET_NAME is.
	S3 *S3
	// KeyPrefix (BUCKET_PREFIX) starts every file's key in the bucket or
	// directory; the rest of the key is the file's id.
	KeyPrefix string
	// PresignTTL (PRESIGN_TTL) is how long a download or upload URL works.
	PresignTTL time.Duration
	// URLSigningKey (URL_SIGNING_KEY) signs the app's own download and
	// upload URLs for local files. Empty: a key generated and kept in
	// BlobDir.
	URLSigningKey string

	Port           int
	MaxUploadBytes int64
	// SweepInterval (SWEEP_INTERVAL) is how often the server removes file
	// objects no row names; 0 turns the periodic sweep off.
	SweepInterval time.Duration

	// APIToken (API_TOKEN), when set, is required as a bearer token by
	// every write under /api/. Never logged.
	APIToken string
	// OnFly is true on a Fly machine (FLY_APP_NAME is set): writes without
	// an API_TOKEN are refused there, and logs default to JSON.
	OnFly bool
	// MachineID (FLY_MACHINE_ID, set by Fly) scopes what a SQLite machine
	// keeps in a shared bucket; see FileKeyPrefix.
	MachineID string
	// LogFormat (LOG_FORMAT) is "json" or "text"; LogLevel (LOG_LEVEL) one
	// of slog's levels.
	LogFormat string
	LogLevel  slog.Level
	// ShutdownTimeout (SHUTDOWN_TIMEOUT) is how long in-flight requests get
	// after SIGINT or SIGTERM; keep it under fly.toml's kill_timeout.
	ShutdownTimeout time.Duration
	// MetricsPort (METRICS_PORT) serves /metrics on a port of its own; 0
	// serves it on PORT.
	MetricsPort int

	// BackupInterval (BACKUP_INTERVAL) is how often the server backs the
	// SQLite database up to the bucket; 0 turns it off. BackupKeep
	// (BACKUP_KEEP) is how many backups to keep; 0 keeps all.
	BackupInterval time.Duration
	BackupKeep     int
}

// PostgresPool is the pool settings for Postgres. Each comes from its DB_* variable if set,
// else from pgx's own parameter in DATABASE_URL (a zero value here leaves
// that one in force), else from the default.
type PostgresPool struct {
	MaxConns        int32         // DB_MAX_CONNS, URL pool_max_conns
	MinConns        int32         // DB_MIN_CONNS, URL pool_min_conns
	MaxConnLifetime time.Duration // DB_MAX_CONN_LIFETIME, URL pool_max_conn_lifetime
	MaxConnIdleTime time.Duration // DB_MAX_CONN_IDLE_TIME, URL pool_max_conn_idle_time
	ConnectTimeout  time.Duration // DB_CONNECT_TIMEOUT, URL connect_timeout
	QueryExecMode   string        // DB_QUERY_EXEC_MODE, URL default_query_exec_mode
	// SlowQuery (DB_SLOW_QUERY) is the duration above which a statement is
	// logged; 0 logs none.
	SlowQuery time.Duration
}

// Pool defaults. The pool size follows the Fly guide's pooling example; the
// lifetimes follow Managed Postgres's advice (its proxy drains connections,
// so recycle them within 10 minutes and drop idle ones after 5); exec
// works through PgBouncer in transaction mode, where pgx's own default,
// cache_statement, fails with "prepared statement ... already exists".
const (
	DefaultQueryExecMode = "exec"
	DefaultSlowQuery     = 200 * time.Millisecond
)

// QueryExecModes are pgx's query execution modes.
var QueryExecModes = []string{"cache_statement", "cache_describe", "describe_exec", "exec", "simple_protocol"}

// S3 locates a bucket: Tigris on Fly, MinIO locally.
type S3 struct {
	Bucket          string
	Endpoint        string // AWS_ENDPOINT_URL_S3; empty lets the SDK choose
	Region          string
	AccessKeyID     string
	SecretAccessKey string // never logged
	PathStyle       bool
	// Timeout (S3_TIMEOUT) fails a request whose connection moves no byte
	// for this long; 0 leaves the s3 package's default.
	Timeout time.Duration
	// PartSize (S3_PART_SIZE) and Concurrency (S3_CONCURRENCY) shape
	// multipart uploads: an upload holds Concurrency+1 parts in memory.
	PartSize    int64
	Concurrency int
	// PublicEndpoint (S3_PUBLIC_ENDPOINT) is the endpoint in presigned URLs
	// a browser follows, when it reaches the store by another name than
	// the app does (docker-compose: minio:9000 for the app, localhost:9000
	// for the browser). Empty: Endpoint.
	PublicEndpoint string
	// Public (BUCKET_PUBLIC) says the bucket serves its objects to anyone,
	// at PublicURL (BUCKET_PUBLIC_URL) + "/" + key.
	Public    bool
	PublicURL string
}

// Error is a configuration error. It names the variable at fault and never
// holds a secret. cmd/app exits with status 2 on it.
type Error struct {
	Var string
	Msg string
}

func (e *Error) Error() string { return e.Var + ": " + e.Msg }

// Load reads the configuration through getenv and validates it. The error,
// if any, is an *Error.
func Load(getenv func(string) string) (Config, error) {
	env := func(name string) string { return strings.TrimSpace(getenv(name)) }
	cfg := Config{
		DatabaseURL:     env("DATABASE_URL"),
		DatabasePath:    env("DATABASE_PATH"),
		BlobDir:         env("BLOB_DIR"),
		Port:            DefaultPort,
		MaxUploadBytes:  DefaultMaxUploadBytes,
		SweepInterval:   DefaultSweepInterval,
		KeyPrefix:       DefaultKeyPrefix,
		PresignTTL:      DefaultPresignTTL,
		URLSigningKey:   env("URL_SIGNING_KEY"),
		APIToken:        env("API_TOKEN"),
		OnFly:           env("FLY_APP_NAME") != "",
		MachineID:       env("FLY_MACHINE_ID"),
		ShutdownTimeout: DefaultShutdownTimeout,
	}
	var err error

	switch {
	case cfg.DatabaseURL != "" && cfg.DatabasePath != "":
		return Config{}, &Error{Var: "DATABASE_URL and DATABASE_PATH",
			Msg: "both are set, but the app uses one database: remove DATABASE_PATH to use Postgres at DATABASE_URL (to keep SQLite instead, unset DATABASE_URL: fly secrets unset DATABASE_URL)"}
	case cfg.DatabaseURL != "":
		cfg.Database = Postgres
		if err := checkPostgresURL("DATABASE_URL", cfg.DatabaseURL); err != nil {
			return Config{}, err
		}
		if cfg.Pool, err = loadPool(env, cfg.DatabaseURL); err != nil {
			return Config{}, err
		}
	default:
		cfg.Database = SQLite
		if cfg.DatabasePath == "" {
			cfg.DatabasePath = DefaultDatabasePath
		}
	}
	if cfg.DirectDatabaseURL = env("DIRECT_DATABASE_URL"); cfg.DirectDatabaseURL != "" {
		if cfg.Database != Postgres {
			return Config{}, &Error{Var: "DIRECT_DATABASE_URL", Msg: "is set but DATABASE_URL is not: set DATABASE_URL too (the app's pooled connection), or remove DIRECT_DATABASE_URL"}
		}
		if err := checkPostgresURL("DIRECT_DATABASE_URL", cfg.DirectDatabaseURL); err != nil {
			return Config{}, err
		}
	}
	if cfg.MigrateOnStart, err = parseBool(env, "MIGRATE_ON_START"); err != nil {
		return Config{}, err
	}

	if bucket := env("BUCKET_NAME"); bucket != "" {
		if cfg.S3, err = loadS3(env, bucket); err != nil {
			return Config{}, err
		}
	} else if cfg.BlobDir == "" {
		// Files sit beside the SQLite file, on the same volume. With Postgres
		// there is no such file, so they go under ./data.
		cfg.BlobDir = filepath.Join(filepath.Dir(DefaultDatabasePath), "blobs")
		if cfg.Database == SQLite {
			cfg.BlobDir = filepath.Join(filepath.Dir(cfg.DatabasePath), "blobs")
		}
	}

	if v := env("PORT"); v != "" {
		p, err := strconv.Atoi(v)
		if err != nil || p < 0 || p > 65535 {
			return Config{}, &Error{Var: "PORT", Msg: fmt.Sprintf("%q is not a port number (0-65535)", v)}
		}
		cfg.Port = p
	}
	if v := env("MAX_UPLOAD_BYTES"); v != "" {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil || n <= 0 {
			return Config{}, &Error{Var: "MAX_UPLOAD_BYTES", Msg: fmt.Sprintf("%q is not a positive number of bytes", v)}
		}
		cfg.MaxUploadBytes = n
	}
	if v := env("BUCKET_PREFIX"); v != "" {
		if err := checkKeyPrefix(v); err != nil {
			return Config{}, err
		}
		cfg.KeyPrefix = v
	}
	if v := env("PRESIGN_TTL"); v != "" {
		if cfg.PresignTTL, err = parseDuration("PRESIGN_TTL", v); err != nil {
			return Config{}, err
		}
		if cfg.PresignTTL < time.Second || cfg.PresignTTL > 7*24*time.Hour {
			return Config{}, &Error{Var: "PRESIGN_TTL", Msg: fmt.Sprintf("%s is outside 1s to 168h (S3's limit for presigned URLs)", v)}
		}
	}
	if k := cfg.URLSigningKey; k != "" && len(k) < 32 {
		return Config{}, &Error{Var: "URL_SIGNING_KEY", Msg: "is shorter than 32 characters; make one with: openssl rand -hex 32"}
	}
	if t := cfg.APIToken; t != "" && len(t) < 16 {
		return Config{}, &Error{Var: "API_TOKEN", Msg: "is shorter than 16 characters; make one with: openssl rand -hex 32"}
	}
	switch cfg.LogFormat = strings.ToLower(env("LOG_FORMAT")); cfg.LogFormat {
	case "":
		cfg.LogFormat = "text"
		if cfg.OnFly {
			cfg.LogFormat = "json" // Fly's log shipping parses JSON lines
		}
	case "json", "text":
	default:
		return Config{}, &Error{Var: "LOG_FORMAT", Msg: fmt.Sprintf("%q is not json or text", env("LOG_FORMAT"))}
	}
	if v := env("LOG_LEVEL"); v != "" {
		if err := cfg.LogLevel.UnmarshalText([]byte(v)); err != nil {
			return Config{}, &Error{Var: "LOG_LEVEL", Msg: fmt.Sprintf("%q is not debug, info, warn or error", v)}
		}
	}
	if v := env("SHUTDOWN_TIMEOUT"); v != "" {
		if cfg.ShutdownTimeout, err = parseDuration("SHUTDOWN_TIMEOUT", v); err != nil {
			return Config{}, err
		}
	}
	if v := env("METRICS_PORT"); v != "" {
		p, err := strconv.Atoi(v)
		if err != nil || p < 1 || p > 65535 {
			return Config{}, &Error{Var: "METRICS_PORT", Msg: fmt.Sprintf("%q is not a port number (1-65535)", v)}
		}
		cfg.MetricsPort = p
	}
	if v := env("BACKUP_INTERVAL"); v != "" {
		if cfg.BackupInterval, err = parseDuration("BACKUP_INTERVAL", v); err != nil {
			return Config{}, err
		}
	}
	if cfg.BackupInterval > 0 && cfg.Database != SQLite {
		return Config{}, &Error{Var: "BACKUP_INTERVAL", Msg: "backs up SQLite only; with Postgres, use Managed Postgres's daily snapshots (README, Operations)"}
	}
	if cfg.BackupInterval > 0 && cfg.S3 == nil {
		return Config{}, &Error{Var: "BACKUP_INTERVAL", Msg: "needs a bucket to back up to: set BUCKET_NAME (fly storage create)"}
	}
	cfg.BackupKeep = DefaultBackupKeep
	if v := env("BACKUP_KEEP"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 0 {
			return Config{}, &Error{Var: "BACKUP_KEEP", Msg: fmt.Sprintf("%q is not a whole number (0 keeps every backup)", v)}
		}
		cfg.BackupKeep = n
	}
	if v := env("SWEEP_INTERVAL"); v != "" {
		if cfg.SweepInterval, err = parseDuration("SWEEP_INTERVAL", v); err != nil {
			return Config{}, err
		}
	}
	return cfg, nil
}

// scoped reports whether this machine's files and backups need a prefix
// of their own in the bucket: with SQLite every machine has its own
// database on its own volume, and a bucket they share must not mix their
// files (each machine's sweep would delete the others') or backups.
func (c Config) scoped() bool {
	return c.Database == SQLite && c.S3 != nil && c.MachineID != ""
}

// FileKeyPrefix is where this machine's files go: BUCKET_PREFIX, and with
// SQLite on Fly with a bucket, the machine's id after it.
func (c Config) FileKeyPrefix() string {
	if c.scoped() {
		return c.KeyPrefix + c.MachineID + "/"
	}
	return c.KeyPrefix
}

// BackupPrefix is where this machine's SQLite backups go in the bucket.
func (c Config) BackupPrefix() string {
	if c.scoped() {
		return "backups/" + c.MachineID + "/"
	}
	return "backups/"
}

// checkPostgresURL accepts postgres:// and postgresql:// URLs that pgx can
// parse. Errors never repeat the URL, which holds the password.
func checkPostgresURL(name, raw string) error {
	u, err := url.Parse(raw)
	if err != nil {
		// The parser's message can quote any part of the URL, the password
		// included (a password with a '/' or '#' reads as a port), so it is
		// not repeated.
		return &Error{Var: name, Msg: "is not a valid URL; percent-encode any special characters in the user name or password"}
	}
	if u.Scheme != "postgres" && u.Scheme != "postgresql" {
		return &Error{Var: name, Msg: fmt.Sprintf("unsupported scheme %q: use postgres:// or postgresql://", u.Scheme)}
	}
	if u.Host == "" {
		return &Error{Var: name, Msg: "has no host"}
	}
	if _, err := pgconn.ParseConfig(raw); err != nil {
		// pgconn masks the password in its errors; mask again to be sure.
		return &Error{Var: name, Msg: strings.ReplaceAll(err.Error(), password(u), "xxxxx")}
	}
	return nil
}

func password(u *url.URL) string {
	if p, ok := u.User.Password(); ok && p != "" {
		return p
	}
	return "\x00" // matches nothing
}

// loadPool resolves each pool setting: the variable, else the URL's own
// parameter (left to pgx, so zero here), else the default.
func loadPool(env func(string) string, rawURL string) (PostgresPool, error) {
	u, _ := url.Parse(rawURL) // checked already
	inURL := func(param string) bool { return u.Query().Has(param) }
	p := PostgresPool{}
	var err error
	ints := []struct {
		name, param string
		dst         *int32
		def, min    int32
	}{
		{"DB_MAX_CONNS", "pool_max_conns", &p.MaxConns, DefaultMaxConns, 1},
		{"DB_MIN_CONNS", "pool_min_conns", &p.MinConns, 0, 0},
	}
	for _, f := range ints {
		switch v := env(f.name); {
		case v != "":
			n, perr := strconv.ParseInt(v, 10, 32)
			if perr != nil || int32(n) < f.min {
				return PostgresPool{}, &Error{Var: f.name, Msg: fmt.Sprintf("%q is not a whole number of at least %d", v, f.min)}
			}
			*f.dst = int32(n)
		case !inURL(f.param):
			*f.dst = f.def
		}
	}
	if p.MaxConns > 0 && p.MinConns > p.MaxConns {
		return PostgresPool{}, &Error{Var: "DB_MIN_CONNS", Msg: fmt.Sprintf("%d is more than DB_MAX_CONNS (%d)", p.MinConns, p.MaxConns)}
	}
	durations := []struct {
		name, param string
		dst         *time.Duration
		def         time.Duration
	}{
		{"DB_MAX_CONN_LIFETIME", "pool_max_conn_lifetime", &p.MaxConnLifetime, DefaultMaxConnLifetime},
		{"DB_MAX_CONN_IDLE_TIME", "pool_max_conn_idle_time", &p.MaxConnIdleTime, DefaultMaxConnIdleTime},
		{"DB_CONNECT_TIMEOUT", "connect_timeout", &p.ConnectTimeout, DefaultConnectTimeout},
		{"DB_SLOW_QUERY", "", &p.SlowQuery, DefaultSlowQuery},
	}
	for _, f := range durations {
		switch v := env(f.name); {
		case v != "":
			if *f.dst, err = parseDuration(f.name, v); err != nil {
				return PostgresPool{}, err
			}
		case f.param == "" || !inURL(f.param):
			*f.dst = f.def
		}
	}
	switch v := env("DB_QUERY_EXEC_MODE"); {
	case v != "":
		if !slices.Contains(QueryExecModes, v) {
			return PostgresPool{}, &Error{Var: "DB_QUERY_EXEC_MODE", Msg: fmt.Sprintf("%q is not one of %s", v, strings.Join(QueryExecModes, ", "))}
		}
		p.QueryExecMode = v
	case !inURL("default_query_exec_mode"):
		p.QueryExecMode = DefaultQueryExecMode
	}
	return p, nil
}

// parseDuration reads a Go duration such as 300ms, 5s or 10m.
func parseDuration(name, v string) (time.Duration, error) {
	d, err := time.ParseDuration(v)
	if err != nil || d < 0 {
		return 0, &Error{Var: name, Msg: fmt.Sprintf("%q is not a duration such as 500ms, 5s or 10m", v)}
	}
	return d, nil
}

func loadS3(env func(string) string, bucket string) (*S3, error) {
	s := &S3{
		Bucket:          bucket,
		Endpoint:        env("AWS_ENDPOINT_URL_S3"),
		Region:          env("AWS_REGION"),
		AccessKeyID:     env("AWS_ACCESS_KEY_ID"),
		SecretAccessKey: env("AWS_SECRET_ACCESS_KEY"),
	}
	if s.Region == "" {
		// `fly storage create` does not set AWS_REGION; Tigris wants "auto".
		s.Region = DefaultRegion
	}
	if (s.AccessKeyID == "") != (s.SecretAccessKey == "") {
		return nil, &Error{Var: "AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY", Msg: "set both or neither"}
	}
	host := ""
	if s.Endpoint != "" {
		u, err := url.Parse(s.Endpoint)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return nil, &Error{Var: "AWS_ENDPOINT_URL_S3", Msg: "is not an http(s) URL such as https://fly.storage.tigris.dev"}
		}
		if u.User != nil {
			return nil, &Error{Var: "AWS_ENDPOINT_URL_S3", Msg: "must not hold credentials: use AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY"}
		}
		host = u.Hostname()
	}
	force, err := parseBool(env, "S3_FORCE_PATH_STYLE")
	if err != nil {
		return nil, err
	}
	if v := env("S3_TIMEOUT"); v != "" {
		if s.Timeout, err = parseDuration("S3_TIMEOUT", v); err != nil {
			return nil, err
		}
		if s.Timeout == 0 {
			return nil, &Error{Var: "S3_TIMEOUT", Msg: "must be more than 0"}
		}
	}
	// MinIO on localhost or an IP address cannot serve bucket subdomains, so
	// it gets path-style URLs; Tigris wants virtual-hosted ones.
	s.PathStyle = force || strings.EqualFold(host, "localhost") || net.ParseIP(host) != nil

	if s.PartSize, err = parseSize(env, "S3_PART_SIZE", DefaultPartSize); err != nil {
		return nil, err
	}
	if s.PartSize < MinPartSize {
		return nil, &Error{Var: "S3_PART_SIZE", Msg: fmt.Sprintf("%d is below S3's minimum part size of %d bytes (5 MiB)", s.PartSize, MinPartSize)}
	}
	s.Concurrency = DefaultConcurrency
	if v := env("S3_CONCURRENCY"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > 64 {
			return nil, &Error{Var: "S3_CONCURRENCY", Msg: fmt.Sprintf("%q is not a whole number from 1 to 64", v)}
		}
		s.Concurrency = n
	}
	if s.PublicEndpoint = env("S3_PUBLIC_ENDPOINT"); s.PublicEndpoint != "" {
		if u, err := url.Parse(s.PublicEndpoint); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.User != nil {
			return nil, &Error{Var: "S3_PUBLIC_ENDPOINT", Msg: "is not an http(s) URL without credentials, such as http://localhost:9000"}
		}
	}
	if s.Public, err = parseBool(env, "BUCKET_PUBLIC"); err != nil {
		return nil, err
	}
	s.PublicURL = strings.TrimSuffix(env("BUCKET_PUBLIC_URL"), "/")
	if s.PublicURL == "" {
		// Tigris serves public buckets here; older buckets also answer at
		// https://<bucket>.fly.storage.tigris.dev.
		s.PublicURL = "https://" + s.Bucket + ".t3.tigrisfiles.io"
	} else if u, err := url.Parse(s.PublicURL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, &Error{Var: "BUCKET_PUBLIC_URL", Msg: "is not an http(s) URL such as https://my-bucket.t3.tigrisfiles.io"}
	}
	return s, nil
}

// parseSize reads a byte count, with an optional KiB or MiB suffix.
func parseSize(env func(string) string, name string, def int64) (int64, error) {
	v := env(name)
	if v == "" {
		return def, nil
	}
	mult := int64(1)
	num := v
	for suffix, m := range map[string]int64{"KiB": 1 << 10, "MiB": 1 << 20, "GiB": 1 << 30} {
		if n, ok := strings.CutSuffix(v, suffix); ok {
			num, mult = strings.TrimSpace(n), m
		}
	}
	n, err := strconv.ParseInt(num, 10, 64)
	if err != nil || n <= 0 {
		return 0, &Error{Var: name, Msg: fmt.Sprintf("%q is not a positive size such as 16MiB or 16777216", v)}
	}
	return n * mult, nil
}

// checkKeyPrefix accepts a relative path ending in "/" that works as
// both an S3 key prefix and a directory: letters, digits, . _ - and /, no
// element starting with a dot.
func checkKeyPrefix(p string) error {
	bad := !strings.HasSuffix(p, "/") || strings.HasPrefix(p, "/") || strings.Contains(p, "//")
	for _, r := range p {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune("._-/", r)) {
			bad = true
		}
	}
	for _, elem := range strings.Split(strings.TrimSuffix(p, "/"), "/") {
		if strings.HasPrefix(elem, ".") {
			bad = true
		}
	}
	if bad {
		return &Error{Var: "BUCKET_PREFIX", Msg: fmt.Sprintf("%q must be a path ending in / (letters, digits, . _ - /), such as files/", p)}
	}
	return nil
}

func parseBool(env func(string) string, name string) (bool, error) {
	v := env(name)
	if v == "" {
		return false, nil
	}
	b, err := strconv.ParseBool(v)
	if err != nil {
		return false, &Error{Var: name, Msg: fmt.Sprintf("%q is not true or false", v)}
	}
	return b, nil
}

// RedactURL returns a database URL with its password, and any password in
// its query, replaced by xxxxx.
func RedactURL(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return "(unparsable)"
	}
	if _, ok := u.User.Password(); ok {
		u.User = url.UserPassword(u.User.Username(), "xxxxx")
	}
	q := u.Query()
	if q.Has("password") {
		q.Set("password", "xxxxx")
		u.RawQuery = q.Encode()
	}
	return u.String()
}

// LogValue logs the effective configuration with secrets masked.
func (c Config) LogValue() slog.Value {
	attrs := []slog.Attr{slog.String("database", c.Database)}
	if c.Database == Postgres {
		attrs = append(attrs, slog.String("database_url", RedactURL(c.DatabaseURL)))
		if c.DirectDatabaseURL != "" {
			attrs = append(attrs, slog.String("direct_database_url", RedactURL(c.DirectDatabaseURL)))
		}
		attrs = append(attrs, slog.Bool("migrate_on_start", c.MigrateOnStart), slog.Any("pool", c.Pool))
	} else {
		attrs = append(attrs, slog.String("database_path", c.DatabasePath))
	}
	if c.S3 != nil {
		attrs = append(attrs, slog.String("files", "s3"), slog.String("bucket", c.S3.Bucket),
			slog.String("endpoint", c.S3.Endpoint), slog.String("region", c.S3.Region),
			slog.Bool("path_style", c.S3.PathStyle), slog.String("access_key_id", maskKey(c.S3.AccessKeyID)))
	} else {
		attrs = append(attrs, slog.String("files", "local"), slog.String("blob_dir", c.BlobDir))
	}
	attrs = append(attrs, slog.Int("port", c.Port), slog.Int64("max_upload_bytes", c.MaxUploadBytes), slog.Duration("sweep_interval", c.SweepInterval),
		slog.Bool("api_token_set", c.APIToken != ""), slog.Bool("on_fly", c.OnFly), slog.Duration("shutdown_timeout", c.ShutdownTimeout))
	return slog.GroupValue(attrs...)
}

// String is the masked form LogValue gives, so that printing a Config with
// fmt never shows a secret either.
func (c Config) String() string { return c.LogValue().String() }

// GoString covers %#v.
func (c Config) GoString() string { return "config.Config" + c.String() }

// String masks the secret key.
func (s S3) String() string {
	return fmt.Sprintf("{bucket:%s endpoint:%s region:%s access_key_id:%s path_style:%t}",
		s.Bucket, s.Endpoint, s.Region, maskKey(s.AccessKeyID), s.PathStyle)
}

// GoString covers %#v.
func (s S3) GoString() string { return "config.S3" + s.String() }

// LogValue masks the secret key when an S3 is logged on its own.
func (s S3) LogValue() slog.Value { return slog.StringValue(s.String()) }

// maskKey keeps the first four characters of an access key id, which is
// enough to tell keys apart in logs.
func maskKey(k string) string {
	if len(k) <= 4 {
		return strings.Repeat("x", len(k))
	}
	return k[:4] + "xxxxx"
}

// UsageError is a bad command line. Like *Error, it makes a command exit 2.
type UsageError string

func (e UsageError) Error() string { return string(e) }

// ExitCode returns the status a command exits with after err: 0 for nil, 2
// for a configuration or usage error, so a bad variable is told apart from a
// failure to start, and 1 otherwise.
func ExitCode(err error) int {
	var cfgErr *Error
	var usage UsageError
	switch {
	case err == nil:
		return 0
	case errors.As(err, &cfgErr), errors.As(err, &usage):
		return 2
	}
	return 1
}
