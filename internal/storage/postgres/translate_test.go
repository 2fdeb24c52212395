package postgres

import (
	"errors"
	"fmt"
	"testing"

	"github.com/jackc/pgx/v5/pgconn"

	"github.com/example/flystorage/internal/storage"
)

// TestTranslateDiskFull: Postgres's disk_full (53100) is storage.ErrNoSpace,
// which the API answers 507, not an internal error.
func TestTranslateDiskFull(t *testing.T) {
	err := translate(fmt.Errorf("inserting: %w", &pgconn.PgError{Code: "53100", Message: "could not extend file: No space left on device"}))
	if !errors.Is(err, storage.ErrNoSpace) {
		t.Errorf("disk_full translated to %v, want ErrNoSpace", err)
	}
}
