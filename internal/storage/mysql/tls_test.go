package mysql_test

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"strings"
	"testing"

	"github.com/example/flystorage/internal/storage"
	"github.com/example/flystorage/internal/storage/mysql"
	"github.com/example/flystorage/internal/testenv"
)

// TestTLS connects to a MariaDB that accepts only TLS, with a certificate
// the test made: prefer and require encrypt, verify-ca and verify-full
// check the certificate against sslrootcert, and a plaintext or
// unverifiable connection is refused.
func TestTLS(t *testing.T) {
	srv := testenv.NewMariaDB(t, testenv.MariaDBOptions{TLS: true})
	ctx := context.Background()
	for _, url := range []string{
		srv.URL("prefer"),
		srv.URL("require"),
		srv.URL("verify-ca") + "&sslrootcert=" + srv.CertFile(),
		srv.URL("verify-full") + "&sslrootcert=" + srv.CertFile(),
	} {
		src, err := mysql.Driver.Load(url, func(string) string { return "" })
		if err != nil {
			t.Fatalf("Load(%s): %v", url, err)
		}
		var logs bytes.Buffer
		db, err := src.Open(ctx, storage.OpenOptions{Migrate: true, Logger: slog.New(slog.NewTextHandler(&logs, nil))})
		if err != nil {
			t.Fatalf("Open(%s): %v", url, err)
		}
		if got := db.Describe()["tls"]; got != "true" {
			t.Errorf("Open(%s): Describe tls = %q, want true", url, got)
		}
		if err := db.Ping(ctx); err != nil {
			t.Errorf("Ping over TLS: %v", err)
		}
		db.Close()
		if strings.Contains(logs.String(), "not encrypted") {
			t.Errorf("an encrypted connection logged a plaintext warning: %s", logs.String())
		}
	}
	for _, tc := range []struct {
		url  string
		kind error
	}{
		{srv.URL("disable"), storage.ErrRefused},     // the server takes TLS only
		{srv.URL("verify-full"), storage.ErrRefused}, // no sslrootcert: the self-signed certificate is not trusted
		{srv.URL("verify-ca"), storage.ErrRefused},
	} {
		src, err := mysql.Driver.Load(tc.url, func(string) string { return "" })
		if err != nil {
			t.Fatalf("Load(%s): %v", tc.url, err)
		}
		db, err := src.Open(ctx, storage.OpenOptions{Migrate: true})
		if err == nil {
			db.Close()
			t.Errorf("Open(%s) succeeded, want it refused", tc.url)
			continue
		}
		if !errors.Is(err, tc.kind) {
			t.Errorf("Open(%s) = %v, want %v", tc.url, err, tc.kind)
		}
		t.Logf("Open(%s) refused: %v", tc.url, err)
	}
}
