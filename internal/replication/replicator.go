package replication

import (
	"context"
	"errors"
	"fmt"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/benbjohnson/litestream"
	"github.com/superfly/ltx"

	"github.com/example/flystorage/internal/storage"
	"github.com/example/flystorage/internal/storage/sqlite"
)

// Replicator replicates the database continuously while this machine
// holds the replica's lease.
type Replicator struct {
	*Client
	unlock func() error // the volume's replication lock
	lease  *leaseHolder
	db     *litestream.DB
	store  *litestream.Store
	fence  *fencedClient

	// verified is the newest state a verification passed.
	verified atomic.Pointer[State]

	// closing is closed by Close, before the last sync.
	closing   chan struct{}
	closeOnce sync.Once
	closeErr  error
	jobs      sync.WaitGroup
}

// Open makes this machine the replica's writer and starts replicating.
// In order, it:
//   - takes the replica's lease, waiting while another machine holds it
//     (its own lease, from before a restart, it takes back at once);
//   - restores the database from the bucket when the volume has none, or
//     has an older one than the bucket (it was another machine's writer
//     once), and logs from which TXID and how long it took;
//   - starts Litestream, which ships every transaction to the bucket.
//
// Open the database (backend.Open) after Open returns, then Attach it.
func Open(ctx context.Context, o Options) (*Replicator, error) {
	c, err := NewClient(ctx, o)
	if err != nil {
		return nil, err
	}
	// One process per volume replicates: a second one (an `app` run by
	// hand beside the server) would take the server's own lease back.
	unlock, err := sqlite.LockExclusive(o.Path + "-replication")
	if err != nil {
		return nil, fmt.Errorf("replicating %s: %w", o.Path, err)
	}
	r := &Replicator{Client: c, unlock: unlock, closing: make(chan struct{})}
	if r.lease, err = takeLease(ctx, c); err != nil {
		unlock()
		return nil, err
	}
	fail := func(err error) (*Replicator, error) {
		r.lease.stop()
		r.lease.release(context.WithoutCancel(ctx))
		unlock()
		return nil, err
	}
	if err := r.prepare(ctx); err != nil {
		return fail(err)
	}

	// The replica's writes are fenced by the lease: once it is lost, not
	// one more file reaches the replica from here.
	r.fence = &fencedClient{ReplicaClient: c.ls, lost: r.lease.lostCh}
	r.db = litestream.NewDB(o.Path)
	replica := litestream.NewReplicaWithClient(r.db, r.fence)
	replica.SyncInterval = o.Config.SyncInterval
	r.db.Replica = replica
	r.store = litestream.NewStore([]*litestream.DB{r.db}, litestream.DefaultCompactionLevels)
	r.store.Logger = c.log.With("component", "litestream")
	r.db.SetLogger(r.store.Logger)
	r.store.SnapshotInterval = o.Config.SnapshotInterval
	r.store.SnapshotRetention = o.Config.Retention
	if err := r.store.Open(ctx); err != nil {
		return fail(fmt.Errorf("starting Litestream on %s: %w", o.Path, err))
	}
	c.log.Info("replicating the database", "path", o.Path, "replica", c.URL(), "durability", o.Config.Durability,
		"sync_interval", o.Config.SyncInterval, "lease_owner", o.Machine)
	if o.Config.VerifyInterval > 0 {
		r.jobs.Go(r.verifyEvery)
	}
	return r, nil
}

