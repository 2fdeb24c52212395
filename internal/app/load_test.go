package app_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/example/flystorage/internal/app"
	"github.com/example/flystorage/internal/config"
	"github.com/example/flystorage/internal/storage/s3"
)

// secret is a password distinctive enough that finding it in any output
// means a secret leaked.
const secret = "s3cr3tpw"

// awsSecret is the AWS secret access key the tests use; it must never be
// logged.
const awsSecret = "AWSs3cr3tKEYvalue"

// env returns a getenv that reads vars and nothing else, so the tests never
// depend on the environment they run in.
func env(vars map[string]string) func(string) string {
	return func(name string) string { return vars[name] }
}

// loadSetup calls app.Load on vars and fails the test on an error.
func loadSetup(t *testing.T, vars map[string]string) app.Setup {
	t.Helper()
	s, err := app.Load(env(vars))
	if err != nil {
		t.Fatalf("Load(%v): %v", vars, err)
	}
	return s
}

// load returns the app-wide part of what app.Load reads.
func load(t *testing.T, vars map[string]string) config.Config {
	t.Helper()
	return loadSetup(t, vars).Config
}

// loadErr is app.Load's error.
func loadErr(vars map[string]string) error {
	_, err := app.Load(env(vars))
	return err
}

// wantError checks that err is a *config.Error naming variable, that it exits
// with status 2, and that its message holds no password.
func wantError(t *testing.T, err error, variable string) {
	t.Helper()
	if err == nil {
		t.Fatalf("got no error, want one naming %s", variable)
	}
	var cerr *config.Error
	if !errors.As(err, &cerr) {
		t.Fatalf("got %T (%v), want *config.Error", err, err)
	}
	if !strings.Contains(cerr.Var, variable) || !strings.Contains(err.Error(), variable) {
		t.Errorf("error %q (Var %q) does not name %s", err, cerr.Var, variable)
	}
	if got := config.ExitCode(err); got != 2 {
		t.Errorf("ExitCode(%v) = %d, want 2", err, got)
	}
	if strings.Contains(err.Error(), secret) {
		t.Errorf("error %q contains the password %q", err, secret)
	}
}

func TestLoadDefaults(t *testing.T) {
	setup := loadSetup(t, nil)
	cfg := setup.Config
	if setup.Driver.Name != "sqlite" || setup.DB.Redacted() != "data/app.db" {
		t.Errorf("database = %s at %q, want sqlite at data/app.db", setup.Driver.Name, setup.DB.Redacted())
	}
	if cfg.S3 != nil {
		t.Errorf("S3 = %+v, want nil without BUCKET_NAME", cfg.S3)
	}
	if want := filepath.Join("data", "blobs"); cfg.BlobDir != want {
		t.Errorf("BlobDir = %q, want %q", cfg.BlobDir, want)
	}
	if cfg.Port != 8080 {
		t.Errorf("Port = %d, want 8080", cfg.Port)
	}
	if cfg.MaxUploadBytes != 100<<20 {
		t.Errorf("MaxUploadBytes = %d, want %d", cfg.MaxUploadBytes, 100<<20)
	}
	if cfg.MigrateOnStart {
		t.Error("MigrateOnStart = true, want false by default")
	}
}

func TestLoadDatabase(t *testing.T) {
	tests := []struct {
		name      string
		vars      map[string]string
		wantDB    string
		wantWhere string
	}{
		{
			name:      "postgres scheme",
			vars:      map[string]string{"DATABASE_URL": "postgres://app:" + secret + "@db.internal:5432/app?sslmode=disable"},
			wantDB:    "postgres",
			wantWhere: "postgres://app:xxxxx@db.internal:5432/app?sslmode=disable",
		},
		{
			name:      "postgresql scheme",
			vars:      map[string]string{"DATABASE_URL": "postgresql://app:" + secret + "@db.internal/app"},
			wantDB:    "postgres",
			wantWhere: "postgresql://app:xxxxx@db.internal/app",
		},
		{
			name:      "database path",
			vars:      map[string]string{"DATABASE_PATH": "/data/app.db"},
			wantDB:    "sqlite",
			wantWhere: "/data/app.db",
		},
		{
			name:      "neither",
			vars:      nil,
			wantDB:    "sqlite",
			wantWhere: "data/app.db",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			setup := loadSetup(t, tt.vars)
			if setup.Driver.Name != tt.wantDB || setup.DB.Redacted() != tt.wantWhere {
				t.Errorf("database = %s at %q, want %s at %q", setup.Driver.Name, setup.DB.Redacted(), tt.wantDB, tt.wantWhere)
			}
		})
	}
}

