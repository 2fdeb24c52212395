package replication

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/benbjohnson/litestream"
	lss3 "github.com/benbjohnson/litestream/s3"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/superfly/ltx"

	"github.com/example/flystorage/internal/storage"
	"github.com/example/flystorage/internal/storage/sqlite"
)

// HeldError is returned by Open when Options.Follow is set and another
// machine holds the replica's lease: this machine should follow.
type HeldError struct {
	Holder    string
	ExpiresAt time.Time
}

func (e *HeldError) Error() string {
	return fmt.Sprintf("the replica's lease is held by %s until %s", e.Holder, e.ExpiresAt.Format(time.RFC3339))
}

// ErrPromoted is the Follower's Err once it took the lease: the process
// restarts (Fly restarts a machine whose process exits with an error),
// takes its own lease back at once, and writes.
var ErrPromoted = errors.New("this machine took the replica's lease: restarting as the writer")

// Follower keeps a copy of the replica current on this machine's volume
// with Litestream's follow loop (driven here, apply.go), for the app to read while another
// machine writes. In the primary region it takes the lease when the
// writer stops renewing it.
type Follower struct {
	*Client
	canPromote bool

	holder     atomic.Pointer[string]
	replicated atomic.Pointer[State]
	promoted   chan struct{}
	promote    sync.Once

	// reads is held for writing while a transaction is applied to the
	// copy, and for reading by every read of it (Reads, apply.go).
	reads sync.RWMutex

	cancel context.CancelFunc
	jobs   sync.WaitGroup
}

// Follow restores the replica onto o.Path (setting aside a database that
// was written there, and replacing an older follower copy), switches the
// copy to rollback-journal mode before any reader opens it (a reader that
// opened it in WAL mode would go on seeing the state it opened), and
// keeps it current from the bucket every SQLITE_SYNC_INTERVAL (apply.go).
// Open the copy with sqlite.OpenFollower, passing Reads. With canPromote,
// it takes the lease once the writer's expires, and Promoted is closed.
func Follow(ctx context.Context, o Options, holder string, canPromote bool) (*Follower, error) {
	c, err := NewClient(ctx, o)
	if err != nil {
		return nil, err
	}
	f := &Follower{Client: c, canPromote: canPromote, promoted: make(chan struct{})}
	f.holder.Store(&holder)
	if err := f.restore(ctx); err != nil {
		return nil, err
	}
	txid, err := litestream.ReadTXIDFile(o.Path)
	if err != nil {
		return nil, err
	}
	fctx, cancel := context.WithCancel(context.Background())
	f.cancel = cancel
	f.jobs.Go(func() { f.follow(fctx, txid) })
	f.jobs.Go(func() { f.watch(fctx) })
	c.log.Info("following the replica: reads are served here, writes replayed to the writer",
		"replica", c.URL(), "holder", holder, "path", o.Path, "can_take_over", canPromote)
	return f, nil
}

// restore makes a fresh follower copy at the database's path.
func (f *Follower) restore(ctx context.Context) error {
	path := f.opts.Path
	if _, err := os.Stat(path); err == nil {
		if local, known, _ := position(path); known && local.FileChecksum != 0 {
			// A database this machine wrote: kept, as a writer keeps one
			// it cannot replicate from.
			aside := path + ".behind-" + time.Now().UTC().Format("20060102T150405Z")
			f.log.Warn("setting this machine's database aside to follow the replica", "path", path, "kept", aside)
			if err := os.Rename(path, aside); err != nil {
				return err
			}
		}
	}
	for _, suffix := range []string{"", "-wal", "-shm"} {
		if err := ignoreMissing(os.Remove(path + suffix)); err != nil {
			return err
		}
	}
	if err := removeLocalState(path); err != nil {
		return err
	}
	start := time.Now()
	st, err := f.Restore(ctx, RestoreOptions{Output: path})
	for errors.Is(err, ErrNoReplica) {
		// The writer has just started and shipped nothing yet.
		f.log.Info("waiting for the writer's first transaction in the replica", "replica", f.URL())
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(f.opts.Config.SyncInterval):
		}
		st, err = f.Restore(ctx, RestoreOptions{Output: path})
	}
	if err != nil {
		return err
	}
	f.replicated.Store(&st)
	db, err := sql.Open("sqlite", "file:"+path)
	if err != nil {
		return err
	}
	defer db.Close()
	var mode string
	if err := db.QueryRowContext(ctx, "PRAGMA journal_mode=delete").Scan(&mode); err != nil || mode != "delete" {
		return fmt.Errorf("switching the follower copy %s to rollback-journal mode: %q, %v", path, mode, err)
	}
	f.log.Info("restored a follower copy of the replica", "path", path, "txid", st.TXID, "took", time.Since(start).Round(time.Millisecond))
	return nil
}

