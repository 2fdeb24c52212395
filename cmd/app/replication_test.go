package main

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awss3 "github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/example/flystorage/internal/replication"
	"github.com/example/flystorage/internal/storage"
	"github.com/example/flystorage/internal/testenv"
)

// The replication suite: SQLite replicated to real MinIO by Litestream,
// with the app in child processes that are killed, stopped, and started
// again on empty volumes.

// replicaEnv is a SQLite app's environment on the bucket, its database in
// a directory of its own (the machine's volume).
func replicaEnv(t *testing.T, bucket testenv.S3, machine string) map[string]string {
	env := bucket.Env()
	env["DATABASE_PATH"] = filepath.Join(t.TempDir(), "volume", "app.db")
	env["FLY_MACHINE_ID"] = machine
	env["SQLITE_LEASE_TTL"] = "3s"
	return env
}

// storageStatus reads /api/storage's "replication".
func storageStatus(t *testing.T, base string) storage.ReplicationStatus {
	t.Helper()
	res, err := crashClient.Get(base + "/api/storage")
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	var out struct {
		Replication *storage.ReplicationStatus
	}
	if err := json.NewDecoder(res.Body).Decode(&out); err != nil {
		t.Fatal(err)
	}
	if out.Replication == nil {
		t.Fatalf("/api/storage has no \"replication\"")
	}
	return *out.Replication
}

// waitReplicated waits (at most 30s) until the bucket holds every
// transaction on the volume, and returns the status then.
func waitReplicated(t *testing.T, base string) storage.ReplicationStatus {
	t.Helper()
	var st storage.ReplicationStatus
	if !testenv.Eventually(30*time.Second, func() bool {
		st = storageStatus(t, base)
		return st.LocalTXID == st.ReplicatedTXID && st.LocalTXID != "0000000000000000"
	}) {
		t.Fatalf("the replica did not catch up within 30s: %+v", st)
	}
	return st
}

// waitInBucket waits (at most 30s) until the replica in the bucket holds
// every note: it restores the replica with `app restore --output` into a
// new file, again and again, and looks for them there.
func waitInBucket(t *testing.T, env map[string]string, notes []ackedWrite) {
	t.Helper()
	dir := t.TempDir()
	probes, missing := 0, len(notes)
	var err error
	if !testenv.Eventually(30*time.Second, func() bool {
		probes++
		out := filepath.Join(dir, fmt.Sprintf("probe-%d.db", probes))
		err = runApp(context.Background(), []string{"restore", "--output", out}, func(k string) string { return env[k] }, io.Discard, io.Discard)
		missing = len(notes)
		if err == nil {
			missing = countMissing(t, out, notes)
		}
		return missing == 0
	}) {
		t.Fatalf("the bucket lacks %d of %d notes after 30s (last restore: %v)", missing, len(notes), err)
	}
}

// countMissing returns how many of the notes the database file lacks.
func countMissing(t *testing.T, path string, notes []ackedWrite) int {
	t.Helper()
	db, err := sql.Open("sqlite", "file:"+path+"?mode=ro")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	missing := 0
	for _, n := range notes {
		var title string
		if err := db.QueryRow("SELECT title FROM notes WHERE id = ?", n.id).Scan(&title); err != nil || title != n.title {
			missing++
		}
	}
	return missing
}

// writeNotes writes n notes and returns them.
func writeNotes(t *testing.T, base, prefix string, n int) []ackedWrite {
	t.Helper()
	var out []ackedWrite
	for i := range n {
		a, ok := writeNote(base, fmt.Sprintf("%s %d", prefix, i), "body of "+prefix)
		if !ok {
			t.Fatalf("writing note %s %d failed", prefix, i)
		}
		out = append(out, a)
	}
	return out
}

// sigterm stops the app as Fly does, and waits for it to exit 0.
func (p *crashProc) sigterm(t *testing.T) {
	t.Helper()
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-p.exited:
		p.exited <- err
		if err != nil {
			t.Fatalf("the app exited with %v after SIGTERM; logs:\n%s", err, p.logs)
		}
	case <-time.After(60 * time.Second):
		t.Fatalf("the app did not exit within 60s of SIGTERM; logs:\n%s", p.logs)
	}
}

// loseVolume deletes the machine's volume, as a new volume, or a machine
// moved to another host, would find it.
func loseVolume(t *testing.T, env map[string]string) {
	t.Helper()
	if err := os.RemoveAll(filepath.Dir(env["DATABASE_PATH"])); err != nil {
		t.Fatal(err)
	}
}

