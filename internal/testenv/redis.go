package testenv

import (
	"bufio"
	"bytes"
	"crypto/tls"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// RedisURL returns TEST_REDIS_URL, a Redis every test shares: tests keep
// apart by starting their keys with a prefix of their own, and delete
// them when they end.
func RedisURL(t testing.TB) string {
	t.Helper()
	return need(t, "TEST_REDIS_URL", "a Redis URL such as redis://127.0.0.1:6379/0")
}

// RedisServer is a throwaway redis-server on a free port, for tests that
// stop, pause or kill Redis. It keeps nothing on disk.
type RedisServer struct {
	Port int
	// CertFile, with RedisOptions.TLS, is the certificate of the test CA
	// that signed the server's (for localhost and 127.0.0.1): the one to
	// trust, through SSL_CERT_FILE or a root pool.
	CertFile string
	opts     RedisOptions
	bin      string
	args     []string
	cmd      *exec.Cmd
	log      bytes.Buffer
}

// RedisOptions shape a RedisServer.
type RedisOptions struct {
	TLS      bool   // TLS only, like Upstash outside Fly
	Password string // requirepass, for the default user
}

// StartRedis starts a redis-server (TEST_REDIS_SERVER_BIN, or redis-server
// on PATH) and waits until it answers; it is killed when the test ends.
func StartRedis(t testing.TB, opts ...RedisOptions) *RedisServer {
	t.Helper()
	bin := os.Getenv("TEST_REDIS_SERVER_BIN")
	if bin == "" {
		var err error
		if bin, err = exec.LookPath("redis-server"); err != nil {
			need(t, "TEST_REDIS_SERVER_BIN", "the path of redis-server (apt-get install redis-server)")
		}
	}
	s := &RedisServer{Port: freePort(t)}
	if len(opts) > 0 {
		s.opts = opts[0]
	}
	args := []string{"--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--daemonize", "no"}
	if s.opts.TLS {
		dir := t.TempDir()
		ca := NewTestCA(t)
		s.CertFile = ca.WriteFile(t, dir)
		cert, key := filepath.Join(dir, "server.crt"), filepath.Join(dir, "server.key")
		writeServerCert(t, ca, cert, key)
		args = append(args, "--port", "0", "--tls-port", strconv.Itoa(s.Port),
			"--tls-cert-file", cert, "--tls-key-file", key, "--tls-auth-clients", "no")
	} else {
		args = append(args, "--port", strconv.Itoa(s.Port))
	}
	if s.opts.Password != "" {
		args = append(args, "--requirepass", s.opts.Password)
	}
	s.bin, s.args = bin, args
	s.start(t)
	t.Cleanup(func() {
		s.cmd.Process.Signal(syscall.SIGCONT)
		s.cmd.Process.Kill()
		s.cmd.Wait()
	})
	return s
}

// start runs the server and waits until it answers.
func (s *RedisServer) start(t testing.TB) {
	t.Helper()
	s.cmd = exec.Command(s.bin, s.args...)
	s.cmd.Stdout, s.cmd.Stderr = &s.log, &s.log
	if err := s.cmd.Start(); err != nil {
		t.Fatalf("starting %s: %v", s.bin, err)
	}
	if !Eventually(10*time.Second, s.answers) {
		t.Fatalf("redis-server on port %d did not answer within 10s:\n%s", s.Port, s.log.String())
	}
}

// Restart starts a new, empty server on the same port after Kill, as a
// crashed Redis comes back at the same address.
func (s *RedisServer) Restart(t testing.TB) {
	t.Helper()
	s.start(t)
}

// URL returns the server's URL, database 0: rediss://localhost with TLS,
// with the password if there is one.
func (s *RedisServer) URL() string {
	scheme, host, user := "redis", "127.0.0.1", ""
	if s.opts.TLS {
		scheme, host = "rediss", "localhost"
	}
	if s.opts.Password != "" {
		user = "default:" + s.opts.Password + "@"
	}
	return fmt.Sprintf("%s://%s%s:%d/0", scheme, user, host, s.Port)
}

// Kill kills the server the way a crash would; its data is gone.
func (s *RedisServer) Kill(t testing.TB) {
	t.Helper()
	if err := s.cmd.Process.Kill(); err != nil {
		t.Fatalf("killing redis-server: %v", err)
	}
	s.cmd.Wait()
}

// Pause stops the server (SIGSTOP): connections stay open and commands
// hang, like a Redis that is unreachable, and its data stays.
func (s *RedisServer) Pause(t testing.TB) {
	t.Helper()
	if err := s.cmd.Process.Signal(syscall.SIGSTOP); err != nil {
		t.Fatalf("pausing redis-server: %v", err)
	}
}

// Resume continues a paused server.
func (s *RedisServer) Resume(t testing.TB) {
	t.Helper()
	if err := s.cmd.Process.Signal(syscall.SIGCONT); err != nil {
		t.Fatalf("resuming redis-server: %v", err)
	}
}

// answers reports whether the server replies to PING (refusing it for
// want of a password is an answer too).
func (s *RedisServer) answers() bool {
	addr := fmt.Sprintf("127.0.0.1:%d", s.Port)
	dialer := &net.Dialer{Timeout: time.Second}
	var conn net.Conn
	var err error
	if s.opts.TLS {
		conn, err = tls.DialWithDialer(dialer, "tcp", addr, &tls.Config{InsecureSkipVerify: true})
	} else {
		conn, err = dialer.Dial("tcp", addr)
	}
	if err != nil {
		return false
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(time.Second))
	if _, err := conn.Write([]byte("PING\r\n")); err != nil {
		return false
	}
	line, err := bufio.NewReader(conn).ReadString('\n')
	return err == nil && (line == "+PONG\r\n" || strings.HasPrefix(line, "-NOAUTH"))
}

// writeServerCert writes a certificate from ca for localhost and
// 127.0.0.1, and its key.
func writeServerCert(t testing.TB, ca *TestCA, certFile, keyFile string) {
	t.Helper()
	certPEM, keyPEM := ca.ServerCert(t)
	if err := os.WriteFile(certFile, certPEM, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyFile, keyPEM, 0o600); err != nil {
		t.Fatal(err)
	}
}
