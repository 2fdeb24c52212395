package mysql

import (
	"context"
	"crypto/tls"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"io"
	"net"
	"slices"
	"strings"
	"time"

	"github.com/go-sql-driver/mysql"

	"github.com/example/flystorage/internal/storage"
	"github.com/example/flystorage/internal/storage/engine"
)

var (
	_ storage.Database     = (*Store)(nil)
	_ storage.PoolReporter = (*Store)(nil)
)

// Store is a storage.Database on a database/sql pool. MySQL has no
// RETURNING, so the writes that return a row run a short transaction.
type Store struct {
	db       *sql.DB
	maxConns int64
	describe map[string]string
}

// Close closes the pool.
func (s *Store) Close() error { return s.db.Close() }

// Backend is "mysql" (storage.Describer).
func (s *Store) Backend() string { return "mysql" }

// Describe returns the backend name, the redacted URL and whether the
// connection is encrypted.
func (s *Store) Describe() map[string]string { return s.describe }

// PoolStats reports the database/sql pool.
func (s *Store) PoolStats() []storage.PoolStats {
	st := s.db.Stats()
	return []storage.PoolStats{{
		Name: "mysql", Max: s.maxConns, InUse: int64(st.InUse), Idle: int64(st.Idle),
		Waits: st.WaitCount, WaitTotal: st.WaitDuration,
	}}
}

// Ping runs a query, so that it fails when the server is gone even if a
// pooled connection looks alive.
func (s *Store) Ping(ctx context.Context) error {
	var one int
	return translate(s.db.QueryRowContext(ctx, "SELECT 1").Scan(&one))
}

const noteColumns = "id, title, body, created_at, updated_at"

func (s *Store) CreateNote(ctx context.Context, n storage.Note) error {
	_, err := s.db.ExecContext(ctx,
		`INSERT INTO notes (id, title, body, created_at, updated_at) VALUES (?, ?, ?, ?, ?)`,
		n.ID, n.Title, n.Body, n.CreatedAt, n.UpdatedAt)
	return translate(err)
}

func (s *Store) GetNote(ctx context.Context, id string) (storage.Note, error) {
	n, err := scanNote(s.db.QueryRowContext(ctx, `SELECT `+noteColumns+` FROM notes WHERE id = ?`, id))
	return n, translate(err)
}

// UpdateNote updates and reads the row back in one transaction. It does
// not count affected rows: MySQL counts only rows it changed, so a write
// of the same values would look like a missing note.
func (s *Store) UpdateNote(ctx context.Context, n storage.Note) (storage.Note, error) {
	var got storage.Note
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		if _, err := tx.ExecContext(ctx, `UPDATE notes SET title = ?, body = ?, updated_at = ? WHERE id = ?`,
			n.Title, n.Body, n.UpdatedAt, n.ID); err != nil {
			return err
		}
		var err error
		got, err = scanNote(tx.QueryRowContext(ctx, `SELECT `+noteColumns+` FROM notes WHERE id = ?`, n.ID))
		return err
	})
	return got, translate(err)
}

func (s *Store) DeleteNote(ctx context.Context, id string) error {
	return deleted(s.db.ExecContext(ctx, `DELETE FROM notes WHERE id = ?`, id))
}

func (s *Store) ListNotes(ctx context.Context, p storage.Page) ([]storage.Note, string, error) {
	if p.Cursor != "" && !storage.ValidID(p.Cursor) {
		return nil, "", fmt.Errorf("%w: malformed cursor", storage.ErrInvalid)
	}
	rows, err := s.db.QueryContext(ctx,
		`SELECT `+noteColumns+` FROM notes WHERE id < ? ORDER BY id DESC LIMIT ?`,
		storage.CursorOrStart(p.Cursor), p.Limit+1)
	notes, err := collect(rows, err, scanNote)
	if err != nil {
		return nil, "", err
	}
	notes, next := engine.Cut(notes, p.Limit, func(n storage.Note) string { return n.ID })
	return notes, next, nil
}

const fileColumns = "id, name, content_type, size, sha256, `key`, created_at"

func (s *Store) CreateFile(ctx context.Context, f storage.File) error {
	_, err := s.db.ExecContext(ctx, insertFile, f.ID, f.Name, f.ContentType, f.Size, f.SHA256, f.Key, f.CreatedAt)
	return translate(err)
}

const insertFile = "INSERT INTO files (" + fileColumns + ") VALUES (?, ?, ?, ?, ?, ?, ?)"

func (s *Store) GetFile(ctx context.Context, id string) (storage.File, error) {
	f, err := scanFile(s.db.QueryRowContext(ctx, `SELECT `+fileColumns+` FROM files WHERE id = ?`, id))
	return f, translate(err)
}

