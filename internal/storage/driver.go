package storage

import (
	"context"
	"errors"
	"log/slog"
	"time"
)

// Source is a database configured but not yet opened.
type Source interface {
	// Open connects and checks the schema. Engines whose release machine
	// cannot reach the database (SQLite on a volume) migrate here always;
	// the others migrate when o.Migrate (MIGRATE_ON_START) and otherwise
	// fail with an error matching ErrSchemaBehind while migrations are
	// pending.
	Open(ctx context.Context, o OpenOptions) (Database, error)
	// Migrations opens what cmd/migrate drives, on connections of its own;
	// the caller closes it.
	Migrations(ctx context.Context) (Migrations, error)
	// Redacted says where the database is, every secret masked: for logs,
	// errors and /api/storage.
	Redacted() string
	// LogValue logs the effective configuration, secrets masked.
	LogValue() slog.Value
}

// ReplicaSource is a Source that can also open a read replica near this
// machine (Postgres's DATABASE_READ_URL), for reads in a region other than
// the primary's (internal/region).
type ReplicaSource interface {
	// OpenReplica opens the replica without migrating it, or returns nil
	// and no error when none is configured.
	OpenReplica(ctx context.Context, o OpenOptions) (Database, error)
}

// FileSource is a Source whose database is one file on this machine's
// volume (SQLite). The composition root puts local files beside it.
type FileSource interface {
	Source
	// File is the database file's path, as configured (DATABASE_PATH).
	File() string
}

// OpenOptions are what every Source.Open takes.
type OpenOptions struct {
	// Migrate applies pending migrations (MIGRATE_ON_START).
	Migrate bool
	Logger  *slog.Logger
}

// ErrSchemaBehind means the database's schema is older than this version of
// the app and Open was not asked to migrate it.
var ErrSchemaBehind = errors.New("the database schema is behind this version of the app: run `migrate up` (cmd/migrate), or set MIGRATE_ON_START=true")

// Migrations is a database's schema history, as cmd/migrate drives it.
// SQL engines implement it with goose (engine.Goose); MongoDB with its
// own versioned steps.
type Migrations interface {
	// Up applies every pending migration, in order, and returns what it
	// applied; none pending is not an error.
	Up(ctx context.Context) ([]MigrationResult, error)
	// Down rolls the newest applied migration back. At version 0 it
	// returns an error matching ErrNothingToRollBack.
	Down(ctx context.Context) (MigrationResult, error)
	// DownTo rolls back every migration newer than version.
	DownTo(ctx context.Context, version int64) ([]MigrationResult, error)
	// Status lists every known migration, oldest first.
	Status(ctx context.Context) ([]MigrationStatus, error)
	// Version is the newest applied migration, 0 for none.
	Version(ctx context.Context) (int64, error)
	// Where says which database, secrets masked.
	Where() string
	Close() error
}

// ErrNothingToRollBack is Migrations.Down's error at version 0.
var ErrNothingToRollBack = errors.New("nothing to roll back: no migration is applied")

// MigrationResult is one migration applied or rolled back.
type MigrationResult struct {
	Version   int64
	Name      string // e.g. 00001_create_notes.sql
	Direction string // "up" or "down"
	Duration  time.Duration
}

// MigrationStatus is one known migration and whether it is applied.
type MigrationStatus struct {
	Version   int64
	Name      string
	Applied   bool
	AppliedAt time.Time
}
