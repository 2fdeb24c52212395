// Package postgres keeps notes and file metadata in Postgres through a
// pgxpool: Fly Managed Postgres, legacy Fly Postgres, or an external one.
package postgres

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/jackc/pgx/v5/stdlib"
	"github.com/pressly/goose/v3"

	"github.com/example/flystorage/internal/storage"
	"github.com/example/flystorage/migrations"
)

var _ storage.Database = (*Store)(nil)

// defaultConnectTimeout bounds a connection attempt when the URL sets no
// connect_timeout, so a database that is down fails a request instead of
// hanging it.
const defaultConnectTimeout = 5 * time.Second

// Store is a storage.Database on a pgxpool.
type Store struct {
	pool     *pgxpool.Pool
	describe map[string]string
}

// Options tune Open.
type Options struct {
	// Migrate applies pending migrations; otherwise Open fails when the
	// schema is behind.
	Migrate bool
	// Redacted is the URL with its password masked, for Describe.
	Redacted string
}

// ErrSchemaBehind is returned by Open when migrations are pending.
var ErrSchemaBehind = errors.New("the database schema is behind this version of the app: run `migrate up` (cmd/migrate), or set MIGRATE_ON_START=true")

// Open connects to the database at url, checks it answers, and checks the
// schema is current (or migrates it when opts.Migrate).
func Open(ctx context.Context, url string, opts Options) (*Store, error) {
	cfg, err := pgxpool.ParseConfig(url)
	if err != nil {
		return nil, err // pgconn masks the password
	}
	if cfg.ConnConfig.ConnectTimeout == 0 {
		cfg.ConnConfig.ConnectTimeout = defaultConnectTimeout
	}
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, err
	}
	s := &Store{pool: pool, describe: map[string]string{"backend": "postgres", "url": opts.Redacted}}
	if err := s.Ping(ctx); err != nil {
		pool.Close()
		return nil, err
	}
	if err := s.checkSchema(ctx, opts.Migrate); err != nil {
		pool.Close()
		return nil, err
	}
	return s, nil
}

func (s *Store) checkSchema(ctx context.Context, migrate bool) error {
	db := stdlib.OpenDBFromPool(s.pool)
	defer db.Close()
	p, err := migrations.NewProvider(goose.DialectPostgres, db)
	if err != nil {
		return err
	}
	if migrate {
		if _, err := p.Up(ctx); err != nil {
			return fmt.Errorf("migrating: %w", err)
		}
		return nil
	}
	pending, err := p.HasPending(ctx)
	if err != nil {
		return fmt.Errorf("reading the schema version: %w", translate(err))
	}
	if pending {
		return ErrSchemaBehind
	}
	return nil
}

// OpenDB opens url as a database/sql handle, for goose.
func OpenDB(url string) (*sql.DB, error) {
	cfg, err := pgx.ParseConfig(url)
	if err != nil {
		return nil, err
	}
	if cfg.ConnectTimeout == 0 {
		cfg.ConnectTimeout = defaultConnectTimeout
	}
	return stdlib.OpenDB(*cfg), nil
}

// Close closes the pool.
func (s *Store) Close() error { s.pool.Close(); return nil }

// Describe returns the backend name and the redacted URL.
func (s *Store) Describe() map[string]string { return s.describe }

// Ping runs a query, so that it fails when the server is gone even if a
// pooled connection looks alive.
func (s *Store) Ping(ctx context.Context) error {
	var one int
	return translate(s.pool.QueryRow(ctx, "SELECT 1").Scan(&one))
}

func (s *Store) CreateNote(ctx context.Context, n storage.Note) error {
	_, err := s.pool.Exec(ctx,
		`INSERT INTO notes (id, title, body, created_at, updated_at) VALUES ($1, $2, $3, $4, $5)`,
		n.ID, n.Title, n.Body, n.CreatedAt, n.UpdatedAt)
	return translate(err)
}

func (s *Store) GetNote(ctx context.Context, id string) (storage.Note, error) {
	rows, _ := s.pool.Query(ctx, `SELECT id, title, body, created_at, updated_at FROM notes WHERE id = $1`, id)
	n, err := pgx.CollectExactlyOneRow(rows, scanNote)
	return n, translate(err)
}

func (s *Store) UpdateNote(ctx context.Context, n storage.Note) (storage.Note, error) {
	rows, _ := s.pool.Query(ctx,
		`UPDATE notes SET title = $2, body = $3, updated_at = $4 WHERE id = $1
		 RETURNING id, title, body, created_at, updated_at`,
		n.ID, n.Title, n.Body, n.UpdatedAt)
	n, err := pgx.CollectExactlyOneRow(rows, scanNote)
	return n, translate(err)
}

func (s *Store) DeleteNote(ctx context.Context, id string) error {
	tag, err := s.pool.Exec(ctx, `DELETE FROM notes WHERE id = $1`, id)
	if err != nil {
		return translate(err)
	}
	if tag.RowsAffected() == 0 {
		return storage.ErrNotFound
	}
	return nil
}

