// Package storage holds flystorage's domain: the Note and File types, the
// interfaces the HTTP layer needs from a database and a blob store, and the
// small vocabulary of errors every backend translates its own errors into.
//
// Each technology lives in a subpackage (postgres, sqlite, s3, localfs) that
// imports this package and nothing else of ours. The backend package picks
// one of each from the configuration.
package storage

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"iter"
	"strconv"
	"strings"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"github.com/google/uuid"
)

// Error kinds. Backends wrap their errors so that errors.Is matches one of
// these; the HTTP layer maps each kind to one status code.
var (
	// ErrNotFound means the note, file or blob does not exist.
	ErrNotFound = errors.New("not found")
	// ErrConflict means the write collides with existing data.
	ErrConflict = errors.New("conflict")
	// ErrInvalid means the input breaks a rule of the domain.
	ErrInvalid = errors.New("invalid")
	// ErrTooLarge means an upload exceeded the size limit.
	ErrTooLarge = errors.New("too large")
	// ErrRefused means a backend answered but refused the app's
	// configuration: bad credentials, a missing bucket, no permission.
	ErrRefused = errors.New("refused")
	// ErrUnavailable means a backend could not be reached in time.
	ErrUnavailable = errors.New("unavailable")
	// ErrNoSpace means the disk (or the quota) holding the data is full:
	// writes fail until something is deleted or the volume grows.
	ErrNoSpace = errors.New("no space left on the volume")
	// ErrOutcomeUnknown joins ErrUnavailable when a write may have been
	// applied before the backend went away: the connection broke after the
	// statement was sent. Without it, a failed write surely did not happen.
	ErrOutcomeUnknown = errors.New("outcome unknown")
	// ErrReadOnly means the write reached a read-only replica of the
	// database (Postgres's SQLSTATE 25006): it did not happen, and belongs
	// on the primary (see docs/regions.md).
	ErrReadOnly = errors.New("read-only replica")
)

// RefusedError is an ErrRefused that carries the store's own name for the
// refusal, such as S3's AccessDenied or NoSuchBucket: the HTTP layer shows
// Code to the client, so they know what to check, and logs Err.
type RefusedError struct {
	Code string
	Err  error
}

func (e *RefusedError) Error() string { return fmt.Sprintf("%v (%s): %v", ErrRefused, e.Code, e.Err) }

// Is makes a RefusedError match ErrRefused.
func (e *RefusedError) Is(target error) bool { return target == ErrRefused }

func (e *RefusedError) Unwrap() error { return e.Err }

// Position is a point in the primary database's write-ahead log: for
// Postgres an LSN, the byte offset pg_current_wal_lsn() reports. A replica
// that has replayed up to a Position holds every write committed before it.
// Zero means no position.
type Position uint64

// String formats p as Postgres writes an LSN, such as 16/B374D848.
func (p Position) String() string { return fmt.Sprintf("%X/%X", uint64(p)>>32, uint32(p)) }

// ParsePosition reads a Position written by String. It returns an error
// matching ErrInvalid for anything else.
func ParsePosition(s string) (Position, error) {
	hi, lo, ok := strings.Cut(s, "/")
	if ok && len(hi) > 0 && len(hi) <= 8 && len(lo) > 0 && len(lo) <= 8 {
		h, err1 := strconv.ParseUint(hi, 16, 32)
		l, err2 := strconv.ParseUint(lo, 16, 32)
		if err1 == nil && err2 == nil {
			return Position(h<<32 | l), nil
		}
	}
	return 0, fmt.Errorf("%w: %q is not a log position such as 16/B374D848", ErrInvalid, s)
}

// Limits of the domain, enforced by Validate and by the schema.
const (
	MaxTitleChars = 200
	MaxBodyBytes  = 64 << 10
)

// Note is a short text kept in the database.
type Note struct {
	ID        string
	Title     string
	Body      string
	CreatedAt time.Time
	UpdatedAt time.Time
}

