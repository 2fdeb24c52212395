package storage

// The optional capabilities a store may have besides Database and Blobs
// (Presigner, MultipartAborter, PoolReporter and VolumeReporter stand
// beside the interfaces they extend). Callers find them with a type
// assertion, or with Capability through a wrapper; never with an
// interface written at the call site.

import (
	"context"
	"time"
)

// BlobsWrapper is a Blobs that adds behaviour around another, such as the
// metrics' instrumented store. Unwrap returns the store it wraps, so that
// Capability finds an optional capability (MultipartAborter,
// VolumeReporter) of the store beneath. A wrapper implements a capability
// itself only when it passes every call through (as the metrics' store
// does Presigner).
type BlobsWrapper interface {
	Unwrap() Blobs
}

// Capability returns store as a T, or the first store it wraps (through
// BlobsWrapper, one layer after another) that is a T; ok is false when
// none is.
func Capability[T any](store any) (T, bool) {
	for {
		if c, ok := store.(T); ok {
			return c, true
		}
		w, ok := store.(BlobsWrapper)
		if !ok {
			var zero T
			return zero, false
		}
		store = w.Unwrap()
	}
}

// WritePositioner is a Database that reports where a write left the
// primary's write-ahead log (Postgres's LSN): internal/region hands it to
// the client as a consistency token, so a read in another region waits
// for the replica to replay that far.
type WritePositioner interface {
	// WritePosition is the primary's current write position.
	WritePosition(ctx context.Context) (Position, error)
}

// ReplayPositioner is a read replica that reports how far it has replayed
// the primary's log.
type ReplayPositioner interface {
	// ReplayPosition is the newest position replayed; every write
	// committed before it is visible on the replica.
	ReplayPosition(ctx context.Context) (Position, error)
}

// ReplayLagger is a read replica that reports how far behind the primary
// it is in time, for /api/storage.
type ReplayLagger interface {
	// ReplayLag is how long ago the last transaction it replayed was
	// committed on the primary; 0 on a primary.
	ReplayLag(ctx context.Context) (time.Duration, error)
}

// Counter is a Database that counts what it holds, for the page's "50 of
// 253" (GET /api/status). A count is exact when it is taken, and is not
// kept in step with writes: a caller that shows it often caches it for a
// few seconds rather than counting on every request, and a count read from
// a replica lags the primary as the replica's other reads do.
// storagetest.RunDatabase requires it of every backend.
type Counter interface {
	// CountNotes returns how many notes there are, 0 when there are none.
	CountNotes(ctx context.Context) (int64, error)
	// CountFiles returns how many files there are: the files ListFiles
	// lists, and not the upload intents, which become files only when
	// completed.
	CountFiles(ctx context.Context) (int64, error)
}
