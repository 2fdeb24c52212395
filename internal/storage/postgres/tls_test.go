package postgres

import (
	"bytes"
	"context"
	"log/slog"
	"strings"
	"testing"

	"github.com/example/flystorage/internal/testenv"
)

// TestTLS connects to a Postgres that accepts only TLS, with a certificate
// the test made: sslmode=require encrypts, verify-full checks the
// certificate against sslrootcert, and a plaintext or unverifiable
// connection is refused.
func TestTLS(t *testing.T) {
	cluster := testenv.NewCluster(t, testenv.ClusterOptions{TLS: true})
	ctx := context.Background()
	for _, url := range []string{
		cluster.URL("require"),
		cluster.URL("verify-full") + "&sslrootcert=" + cluster.CertFile(),
	} {
		var logs bytes.Buffer
		s, err := Open(ctx, url, Options{Migrate: true, Logger: slog.New(slog.NewTextHandler(&logs, nil))})
		if err != nil {
			t.Fatalf("Open(%s): %v", url, err)
		}
		if got := s.Describe()["tls"]; got != "true" {
			t.Errorf("Open(%s): Describe tls = %q, want true", url, got)
		}
		if err := s.Ping(ctx); err != nil {
			t.Errorf("Ping over TLS: %v", err)
		}
		s.Close()
		if strings.Contains(logs.String(), "not encrypted") {
			t.Errorf("an encrypted connection logged a plaintext warning: %s", logs.String())
		}
	}
	for _, url := range []string{
		cluster.URL("disable"),     // the server takes TLS only
		cluster.URL("verify-full"), // no sslrootcert: the self-signed certificate is not trusted
	} {
		if s, err := Open(ctx, url, Options{Migrate: true}); err == nil {
			s.Close()
			t.Errorf("Open(%s) succeeded, want it refused", url)
		}
	}
}

// TestPlaintextLoopbackIsQuiet: a plaintext connection to loopback crosses
// no network, so it gets no warning.
func TestPlaintextLoopbackIsQuiet(t *testing.T) {
	var logs bytes.Buffer
	s, err := Open(context.Background(), testenv.PostgresURL(t), Options{Migrate: true, Logger: slog.New(slog.NewTextHandler(&logs, nil))})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if s.Describe()["tls"] != "false" {
		t.Errorf("Describe tls = %q, want false for sslmode=disable", s.Describe()["tls"])
	}
	if strings.Contains(logs.String(), "not encrypted") {
		t.Errorf("plaintext on loopback logged a warning: %s", logs.String())
	}
}