// TestReplicationVolumeLossLocal: under SQLITE_DURABILITY=local, writes
// the bucket holds survive kill -9 and the loss of the volume. The first
// process runs with AWS_CA_BUNDLE set (which breaks Litestream's S3 client
// unless the app hides it), the second without.
func TestReplicationVolumeLossLocal(t *testing.T) {
	bucket := testenv.S3Bucket(t)
	env := replicaEnv(t, bucket, "machine-a")
	withBundle := map[string]string{"AWS_CA_BUNDLE": "/etc/ssl/certs/ca-certificates.crt"}
	for k, v := range env {
		withBundle[k] = v
	}
	if _, err := os.Stat(withBundle["AWS_CA_BUNDLE"]); err != nil {
		t.Fatalf("AWS_CA_BUNDLE's file: %v", err)
	}
	p := startCrashProc(t, withBundle)
	notes := writeNotes(t, p.base, "before", 20)
	waitInBucket(t, env, notes)
	st := waitReplicated(t, p.base)
	if st.Role != "primary" || st.Holder != "machine-a" || st.Machine != "machine-a" || st.Durability != "local" ||
		st.Replica != "s3://"+bucket.Bucket+"/litestream/app.db" || len(st.LocalTXID) != 16 || st.LagSeconds != 0 {
		t.Errorf("/api/storage replication = %+v", st)
	}
	res, err := crashClient.Get(p.base + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	metrics, _ := io.ReadAll(res.Body)
	res.Body.Close()
	for _, m := range []string{"flystorage_sqlite_replication_lag_seconds 0", "flystorage_sqlite_replicated_txid ", "flystorage_sqlite_backup_verified_timestamp_seconds "} {
		if !bytes.Contains(metrics, []byte(m)) {
			t.Errorf("/metrics has no %q", m)
		}
	}
	p.kill()
	loseVolume(t, env)

	q := startCrashProc(t, env)
	if lost := checkAcked(t, q.base, notes); lost > 0 {
		t.Errorf("%d of %d replicated notes lost with the volume", lost, len(notes))
	}
	logs := q.logs.String()
	if !strings.Contains(logs, "restored the database from its replica") || !strings.Contains(logs, "txid="+st.ReplicatedTXID) || !strings.Contains(logs, "took=") {
		t.Errorf("the restore's log names no TXID %s and duration:\n%s", st.ReplicatedTXID, logs)
	}
	if !strings.Contains(logs, "took back this machine's lease") {
		t.Errorf("the same machine did not take its lease back at once:\n%s", logs)
	}
}

// TestReplicationVolumeLossReplicated: under SQLITE_DURABILITY=replicated,
// 16 writers, kill -9 right after the last 201, and the volume lost: every
// acknowledged write is there.
func TestReplicationVolumeLossReplicated(t *testing.T) {
	bucket := testenv.S3Bucket(t)
	env := replicaEnv(t, bucket, "machine-a")
	env["SQLITE_DURABILITY"] = "replicated"
	p := startCrashProc(t, env)
	load := startCrashLoad(p.base, "replicated")
	load.waitAcked(crashAckedBeforeKill, crashLoadTime*3)
	acked := load.finish()
	p.kill()
	if len(acked) < crashAckedBeforeKill/2 {
		t.Fatalf("only %d writes acknowledged before the kill; logs:\n%s", len(acked), p.logs)
	}
	loseVolume(t, env)
	q := startCrashProc(t, env)
	if lost := checkAcked(t, q.base, acked); lost > 0 {
		t.Errorf("%d of %d acknowledged writes lost with the volume under replicated durability", lost, len(acked))
	}
}

// TestReplicationSIGTERM: under local durability, a write then SIGTERM at
// once, and the volume lost: the clean stop shipped every write, and
// released the lease.
func TestReplicationSIGTERM(t *testing.T) {
	bucket := testenv.S3Bucket(t)
	env := replicaEnv(t, bucket, "machine-a")
	env["SQLITE_SYNC_INTERVAL"] = "1h" // nothing ships on its own in time
	p := startCrashProc(t, env)
	notes := writeNotes(t, p.base, "stopped", 10)
	p.sigterm(t)
	if !strings.Contains(p.logs.String(), "released the replica's lease") {
		t.Errorf("no lease release at SIGTERM:\n%s", p.logs)
	}
	loseVolume(t, env)
	env["FLY_MACHINE_ID"] = "machine-b" // another machine gets in at once
	q := startCrashProc(t, env)
	if lost := checkAcked(t, q.base, notes); lost > 0 {
		t.Errorf("%d of %d notes written before SIGTERM lost", lost, len(notes))
	}
	if strings.Contains(q.logs.String(), "waiting for the replica's lease") {
		t.Errorf("machine-b waited for a lease machine-a released:\n%s", q.logs)
	}
}

// TestReplicationSIGTERMBucketDown: a writer told to stop while its
// bucket is down gives its last sync FinalSyncTimeout, well inside
// fly.sqlite.toml's kill_timeout, and exits saying what did not reach the
// replica, rather than retrying until Fly kills it. It keeps the lease, so
// that when it starts again it ships the writes that did not: none is
// lost.
func TestReplicationSIGTERMBucketDown(t *testing.T) {
	m := testenv.NewMinIO(t)
	env := replicaEnv(t, m.S3, "machine-a")
	env["SQLITE_SYNC_INTERVAL"] = "1h" // what the notes wrote is still to ship
	delete(env, "SQLITE_LEASE_TTL")    // the default: the lease outlives the shutdown
	p := startCrashProc(t, env)
	// Litestream has started (its first snapshot is in the bucket); then
	// it reads the notes off the WAL, but does not ship them.
	if !testenv.Eventually(30*time.Second, func() bool { return storageStatus(t, p.base).ReplicatedTXID > "0000000000000000" }) {
		t.Fatalf("Litestream never shipped its first snapshot: %+v", storageStatus(t, p.base))
	}
	notes := writeNotes(t, p.base, "unshipped", 3)
	if !testenv.Eventually(30*time.Second, func() bool {
		st := storageStatus(t, p.base)
		return st.LocalTXID > st.ReplicatedTXID
	}) {
		t.Fatalf("Litestream never read the writes: %+v", storageStatus(t, p.base))
	}
	m.Stop()
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	// No request is in flight, so the drain takes nothing of
	// SHUTDOWN_TIMEOUT: the app is due out after the final sync's budget.
	due := replication.FinalSyncTimeout + 10*time.Second
	select {
	case err := <-p.exited:
		p.exited <- err
	case <-time.After(due):
		t.Fatalf("the app did not exit within %s of SIGTERM with its bucket down; logs:\n%s", due, p.logs)
	}
	logs := p.logs.String()
	if !strings.Contains(logs, "the last sync to s3://"+m.Bucket) || !strings.Contains(logs, "the lease is kept") {
		t.Errorf("no error naming the replica the last sync failed to reach, and the kept lease:\n%s", logs)
	}
	if strings.Contains(logs, "released the replica's lease") {
		t.Errorf("released the lease with writes unshipped:\n%s", logs)
	}

	m.Start(t)
	q := startCrashProc(t, env)
	waitInBucket(t, env, notes)
	if strings.Contains(q.logs.String(), "waiting for the replica's lease") {
		t.Errorf("machine-a waited for its own lease:\n%s", q.logs)
	}
}

// TestReplicationPointInTimeRestore restores to a time between two
// batches of writes with `app restore --timestamp --output`, beside the
// running app: the file holds exactly the first batch, and the live
// database is untouched.
func TestReplicationPointInTimeRestore(t *testing.T) {
	bucket := testenv.S3Bucket(t)
	env := replicaEnv(t, bucket, "machine-a")
	a := startApp(t, env)
	first := writeNotes(t, a.url, "first", 5)
	waitInBucket(t, env, first)
	between := time.Now().UTC().Truncate(time.Millisecond)
	second := writeNotes(t, a.url, "second", 5)
	waitInBucket(t, env, second)

	out := filepath.Join(t.TempDir(), "then.db")
	getenv := func(k string) string { return env[k] }
	var stdout, stderr bytes.Buffer
	if err := runApp(context.Background(), []string{"restore", "--timestamp", between.Format(time.RFC3339Nano), "--output", out}, getenv, &stdout, &stderr); err != nil {
		t.Fatalf("app restore --timestamp: %v\n%s", err, stderr.String())
	}
	db, err := sql.Open("sqlite", "file:"+out+"?mode=ro")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	titles := map[string]bool{}
	rows, err := db.Query("SELECT title FROM notes")
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		var s string
		rows.Scan(&s)
		titles[s] = true
	}
	rows.Close()
	for _, n := range first {
		if !titles[n.title] {
			t.Errorf("the restore at %s lacks %q, written before", between, n.title)
		}
	}
	for _, n := range second {
		if titles[n.title] {
			t.Errorf("the restore at %s holds %q, written after", between, n.title)
		}
	}
	if len(titles) != len(first) {
		t.Errorf("the restore holds %d notes, want %d", len(titles), len(first))
	}
	for _, n := range append(first, second...) {
		if p := readBack(a.url, n); p != "" {
			t.Errorf("the live database after the restore: %s: %s", n.title, p)
		}
	}

	// The live database is held by the app: a restore onto it is refused,
	// and so is a past time without --output.
	if err := runApp(context.Background(), []string{"restore", "--force"}, getenv, &stdout, &stderr); err == nil || !strings.Contains(err.Error(), "open in a running app") {
		t.Errorf("app restore --force beside the running app = %v, want a refusal", err)
	}
	if err := runApp(context.Background(), []string{"restore", "--timestamp", between.Format(time.RFC3339)}, getenv, &stdout, &stderr); err == nil || !strings.Contains(err.Error(), "--output") {
		t.Errorf("app restore --timestamp without --output = %v, want a usage error", err)
	}
}

