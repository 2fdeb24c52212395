package config

import (
	"fmt"
	"net"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// Defaults that make `go run ./cmd/app` work on a fresh machine. The
// table's Default strings are parsed through the same setters as a set
// variable, so each default is written once, here or in the table.
const (
	DefaultPort = 8080
	// DefaultShutdownTimeout is just under fly.toml's kill_timeout (30s),
	// after which Fly kills the machine.
	DefaultShutdownTimeout = 25 * time.Second
	DefaultPresignTTL      = 15 * time.Minute
	// DefaultPartSize and DefaultConcurrency keep an upload to 10 MiB of
	// parts: the smallest part S3 takes, one sent while the next is read
	// (docs/performance.md).
	DefaultPartSize    = MinPartSize
	DefaultConcurrency = 1
	// DefaultS3Timeout fails a request to the bucket whose connection
	// moves no byte for this long.
	DefaultS3Timeout = 20 * time.Second
	// MinPartSize is S3's smallest part but the last.
	MinPartSize = 5 << 20
	// MaxParts is the most parts S3 takes in one multipart upload.
	MaxParts = 10_000
)

// entry is a row of the table: the documented variable and how it sets
// the Config. set gets the value, or the Default when the variable is
// unset; it is not called when both are empty.
type entry struct {
	Var
	set func(c *Config, v string) error
	// s3 rows apply only with BUCKET_NAME.
	s3 bool
	// logAs masks a value that is not secret but not shown whole either.
	logAs func(string) string
}

// Vars documents every app-wide variable, in the table's order.
func Vars() []Var {
	out := make([]Var, len(table))
	for i, e := range table {
		out[i] = e.Var
	}
	return out
}

// Default returns the documented default of the app-wide variable name.
func Default(name string) (string, bool) {
	for _, e := range table {
		if e.Name == name {
			return e.Default, true
		}
	}
	return "", false
}

// table is every app-wide variable: docs/configuration.md and .env.example
// are generated from it (internal/configdoc), with each driver's own.
var table = []entry{
	{Var: Var{Name: "MIGRATE_ON_START", Group: "Database", Default: "false",
		Doc: "Apply pending migrations of a database server at start, instead of `cmd/migrate` as fly.toml's release_command. SQLite and MongoDB always migrate at start."},
		set: func(c *Config, v string) (err error) { c.MigrateOnStart, err = parseBoolValue(v); return }},

	{Var: Var{Name: "BUCKET_NAME", Group: "Files", Example: "flystorage",
		Doc: "The Tigris (or MinIO) bucket for files; `fly storage create` sets it and the three AWS_* variables. Unset: files go to BLOB_DIR."},
		set: func(c *Config, v string) error { c.S3.Bucket = v; return nil }, s3: true},
	{Var: Var{Name: "AWS_ENDPOINT_URL_S3", Group: "Files", Example: "http://localhost:9000",
		Doc: "The S3 endpoint: Tigris's https://t3.storage.dev (`fly storage create` sets https://fly.storage.tigris.dev, which works too), MinIO's URL locally. Unset: the SDK's own resolution."},
		set: func(c *Config, v string) error { c.S3.Endpoint = v; return checkHTTPURL(v, true) }, s3: true},
	{Var: Var{Name: "AWS_REGION", Group: "Files", Default: "auto", Doc: "The bucket's region; Tigris wants auto."},
		set: func(c *Config, v string) error { c.S3.Region = v; return nil }, s3: true},
	{Var: Var{Name: "AWS_ACCESS_KEY_ID", Group: "Files", Example: "minioadmin", Doc: "The bucket's access key id (logged as its first four characters)."},
		set: func(c *Config, v string) error { c.S3.AccessKeyID = v; return nil }, s3: true, logAs: Mask},
	{Var: Var{Name: "AWS_SECRET_ACCESS_KEY", Group: "Files", Secret: true, Doc: "The bucket's secret key."},
		set: func(c *Config, v string) error { c.S3.SecretAccessKey = v; return nil }, s3: true},
	{Var: Var{Name: "S3_FORCE_PATH_STYLE", Group: "Files", Default: "false",
		Doc: "Path-style bucket URLs. Endpoints on localhost or an IP address (MinIO) get them anyway; Tigris wants virtual-hosted ones."},
		set: func(c *Config, v string) (err error) { c.forcePathStyle, err = parseBoolValue(v); return }, s3: true},
	{Var: Var{Name: "S3_TIMEOUT", Group: "Files", Default: DefaultS3Timeout.String(), Doc: "A request to the bucket whose connection moves no byte for this long fails."},
		set: func(c *Config, v string) (err error) {
			if c.S3.Timeout, err = parseDurationValue(v); err == nil && c.S3.Timeout == 0 {
				err = fmt.Errorf("must be more than 0")
			}
			return
		}, s3: true},
	{Var: Var{Name: "S3_PART_SIZE", Group: "Files", Default: "5MiB",
		Doc: "Multipart upload part size (at least 5MiB); an upload holds S3_CONCURRENCY+1 parts in memory, 10 MiB by default."},
		set: func(c *Config, v string) (err error) {
			if c.S3.PartSize, err = parseSizeValue(v); err == nil && c.S3.PartSize < MinPartSize {
				err = fmt.Errorf("is below S3's minimum part size of %d bytes (5MiB)", MinPartSize)
			}
			return
		}, s3: true},
	{Var: Var{Name: "S3_CONCURRENCY", Group: "Files", Default: strconv.Itoa(DefaultConcurrency), Doc: "Parts of one upload on their way to the bucket while the next is read (1 to 64); more helps only when the bucket is slower than the client."},
		set: func(c *Config, v string) (err error) { c.S3.Concurrency, err = parseIntValue(v, 1, 64); return }, s3: true},
	{Var: Var{Name: "S3_PUBLIC_ENDPOINT", Group: "Files",
		Doc: "The endpoint in presigned URLs, when browsers reach the store by another name than the app (docker-compose: http://localhost:9000)."},
		set: func(c *Config, v string) error { c.S3.PublicEndpoint = v; return checkHTTPURL(v, false) }, s3: true},
	{Var: Var{Name: "BUCKET_PUBLIC", Group: "Files", Default: "false",
		Doc: "The bucket serves its objects to anyone (`fly storage create --public`): download links are BUCKET_PUBLIC_URL/key and never expire."},
		set: func(c *Config, v string) (err error) { c.S3.Public, err = parseBoolValue(v); return }, s3: true},
	{Var: Var{Name: "BUCKET_PUBLIC_URL", Group: "Files", Doc: "A public bucket's base URL, such as a custom domain. Unset: it follows the endpoint: https://BUCKET_NAME.t3.tigrisfiles.io for Tigris, the bucket's URL on S3_PUBLIC_ENDPOINT, else AWS_ENDPOINT_URL_S3, for any other store."},
		set: func(c *Config, v string) error {
			c.S3.PublicURL = strings.TrimSuffix(v, "/")
			return checkHTTPURL(c.S3.PublicURL, false)
		}, s3: true},
	{Var: Var{Name: "BLOB_DIR", Group: "Files",
		Doc: "Where files go without a bucket. Unset: `blobs` beside the SQLite file, or data/<database>-blobs with a database server, so two databases never share (and sweep) one directory."},
		set: func(c *Config, v string) error { c.BlobDir = v; return nil }},
	{Var: Var{Name: "BUCKET_PREFIX", Group: "Files", Default: "files/",
		Doc: "Starts every file's key, in the bucket or the directory: a path ending in /."},
		set: func(c *Config, v string) error { c.KeyPrefix = v; return checkKeyPrefix(v) }},
	{Var: Var{Name: "PRESIGN_TTL", Group: "Files", Default: "15m", Doc: "How long download and upload links work (1s to 168h)."},
		set: func(c *Config, v string) (err error) {
			if c.PresignTTL, err = parseDurationValue(v); err == nil && (c.PresignTTL < time.Second || c.PresignTTL > 7*24*time.Hour) {
				err = fmt.Errorf("is outside 1s to 168h (S3's limit for presigned URLs)")
			}
			return
		}},
	{Var: Var{Name: "URL_SIGNING_KEY", Group: "Files", Secret: true,
		Doc: "Signs the app's own links for local files (at least 32 characters). Unset: a key kept in BLOB_DIR."},
		set: func(c *Config, v string) error {
			c.URLSigningKey = v
			if len(v) < 32 {
				return fmt.Errorf("is shorter than 32 characters; make one with: openssl rand -hex 32")
			}
			return nil
		}},
	{Var: Var{Name: "MAX_UPLOAD_BYTES", Group: "Files", Default: "100MiB", Doc: "The largest file accepted, in bytes or with KiB, MiB or GiB."},
		set: func(c *Config, v string) (err error) { c.MaxUploadBytes, err = parseSizeValue(v); return }},
	{Var: Var{Name: "SWEEP_INTERVAL", Group: "Files", Default: "1h", Doc: "How often the server removes objects no file names, and expired upload intents; 0 turns it off."},
		set: func(c *Config, v string) (err error) { c.SweepInterval, err = parseDurationValue(v); return }},

	{Var: Var{Name: "PORT", Group: "Server", Default: strconv.Itoa(DefaultPort), Doc: "The HTTP port (fly.toml's internal_port)."},
		set: func(c *Config, v string) (err error) { c.Port, err = parseIntValue(v, 0, 65535); return }},
	{Var: Var{Name: "API_TOKEN", Group: "Server", Secret: true,
		Doc: "Required by every write under /api/, as `Authorization: Bearer` or through the page's session (at least 16 characters). On Fly, writes are refused until it is set."},
		set: func(c *Config, v string) error {
			c.APIToken = v
			if len(v) < 16 {
				return fmt.Errorf("is shorter than 16 characters; make one with: openssl rand -hex 32")
			}
			return nil
		}},
	{Var: Var{Name: "FLY_APP_NAME", Group: "Server", Doc: "Set by Fly: writes then need API_TOKEN, and logs default to JSON."},
		set: func(c *Config, v string) error { c.OnFly = true; return nil }},
	{Var: Var{Name: "FLY_MACHINE_ID", Group: "Server", Doc: "Set by Fly: this machine's id, the owner of the SQLite replica's lease; the hostname when unset. An unreplicated SQLite machine keeps its files in a shared bucket under it."},
		set: func(c *Config, v string) error { c.MachineID = v; return nil }},
	{Var: Var{Name: "LOG_FORMAT", Group: "Server", Doc: "json or text. Unset: json on Fly, text elsewhere."},
		set: func(c *Config, v string) error {
			if c.LogFormat = strings.ToLower(v); c.LogFormat != "json" && c.LogFormat != "text" {
				return fmt.Errorf("is not json or text")
			}
			return nil
		}},
	{Var: Var{Name: "LOG_LEVEL", Group: "Server", Default: "info", Doc: "debug, info, warn or error."},
		set: func(c *Config, v string) error {
			if c.LogLevel.UnmarshalText([]byte(v)) != nil {
				return fmt.Errorf("is not debug, info, warn or error")
			}
			return nil
		}},
	{Var: Var{Name: "SHUTDOWN_TIMEOUT", Group: "Server", Default: DefaultShutdownTimeout.String(),
		Doc: "How long in-flight requests get after SIGTERM; keep it under fly.toml's kill_timeout."},
		set: func(c *Config, v string) (err error) { c.ShutdownTimeout, err = parseDurationValue(v); return }},
	{Var: Var{Name: "METRICS_PORT", Group: "Server", Doc: "Serve /metrics (and /debug/pprof) on this port only, off the public one (fly.toml's [metrics]). Unset: /metrics on PORT."},
		set: func(c *Config, v string) (err error) { c.MetricsPort, err = parseIntValue(v, 1, 65535); return }},
}

func parseBoolValue(v string) (bool, error) {
	b, err := strconv.ParseBool(v)
	if err != nil {
		return false, fmt.Errorf("is not true or false")
	}
	return b, nil
}

func parseIntValue(v string, min, max int) (int, error) {
	n, err := strconv.Atoi(v)
	if err != nil || n < min || n > max {
		return 0, fmt.Errorf("is not a whole number from %d to %d", min, max)
	}
	return n, nil
}

func parseDurationValue(v string) (time.Duration, error) {
	d, err := time.ParseDuration(v)
	if err != nil || d < 0 {
		return 0, fmt.Errorf("is not a duration such as 500ms, 5s or 10m")
	}
	return d, nil
}

// parseSizeValue reads a positive byte count, with an optional KiB, MiB or
// GiB suffix.
func parseSizeValue(v string) (int64, error) {
	num, mult := v, int64(1)
	for _, u := range []struct {
		suffix string
		mult   int64
	}{{"KiB", 1 << 10}, {"MiB", 1 << 20}, {"GiB", 1 << 30}} {
		if n, ok := strings.CutSuffix(v, u.suffix); ok {
			num, mult = strings.TrimSpace(n), u.mult
		}
	}
	n, err := strconv.ParseInt(num, 10, 64)
	if err != nil || n <= 0 || n > (1<<62)/mult {
		return 0, fmt.Errorf("is not a positive size such as 16MiB or 16777216")
	}
	return n * mult, nil
}

// plainError is a setter's error that Load reports without the value,
// which may hold a secret.
type plainError string

func (e plainError) Error() string { return string(e) }

// checkHTTPURL accepts an http(s) URL with a host and no credentials.
func checkHTTPURL(v string, endpoint bool) error {
	u, err := url.Parse(v)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return plainError("is not an http(s) URL without credentials, such as https://t3.storage.dev")
	}
	if u.User != nil {
		if endpoint {
			return plainError("must not hold credentials: use AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY")
		}
		return plainError("must not hold credentials")
	}
	return nil
}

// localEndpoint reports whether the endpoint's host is localhost or an IP
// address.
func localEndpoint(endpoint string) bool {
	u, err := url.Parse(endpoint)
	if err != nil || endpoint == "" {
		return false
	}
	host := u.Hostname()
	return strings.EqualFold(host, "localhost") || net.ParseIP(host) != nil
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
		return fmt.Errorf("must be a path ending in / (letters, digits, . _ - /), such as files/")
	}
	return nil
}
