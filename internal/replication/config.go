package replication

import (
	"fmt"
	"strings"
	"time"

	"github.com/benbjohnson/litestream"

	"github.com/example/flystorage/internal/config"
)

// Vars documents the variables Load reads. They matter only with SQLite
// and a bucket (BUCKET_NAME); docs/sqlite.md explains them.
var Vars = []config.Var{
	{Name: "SQLITE_REPLICATION", Group: "SQLite replication", Default: "on",
		Doc: "on: with SQLite and a bucket, Litestream replicates every transaction to the bucket under SQLITE_REPLICA_PREFIX and restores an empty volume from it. off: no replica (the database lives on the volume alone)."},
	{Name: "SQLITE_REPLICA_PREFIX", Group: "SQLite replication", Default: DefaultPrefix,
		Doc: "Where the replica lives in the bucket: Litestream's LTX files under PREFIX/ltx/, the writer's lease at PREFIX/lock.json. Every machine of the app shares it."},
	{Name: "SQLITE_DURABILITY", Group: "SQLite replication", Default: "local",
		Doc: "local: a write is acknowledged once committed on the volume, and reaches the bucket within SQLITE_SYNC_INTERVAL. replicated: once its transaction is in the bucket, so losing the volume loses no acknowledged write."},
	{Name: "SQLITE_SYNC_INTERVAL", Group: "SQLite replication", Default: "1s",
		Doc: "How often Litestream ships new transactions to the bucket (under local durability, the most a lost volume loses)."},
	{Name: "SQLITE_SNAPSHOT_INTERVAL", Group: "SQLite replication", Default: "24h",
		Doc: "How often Litestream writes a full snapshot of the database to the bucket; a restore starts from the newest one."},
	{Name: "SQLITE_RETENTION", Group: "SQLite replication", Default: "24h",
		Doc: "How long snapshots (and so point-in-time restore) reach back; older ones are deleted."},
	{Name: "SQLITE_LEASE_TTL", Group: "SQLite replication", Default: "30s",
		Doc: "How long the writer's lease on the replica lasts unless renewed (every third of it). Another machine may take over this long after the writer dies."},
	{Name: "BACKUP_VERIFY_INTERVAL", Group: "SQLite replication", Default: "1h",
		Doc: "How often the writer restores the newest replicated state into a temporary file and checks it (PRAGMA integrity_check, its TXID); 0 turns it off. `app verify` does it once."},
}

// DefaultPrefix is where the replica lives in the bucket unless
// SQLITE_REPLICA_PREFIX says otherwise.
const DefaultPrefix = "litestream/app.db"

// Durability is when a write is acknowledged (SQLITE_DURABILITY).
type Durability string

const (
	// Local acknowledges a write once it is committed on the volume.
	Local Durability = "local"
	// Replicated acknowledges a write once its transaction is in the
	// bucket.
	Replicated Durability = "replicated"
)

// Config is the replication's configuration.
type Config struct {
	Enabled      bool
	Prefix       string
	Durability   Durability
	SyncInterval time.Duration
	// SnapshotInterval and Retention are Litestream's snapshot interval
	// and snapshot retention.
	SnapshotInterval time.Duration
	Retention        time.Duration
	LeaseTTL         time.Duration
	VerifyInterval   time.Duration
}

// Load reads the replication's variables through getenv. Its errors are
// *config.Error values naming the variable.
func Load(getenv func(string) string) (Config, error) {
	env := config.NewEnv(getenv)
	c := Config{Enabled: true, Prefix: DefaultPrefix, Durability: Local}
	switch v := strings.ToLower(env("SQLITE_REPLICATION")); v {
	case "", "on":
	case "off":
		c.Enabled = false
	default:
		return c, &config.Error{Var: "SQLITE_REPLICATION", Msg: fmt.Sprintf("%q is not on or off", v)}
	}
	if v := env("SQLITE_REPLICA_PREFIX"); v != "" {
		c.Prefix = strings.Trim(v, "/")
		if c.Prefix == "" || strings.Contains(c.Prefix, "//") {
			return c, &config.Error{Var: "SQLITE_REPLICA_PREFIX", Msg: fmt.Sprintf("%q is not a path such as %s", v, DefaultPrefix)}
		}
	}
	switch v := strings.ToLower(env("SQLITE_DURABILITY")); v {
	case "", "local":
	case "replicated":
		c.Durability = Replicated
	default:
		return c, &config.Error{Var: "SQLITE_DURABILITY", Msg: fmt.Sprintf("%q is not local or replicated", v)}
	}
	var err error
	for _, d := range []struct {
		name string
		def  time.Duration
		dst  *time.Duration
		min  time.Duration
	}{
		{"SQLITE_SYNC_INTERVAL", litestream.DefaultSyncInterval, &c.SyncInterval, 10 * time.Millisecond},
		{"SQLITE_SNAPSHOT_INTERVAL", litestream.DefaultSnapshotInterval, &c.SnapshotInterval, time.Second},
		{"SQLITE_RETENTION", litestream.DefaultSnapshotRetention, &c.Retention, time.Second},
		{"SQLITE_LEASE_TTL", 30 * time.Second, &c.LeaseTTL, 3 * time.Second},
		{"BACKUP_VERIFY_INTERVAL", time.Hour, &c.VerifyInterval, 0},
	} {
		if *d.dst, err = env.Duration(d.name, d.def); err != nil {
			return c, err
		}
		if *d.dst < d.min && (*d.dst != 0 || d.name != "BACKUP_VERIFY_INTERVAL") {
			return c, &config.Error{Var: d.name, Msg: fmt.Sprintf("%s is shorter than %s", *d.dst, d.min)}
		}
	}
	return c, nil
}