// DeleteFile reads the row with a lock and deletes it, in one transaction.
func (s *Store) DeleteFile(ctx context.Context, id string) (storage.File, error) {
	var f storage.File
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		var err error
		if f, err = scanFile(tx.QueryRowContext(ctx, `SELECT `+fileColumns+` FROM files WHERE id = ? FOR UPDATE`, id)); err != nil {
			return err
		}
		_, err = tx.ExecContext(ctx, `DELETE FROM files WHERE id = ?`, id)
		return err
	})
	return f, translate(err)
}

func (s *Store) ListFiles(ctx context.Context, p storage.Page) ([]storage.File, string, error) {
	if p.Cursor != "" && !storage.ValidID(p.Cursor) {
		return nil, "", fmt.Errorf("%w: malformed cursor", storage.ErrInvalid)
	}
	rows, err := s.db.QueryContext(ctx,
		`SELECT `+fileColumns+` FROM files WHERE id < ? ORDER BY id DESC LIMIT ?`,
		storage.CursorOrStart(p.Cursor), p.Limit+1)
	files, err := collect(rows, err, scanFile)
	if err != nil {
		return nil, "", err
	}
	files, next := engine.Cut(files, p.Limit, func(f storage.File) string { return f.ID })
	return files, next, nil
}

const uploadColumns = "id, name, content_type, size, `key`, created_at, expires_at"

func (s *Store) CreateUpload(ctx context.Context, u storage.Upload) error {
	_, err := s.db.ExecContext(ctx, `INSERT INTO uploads (`+uploadColumns+`) VALUES (?, ?, ?, ?, ?, ?, ?)`,
		u.ID, u.Name, u.ContentType, u.Size, u.Key, u.CreatedAt, u.ExpiresAt)
	return translate(err)
}

func (s *Store) GetUpload(ctx context.Context, id string) (storage.Upload, error) {
	u, err := scanUpload(s.db.QueryRowContext(ctx, `SELECT `+uploadColumns+` FROM uploads WHERE id = ?`, id))
	return u, translate(err)
}

func (s *Store) CompleteUpload(ctx context.Context, f storage.File, now time.Time) error {
	return translate(s.inTx(ctx, func(tx *sql.Tx) error {
		if err := deleted(tx.ExecContext(ctx, `DELETE FROM uploads WHERE id = ? AND expires_at > ?`, f.ID, now)); err != nil {
			return err
		}
		_, err := tx.ExecContext(ctx, insertFile, f.ID, f.Name, f.ContentType, f.Size, f.SHA256, f.Key, f.CreatedAt)
		return err
	}))
}

func (s *Store) DeleteUpload(ctx context.Context, id string) error {
	return deleted(s.db.ExecContext(ctx, `DELETE FROM uploads WHERE id = ?`, id))
}

func (s *Store) ExpiredUploads(ctx context.Context, t time.Time, limit int) ([]storage.Upload, error) {
	rows, err := s.db.QueryContext(ctx,
		`SELECT `+uploadColumns+` FROM uploads WHERE expires_at < ? ORDER BY expires_at LIMIT ?`, t, limit)
	return collect(rows, err, scanUpload)
}

// NamedKeys asks about each batch of ids in one query, with a placeholder
// per id (which the driver interpolates: one round trip, no statement to
// prepare). An intent's row comes back without a key (files.key is NOT
// NULL).
func (s *Store) NamedKeys(ctx context.Context, ids []string) (map[string]string, map[string]bool, error) {
	files, uploads := map[string]string{}, map[string]bool{}
	for batch := range slices.Chunk(ids, storage.NamedKeysBatch) {
		in := "?" + strings.Repeat(", ?", len(batch)-1)
		args := make([]any, 0, 2*len(batch))
		for range 2 {
			for _, id := range batch {
				args = append(args, id)
			}
		}
		rows, err := s.db.QueryContext(ctx,
			"SELECT id, `key` FROM files WHERE id IN ("+in+") UNION ALL SELECT id, NULL FROM uploads WHERE id IN ("+in+")", args...)
		if err != nil {
			return nil, nil, translate(err)
		}
		if err := engine.ScanNamedKeys(rows, files, uploads); err != nil {
			return nil, nil, translate(err)
		}
	}
	return files, uploads, nil
}

func (s *Store) CreateSession(ctx context.Context, se storage.Session) error {
	_, err := s.db.ExecContext(ctx, `INSERT INTO sessions (id, created_at, expires_at) VALUES (?, ?, ?)`,
		se.ID, se.CreatedAt, se.ExpiresAt)
	return translate(err)
}

