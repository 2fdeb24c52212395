package sqlite

import (
	"context"
	"fmt"
	"log/slog"
	"sync"

	"github.com/pressly/goose/v3"

	"github.com/example/flystorage/internal/config"
	"github.com/example/flystorage/internal/storage"
	"github.com/example/flystorage/internal/storage/engine"
	"github.com/example/flystorage/migrations"
)

// DefaultPath is the database when nothing selects another, so that `go run
// ./cmd/app` works on a fresh machine.
const DefaultPath = "data/app.db"

// Driver opens SQLite at DATABASE_PATH (a file on a Fly Volume), and is the
// default when no database variable is set.
var Driver = engine.Driver{
	Name:  "sqlite",
	Var:   "DATABASE_PATH",
	Local: true,
	Vars: []config.Var{
		{Name: "DATABASE_PATH", Group: "Database", Default: DefaultPath, Example: "/data/app.db",
			Doc: "SQLite file, on a Fly Volume in production (fly.sqlite.toml). Used when neither DATABASE_URL nor MONGODB_URI is set."},
	},
	Load: func(value string, _ func(string) string) (storage.Source, error) {
		if value == "" {
			value = DefaultPath
		}
		return Source{Path: value}, nil
	},
}

var _ storage.FileSource = Source{}

// Source is a configured SQLite database.
type Source struct {
	// Path is the database file.
	Path string
	// Follower opens it read-only, as a copy another machine's writes
	// reach through the bucket (OpenFollower).
	Follower bool
	// Reads, on a follower, is held for writing while a transaction is
	// applied to the copy; every read holds it for reading.
	Reads *sync.RWMutex
}

// Open opens the file and applies pending migrations, always: Fly's
// release_command runs on a machine without the volume (docs/sqlite.md, "Migrations").
func (s Source) Open(ctx context.Context, o storage.OpenOptions) (storage.Database, error) {
	log := o.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if s.Follower {
		return OpenFollower(ctx, s.Path, s.Reads)
	}
	db, err := open(ctx, s.Path, log)
	if err != nil {
		return nil, fmt.Errorf("opening sqlite: %w", err)
	}
	return db, nil
}

// Migrations runs on the writer connection; SQLite serialises writers
// itself, so it needs no lock of goose's.
func (s Source) Migrations(ctx context.Context) (storage.Migrations, error) {
	db, err := OpenDB(s.Path)
	if err != nil {
		return nil, err
	}
	p, err := migrations.NewProvider(goose.DialectSQLite3, db)
	if err != nil {
		db.Close()
		return nil, err
	}
	return engine.Goose(p, db, s.Path), nil
}

// File is the database file (storage.FileSource): local files go beside
// it unless BLOB_DIR says otherwise, and backups copy it.
func (s Source) File() string { return s.Path }

func (s Source) Redacted() string { return s.Path }

func (s Source) LogValue() slog.Value { return slog.GroupValue(slog.String("path", s.Path)) }
