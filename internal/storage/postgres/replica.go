package postgres

import (
	"context"
	"time"

	"github.com/example/flystorage/internal/storage"
)

// This file holds what running in several regions needs from Postgres (see
// docs/regions.md): the primary's position in its write-ahead log after a
// write, how far a streaming replica has replayed it, and how far behind it
// is. A write sent to a replica fails with SQLSTATE 25006, which translate
// turns into storage.ErrReadOnly, so the app can replay the request to the
// primary region.

// A Store is all three of region's capabilities: the primary reports its
// write position, a replica (DATABASE_READ_URL) its replay position and lag.
var (
	_ storage.WritePositioner  = (*Store)(nil)
	_ storage.ReplayPositioner = (*Store)(nil)
	_ storage.ReplayLagger     = (*Store)(nil)
)

// WritePosition returns the primary's current write-ahead log position
// (pg_current_wal_lsn()). Called after a write commits, it is at or past
// that write's commit record, so a replica that has replayed up to it holds
// the write. On a replica Postgres refuses it (SQLSTATE 55000, recovery is
// in progress).
func (s *Store) WritePosition(ctx context.Context) (storage.Position, error) {
	var p int64
	err := s.pool.QueryRow(ctx, `SELECT pg_wal_lsn_diff(pg_current_wal_lsn(), '0/0')::bigint`).Scan(&p)
	return storage.Position(p), translate(err)
}

// ReplayPosition returns how far this database has replayed the primary's
// log (pg_last_wal_replay_lsn()) when it is a replica, and its own current
// position when it is a primary, which holds every write already. A replica
// that has replayed nothing yet is at zero.
func (s *Store) ReplayPosition(ctx context.Context) (storage.Position, error) {
	var p int64
	err := s.pool.QueryRow(ctx, `SELECT COALESCE(CASE WHEN pg_is_in_recovery()
		THEN pg_wal_lsn_diff(pg_last_wal_replay_lsn(), '0/0')
		ELSE pg_wal_lsn_diff(pg_current_wal_lsn(), '0/0') END, 0)::bigint`).Scan(&p)
	return storage.Position(p), translate(err)
}

// ReplayLag returns how long ago the last transaction this replica replayed
// committed on the primary, or zero when it has replayed everything it has
// received (an idle primary sends nothing, and now() -
// pg_last_xact_replay_timestamp() would grow without any lag), or when this
// database is not a replica.
func (s *Store) ReplayLag(ctx context.Context) (time.Duration, error) {
	var micros int64
	err := s.pool.QueryRow(ctx, `SELECT CASE
		WHEN NOT pg_is_in_recovery() THEN 0
		WHEN pg_last_wal_receive_lsn() = pg_last_wal_replay_lsn() THEN 0
		ELSE COALESCE((extract(epoch FROM now() - pg_last_xact_replay_timestamp()) * 1000000)::bigint, 0)
		END`).Scan(&micros)
	return time.Duration(micros) * time.Microsecond, translate(err)
}
