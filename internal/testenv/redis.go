package testenv

import (
	"bufio"
	"bytes"
	"fmt"
	"net"
	"os"
	"os/exec"
	"strconv"
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
	cmd  *exec.Cmd
	log  bytes.Buffer
}

// StartRedis starts a redis-server (TEST_REDIS_SERVER_BIN, or redis-server
// on PATH) and waits until it answers; it is killed when the test ends.
func StartRedis(t testing.TB) *RedisServer {
	t.Helper()
	bin := os.Getenv("TEST_REDIS_SERVER_BIN")
	if bin == "" {
		var err error
		if bin, err = exec.LookPath("redis-server"); err != nil {
			need(t, "TEST_REDIS_SERVER_BIN", "the path of redis-server (apt-get install redis-server)")
		}
	}
	s := &RedisServer{Port: freePort(t)}
	s.cmd = exec.Command(bin, "--port", strconv.Itoa(s.Port), "--bind", "127.0.0.1",
		"--save", "", "--appendonly", "no", "--daemonize", "no")
	s.cmd.Stdout, s.cmd.Stderr = &s.log, &s.log
	if err := s.cmd.Start(); err != nil {
		t.Fatalf("starting %s: %v", bin, err)
	}
	t.Cleanup(func() {
		s.cmd.Process.Signal(syscall.SIGCONT)
		s.cmd.Process.Kill()
		s.cmd.Wait()
	})
	deadline := time.Now().Add(10 * time.Second)
	for !s.answers() {
		if time.Now().After(deadline) {
			t.Fatalf("redis-server on port %d did not answer within 10s:\n%s", s.Port, s.log.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
	return s
}

// URL returns the server's URL, database 0.
func (s *RedisServer) URL() string { return fmt.Sprintf("redis://127.0.0.1:%d/0", s.Port) }

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

func (s *RedisServer) answers() bool {
	conn, err := net.DialTimeout("tcp", fmt.Sprintf("127.0.0.1:%d", s.Port), time.Second)
	if err != nil {
		return false
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(time.Second))
	if _, err := conn.Write([]byte("PING\r\n")); err != nil {
		return false
	}
	line, err := bufio.NewReader(conn).ReadString('\n')
	return err == nil && line == "+PONG\r\n"
}
