package cache

import (
	"crypto/x509"
	"os"
	"strings"
	"testing"

	"github.com/example/flystorage/internal/testenv"
)

// TestTLSAndPassword: a rediss:// URL with a password, as Upstash gives
// outside Fly, works; a wrong password fails Ping without showing it.
func TestTLSAndPassword(t *testing.T) {
	srv := testenv.StartRedis(t, testenv.RedisOptions{TLS: true, Password: "s3cret-pass"})
	pem, err := os.ReadFile(srv.CertFile)
	if err != nil {
		t.Fatal(err)
	}
	roots := x509.NewCertPool()
	roots.AppendCertsFromPEM(pem)
	prefix := "flystorage-test:" // the server is the test's own
	c := openWithRoots(t, srv.URL(), prefix, roots)
	if err := c.Ping(t.Context()); err != nil {
		t.Fatalf("Ping over TLS: %v", err)
	}
	_, tok, _ := c.Get(t.Context(), File, "f")
	c.Fill(t.Context(), File, "f", tok, []byte("v"))
	if v, _, ok := c.Get(t.Context(), File, "f"); !ok || string(v) != "v" {
		t.Errorf("Get over TLS = %q, %v", v, ok)
	}

	wrong := openWithRoots(t, strings.Replace(srv.URL(), "s3cret-pass", "wrong-pass", 1), prefix, roots)
	err = wrong.Ping(t.Context())
	if err == nil || strings.Contains(err.Error(), "wrong-pass") {
		t.Errorf("Ping with a wrong password = %v", err)
	}
	// An untrusted certificate is refused.
	untrusted := openWithRoots(t, srv.URL(), prefix, x509.NewCertPool())
	if err := untrusted.Ping(t.Context()); err == nil {
		t.Error("Ping trusted a self-signed certificate")
	}
}

func openWithRoots(t *testing.T, url, prefix string, roots *x509.CertPool) *Cache {
	t.Helper()
	cfg, err := load(map[string]string{"REDIS_URL": url, "REDIS_TIMEOUT": "2s"})
	if err != nil {
		t.Fatal(err)
	}
	cfg.options.TLSConfig.RootCAs = roots
	cfg.KeyPrefix = prefix
	c, err := Open(t.Context(), cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}