// Validate returns an error matching ErrInvalid when the title is empty or
// longer than MaxTitleChars characters, or the body exceeds MaxBodyBytes.
func (n Note) Validate() error {
	switch chars := utf8.RuneCountInString(n.Title); {
	case !utf8.ValidString(n.Title) || !utf8.ValidString(n.Body):
		return fmt.Errorf("%w: title and body must be valid UTF-8", ErrInvalid)
	case strings.ContainsRune(n.Title, 0) || strings.ContainsRune(n.Body, 0):
		// Postgres's text cannot hold NUL; refuse it on every engine alike.
		return fmt.Errorf("%w: title and body must not contain the NUL character (\\u0000)", ErrInvalid)
	case chars == 0:
		return fmt.Errorf("%w: title is required", ErrInvalid)
	case chars > MaxTitleChars:
		return fmt.Errorf("%w: title is %d characters, the limit is %d", ErrInvalid, chars, MaxTitleChars)
	case len(n.Body) > MaxBodyBytes:
		return fmt.Errorf("%w: body is %d bytes, the limit is %d", ErrInvalid, len(n.Body), MaxBodyBytes)
	}
	return nil
}

// File is the metadata of an uploaded file; its bytes live in a Blobs store
// under Key.
type File struct {
	ID          string
	Name        string
	ContentType string
	Size        int64
	SHA256      string // hex
	Key         string
	CreatedAt   time.Time
}

// Upload is an intent to upload a file straight to the store: the client
// was given a URL to put the bytes at Key, and completes the upload before
// ExpiresAt. Completing turns it into a File with the same ID.
type Upload struct {
	ID          string
	Name        string
	ContentType string
	Size        int64
	Key         string
	CreatedAt   time.Time
	ExpiresAt   time.Time
}

// Session is a browser signed in with the API token (POST /api/session).
// ID is the SHA-256, in hex, of the secret the cookie holds, so the
// database never holds a usable cookie.
type Session struct {
	ID        string
	CreatedAt time.Time
	ExpiresAt time.Time
}

// IdempotencyKey records the first request made with an Idempotency-Key
// header: a fingerprint of what it asked (method, path and body) and the id
// of the note, file or upload it creates. A retry with the same key finds
// the id, and answers with what that id names instead of creating another.
type IdempotencyKey struct {
	Key         string // at most MaxIdempotencyKey bytes
	Fingerprint string // hex SHA-256 of the request
	ResourceID  string
	CreatedAt   time.Time
}

// MaxIdempotencyKey is the longest Idempotency-Key accepted.
const MaxIdempotencyKey = 255

// NamedKeysBatch is how many ids Database.NamedKeys asks about in one
// query, and how many objects the sweep gathers before it asks: small
// enough for a query's text and answer, large enough that a sweep makes
// one round trip per batch rather than one or two per object.
const NamedKeysBatch = 500

// Page asks for one page of a listing, newest first. Cursor is empty for the
// first page and the previous page's next cursor after that.
type Page struct {
	Limit  int
	Cursor string
}

