package postgres

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/example/flystorage/internal/config"
)

// secret is a password distinctive enough that finding it in any output
// means a secret leaked.
const secret = "s3cr3tpw"

func env(vars map[string]string) func(string) string {
	return func(name string) string { return vars[name] }
}

// wantError checks that err is a *config.Error naming variable and holding
// no password.
func wantError(t *testing.T, err error, variable string) {
	t.Helper()
	var cerr *config.Error
	if !errors.As(err, &cerr) || !strings.Contains(cerr.Var, variable) {
		t.Fatalf("got %v, want a *config.Error naming %s", err, variable)
	}
	if strings.Contains(err.Error(), secret) {
		t.Errorf("error %q contains the password", err)
	}
}

func TestLoadURLErrors(t *testing.T) {
	for name, url := range map[string]string{
		"mysql scheme":  "mysql://app:" + secret + "@db.internal/app",
		"http scheme":   "http://app:" + secret + "@db.internal/app",
		"bad port":      "postgres://u:" + secret + "@host:notaport/db",
		"bad escape":    "postgres://%zz",
		"escape beside": "postgres://u:" + secret + "@host/%zz",
		"no host":       "postgres://u:" + secret + "@/db",
		"bad sslmode":   "postgres://u:" + secret + "@host/db?sslmode=sideways",
		"bad timeout":   "postgres://u:" + secret + "@host/db?connect_timeout=soon",
		// A password pasted without percent-encoding its slash, hash or
		// question mark moves the authority's end, so url.Parse reads the
		// password as a port and quotes it in its error.
		"unescaped slash": "postgres://u:" + secret + "/x@host/db",
		"unescaped hash":  "postgres://u:" + secret + "#x@host/db",
		"unescaped mark":  "postgres://u:" + secret + "?x@host/db",
		"sslpassword":     "postgres://u@host/db?sslmode=sideways&sslpassword=" + secret,
	} {
		t.Run(name, func(t *testing.T) {
			_, err := load(url, env(nil))
			wantError(t, err, "DATABASE_URL")
		})
	}
}

func TestRedactURL(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want []string // substrings the result must keep
	}{
		{"password in userinfo", "postgres://alice:" + secret + "@db.internal:5433/app?sslmode=disable",
			[]string{"postgres://alice:xxxxx@db.internal:5433/app", "sslmode=disable"}},
		{"percent-encoded password", "postgres://alice:" + secret + "%40%2F@db.internal:5433/app",
			[]string{"postgres://alice:xxxxx@db.internal:5433/app"}},
		{"password in query", "postgres://alice@db.internal:5433/app?password=" + secret + "&sslmode=require&application_name=web",
			[]string{"postgres://alice@db.internal:5433/app?", "password=xxxxx", "sslmode=require", "application_name=web"}},
		{"password in both", "postgresql://alice:" + secret + "@db.internal:5433/app?password=" + secret,
			[]string{"postgresql://alice:xxxxx@db.internal:5433/app?", "password=xxxxx"}},
		// libpq's sslpassword unlocks the client key: as secret as a password.
		{"sslpassword", "postgres://alice@db.internal/app?sslmode=verify-full&sslpassword=" + secret,
			[]string{"sslpassword=xxxxx", "sslmode=verify-full"}},
		{"no password", "postgres://alice@db.internal:5433/app?sslmode=disable",
			[]string{"postgres://alice@db.internal:5433/app?sslmode=disable"}},
		{"unparsable", "postgres://alice:" + secret + "@db.internal:port/app", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := RedactURL(tt.in)
			if strings.Contains(got, secret) {
				t.Errorf("RedactURL(%q) = %q, which contains the password", tt.in, got)
			}
			for _, w := range tt.want {
				if !strings.Contains(got, w) {
					t.Errorf("RedactURL(%q) = %q, want it to contain %q", tt.in, got, w)
				}
			}
		})
	}
}