func TestLoadBothDatabases(t *testing.T) {
	err := loadErr(map[string]string{
		"DATABASE_URL":  "postgres://app:" + secret + "@db.internal/app",
		"DATABASE_PATH": "/data/app.db",
	})
	wantError(t, err, "DATABASE_URL")
	wantError(t, err, "DATABASE_PATH")
}

func TestLoadS3(t *testing.T) {
	base := func(extra map[string]string) map[string]string {
		vars := map[string]string{
			"BUCKET_NAME":           "my-bucket",
			"AWS_ACCESS_KEY_ID":     "tid_ABCDEFG",
			"AWS_SECRET_ACCESS_KEY": awsSecret,
		}
		for k, v := range extra {
			vars[k] = v
		}
		return vars
	}
	tests := []struct {
		name          string
		vars          map[string]string
		wantEndpoint  string
		wantRegion    string
		wantPathStyle bool
		// wantPublicURL follows the endpoint in use.
		wantPublicURL string
	}{
		{
			name:          "tigris today",
			vars:          base(map[string]string{"AWS_ENDPOINT_URL_S3": "https://t3.storage.dev"}),
			wantEndpoint:  "https://t3.storage.dev",
			wantRegion:    "auto",
			wantPublicURL: "https://my-bucket.t3.tigrisfiles.io",
		},
		{
			name:          "tigris, as fly storage create sets it",
			vars:          base(map[string]string{"AWS_ENDPOINT_URL_S3": "https://fly.storage.tigris.dev"}),
			wantEndpoint:  "https://fly.storage.tigris.dev",
			wantRegion:    "auto",
			wantPublicURL: "https://my-bucket.t3.tigrisfiles.io",
		},
		{
			name:          "no endpoint",
			vars:          base(nil),
			wantRegion:    "auto",
			wantPublicURL: "https://my-bucket.t3.tigrisfiles.io",
		},
		{
			name:          "region override",
			vars:          base(map[string]string{"AWS_ENDPOINT_URL_S3": "https://fly.storage.tigris.dev", "AWS_REGION": "us-east-1"}),
			wantEndpoint:  "https://fly.storage.tigris.dev",
			wantRegion:    "us-east-1",
			wantPublicURL: "https://my-bucket.t3.tigrisfiles.io",
		},
		{
			name:          "ipv4 endpoint",
			vars:          base(map[string]string{"AWS_ENDPOINT_URL_S3": "http://127.0.0.1:9000"}),
			wantEndpoint:  "http://127.0.0.1:9000",
			wantRegion:    "auto",
			wantPathStyle: true,
			wantPublicURL: "http://127.0.0.1:9000/my-bucket",
		},
		{
			name:          "ipv6 endpoint",
			vars:          base(map[string]string{"AWS_ENDPOINT_URL_S3": "http://[::1]:9000"}),
			wantEndpoint:  "http://[::1]:9000",
			wantRegion:    "auto",
			wantPathStyle: true,
			wantPublicURL: "http://[::1]:9000/my-bucket",
		},
		{
			name:          "localhost endpoint",
			vars:          base(map[string]string{"AWS_ENDPOINT_URL_S3": "http://localhost:9000"}),
			wantEndpoint:  "http://localhost:9000",
			wantRegion:    "auto",
			wantPathStyle: true,
			wantPublicURL: "http://localhost:9000/my-bucket",
		},
		{
			name:          "localhost in capitals",
			vars:          base(map[string]string{"AWS_ENDPOINT_URL_S3": "http://LOCALHOST:9000"}),
			wantEndpoint:  "http://LOCALHOST:9000",
			wantRegion:    "auto",
			wantPathStyle: true,
			wantPublicURL: "http://LOCALHOST:9000/my-bucket",
		},
		{
			name:          "forced path style",
			vars:          base(map[string]string{"AWS_ENDPOINT_URL_S3": "http://minio:9000", "S3_FORCE_PATH_STYLE": "true"}),
			wantEndpoint:  "http://minio:9000",
			wantRegion:    "auto",
			wantPathStyle: true,
			wantPublicURL: "http://minio:9000/my-bucket",
		},
		{
			name:          "named host without forcing",
			vars:          base(map[string]string{"AWS_ENDPOINT_URL_S3": "http://minio:9000", "S3_FORCE_PATH_STYLE": "false"}),
			wantEndpoint:  "http://minio:9000",
			wantRegion:    "auto",
			wantPublicURL: "http://my-bucket.minio:9000",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := load(t, tt.vars)
			if cfg.S3 == nil {
				t.Fatal("S3 = nil with BUCKET_NAME set")
			}
			want := config.S3{
				Bucket:          "my-bucket",
				Endpoint:        tt.wantEndpoint,
				Region:          tt.wantRegion,
				AccessKeyID:     "tid_ABCDEFG",
				SecretAccessKey: awsSecret,
				PathStyle:       tt.wantPathStyle,
				PartSize:        5 << 20,
				Concurrency:     1,
				Timeout:         20 * time.Second,
				PublicURL:       tt.wantPublicURL,
			}
			if *cfg.S3 != want {
				t.Errorf("S3 = %+v, want %+v", *cfg.S3, want)
			}
		})
	}
}