// Database is what the app keeps in Postgres or SQLite.
//
// Listings are newest first and use the last ID of a page as the cursor of
// the next, so a page stays stable while rows are added.
type Database interface {
	// CreateNote stores n, whose ID and times the caller has set. It returns
	// an error matching ErrConflict if a note with that ID exists.
	CreateNote(ctx context.Context, n Note) error
	// GetNote returns an error matching ErrNotFound if no note has that id.
	GetNote(ctx context.Context, id string) (Note, error)
	// UpdateNote replaces the title and body and sets UpdatedAt, returning the
	// stored note, or an error matching ErrNotFound if no note has n.ID.
	UpdateNote(ctx context.Context, n Note) (Note, error)
	// DeleteNote returns an error matching ErrNotFound if no note has that id.
	DeleteNote(ctx context.Context, id string) error
	// ListNotes returns at most p.Limit notes older than the cursor and the
	// cursor of the next page, empty when there is none. An empty page is
	// an empty slice, never nil (the API answers [], not null). A
	// malformed cursor gives an error matching ErrInvalid.
	ListNotes(ctx context.Context, p Page) ([]Note, string, error)

	// CreateFile records f. It returns an error matching ErrConflict if a file
	// with that ID or Key exists.
	CreateFile(ctx context.Context, f File) error
	// GetFile returns an error matching ErrNotFound if no file has that id.
	GetFile(ctx context.Context, id string) (File, error)
	// DeleteFile removes the row and returns it, or an error matching
	// ErrNotFound if no file has that id.
	DeleteFile(ctx context.Context, id string) (File, error)
	// ListFiles pages like ListNotes.
	ListFiles(ctx context.Context, p Page) ([]File, string, error)

	// CreateUpload records an upload intent. It returns an error matching
	// ErrConflict if one with that ID or Key exists.
	CreateUpload(ctx context.Context, u Upload) error
	// GetUpload returns an error matching ErrNotFound if no intent has that
	// id.
	GetUpload(ctx context.Context, id string) (Upload, error)
	// CompleteUpload, in one transaction, removes the intent whose ID is
	// f.ID and records f. It returns an error matching ErrNotFound if there
	// is no such intent unexpired at now (never made, completed already,
	// expired or swept).
	CompleteUpload(ctx context.Context, f File, now time.Time) error
	// DeleteUpload returns an error matching ErrNotFound if no intent has
	// that id.
	DeleteUpload(ctx context.Context, id string) error
	// ExpiredUploads returns up to limit intents that expired before t.
	ExpiredUploads(ctx context.Context, t time.Time, limit int) ([]Upload, error)

	// NamedKeys looks up a batch of ids at once, for the sweep: files maps
	// each id that a file has to the file's Key, and uploads holds each id
	// that an upload intent has, expired or not. An id with neither is in
	// neither map; that is not an error. ids may repeat and be of any
	// number: a backend asks about NamedKeysBatch of them per query, and
	// asks nothing for none.
	NamedKeys(ctx context.Context, ids []string) (files map[string]string, uploads map[string]bool, err error)

	// CreateSession records s. It returns an error matching ErrConflict if
	// a session with that ID exists.
	CreateSession(ctx context.Context, s Session) error
	// GetSession returns an error matching ErrNotFound if no session has
	// that id, or it expired at or before now.
	GetSession(ctx context.Context, id string, now time.Time) (Session, error)
	// DeleteSession removes the session. Deleting a missing one is not an
	// error.
	DeleteSession(ctx context.Context, id string) error

	// ClaimIdempotencyKey records k unless a key of that name is recorded
	// already, and returns the record that stands: k itself, or the earlier
	// one, which the caller compares with k (same Fingerprint: a retry; a
	// different one: the key was reused for another request). Two
	// concurrent claims of one key both return the same record.
	ClaimIdempotencyKey(ctx context.Context, k IdempotencyKey) (IdempotencyKey, error)
	// GetIdempotencyKey returns the record of key, or an error matching
	// ErrNotFound if none stands (never claimed, or purged). It records
	// nothing.
	GetIdempotencyKey(ctx context.Context, key string) (IdempotencyKey, error)

	// PurgeExpired removes sessions that expired at or before now and
	// idempotency keys created before keysBefore, and returns how many rows
	// it removed.
	PurgeExpired(ctx context.Context, now, keysBefore time.Time) (int64, error)

	// Ping returns nil when the database answers a query.
	Ping(ctx context.Context) error
	Describer
	// Close releases every connection.
	Close() error
}

// Describer is what every store says about itself in the status output:
// the log line at start, /readyz, the page and /api/storage.
// storagetest.RunDescriber checks it on every backend.
type Describer interface {
	// Backend names the engine, as the status output shows it:
	// "postgres", "mysql", "mongodb" or "sqlite" for a Database, "s3" or
	// "local" for Blobs. It is never empty, and a wrapper (a replica
	// region's database, the metrics' blobs) reports what it wraps.
	Backend() string
	// Describe returns what /api/storage shows, with no secret in it. Its
	// "backend" entry is Backend().
	Describe() map[string]string
}

// BlobInfo describes a stored blob.
type BlobInfo struct {
	Size        int64
	ContentType string
}

// ByteRange selects part of a blob: Length bytes from Start, or to the end
// when Length is -1.
type ByteRange struct {
	Start, Length int64
}

// BlobEntry is one blob in a listing.
type BlobEntry struct {
	Key      string
	Size     int64
	Modified time.Time
}

