package testenv

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"
)

// MongoURI returns TEST_MONGODB_URI (a server speaking MongoDB's wire
// protocol: `make test` starts FerretDB) with a fresh database name in its
// path, and drops that database when the test ends.
func MongoURI(t testing.TB) string {
	t.Helper()
	base := need(t, "TEST_MONGODB_URI", "a MongoDB URI such as mongodb://127.0.0.1:27017/ (FerretDB or MongoDB)")
	db := "test_" + RandomHex(6)
	uri, err := WithMongoDatabase(base, db)
	if err != nil {
		t.Fatalf("TEST_MONGODB_URI: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		client, err := mongo.Connect(options.Client().ApplyURI(base))
		if err != nil {
			t.Errorf("connecting to drop database %s: %v", db, err)
			return
		}
		defer client.Disconnect(ctx)
		if err := client.Database(db).Drop(ctx); err != nil {
			t.Errorf("dropping database %s: %v", db, err)
		}
	})
	return uri
}

// WithMongoDatabase returns the MongoDB URI uri with db as the database in
// its path, keeping its hosts and options.
func WithMongoDatabase(uri, db string) (string, error) {
	scheme, rest, ok := strings.Cut(uri, "://")
	if !ok {
		return "", fmt.Errorf("%q is not a mongodb:// URI", uri)
	}
	rest, query, hasQuery := strings.Cut(rest, "?")
	hosts, _, _ := strings.Cut(rest, "/")
	out := scheme + "://" + hosts + "/" + db
	if hasQuery {
		out += "?" + query
	}
	return out, nil
}

// FerretDB is a FerretDB server of the test's own, for tests that stop it.
type FerretDB struct {
	URI string // mongodb://127.0.0.1:port/
	cmd *exec.Cmd
}

// NewFerretDB starts the FerretDB at TEST_FERRETDB_BIN on a free port,
// keeping its data in SQLite files under a temporary directory, and stops
// it when the test ends.
func NewFerretDB(t testing.TB) *FerretDB {
	t.Helper()
	bin := need(t, "TEST_FERRETDB_BIN", "the path of a FerretDB binary (scripts/ferretdb.sh builds one)")
	dir := t.TempDir()
	if err := os.Mkdir(filepath.Join(dir, "data"), 0o755); err != nil {
		t.Fatal(err)
	}
	addr := fmt.Sprintf("127.0.0.1:%d", freePort(t))
	f := &FerretDB{URI: "mongodb://" + addr + "/"}
	f.cmd = exec.Command(bin, "--listen-addr="+addr, "--handler=sqlite", "--sqlite-url=file:"+filepath.Join(dir, "data")+"/",
		"--state-dir="+dir, "--debug-addr=-", "--telemetry=disable", "--log-level=warn")
	log, err := os.Create(filepath.Join(dir, "ferretdb.log"))
	if err != nil {
		t.Fatal(err)
	}
	f.cmd.Stdout, f.cmd.Stderr = log, log
	if err := f.cmd.Start(); err != nil {
		t.Fatalf("starting FerretDB: %v", err)
	}
	t.Cleanup(f.Stop)
	if !Eventually(30*time.Second, func() bool {
		var conn net.Conn
		if conn, err = net.DialTimeout("tcp", addr, time.Second); err == nil {
			conn.Close()
		}
		return err == nil
	}) {
		out, _ := os.ReadFile(filepath.Join(dir, "ferretdb.log"))
		t.Fatalf("FerretDB did not listen on %s within 30s: %v\n%s", addr, err, out)
	}
	return f
}

// Stop kills the server, as a crash or a lost network would.
func (f *FerretDB) Stop() {
	if f.cmd.Process != nil && f.cmd.ProcessState == nil {
		f.cmd.Process.Kill()
		f.cmd.Wait()
	}
}
