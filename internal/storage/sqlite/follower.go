package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"os"
)

// OpenFollower opens the database at path read-only, for a machine that
// does not hold the replica's lease: Litestream's follow mode keeps the
// file current from the bucket (internal/replication) while the store
// reads it. It runs no migrations and has no writer: every write fails
// with an error matching storage.ErrReadOnly, which the region router
// turns into a replay to the writer. The file must be in rollback-journal
// mode (Litestream's follow mode writes pages into the file itself), so
// its connections never ask for WAL.
func OpenFollower(ctx context.Context, path string) (*Store, error) {
	lock, err := lockFile(path, false)
	if err != nil {
		return nil, err
	}
	ro := "file:" + fileURL(path) + fmt.Sprintf("?mode=ro&_foreign_keys=1&_busy_timeout=%d&_query_only=1", busyTimeout.Milliseconds())
	readers, err := sql.Open("sqlite", ro)
	if err == nil {
		err = readers.PingContext(ctx)
	}
	if err != nil {
		lock.Close()
		return nil, fmt.Errorf("opening the follower copy %s: %w", path, err)
	}
	// Litestream writes pages into the file without always rewriting its
	// change counter, which SQLite checks to drop its cache: a connection
	// kept from one read to the next could serve pages from before. So
	// every read opens a connection of its own.
	readers.SetMaxOpenConns(readerConns)
	readers.SetMaxIdleConns(0)
	s := &Store{readers: readers, path: path, lock: lock, follower: true,
		jobs: make(chan *writeJob), closed: make(chan struct{}), stopped: make(chan struct{})}
	close(s.stopped) // no writer goroutine
	if s.notes, err = openNoteReadersDSN(ctx, ro, readerConns); err == nil {
		s.notes.fresh = ro
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