// TestReplicationVerify: `app verify` passes on a good replica, and fails,
// naming the problem, on a corrupted one and an emptied one.
func TestReplicationVerify(t *testing.T) {
	bucket := testenv.S3Bucket(t)
	env := replicaEnv(t, bucket, "machine-a")
	a := startApp(t, env)
	writeNotes(t, a.url, "verified", 5)
	a.stop()
	getenv := func(k string) string { return env[k] }
	var stdout bytes.Buffer
	if err := runApp(context.Background(), []string{"verify"}, getenv, &stdout, io.Discard); err != nil {
		t.Fatalf("app verify on a good replica: %v", err)
	}
	if !strings.Contains(stdout.String(), "verified s3://"+bucket.Bucket+"/litestream/app.db: TXID ") {
		t.Errorf("app verify printed %q", stdout.String())
	}

	// Corrupt every LTX file: garbage in place of each.
	client := bucket.Client()
	ctx := context.Background()
	list, err := client.ListObjectsV2(ctx, &awss3.ListObjectsV2Input{Bucket: &bucket.Bucket, Prefix: aws.String("litestream/app.db/00")})
	if err != nil || len(list.Contents) == 0 {
		t.Fatalf("listing the replica: %v, %d objects", err, len(list.Contents))
	}
	for _, o := range list.Contents {
		if _, err := client.PutObject(ctx, &awss3.PutObjectInput{Bucket: &bucket.Bucket, Key: o.Key, Body: strings.NewReader(strings.Repeat("garbage ", 64))}); err != nil {
			t.Fatal(err)
		}
	}
	err = runApp(ctx, []string{"verify"}, getenv, io.Discard, io.Discard)
	if err == nil || !strings.Contains(err.Error(), "failed verification") {
		t.Errorf("app verify on a corrupted replica = %v, want a failure naming it", err)
	}

	for _, o := range list.Contents {
		if _, err := client.DeleteObject(ctx, &awss3.DeleteObjectInput{Bucket: &bucket.Bucket, Key: o.Key}); err != nil {
			t.Fatal(err)
		}
	}
	err = runApp(ctx, []string{"verify"}, getenv, io.Discard, io.Discard)
	if err == nil || !strings.Contains(err.Error(), "holds no LTX files") {
		t.Errorf("app verify on an emptied replica = %v, want a failure naming it", err)
	}
}