func TestLoadPool(t *testing.T) {
	const url = "postgres://app@db.internal/app"
	defaults := Options{
		MaxConns:        config.DefaultMaxConns,
		MaxConnLifetime: config.DefaultMaxConnLifetime,
		MaxConnIdleTime: config.DefaultMaxConnIdleTime,
		ConnectTimeout:  config.DefaultConnectTimeout,
		QueryExecMode:   DefaultQueryExecMode,
		SlowQuery:       DefaultSlowQuery,
	}
	with := func(change func(*Options)) Options {
		o := defaults
		change(&o)
		return o
	}
	tests := []struct {
		name string
		url  string
		vars map[string]string
		want Options
	}{
		{"defaults", url, nil, defaults},
		{"variables", url, map[string]string{
			"DB_MAX_CONNS": "7", "DB_MIN_CONNS": "2", "DB_MAX_CONN_LIFETIME": "30m",
			"DB_MAX_CONN_IDLE_TIME": "90s", "DB_CONNECT_TIMEOUT": "2s", "DB_QUERY_EXEC_MODE": "cache_describe", "DB_SLOW_QUERY": "1s",
		}, Options{MaxConns: 7, MinConns: 2, MaxConnLifetime: 30 * time.Minute, MaxConnIdleTime: 90 * time.Second,
			ConnectTimeout: 2 * time.Second, QueryExecMode: "cache_describe", SlowQuery: time.Second}},
		// A URL parameter is left to pgx (zero here) unless the variable is set.
		{"URL parameters", url + "?pool_max_conns=3&pool_max_conn_lifetime=1h&pool_max_conn_idle_time=1m&connect_timeout=9&default_query_exec_mode=simple_protocol&pool_min_conns=1", nil,
			with(func(o *Options) {
				o.MaxConns, o.MaxConnLifetime, o.MaxConnIdleTime, o.ConnectTimeout, o.QueryExecMode = 0, 0, 0, 0, ""
			})},
		{"variable beats URL parameter", url + "?pool_max_conns=3&default_query_exec_mode=simple_protocol",
			map[string]string{"DB_MAX_CONNS": "5", "DB_QUERY_EXEC_MODE": "exec"}, with(func(o *Options) { o.MaxConns = 5 })},
		{"slow query log off", url, map[string]string{"DB_SLOW_QUERY": "0"}, with(func(o *Options) { o.SlowQuery = 0 })},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			src, err := load(tt.url, env(tt.vars))
			if err != nil {
				t.Fatal(err)
			}
			got := src.(*source).opts
			got.Redacted, got.DirectURL = "", ""
			if got != tt.want {
				t.Errorf("options =\n%+v\nwant\n%+v", got, tt.want)
			}
		})
	}
	for name, value := range map[string]string{
		"DB_MAX_CONNS": "0", "DB_MIN_CONNS": "-1", "DB_MAX_CONN_LIFETIME": "10", "DB_MAX_CONN_IDLE_TIME": "soon",
		"DB_CONNECT_TIMEOUT": "-5s", "DB_QUERY_EXEC_MODE": "prepared", "DB_SLOW_QUERY": "fast",
	} {
		_, err := load(url, env(map[string]string{name: value}))
		wantError(t, err, name)
	}
	_, err := load(url, env(map[string]string{"DB_MAX_CONNS": "2", "DB_MIN_CONNS": "3"}))
	wantError(t, err, "DB_MIN_CONNS")
}

func TestLoadDirectURL(t *testing.T) {
	src, err := load("postgres://app:pw@flystorage-db.flycast:6432/app",
		env(map[string]string{"DIRECT_DATABASE_URL": "postgres://app:pw@direct.flystorage-db.internal:5432/app"}))
	if err != nil {
		t.Fatal(err)
	}
	if got := src.(*source).directURL; got != "postgres://app:pw@direct.flystorage-db.internal:5432/app" {
		t.Errorf("direct URL = %q", got)
	}
	_, err = load("postgres://app@h/app", env(map[string]string{"DIRECT_DATABASE_URL": "mysql://" + secret + "@h/app"}))
	wantError(t, err, "DIRECT_DATABASE_URL")
}

func TestLoadReadURL(t *testing.T) {
	const primary = "postgres://u:p@ord.db.internal:5432/app"
	src, err := load(primary, env(map[string]string{"DATABASE_READ_URL": "postgres://u:" + secret + "@top2.nearest.of.db.internal:5433/app"}))
	if err != nil {
		t.Fatal(err)
	}
	if got := src.(*source).readURL; got == "" {
		t.Error("DATABASE_READ_URL was not kept")
	}
	if v := src.LogValue().String(); strings.Contains(v, secret) || !strings.Contains(v, "5433") {
		t.Errorf("the logged configuration %s must show the replica and mask its password", v)
	}
	for name, url := range map[string]string{
		"scheme":    "mysql://u:" + secret + "@h/db",
		"no host":   "postgres://u:" + secret + "@/db",
		"valid URL": "postgres://u:se/" + secret + "@h:x/db",
		"sslmode":   "postgres://u:" + secret + "@h/db?sslmode=sometimes",
	} {
		_, err := load(primary, env(map[string]string{"DATABASE_READ_URL": url}))
		wantError(t, err, "DATABASE_READ_URL")
		if err != nil && !strings.Contains(err.Error(), name) {
			t.Errorf("%s: error %q does not say what is wrong", name, err)
		}
	}
}