func TestLoadS3WithoutKeys(t *testing.T) {
	// Neither key lets the SDK find credentials its own way.
	cfg := load(t, map[string]string{"BUCKET_NAME": "my-bucket"})
	if cfg.S3 == nil || cfg.S3.AccessKeyID != "" || cfg.S3.SecretAccessKey != "" {
		t.Errorf("S3 = %+v, want a bucket with no keys", cfg.S3)
	}
}

func TestLoadS3Errors(t *testing.T) {
	tests := []struct {
		name    string
		vars    map[string]string
		wantVar string
	}{
		{
			name:    "only access key id",
			vars:    map[string]string{"BUCKET_NAME": "b", "AWS_ACCESS_KEY_ID": "tid_ABCDEFG"},
			wantVar: "AWS_SECRET_ACCESS_KEY",
		},
		{
			name:    "only secret key",
			vars:    map[string]string{"BUCKET_NAME": "b", "AWS_SECRET_ACCESS_KEY": awsSecret},
			wantVar: "AWS_ACCESS_KEY_ID",
		},
		{
			name:    "endpoint not a url",
			vars:    map[string]string{"BUCKET_NAME": "b", "AWS_ENDPOINT_URL_S3": "not a url"},
			wantVar: "AWS_ENDPOINT_URL_S3",
		},
		{
			name:    "endpoint ftp",
			vars:    map[string]string{"BUCKET_NAME": "b", "AWS_ENDPOINT_URL_S3": "ftp://x"},
			wantVar: "AWS_ENDPOINT_URL_S3",
		},
		{
			name:    "endpoint without host",
			vars:    map[string]string{"BUCKET_NAME": "b", "AWS_ENDPOINT_URL_S3": "https://"},
			wantVar: "AWS_ENDPOINT_URL_S3",
		},
		{
			name:    "timeout not a duration",
			vars:    map[string]string{"BUCKET_NAME": "b", "S3_TIMEOUT": "soon"},
			wantVar: "S3_TIMEOUT",
		},
		{
			name:    "timeout zero",
			vars:    map[string]string{"BUCKET_NAME": "b", "S3_TIMEOUT": "0s"},
			wantVar: "S3_TIMEOUT",
		},
		{
			name:    "endpoint holding credentials",
			vars:    map[string]string{"BUCKET_NAME": "b", "AWS_ENDPOINT_URL_S3": "https://key:" + awsSecret + "@fly.storage.tigris.dev"},
			wantVar: "AWS_ENDPOINT_URL_S3",
		},
		{
			name:    "path style maybe",
			vars:    map[string]string{"BUCKET_NAME": "b", "S3_FORCE_PATH_STYLE": "maybe"},
			wantVar: "S3_FORCE_PATH_STYLE",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := loadErr(tt.vars)
			wantError(t, err, tt.wantVar)
			if strings.Contains(err.Error(), awsSecret) {
				t.Errorf("error %q contains the AWS secret key", err)
			}
		})
	}
}

