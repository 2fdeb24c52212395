package testenv

import (
	"context"
	"fmt"
	"os"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// ReplicaApplyDelay is how long the replica Replication makes waits before
// applying each transaction (recovery_min_apply_delay), so that tests see
// it behind the primary as a replica across an ocean would be.
const ReplicaApplyDelay = 300 * time.Millisecond

// ReplicaPair is a throwaway primary and a streaming replica of it.
type ReplicaPair struct {
	Primary, Replica *Cluster
}

// Replication starts a throwaway primary (wal_level=replica) and a hot
// standby streaming from it, made with pg_basebackup -R and applying each
// transaction ReplicaApplyDelay late, each on a free port; both are
// removed when the test ends. It needs PostgreSQL's server binaries
// (initdb, pg_ctl, pg_basebackup) on PATH or in /usr/lib/postgresql/*/bin.
func Replication(t testing.TB) *ReplicaPair {
	t.Helper()
	if _, err := pgBin("pg_basebackup"); err != nil {
		t.Fatalf("pg_basebackup is neither on PATH nor in /usr/lib/postgresql/*/bin (install PostgreSQL's server binaries): %v", err)
	}
	primary := NewCluster(t, ClusterOptions{
		Conf: "wal_level = replica\nmax_wal_senders = 5\nhot_standby = on\n",
		HBA:  "host replication all 127.0.0.1/32 trust\n",
	})
	dir, err := os.MkdirTemp("", "flystorage-pg-replica-")
	if err != nil {
		t.Fatal(err)
	}
	replica := &Cluster{dir: dir, port: freePort(t)}
	t.Cleanup(func() {
		replica.pgctl("stop", "-m", "immediate")
		os.RemoveAll(dir)
	})
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	replica.chown(t, dir)
	if out, err := replica.command("pg_basebackup", "-h", "127.0.0.1", "-p", fmt.Sprint(primary.port), "-U", "postgres",
		"-D", replica.data(), "-R", "-X", "stream", "-c", "fast", "--no-sync").CombinedOutput(); err != nil {
		t.Fatalf("pg_basebackup: %v\n%s", err, out)
	}
	// The copy carries the primary's settings; later lines win.
	replica.appendFile(t, "postgresql.conf", fmt.Sprintf("port = %d\nunix_socket_directories = '%s'\nhot_standby = on\nrecovery_min_apply_delay = '%dms'\n",
		replica.port, dir, ReplicaApplyDelay.Milliseconds()))
	replica.Start(t)
	return &ReplicaPair{Primary: primary, Replica: replica}
}

// PrimaryURL and ReplicaURL are the postgres database on each server.
func (p *ReplicaPair) PrimaryURL() string { return p.Primary.URL("disable") }
func (p *ReplicaPair) ReplicaURL() string { return p.Replica.URL("disable") }

// WaitReplayed waits until the replica has replayed everything the primary
// has written so far, for at most 30 seconds.
func (p *ReplicaPair) WaitReplayed(t testing.TB) {
	t.Helper()
	var target string
	query(t, p.PrimaryURL(), "SELECT pg_current_wal_lsn()::text", &target)
	waitFor(t, 30*time.Second, "the replica to replay the primary's log up to "+target, func() bool {
		var done bool
		query(t, p.ReplicaURL(), "SELECT COALESCE(pg_last_wal_replay_lsn() >= '"+target+"'::pg_lsn, false)", &done)
		return done
	})
}

// ReplicaScans returns how many scans (sequential and index) the replica
// itself has run on table, from its own pg_stat_user_tables: proof that
// reads were served there. Postgres publishes a backend's counts when its
// transaction ends, at most once a second, or when it exits.
func (p *ReplicaPair) ReplicaScans(t testing.TB, table string) int64 {
	t.Helper()
	var n int64
	query(t, p.ReplicaURL(), "SELECT COALESCE(sum(seq_scan + COALESCE(idx_scan, 0)), 0)::bigint FROM pg_stat_user_tables WHERE relname = '"+table+"'", &n)
	return n
}

// WaitReplicaScans waits, for at most 30 seconds, until ReplicaScans(table)
// reaches at least min, and returns it.
func (p *ReplicaPair) WaitReplicaScans(t testing.TB, table string, min int64) int64 {
	t.Helper()
	var n int64
	waitFor(t, 30*time.Second, fmt.Sprintf("the replica to count %d scans of %s", min, table), func() bool {
		n = p.ReplicaScans(t, table)
		return n >= min
	})
	return n
}

// query runs one query on a fresh connection and scans its single row.
func query(t testing.TB, url, sql string, dst ...any) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatalf("connecting to %s: %v", url, err)
	}
	defer conn.Close(ctx)
	if err := conn.QueryRow(ctx, sql).Scan(dst...); err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
}

// waitFor waits until cond holds, failing the test after timeout.
func waitFor(t testing.TB, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	if !Eventually(timeout, cond) {
		t.Fatalf("waited %s for %s", timeout, what)
	}
}
