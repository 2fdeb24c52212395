package replication

import (
	"context"
	"database/sql"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/benbjohnson/litestream"
	"github.com/superfly/ltx"

	"github.com/example/flystorage/internal/config"
	"github.com/example/flystorage/internal/testenv"
)

// TestFollowerCatchesUpFromLevel1: a follower whose next transactions
// are no longer at level 0 (Litestream compacted them into level 1 and
// its L0 retention deleted them) catches up from level 1, then goes on
// from level 0, and its copy holds every row. A real writer, Litestream's
// own compaction and retention, and MinIO make the bucket.
func TestFollowerCatchesUpFromLevel1(t *testing.T) {
	ctx := context.Background()
	w := newTestWriter(t)
	w.insert(3)

	f, err := Follow(ctx, w.options(filepath.Join(t.TempDir(), "copy.db")), "test", false)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close(context.Background()) })
	txid, err := litestream.ReadTXIDFile(f.opts.Path)
	if err != nil {
		t.Fatal(err)
	}

	// The next transactions reach level 1, and leave level 0.
	w.insert(4)
	compactor := litestream.NewCompactor(w.ls, nil)
	l1, err := compactor.Compact(ctx, 1)
	if err != nil {
		t.Fatal(err)
	}
	if err := compactor.EnforceL0Retention(ctx, time.Nanosecond); err != nil {
		t.Fatal(err)
	}
	if l0 := levelFiles(t, w.Client, 0); len(l0) != 1 || l0[0].MaxTXID != l1.MaxTXID {
		t.Fatalf("level 0 after retention = %v, want only the newest file, up to %s", l0, l1.MaxTXID)
	}
	w.insert(2) // then at level 0 again

	got, err := f.applyNew(ctx, txid)
	if err != nil {
		t.Fatal(err)
	}
	if got != l1.MaxTXID {
		t.Fatalf("the first round took the copy from %s to %s, want level 1's %s", txid, got, l1.MaxTXID)
	}
	if got, err = f.applyNew(ctx, got); err != nil {
		t.Fatal(err)
	}
	want, err := w.db.Pos()
	if err != nil {
		t.Fatal(err)
	}
	if got != want.TXID {
		t.Fatalf("the second round took the copy to %s, want the writer's %s", got, want.TXID)
	}

	checkDatabase(t, f.opts.Path, w.rows)
}

// levelFiles lists a level of the replica.
func levelFiles(t *testing.T, c *Client, level int) []*ltx.FileInfo {
	t.Helper()
	itr, err := c.ls.LTXFiles(context.Background(), level, 0, false)
	if err != nil {
		t.Fatal(err)
	}
	defer itr.Close()
	var out []*ltx.FileInfo
	for itr.Next() {
		out = append(out, itr.Item())
	}
	if err := itr.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

// testWriter is a SQLite database replicated to a bucket of MinIO by
// Litestream, one LTX file per transaction, shipped at once.
type testWriter struct {
	*Client
	t      *testing.T
	bucket testenv.S3
	db     *litestream.DB
	sql    *sql.DB
	rows   int
}

func newTestWriter(t *testing.T) *testWriter {
	t.Helper()
	w := &testWriter{t: t, bucket: testenv.S3Bucket(t)}
	path := filepath.Join(t.TempDir(), "writer.db")
	var err error
	if w.Client, err = NewClient(context.Background(), w.options(path)); err != nil {
		t.Fatal(err)
	}
	w.db = litestream.NewDB(path)
	w.db.MonitorInterval = 0
	w.db.Replica = litestream.NewReplicaWithClient(w.db, w.ls)
	if err := w.db.Open(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { w.db.Close(context.Background()) })
	if w.sql, err = sql.Open("sqlite", "file:"+path+"?_pragma=journal_mode(wal)&_pragma=busy_timeout(5000)"); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { w.sql.Close() })
	w.exec("CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT NOT NULL)")
	return w
}

// options are the replication's options for a database at path on the
// writer's bucket. The follow loop never runs on its own: a test drives
// applyNew.
func (w *testWriter) options(path string) Options {
	b := w.bucket
	return Options{
		Config: Config{Enabled: true, Prefix: DefaultPrefix, Durability: Local, SyncInterval: time.Hour, LeaseTTL: 30 * time.Second},
		S3: config.S3{Bucket: b.Bucket, Endpoint: b.Endpoint, Region: b.Region,
			AccessKeyID: b.AccessKeyID, SecretAccessKey: b.SecretAccessKey, PathStyle: true, Timeout: 10 * time.Second},
		Path:    path,
		Machine: "test",
	}
}

// exec runs one statement, a transaction of its own, and ships it.
func (w *testWriter) exec(stmt string) {
	w.t.Helper()
	if _, err := w.sql.Exec(stmt); err != nil {
		w.t.Fatal(err)
	}
	if err := w.db.SyncAndWait(context.Background()); err != nil {
		w.t.Fatal(err)
	}
}

// insert adds n rows, a transaction each.
func (w *testWriter) insert(n int) {
	w.t.Helper()
	for range n {
		w.rows++
		w.exec(fmt.Sprintf("INSERT INTO t (v) VALUES ('row %d')", w.rows))
	}
}

// checkDatabase checks that the database at path holds rows rows of the
// writer's table and passes integrity_check.
func checkDatabase(t *testing.T, path string, rows int) {
	t.Helper()
	db, err := sql.Open("sqlite", "file:"+path+"?mode=ro")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var n int
	var check string
	if err := db.QueryRow("SELECT count(*) FROM t").Scan(&n); err != nil || n != rows {
		t.Errorf("%s holds %d rows (%v), want %d", path, n, err, rows)
	}
	if err := db.QueryRow("PRAGMA integrity_check").Scan(&check); err != nil || check != "ok" {
		t.Errorf("integrity_check on %s = %q, %v", path, check, err)
	}
}
