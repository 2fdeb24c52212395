package sqlite

import (
	"database/sql/driver"
	"sync"

	"context"
	"database/sql"
	"errors"
	"fmt"
	"modernc.org/sqlite"
	"os"
)

// OpenFollower opens the database at path read-only, for a machine that
// does not hold the replica's lease: the replication's follow loop keeps
// the file current from the bucket (internal/replication) while the
// store reads it. It runs no migrations and has no writer: every write fails
// with an error matching storage.ErrReadOnly, which the region router
// turns into a replay to the writer. The file must be in rollback-journal
// mode (the follow loop writes pages into the file itself), so
// its connections never ask for WAL. Every read holds reads for reading
// from its query until its rows are closed, so the replication, holding
// it for writing while it applies a transaction, is never seen half way
// (POSIX locks would not keep it out: it shares our process).
func OpenFollower(ctx context.Context, path string, reads *sync.RWMutex) (*Store, error) {
	if reads == nil {
		reads = new(sync.RWMutex)
	}
	lock, err := lockFile(path, false)
	if err != nil {
		return nil, err
	}
	ro := "file:" + fileURL(path) + fmt.Sprintf("?mode=ro&_foreign_keys=1&_busy_timeout=%d&_query_only=1", busyTimeout.Milliseconds())
	readers := sql.OpenDB(followerConnector{dsn: ro, reads: reads})
	if err := readers.PingContext(ctx); err != nil {
		lock.Close()
		return nil, fmt.Errorf("opening the follower copy %s: %w", path, err)
	}
	// Every read opens a connection of its own: a connection kept from
	// one read to the next relies on the file change counter to drop
	// pages from before, which the replication rewrites with every
	// transaction it applies, but a fresh one relies on nothing.
	readers.SetMaxOpenConns(readerConns)
	readers.SetMaxIdleConns(0)
	s := &Store{readers: readers, path: path, lock: lock, follower: true,
		jobs: make(chan *writeJob), closed: make(chan struct{}), stopped: make(chan struct{})}
	close(s.stopped) // no writer goroutine
	if s.notes, err = openNoteReadersDSN(ctx, ro, readerConns); err == nil {
		s.notes.fresh, s.notes.reads = ro, reads
	}
	if err != nil {
		readers.Close()
		lock.Close()
		return nil, fmt.Errorf("opening the follower copy %s: %w", path, err)
	}
	return s, nil
}

// errFollower is what a write to a follower store returns.
var errFollower = errors.New("sqlite: this machine follows the replica and does not write")

// closeFollower closes a follower store's readers.
func (s *Store) closeFollower() error {
	lockErr := s.lock.Close()
	if errors.Is(lockErr, os.ErrClosed) {
		lockErr = nil
	}
	return errors.Join(s.notes.close(), s.readers.Close(), lockErr)
}

// followerConnector opens a follower's connections: modernc.org/sqlite's,
// with every query holding reads for reading until its rows are closed.
type followerConnector struct {
	dsn   string
	reads *sync.RWMutex
}

func (c followerConnector) Connect(context.Context) (driver.Conn, error) {
	conn, err := c.Driver().Open(c.dsn)
	if err != nil {
		return nil, err
	}
	return followerConn{Conn: conn, reads: c.reads}, nil
}

func (c followerConnector) Driver() driver.Driver { return &sqlite.Driver{} }

// followerConn reads under its store's reads lock. It offers only
// QueryContext: database/sql then runs every statement through it, and a
// prepared statement, which would read outside the lock, fails.
type followerConn struct {
	driver.Conn
	reads *sync.RWMutex
}

func (c followerConn) QueryContext(ctx context.Context, query string, args []driver.NamedValue) (driver.Rows, error) {
	c.reads.RLock()
	rows, err := c.Conn.(driver.QueryerContext).QueryContext(ctx, query, args)
	if err != nil {
		c.reads.RUnlock()
		return nil, err
	}
	return &followerRows{Rows: rows, unlock: sync.OnceFunc(c.reads.RUnlock)}, nil
}

func (c followerConn) Prepare(string) (driver.Stmt, error) { return nil, errFollower }

// followerRows lets go of the reads lock when closed.
type followerRows struct {
	driver.Rows
	unlock func()
}

func (r *followerRows) Close() error {
	defer r.unlock()
	return r.Rows.Close()
}
