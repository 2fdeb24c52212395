package storage

import (
	"context"
	"errors"
	"log/slog"
	"time"

	"github.com/example/flystorage/internal/config"
)

// Driver is one database engine. Each backend package exports one
// (postgres.Driver, mysql.Driver, mongodb.Driver, sqlite.Driver), and
// internal/storage/backend/registry.go lists them: the driver whose Var is
// set, and whose Schemes match its value, opens the database. Nothing else
// in the app switches on the engine.
type Driver struct {
	// Name is the engine, as logs, /api/storage and the page show it.
	Name string
	// Var is the variable that selects the driver: DATABASE_URL,
	// MONGODB_URI or DATABASE_PATH. The registry refuses two set at once.
	Var string
	// Schemes are the URL schemes of Var's value the driver takes, such as
	// "postgres" and "postgresql"; none takes any value (a file path).
	Schemes []string
	// Local says the database is a file on this machine's volume: every
	// machine has its own, so files and backups in a shared bucket are kept
	// per machine, and machines outside the primary region replay to it.
	Local bool
	// Vars documents the variables the driver reads besides Var, for
	// docs/configuration.md and .env.example.
	Vars []config.Var
	// Load reads the driver's configuration: value is Var's (empty for the
	// default driver when nothing is set), getenv reads the rest. It checks
	// everything it can without a network, and its errors are
	// *config.Error values naming the variable and never holding a secret.
	Load func(value string, getenv func(string) string) (Source, error)
}

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
// SQL engines implement it with goose (migrations.Goose); MongoDB with its
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
