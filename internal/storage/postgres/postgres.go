// Package postgres keeps notes and file metadata in Postgres through a
// pgxpool: Fly Managed Postgres, an unmanaged Fly Postgres cluster, or an
// external one.
package postgres

import (
	"context"
	"crypto/tls"
	"database/sql"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/jackc/pgx/v5/stdlib"
	"github.com/pressly/goose/v3"

	"github.com/example/flystorage/internal/config"
	"github.com/example/flystorage/internal/storage"
	"github.com/example/flystorage/internal/storage/engine"
	"github.com/example/flystorage/migrations"
)

var _ storage.Database = (*Store)(nil)

// Store is a storage.Database on a pgxpool.
type Store struct {
	pool     *pgxpool.Pool
	describe map[string]string
}

// Options tune Open. Zero values leave pgx's settings (from the URL, or its
// defaults) in force.
type Options struct {
	// Migrate applies pending migrations; otherwise Open fails when the
	// schema is behind.
	Migrate bool
	// DirectURL, when set, is used for migrations instead of the pool, so
	// that DDL and long statements bypass PgBouncer (docs/postgres.md,
	// "Migrations").
	DirectURL string
	// Redacted is the URL with its password masked, for Describe and logs.
	Redacted string

	MaxConns        int32
	MinConns        int32
	MaxConnLifetime time.Duration
	MaxConnIdleTime time.Duration
	ConnectTimeout  time.Duration
	QueryExecMode   string // one of pgx's modes: exec, cache_statement, ...
	SlowQuery       time.Duration
	Logger          *slog.Logger
}

// defaultConnectTimeout bounds a connection attempt when nothing else does,
// so a database that is down fails a request instead of hanging it.
const defaultConnectTimeout = config.DefaultConnectTimeout

// Open connects to the database at url, checks it answers, warns if the
// connection crosses a network in plaintext, and checks the schema is
// current (or migrates it when opts.Migrate).
func Open(ctx context.Context, url string, opts Options) (*Store, error) {
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	cfg, err := poolConfig(url, opts)
	if err != nil {
		return nil, err
	}
	if opts.SlowQuery > 0 {
		cfg.ConnConfig.Tracer = &slowQueryLog{threshold: opts.SlowQuery, log: log}
	}
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, err
	}
	s := &Store{pool: pool, describe: map[string]string{"backend": "postgres", "url": opts.Redacted}}
	encrypted, err := s.checkConnection(ctx)
	if err != nil {
		pool.Close()
		return nil, err
	}
	s.describe["tls"] = strconv.FormatBool(encrypted)
	host := cfg.ConnConfig.Host
	if !encrypted && !engine.PrivateHost(host) {
		log.Warn("the database connection is not encrypted: anyone on the network path can read it; add sslmode=require (or verify-full) to DATABASE_URL (docs/postgres.md, TLS)",
			"host", host)
	}
	if err := s.checkSchema(ctx, opts, log); err != nil {
		pool.Close()
		return nil, err
	}
	return s, nil
}

// poolConfig parses url and applies the options over it.
func poolConfig(url string, opts Options) (*pgxpool.Config, error) {
	cfg, err := pgxpool.ParseConfig(url)
	if err != nil {
		return nil, err // pgconn masks the password
	}
	if opts.MaxConns > 0 {
		cfg.MaxConns = opts.MaxConns
	}
	if opts.MinConns > 0 {
		cfg.MinConns = opts.MinConns
	}
	if opts.MaxConnLifetime > 0 {
		cfg.MaxConnLifetime = opts.MaxConnLifetime
		// Spread reconnections so the pool does not renew every connection
		// at the same moment.
		cfg.MaxConnLifetimeJitter = opts.MaxConnLifetime / 10
	}
	if opts.MaxConnIdleTime > 0 {
		cfg.MaxConnIdleTime = opts.MaxConnIdleTime
	}
	if opts.ConnectTimeout > 0 {
		cfg.ConnConfig.ConnectTimeout = opts.ConnectTimeout
	}
	if cfg.ConnConfig.ConnectTimeout == 0 {
		// Never wait on a dead host for the kernel's TCP timeout.
		cfg.ConnConfig.ConnectTimeout = defaultConnectTimeout
	}
	if opts.QueryExecMode != "" {
		mode, ok := execModes[opts.QueryExecMode]
		if !ok {
			return nil, fmt.Errorf("unknown query exec mode %q", opts.QueryExecMode)
		}
		cfg.ConnConfig.DefaultQueryExecMode = mode
	}
	return cfg, nil
}

