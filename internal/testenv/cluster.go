package testenv

import (
	"context"
	"fmt"
	"net"
	"net/url"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// Cluster is a throwaway Postgres server in a temporary directory, made with
// initdb and run with pg_ctl (on PATH, or in Debian's
// /usr/lib/postgresql/<version>/bin), for tests that stop and start the
// database or need TLS.
type Cluster struct {
	dir      string // holds data/, the socket and the log
	port     int
	tls      bool
	password string
}

// ClusterOptions shape a Cluster.
type ClusterOptions struct {
	// TLS turns ssl on with a certificate for localhost and 127.0.0.1
	// from a test CA (see CertFile) and refuses connections without TLS.
	TLS bool
	// Password, when set, is the postgres user's password, stored and
	// checked with scram-sha-256 over TCP, as Neon and Supabase do.
	Password string
	// Conf is appended to postgresql.conf, and HBA to pg_hba.conf.
	Conf, HBA string
}

// NewCluster creates and starts a cluster; it is removed when the test ends.
// As root it runs the server as the postgres user, since Postgres refuses to
// run as root.
func NewCluster(t testing.TB, opts ClusterOptions) *Cluster {
	t.Helper()
	if _, err := pgBin("initdb"); err != nil {
		t.Fatal(err)
	}
	dir, err := os.MkdirTemp("", "flystorage-pg-")
	if err != nil {
		t.Fatal(err)
	}
	c := &Cluster{dir: dir, port: freePort(t), tls: opts.TLS, password: opts.Password}
	t.Cleanup(func() {
		c.pgctl("stop", "-m", "immediate") // may already be stopped
		os.RemoveAll(dir)
	})
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	c.chown(t, dir)
	if out, err := c.command("initdb", "-D", c.data(), "-U", "postgres", "-A", "trust", "-E", "UTF8", "--locale=C", "--no-sync").CombinedOutput(); err != nil {
		t.Fatalf("initdb: %v\n%s", err, out)
	}
	conf := fmt.Sprintf("port = %d\nlisten_addresses = '127.0.0.1'\nunix_socket_directories = '%s'\nfsync = off\n", c.port, dir)
	host, method := "host", "trust"
	if opts.TLS {
		c.writeCert(t)
		conf += "ssl = on\nssl_cert_file = 'server.crt'\nssl_key_file = 'server.key'\n"
		host = "hostssl"
	}
	if opts.Password != "" {
		conf += "password_encryption = 'scram-sha-256'\n"
		method = "scram-sha-256"
	}
	hba := fmt.Sprintf("local all all trust\n%s all all 127.0.0.1/32 %s\n", host, method)
	conf += opts.Conf
	hba += opts.HBA
	c.appendFile(t, "postgresql.conf", conf)
	if err := os.WriteFile(filepath.Join(c.data(), "pg_hba.conf"), []byte(hba), 0o600); err != nil {
		t.Fatal(err)
	}
	c.chown(t, filepath.Join(c.data(), "pg_hba.conf"))
	c.Start(t)
	if opts.Password != "" {
		c.setPassword(t, opts.Password)
	}
	return c
}

// setPassword sets the postgres user's password over the Unix socket,
// which trusts the local user.
func (c *Cluster) setPassword(t testing.TB, password string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, fmt.Sprintf("host=%s port=%d user=postgres dbname=postgres", c.dir, c.port))
	if err != nil {
		t.Fatalf("connecting over the socket to set the password: %v", err)
	}
	defer conn.Close(ctx)
	// ALTER ROLE takes no parameters; the password is the test's own.
	if _, err := conn.Exec(ctx, "ALTER ROLE postgres PASSWORD '"+strings.ReplaceAll(password, "'", "''")+"'"); err != nil {
		t.Fatalf("setting the postgres password: %v", err)
	}
}

// URL returns a URL for the postgres database with the given sslmode, and
// the password if the cluster has one.
func (c *Cluster) URL(sslmode string) string {
	u := url.URL{Scheme: "postgres", User: url.User("postgres"), Host: fmt.Sprintf("127.0.0.1:%d", c.port), Path: "/postgres", RawQuery: "sslmode=" + sslmode}
	if c.password != "" {
		u.User = url.UserPassword("postgres", c.password)
	}
	return u.String()
}

