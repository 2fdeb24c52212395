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
	bucket := testenv.S3Bucket(t)
	dir := t.TempDir()
	opts := func(path string) Options {
		return Options{
			Config: Config{Enabled: true, Prefix: DefaultPrefix, Durability: Local,
				SyncInterval: time.Hour, // the follow loop never runs: the test drives applyNew
				LeaseTTL:     30 * time.Second},
			S3: config.S3{Bucket: bucket.Bucket, Endpoint: bucket.Endpoint, Region: bucket.Region,
				AccessKeyID: bucket.AccessKeyID, SecretAccessKey: bucket.SecretAccessKey, PathStyle: true, Timeout: 10 * time.Second},
			Path:    path,
			Machine: "test",
		}
	}

	// The writer: one LTX file per transaction, shipped at once.
	c, err := NewClient(ctx, opts(filepath.Join(dir, "writer.db")))
	if err != nil {
		t.Fatal(err)
	}
	ldb := litestream.NewDB(filepath.Join(dir, "writer.db"))
	ldb.MonitorInterval = 0
	ldb.Replica = litestream.NewReplicaWithClient(ldb, c.ls)
	if err := ldb.Open(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ldb.Close(context.Background()) })
	writer, err := sql.Open("sqlite", "file:"+ldb.Path()+"?_pragma=journal_mode(wal)&_pragma=busy_timeout(5000)")
	if err != nil {
		t.Fatal(err)
	}
	defer writer.Close()
	rows := 0
	write := func(stmt string) {
		t.Helper()
		if _, err := writer.Exec(stmt); err != nil {
			t.Fatal(err)
		}
		if err := ldb.SyncAndWait(ctx); err != nil {
			t.Fatal(err)
		}
	}
	insert := func(n int) {
		t.Helper()
		for range n {
			rows++
			write(fmt.Sprintf("INSERT INTO t (v) VALUES ('row %d')", rows))
		}
	}
	write("CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT NOT NULL)")
	insert(3)

	f, err := Follow(ctx, opts(filepath.Join(dir, "copy.db")), "test", false)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close(context.Background()) })
	txid, err := litestream.ReadTXIDFile(f.opts.Path)
	if err != nil {
		t.Fatal(err)
	}

	// The next transactions reach level 1, and leave level 0.
	insert(4)
	compactor := litestream.NewCompactor(c.ls, nil)
	l1, err := compactor.Compact(ctx, 1)
	if err != nil {
		t.Fatal(err)
	}
	if err := compactor.EnforceL0Retention(ctx, time.Nanosecond); err != nil {
		t.Fatal(err)
	}
	if l0 := levelFiles(t, c, 0); len(l0) != 1 || l0[0].MaxTXID != l1.MaxTXID {
		t.Fatalf("level 0 after retention = %v, want only the newest file, up to %s", l0, l1.MaxTXID)
	}
	insert(2) // then at level 0 again

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
	want, err := ldb.Pos()
	if err != nil {
		t.Fatal(err)
	}
	if got != want.TXID {
		t.Fatalf("the second round took the copy to %s, want the writer's %s", got, want.TXID)
	}

	copyDB, err := sql.Open("sqlite", "file:"+f.opts.Path+"?mode=ro")
	if err != nil {
		t.Fatal(err)
	}
	defer copyDB.Close()
	var n int
	var check string
	if err := copyDB.QueryRow("SELECT count(*) FROM t").Scan(&n); err != nil || n != rows {
		t.Errorf("the copy holds %d rows (%v), want %d", n, err, rows)
	}
	if err := copyDB.QueryRow("PRAGMA integrity_check").Scan(&check); err != nil || check != "ok" {
		t.Errorf("integrity_check on the copy = %q, %v", check, err)
	}
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
