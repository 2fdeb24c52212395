package mongodb

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/example/flystorage/internal/config"
	"github.com/example/flystorage/internal/storage"
)

func env(m map[string]string) func(string) string { return func(k string) string { return m[k] } }

func load(t *testing.T, uri string, vars map[string]string) *Source {
	t.Helper()
	src, err := Load(uri, env(vars))
	if err != nil {
		t.Fatalf("Load(%s): %v", uri, err)
	}
	return src.(*Source)
}

// TestLoadAtlas: the URI Fly's guide sets selects the database in its
// path, with TLS, and needs no network to load.
func TestLoadAtlas(t *testing.T) {
	s := load(t, "mongodb+srv://user:pass@cluster.mongodb.net/dbname", nil)
	if s.Database() != "dbname" {
		t.Errorf("database = %q, want dbname", s.Database())
	}
	if !s.tls {
		t.Error("a mongodb+srv:// URI is not taken as TLS")
	}
	if got, want := s.Redacted(), "mongodb+srv://user:xxxxx@cluster.mongodb.net/dbname"; got != want {
		t.Errorf("Redacted = %q, want %q", got, want)
	}
	if strings.Contains(s.LogValue().String(), "pass") {
		t.Errorf("LogValue shows the password: %s", s.LogValue())
	}
	if Driver.Var != "MONGODB_URI" || strings.Join(Driver.Schemes, ",") != "mongodb,mongodb+srv" {
		t.Errorf("Driver = %s %v", Driver.Var, Driver.Schemes)
	}
}

func TestLoadDefaults(t *testing.T) {
	for _, uri := range []string{"mongodb://127.0.0.1:27017", "mongodb://127.0.0.1:27017/", "mongodb://h1:1,h2:2/?replicaSet=rs0"} {
		s := load(t, uri, nil)
		if s.Database() != "flystorage" {
			t.Errorf("Load(%s): database = %q, want flystorage", uri, s.Database())
		}
		if s.tls {
			t.Errorf("Load(%s): plaintext taken as TLS", uri)
		}
	}
	if s := load(t, "mongodb://db.example.com/app?tls=true", nil); !s.tls {
		t.Error("tls=true not taken as TLS")
	}
	if s := load(t, "mongodb+srv://cluster0.abcde.mongodb.net/?tls=false&srvMaxHosts=2", nil); s.tls {
		t.Error("mongodb+srv:// with tls=false taken as TLS")
	}
}

// TestLoadErrors: a bad URI is an error naming MONGODB_URI that never
// holds the password, found without a network.
func TestLoadErrors(t *testing.T) {
	const secret = "s3cretPW"
	for _, uri := range []string{
		"",
		"postgres://user:" + secret + "@host/db",
		"mongodb://user:" + secret + "%zz@host/db",
		"mongodb://user:" + secret + ":x@host/db",
		"mongodb://user:" + secret + "@host/db?maxPoolSize=many",
		"mongodb://user:" + secret + "@host:99999/db",
		"mongodb://user:" + secret + "@/db",
		"mongodb+srv://user:" + secret + "@cluster.mongodb.net:27017/db",
		"mongodb+srv://user:" + secret + "@a.mongodb.net,b.mongodb.net/db",
		"mongodb+srv://user:" + secret + "@cluster.mongodb.net/db?directConnection=true",
		"mongodb+srv://user:" + secret + "@cluster.mongodb.net/db?srvMaxHosts=-1",
	} {
		_, err := Load(uri, env(nil))
		var cerr *config.Error
		if !errors.As(err, &cerr) || cerr.Var != "MONGODB_URI" {
			t.Errorf("Load(%q) = %v, want a *config.Error naming MONGODB_URI", uri, err)
			continue
		}
		if strings.Contains(err.Error(), secret) || strings.Contains(err.Error(), "%zz") {
			t.Errorf("Load(%q) error shows the password: %v", uri, err)
		}
	}
}

// TestOpenUnknownSRVHost: a mongodb+srv:// host is looked up when opening;
// a failed lookup names MONGODB_URI and hides the password.
func TestOpenUnknownSRVHost(t *testing.T) {
	const secret = "s3cretPW"
	src := load(t, "mongodb+srv://user:"+secret+"@cluster0.nosuchcluster.invalid/db", nil)
	db, err := src.Open(context.Background(), storage.OpenOptions{})
	if err == nil {
		db.Close()
		t.Fatal("Open of a host no DNS knows succeeded")
	}
	if !strings.Contains(err.Error(), "MONGODB_URI") || strings.Contains(err.Error(), secret) {
		t.Errorf("Open = %v; want an error naming MONGODB_URI, without the password", err)
	}
}