var execModes = map[string]pgx.QueryExecMode{
	"cache_statement": pgx.QueryExecModeCacheStatement,
	"cache_describe":  pgx.QueryExecModeCacheDescribe,
	"describe_exec":   pgx.QueryExecModeDescribeExec,
	"exec":            pgx.QueryExecModeExec,
	"simple_protocol": pgx.QueryExecModeSimpleProtocol,
}

// checkConnection runs a query on one connection and reports whether it is
// encrypted.
func (s *Store) checkConnection(ctx context.Context) (encrypted bool, err error) {
	conn, err := s.pool.Acquire(ctx)
	if err != nil {
		return false, translate(err)
	}
	defer conn.Release()
	var one int
	if err := conn.QueryRow(ctx, "SELECT 1").Scan(&one); err != nil {
		return false, translate(err)
	}
	_, encrypted = conn.Conn().PgConn().Conn().(*tls.Conn)
	return encrypted, nil
}

func (s *Store) checkSchema(ctx context.Context, opts Options, log *slog.Logger) error {
	// Migrations go over the direct URL when there is one, past any
	// pooler; the lock is goose's table lock either way (see
	// source.Migrations).
	var db *sql.DB
	if opts.Migrate && opts.DirectURL != "" {
		var err error
		if db, err = OpenDB(opts.DirectURL, opts.QueryExecMode); err != nil {
			return fmt.Errorf("opening DIRECT_DATABASE_URL: %w", err)
		}
	} else {
		db = stdlib.OpenDBFromPool(s.pool)
	}
	defer db.Close()
	p, err := migrations.NewProvider(goose.DialectPostgres, db)
	if err != nil {
		return err
	}
	if opts.Migrate {
		if err := migrations.Up(ctx, p, log); err != nil {
			return fmt.Errorf("migrating: %w", translate(err))
		}
		return nil
	}
	pending, err := p.HasPending(ctx)
	if err != nil {
		return fmt.Errorf("reading the schema version: %w", translate(err))
	}
	if pending {
		return storage.ErrSchemaBehind
	}
	return nil
}

// OpenDB opens url as a database/sql handle, for goose, in the query exec
// mode the app uses (empty: the URL's or pgx's), so that migrations work
// through PgBouncer as the app does.
func OpenDB(url, queryExecMode string) (*sql.DB, error) {
	cfg, err := pgx.ParseConfig(url)
	if err != nil {
		return nil, err
	}
	if cfg.ConnectTimeout == 0 {
		cfg.ConnectTimeout = defaultConnectTimeout
	}
	if queryExecMode != "" {
		mode, ok := execModes[queryExecMode]
		if !ok {
			return nil, fmt.Errorf("unknown query exec mode %q", queryExecMode)
		}
		cfg.DefaultQueryExecMode = mode
	}
	return stdlib.OpenDB(*cfg), nil
}

var _ storage.PoolReporter = (*Store)(nil)

// PoolStats reports the pgxpool.
func (s *Store) PoolStats() []storage.PoolStats {
	st := s.pool.Stat()
	return []storage.PoolStats{{
		Name: "postgres", Max: int64(st.MaxConns()), InUse: int64(st.AcquiredConns()), Idle: int64(st.IdleConns()),
		Acquires: st.AcquireCount(), Waits: st.EmptyAcquireCount(), WaitTotal: st.AcquireDuration(),
	}}
}

// Close closes the pool.
func (s *Store) Close() error { s.pool.Close(); return nil }

// Backend is "postgres" (storage.Describer).
func (s *Store) Backend() string { return "postgres" }

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
	notes, next := engine.Cut(notes, p.Limit, func(n storage.Note) string { return n.ID })
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
	files, next := engine.Cut(files, p.Limit, func(f storage.File) string { return f.ID })
	return files, next, nil
}