// prepare makes the database file fit to replicate from: it restores it
// when missing, or when the bucket holds newer transactions than it, and
// refuses a file that was never replicated while the bucket holds a
// replica, rather than mix the two.
func (r *Replicator) prepare(ctx context.Context) error {
	path := r.opts.Path
	newest, err := r.Newest(ctx)
	if err != nil {
		return err
	}
	_, statErr := os.Stat(path)
	switch {
	case errors.Is(statErr, os.ErrNotExist):
		if newest.TXID == 0 {
			r.log.Info("no database and no replica: starting an empty database", "path", path, "replica", r.URL())
			return removeLocalState(path)
		}
	case statErr != nil:
		return statErr
	default:
		local, known, err := position(path)
		if err != nil {
			return err
		}
		switch {
		case newest.TXID == 0:
		case !known:
			return fmt.Errorf("%s was never replicated, and the replica %s already holds a database (TXID %s): "+
				"move the file away to restore the replica, or set SQLITE_REPLICA_PREFIX to start a new replica from the file", path, r.URL(), newest.TXID)
		}
		keep, why, err := r.current(ctx, local, newest)
		if err != nil {
			return err
		}
		if keep {
			return nil // Litestream ships what the volume holds beyond the bucket
		}
		aside := path + ".behind-" + time.Now().UTC().Format("20060102T150405Z")
		r.log.Warn("restoring the replica over the volume's database, keeping the old file aside: "+why,
			"path", path, "local_txid", local.TXID, "replica_txid", newest.TXID, "kept", aside)
		for _, suffix := range []string{"", "-wal"} {
			if err := os.Rename(path+suffix, aside+suffix); err != nil && !errors.Is(err, os.ErrNotExist) {
				return err
			}
		}
		if err := ignoreMissing(os.Remove(path + "-shm")); err != nil {
			return err
		}
	}
	if err := removeLocalState(path); err != nil {
		return err
	}
	start := time.Now()
	restored, err := r.Restore(ctx, RestoreOptions{Output: path})
	if err != nil {
		return err
	}
	r.log.Info("restored the database from its replica", "path", path, "replica", r.URL(),
		"txid", restored.TXID, "committed", restored.At, "took", time.Since(start).Round(time.Millisecond))
	return nil
}

// current reports whether the volume's database, at local, may go on
// being replicated, and if not, why. It may when the bucket holds nothing,
// or holds the same database at the same transaction, or (when this
// machine took back its own lease, so nobody wrote since) less than the
// volume: transactions the machine committed but had not shipped. Any
// other machine's writer may have written a different transaction under
// the same TXID, so after another writer the volume's newest LTX file must
// be the bucket's (Litestream writes level-0 files without the database's
// checksum, so the file's own checksum stands in; a file the bucket has
// compacted since differs, and costs a restore).
func (r *Replicator) current(ctx context.Context, local localState, newest State) (bool, string, error) {
	switch {
	case newest.TXID == 0:
		return true, "", nil
	case local.TXID > newest.TXID && r.lease.tookBack:
		return true, "", nil
	case local.TXID > newest.TXID:
		return false, "another machine held the lease since this one wrote transactions the bucket lacks", nil
	case local.TXID < newest.TXID:
		return false, "the bucket holds newer transactions (another machine wrote since)", nil
	case local.FileChecksum == 0:
		return true, "", nil // restored from the bucket, and not written since
	}
	sum, err := r.fileChecksum(ctx, newest)
	if err != nil {
		return false, "", err
	}
	if sum != local.FileChecksum {
		return false, "the bucket holds a different database at the same TXID (another machine wrote since)", nil
	}
	return true, "", nil
}

// Attach hands the open database to the replication: under
// SQLITE_DURABILITY=replicated each group of its writes then waits for
// the bucket before it is acknowledged.
func (r *Replicator) Attach(db storage.Database) error {
	if r.opts.Config.Durability != Replicated {
		return nil
	}
	s, ok := db.(*sqlite.Store)
	if !ok {
		return fmt.Errorf("SQLITE_DURABILITY=replicated needs the SQLite database, not %T", db)
	}
	s.SetCommitWait(r.SyncAndWait)
	return nil
}

// SyncAndWait returns once every transaction committed before it was
// called is in the bucket.
func (r *Replicator) SyncAndWait(ctx context.Context) error {
	if err := r.lease.err(); err != nil {
		return err
	}
	return r.db.SyncAndWait(ctx)
}

// Holder returns this machine's id: it is the writer.
func (r *Replicator) Holder() string { return r.opts.Machine }

// Following reports false: this machine writes.
func (r *Replicator) Following() bool { return false }

// Lost is closed when this machine loses the lease: it must stop writing
// at once, since another machine may be the writer now.
func (r *Replicator) Lost() <-chan struct{} { return r.lease.lostCh }

// Err returns why replication stopped early (the lease was lost), or nil.
func (r *Replicator) Err() error { return r.lease.err() }

