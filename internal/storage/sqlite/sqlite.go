// Package sqlite keeps notes and file metadata in a SQLite file through
// modernc.org/sqlite (pure Go, so the app builds with CGO_ENABLED=0). On Fly
// the file lives on a volume (DATABASE_PATH); locally it defaults to
// ./data/app.db.
package sqlite

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"syscall"
	"time"

	"github.com/pressly/goose/v3"
	"modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"

	"github.com/example/flystorage/internal/storage"
	"github.com/example/flystorage/internal/storage/engine"
	"github.com/example/flystorage/migrations"
)

var _ storage.Database = (*Store)(nil)

// timeFormat is how times are stored: fixed width, so text order is time
// order, and microseconds like Postgres.
const timeFormat = "2006-01-02T15:04:05.000000Z"

// readerConns is the size of each pool of read-only connections: the
// notes' own (notereader.go) and database/sql's for every other read.
var readerConns = max(4, runtime.NumCPU())

// busyTimeout is how long a connection waits for a lock before SQLITE_BUSY.
const busyTimeout = 5 * time.Second

// Store is a storage.Database on one SQLite file: a single writer connection,
// whose transactions begin IMMEDIATE so that two writers never deadlock on a
// lock upgrade, and a pool of read-only connections, which WAL lets run while
// the writer writes.
type Store struct {
	writer, readers *sql.DB
	path            string
	lock            *os.File // shared, against a restore; see lock.go

	// The writer goroutine (writer.go) takes writes from jobs until closed
	// is closed, then closes stopped.
	jobs            chan *writeJob
	closed, stopped chan struct{}

	// conn is the writer's one connection, which the writer goroutine
	// holds for the store's life and runs its transactions on.
	conn *sql.Conn

	// Statements of the hot paths, prepared once instead of parsed on every
	// call. The transaction control and insertNote are prepared on conn.
	begin, commitTx, rollback      *sql.Stmt
	savepoint, rollbackTo, release *sql.Stmt // per write of a group
	insertNote                     *sql.Stmt

	// notes are the readers of GetNote and ListNotes (notereader.go).
	notes *noteReaders

	// newest caches the first page of notes (newest.go).
	newest newest

	// commitWait, when set, runs after each group commits (SetCommitWait).
	commitWait func(context.Context) error

	// follower: opened by OpenFollower, without a writer; the file
	// changes under it, so nothing is cached.
	follower bool
}

// Open opens (creating if needed) the database at path, its directory
// included, and applies pending migrations.
//
// The app migrates SQLite itself at start because Fly's release_command runs
// on a machine with no volume mounted: it could not reach this file (see the
// docs/sqlite.md, "Migrations").
func Open(ctx context.Context, path string) (*Store, error) {
	return open(ctx, path, slog.New(slog.DiscardHandler))
}

// open is Open, logging each migration it applies.
func open(ctx context.Context, path string, log *slog.Logger) (*Store, error) {
	lock, err := lockFile(path, false)
	if err != nil {
		return nil, err
	}
	writer, err := OpenDB(path)
	if err != nil {
		lock.Close()
		return nil, err
	}
	readers, err := sql.Open("sqlite", dsn(path, "_query_only=1"))
	if err != nil {
		writer.Close()
		lock.Close()
		return nil, err
	}
	// Keep every reader connection the pool opens: database/sql keeps
	// only 2 idle by default, and under more concurrent reads it would
	// close the rest and open them again, pragmas and prepared statements
	// included, read after read.
	readers.SetMaxOpenConns(readerConns)
	readers.SetMaxIdleConns(readerConns)
	s := &Store{writer: writer, readers: readers, path: path, lock: lock,
		jobs: make(chan *writeJob), closed: make(chan struct{}), stopped: make(chan struct{})}

	p, err := migrations.NewProvider(goose.DialectSQLite3, writer)
	if err == nil {
		err = migrations.Up(ctx, p, log)
	}
	if err != nil {
		writer.Close()
		readers.Close()
		lock.Close()
		return nil, fmt.Errorf("migrating %s: %w", path, err)
	}
	if s.conn, err = writer.Conn(ctx); err == nil {
		err = s.prepare(ctx)
	}
	if err == nil {
		s.notes, err = openNoteReaders(ctx, path, readerConns)
	}
	if err != nil {
		if s.conn != nil {
			s.closeConn()
		}
		writer.Close()
		readers.Close()
		lock.Close()
		return nil, fmt.Errorf("preparing statements on %s: %w", path, err)
	}
	go s.writeLoop()
	// The restored database opened and migrated: the one it replaced is no
	// longer needed.
	if err := removeBeforeRestore(path); err != nil {
		s.Close()
		return nil, fmt.Errorf("removing the database a restore replaced: %w", err)
	}
	return s, nil
}

