package region

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/example/flystorage/internal/storage"
)

var (
	_ storage.Database = (*Database)(nil)
	_ storage.Counter  = (*Database)(nil)
)

// Database sends reads to a replica and everything else to the primary.
// Reads are GetNote, ListNotes, GetFile, ListFiles, GetUpload,
// GetSession and the counts (storage.Counter); writes, ExpiredUploads and
// NamedKeys (the sweep deletes what they find, and what they do not, so
// it reads the primary), GetIdempotencyKey (a retry asks it beside the
// writes it makes), Ping and migrations stay on the primary, so a write
// can never reach the replica.
//
// A read the replica fails (it is down, or cancelled a query replaying the
// log) is run again on the primary, and the replica is left alone for
// RetryAfter; each such fallback is counted, and logged once per
// RetryAfter. A context marked WithPrimaryReads reads the primary. A read
// the replica answered is marked for storage.WatchReplicaReads, so that a
// cache never keeps it for the primary's readers.
type Database struct {
	storage.Database // the primary
	replica          storage.Database
	o                DatabaseOptions

	mu        sync.Mutex
	downUntil time.Time
}

// DatabaseOptions configure a Database.
type DatabaseOptions struct {
	// RetryAfter is how long reads skip a replica that failed; 5s by
	// default.
	RetryAfter time.Duration
	Metrics    *Metrics
	Logger     *slog.Logger
	Now        func() time.Time
}

// NewDatabase routes reads to replica and the rest to primary. Close
// closes both.
func NewDatabase(primary, replica storage.Database, o DatabaseOptions) *Database {
	if o.RetryAfter <= 0 {
		o.RetryAfter = 5 * time.Second
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	return &Database{Database: primary, replica: replica, o: o}
}

// reader picks the database a read goes to.
func (d *Database) reader(ctx context.Context) storage.Database {
	if PrimaryReads(ctx) {
		return d.Database
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.o.Now().Before(d.downUntil) {
		d.o.Metrics.fallback()
		return d.Database
	}
	return d.replica
}

// answered marks a read the replica answered, for storage.WatchReplicaReads.
func (d *Database) answered(ctx context.Context, db storage.Database) {
	if db == d.replica {
		storage.ServedByReplica(ctx)
	}
}

// retry reports whether a read the replica answered with err should run
// again on the primary, and marks the replica down if so. Answers about
// the data (not found, invalid) stand.
func (d *Database) retry(ctx context.Context, db storage.Database, err error) bool {
	if err == nil || db != d.replica || ctx.Err() != nil ||
		errors.Is(err, storage.ErrNotFound) || errors.Is(err, storage.ErrInvalid) {
		return false
	}
	d.o.Metrics.fallback()
	d.mu.Lock()
	defer d.mu.Unlock()
	now := d.o.Now()
	if now.Before(d.downUntil) {
		return true // another read saw it first and warned
	}
	d.downUntil = now.Add(d.o.RetryAfter)
	d.o.Logger.Warn("the read replica at DATABASE_READ_URL failed: reading from the primary at DATABASE_URL",
		"retry_after", d.o.RetryAfter, "err", err)
	return true
}

func (d *Database) GetNote(ctx context.Context, id string) (storage.Note, error) {
	db := d.reader(ctx)
	n, err := db.GetNote(ctx, id)
	if d.retry(ctx, db, err) {
		return d.Database.GetNote(ctx, id)
	}
	d.answered(ctx, db)
	return n, err
}

func (d *Database) ListNotes(ctx context.Context, p storage.Page) ([]storage.Note, string, error) {
	db := d.reader(ctx)
	ns, next, err := db.ListNotes(ctx, p)
	if d.retry(ctx, db, err) {
		return d.Database.ListNotes(ctx, p)
	}
	d.answered(ctx, db)
	return ns, next, err
}

func (d *Database) GetFile(ctx context.Context, id string) (storage.File, error) {
	db := d.reader(ctx)
	f, err := db.GetFile(ctx, id)
	if d.retry(ctx, db, err) {
		return d.Database.GetFile(ctx, id)
	}
	d.answered(ctx, db)
	return f, err
}

func (d *Database) ListFiles(ctx context.Context, p storage.Page) ([]storage.File, string, error) {
	db := d.reader(ctx)
	fs, next, err := db.ListFiles(ctx, p)
	if d.retry(ctx, db, err) {
		return d.Database.ListFiles(ctx, p)
	}
	d.answered(ctx, db)
	return fs, next, err
}

func (d *Database) GetUpload(ctx context.Context, id string) (storage.Upload, error) {
	db := d.reader(ctx)
	u, err := db.GetUpload(ctx, id)
	if d.retry(ctx, db, err) {
		return d.Database.GetUpload(ctx, id)
	}
	d.answered(ctx, db)
	return u, err
}

func (d *Database) GetSession(ctx context.Context, id string, now time.Time) (storage.Session, error) {
	db := d.reader(ctx)
	s, err := db.GetSession(ctx, id, now)
	if d.retry(ctx, db, err) {
		return d.Database.GetSession(ctx, id, now)
	}
	d.answered(ctx, db)
	return s, err
}

// CountNotes implements storage.Counter, on the replica like the other
// reads.
func (d *Database) CountNotes(ctx context.Context) (int64, error) {
	return d.count(ctx, storage.Counter.CountNotes)
}

// CountFiles implements storage.Counter, on the replica like the other
// reads.
func (d *Database) CountFiles(ctx context.Context) (int64, error) {
	return d.count(ctx, storage.Counter.CountFiles)
}

// count runs one of storage.Counter's methods as the other reads run.
func (d *Database) count(ctx context.Context, count func(storage.Counter, context.Context) (int64, error)) (int64, error) {
	db := d.reader(ctx)
	n, err := countOn(ctx, db, count)
	if d.retry(ctx, db, err) {
		return countOn(ctx, d.Database, count)
	}
	d.answered(ctx, db)
	return n, err
}

// countOn runs count on db, which every backend lets it do.
func countOn(ctx context.Context, db storage.Database, count func(storage.Counter, context.Context) (int64, error)) (int64, error) {
	c, ok := db.(storage.Counter)
	if !ok {
		return 0, fmt.Errorf("%w: the %s database does not count (storage.Counter)", errors.ErrUnsupported, db.Backend())
	}
	return count(c, ctx)
}

// Describe is the primary's description with the replica's URL and TLS,
// and where reads go now.
func (d *Database) Describe() map[string]string {
	out := map[string]string{}
	for k, v := range d.Database.Describe() {
		out[k] = v
	}
	for k, v := range d.replica.Describe() {
		if k != "backend" {
			out["replica_"+k] = v
		}
	}
	out["reads"] = "replica"
	d.mu.Lock()
	if d.o.Now().Before(d.downUntil) {
		out["reads"] = "primary (the replica failed; trying it again shortly)"
	}
	d.mu.Unlock()
	return out
}

// PoolStats reports both databases' pools, the replica's named with a
// _replica suffix.
func (d *Database) PoolStats() []storage.PoolStats {
	var out []storage.PoolStats
	if p, ok := d.Database.(storage.PoolReporter); ok {
		out = append(out, p.PoolStats()...)
	}
	if p, ok := d.replica.(storage.PoolReporter); ok {
		for _, s := range p.PoolStats() {
			s.Name += "_replica"
			out = append(out, s)
		}
	}
	return out
}

// Close closes both databases.
func (d *Database) Close() error {
	return errors.Join(d.Database.Close(), d.replica.Close())
}