// CertFile is the certificate of the CA that signed the server's, to use
// as sslrootcert.
func (c *Cluster) CertFile() string { return filepath.Join(c.dir, "root.crt") }

// Start starts the server and waits until it accepts connections.
func (c *Cluster) Start(t testing.TB) {
	t.Helper()
	if out, err := c.pgctl("start", "-w", "-t", "60", "-l", filepath.Join(c.dir, "server.log")); err != nil {
		log, _ := os.ReadFile(filepath.Join(c.dir, "server.log"))
		t.Fatalf("pg_ctl start: %v\n%s\n%s", err, out, log)
	}
}

// Stop kills the server the way a crash would (immediate mode): committed
// transactions survive through the WAL, nothing else is flushed.
func (c *Cluster) Stop(t testing.TB) {
	t.Helper()
	if out, err := c.pgctl("stop", "-m", "immediate", "-w"); err != nil {
		t.Fatalf("pg_ctl stop: %v\n%s", err, out)
	}
}

func (c *Cluster) data() string { return filepath.Join(c.dir, "data") }

func (c *Cluster) pgctl(args ...string) ([]byte, error) {
	return c.command("pg_ctl", append([]string{"-D", c.data()}, args...)...).CombinedOutput()
}

// command runs name as the postgres user when this process is root.
func (c *Cluster) command(name string, args ...string) *exec.Cmd {
	path, err := pgBin(name)
	if err != nil {
		path = name // the command fails, naming it
	}
	if os.Geteuid() == 0 {
		return exec.Command("runuser", append([]string{"-u", "postgres", "--", path}, args...)...)
	}
	return exec.Command(path, args...)
}

// pgBin finds a PostgreSQL server program: on PATH, or else in Debian's
// /usr/lib/postgresql/<version>/bin, the newest version first.
func pgBin(name string) (string, error) {
	if path, err := exec.LookPath(name); err == nil {
		return path, nil
	}
	matches, _ := filepath.Glob(filepath.Join("/usr/lib/postgresql", "*", "bin", name))
	best, bestVersion := "", -1
	for _, m := range matches {
		v, err := strconv.Atoi(filepath.Base(filepath.Dir(filepath.Dir(m))))
		if err == nil && v > bestVersion {
			best, bestVersion = m, v
		}
	}
	if best == "" {
		return "", fmt.Errorf("%s is neither on PATH nor in /usr/lib/postgresql/<version>/bin: install PostgreSQL's server programs (Debian: apt-get install postgresql)", name)
	}
	return best, nil
}

func (c *Cluster) chown(t testing.TB, path string) {
	t.Helper()
	if os.Geteuid() != 0 {
		return
	}
	u, err := user.Lookup("postgres")
	if err != nil {
		t.Fatalf("running as root needs a postgres user to run the server: %v", err)
	}
	uid, _ := strconv.Atoi(u.Uid)
	gid, _ := strconv.Atoi(u.Gid)
	if err := os.Chown(path, uid, gid); err != nil {
		t.Fatal(err)
	}
}

func (c *Cluster) appendFile(t testing.TB, name, text string) {
	t.Helper()
	f, err := os.OpenFile(filepath.Join(c.data(), name), os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.WriteString(text); err != nil {
		t.Fatal(err)
	}
}

// writeCert makes a test CA and a certificate it signs for localhost and
// 127.0.0.1: the server's certificate and, as root.crt, the CA's, which
// clients verify it against.
func (c *Cluster) writeCert(t testing.TB) {
	t.Helper()
	ca := NewTestCA(t)
	certPEM, keyPEM := ca.ServerCert(t)
	for name, data := range map[string][]byte{
		filepath.Join(c.data(), "server.crt"): certPEM,
		filepath.Join(c.data(), "server.key"): keyPEM,
		c.CertFile():                          ca.PEM,
	} {
		if err := os.WriteFile(name, data, 0o600); err != nil {
			t.Fatal(err)
		}
		c.chown(t, name)
	}
	os.Chmod(c.CertFile(), 0o644)
}

func freePort(t testing.TB) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}