// waitLog waits (at most d) for the app to log s.
func (p *crashProc) waitLog(t *testing.T, s string, d time.Duration) {
	t.Helper()
	if !testenv.Eventually(d, func() bool { return strings.Contains(p.logs.String(), s) }) {
		t.Fatalf("no %q in the log within %s:\n%s", s, d, p.logs)
	}
}

// TestReplicationLease runs two machines on one replica: exactly one
// writes, the other follows; the writer restarted after kill -9 with its
// own id writes again at once; writes to the follower are replayed to the
// writer (fly-replay: instance=, through the test's replay proxy); the
// follower serves reads with the writer frozen (kill -STOP); and once the
// writer dies for good, the follower takes the lease when it expires,
// restarts as the writer (as Fly restarts a machine whose process exits
// with an error), and serves every note.
func TestReplicationLease(t *testing.T) {
	bucket := testenv.S3Bucket(t)
	envA := replicaEnv(t, bucket, "machine-a")
	envB := replicaEnv(t, bucket, "machine-b")
	// Long enough for the follower to serve reads while the writer is
	// frozen, before it takes over.
	envA["SQLITE_LEASE_TTL"], envB["SQLITE_LEASE_TTL"] = "10s", "10s"
	a := startCrashProc(t, envA)
	notes := writeNotes(t, a.base, "from a", 5)
	waitInBucket(t, envA, notes)
	b := startCrashProc(t, envB)
	if st := storageStatus(t, b.base); st.Role != "follower" || st.Holder != "machine-a" || st.Machine != "machine-b" {
		t.Errorf("machine-b's /api/storage replication = %+v, want a follower of machine-a", st)
	}
	if !strings.Contains(b.logs.String(), "following the replica") {
		t.Errorf("machine-b does not say it follows:\n%s", b.logs)
	}
	if lost := checkAcked(t, b.base, notes); lost > 0 {
		t.Errorf("the follower lacks %d of %d replicated notes", lost, len(notes))
	}

	a.kill()
	a = startCrashProc(t, envA) // listens: it took its lease back at once
	if !strings.Contains(a.logs.String(), "took back this machine's lease") {
		t.Errorf("machine-a restarted did not take its lease back:\n%s", a.logs)
	}

	// Writes reach the follower first and land on the writer, once each.
	proxy := testenv.NewReplayProxy(t, map[string]string{"ord": b.base, "machine-a": a.base})
	for i := range 5 {
		req, _ := http.NewRequest("POST", proxy.URL+"/api/notes", strings.NewReader(fmt.Sprintf(`{"title":"via b %d"}`, i)))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set(testenv.EntryRegionHeader, "ord")
		res, err := crashClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		var out struct{ ID string }
		json.NewDecoder(res.Body).Decode(&out)
		res.Body.Close()
		if res.StatusCode != 201 {
			t.Fatalf("a write through the follower: %d", res.StatusCode)
		}
		notes = append(notes, ackedWrite{id: out.ID, kind: "note", title: fmt.Sprintf("via b %d", i)})
	}
	for _, h := range proxy.Hops() {
		if h.Region == "ord" && (h.Status != 409 || h.ReplayTo != "machine-a") || h.Region == "machine-a" && h.Status != 201 {
			t.Errorf("hop %+v: want the follower to replay to machine-a, which writes", h)
		}
	}
	if n := len(proxy.Hops()); n != 10 {
		t.Errorf("%d hops for 5 writes, want 10 (each once on b, once on a)", n)
	}
	waitInBucket(t, envA, notes)

	// The follower serves reads with the writer frozen.
	if err := a.cmd.Process.Signal(syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	// Within the lease's TTL.
	if !testenv.Eventually(8*time.Second, func() bool { return checkAckedQuiet(b.base, notes) == 0 }) {
		t.Logf("the follower's file lacks %d notes", countMissing(t, envB["DATABASE_PATH"], notes))
		t.Fatalf("the follower did not catch up with the frozen writer's notes in 8s: %+v; logs:\n%s", storageStatus(t, b.base), b.logs)
	}
	a.cmd.Process.Signal(syscall.SIGCONT)

	// A follower stopped stops cleanly.
	c := startCrashProc(t, replicaEnv(t, bucket, "machine-c"))
	c.sigterm(t)

	// The writer dies: the follower takes over once its lease expires.
	a.kill()
	select {
	case err := <-b.exited:
		b.exited <- err
		if err == nil || !strings.Contains(b.logs.String(), "took the replica's lease") {
			t.Fatalf("machine-b exited with %v; logs:\n%s", err, b.logs)
		}
	case <-time.After(60 * time.Second):
		t.Fatalf("machine-b did not take over within 60s of machine-a's death; logs:\n%s", b.logs)
	}
	b = startCrashProc(t, envB)
	if lost := checkAcked(t, b.base, notes); lost > 0 {
		t.Errorf("machine-b, the writer after machine-a died, lacks %d of %d notes", lost, len(notes))
	}
	expect(t, "a write on the new writer", response{status: mustPost(t, b.base)}, 201)
	if st := storageStatus(t, b.base); st.Role != "primary" || st.Holder != "machine-b" {
		t.Errorf("after the takeover, /api/storage says %+v", st)
	}
}

// checkAckedQuiet returns how many of the writes base lacks, without
// failing the test.
func checkAckedQuiet(base string, acked []ackedWrite) int {
	n := 0
	for _, a := range acked {
		if readBack(base, a) != "" {
			n++
		}
	}
	return n
}

func mustPost(t *testing.T, base string) int {
	res, err := crashClient.Post(base+"/api/notes", "application/json", strings.NewReader(`{"title":"b writes"}`))
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	return res.StatusCode
}

// TestReplicationBucketDown: a replicated SQLite app whose bucket cannot be
// reached does not start, and says which replica it could not reach; it
// never opened a database it could not protect.
func TestReplicationBucketDown(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closed := ln.Addr().String()
	ln.Close()
	env := map[string]string{
		"DATABASE_PATH":         filepath.Join(t.TempDir(), "app.db"),
		"BUCKET_NAME":           "nowhere",
		"AWS_ENDPOINT_URL_S3":   "http://" + closed,
		"AWS_ACCESS_KEY_ID":     "key",
		"AWS_SECRET_ACCESS_KEY": "secret-that-must-not-leak",
	}
	err = runApp(context.Background(), nil, func(k string) string { return env[k] }, io.Discard, io.Discard)
	if err == nil || !strings.Contains(err.Error(), "taking the lease on s3://nowhere/litestream/app.db") || strings.Contains(err.Error(), "secret-that-must-not-leak") {
		t.Errorf("start with the bucket down = %v, want an error naming the replica", err)
	}
	if _, err := os.Stat(env["DATABASE_PATH"]); err == nil {
		t.Errorf("the app made a database it cannot replicate")
	}
}

// TestReplicationLeaseLost: a writer whose lease another machine took
// stops shipping to the replica at once, and exits with an error: the
// replica holds nothing it wrote after the loss.
func TestReplicationLeaseLost(t *testing.T) {
	bucket := testenv.S3Bucket(t)
	env := replicaEnv(t, bucket, "machine-a")
	p := startCrashProc(t, env)
	notes := writeNotes(t, p.base, "before", 5)
	waitInBucket(t, env, notes)
	ctx := context.Background()
	client := bucket.Client()
	keys := func() map[string]bool {
		out, err := client.ListObjectsV2(ctx, &awss3.ListObjectsV2Input{Bucket: &bucket.Bucket, Prefix: aws.String("litestream/app.db/00")})
		if err != nil {
			t.Fatal(err)
		}
		m := map[string]bool{}
		for _, o := range out.Contents {
			m[*o.Key] = true
		}
		return m
	}
	lease := fmt.Sprintf(`{"generation":99,"expires_at":%q,"owner":"machine-b"}`, time.Now().Add(time.Hour).UTC().Format(time.RFC3339Nano))
	if _, err := client.PutObject(ctx, &awss3.PutObjectInput{Bucket: &bucket.Bucket, Key: aws.String("litestream/app.db/lock.json"), Body: strings.NewReader(lease)}); err != nil {
		t.Fatal(err)
	}
	p.waitLog(t, "stopped writing to the replica", 30*time.Second)
	before := keys()
	writeNote(p.base, "after the loss", "must not reach the replica") // may be refused: the server is stopping
	select {
	case err := <-p.exited:
		p.exited <- err
		if err == nil || !strings.Contains(p.logs.String(), "lost the replica's lease") {
			t.Errorf("the writer that lost its lease exited with %v; logs:\n%s", err, p.logs)
		}
	case <-time.After(60 * time.Second):
		t.Fatalf("the writer that lost its lease did not exit; logs:\n%s", p.logs)
	}
	for k := range keys() {
		if !before[k] {
			t.Errorf("the writer shipped %s after it lost the lease", k)
		}
	}
}

// TestReplicationVerifyJob: the writer verifies the replica every
// BACKUP_VERIFY_INTERVAL, and /api/storage and /metrics show the commit
// time of the newest state that passed.
func TestReplicationVerifyJob(t *testing.T) {
	bucket := testenv.S3Bucket(t)
	env := replicaEnv(t, bucket, "machine-a")
	env["BACKUP_VERIFY_INTERVAL"] = "100ms"
	a := startApp(t, env)
	writeNotes(t, a.url, "checked", 3)
	var st storage.ReplicationStatus
	if !testenv.Eventually(30*time.Second, func() bool { st = storageStatus(t, a.url); return st.LastVerified != "" }) {
		t.Fatalf("no verified backup within 30s; logs:\n%s", a.logs)
	}
	at, err := time.Parse(time.RFC3339, st.LastVerified)
	if err != nil || time.Since(at) > time.Minute {
		t.Errorf("last_verified %q: %v, want a recent RFC 3339 time", st.LastVerified, err)
	}
	if !strings.Contains(a.logs.String(), `msg="backup verified"`) {
		t.Errorf("no \"backup verified\" in the log")
	}
	metrics := a.get(t, "/metrics")
	if bytes.Contains(metrics.body, []byte("flystorage_sqlite_backup_verified_timestamp_seconds 0\n")) ||
		!bytes.Contains(metrics.body, []byte("flystorage_sqlite_backup_verified_timestamp_seconds ")) {
		t.Errorf("/metrics does not show the verified backup's time")
	}
}

// TestReplicationRestoreInPlace: `app restore --force` puts the replica's
// newest state onto DATABASE_PATH while no server runs, and the next
// server goes on replicating from it; --if-missing leaves a database be.
func TestReplicationRestoreInPlace(t *testing.T) {
	bucket := testenv.S3Bucket(t)
	env := replicaEnv(t, bucket, "machine-a")
	a := startApp(t, env)
	notes := writeNotes(t, a.url, "kept", 5)
	a.stop()
	getenv := func(k string) string { return env[k] }
	var stdout bytes.Buffer
	if err := runApp(context.Background(), []string{"restore", "--if-missing"}, getenv, &stdout, io.Discard); err != nil || !strings.Contains(stdout.String(), "nothing restored") {
		t.Errorf("app restore --if-missing over a database: %v, %q", err, stdout.String())
	}
	if err := runApp(context.Background(), []string{"restore"}, getenv, io.Discard, io.Discard); err == nil || !strings.Contains(err.Error(), "--force") {
		t.Errorf("app restore over a database without --force = %v, want a refusal", err)
	}
	stdout.Reset()
	if err := runApp(context.Background(), []string{"restore", "--force"}, getenv, &stdout, io.Discard); err != nil || !strings.Contains(stdout.String(), "restored s3://") {
		t.Fatalf("app restore --force: %v, %q", err, stdout.String())
	}
	b := startApp(t, env)
	for _, n := range notes {
		if p := readBack(b.url, n); p != "" {
			t.Errorf("%s after the restore: %s", n.title, p)
		}
	}
	more := writeNotes(t, b.url, "after the restore", 3)
	waitInBucket(t, env, append(notes, more...))
}

// TestReplicationStaleVolume: a machine that wrote once, then stood down
// while another machine wrote, finds its volume behind the bucket when it
// writes again: it sets the old file aside and restores the replica, so
// it never ships transactions on top of the other machine's.
func TestReplicationStaleVolume(t *testing.T) {
	bucket := testenv.S3Bucket(t)
	envA := replicaEnv(t, bucket, "machine-a")
	envB := replicaEnv(t, bucket, "machine-b")
	a := startCrashProc(t, envA)
	notes := writeNotes(t, a.base, "from a", 3)
	a.sigterm(t)
	b := startCrashProc(t, envB)
	notes = append(notes, writeNotes(t, b.base, "from b", 3)...)
	b.sigterm(t)

	a = startCrashProc(t, envA)
	if !strings.Contains(a.logs.String(), "restoring the replica over the volume's database") {
		t.Errorf("machine-a did not restore over its stale volume:\n%s", a.logs)
	}
	if lost := checkAcked(t, a.base, notes); lost > 0 {
		t.Errorf("machine-a back as the writer lacks %d of %d notes", lost, len(notes))
	}
	more := writeNotes(t, a.base, "from a again", 3)
	waitInBucket(t, envA, append(notes, more...))
	matches, _ := filepath.Glob(envA["DATABASE_PATH"] + ".behind-*")
	if len(matches) == 0 {
		t.Errorf("the stale database was not kept aside")
	}
}

// TestReplicationReadYourWrites: 200 write-then-read pairs enter at a
// follower. Each write lands on the writer and carries its TXID as the
// consistency token; each read with that token is served by the follower
// only once its copy holds the write, and replayed to the writer
// otherwise: it is never stale.
func TestReplicationReadYourWrites(t *testing.T) {
	bucket := testenv.S3Bucket(t)
	envA := replicaEnv(t, bucket, "machine-a")
	envB := replicaEnv(t, bucket, "machine-b")
	for _, env := range []map[string]string{envA, envB} {
		env["FLY_REGION"], env["PRIMARY_REGION"], env["REPLICA_WAIT"] = "ord", "ord", "50ms"
	}
	a := startCrashProc(t, envA)
	b := startCrashProc(t, envB)
	if st := storageStatus(t, b.base); st.Role != "follower" {
		t.Fatalf("machine-b is %q, want a follower", st.Role)
	}
	proxy := testenv.NewReplayProxy(t, map[string]string{"ord": b.base, "machine-a": a.base})
	send := func(method, path, body, token string) (*http.Response, []byte) {
		req, _ := http.NewRequest(method, proxy.URL+path, strings.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set(testenv.EntryRegionHeader, "ord")
		if token != "" {
			req.Header.Set("Consistency-Token", token)
		}
		res, err := crashClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		out, _ := io.ReadAll(res.Body)
		return res, out
	}
	stale := 0
	for i := range 200 {
		title := fmt.Sprintf("pair %d", i)
		res, body := send("POST", "/api/notes", fmt.Sprintf(`{"title":%q}`, title), "")
		var note struct{ ID, Title string }
		json.Unmarshal(body, &note)
		token := res.Header.Get("Consistency-Token")
		if res.StatusCode != 201 || token == "" {
			t.Fatalf("write %d: %d, token %q: %s", i, res.StatusCode, token, body)
		}
		res, body = send("GET", "/api/notes/"+note.ID, "", token)
		json.Unmarshal(body, &note)
		if res.StatusCode != 200 || note.Title != title {
			stale++
			if stale <= 5 {
				t.Errorf("read %d after its write: %d %s", i, res.StatusCode, body)
			}
		}
	}
	servedHere := func() int {
		n := 0
		for _, h := range proxy.Hops() {
			if h.Method == "GET" && h.Region == "ord" && h.Status == 200 {
				n++
			}
		}
		return n
	}
	t.Logf("200 write-then-read pairs: %d stale, %d reads served by the follower, the rest replayed to the writer", stale, servedHere())

	// Once the follower's copy holds the last write, a read with its
	// token is served there.
	res, body := send("POST", "/api/notes", `{"title":"last"}`, "")
	var last struct{ ID, Title string }
	json.Unmarshal(body, &last)
	token := res.Header.Get("Consistency-Token")
	before := servedHere()
	if !testenv.Eventually(30*time.Second, func() bool {
		res, body = send("GET", "/api/notes/"+last.ID, "", token)
		if res.StatusCode != 200 || !strings.Contains(string(body), `"last"`) {
			t.Fatalf("read with the token: %d %s", res.StatusCode, body)
		}
		return servedHere() != before
	}) {
		t.Fatalf("the follower never served a read with the token %s: %+v", token, storageStatus(t, b.base))
	}
}

// TestReplicationFailoverReplicated: under SQLITE_DURABILITY=replicated,
// 16 writers on the writer, kill -9 right after the last 201: the
// follower takes the lease when it expires, restarts as the writer, takes
// writes, and has every acknowledged write.
func TestReplicationFailoverReplicated(t *testing.T) {
	bucket := testenv.S3Bucket(t)
	envA := replicaEnv(t, bucket, "machine-a")
	envB := replicaEnv(t, bucket, "machine-b")
	envA["SQLITE_DURABILITY"], envB["SQLITE_DURABILITY"] = "replicated", "replicated"
	a := startCrashProc(t, envA)
	b := startCrashProc(t, envB)
	if st := storageStatus(t, b.base); st.Role != "follower" {
		t.Fatalf("machine-b is %q, want a follower", st.Role)
	}
	load := startCrashLoad(a.base, "failover")
	load.waitAcked(crashAckedBeforeKill, crashLoadTime*3)
	acked := load.finish()
	a.kill()
	if len(acked) < crashAckedBeforeKill/2 {
		t.Fatalf("only %d writes acknowledged before the kill", len(acked))
	}
	select {
	case err := <-b.exited:
		b.exited <- err
		if err == nil {
			t.Fatalf("machine-b exited cleanly; want the takeover's restart; logs:\n%s", b.logs)
		}
	case <-time.After(60 * time.Second):
		t.Fatalf("machine-b did not take over within 60s; logs:\n%s", b.logs)
	}
	b = startCrashProc(t, envB)
	if lost := checkAcked(t, b.base, acked); lost > 0 {
		t.Errorf("%d of %d acknowledged writes lost in the failover under replicated durability", lost, len(acked))
	}
	expect(t, "a write on the new writer", response{status: mustPost(t, b.base)}, 201)
}