func (s *Store) GetSession(ctx context.Context, id string, now time.Time) (storage.Session, error) {
	var se storage.Session
	err := s.db.QueryRowContext(ctx, `SELECT id, created_at, expires_at FROM sessions WHERE id = ? AND expires_at > ?`, id, now).
		Scan(&se.ID, &se.CreatedAt, &se.ExpiresAt)
	se.CreatedAt, se.ExpiresAt = se.CreatedAt.UTC(), se.ExpiresAt.UTC()
	return se, translate(err)
}

func (s *Store) DeleteSession(ctx context.Context, id string) error {
	_, err := s.db.ExecContext(ctx, `DELETE FROM sessions WHERE id = ?`, id)
	return translate(err)
}

// claimAttempts bounds the retries of a claim that InnoDB chose as a
// deadlock victim, which concurrent inserts of one key can provoke.
const claimAttempts = 3

// ClaimIdempotencyKey inserts unless the key exists, then reads the row
// that stands. Two autocommitted statements, so the read sees a row that a
// concurrent claim committed while the insert waited on it. ON DUPLICATE
// KEY UPDATE, not INSERT IGNORE: IGNORE would also turn a too-long value
// into a silent truncation.
func (s *Store) ClaimIdempotencyKey(ctx context.Context, k storage.IdempotencyKey) (storage.IdempotencyKey, error) {
	var err error
	for range claimAttempts {
		_, err = s.db.ExecContext(ctx,
			"INSERT INTO idempotency_keys (`key`, fingerprint, resource_id, created_at) VALUES (?, ?, ?, ?) ON DUPLICATE KEY UPDATE `key` = `key`",
			[]byte(k.Key), k.Fingerprint, k.ResourceID, k.CreatedAt)
		if !isDeadlock(err) {
			break
		}
	}
	if err != nil {
		return storage.IdempotencyKey{}, translate(err)
	}
	return s.GetIdempotencyKey(ctx, k.Key)
}

func (s *Store) GetIdempotencyKey(ctx context.Context, key string) (storage.IdempotencyKey, error) {
	var got storage.IdempotencyKey
	err := s.db.QueryRowContext(ctx, "SELECT `key`, fingerprint, resource_id, created_at FROM idempotency_keys WHERE `key` = ?", []byte(key)).
		Scan(&got.Key, &got.Fingerprint, &got.ResourceID, &got.CreatedAt)
	got.CreatedAt = got.CreatedAt.UTC()
	return got, translate(err)
}

func (s *Store) PurgeExpired(ctx context.Context, now, keysBefore time.Time) (int64, error) {
	a, err := rowsAffected(s.db.ExecContext(ctx, `DELETE FROM sessions WHERE expires_at <= ?`, now))
	if err != nil {
		return 0, translate(err)
	}
	b, err := rowsAffected(s.db.ExecContext(ctx, `DELETE FROM idempotency_keys WHERE created_at < ?`, keysBefore))
	return a + b, translate(err)
}

// inTx runs fn in a transaction, committed when fn returns nil.
func (s *Store) inTx(ctx context.Context, fn func(*sql.Tx) error) error {
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	if err := fn(tx); err != nil {
		tx.Rollback()
		return err
	}
	return tx.Commit()
}

// deleted returns an error matching storage.ErrNotFound when a DELETE
// removed nothing.
func deleted(res sql.Result, err error) error {
	n, err := rowsAffected(res, err)
	if err != nil {
		return translate(err)
	}
	if n == 0 {
		return storage.ErrNotFound
	}
	return nil
}

func rowsAffected(res sql.Result, err error) (int64, error) {
	if err != nil {
		return 0, err
	}
	return res.RowsAffected()
}

// scanner is a *sql.Row or *sql.Rows.
type scanner interface{ Scan(dest ...any) error }

func scanNote(row scanner) (storage.Note, error) {
	var n storage.Note
	err := row.Scan(&n.ID, &n.Title, &n.Body, &n.CreatedAt, &n.UpdatedAt)
	n.CreatedAt, n.UpdatedAt = n.CreatedAt.UTC(), n.UpdatedAt.UTC()
	return n, err
}

func scanFile(row scanner) (storage.File, error) {
	var f storage.File
	err := row.Scan(&f.ID, &f.Name, &f.ContentType, &f.Size, &f.SHA256, &f.Key, &f.CreatedAt)
	f.CreatedAt = f.CreatedAt.UTC()
	return f, err
}

