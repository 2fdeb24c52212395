package postgres

import (
	"context"

	"github.com/example/flystorage/internal/storage"
)

var _ storage.Counter = (*Store)(nil)

// CountNotes implements storage.Counter. count(*) reads the whole table
// (or its primary key's index), so callers cache it rather than count on
// every request.
func (s *Store) CountNotes(ctx context.Context) (int64, error) {
	return s.count(ctx, `SELECT count(*) FROM notes`)
}

// CountFiles implements storage.Counter: the files table only, not the
// upload intents in uploads.
func (s *Store) CountFiles(ctx context.Context) (int64, error) {
	return s.count(ctx, `SELECT count(*) FROM files`)
}

func (s *Store) count(ctx context.Context, query string) (int64, error) {
	var n int64
	err := s.pool.QueryRow(ctx, query).Scan(&n)
	return n, translate(err)
}
