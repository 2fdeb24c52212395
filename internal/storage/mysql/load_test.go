package mysql

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"log/slog"
	"math/big"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/example/flystorage/internal/config"
)

func noEnv(string) string { return "" }

// TestLoadPlanetScaleURL: the exact form Fly's guide gives for PlanetScale
// selects MySQL with TLS, the default port, UTC times, and a masked
// password everywhere it is shown.
func TestLoadPlanetScaleURL(t *testing.T) {
	const secret = "pscale_pw_s3cret"
	s, err := load("mysql://user:"+secret+"@host.planetscale.com/dbname?sslmode=require", noEnv)
	if err != nil {
		t.Fatal(err)
	}
	c := s.cfg
	if c.User != "user" || c.Passwd != secret || c.Addr != "host.planetscale.com:3306" || c.DBName != "dbname" || c.Net != "tcp" {
		t.Errorf("config = user %q, addr %q, db %q, net %q; want user, host.planetscale.com:3306, dbname, tcp", c.User, c.Addr, c.DBName, c.Net)
	}
	if !c.ParseTime || c.Loc != time.UTC || !c.InterpolateParams {
		t.Errorf("ParseTime %v, Loc %v, InterpolateParams %v; want true, UTC, true", c.ParseTime, c.Loc, c.InterpolateParams)
	}
	if s.sslMode != sslRequire || c.AllowFallbackToPlaintext {
		t.Errorf("sslmode %q, fallback %v; want require with no plaintext fallback", s.sslMode, c.AllowFallbackToPlaintext)
	}
	if tc := s.tlsConfig(new(atomic.Int64)); tc == nil || !tc.InsecureSkipVerify || tc.MinVersion != tls.VersionTLS12 {
		t.Errorf("require's TLS config = %+v, want encryption without verification", tc)
	}
	if want := "mysql://user:xxxxx@host.planetscale.com/dbname?sslmode=require"; s.Redacted() != want {
		t.Errorf("Redacted = %q, want %q", s.Redacted(), want)
	}
	var logs strings.Builder
	slog.New(slog.NewTextHandler(&logs, nil)).Info("database", "config", s)
	if strings.Contains(logs.String(), secret) || !strings.Contains(logs.String(), "host.planetscale.com") {
		t.Errorf("LogValue logged %s; want the host and no password", logs.String())
	}
	if got := Driver.Schemes; len(got) != 1 || got[0] != "mysql" || Driver.Var != "DATABASE_URL" || Driver.Name != "mysql" {
		t.Errorf("Driver = %s %s %v; want mysql on DATABASE_URL with scheme mysql", Driver.Name, Driver.Var, got)
	}
}

func TestLoadForms(t *testing.T) {
	for _, tc := range []struct {
		url, addr, mode string
	}{
		{"mysql://u:p@db.example.com:3307/app?sslmode=verify-full", "db.example.com:3307", sslVerifyFull},
		{"mysql://u@db.example.com/app", "db.example.com:3306", sslPrefer}, // no sslmode: prefer
		{"mysql://u:p@[::1]:3306/app?sslmode=disable", "[::1]:3306", sslDisable},
		{"mysql://u:p%40ss@127.0.0.1/app?sslmode=verify-ca", "127.0.0.1:3306", sslVerifyCA},
	} {
		s, err := load(tc.url, noEnv)
		if err != nil {
			t.Errorf("load(%s): %v", tc.url, err)
			continue
		}
		if s.cfg.Addr != tc.addr || s.sslMode != tc.mode || s.cfg.DBName != "app" {
			t.Errorf("load(%s) = addr %q, sslmode %q, db %q; want %q, %q, app", tc.url, s.cfg.Addr, s.sslMode, s.cfg.DBName, tc.addr, tc.mode)
		}
	}
	if s, _ := load("mysql://u:p%40ss@h/app", noEnv); s.cfg.Passwd != "p@ss" {
		t.Errorf("a percent-encoded password decodes to %q, want p@ss", s.cfg.Passwd)
	}
}

// TestLoadErrors: every malformed URL is a *config.Error naming
// DATABASE_URL, and none repeats the password.
func TestLoadErrors(t *testing.T) {
	const secret = "hunter2-secret"
	for _, tc := range []struct{ url, want string }{
		{"postgres://u:" + secret + "@h/db", "scheme"},
		{"mysql://u:" + secret + "@h/db?sslmode=allow", "sslmode"},
		{"mysql://u:" + secret + "@h/db?sslmode=REQUIRE", "sslmode"},
		{"mysql://u:" + secret + "@h:99999/db", "port"},
		{"mysql://u:" + secret + "@h:0/db", "port"},
		{"mysql://u:" + secret + "@h:abc/db", "port"},
		{"mysql://u:" + secret + "%zz@h/db", "percent-encode"},
		{"mysql://u:" + secret + "@h/db?tls=true", `unknown parameter "tls"`},
		{"mysql://u:" + secret + "@h/db?sslmode=require&sslrootcert=/ca.pem", "verify-ca or verify-full"},
		{"mysql://u:" + secret + "@h/db?sslmode=verify-full&sslrootcert=/nonexistent/ca.pem", "sslrootcert"},
		{"mysql://u:" + secret + "@h/", "no database"},
		{"mysql://u:" + secret + "@h", "no database"},
		{"mysql://u:" + secret + "@/db", "no host"},
	} {
		_, err := load(tc.url, noEnv)
		var ce *config.Error
		if !errors.As(err, &ce) || ce.Var != "DATABASE_URL" {
			t.Errorf("load(%s) = %v, want a *config.Error naming DATABASE_URL", tc.url, err)
			continue
		}
		if strings.Contains(err.Error(), secret) {
			t.Errorf("load(%s) error repeats the password: %v", tc.url, err)
		}
		if !strings.Contains(err.Error(), tc.want) {
			t.Errorf("load(%s) = %v, want it to mention %q", tc.url, err, tc.want)
		}
	}
}