// TestPoolVariables: the DB_* variables map to the driver's pool options,
// winning over the URI's only when set.
func TestPoolVariables(t *testing.T) {
	vars := map[string]string{"DB_MAX_CONNS": "7", "DB_MIN_CONNS": "2", "DB_MAX_CONN_IDLE_TIME": "90s", "DB_CONNECT_TIMEOUT": "2s"}
	o, err := load(t, "mongodb://127.0.0.1/?maxPoolSize=50&connectTimeoutMS=9000", vars).clientOptions()
	if err != nil {
		t.Fatal(err)
	}
	if *o.MaxPoolSize != 7 || *o.MinPoolSize != 2 || *o.MaxConnIdleTime != 90*time.Second ||
		*o.ConnectTimeout != 2*time.Second || *o.ServerSelectionTimeout != 2*time.Second {
		t.Errorf("with variables set: maxPoolSize %d, minPoolSize %d, maxConnIdleTime %v, connectTimeout %v, serverSelectionTimeout %v; want 7, 2, 90s, 2s, 2s",
			*o.MaxPoolSize, *o.MinPoolSize, *o.MaxConnIdleTime, *o.ConnectTimeout, *o.ServerSelectionTimeout)
	}

	o, err = load(t, "mongodb://127.0.0.1/?maxPoolSize=50&connectTimeoutMS=9000&serverSelectionTimeoutMS=8000", nil).clientOptions()
	if err != nil {
		t.Fatal(err)
	}
	if *o.MaxPoolSize != 50 || *o.ConnectTimeout != 9*time.Second || *o.ServerSelectionTimeout != 8*time.Second {
		t.Errorf("with the URI's options only: maxPoolSize %d, connectTimeout %v, serverSelectionTimeout %v; want 50, 9s, 8s",
			*o.MaxPoolSize, *o.ConnectTimeout, *o.ServerSelectionTimeout)
	}

	o, err = load(t, "mongodb://127.0.0.1/", nil).clientOptions()
	if err != nil {
		t.Fatal(err)
	}
	if *o.MaxPoolSize != config.DefaultMaxConns || *o.ServerSelectionTimeout != config.DefaultConnectTimeout || *o.MaxConnIdleTime != config.DefaultMaxConnIdleTime {
		t.Errorf("with nothing set: maxPoolSize %d, serverSelectionTimeout %v, maxConnIdleTime %v; want the app's defaults",
			*o.MaxPoolSize, *o.ServerSelectionTimeout, *o.MaxConnIdleTime)
	}

	for name, value := range map[string]string{"DB_MAX_CONNS": "many", "DB_CONNECT_TIMEOUT": "soon"} {
		_, err := Load("mongodb://127.0.0.1/", env(map[string]string{name: value}))
		var cerr *config.Error
		if !errors.As(err, &cerr) || cerr.Var != name {
			t.Errorf("Load with %s=%s = %v, want an error naming %s", name, value, err, name)
		}
	}
	if _, err := Load("mongodb://127.0.0.1/?maxPoolSize=5", env(map[string]string{"DB_MIN_CONNS": "6"})); err == nil {
		t.Error("DB_MIN_CONNS above the URI's maxPoolSize was accepted")
	}
}

func TestRedact(t *testing.T) {
	for in, want := range map[string]string{
		"mongodb://u:p%40ss@h1,h2/db?replicaSet=rs": "mongodb://u:xxxxx@h1,h2/db?replicaSet=rs",
		"mongodb://h/db": "mongodb://h/db",
		"mongodb://u@h/db?authMechanism=MONGODB-AWS&authMechanismProperties=AWS_SESSION_TOKEN:tok": "mongodb://u@h/db?authMechanism=MONGODB-AWS&authMechanismProperties=xxxxx",
		"mongodb://h/?tls=true&tlsCertificateKeyFilePassword=pw":                                   "mongodb://h/?tls=true&tlsCertificateKeyFilePassword=xxxxx",
	} {
		if got := Redact(in); got != want {
			t.Errorf("Redact(%q) = %q, want %q", in, got, want)
		}
	}
}