// watch reads the lease and the replica's newest transaction every
// SQLITE_SYNC_INTERVAL, and takes the lease over when it may.
func (f *Follower) watch(ctx context.Context) {
	l := lss3.NewLeaser()
	l.SetClient(f.bucket.Client())
	l.SetLogger(f.log)
	l.Bucket, l.Path, l.TTL, l.Owner = f.opts.S3.Bucket, f.opts.Config.Prefix, f.opts.Config.LeaseTTL, f.opts.Machine
	// A LIST per level and a GET each round: no more often than needed
	// to take over within a sixth of the lease's TTL.
	tick := time.NewTicker(max(f.opts.Config.SyncInterval, f.opts.Config.LeaseTTL/6))
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		if st, err := f.Newest(ctx); err == nil {
			f.replicated.Store(&st)
		}
		holder, live, err := f.LeaseHolder(ctx)
		if err != nil {
			continue
		}
		if !live {
			holder = ""
		}
		if holder != *f.holder.Load() {
			f.holder.Store(&holder)
			f.log.Info("the replica's writer changed", "holder", holder)
		}
		if !f.canPromote || live {
			continue
		}
		if _, err := l.AcquireLease(ctx); err == nil {
			f.log.Warn("took the replica's lease: the writer stopped renewing it; restarting as the writer", "replica", f.URL())
			f.promote.Do(func() { close(f.promoted) })
			return
		}
	}
}

// Reads is the lock every read of the copy holds for reading, so that
// it never sees a transaction half applied.
func (f *Follower) Reads() *sync.RWMutex { return &f.reads }

// Holder returns the machine id of the replica's writer; "" while no
// lease is in force.
func (f *Follower) Holder() string { return *f.holder.Load() }

// Following reports true: this machine reads a copy and does not write.
func (f *Follower) Following() bool { return true }

// Lost is closed when this machine took the lease (Promoted's other name,
// so the app stops serving as a follower at once).
func (f *Follower) Lost() <-chan struct{} { return f.promoted }

// Err returns ErrPromoted once the follower took the lease.
func (f *Follower) Err() error {
	select {
	case <-f.promoted:
		return ErrPromoted
	default:
		return nil
	}
}

// Attach checks the database is the follower copy's read-only store.
func (f *Follower) Attach(db storage.Database) error {
	if _, ok := db.(*sqlite.Store); !ok {
		return fmt.Errorf("a SQLite follower needs the SQLite database, not %T", db)
	}
	return nil
}

// positions returns the follower copy's transaction, the replica's
// newest, and how far behind the copy is: 0 when it holds the newest,
// else the time since the newest was committed.
func (f *Follower) positions() (local, replicated ltx.TXID, lag time.Duration) {
	local, _ = litestream.ReadTXIDFile(f.opts.Path)
	if st := f.replicated.Load(); st != nil {
		replicated = st.TXID
		if local < replicated {
			lag = time.Since(st.At)
		}
	}
	return local, replicated, lag
}

// ReplicationStatus reports the follower's place.
func (f *Follower) ReplicationStatus() storage.ReplicationStatus {
	local, replicated, lag := f.positions()
	return storage.ReplicationStatus{Role: "follower", Holder: f.Holder(), Machine: f.opts.Machine,
		Durability: string(f.opts.Config.Durability), Replica: f.URL(),
		LocalTXID: local.String(), ReplicatedTXID: replicated.String(), LagSeconds: lag.Seconds()}
}

// Register adds the follower's lag and TXIDs to reg.
func (f *Follower) Register(reg prometheus.Registerer) error {
	return registerGauges(reg, f.positions, func() float64 { return 0 })
}

// Close stops following. The lease, if this machine took it, stays: the
// restarted process takes it back at once.
func (f *Follower) Close(context.Context) error {
	f.cancel()
	f.jobs.Wait()
	return nil
}

// ReplayPosition returns the transaction the follower's copy holds, for
// a read carrying a consistency token to wait on.
func (f *Follower) ReplayPosition(context.Context) (storage.Position, error) {
	local, _, _ := f.positions()
	return storage.Position(local), nil
}