func TestLoadBlobDir(t *testing.T) {
	tests := []struct {
		name string
		vars map[string]string
		want string
	}{
		{"default", nil, filepath.Join("data", "blobs")},
		{"beside database path", map[string]string{"DATABASE_PATH": "/data/app.db"}, filepath.Join("/data", "blobs")},
		// A database server's files never share SQLite's default directory,
		// whose rows that server cannot see (its sweep would delete them).
		{"postgres", map[string]string{"DATABASE_URL": "postgres://app@db.internal/app"}, filepath.Join("data", "postgres-blobs")},
		{"explicit", map[string]string{"BLOB_DIR": "/srv/files", "DATABASE_PATH": "/data/app.db"}, "/srv/files"},
		{"explicit with postgres", map[string]string{"BLOB_DIR": "/srv/files", "DATABASE_URL": "postgres://app@db.internal/app"}, "/srv/files"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := load(t, tt.vars)
			if cfg.S3 != nil {
				t.Errorf("S3 = %+v, want nil without BUCKET_NAME", cfg.S3)
			}
			if cfg.BlobDir != tt.want {
				t.Errorf("BlobDir = %q, want %q", cfg.BlobDir, tt.want)
			}
		})
	}
}

func TestLoadPort(t *testing.T) {
	for _, tt := range []struct {
		value string
		want  int
	}{
		{"", 8080},
		{"0", 0},
		{"3000", 3000},
		{"65535", 65535},
	} {
		t.Run("ok "+tt.value, func(t *testing.T) {
			cfg := load(t, map[string]string{"PORT": tt.value})
			if cfg.Port != tt.want {
				t.Errorf("Port = %d, want %d", cfg.Port, tt.want)
			}
		})
	}
	for _, value := range []string{"abc", "-1", "70000", "65536", "80.5"} {
		t.Run("bad "+value, func(t *testing.T) {
			err := loadErr(map[string]string{"PORT": value})
			wantError(t, err, "PORT")
		})
	}
}

func TestLoadMaxUploadBytes(t *testing.T) {
	for _, tt := range []struct {
		value string
		want  int64
	}{
		{"", 100 << 20},
		{"1", 1},
		{"1048576", 1 << 20},
	} {
		t.Run("ok "+tt.value, func(t *testing.T) {
			cfg := load(t, map[string]string{"MAX_UPLOAD_BYTES": tt.value})
			if cfg.MaxUploadBytes != tt.want {
				t.Errorf("MaxUploadBytes = %d, want %d", cfg.MaxUploadBytes, tt.want)
			}
		})
	}
	for _, value := range []string{"0", "-5", "lots", "1.5"} {
		t.Run("bad "+value, func(t *testing.T) {
			err := loadErr(map[string]string{"MAX_UPLOAD_BYTES": value})
			wantError(t, err, "MAX_UPLOAD_BYTES")
		})
	}
}

func TestLoadMigrateOnStart(t *testing.T) {
	for _, tt := range []struct {
		value string
		want  bool
	}{
		{"", false},
		{"true", true},
		{"TRUE", true},
		{"1", true},
		{"false", false},
		{"0", false},
	} {
		t.Run("ok "+tt.value, func(t *testing.T) {
			cfg := load(t, map[string]string{
				"DATABASE_URL":     "postgres://app@db.internal/app",
				"MIGRATE_ON_START": tt.value,
			})
			if cfg.MigrateOnStart != tt.want {
				t.Errorf("MigrateOnStart = %v, want %v", cfg.MigrateOnStart, tt.want)
			}
		})
	}
	for _, value := range []string{"yes", "maybe", "2"} {
		t.Run("bad "+value, func(t *testing.T) {
			err := loadErr(map[string]string{"MIGRATE_ON_START": value})
			wantError(t, err, "MIGRATE_ON_START")
		})
	}
}

