package testenv

import (
	"context"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// PgBouncer is a fresh database reached two ways: Pooled through the
// PgBouncer at TEST_PGBOUNCER_URL, which runs in transaction pooling mode as
// Managed Postgres's does, and Direct to the Postgres behind it.
type PgBouncer struct {
	Pooled, Direct string
}

// PgBouncerDatabase creates a database for this test, dropped when it ends.
// A database rather than a schema: PgBouncer does not pass search_path on.
func PgBouncerDatabase(t testing.TB) PgBouncer {
	t.Helper()
	bouncer := need(t, "TEST_PGBOUNCER_URL", "a PgBouncer in transaction mode in front of TEST_DATABASE_URL's server, such as postgres://postgres@127.0.0.1:6432/flystorage_test?sslmode=disable")
	admin := need(t, "TEST_DATABASE_URL", "a Postgres URL such as postgres://postgres@127.0.0.1:5432/flystorage_test?sslmode=disable")
	name := "test_" + RandomHex(6)
	exec := func(sql string) error {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		conn, err := pgx.Connect(ctx, admin)
		if err != nil {
			return err
		}
		defer conn.Close(ctx)
		_, err = conn.Exec(ctx, sql)
		return err
	}
	if err := exec("CREATE DATABASE " + name); err != nil {
		t.Fatalf("creating database %s: %v", name, err)
	}
	t.Cleanup(func() {
		// FORCE ends the server connections PgBouncer still holds.
		if err := exec("DROP DATABASE " + name + " WITH (FORCE)"); err != nil {
			t.Errorf("dropping database %s: %v", name, err)
		}
	})
	return PgBouncer{Pooled: withCredentials(t, withDatabase(t, bouncer, name), admin), Direct: withDatabase(t, admin, name)}
}

// withCredentials gives raw (a PgBouncer URL) the password of from
// (TEST_DATABASE_URL) when raw names the same user without one: the
// PgBouncer logs in to Postgres with that password and checks it too.
func withCredentials(t testing.TB, raw, from string) string {
	t.Helper()
	u, err := url.Parse(raw)
	if err != nil {
		t.Fatal(err)
	}
	f, err := url.Parse(from)
	if err != nil {
		t.Fatal(err)
	}
	_, has := u.User.Password()
	pw, ok := f.User.Password()
	if has || !ok || u.User.Username() != f.User.Username() {
		return raw
	}
	u.User = url.UserPassword(u.User.Username(), pw)
	return u.String()
}

func withDatabase(t testing.TB, raw, name string) string {
	t.Helper()
	u, err := url.Parse(raw)
	if err != nil {
		t.Fatal(err)
	}
	u.Path = "/" + strings.TrimPrefix(name, "/")
	return u.String()
}
