package cache

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/example/flystorage/internal/config"
)

func load(env map[string]string) (Config, error) {
	return Load(func(name string) string { return env[name] })
}

func TestLoadDefaults(t *testing.T) {
	cfg, err := load(nil)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Enabled() || cfg.Timeout != 100*time.Millisecond || cfg.CacheTTL != 5*time.Minute ||
		cfg.SessionTTL != 24*time.Hour || !cfg.RateLimit.Off() {
		t.Errorf("defaults: %+v", cfg)
	}
	cfg, err = load(map[string]string{"REDIS_URL": "rediss://default:s3cret@fly-x.upstash.io:6379/2",
		"REDIS_TIMEOUT": "250ms", "CACHE_TTL": "0", "SESSION_TTL": "1h", "RATE_LIMIT": " 120/m "})
	if err != nil {
		t.Fatal(err)
	}
	if cfg.options.DB != 2 || cfg.options.Password != "s3cret" || cfg.options.Username != "default" || cfg.options.TLSConfig == nil {
		t.Errorf("parsed options: db %d user %q tls %v", cfg.options.DB, cfg.options.Username, cfg.options.TLSConfig != nil)
	}
	if cfg.Timeout != 250*time.Millisecond || cfg.CacheTTL != 0 || cfg.SessionTTL != time.Hour || cfg.RateLimit != (Rate{120, time.Minute}) {
		t.Errorf("values: %+v", cfg)
	}
	if got := cfg.Redacted(); got != "rediss://default:xxxxx@fly-x.upstash.io:6379/2" {
		t.Errorf("Redacted() = %q", got)
	}
	var logged strings.Builder
	slog.New(slog.NewTextHandler(&logged, nil)).Info("config", "redis", cfg)
	for _, s := range []string{cfg.String(), fmt.Sprint(cfg), logged.String()} {
		if strings.Contains(s, "s3cret") || !strings.Contains(s, "xxxxx") {
			t.Errorf("the configuration prints as %q", s)
		}
	}
}

func TestLoadErrorsNameTheVariable(t *testing.T) {
	for _, tc := range []struct {
		name, value, want string
	}{
		{"REDIS_URL", "http://default:s3cret@host:6379", "scheme"},
		{"REDIS_URL", "redis://default:s3cret@host:6379/16", "database"},
		{"REDIS_URL", "redis://default:s3cret@host:6379/x", "database"},
		{"REDIS_URL", "redis://default:s3cret@host:99999", "port"},
		{"REDIS_URL", "redis://default:s3cret@:6379", "host"},
		{"REDIS_URL", "redis://default:s3cret@host:6379/0?max_retries=9", "parameters"},
		{"REDIS_URL", "redis://default:s3cret@ho st\x7f:6379", "not a URL"},
		{"REDIS_URL", "s3cret", "redis://"},
		{"REDIS_URL", "s3cret:x@host", "redis://"},
		{"REDIS_URL", "redis://default:s3cret/x@host:6379", "not a URL"},
		{"REDIS_URL", "redis://default:x/s3cret@host:6379", "not a URL"},
		{"REDIS_URL", "redis://default:123/s3cret@host", "database"},
		{"REDIS_URL", "redis://default@host:6379/s3cret", "database"},
		{"REDIS_TIMEOUT", "soon", "duration"},
		{"REDIS_TIMEOUT", "0s", "more than 0"},
		{"CACHE_TTL", "-1m", "duration"},
		{"SESSION_TTL", "10ms", "at least 1s"},
		{"RATE_LIMIT", "120", "rate"},
		{"RATE_LIMIT", "0/m", "rate"},
		{"RATE_LIMIT", "120/d", "unit"},
	} {
		_, err := load(map[string]string{tc.name: tc.value})
		var ce *config.Error
		if !errors.As(err, &ce) || ce.Var != tc.name {
			t.Errorf("%s=%q: error %v, want a *config.Error naming %s", tc.name, tc.value, err, tc.name)
			continue
		}
		if !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s=%q: error %q does not say %q", tc.name, tc.value, err, tc.want)
		}
		if strings.Contains(err.Error(), "s3cret") {
			t.Errorf("%s=%q: error %q holds the password", tc.name, tc.value, err)
		}
	}
}

func TestRate(t *testing.T) {
	for in, want := range map[string]Rate{"10/s": {10, time.Second}, "120/m": {120, time.Minute}, "1000/h": {1000, time.Hour}} {
		got, err := ParseRate(in)
		if err != nil || got != want || got.String() != in {
			t.Errorf("ParseRate(%q) = %+v (%s), %v", in, got, got, err)
		}
	}
	if (Rate{}).String() != "off" {
		t.Errorf("zero Rate is %q", Rate{})
	}
}

// TestStandIn: without REDIS_URL (or with a nil *Cache) everything misses
// and nothing fails.
func TestStandIn(t *testing.T) {
	cfg, _ := load(nil)
	c, err := Open(t.Context(), cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []*Cache{c, nil} {
		if _, tok, ok := c.Get(t.Context(), Note, "x"); ok || tok != (Token{}) {
			t.Errorf("stand-in Get hit or gave a token")
		}
		c.Fill(t.Context(), Note, "x", Token{}, []byte("v"))
		c.Invalidate(t.Context(), Note, "x")
		if err := c.Ping(t.Context()); err != nil {
			t.Errorf("Ping: %v", err)
		}
		if d := c.Describe(); d["backend"] != "none" {
			t.Errorf("Describe() = %v", d)
		}
		loads := 0
		for range 2 {
			v, err := Read(t.Context(), c, Note, "x", func(context.Context) (int, error) { loads++; return 7, nil })
			if v != 7 || err != nil {
				t.Errorf("Read = %v, %v", v, err)
			}
		}
		if loads != 2 {
			t.Errorf("the stand-in cached: %d loads for 2 reads", loads)
		}
	}
}
