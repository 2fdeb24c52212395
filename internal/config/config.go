// Package config reads flystorage's app-wide configuration from the
// environment, exactly as Fly sets it, from one declarative table (table.go).
// Each database driver reads its own variables (engine.Driver.Load), and
// the composition root (internal/app) joins the two; this package imports
// no driver.
package config

import (
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"slices"
	"strings"
	"time"
)

// Config is the effective app-wide configuration. Its String and LogValue
// mask every secret.
type Config struct {
	// MigrateOnStart (MIGRATE_ON_START) makes the app apply pending
	// migrations of a database server itself; SQLite always migrates at
	// start (docs/sqlite.md).
	MigrateOnStart bool
	// DatabaseLocal is set by app.Load when the database is a file on
	// this machine's volume (SQLite) that no other machine shares: see
	// FileKeyPrefix.
	DatabaseLocal bool

	// BlobDir (BLOB_DIR) is where files go when S3 is nil. Empty until
	// app.Load sets the default, which depends on the database.
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

	// APIToken (API_TOKEN), when set, is required by every write under
	// /api/, as a bearer token or through a session. Never logged.
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

	forcePathStyle bool // S3_FORCE_PATH_STYLE

	// effective holds every variable of the table as it took effect (its
	// value, or its default), for LogValue.
	effective map[string]string
}

// S3 locates a bucket: Tigris on Fly, MinIO locally.
type S3 struct {
	Bucket          string
	Endpoint        string // AWS_ENDPOINT_URL_S3; empty lets the SDK choose
	Region          string
	AccessKeyID     string
	SecretAccessKey string // never logged
	PathStyle       bool
	// Timeout (S3_TIMEOUT) fails a request whose connection moves no byte
	// for this long.
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
// holds a secret. Commands exit with status 2 on it.
type Error struct {
	Var string
	Msg string
}

func (e *Error) Error() string { return e.Var + ": " + e.Msg }

// Load reads the app-wide configuration through getenv and validates it.
// The error, if any, is an *Error.
func Load(getenv func(string) string) (Config, error) {
	env := NewEnv(getenv)
	cfg := Config{effective: map[string]string{}}
	if env("BUCKET_NAME") != "" {
		cfg.S3 = &S3{}
	}
	for _, v := range table {
		value := env(v.Name)
		if value == "" {
			value = v.Default
		}
		if v.s3 && cfg.S3 == nil {
			continue // the bucket's settings, without a bucket
		}
		if value == "" {
			continue
		}
		cfg.effective[v.Name] = value
		if err := v.set(&cfg, value); err != nil {
			// A secret, or a URL that may hold credentials, is not repeated.
			var plain plainError
			if v.Secret || errors.As(err, &plain) {
				return Config{}, &Error{Var: v.Name, Msg: err.Error()}
			}
			return Config{}, &Error{Var: v.Name, Msg: fmt.Sprintf("%q %s", value, err)}
		}
	}
	return cfg, cfg.check()
}

// check holds the rules that span variables.
func (c *Config) check() error {
	if c.LogFormat == "" {
		c.LogFormat = "text"
		if c.OnFly {
			c.LogFormat = "json" // Fly's log shipping parses JSON lines
		}
	}
	if s := c.S3; s != nil {
		if (s.AccessKeyID == "") != (s.SecretAccessKey == "") {
			return &Error{Var: "AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY", Msg: "set both or neither"}
		}
		// S3 takes at most 10,000 parts, and an upload's size is not known
		// when its parts are chosen.
		if c.MaxUploadBytes > s.PartSize*MaxParts {
			return &Error{Var: "MAX_UPLOAD_BYTES", Msg: fmt.Sprintf("is more than S3 takes in %d parts of S3_PART_SIZE (%d bytes): raise S3_PART_SIZE to at least %d",
				MaxParts, s.PartSize, (c.MaxUploadBytes+MaxParts-1)/MaxParts)}
		}
		// MinIO on localhost or an IP address cannot serve bucket
		// subdomains, so it gets path-style URLs; Tigris wants
		// virtual-hosted ones.
		s.PathStyle = c.forcePathStyle || localEndpoint(s.Endpoint)
		if s.PublicURL == "" {
			// Browsers reach the store at S3_PUBLIC_ENDPOINT when set.
			if s.PublicEndpoint != "" {
				s.PublicURL = publicURL(s.PublicEndpoint, s.Bucket, s.PathStyle || localEndpoint(s.PublicEndpoint))
			} else {
				s.PublicURL = publicURL(s.Endpoint, s.Bucket, s.PathStyle)
			}
		}
	}
	return nil
}

// tigrisHosts are Tigris's S3 API hosts: t3.storage.dev, its endpoint
// today, and fly.storage.tigris.dev, which `fly storage create` still
// sets. Neither serves a public bucket's objects to every account: Tigris
// serves them at https://<bucket>.t3.tigrisfiles.io (docs/tigris.md,
// "Public buckets").
var tigrisHosts = []string{"t3.storage.dev", "fly.storage.tigris.dev"}

// publicURL is a public bucket's base URL for the endpoint in use:
// Tigris's public domain for Tigris (or no endpoint, on Fly), else the
// bucket's URL on the endpoint itself, path-style where requests are
// (MinIO).
func publicURL(endpoint, bucket string, pathStyle bool) string {
	u, err := url.Parse(endpoint)
	if endpoint == "" || err != nil || slices.Contains(tigrisHosts, strings.ToLower(u.Hostname())) {
		return "https://" + bucket + ".t3.tigrisfiles.io"
	}
	if pathStyle {
		return strings.TrimSuffix(endpoint, "/") + "/" + bucket
	}
	u.Host = bucket + "." + u.Host
	return strings.TrimSuffix(u.String(), "/")
}

// scoped reports whether this machine's files need a prefix of their own
// in the bucket: with SQLite unreplicated every machine has its own
// database on its own volume, and a bucket they share must not mix their
// files (each machine's sweep would delete the others').
func (c Config) scoped() bool {
	return c.DatabaseLocal && c.S3 != nil && c.MachineID != ""
}

// FileKeyPrefix is where this machine's files go: BUCKET_PREFIX, and with
// unreplicated SQLite on Fly with a bucket, the machine's id after it.
func (c Config) FileKeyPrefix() string {
	if c.scoped() {
		return c.KeyPrefix + c.MachineID + "/"
	}
	return c.KeyPrefix
}

// LogValue logs every variable of the table as it took effect, secrets
// masked.
func (c Config) LogValue() slog.Value {
	var attrs []slog.Attr
	for _, v := range table {
		value, ok := c.effective[v.Name]
		if !ok {
			continue
		}
		switch {
		case v.Secret:
			value = "xxxxx"
		case v.logAs != nil:
			value = v.logAs(value)
		}
		attrs = append(attrs, slog.String(strings.ToLower(v.Name), value))
	}
	if c.BlobDir != "" && c.S3 == nil {
		attrs = append(attrs, slog.String("blob_dir", c.BlobDir))
	}
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
		s.Bucket, s.Endpoint, s.Region, Mask(s.AccessKeyID), s.PathStyle)
}

// GoString covers %#v.
func (s S3) GoString() string { return "config.S3" + s.String() }

// LogValue masks the secret key when an S3 is logged on its own.
func (s S3) LogValue() slog.Value { return slog.StringValue(s.String()) }

// Mask keeps the first four characters of an access key id, which is
// enough to tell keys apart in logs, and hides the rest.
func Mask(k string) string {
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
