// Package backend is the one place that chooses where data goes: it reads
// the configuration and opens one database and one blob store. It sits apart
// from package storage because it imports every backend, and every backend
// imports storage.
package backend

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"

	"github.com/pressly/goose/v3"

	"github.com/example/flystorage/internal/config"
	"github.com/example/flystorage/internal/storage"
	"github.com/example/flystorage/internal/storage/localfs"
	"github.com/example/flystorage/internal/storage/postgres"
	"github.com/example/flystorage/internal/storage/s3"
	"github.com/example/flystorage/internal/storage/sqlite"
	"github.com/example/flystorage/migrations"
)

// Storage is the database and the blob store the app runs on.
type Storage struct {
	DB    storage.Database
	Blobs storage.Blobs
}

// Close closes both stores.
func (s *Storage) Close() error {
	return errors.Join(s.DB.Close(), s.Blobs.Close())
}

// Open opens the database and the blob store that cfg names.
func Open(ctx context.Context, cfg config.Config, log *slog.Logger) (*Storage, error) {
	var (
		db  storage.Database
		err error
	)
	switch cfg.Database {
	case config.Postgres: // DATABASE_URL
		db, err = postgres.Open(ctx, cfg.DatabaseURL, postgres.Options{
			Migrate:         cfg.MigrateOnStart,
			DirectURL:       cfg.DirectDatabaseURL,
			Redacted:        config.RedactURL(cfg.DatabaseURL),
			MaxConns:        cfg.Pool.MaxConns,
			MinConns:        cfg.Pool.MinConns,
			MaxConnLifetime: cfg.Pool.MaxConnLifetime,
			MaxConnIdleTime: cfg.Pool.MaxConnIdleTime,
			ConnectTimeout:  cfg.Pool.ConnectTimeout,
			QueryExecMode:   cfg.Pool.QueryExecMode,
			SlowQuery:       cfg.Pool.SlowQuery,
			Logger:          log,
		})
		if err != nil {
			return nil, fmt.Errorf("opening postgres at %s: %w", config.RedactURL(cfg.DatabaseURL), err)
		}
	case config.SQLite: // DATABASE_PATH, or the default ./data/app.db
		db, err = sqlite.Open(ctx, cfg.DatabasePath)
		if err != nil {
			return nil, fmt.Errorf("opening sqlite: %w", err)
		}
	default:
		return nil, fmt.Errorf("no database configured: set DATABASE_URL or DATABASE_PATH")
	}

	blobs, err := OpenBlobs(ctx, cfg)
	if err != nil {
		db.Close()
		return nil, err
	}
	return &Storage{DB: db, Blobs: blobs}, nil
}

// OpenBlobs opens the blob store that cfg names: the bucket, or the
// directory.
func OpenBlobs(ctx context.Context, cfg config.Config) (storage.Blobs, error) {
	switch {
	case cfg.S3 != nil: // BUCKET_NAME
		b, err := s3.New(ctx, s3.Options{
			Bucket:          cfg.S3.Bucket,
			Endpoint:        cfg.S3.Endpoint,
			Region:          cfg.S3.Region,
			AccessKeyID:     cfg.S3.AccessKeyID,
			SecretAccessKey: cfg.S3.SecretAccessKey,
			PathStyle:       cfg.S3.PathStyle,
			Timeout:         cfg.S3.Timeout,
			PartSize:        cfg.S3.PartSize,
			Concurrency:     cfg.S3.Concurrency,
			PublicEndpoint:  cfg.S3.PublicEndpoint,
		})
		if err != nil {
			return nil, fmt.Errorf("opening bucket %s: %w", cfg.S3.Bucket, err)
		}
		return b, nil
	default: // BLOB_DIR, or a blobs directory beside the database
		d, err := localfs.New(cfg.BlobDir)
		if err != nil {
			return nil, fmt.Errorf("opening blob directory: %w", err)
		}
		return d, nil
	}
}

// OpenSQL opens the configured database as a database/sql handle for goose,
// without migrating it, and says how to lock it. With Postgres it prefers
// DIRECT_DATABASE_URL, which bypasses PgBouncer, and a session advisory
// lock over it; with only DATABASE_URL, which may be pooled, a table lock.
func OpenSQL(cfg config.Config) (*sql.DB, goose.Dialect, migrations.Lock, error) {
	switch cfg.Database {
	case config.Postgres:
		url, lock := cfg.DatabaseURL, migrations.TableLock
		if cfg.DirectDatabaseURL != "" {
			url, lock = cfg.DirectDatabaseURL, migrations.SessionLock
		}
		db, err := postgres.OpenDB(url, cfg.Pool.QueryExecMode)
		return db, goose.DialectPostgres, lock, err
	case config.SQLite:
		db, err := sqlite.OpenDB(cfg.DatabasePath)
		return db, goose.DialectSQLite3, migrations.SessionLock, err
	}
	return nil, "", 0, fmt.Errorf("no database configured: set DATABASE_URL or DATABASE_PATH")
}
