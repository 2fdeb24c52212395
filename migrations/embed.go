// Package migrations embeds the goose migrations of every SQL engine, one
// folder each (postgres/, sqlite/, mysql/). The folders share version
// numbers and describe the same logical schema; goose records progress in
// its default goose_db_version table, so the stock goose CLI can read it
// too.
package migrations

import (
	"database/sql"
	"embed"
	"fmt"
	"io/fs"
	"time"

	"github.com/pressly/goose/v3"
	"github.com/pressly/goose/v3/lock"
)

//go:embed */*.sql
var files embed.FS

// Dir returns the migrations of one engine: the folder named after it.
func Dir(engine string) (fs.FS, error) {
	if _, err := fs.Stat(files, engine); err != nil {
		return nil, fmt.Errorf("no migrations for %q", engine)
	}
	return fs.Sub(files, engine)
}

// NewProvider returns a goose provider for db, which must be a Postgres or
// SQLite database matching dialect. On Postgres it holds goose's table
// lock while it migrates, a row in goose_lock renewed by a heartbeat, so
// that several `migrate up` runs at once apply each migration once. It
// works through any pooler: a session advisory lock, the lighter kind,
// lives on one server connection, and with a DIRECT_DATABASE_URL that goes
// through PgBouncer in transaction mode by mistake it was taken on one
// connection and never released on another (docs/postgres.md). A waiting
// run retries every second for up to five minutes: a deploy waiting on
// another's migrations goes on as soon as it can. SQLite serialises
// writers itself and takes no lock.
func NewProvider(dialect goose.Dialect, db *sql.DB) (*goose.Provider, error) {
	var (
		dir  string
		opts []goose.ProviderOption
	)
	switch dialect {
	case goose.DialectPostgres:
		dir = "postgres"
		locker, err := lock.NewPostgresTableLocker(lock.WithTableLockTimeout(time.Second, 300))
		if err != nil {
			return nil, fmt.Errorf("creating the migration lock: %w", err)
		}
		opts = append(opts, goose.WithLocker(locker))
	case goose.DialectSQLite3:
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