func TestLoadPool(t *testing.T) {
	env := map[string]string{
		"DB_MAX_CONNS":          "7",
		"DB_MAX_CONN_LIFETIME":  "90s",
		"DB_MAX_CONN_IDLE_TIME": "30s",
		"DB_CONNECT_TIMEOUT":    "3s",
	}
	s, err := load("mysql://u:p@h/db", func(k string) string { return env[k] })
	if err != nil {
		t.Fatal(err)
	}
	if s.pool.MaxConns != 7 || s.pool.MaxConnLifetime != 90*time.Second || s.pool.MaxConnIdleTime != 30*time.Second || s.cfg.Timeout != 3*time.Second {
		t.Errorf("pool %+v, dial timeout %v; want 7 conns, 90s, 30s, 3s", s.pool, s.cfg.Timeout)
	}
	db, err := s.openDB(int(s.pool.MaxConns), new(atomic.Int64))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if got := db.Stats().MaxOpenConnections; got != 7 {
		t.Errorf("the pool opens at most %d connections, want 7", got)
	}

	d, err := load("mysql://u:p@h/db", noEnv)
	if err != nil {
		t.Fatal(err)
	}
	if d.pool.MaxConns != config.DefaultMaxConns || d.cfg.Timeout != config.DefaultConnectTimeout || d.pool.MaxConnLifetime != config.DefaultMaxConnLifetime {
		t.Errorf("default pool %+v, dial timeout %v; want config's defaults", d.pool, d.cfg.Timeout)
	}

	_, err = load("mysql://u:p@h/db", func(k string) string { return map[string]string{"DB_MAX_CONNS": "lots"}[k] })
	var ce *config.Error
	if !errors.As(err, &ce) || ce.Var != "DB_MAX_CONNS" {
		t.Errorf("load with DB_MAX_CONNS=lots = %v, want a *config.Error naming DB_MAX_CONNS", err)
	}
}

// TestTLSModes checks the TLS settings each sslmode maps to, and
// verify-ca's chain check against certificates made here. (The test
// MariaDB serves no TLS, so no handshake happens against a server.)
func TestTLSModes(t *testing.T) {
	var n atomic.Int64
	mode := func(m string) *Source {
		s, err := load("mysql://u:p@db.example.com/app?sslmode="+m, noEnv)
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	if tc := mode("disable").tlsConfig(&n); tc != nil {
		t.Errorf("disable: TLS config %+v, want none", tc)
	}
	prefer := mode("prefer")
	if tc := prefer.tlsConfig(&n); tc == nil || !tc.InsecureSkipVerify || !prefer.cfg.AllowFallbackToPlaintext {
		t.Errorf("prefer: want unverified TLS with a plaintext fallback")
	}
	if tc := mode("verify-full").tlsConfig(&n); tc == nil || tc.InsecureSkipVerify || tc.ServerName != "db.example.com" {
		t.Errorf("verify-full: want Go's verification of chain and host name db.example.com, got %+v", tc)
	}

	// verify-ca trusts sslrootcert's certificate whatever host it names,
	// and nothing else.
	certPEM, cert := selfSigned(t, "some-other-name.example")
	file := filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(file, certPEM, 0o600); err != nil {
		t.Fatal(err)
	}
	s, err := load("mysql://u:p@db.example.com/app?sslmode=verify-ca&sslrootcert="+file, noEnv)
	if err != nil {
		t.Fatal(err)
	}
	tc := s.tlsConfig(&n)
	if tc == nil || tc.VerifyConnection == nil {
		t.Fatal("verify-ca: no chain check")
	}
	if err := tc.VerifyConnection(tls.ConnectionState{PeerCertificates: []*x509.Certificate{cert}}); err != nil {
		t.Errorf("verify-ca refused the trusted certificate: %v", err)
	}
	_, stranger := selfSigned(t, "db.example.com")
	if err := tc.VerifyConnection(tls.ConnectionState{PeerCertificates: []*x509.Certificate{stranger}}); err == nil {
		t.Error("verify-ca accepted a certificate sslrootcert does not vouch for")
	}
	if n.Load() != 2 {
		t.Errorf("counted %d handshakes, want 2", n.Load())
	}
}

func selfSigned(t *testing.T, host string) ([]byte, *x509.Certificate) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(time.Now().UnixNano()), Subject: pkix.Name{CommonName: host}, DNSNames: []string{host},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), cert
}
