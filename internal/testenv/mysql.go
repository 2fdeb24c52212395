package testenv

import (
	"context"
	"database/sql"
	"fmt"
	"net"
	"net/url"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"syscall"
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

// MariaDB is a throwaway MariaDB server in a temporary directory, made with
// mariadb-install-db and run with mariadbd (Debian's mariadb-server, which
// `make test` installs), for tests that need TLS. It has one empty database,
// flystorage, and a root user without a password.
type MariaDB struct {
	dir  string
	port int
	cred *syscall.Credential // whom the server runs as (mysqlUser)
}

// MariaDBOptions shape a MariaDB.
type MariaDBOptions struct {
	// TLS serves a self-signed certificate for localhost and 127.0.0.1
	// (see CertFile) and refuses connections without TLS.
	TLS bool
}

// NewMariaDB creates and starts a server, stopped and removed when the test
// ends. As root it runs the server as the mysql user.
func NewMariaDB(t testing.TB, opts MariaDBOptions) *MariaDB {
	t.Helper()
	need(t, "TEST_MYSQL_URL", "a MySQL or MariaDB server URL such as mysql://root@127.0.0.1:3306/?sslmode=disable; `make test` installs MariaDB with it")
	install, err1 := lookPath("mariadb-install-db")
	mariadbd, err2 := lookPath("mariadbd")
	if err1 != nil || err2 != nil {
		t.Fatalf("mariadb-install-db and mariadbd are not installed (apt-get install mariadb-server): %v, %v", err1, err2)
	}
	m := &MariaDB{dir: tempDir(t, "flystorage-mariadb-"), port: freePort(t), cred: mysqlUser(t)}
	os.Chmod(m.dir, 0o755)
	m.own(t, m.dir)
	data := filepath.Join(m.dir, "data")
	if out, err := m.command(install, "--no-defaults", "--datadir="+data, "--auth-root-authentication-method=normal", "--skip-test-db").CombinedOutput(); err != nil {
		t.Fatalf("mariadb-install-db: %v\n%s", err, out)
	}
	m.write(t, "init.sql", []byte("CREATE DATABASE IF NOT EXISTS flystorage CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci;\n"))
	args := mariadbArgs(m.dir, m.port)
	if opts.TLS {
		args = append(args, m.serveTLS(t)...)
	}
	m.start(t, m.command(mariadbd, args...))
	return m
}

// serveTLS writes a certificate from a test CA and its key, which only the
// server may read, and the CA's certificate for clients (CertFile), and
// returns mariadbd's flags that serve them and refuse connections without
// TLS.
func (m *MariaDB) serveTLS(t testing.TB) []string {
	t.Helper()
	ca := NewTestCA(t)
	certPEM, keyPEM := ca.ServerCert(t)
	m.write(t, "server.crt", certPEM)
	m.write(t, "server.key", keyPEM)
	m.write(t, "ca.crt", ca.PEM)
	key := filepath.Join(m.dir, "server.key")
	m.own(t, key)
	os.Chmod(key, 0o600)
	return []string{"--ssl-cert=" + filepath.Join(m.dir, "server.crt"), "--ssl-key=" + key, "--require-secure-transport=ON"}
}

// start starts server, killed when the test ends, and waits until it
// accepts connections on its port. It fails the test with the server's
// log if the server exits first or is not listening within 60s.
func (m *MariaDB) start(t testing.TB, server *exec.Cmd) {
	t.Helper()
	if err := server.Start(); err != nil {
		t.Fatalf("starting mariadbd: %v", err)
	}
	exited := make(chan error, 1)
	go func() { exited <- server.Wait() }()
	t.Cleanup(func() {
		server.Process.Kill()
		<-exited
	})
	var died bool
	var exitErr error
	listening := Eventually(60*time.Second, func() bool {
		select {
		case exitErr = <-exited:
			exited <- exitErr
			died = true
			return true
		default:
		}
		conn, err := net.DialTimeout("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(m.port)), time.Second)
		if err == nil {
			conn.Close()
		}
		return err == nil
	})
	if died || !listening {
		log, _ := os.ReadFile(filepath.Join(m.dir, "error.log"))
		if died {
			t.Fatalf("mariadbd exited: %v\n%s", exitErr, log)
		}
		t.Fatalf("mariadbd did not accept connections within 60s\n%s", log)
	}
}

// command runs path as the server's user.
func (m *MariaDB) command(path string, args ...string) *exec.Cmd {
	cmd := exec.Command(path, args...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: m.cred}
	return cmd
}

// write writes a file in the server's directory.
func (m *MariaDB) write(t testing.TB, name string, data []byte) {
	t.Helper()
	if err := os.WriteFile(filepath.Join(m.dir, name), data, 0o644); err != nil {
		t.Fatal(err)
	}
}

// own gives path to the server's user, when it runs as another.
func (m *MariaDB) own(t testing.TB, path string) {
	t.Helper()
	if m.cred != nil {
		if err := os.Chown(path, int(m.cred.Uid), int(m.cred.Gid)); err != nil {
			t.Fatal(err)
		}
	}
}

// tempDir makes a directory that other users may enter (t.TempDir's may
// not be, and the server may run as mysql), removed when the test ends.
func tempDir(t testing.TB, pattern string) string {
	t.Helper()
	dir, err := os.MkdirTemp("", pattern)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	return dir
}

// mysqlUser is the credential the server runs with: as root, the mysql
// user's; otherwise nil, the test's own.
func mysqlUser(t testing.TB) *syscall.Credential {
	t.Helper()
	if os.Geteuid() != 0 {
		return nil
	}
	u, err := user.Lookup("mysql")
	if err != nil {
		t.Fatalf("running as root needs a mysql user to run the server: %v", err)
	}
	uid, _ := strconv.Atoi(u.Uid)
	gid, _ := strconv.Atoi(u.Gid)
	return &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}
}

// mariadbArgs are mariadbd's flags for a server in dir on port: its data,
// socket, pid file, log and init file all in dir, and small, unsafe
// settings a test can afford.
func mariadbArgs(dir string, port int) []string {
	return []string{"--no-defaults", "--datadir=" + filepath.Join(dir, "data"), "--bind-address=127.0.0.1", "--port=" + strconv.Itoa(port),
		"--socket=" + filepath.Join(dir, "mysqld.sock"), "--pid-file=" + filepath.Join(dir, "mysqld.pid"),
		"--log-error=" + filepath.Join(dir, "error.log"), "--init-file=" + filepath.Join(dir, "init.sql"),
		"--skip-log-bin", "--innodb-buffer-pool-size=16M", "--innodb-flush-log-at-trx-commit=0"}
}

// URL returns a URL for the flystorage database with the given sslmode.
func (m *MariaDB) URL(sslmode string) string {
	return fmt.Sprintf("mysql://root@127.0.0.1:%d/flystorage?sslmode=%s", m.port, sslmode)
}

// CertFile is the test CA's certificate, which signed the server's: the
// sslrootcert clients verify the server with.
func (m *MariaDB) CertFile() string { return filepath.Join(m.dir, "ca.crt") }

// lookPath finds a program on PATH or in /usr/sbin, where Debian puts
// server binaries.
func lookPath(name string) (string, error) {
	if p, err := exec.LookPath(name); err == nil {
		return p, nil
	}
	return exec.LookPath(filepath.Join("/usr/sbin", name))
}