// Blobs keeps file contents: an S3 bucket or a local directory.
type Blobs interface {
	// Put streams r to key. A failed or cancelled Put leaves nothing at key.
	// size is the exact length, or -1 when unknown.
	Put(ctx context.Context, key string, r io.Reader, size int64, contentType string) error
	// Get streams the blob, or the part rng selects when it is not nil; the
	// caller closes it. BlobInfo describes the whole blob. It returns an
	// error matching ErrNotFound if nothing is stored at key.
	Get(ctx context.Context, key string, rng *ByteRange) (io.ReadCloser, BlobInfo, error)
	// Stat returns an error matching ErrNotFound if nothing is stored at key.
	Stat(ctx context.Context, key string) (BlobInfo, error)
	// Delete removes the blob. Deleting a missing key is not an error.
	Delete(ctx context.Context, key string) error
	// List yields every blob whose key starts with prefix, in no set order,
	// and stops at the first error, which it yields.
	List(ctx context.Context, prefix string) iter.Seq2[BlobEntry, error]
	// Ping returns nil when the bucket or directory can be reached.
	Ping(ctx context.Context) error
	Describer
	// Close releases the store's resources.
	Close() error
}

// MultipartAborter is implemented by blob stores whose unfinished
// multipart uploads keep their parts (S3): an upload whose abort failed
// leaves parts that no listing of objects shows.
type MultipartAborter interface {
	// AbortStale aborts the unfinished multipart uploads of keys under
	// prefix begun before olderThan, and returns how many it aborted.
	AbortStale(ctx context.Context, prefix string, olderThan time.Time) (int, error)
}

// Presigner is a Blobs whose clients can read and write blobs directly,
// through URLs that carry their own authorisation for a while (S3's
// presigned URLs). Stores without it are reached through the app.
type Presigner interface {
	// PresignGet returns a URL that downloads key until ttl passes, as an
	// attachment named filename.
	PresignGet(ctx context.Context, key string, ttl time.Duration, filename string) (string, error)
	// PresignPut returns a URL that uploads exactly size bytes of
	// contentType to key until ttl passes, and the headers the request
	// must carry. The URL works until then, whatever happens to the key, so
	// callers point it at a staging key (StagingKey) rather than a file's.
	PresignPut(ctx context.Context, key, contentType string, size int64, ttl time.Duration) (string, map[string]string, error)
	// Copy copies the blob at src to dst inside the store.
	Copy(ctx context.Context, src, dst string) error
}

// A Database that may answer reads from a replica lagging the primary
// (internal/region's) says which reads the replica answered through their
// context: such a read may return an older version than the primary
// holds, so it must never fill a cache that readers of the primary share.
// The store that answered decides, not a look beforehand, since a replica
// may come back between the two.

type replicaWatchKey struct{}

// WatchReplicaReads returns a context to make reads with, and a function
// that reports whether a replica answered any read made with it.
func WatchReplicaReads(ctx context.Context) (context.Context, func() bool) {
	var served atomic.Bool
	return context.WithValue(ctx, replicaWatchKey{}, &served), served.Load
}

// ServedByReplica is called by a Database when a lagging replica answered
// a read made with ctx; with a context that no WatchReplicaReads made, it
// does nothing.
func ServedByReplica(ctx context.Context) {
	if served, ok := ctx.Value(replicaWatchKey{}).(*atomic.Bool); ok {
		served.Store(true)
	}
}

// PoolReporter is a Database that reports on its connection pools, for
// metrics.
type PoolReporter interface {
	PoolStats() []PoolStats
}

// PoolStats describes one connection pool at one moment.
type PoolStats struct {
	Name      string // e.g. "postgres", "sqlite_writer"
	Max       int64  // most connections it may open
	InUse     int64
	Idle      int64
	Acquires  int64         // connections handed out, all time (0 if unknown)
	Waits     int64         // times a caller had to wait for one, all time
	WaitTotal time.Duration // time callers spent acquiring, all time
}

// FileKey returns the blob key of the file with that id: prefix (the
// configured BUCKET_PREFIX) and the id, never the name its uploader sent.
func FileKey(prefix, id string) string { return prefix + id }