func (s *Store) ListNotes(ctx context.Context, p storage.Page) ([]storage.Note, string, error) {
	if p.Cursor != "" && !storage.ValidID(p.Cursor) {
		return nil, "", fmt.Errorf("%w: malformed cursor", storage.ErrInvalid)
	}
	rows, _ := s.pool.Query(ctx,
		`SELECT id, title, body, created_at, updated_at FROM notes
		 WHERE id < $1 ORDER BY id DESC LIMIT $2`,
		storage.CursorOrStart(p.Cursor), p.Limit+1)
	notes, err := pgx.CollectRows(rows, scanNote)
	if err != nil {
		return nil, "", translate(err)
	}
	notes, next := storage.Cut(notes, p.Limit, func(n storage.Note) string { return n.ID })
	return notes, next, nil
}

func (s *Store) CreateFile(ctx context.Context, f storage.File) error {
	_, err := s.pool.Exec(ctx,
		`INSERT INTO files (id, name, content_type, size, sha256, key, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7)`,
		f.ID, f.Name, f.ContentType, f.Size, f.SHA256, f.Key, f.CreatedAt)
	return translate(err)
}

func (s *Store) GetFile(ctx context.Context, id string) (storage.File, error) {
	rows, _ := s.pool.Query(ctx, `SELECT id, name, content_type, size, sha256, key, created_at FROM files WHERE id = $1`, id)
	f, err := pgx.CollectExactlyOneRow(rows, scanFile)
	return f, translate(err)
}

func (s *Store) DeleteFile(ctx context.Context, id string) (storage.File, error) {
	rows, _ := s.pool.Query(ctx,
		`DELETE FROM files WHERE id = $1 RETURNING id, name, content_type, size, sha256, key, created_at`, id)
	f, err := pgx.CollectExactlyOneRow(rows, scanFile)
	return f, translate(err)
}

func (s *Store) ListFiles(ctx context.Context, p storage.Page) ([]storage.File, string, error) {
	if p.Cursor != "" && !storage.ValidID(p.Cursor) {
		return nil, "", fmt.Errorf("%w: malformed cursor", storage.ErrInvalid)
	}
	rows, _ := s.pool.Query(ctx,
		`SELECT id, name, content_type, size, sha256, key, created_at FROM files
		 WHERE id < $1 ORDER BY id DESC LIMIT $2`,
		storage.CursorOrStart(p.Cursor), p.Limit+1)
	files, err := pgx.CollectRows(rows, scanFile)
	if err != nil {
		return nil, "", translate(err)
	}
	files, next := storage.Cut(files, p.Limit, func(f storage.File) string { return f.ID })
	return files, next, nil
}

func scanNote(row pgx.CollectableRow) (storage.Note, error) {
	var n storage.Note
	err := row.Scan(&n.ID, &n.Title, &n.Body, &n.CreatedAt, &n.UpdatedAt)
	n.CreatedAt, n.UpdatedAt = n.CreatedAt.UTC(), n.UpdatedAt.UTC()
	return n, err
}

func scanFile(row pgx.CollectableRow) (storage.File, error) {
	var f storage.File
	err := row.Scan(&f.ID, &f.Name, &f.ContentType, &f.Size, &f.SHA256, &f.Key, &f.CreatedAt)
	f.CreatedAt = f.CreatedAt.UTC()
	return f, err
}

// translate turns pgx errors into the storage error kinds by their type and
// SQLSTATE code, never by their text.
func translate(err error) error {
	if err == nil {
		return nil
	}
	var pgErr *pgconn.PgError
	var connErr *pgconn.ConnectError
	var netErr net.Error
	switch {
	case errors.Is(err, pgx.ErrNoRows):
		return fmt.Errorf("%w: %w", storage.ErrNotFound, err)
	case errors.As(err, &pgErr):
		switch pgErr.Code {
		case "23505": // unique_violation
			return fmt.Errorf("%w: %w", storage.ErrConflict, err)
		case "23514", "22001", "22P02": // check_violation, string_data_right_truncation, invalid_text_representation
			return fmt.Errorf("%w: %w", storage.ErrInvalid, err)
		case "57P01", "57P02", "57P03", "53300": // admin_shutdown, crash_shutdown, cannot_connect_now, too_many_connections
			return fmt.Errorf("%w: %w", storage.ErrUnavailable, err)
		}
		if strings.HasPrefix(pgErr.Code, "08") { // connection_exception class
			return fmt.Errorf("%w: %w", storage.ErrUnavailable, err)
		}
		return err
	case errors.As(err, &connErr), errors.As(err, &netErr), pgconn.Timeout(err),
		errors.Is(err, context.DeadlineExceeded):
		return fmt.Errorf("%w: %w", storage.ErrUnavailable, err)
	}
	return err
}
