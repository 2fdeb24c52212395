// Package service holds the rules that span two stores, between the HTTP
// layer and storage: a file's row and its object, an upload intent and the
// bytes a client put, the sweep that removes what no row names. Handlers
// in internal/server only translate HTTP to these calls and back, so the
// rules are tested here with plain `go test` on SQLite and a directory,
// and on every conformance backend.
package service

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/example/flystorage/internal/cache"
	"github.com/example/flystorage/internal/storage"
)

// OpTimeout bounds each database or store operation a call makes, so a
// backend that is down turns into an error matching storage.ErrUnavailable
// instead of a hang. It is the only such timeout in the app.
const OpTimeout = 10 * time.Second

// Options are what a Service needs.
type Options struct {
	DB    storage.Database
	Blobs storage.Blobs
	// KeyPrefix starts every file's key (BUCKET_PREFIX, scoped per machine
	// with SQLite: config.FileKeyPrefix).
	KeyPrefix string
	// PresignTTL is how long an upload intent, and its URL, stays valid.
	PresignTTL time.Duration
	// MaxUpload is the largest file accepted, in bytes.
	MaxUpload int64
	// Cache, when it has Redis, keeps notes and files by id (cache-aside);
	// every write that changes one invalidates it. nil: no cache.
	Cache *cache.Cache
	// Now is the clock; nil means time.Now. Tests move it instead of
	// sleeping.
	Now    func() time.Time
	Logger *slog.Logger
}

// Service is the app's operations on notes and files.
type Service struct {
	db         storage.Database
	blobs      storage.Blobs
	keyPrefix  string
	presignTTL time.Duration
	maxUpload  int64
	cache      *cache.Cache
	clock      func() time.Time
	log        *slog.Logger
}

// New returns a Service.
func New(o Options) *Service {
	s := &Service{db: o.DB, blobs: o.Blobs, keyPrefix: o.KeyPrefix, presignTTL: o.PresignTTL,
		maxUpload: o.MaxUpload, cache: o.Cache, clock: o.Now, log: o.Logger}
	if s.clock == nil {
		s.clock = time.Now
	}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	if s.presignTTL == 0 {
		s.presignTTL = 15 * time.Minute
	}
	return s
}

// now is the current time as every backend stores it: UTC, to the
// microsecond.
func (s *Service) now() time.Time { return s.clock().UTC().Truncate(time.Microsecond) }

// Now is the service's clock, for callers that sign links with it.
func (s *Service) Now() time.Time { return s.clock() }

// DB is the database, for the checks and descriptions that bypass the
// service's rules (/readyz, /api/storage).
func (s *Service) DB() storage.Database { return s.db }

// Blobs is the blob store.
func (s *Service) Blobs() storage.Blobs { return s.blobs }

// Error is a refusal with a message meant for the client; Kind is one of
// storage's error kinds, which decides the HTTP status.
type Error struct {
	Kind error
	Msg  string
}

func (e *Error) Error() string { return e.Msg }
func (e *Error) Unwrap() error { return e.Kind }

func refuse(kind error, format string, args ...any) error {
	return &Error{Kind: kind, Msg: fmt.Sprintf(format, args...)}
}

// Claim records an Idempotency-Key for a request that creates something,
// and returns the id to create it under: a new one, or the one an earlier
// request with the key claimed (retry true), which the caller looks up
// before creating anything. The same key with another request (another
// fingerprint) gives ErrKeyReused. Keys live in the database, durable and
// shared by every machine, for KeyRetention, and in Redis when it is
// configured, for CACHE_TTL.
func (s *Service) Claim(ctx context.Context, key, fingerprint string) (id string, retry bool, err error) {
	ctx, cancel := op(ctx)
	defer cancel()
	k := storage.IdempotencyKey{Key: key, Fingerprint: fingerprint, ResourceID: storage.NewID(), CreatedAt: s.now()}
	// A claim never changes once made, so a retry can find it in Redis;
	// without Redis, or on a miss, the database claims or finds it.
	got, err := cache.Read(ctx, s.cache, cache.IdempotencyKey, key, func(ctx context.Context) (storage.IdempotencyKey, error) {
		return s.db.ClaimIdempotencyKey(ctx, k)
	})
	switch {
	case err != nil:
		return "", false, err
	case got.Fingerprint != fingerprint:
		return "", false, ErrKeyReused
	}
	return got.ResourceID, got.ResourceID != k.ResourceID, nil
}

// Deleted ids. An idempotent retry whose note or file is missing must tell
// "the first request never created it" (create it now) from "it was
// deleted since" (create nothing). Deleting a note or file records a
// tombstone for its id, as an idempotency key that lasts as long as any
// key (KeyRetention), and Gone looks for it.

// tombstone is the key that records the deletion of id.
func tombstone(id string) string {
	sum := sha256.Sum256([]byte("deleted " + id))
	return hex.EncodeToString(sum[:])
}

const tombstoneFingerprint = "deleted"

// markDeleted records that id was deleted. A failure is logged: the only
// loss is that a retry of the request that created id could create it
// again.
func (s *Service) markDeleted(ctx context.Context, id string) {
	ctx, cancel := detached(ctx)
	defer cancel()
	k := storage.IdempotencyKey{Key: tombstone(id), Fingerprint: tombstoneFingerprint, ResourceID: id, CreatedAt: s.now()}
	if _, err := s.db.ClaimIdempotencyKey(ctx, k); err != nil {
		s.log.Warn("recording a deletion for idempotent retries; a retry of its create could make it again", "id", id, "err", err)
	}
}

// Gone reports whether id, claimed by an Idempotency-Key and now missing,
// was deleted since, so that a retry must not create it again. It only
// reads: a retry whose earlier attempts all failed to create id may
// create it still, however many there were. Two retries that race to
// create it are told apart by the id itself (ErrConflict on the second).
func (s *Service) Gone(ctx context.Context, id string) (bool, error) {
	ctx, cancel := op(ctx)
	defer cancel()
	_, err := s.db.GetIdempotencyKey(ctx, tombstone(id))
	switch {
	case errors.Is(err, storage.ErrNotFound):
		return false, nil
	case err != nil:
		return false, err
	}
	return true, nil
}

// ErrKeyReused means an Idempotency-Key came back with a different request.
var ErrKeyReused = errors.New("the Idempotency-Key was used for a different request")

// ErrBadBody means the client's request body could not be read: it was
// malformed or cut short, so the fault is the client's, not a store's.
var ErrBadBody = errors.New("malformed request body")

// op bounds one operation.
func op(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(ctx, OpTimeout)
}

// detached bounds an operation that must finish even if the client leaves:
// the second write of a pair whose first is done.
func detached(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.WithoutCancel(ctx), OpTimeout)
}