// prepare prepares the hot paths' statements, after the migrations made
// their tables.
func (s *Store) prepare(ctx context.Context) error {
	var err error
	for _, st := range []struct {
		stmt **sql.Stmt
		db   interface {
			PrepareContext(context.Context, string) (*sql.Stmt, error)
		}
		sql string
	}{
		// IMMEDIATE takes the write lock at once, so that a transaction never
		// fails to upgrade a read lock (SQLITE_BUSY) halfway through.
		{&s.begin, s.conn, `BEGIN IMMEDIATE`},
		{&s.commitTx, s.conn, `COMMIT`},
		{&s.rollback, s.conn, `ROLLBACK`},
		{&s.savepoint, s.conn, `SAVEPOINT w`},
		{&s.rollbackTo, s.conn, `ROLLBACK TO w`},
		{&s.release, s.conn, `RELEASE w`},
		{&s.insertNote, s.conn, `INSERT INTO notes (id, title, body, created_at, updated_at) VALUES (?, ?, ?, ?, ?)`},
	} {
		if *st.stmt, err = st.db.PrepareContext(ctx, st.sql); err != nil {
			return err
		}
	}
	return nil
}

// closeConn closes the statements prepared on the writer's connection,
// then the connection: database/sql closes a Conn's statements with it
// only when a DB prepared them, and SQLite keeps a connection with
// statements open (its files, and the WAL unchecked) until they are.
func (s *Store) closeConn() error {
	var errs []error
	for _, st := range []*sql.Stmt{s.begin, s.commitTx, s.rollback, s.savepoint, s.rollbackTo, s.release, s.insertNote} {
		if st != nil {
			errs = append(errs, st.Close())
		}
	}
	return errors.Join(append(errs, s.conn.Close())...)
}

// OpenDB opens the writer connection to path, creating its directory, for
// Open and for goose.
func OpenDB(path string) (*sql.DB, error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return nil, fmt.Errorf("creating the database directory: %w", err)
	}
	db, err := sql.Open("sqlite", dsn(path, "_txlock=immediate"))
	if err != nil {
		return nil, err
	}
	db.SetMaxOpenConns(1)
	db.SetConnMaxIdleTime(0) // keep the one connection
	// Open is lazy: make sure the file can be opened and set up now.
	if err := db.Ping(); err != nil {
		db.Close()
		return nil, fmt.Errorf("opening %s: %w", path, err)
	}
	return db, nil
}

// dsn sets up every connection: WAL so readers never block the writer,
// synchronous=NORMAL (durable across app crashes, and safe with WAL), foreign
// keys on, and a busy timeout instead of an immediate SQLITE_BUSY.
func dsn(path, extra string) string {
	return "file:" + fileURL(path) +
		"?_journal_mode=WAL&_synchronous=NORMAL&_foreign_keys=1" +
		fmt.Sprintf("&_busy_timeout=%d&", busyTimeout.Milliseconds()) + extra
}

// fileURL is path as a file: URL's path.
func fileURL(path string) string { return (&url.URL{Path: path}).EscapedPath() }

// Path is the database file.
func (s *Store) Path() string { return s.path }

// Close stops the writer goroutine, once the writes it has taken are
// committed, and closes both pools. Writes still waiting fail.
func (s *Store) Close() error {
	select {
	case <-s.closed:
		return nil
	default:
	}
	close(s.closed)
	<-s.stopped
	if s.follower {
		return s.closeFollower()
	}
	lockErr := s.lock.Close()
	if errors.Is(lockErr, os.ErrClosed) {
		lockErr = nil // closed before
	}
	return errors.Join(s.notes.close(), s.closeConn(), s.readers.Close(), s.writer.Close(), lockErr)
}

var _ storage.PoolReporter = (*Store)(nil)