func TestExitCode(t *testing.T) {
	tests := []struct {
		name string
		err  error
		want int
	}{
		{"nil", nil, 0},
		{"config error", &config.Error{Var: "PORT", Msg: "bad"}, 2},
		{"wrapped config error", fmt.Errorf("loading: %w", &config.Error{Var: "PORT", Msg: "bad"}), 2},
		{"usage error", config.UsageError("unknown command"), 2},
		{"wrapped usage error", fmt.Errorf("parsing: %w", config.UsageError("unknown command")), 2},
		{"other error", errors.New("connection refused"), 1},
		{"canceled", context.Canceled, 1},
		{"config error text only", fmt.Errorf("loading: %v", &config.Error{Var: "PORT", Msg: "bad"}), 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := config.ExitCode(tt.err); got != tt.want {
				t.Errorf("ExitCode(%v) = %d, want %d", tt.err, got, tt.want)
			}
		})
	}
}

func TestLogValue(t *testing.T) {
	setup := loadSetup(t, map[string]string{
		"DATABASE_URL":          "postgres://app:" + secret + "@db.internal:5432/app?sslmode=disable",
		"BUCKET_NAME":           "my-distinct-bucket",
		"AWS_ENDPOINT_URL_S3":   "https://fly.storage.tigris.dev",
		"AWS_ACCESS_KEY_ID":     "tid_ABCDEFGHIJ",
		"AWS_SECRET_ACCESS_KEY": awsSecret,
	})
	handlers := map[string]func(*bytes.Buffer) slog.Handler{
		"text": func(b *bytes.Buffer) slog.Handler { return slog.NewTextHandler(b, nil) },
		"json": func(b *bytes.Buffer) slog.Handler { return slog.NewJSONHandler(b, nil) },
	}
	for name, newHandler := range handlers {
		t.Run(name, func(t *testing.T) {
			var buf bytes.Buffer
			slog.New(newHandler(&buf)).Info("starting", "config", setup)
			out := buf.String()
			for _, leaked := range []string{secret, awsSecret, "tid_ABCDEFGHIJ"} {
				if strings.Contains(out, leaked) {
					t.Errorf("log line contains %q:\n%s", leaked, out)
				}
			}
			for _, want := range []string{
				"my-distinct-bucket",
				"app:xxxxx@db.internal:5432/app",
				"https://fly.storage.tigris.dev",
			} {
				if !strings.Contains(out, want) {
					t.Errorf("log line does not contain %q:\n%s", want, out)
				}
			}
		})
	}
}

func TestLogValueSQLite(t *testing.T) {
	setup := loadSetup(t, map[string]string{"DATABASE_PATH": "/data/app.db"})
	var buf bytes.Buffer
	slog.New(slog.NewTextHandler(&buf, nil)).Info("starting", "config", setup)
	out := buf.String()
	for _, want := range []string{"config.database=sqlite", "/data/app.db", "config.blob_dir=" + filepath.Join("/data", "blobs")} {
		if !strings.Contains(out, want) {
			t.Errorf("log line does not contain %q:\n%s", want, out)
		}
	}
}

// TestFormatMasksSecrets holds Config to its doc comment, which says its
// String masks every password and secret key: printing a Config, or its S3,
// with fmt must not leak them either.
func TestFormatMasksSecrets(t *testing.T) {
	cfg := load(t, map[string]string{
		"DATABASE_URL":          "postgres://app:" + secret + "@db.internal:5432/app",
		"BUCKET_NAME":           "my-bucket",
		"AWS_ACCESS_KEY_ID":     "tid_ABCDEFGHIJ",
		"AWS_SECRET_ACCESS_KEY": awsSecret,
	})
	values := map[string]any{"cfg": cfg, "&cfg": &cfg, "cfg.S3": cfg.S3, "*cfg.S3": *cfg.S3}
	for name, v := range values {
		for _, verb := range []string{"%v", "%+v", "%s", "%#v"} {
			out := fmt.Sprintf(verb, v)
			for _, leaked := range []string{secret, awsSecret} {
				if strings.Contains(out, leaked) {
					t.Errorf("fmt.Sprintf(%q, %s) contains %q: %s", verb, name, leaked, out)
				}
			}
		}
	}
	if out := fmt.Sprint(cfg); !strings.Contains(out, "my-bucket") {
		t.Errorf("fmt.Sprint(cfg) = %s, want it to show the bucket", out)
	}
}

