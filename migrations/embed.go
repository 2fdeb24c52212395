// Package migrations embeds the goose migrations of both engines. The files
// in postgres/ and sqlite/ share version numbers and describe the same
// logical schema; goose records progress in its default goose_db_version
// table, so the stock goose CLI can read it too.
package migrations

import (
	"database/sql"
	"embed"
	"fmt"
	"io/fs"

	"github.com/pressly/goose/v3"
	"github.com/pressly/goose/v3/lock"
)

//go:embed postgres/*.sql sqlite/*.sql
var files embed.FS

// NewProvider returns a goose provider for db, which must be a Postgres or
// SQLite database matching dialect.
//
// On Postgres, the provider holds a session advisory lock while it migrates,
// so that several `migrate up` runs at once apply each migration once. Such a
// lock needs a direct connection: behind PgBouncer in transaction mode, point
// cmd/migrate at the direct URL, DIRECT_DATABASE_URL (see the README,
// "Postgres").
func NewProvider(dialect goose.Dialect, db *sql.DB) (*goose.Provider, error) {
	var (
		dir  string
		opts []goose.ProviderOption
	)
	switch dialect {
	case goose.DialectPostgres:
		dir = "postgres"
		// Retry the lock every second for up to five minutes: a deploy
		// waiting on another's migrations should go on as soon as it can.
		locker, err := lock.NewPostgresSessionLocker(lock.WithLockTimeout(1, 300))
		if err != nil {
			return nil, fmt.Errorf("creating migration lock: %w", err)
		}
		opts = append(opts, goose.WithSessionLocker(locker))
	case goose.DialectSQLite3:
		// SQLite serialises writers itself; one app owns the file.
		dir = "sqlite"
	default:
		return nil, fmt.Errorf("no migrations for dialect %q", dialect)
	}
	sub, err := fs.Sub(files, dir)
	if err != nil {
		return nil, err
	}
	return goose.NewProvider(dialect, db, sub, opts...)
}
