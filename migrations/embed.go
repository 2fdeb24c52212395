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

// Lock says how migrations on Postgres keep out of each other's way, so
// that several `migrate up` runs at once apply each migration once.
type Lock int

const (
	// SessionLock holds a session advisory lock: the lightest, but it lives
	// on one server connection, so it needs a direct connection. Behind
	// PgBouncer in transaction mode it may be taken on one server
	// connection and released on another, and a DIRECT_DATABASE_URL that
	// goes through one by mistake cannot be told apart, so the Postgres
	// backend takes TableLock always; SQLite, which ignores the lock,
	// passes this.
	SessionLock Lock = iota
	// TableLock holds a row in goose_lock, renewed by a heartbeat, which
	// works through any pooler: for when the only URL may be a pooled one.
	TableLock
)

// NewProvider returns a goose provider for db, which must be a Postgres or
// SQLite database matching dialect. On Postgres it takes lock while it
// migrates; SQLite serialises writers itself.
func NewProvider(dialect goose.Dialect, db *sql.DB, lock Lock) (*goose.Provider, error) {
	var (
		dir  string
		opts []goose.ProviderOption
	)
	switch dialect {
	case goose.DialectPostgres:
		dir = "postgres"
		opt, err := lockOption(lock)
		if err != nil {
			return nil, fmt.Errorf("creating the migration lock: %w", err)
		}
		opts = append(opts, opt)
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

// lockOption makes the lock. Both retry every second for up to five
// minutes: a deploy waiting on another's migrations should go on as soon as
// it can.
func lockOption(l Lock) (goose.ProviderOption, error) {
	if l == TableLock {
		locker, err := lock.NewPostgresTableLocker(lock.WithTableLockTimeout(time.Second, 300))
		return goose.WithLocker(locker), err
	}
	locker, err := lock.NewPostgresSessionLocker(lock.WithLockTimeout(1, 300))
	return goose.WithSessionLocker(locker), err
}
