package testenv

import (
	"bytes"
	"context"
	"fmt"
	"net/url"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// PgBouncer is a fresh database reached two ways: Pooled through a
// PgBouncer (the shared one at TEST_PGBOUNCER_URL, in transaction pooling
// mode, or a test's own from StartPgBouncer, in either mode), and Direct
// to the Postgres behind it.
type PgBouncer struct {
	Pooled, Direct string
}

// PgBouncerDatabase creates a database for this test, dropped when it ends.
// A database rather than a schema: PgBouncer does not pass search_path on.
func PgBouncerDatabase(t testing.TB) PgBouncer {
	t.Helper()
	bouncer := need(t, "TEST_PGBOUNCER_URL", "a PgBouncer in transaction mode in front of TEST_DATABASE_URL's server, such as postgres://postgres@127.0.0.1:6432/flystorage_test?sslmode=disable")
	admin := need(t, "TEST_DATABASE_URL", "a Postgres URL such as postgres://postgres@127.0.0.1:5432/flystorage_test?sslmode=disable")
	name := createDatabase(t, admin)
	return PgBouncer{Pooled: withCredentials(t, withDatabase(t, bouncer, name), admin), Direct: withDatabase(t, admin, name)}
}

// createDatabase creates a database on admin's server, dropped when the
// test ends, and returns its name.
func createDatabase(t testing.TB, admin string) string {
	t.Helper()
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
	return name
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

// Pool modes of PgBouncer, for StartPgBouncer: Managed Postgres's pooler
// runs in session mode unless the cluster opts into transaction mode.
const (
	SessionPooling     = "session"
	TransactionPooling = "transaction"
)

// StartPgBouncer starts a PgBouncer of the test's own (pgbouncer on PATH,
// or Debian's /usr/sbin/pgbouncer) in poolMode, on a free port in front of
// TEST_DATABASE_URL's server, and returns a fresh database reached through
// it and directly. Both are removed when the test ends.
func StartPgBouncer(t testing.TB, poolMode string) PgBouncer {
	t.Helper()
	admin := need(t, "TEST_DATABASE_URL", "a Postgres URL such as postgres://postgres@127.0.0.1:5432/flystorage_test?sslmode=disable")
	bin, err := exec.LookPath("pgbouncer")
	if err != nil {
		if bin, err = exec.LookPath("/usr/sbin/pgbouncer"); err != nil {
			t.Fatalf("pgbouncer is neither on PATH nor in /usr/sbin: install it (Debian: apt-get install pgbouncer)")
		}
	}
	u, err := url.Parse(admin)
	if err != nil {
		t.Fatalf("TEST_DATABASE_URL: %v", err)
	}
	// PgBouncer logs in to Postgres with TEST_DATABASE_URL's user and
	// password; with a password it asks clients for it too.
	user := u.User.Username()
	if user == "" {
		user = "postgres"
	}
	password, _ := u.User.Password()
	// Not t.TempDir(), whose parent only root may enter: as root,
	// PgBouncer runs as postgres and reads its files here.
	dir, err := os.MkdirTemp("", "flystorage-pgbouncer-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	listen := freePort(t)
	writePgBouncerConfig(t, dir, u, user, password, listen, poolMode)
	cmd, exited, log := runPgBouncer(t, bin, dir)

	name := createDatabase(t, admin)
	pooled := url.URL{Scheme: "postgres", User: url.User(user), Host: fmt.Sprintf("127.0.0.1:%d", listen), Path: "/" + name, RawQuery: "sslmode=disable"}
	if password != "" {
		pooled.User = url.UserPassword(user, password)
	}
	b := PgBouncer{
		Pooled: pooled.String(),
		Direct: withDatabase(t, admin, name),
	}
	var connErr error
	ready := Eventually(20*time.Second, func() bool {
		select {
		case <-exited:
			return true // reported below
		default:
		}
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		var conn *pgx.Conn
		if conn, connErr = pgx.Connect(ctx, b.Pooled); connErr == nil {
			conn.Close(ctx)
		}
		return connErr == nil
	})
	select {
	case <-exited:
		t.Fatalf("pgbouncer exited: %s", log.String())
	default:
	}
	if !ready {
		cmd.Process.Kill()
		<-exited
		t.Fatalf("pgbouncer in %s mode did not let a client through within 20s: %v\n%s", poolMode, connErr, log.String())
	}
	return b
}

// writePgBouncerConfig writes pgbouncer.ini and its userlist.txt into
// dir: a PgBouncer in poolMode on 127.0.0.1:listen in front of server,
// logging in as user with password (trust when there is none).
func writePgBouncerConfig(t testing.TB, dir string, server *url.URL, user, password string, listen int, poolMode string) {
	t.Helper()
	auth := "trust"
	if password != "" {
		auth = "md5"
	}
	port := server.Port()
	if port == "" {
		port = "5432"
	}
	// In session mode each client connection holds a server connection
	// for its life, so the pool needs room for the app's whole pool
	// (DB_MAX_CONNS, 20): PgBouncer's own default of 20. In transaction
	// mode fewer server connections than clients show the multiplexing.
	poolSize := 20
	if poolMode == TransactionPooling {
		poolSize = 10
	}
	quote := func(s string) string { return `"` + strings.ReplaceAll(s, `"`, `""`) + `"` }
	files := map[string]string{
		"userlist.txt": quote(user) + " " + quote(password) + "\n",
		"pgbouncer.ini": fmt.Sprintf(`[databases]
* = host=%s port=%s

[pgbouncer]
listen_addr = 127.0.0.1
listen_port = %d
unix_socket_dir =
auth_type = %s
auth_file = %s
pool_mode = %s
default_pool_size = %d
max_client_conn = 1000
ignore_startup_parameters = extra_float_digits
`, server.Hostname(), port, listen, auth, filepath.Join(dir, "userlist.txt"), poolMode, poolSize),
	}
	for name, text := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(text), 0o600); err != nil {
			t.Fatal(err)
		}
	}
}

// runPgBouncer starts bin on dir's pgbouncer.ini, stopped when the test
// ends. exited closes when the process ends; log is what it printed.
func runPgBouncer(t testing.TB, bin, dir string) (cmd *exec.Cmd, exited chan struct{}, log *bytes.Buffer) {
	t.Helper()
	cmd = exec.Command(bin, filepath.Join(dir, "pgbouncer.ini"))
	log = new(bytes.Buffer)
	cmd.Stdout, cmd.Stderr = log, log
	if os.Geteuid() == 0 {
		// PgBouncer refuses to run as root.
		runAsPostgres(t, cmd, dir)
	}
	if err := cmd.Start(); err != nil {
		t.Fatalf("starting pgbouncer: %v", err)
	}
	exited = make(chan struct{})
	go func() { cmd.Wait(); close(exited) }()
	t.Cleanup(func() {
		cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-exited:
		case <-time.After(10 * time.Second):
			cmd.Process.Kill()
			<-exited
		}
	})
	return cmd, exited, log
}

// runAsPostgres makes cmd run as the postgres user, owning dir and the
// files in it.
func runAsPostgres(t testing.TB, cmd *exec.Cmd, dir string) {
	t.Helper()
	pg, err := user.Lookup("postgres")
	if err != nil {
		t.Fatalf("running as root needs a postgres user to run the server: %v", err)
	}
	uid, _ := strconv.Atoi(pg.Uid)
	gid, _ := strconv.Atoi(pg.Gid)
	entries, _ := os.ReadDir(dir)
	for _, path := range append([]string{dir}, func() (paths []string) {
		for _, e := range entries {
			paths = append(paths, filepath.Join(dir, e.Name()))
		}
		return paths
	}()...) {
		if err := os.Chown(path, uid, gid); err != nil {
			t.Fatal(err)
		}
	}
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}}
}
