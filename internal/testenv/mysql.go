package testenv

import (
	"context"
	"database/sql"
	"net"
	"net/url"
	"testing"
	"time"

	"github.com/go-sql-driver/mysql"
)

// MySQLURL returns the mysql:// URL of a fresh, empty database on the
// server at TEST_MYSQL_URL, dropped when the test ends. The URL keeps
// TEST_MYSQL_URL's user, password and query (such as sslmode=disable).
func MySQLURL(t testing.TB) string {
	t.Helper()
	base := need(t, "TEST_MYSQL_URL", "a MySQL or MariaDB server URL such as mysql://root@127.0.0.1:3306/?sslmode=disable")
	u, err := url.Parse(base)
	if err != nil || u.Scheme != "mysql" || u.Hostname() == "" {
		t.Fatalf("TEST_MYSQL_URL is not a mysql://user@host:port/ URL")
	}
	name := "flystorage_test_" + RandomHex(6)
	exec := func(stmt string) error {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		db, err := MySQLAdmin(u)
		if err != nil {
			return err
		}
		defer db.Close()
		_, err = db.ExecContext(ctx, stmt)
		return err
	}
	if err := exec("CREATE DATABASE " + name + " CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci"); err != nil {
		t.Fatalf("creating database %s at TEST_MYSQL_URL: %v", name, err)
	}
	t.Cleanup(func() {
		if err := exec("DROP DATABASE " + name); err != nil {
			t.Errorf("dropping database %s: %v", name, err)
		}
	})
	u.Path = "/" + name
	return u.String()
}

// MySQLAdmin opens a plaintext database/sql handle on the server of a
// mysql:// URL, on no database in particular: for tests that create
// databases, or read what the app wrote with a plain client.
func MySQLAdmin(u *url.URL) (*sql.DB, error) {
	cfg := mysql.NewConfig()
	cfg.User = u.User.Username()
	cfg.Passwd, _ = u.User.Password()
	port := u.Port()
	if port == "" {
		port = "3306"
	}
	cfg.Net, cfg.Addr = "tcp", net.JoinHostPort(u.Hostname(), port)
	if len(u.Path) > 1 {
		cfg.DBName = u.Path[1:]
	}
	cfg.ParseTime = true
	cfg.Timeout = 5 * time.Second
	connector, err := mysql.NewConnector(cfg)
	if err != nil {
		return nil, err
	}
	return sql.OpenDB(connector), nil
}
