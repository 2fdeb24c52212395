package app

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/example/flystorage/internal/cache"
	"github.com/example/flystorage/internal/config"
	"github.com/example/flystorage/internal/region"
	"github.com/example/flystorage/internal/replication"
	"github.com/example/flystorage/internal/storage"
	"github.com/example/flystorage/internal/storage/sqlite"
)

// replicationOptions returns what the replication needs, and whether it
// applies: SQLite, a bucket, and SQLITE_REPLICATION not off.
func replicationOptions(setup Setup, log *slog.Logger) (replication.Options, bool) {
	src, isSQLite := setup.DB.(sqlite.Source)
	if !isSQLite || setup.Config.S3 == nil || !setup.Replication.Enabled {
		return replication.Options{}, false
	}
	return replicationOptionsFor(setup, src, log), true
}

// replicationOptionsFor fills in the options for the SQLite source.
func replicationOptionsFor(setup Setup, src sqlite.Source, log *slog.Logger) replication.Options {
	machine := setup.Config.MachineID
	if machine == "" {
		machine, _ = os.Hostname() // off Fly
	}
	return replication.Options{Config: setup.Replication, S3: *setup.Config.S3, Path: src.Path, Machine: machine, Logger: log}
}

// replicaNode is this machine's part in SQLite's replication: the
// writer (*replication.Replicator) or a follower (*replication.Follower).
type replicaNode interface {
	Attach(storage.Database) error
	Register(prometheus.Registerer) error
	ReplicationStatus() storage.ReplicationStatus
	// Holder is the writer's machine id; Following is true on a follower.
	Holder() string
	Following() bool
	// Lost is closed when the machine must stop serving in its role: the
	// writer lost its lease, or a follower took it. Err says which.
	Lost() <-chan struct{}
	Err() error
	Close(context.Context) error
}

// openReplication makes this machine the SQLite database's writer, or,
// while another machine holds the replica's lease, a follower that reads
// a copy kept current from the bucket (docs/sqlite.md); before the
// database opens. Only a machine in the primary region writes. For a
// follower it changes setup: the database opens read-only, and the sweep
// (which deletes what no row names) does not run. It returns nil when
// replication does not apply, and a context that ends when the machine
// must stop serving in its role.
func openReplication(ctx context.Context, setup *Setup, log *slog.Logger) (replicaNode, context.Context, error) {
	o, ok := replicationOptions(*setup, log)
	if !ok {
		return nil, ctx, nil
	}
	var node replicaNode
	if !setup.Region.Replica() {
		o.Follow = true
		repl, err := replication.Open(ctx, o)
		var held *replication.HeldError
		switch {
		case err == nil:
			node = repl
		case !errors.As(err, &held):
			return nil, ctx, err
		default:
			if node, err = follow(ctx, setup, o, held.Holder, true); err != nil {
				return nil, ctx, err
			}
		}
	} else {
		c, err := replication.NewClient(ctx, o)
		if err != nil {
			return nil, ctx, err
		}
		holder, live, err := c.LeaseHolder(ctx)
		if err != nil {
			return nil, ctx, fmt.Errorf("reading the lease on %s: %w", c.URL(), err)
		}
		if !live {
			holder = ""
		}
		if node, err = follow(ctx, setup, o, holder, false); err != nil {
			return nil, ctx, err
		}
	}
	ctx, cancel := context.WithCancel(ctx)
	go func() {
		<-node.Lost()
		cancel()
	}()
	return node, ctx, nil
}

// follow starts following the replica and points setup at the copy.
func follow(ctx context.Context, setup *Setup, o replication.Options, holder string, canTakeOver bool) (replicaNode, error) {
	f, err := replication.Follow(ctx, o, holder, canTakeOver)
	if err != nil {
		return nil, err
	}
	setup.DB = sqlite.Source{Path: o.Path, Follower: true, Reads: f.Reads()}
	setup.Config.SweepInterval = 0
	return f, nil
}

// sqliteRouting sets the region rules for a replicated SQLite machine: a
// follower serves reads from its copy, waiting for a read's consistency
// token, and replays writes to the writer, whose writes carry their
// TXID as the token.
func sqliteRouting(o *region.Options, repl replicaNode) {
	if f, ok := repl.(*replication.Follower); ok {
		o.Holder, o.Local, o.Replica = f.Holder, false, f
		return
	}
	if w, ok := repl.(*replication.Replicator); ok && o.Config.Region != "" && o.Config.PrimaryRegion != "" {
		o.Primary = w
	}
}

// stoppedWaiting returns err, or nil when the server was told to stop
// (SIGTERM) while it started replicating (a follower waiting for the
// writer's first transaction, say): that is a clean stop.
func stoppedWaiting(ctx context.Context, err error) error {
	if ctx.Err() != nil {
		return nil
	}
	return err
}

// closeReplication ships what is left to the bucket and releases the
// lease, when the server has stopped and closed the database.
func closeReplication(repl replicaNode, log *slog.Logger) {
	if repl == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := repl.Close(ctx); err != nil {
		log.Error("stopping replication", "err", err)
	}
}

// restoreUsage is restore's usage line.
const restoreUsage = "usage: app restore [--timestamp RFC3339 --output PATH] [--force | --if-missing]"