// PoolStats reports the writer connection (always in use: the writer
// goroutine holds it), the reader pool, and the notes' readers.
func (s *Store) PoolStats() []storage.PoolStats {
	stats := func(name string, db *sql.DB) storage.PoolStats {
		st := db.Stats()
		return storage.PoolStats{Name: name, Max: int64(st.MaxOpenConnections), InUse: int64(st.InUse), Idle: int64(st.Idle),
			Waits: st.WaitCount, WaitTotal: st.WaitDuration}
	}
	idle := int64(len(s.notes.free))
	notes := storage.PoolStats{Name: "sqlite_note_readers", Max: int64(len(s.notes.all)), InUse: int64(len(s.notes.all)) - idle, Idle: idle}
	if s.follower {
		return []storage.PoolStats{stats("sqlite_readers", s.readers), notes}
	}
	return []storage.PoolStats{stats("sqlite_writer", s.writer), stats("sqlite_readers", s.readers), notes}
}

// Backend is "sqlite" (storage.Describer).
func (s *Store) Backend() string { return "sqlite" }

// Describe returns the backend name and the file's path.
func (s *Store) Describe() map[string]string {
	return map[string]string{"backend": "sqlite", "path": s.path}
}

// Ping reads from the file through the reader pool.
func (s *Store) Ping(ctx context.Context) error {
	var n int
	return translate(s.readers.QueryRowContext(ctx, "SELECT count(*) FROM sqlite_master").Scan(&n))
}

func (s *Store) CreateNote(ctx context.Context, n storage.Note) error {
	defer s.newest.changed()
	return s.writeOne(ctx, func(ctx context.Context, tx querier) error {
		_, err := s.insertNote.ExecContext(ctx, // on tx's connection
			n.ID, n.Title, n.Body, n.CreatedAt.Format(timeFormat), n.UpdatedAt.Format(timeFormat))
		return err
	})
}

func (s *Store) GetNote(ctx context.Context, id string) (storage.Note, error) {
	r, err := s.notes.take(ctx)
	if err != nil {
		return storage.Note{}, err
	}
	defer s.notes.put(r)
	n, err := r.getNote(id)
	return n, translate(err)
}

func (s *Store) UpdateNote(ctx context.Context, n storage.Note) (storage.Note, error) {
	defer s.newest.changed()
	var out storage.Note
	err := s.write(ctx, func(ctx context.Context, tx querier) error {
		var err error
		out, err = scanNote(tx.QueryRowContext(ctx,
			`UPDATE notes SET title = ?, body = ?, updated_at = ? WHERE id = ?
			 RETURNING id, title, body, created_at, updated_at`,
			n.Title, n.Body, n.UpdatedAt.Format(timeFormat), n.ID))
		return err
	})
	return out, err
}

func (s *Store) DeleteNote(ctx context.Context, id string) error {
	defer s.newest.changed()
	return s.write(ctx, func(ctx context.Context, tx querier) error {
		res, err := tx.ExecContext(ctx, `DELETE FROM notes WHERE id = ?`, id)
		if err != nil {
			return err
		}
		n, err := res.RowsAffected()
		if err == nil && n == 0 {
			err = storage.ErrNotFound
		}
		return err
	})
}

func (s *Store) ListNotes(ctx context.Context, p storage.Page) ([]storage.Note, string, error) {
	if p.Cursor != "" && !storage.ValidID(p.Cursor) {
		return nil, "", fmt.Errorf("%w: malformed cursor", storage.ErrInvalid)
	}
	if err := ctx.Err(); err != nil {
		return nil, "", translate(err)
	}
	var gen uint64
	if p.Cursor == "" && !s.follower {
		var notes []storage.Note
		var next string
		var ok bool
		if notes, next, ok, gen = s.newest.get(p.Limit); ok {
			return notes, next, nil
		}
	}
	r, err := s.notes.take(ctx)
	if err != nil {
		return nil, "", err
	}
	notes := make([]storage.Note, 0, max(p.Limit+1, 0))
	err = r.query(r.list, func(row scanner) error {
		n, err := scanNote(row)
		notes = append(notes, n)
		return err
	}, storage.CursorOrStart(p.Cursor), int64(p.Limit+1))
	s.notes.put(r)
	if err != nil {
		return nil, "", translate(err)
	}
	notes, next := engine.Cut(notes, p.Limit, func(n storage.Note) string { return n.ID })
	if p.Cursor == "" && !s.follower {
		s.newest.put(p.Limit, gen, notes, next)
	}
	return notes, next, nil
}