func TestLoadS3Timeout(t *testing.T) {
	if got := load(t, map[string]string{"BUCKET_NAME": "b", "S3_TIMEOUT": "45s"}).S3.Timeout; got != 45*time.Second {
		t.Errorf("S3_TIMEOUT=45s gave %v", got)
	}
	if got := load(t, map[string]string{"BUCKET_NAME": "b"}).S3.Timeout; got != s3.DefaultTimeout {
		t.Errorf("without S3_TIMEOUT, Timeout = %v, want %v", got, s3.DefaultTimeout)
	}
}

func TestLoadSweepInterval(t *testing.T) {
	if got := load(t, nil).SweepInterval; got != time.Hour {
		t.Errorf("default SweepInterval = %v", got)
	}
	if got := load(t, map[string]string{"SWEEP_INTERVAL": "0"}).SweepInterval; got != 0 {
		t.Errorf("SWEEP_INTERVAL=0 gave %v, want 0 (off)", got)
	}
	err := loadErr(map[string]string{"SWEEP_INTERVAL": "hourly"})
	wantError(t, err, "SWEEP_INTERVAL")
}

// TestPublicURLFollowsTheBrowsersEndpoint: with S3_PUBLIC_ENDPOINT (the
// store as browsers reach it, as in docker-compose), a public bucket's
// links name that endpoint, not the one the app uses.
func TestPublicURLFollowsTheBrowsersEndpoint(t *testing.T) {
	cfg := load(t, map[string]string{"BUCKET_NAME": "pics", "AWS_ENDPOINT_URL_S3": "http://minio:9000", "S3_PUBLIC_ENDPOINT": "http://localhost:9000"})
	if got, want := cfg.S3.PublicURL, "http://localhost:9000/pics"; got != want {
		t.Errorf("PublicURL = %q, want %q", got, want)
	}
}

func TestLoadTigrisOptions(t *testing.T) {
	cfg := load(t, map[string]string{
		"BUCKET_NAME": "pics", "S3_PART_SIZE": "16MiB", "S3_CONCURRENCY": "2", "BUCKET_PUBLIC": "true",
		"BUCKET_PUBLIC_URL": "https://cdn.example.com/", "S3_PUBLIC_ENDPOINT": "http://localhost:9000",
		"BUCKET_PREFIX": "uploads/2026/", "PRESIGN_TTL": "1h",
	})
	if s := cfg.S3; s.PartSize != 16<<20 || s.Concurrency != 2 || !s.Public || s.PublicURL != "https://cdn.example.com" || s.PublicEndpoint != "http://localhost:9000" {
		t.Errorf("S3 options = %#v", *s)
	}
	if cfg.KeyPrefix != "uploads/2026/" || cfg.PresignTTL != time.Hour {
		t.Errorf("KeyPrefix %q, PresignTTL %v", cfg.KeyPrefix, cfg.PresignTTL)
	}
	d := load(t, map[string]string{"BUCKET_NAME": "pics"})
	if d.KeyPrefix != "files/" || d.PresignTTL != 15*time.Minute || d.S3.PublicURL != "https://pics.t3.tigrisfiles.io" || d.S3.Public {
		t.Errorf("defaults: KeyPrefix %q, PresignTTL %v, PublicURL %q, Public %v", d.KeyPrefix, d.PresignTTL, d.S3.PublicURL, d.S3.Public)
	}
	for name, value := range map[string]string{
		"S3_PART_SIZE": "4MiB", "S3_CONCURRENCY": "0", "BUCKET_PUBLIC": "yes please", "BUCKET_PUBLIC_URL": "cdn.example.com",
		"S3_PUBLIC_ENDPOINT": "localhost:9000", "BUCKET_PREFIX": "../up/", "PRESIGN_TTL": "30d", "URL_SIGNING_KEY": "short",
	} {
		err := loadErr(map[string]string{"BUCKET_NAME": "pics", name: value})
		wantError(t, err, name)
	}
	for _, p := range []string{"files", "/files/", "a//b/", ".hidden/", "sp ace/"} {
		err := loadErr(map[string]string{"BUCKET_PREFIX": p})
		wantError(t, err, "BUCKET_PREFIX")
	}
}