// Status reports where the replica stands.
func (r *Replicator) Status() storage.ReplicationStatus {
	local, replicated, lag := r.positions()
	st := storage.ReplicationStatus{
		Role: "primary", Holder: r.opts.Machine, Machine: r.opts.Machine,
		Durability: string(r.opts.Config.Durability), Replica: r.URL(),
		LocalTXID: local.String(), ReplicatedTXID: replicated.String(), LagSeconds: lag.Seconds(),
	}
	if v := r.verified.Load(); v != nil {
		st.LastVerified = v.At.UTC().Format(time.RFC3339)
	}
	return st
}

// ReplicationStatus is Status, for server.Options.Replication.
func (r *Replicator) ReplicationStatus() storage.ReplicationStatus { return r.Status() }

// positions returns the newest local and replicated transactions, and how
// long the bucket has been behind the volume: 0 when it holds every
// local transaction, else the time since it last did.
func (r *Replicator) positions() (local, replicated ltx.TXID, lag time.Duration) {
	if pos, err := r.db.Pos(); err == nil {
		local = pos.TXID
	}
	replicated = r.db.Replica.Pos().TXID
	if replicated < local {
		if last := r.db.LastSuccessfulSyncAt(); !last.IsZero() {
			lag = time.Since(last)
		}
	}
	return local, replicated, lag
}

// FinalSyncTimeout bounds Close: the last sync to the bucket and the
// lease's release, after the server has drained its requests. Fly kills
// a machine kill_timeout after SIGTERM, so fly.sqlite.toml's
// kill_timeout leaves room for SHUTDOWN_TIMEOUT and this (internal/deploy
// checks it).
const FinalSyncTimeout = 10 * time.Second

// Close stops replicating for good: it ships what the bucket lacks
// (SyncAndWait), stops Litestream, and releases the lease so another
// machine can take over at once. Close the database first. It takes at
// most FinalSyncTimeout.
//
// When the last sync fails (the bucket is down), the lease is kept until
// it expires: the transactions that did not ship are only on this
// volume, and this machine ships them if it starts again before then.
// A machine that lost its lease ships nothing more.
func (r *Replicator) Close(ctx context.Context) error {
	r.closeOnce.Do(func() {
		ctx, cancel := context.WithTimeout(ctx, FinalSyncTimeout)
		defer cancel()
		close(r.closing)
		r.jobs.Wait()
		var errs []error
		lost := r.lease.err() != nil
		shipped := false
		if !lost {
			if err := r.db.SyncAndWait(ctx); err != nil {
				local, _, _ := r.positions()
				errs = append(errs, fmt.Errorf("the last sync to %s: %w; transactions up to %s may be only on this volume: the lease is kept until it expires (SQLITE_LEASE_TTL), so that this machine ships them if it starts again first", r.URL(), err, local))
			} else {
				shipped = true
				local, _, _ := r.positions()
				r.log.Info("the replica holds every transaction", "replica", r.URL(), "txid", local)
			}
		}
		// Litestream's own last sync, in Close, would retry what
		// SyncAndWait just did or failed to do, and a machine that lost
		// its lease would only meet the fence: one attempt, within ctx.
		r.db.ShutdownSyncTimeout = 0
		if err := r.store.Close(ctx); err != nil && shipped {
			errs = append(errs, fmt.Errorf("stopping Litestream: %w", err))
		}
		r.lease.stop()
		if shipped {
			if err := r.lease.release(ctx); err != nil {
				errs = append(errs, err)
			} else {
				r.log.Info("released the replica's lease", "replica", r.URL())
			}
		}
		r.closeErr = errors.Join(append(errs, r.unlock())...)
	})
	return r.closeErr
}

// WritePosition returns the newest transaction on the volume as a
// consistency token, once Litestream has read every write committed
// before the call from the write-ahead log (a local step, no bucket): a
// follower whose copy reaches it holds the write.
func (r *Replicator) WritePosition(ctx context.Context) (storage.Position, error) {
	if err := r.db.Sync(ctx); err != nil {
		return 0, err
	}
	pos, err := r.db.Pos()
	return storage.Position(pos.TXID), err
}
