package app_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/example/flystorage/internal/app"
	"github.com/example/flystorage/internal/config"
)

// FuzzLoad: whatever the database URL and another variable hold, Load
// never panics, and it either succeeds or returns a *config.Error that
// names a variable and never repeats the password.
func FuzzLoad(f *testing.F) {
	const pw = "Fz9pw"
	for _, seed := range []struct{ url, name, value string }{
		{"postgres://u:" + pw + "@h/db", "DB_MAX_CONNS", "7"},
		{"mysql://u:" + pw + "@h:3306/db?sslmode=require", "PORT", "8080"},
		{"mongodb+srv://u:" + pw + "@cluster.example.net/db", "RATE_LIMIT", "120/m"},
		{"postgres://u:" + pw + "/x@h/db", "S3_PART_SIZE", "8MiB"},
		{"", "BUCKET_PREFIX", "../x/"},
		{"redis://u:" + pw + "@h/0", "REDIS_URL", "redis://:" + pw + "@h:6379/99"},
		{"", "DATABASE_READ_URL", "postgres://u:" + pw + "@h:5433/db"},
		{"", "REPLICA_WAIT", "-1s"},
	} {
		f.Add(seed.url, seed.name, seed.value)
	}
	f.Fuzz(func(t *testing.T, url, name, value string) {
		env := map[string]string{"BUCKET_NAME": "b", name: value}
		if strings.HasPrefix(url, "mongodb") {
			env["MONGODB_URI"] = url
		} else {
			env["DATABASE_URL"] = url
		}
		_, err := app.Load(func(k string) string { return env[k] })
		if err == nil {
			return
		}
		var cerr *config.Error
		if !errors.As(err, &cerr) || cerr.Var == "" {
			t.Fatalf("Load(%q, %s=%q) = %v (%T), want a *config.Error naming a variable", url, name, value, err, err)
		}
		if strings.Contains(err.Error(), pw) {
			t.Fatalf("Load(%q, %s=%q): the error %q repeats the password", url, name, value, err)
		}
	})
}