func scanUpload(row scanner) (storage.Upload, error) {
	var u storage.Upload
	err := row.Scan(&u.ID, &u.Name, &u.ContentType, &u.Size, &u.Key, &u.CreatedAt, &u.ExpiresAt)
	u.CreatedAt, u.ExpiresAt = u.CreatedAt.UTC(), u.ExpiresAt.UTC()
	return u, err
}

// collect scans every row of a query, always returning a non-nil slice
// when there is no error.
func collect[T any](rows *sql.Rows, err error, scan func(scanner) (T, error)) ([]T, error) {
	if err != nil {
		return nil, translate(err)
	}
	defer rows.Close()
	out := []T{}
	for rows.Next() {
		v, err := scan(rows)
		if err != nil {
			return nil, translate(err)
		}
		out = append(out, v)
	}
	if err := rows.Err(); err != nil {
		return nil, translate(err)
	}
	return out, nil
}

// MySQL and MariaDB error numbers translate maps.
const (
	erDupEntry              = 1062 // duplicate key
	erCheckConstraint       = 3819 // MySQL 8: check constraint violated
	erConstraintFailed      = 4025 // MariaDB: check constraint violated
	erDataTooLong           = 1406
	erTruncatedWrongValue   = 1366 // incorrect string value, e.g. not utf8mb4
	erLockDeadlock          = 1213
	erLockWaitTimeout       = 1205
	erConCount              = 1040 // too many connections
	erServerShutdown        = 1053
	erOptionPreventsStmt    = 1290 // read only, e.g. during a failover
	erReadOnlyMode          = 1836
	erAccessDenied          = 1045
	erAccessDeniedNoPass    = 1698 // MariaDB: access denied, no password given
	erDBAccessDenied        = 1044
	erBadDB                 = 1049 // unknown database
	erTableAccessDenied     = 1142
	erSpecificAccessDenied  = 1227
	erQueryInterrupted      = 1317
	erClientInteractionTime = 4031 // MySQL: the server closed the idle connection before the statement
)

func isDeadlock(err error) bool {
	var me *mysql.MySQLError
	return errors.As(err, &me) && me.Number == erLockDeadlock
}

// translate turns driver errors into the storage error kinds by their type
// and error number, never by their text.
func translate(err error) error {
	if err == nil {
		return nil
	}
	var me *mysql.MySQLError
	var certErr *tls.CertificateVerificationError
	var opErr *net.OpError
	var netErr net.Error
	switch {
	case errors.Is(err, storage.ErrNotFound):
		return err
	case errors.Is(err, sql.ErrNoRows):
		return fmt.Errorf("%w: %w", storage.ErrNotFound, err)
	case errors.As(err, &me):
		switch me.Number {
		case erDupEntry:
			return fmt.Errorf("%w: %w", storage.ErrConflict, err)
		case erCheckConstraint, erConstraintFailed, erDataTooLong, erTruncatedWrongValue:
			return fmt.Errorf("%w: %w", storage.ErrInvalid, err)
		case erLockDeadlock, erLockWaitTimeout, erConCount, erServerShutdown, erOptionPreventsStmt, erReadOnlyMode, erClientInteractionTime:
			// The statement was rolled back or refused: it did not happen.
			return fmt.Errorf("%w: %w", storage.ErrUnavailable, err)
		case erQueryInterrupted:
			return fmt.Errorf("%w (%w): %w", storage.ErrUnavailable, storage.ErrOutcomeUnknown, err)
		case erAccessDenied, erAccessDeniedNoPass, erDBAccessDenied, erBadDB, erTableAccessDenied, erSpecificAccessDenied:
			return fmt.Errorf("%w: %w", storage.ErrRefused, err)
		}
		return err
	case errors.As(err, &certErr):
		return fmt.Errorf("%w: the server's certificate: %w", storage.ErrRefused, err)
	case errors.Is(err, mysql.ErrNoTLS):
		return fmt.Errorf("%w: %w (set sslmode=disable only on a private network)", storage.ErrRefused, err)
	case errors.Is(err, driver.ErrBadConn), errors.As(err, &opErr) && opErr.Op == "dial":
		// Nothing reached the server: the statement surely did not run.
		return fmt.Errorf("%w: %w", storage.ErrUnavailable, err)
	case errors.Is(err, mysql.ErrInvalidConn), errors.As(err, &netErr), errors.Is(err, context.DeadlineExceeded),
		errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF), errors.Is(err, io.ErrShortWrite):
		// The connection broke after the statement may have been sent.
		return fmt.Errorf("%w (%w): %w", storage.ErrUnavailable, storage.ErrOutcomeUnknown, err)
	}
	return err
}