func (s *Store) CreateUpload(ctx context.Context, u storage.Upload) error {
	_, err := s.pool.Exec(ctx,
		`INSERT INTO uploads (id, name, content_type, size, key, created_at, expires_at) VALUES ($1, $2, $3, $4, $5, $6, $7)`,
		u.ID, u.Name, u.ContentType, u.Size, u.Key, u.CreatedAt, u.ExpiresAt)
	return translate(err)
}

func (s *Store) GetUpload(ctx context.Context, id string) (storage.Upload, error) {
	rows, _ := s.pool.Query(ctx, `SELECT id, name, content_type, size, key, created_at, expires_at FROM uploads WHERE id = $1`, id)
	u, err := pgx.CollectExactlyOneRow(rows, scanUpload)
	return u, translate(err)
}

func (s *Store) CompleteUpload(ctx context.Context, f storage.File, now time.Time) error {
	return translate(pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		tag, err := tx.Exec(ctx, `DELETE FROM uploads WHERE id = $1 AND expires_at > $2`, f.ID, now)
		if err != nil {
			return err
		}
		if tag.RowsAffected() == 0 {
			return storage.ErrNotFound
		}
		_, err = tx.Exec(ctx,
			`INSERT INTO files (id, name, content_type, size, sha256, key, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7)`,
			f.ID, f.Name, f.ContentType, f.Size, f.SHA256, f.Key, f.CreatedAt)
		return err
	}))
}

func (s *Store) DeleteUpload(ctx context.Context, id string) error {
	tag, err := s.pool.Exec(ctx, `DELETE FROM uploads WHERE id = $1`, id)
	if err != nil {
		return translate(err)
	}
	if tag.RowsAffected() == 0 {
		return storage.ErrNotFound
	}
	return nil
}

func (s *Store) ExpiredUploads(ctx context.Context, t time.Time, limit int) ([]storage.Upload, error) {
	rows, _ := s.pool.Query(ctx,
		`SELECT id, name, content_type, size, key, created_at, expires_at FROM uploads WHERE expires_at < $1 ORDER BY expires_at LIMIT $2`, t, limit)
	uploads, err := pgx.CollectRows(rows, scanUpload)
	return uploads, translate(err)
}

// NamedKeys asks about each batch of ids in one query, passing them as
// one text array, so the statement is the same whatever the batch's size.
// An intent's row comes back without a key (files.key is NOT NULL).
func (s *Store) NamedKeys(ctx context.Context, ids []string) (map[string]string, map[string]bool, error) {
	files, uploads := map[string]string{}, map[string]bool{}
	for batch := range slices.Chunk(ids, storage.NamedKeysBatch) {
		rows, _ := s.pool.Query(ctx,
			`SELECT id, key FROM files WHERE id = ANY($1::text[])
			 UNION ALL
			 SELECT id, NULL FROM uploads WHERE id = ANY($1::text[])`, batch)
		var id string
		var key *string
		_, err := pgx.ForEachRow(rows, []any{&id, &key}, func() error {
			if key != nil {
				files[id] = *key
			} else {
				uploads[id] = true
			}
			return nil
		})
		if err != nil {
			return nil, nil, translate(err)
		}
	}
	return files, uploads, nil
}