// VersionKey is FileKey with a random suffix of its own: the key a write
// uses when another write of the same id may race it (two completes of one
// upload, or two retries of one idempotent upload). Each writes its own
// object and the row names the one that won, so a loser can delete its
// own object and never the winner's bytes.
func VersionKey(prefix, id string) string {
	var b [6]byte
	rand.Read(b[:])
	return prefix + id + "." + hex.EncodeToString(b[:])
}

// StagingKey is where a direct upload of the file with that id lands until
// it is completed and copied to a VersionKey: the client's upload URL stays
// valid until it expires, and must not be able to replace a file's bytes.
func StagingKey(prefix, id string) string { return prefix + stagingDir + id }

const stagingDir = "incoming/"

// FileID returns the id of a key that FileKey or VersionKey made.
func FileID(prefix, key string) (string, bool) {
	rest, ok := strings.CutPrefix(key, prefix)
	if !ok {
		return "", false
	}
	id, suffix, versioned := strings.Cut(rest, ".")
	if versioned && !validSuffix(suffix) {
		return "", false
	}
	return id, ValidID(id)
}

// StagedID returns the id of a key that StagingKey made.
func StagedID(prefix, key string) (string, bool) {
	id, ok := strings.CutPrefix(key, prefix+stagingDir)
	return id, ok && ValidID(id)
}

func validSuffix(s string) bool {
	_, err := hex.DecodeString(s)
	return err == nil && len(s) == 12
}

// NewID returns a new time-ordered identifier (a UUIDv7), so that sorting by
// ID sorts by creation time on every engine and cursors stay stable.
func NewID() string {
	return uuid.Must(uuid.NewV7()).String()
}

// ValidID reports whether s has the shape NewID produces. Backends check
// cursors with it so that a malformed one is ErrInvalid rather than a
// database error.
func ValidID(s string) bool {
	u, err := uuid.Parse(s)
	return err == nil && len(s) == 36 && u.String() == s
}

// Now returns the current time as every backend stores it: UTC, to the
// microsecond (Postgres's precision).
func Now() time.Time {
	return time.Now().UTC().Truncate(time.Microsecond)
}

// startCursor sorts after every ID NewID makes (a UUIDv7 never starts with
// "ffffffff-ffff-f"), so `id < CursorOrStart("")` matches every row.
const startCursor = "ffffffff-ffff-ffff-ffff-ffffffffffff"

// CursorOrStart returns cursor, or for the first page a value greater than
// every ID, so that backends can page with one query: WHERE id < $cursor.
func CursorOrStart(cursor string) string {
	if cursor == "" {
		return startCursor
	}
	return cursor
}

// ReplicationStatus is where a SQLite database's continuous replica in the
// bucket stands, as /api/storage shows it under "replication".
type ReplicationStatus struct {
	// Role is "primary" on the machine that holds the replica's lease and
	// writes, "follower" elsewhere.
	Role string `json:"role"`
	// Holder is the machine id (FLY_MACHINE_ID) of the lease's holder;
	// Machine is this machine's.
	Holder  string `json:"holder"`
	Machine string `json:"machine"`
	// Durability is "local" or "replicated" (SQLITE_DURABILITY).
	Durability string `json:"durability"`
	// Replica is where the replica lives: s3://bucket/prefix.
	Replica string `json:"replica"`
	// LocalTXID is the newest transaction on this machine's volume, and
	// ReplicatedTXID the newest in the bucket, as 16 hex digits.
	LocalTXID      string `json:"local_txid"`
	ReplicatedTXID string `json:"replicated_txid"`
	// LagSeconds is how far the bucket is behind the volume: 0 when it
	// holds every transaction, else the time since it last did.
	LagSeconds float64 `json:"lag_seconds"`
	// LastVerified is the commit time (RFC 3339) of the newest replicated
	// state that a restore proved good; empty before the first.
	LastVerified string `json:"last_verified"`
}

// ReplicationReporter reports a database's replication, for /api/storage.
type ReplicationReporter interface {
	ReplicationStatus() ReplicationStatus
}