// restore runs `app restore`: the SQLite database from its replica in the
// bucket, as it is now or (with --timestamp) was then, into --output, or
// onto DATABASE_PATH while no app has it open.
func restore(ctx context.Context, setup Setup, args []string, stdout, stderr io.Writer, log *slog.Logger) error {
	flags := flag.NewFlagSet("restore", flag.ContinueOnError)
	flags.SetOutput(stderr)
	output := flags.String("output", "", "write the database to this new file; DATABASE_PATH is not touched")
	stamp := flags.String("timestamp", "", "restore the database as it was at this time (RFC 3339); needs --output")
	force := flags.Bool("force", false, "replace the database at DATABASE_PATH")
	ifMissing := flags.Bool("if-missing", false, "do nothing if the database exists")
	if err := flags.Parse(args); err != nil || flags.NArg() > 0 || (*force && *ifMissing) {
		return config.UsageError(restoreUsage)
	}
	var at time.Time
	if *stamp != "" {
		var err error
		if at, err = time.Parse(time.RFC3339, *stamp); err != nil {
			return config.UsageError(fmt.Sprintf("--timestamp %q is not an RFC 3339 time such as 2026-01-02T15:04:05Z", *stamp))
		}
		if *output == "" {
			// The replica goes on from the newest state: the database it
			// replicates cannot go back in time.
			return config.UsageError("--timestamp needs --output: a past state goes to a new file, never onto the live database")
		}
	}
	o, ok := replicationOptions(setup, log)
	if !ok {
		return config.UsageError("app restore restores SQLite (DATABASE_PATH) from its replica in a bucket (BUCKET_NAME, SQLITE_REPLICATION=on)")
	}
	client, err := replication.NewClient(ctx, o)
	if err != nil {
		return err
	}
	if *output != "" {
		if _, err := os.Stat(*output); err == nil {
			return fmt.Errorf("--output %s exists: name a new file", *output)
		}
		st, err := client.Restore(ctx, replication.RestoreOptions{Output: *output, Timestamp: at})
		if err != nil {
			return err
		}
		fmt.Fprintf(stdout, "restored %s at TXID %s (committed %s) to %s\n", client.URL(), st.TXID, st.At.UTC().Format(time.RFC3339), *output)
		return nil
	}

	return restoreInPlace(ctx, setup, client, o.Path, *force, *ifMissing, stdout, stderr)
}

// restoreInPlace restores the replica's newest state onto path
// (DATABASE_PATH) while no app holds it: with force over what is there,
// with ifMissing only when nothing is.
func restoreInPlace(ctx context.Context, setup Setup, client *replication.Client, path string, force, ifMissing bool, stdout, stderr io.Writer) error {
	_, statErr := os.Stat(path)
	switch {
	case statErr == nil && ifMissing:
		fmt.Fprintf(stdout, "%s exists; nothing restored\n", path)
		return nil
	case statErr == nil && !force:
		return fmt.Errorf("%s exists: pass --force to replace it, or --if-missing to keep it", path)
	case statErr != nil && !errors.Is(statErr, os.ErrNotExist):
		return statErr
	}
	// A running app would keep writing into the file this replaces.
	unlock, err := sqlite.LockExclusive(path)
	if err != nil {
		return err
	}
	defer unlock()
	tmp := path + ".restoring"
	os.Remove(tmp)
	os.Remove(tmp + "-txid")
	st, err := client.Restore(ctx, replication.RestoreOptions{Output: tmp})
	if errors.Is(err, replication.ErrNoReplica) && ifMissing {
		fmt.Fprintf(stdout, "no replica at %s; starting with an empty database\n", client.URL())
		return nil
	}
	if err != nil {
		return err
	}
	if err := replication.ReplaceDatabase(path, tmp); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "restored %s at TXID %s (committed %s) to %s\n", client.URL(), st.TXID, st.At.UTC().Format(time.RFC3339), path)
	// Nothing cached from before the restore may be served after it.
	redis, err := cache.Open(ctx, setup.Cache, slog.New(slog.NewTextHandler(stderr, nil)))
	if err == nil {
		err = redis.Flush(ctx)
		redis.Close()
	}
	if err != nil {
		fmt.Fprintf(stderr, "restored, but the Redis cache could not be flushed (%v): cached notes and files from before the restore may be served for up to CACHE_TTL\n", err)
	}
	return nil
}

// verify runs `app verify`: it restores the replica's newest state into
// a temporary file and checks it, printing the state that passed.
func verify(ctx context.Context, setup Setup, stdout io.Writer, log *slog.Logger) error {
	o, ok := replicationOptions(setup, log)
	if !ok {
		return config.UsageError("app verify checks SQLite's replica (DATABASE_PATH, BUCKET_NAME, SQLITE_REPLICATION=on)")
	}
	client, err := replication.NewClient(ctx, o)
	if err != nil {
		return err
	}
	dir := os.TempDir()
	st, err := client.Verify(ctx, dir)
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "verified %s: TXID %s, committed %s, passes PRAGMA integrity_check\n", client.URL(), st.TXID, st.At.UTC().Format(time.RFC3339))
	return nil
}