func TestLoadOperations(t *testing.T) {
	fly := load(t, map[string]string{"FLY_APP_NAME": "app"})
	if !fly.OnFly || fly.LogFormat != "json" || fly.ShutdownTimeout != config.DefaultShutdownTimeout {
		t.Errorf("on Fly: OnFly %v, LogFormat %q, ShutdownTimeout %v", fly.OnFly, fly.LogFormat, fly.ShutdownTimeout)
	}
	local := load(t, map[string]string{"LOG_LEVEL": "debug", "METRICS_PORT": "9091", "SHUTDOWN_TIMEOUT": "3s", "API_TOKEN": "0123456789abcdef"})
	if local.OnFly || local.LogFormat != "text" || local.LogLevel != slog.LevelDebug || local.MetricsPort != 9091 || local.ShutdownTimeout != 3*time.Second || local.APIToken != "0123456789abcdef" {
		t.Errorf("local: %+v", local)
	}
	for name, value := range map[string]string{"LOG_FORMAT": "xml", "LOG_LEVEL": "loud", "METRICS_PORT": "0", "SHUTDOWN_TIMEOUT": "soon", "API_TOKEN": "short"} {
		err := loadErr(map[string]string{name: value})
		wantError(t, err, name)
	}
	var logged bytes.Buffer
	slog.New(slog.NewTextHandler(&logged, nil)).Info("starting", "config", local)
	if strings.Contains(logged.String(), "0123456789abcdef") {
		t.Errorf("the logged configuration shows API_TOKEN: %s", logged.String())
	}
}

func TestScopedPrefixes(t *testing.T) {
	for _, tc := range []struct {
		name  string
		vars  map[string]string
		files string
	}{
		{"SQLite replicated on Fly: one database for all", map[string]string{"FLY_MACHINE_ID": "3d8d9", "BUCKET_NAME": "b"}, "files/"},
		{"SQLite on Fly, a database per machine", map[string]string{"FLY_MACHINE_ID": "3d8d9", "BUCKET_NAME": "b", "SQLITE_REPLICATION": "off"}, "files/3d8d9/"},
		{"SQLite on Fly, local files", map[string]string{"FLY_MACHINE_ID": "3d8d9"}, "files/"},
		{"Postgres on Fly: one database for all", map[string]string{"FLY_MACHINE_ID": "3d8d9", "BUCKET_NAME": "b", "DATABASE_URL": "postgres://app@db.internal/app"}, "files/"},
		{"SQLite locally", map[string]string{"BUCKET_NAME": "b"}, "files/"},
	} {
		cfg := load(t, tc.vars)
		if cfg.FileKeyPrefix() != tc.files {
			t.Errorf("%s: FileKeyPrefix %q; want %q", tc.name, cfg.FileKeyPrefix(), tc.files)
		}
	}
}

// TestLoadUploadTooLargeForParts: MAX_UPLOAD_BYTES beyond what S3 takes in
// 10,000 parts of S3_PART_SIZE fails at start, naming both; without a
// bucket it is not limited.
func TestLoadUploadTooLargeForParts(t *testing.T) {
	err := loadErr(map[string]string{"BUCKET_NAME": "b", "MAX_UPLOAD_BYTES": "50GiB"})
	if err == nil || !strings.Contains(err.Error(), "MAX_UPLOAD_BYTES") || !strings.Contains(err.Error(), "S3_PART_SIZE") {
		t.Errorf("50GiB in 5MiB parts: %v, want an error naming MAX_UPLOAD_BYTES and S3_PART_SIZE", err)
	}
	load(t, map[string]string{"BUCKET_NAME": "b", "MAX_UPLOAD_BYTES": "50GiB", "S3_PART_SIZE": "8MiB"})
	load(t, map[string]string{"MAX_UPLOAD_BYTES": "50GiB"})
}