func (s *Store) CreateFile(ctx context.Context, f storage.File) error {
	return s.writeOne(ctx, func(ctx context.Context, tx querier) error {
		_, err := tx.ExecContext(ctx,
			`INSERT INTO files (id, name, content_type, size, sha256, key, created_at) VALUES (?, ?, ?, ?, ?, ?, ?)`,
			f.ID, f.Name, f.ContentType, f.Size, f.SHA256, f.Key, f.CreatedAt.Format(timeFormat))
		return err
	})
}

func (s *Store) GetFile(ctx context.Context, id string) (storage.File, error) {
	row := s.readers.QueryRowContext(ctx, `SELECT id, name, content_type, size, sha256, key, created_at FROM files WHERE id = ?`, id)
	f, err := scanFile(row)
	return f, translate(err)
}

func (s *Store) DeleteFile(ctx context.Context, id string) (storage.File, error) {
	var f storage.File
	err := s.write(ctx, func(ctx context.Context, tx querier) error {
		var err error
		f, err = scanFile(tx.QueryRowContext(ctx,
			`DELETE FROM files WHERE id = ? RETURNING id, name, content_type, size, sha256, key, created_at`, id))
		return err
	})
	return f, err
}

func (s *Store) ListFiles(ctx context.Context, p storage.Page) ([]storage.File, string, error) {
	if p.Cursor != "" && !storage.ValidID(p.Cursor) {
		return nil, "", fmt.Errorf("%w: malformed cursor", storage.ErrInvalid)
	}
	rows, err := s.readers.QueryContext(ctx,
		`SELECT id, name, content_type, size, sha256, key, created_at FROM files WHERE id < ? ORDER BY id DESC LIMIT ?`,
		storage.CursorOrStart(p.Cursor), p.Limit+1)
	files, err := collect(rows, err, scanFile)
	if err != nil {
		return nil, "", err
	}
	files, next := engine.Cut(files, p.Limit, func(f storage.File) string { return f.ID })
	return files, next, nil
}

func (s *Store) CreateUpload(ctx context.Context, u storage.Upload) error {
	return s.writeOne(ctx, func(ctx context.Context, tx querier) error {
		_, err := tx.ExecContext(ctx,
			`INSERT INTO uploads (id, name, content_type, size, key, created_at, expires_at) VALUES (?, ?, ?, ?, ?, ?, ?)`,
			u.ID, u.Name, u.ContentType, u.Size, u.Key, u.CreatedAt.Format(timeFormat), u.ExpiresAt.Format(timeFormat))
		return err
	})
}

func (s *Store) GetUpload(ctx context.Context, id string) (storage.Upload, error) {
	row := s.readers.QueryRowContext(ctx, `SELECT id, name, content_type, size, key, created_at, expires_at FROM uploads WHERE id = ?`, id)
	u, err := scanUpload(row)
	return u, translate(err)
}

func (s *Store) CompleteUpload(ctx context.Context, f storage.File, now time.Time) error {
	return s.write(ctx, func(ctx context.Context, tx querier) error {
		res, err := tx.ExecContext(ctx, `DELETE FROM uploads WHERE id = ? AND expires_at > ?`, f.ID, now.UTC().Format(timeFormat))
		if err != nil {
			return err
		}
		if n, err := res.RowsAffected(); err != nil || n == 0 {
			return errors.Join(err, storage.ErrNotFound)
		}
		_, err = tx.ExecContext(ctx,
			`INSERT INTO files (id, name, content_type, size, sha256, key, created_at) VALUES (?, ?, ?, ?, ?, ?, ?)`,
			f.ID, f.Name, f.ContentType, f.Size, f.SHA256, f.Key, f.CreatedAt.Format(timeFormat))
		return err
	})
}

func (s *Store) DeleteUpload(ctx context.Context, id string) error {
	return s.write(ctx, func(ctx context.Context, tx querier) error {
		res, err := tx.ExecContext(ctx, `DELETE FROM uploads WHERE id = ?`, id)
		if err != nil {
			return err
		}
		n, err := res.RowsAffected()
		if err == nil && n == 0 {
			err = storage.ErrNotFound
		}
		return err
	})
}