func scanUpload(row pgx.CollectableRow) (storage.Upload, error) {
	var u storage.Upload
	err := row.Scan(&u.ID, &u.Name, &u.ContentType, &u.Size, &u.Key, &u.CreatedAt, &u.ExpiresAt)
	u.CreatedAt, u.ExpiresAt = u.CreatedAt.UTC(), u.ExpiresAt.UTC()
	return u, err
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
	case errors.Is(err, storage.ErrNotFound):
		return err
	case errors.Is(err, pgx.ErrNoRows):
		return fmt.Errorf("%w: %w", storage.ErrNotFound, err)
	case errors.As(err, &pgErr):
		switch pgErr.Code {
		case "23505": // unique_violation
			return fmt.Errorf("%w: %w", storage.ErrConflict, err)
		case "23514", "22001", "22P02": // check_violation, string_data_right_truncation, invalid_text_representation
			return fmt.Errorf("%w: %w", storage.ErrInvalid, err)
		case "25006": // read_only_sql_transaction: a replica (replica.go)
			return fmt.Errorf("%w: %w", storage.ErrReadOnly, err)
		case "53100": // disk_full
			return fmt.Errorf("%w: %w", storage.ErrNoSpace, err)
		case "57P01", "57P02", "57P03", "53300": // admin_shutdown, crash_shutdown, cannot_connect_now, too_many_connections
			return fmt.Errorf("%w: %w", storage.ErrUnavailable, err)
		}
		if strings.HasPrefix(pgErr.Code, "08") { // connection_exception class
			return fmt.Errorf("%w: %w", storage.ErrUnavailable, err)
		}
		return err
	case errors.As(err, &connErr), pgconn.SafeToRetry(err):
		// Nothing reached the server: the statement surely did not run.
		return fmt.Errorf("%w: %w", storage.ErrUnavailable, err)
	case errors.As(err, &netErr), pgconn.Timeout(err), errors.Is(err, context.DeadlineExceeded),
		errors.Is(err, pgconn.ErrConnClosed), errors.Is(err, io.ErrUnexpectedEOF), errors.Is(err, io.EOF):
		return fmt.Errorf("%w (%w): %w", storage.ErrUnavailable, storage.ErrOutcomeUnknown, err)
	}
	return err
}

func (s *Store) CreateSession(ctx context.Context, se storage.Session) error {
	_, err := s.pool.Exec(ctx, `INSERT INTO sessions (id, created_at, expires_at) VALUES ($1, $2, $3)`, se.ID, se.CreatedAt, se.ExpiresAt)
	return translate(err)
}

func (s *Store) GetSession(ctx context.Context, id string, now time.Time) (storage.Session, error) {
	var se storage.Session
	err := s.pool.QueryRow(ctx, `SELECT id, created_at, expires_at FROM sessions WHERE id = $1 AND expires_at > $2`, id, now).
		Scan(&se.ID, &se.CreatedAt, &se.ExpiresAt)
	se.CreatedAt, se.ExpiresAt = se.CreatedAt.UTC(), se.ExpiresAt.UTC()
	return se, translate(err)
}

func (s *Store) DeleteSession(ctx context.Context, id string) error {
	_, err := s.pool.Exec(ctx, `DELETE FROM sessions WHERE id = $1`, id)
	return translate(err)
}

// ClaimIdempotencyKey inserts unless the key exists, then reads the row
// that stands. Two statements, not one: under READ COMMITTED the second
// sees a row that a concurrent claim committed while the first waited.
func (s *Store) ClaimIdempotencyKey(ctx context.Context, k storage.IdempotencyKey) (storage.IdempotencyKey, error) {
	if _, err := s.pool.Exec(ctx,
		`INSERT INTO idempotency_keys (key, fingerprint, resource_id, created_at) VALUES ($1, $2, $3, $4) ON CONFLICT (key) DO NOTHING`,
		k.Key, k.Fingerprint, k.ResourceID, k.CreatedAt); err != nil {
		return storage.IdempotencyKey{}, translate(err)
	}
	return s.GetIdempotencyKey(ctx, k.Key)
}

func (s *Store) GetIdempotencyKey(ctx context.Context, key string) (storage.IdempotencyKey, error) {
	var got storage.IdempotencyKey
	err := s.pool.QueryRow(ctx, `SELECT key, fingerprint, resource_id, created_at FROM idempotency_keys WHERE key = $1`, key).
		Scan(&got.Key, &got.Fingerprint, &got.ResourceID, &got.CreatedAt)
	got.CreatedAt = got.CreatedAt.UTC()
	return got, translate(err)
}

func (s *Store) PurgeExpired(ctx context.Context, now, keysBefore time.Time) (int64, error) {
	a, err := s.pool.Exec(ctx, `DELETE FROM sessions WHERE expires_at <= $1`, now)
	if err != nil {
		return 0, translate(err)
	}
	b, err := s.pool.Exec(ctx, `DELETE FROM idempotency_keys WHERE created_at < $1`, keysBefore)
	if err != nil {
		return a.RowsAffected(), translate(err)
	}
	return a.RowsAffected() + b.RowsAffected(), nil
}