func (s *Store) ExpiredUploads(ctx context.Context, t time.Time, limit int) ([]storage.Upload, error) {
	rows, err := s.readers.QueryContext(ctx,
		`SELECT id, name, content_type, size, key, created_at, expires_at FROM uploads WHERE expires_at < ? ORDER BY expires_at LIMIT ?`,
		t.UTC().Format(timeFormat), limit)
	return collect(rows, err, scanUpload)
}

// NamedKeys asks about each batch of ids in one query, passing them as a
// JSON array that json_each unpacks, so the statement is the same whatever
// the batch's size. An intent's row comes back without a key (files.key is
// NOT NULL).
func (s *Store) NamedKeys(ctx context.Context, ids []string) (map[string]string, map[string]bool, error) {
	files, uploads := map[string]string{}, map[string]bool{}
	for batch := range slices.Chunk(ids, storage.NamedKeysBatch) {
		list, err := json.Marshal(batch)
		if err != nil {
			return nil, nil, err
		}
		rows, err := s.readers.QueryContext(ctx,
			`SELECT id, key FROM files WHERE id IN (SELECT value FROM json_each(?))
			 UNION ALL
			 SELECT id, NULL FROM uploads WHERE id IN (SELECT value FROM json_each(?))`, list, list)
		if err != nil {
			return nil, nil, translate(err)
		}
		if err := engine.ScanNamedKeys(rows, files, uploads); err != nil {
			return nil, nil, translate(err)
		}
	}
	return files, uploads, nil
}

func scanUpload(row scanner) (storage.Upload, error) {
	var u storage.Upload
	var created, expires string
	if err := row.Scan(&u.ID, &u.Name, &u.ContentType, &u.Size, &u.Key, &created, &expires); err != nil {
		return u, err
	}
	var err1, err2 error
	u.CreatedAt, err1 = parseTime(created)
	u.ExpiresAt, err2 = parseTime(expires)
	return u, errors.Join(err1, err2)
}

type scanner interface{ Scan(...any) error }

func scanNote(row scanner) (storage.Note, error) {
	var n storage.Note
	var created, updated string
	if err := row.Scan(&n.ID, &n.Title, &n.Body, &created, &updated); err != nil {
		return n, err
	}
	var err1, err2 error
	n.CreatedAt, err1 = parseTime(created)
	n.UpdatedAt, err2 = parseTime(updated)
	return n, errors.Join(err1, err2)
}

func scanFile(row scanner) (storage.File, error) {
	var f storage.File
	var created string
	if err := row.Scan(&f.ID, &f.Name, &f.ContentType, &f.Size, &f.SHA256, &f.Key, &created); err != nil {
		return f, err
	}
	var err error
	f.CreatedAt, err = parseTime(created)
	return f, err
}

func collect[T any](rows *sql.Rows, err error, scan func(scanner) (T, error)) ([]T, error) {
	if err != nil {
		return nil, translate(err)
	}
	defer rows.Close()
	out := make([]T, 0, 8)
	for rows.Next() {
		v, err := scan(rows)
		if err != nil {
			return nil, translate(err)
		}
		out = append(out, v)
	}
	return out, translate(rows.Err())
}

// translate turns SQLite result codes into the storage error kinds.
func translate(err error) error {
	if err == nil {
		return nil
	}
	var sqlErr *sqlite.Error
	switch {
	case errors.Is(err, sql.ErrNoRows):
		return fmt.Errorf("%w: %w", storage.ErrNotFound, err)
	case errors.Is(err, context.DeadlineExceeded):
		return fmt.Errorf("%w: %w", storage.ErrUnavailable, err)
	case errors.As(err, &sqlErr):
		switch code := sqlErr.Code(); {
		case code == sqlite3.SQLITE_CONSTRAINT_UNIQUE, code == sqlite3.SQLITE_CONSTRAINT_PRIMARYKEY:
			return fmt.Errorf("%w: %w", storage.ErrConflict, err)
		case code == sqlite3.SQLITE_CONSTRAINT_CHECK:
			return fmt.Errorf("%w: %w", storage.ErrInvalid, err)
		case code&0xff == sqlite3.SQLITE_BUSY, code&0xff == sqlite3.SQLITE_LOCKED:
			return fmt.Errorf("%w: %w", storage.ErrUnavailable, err)
		case code&0xff == sqlite3.SQLITE_FULL:
			return fmt.Errorf("%w: %w", storage.ErrNoSpace, err)
		}
	case errors.Is(err, syscall.ENOSPC), errors.Is(err, syscall.EDQUOT):
		return fmt.Errorf("%w: %w", storage.ErrNoSpace, err)
	}
	return err
}

var _ storage.VolumeReporter = (*Store)(nil)

// Volume reports the file system holding the database file.
func (s *Store) Volume() (storage.Volume, error) {
	return storage.StatVolume(filepath.Dir(s.path))
}

func (s *Store) CreateSession(ctx context.Context, se storage.Session) error {
	return s.writeOne(ctx, func(ctx context.Context, tx querier) error {
		_, err := tx.ExecContext(ctx, `INSERT INTO sessions (id, created_at, expires_at) VALUES (?, ?, ?)`,
			se.ID, se.CreatedAt.Format(timeFormat), se.ExpiresAt.Format(timeFormat))
		return err
	})
}

func (s *Store) GetSession(ctx context.Context, id string, now time.Time) (storage.Session, error) {
	var se storage.Session
	var created, expires string
	err := s.readers.QueryRowContext(ctx, `SELECT id, created_at, expires_at FROM sessions WHERE id = ? AND expires_at > ?`,
		id, now.UTC().Format(timeFormat)).Scan(&se.ID, &created, &expires)
	if err != nil {
		return se, translate(err)
	}
	var err1, err2 error
	se.CreatedAt, err1 = parseTime(created)
	se.ExpiresAt, err2 = parseTime(expires)
	return se, errors.Join(err1, err2)
}

func (s *Store) DeleteSession(ctx context.Context, id string) error {
	return s.write(ctx, func(ctx context.Context, tx querier) error {
		_, err := tx.ExecContext(ctx, `DELETE FROM sessions WHERE id = ?`, id)
		return err
	})
}

func (s *Store) ClaimIdempotencyKey(ctx context.Context, k storage.IdempotencyKey) (storage.IdempotencyKey, error) {
	var got storage.IdempotencyKey
	err := s.write(ctx, func(ctx context.Context, tx querier) error {
		if _, err := tx.ExecContext(ctx,
			`INSERT INTO idempotency_keys (key, fingerprint, resource_id, created_at) VALUES (?, ?, ?, ?) ON CONFLICT (key) DO NOTHING`,
			k.Key, k.Fingerprint, k.ResourceID, k.CreatedAt.Format(timeFormat)); err != nil {
			return err
		}
		var created string
		if err := tx.QueryRowContext(ctx, `SELECT key, fingerprint, resource_id, created_at FROM idempotency_keys WHERE key = ?`, k.Key).
			Scan(&got.Key, &got.Fingerprint, &got.ResourceID, &created); err != nil {
			return err
		}
		var err error
		got.CreatedAt, err = parseTime(created)
		return err
	})
	return got, err
}

func (s *Store) GetIdempotencyKey(ctx context.Context, key string) (storage.IdempotencyKey, error) {
	var got storage.IdempotencyKey
	var created string
	err := s.readers.QueryRowContext(ctx, `SELECT key, fingerprint, resource_id, created_at FROM idempotency_keys WHERE key = ?`, key).
		Scan(&got.Key, &got.Fingerprint, &got.ResourceID, &created)
	if err != nil {
		return got, translate(err)
	}
	got.CreatedAt, err = parseTime(created)
	return got, err
}

func (s *Store) PurgeExpired(ctx context.Context, now, keysBefore time.Time) (int64, error) {
	var n int64
	err := s.write(ctx, func(ctx context.Context, tx querier) error {
		for _, q := range []struct {
			sql string
			t   time.Time
		}{
			{`DELETE FROM sessions WHERE expires_at <= ?`, now},
			{`DELETE FROM idempotency_keys WHERE created_at < ?`, keysBefore},
		} {
			res, err := tx.ExecContext(ctx, q.sql, q.t.UTC().Format(timeFormat))
			if err != nil {
				return err
			}
			m, err := res.RowsAffected()
			if err != nil {
				return err
			}
			n += m
		}
		return nil
	})
	return n, err
}
