package service

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/example/flystorage/internal/storage"
)

// SweepGrace is how old an object without a row must be before Sweep
// removes it: an upload writes its object a moment before its row, and
// must not lose the race.
const SweepGrace = time.Hour

// KeyRetention is how long an Idempotency-Key is remembered.
const KeyRetention = 24 * time.Hour

// SweepResult counts what Sweep did.
type SweepResult struct {
	Expired int   // upload intents past their expiry, removed with their objects
	Checked int   // file objects looked at
	Removed int   // objects no row named, older than the grace period
	Aborted int   // unfinished multipart uploads older than the grace period
	Purged  int64 // expired sessions and idempotency keys
}

// Sweep cleans the stores of what nothing names, in four passes.
//
// First, upload intents that expired are removed with whatever object the
// client put. Then every object under the key prefix that FileKey,
// VersionKey or StagingKey made is looked up: one older than grace is
// removed unless a file row names that very key or, for a staging key, an
// intent of its id is open. That is what a crash between an upload's two
// steps leaves, a delete whose second step failed, a losing complete's
// copy, or a direct PUT repeated after its upload completed. Other keys
// are left alone. The objects are looked up storage.NamedKeysBatch at a
// time, in one query per batch, and only a batch is held in memory. Then
// a store that keeps the parts of unfinished multipart uploads
// (storage.MultipartAborter) has those under the prefix begun before the
// grace period aborted. Last, expired sessions and old idempotency keys
// go.
//
// A cancelled ctx stops the sweep before its next removal.
func (s *Service) Sweep(ctx context.Context, grace time.Duration) (SweepResult, error) {
	var res SweepResult
	for {
		expired, err := s.db.ExpiredUploads(ctx, s.clock(), 100)
		if err != nil {
			return res, fmt.Errorf("listing expired uploads: %w", err)
		}
		for _, u := range expired {
			// The intent goes first: a completion racing the sweep either
			// takes it (and the sweep leaves the object) or finds it gone.
			switch err := s.db.DeleteUpload(ctx, u.ID); {
			case errors.Is(err, storage.ErrNotFound):
				continue
			case err != nil:
				return res, fmt.Errorf("removing expired upload %s: %w", u.ID, err)
			}
			if err := s.blobs.Delete(ctx, u.Key); err != nil {
				return res, fmt.Errorf("removing the object of expired upload %s: %w", u.ID, err)
			}
			res.Expired++
			s.log.Info("removed an expired upload", "id", u.ID, "key", u.Key, "expired", u.ExpiresAt)
		}
		if len(expired) < 100 {
			break
		}
	}

	cutoff := s.clock().Add(-grace)
	batch := make([]swept, 0, storage.NamedKeysBatch)
	for entry, err := range s.blobs.List(ctx, s.keyPrefix) {
		if err != nil {
			return res, fmt.Errorf("listing %s: %w", s.keyPrefix, err)
		}
		o, ours := s.ours(entry)
		if !ours {
			continue
		}
		res.Checked++
		if entry.Modified.After(cutoff) {
			continue
		}
		if batch = append(batch, o); len(batch) < cap(batch) {
			continue
		}
		if err := s.removeOrphans(ctx, batch, &res); err != nil {
			return res, err
		}
		batch = batch[:0]
	}
	if err := s.removeOrphans(ctx, batch, &res); err != nil {
		return res, err
	}

	if a, ok := multipartAborter(s.blobs); ok {
		n, err := a.AbortStale(ctx, s.keyPrefix, cutoff)
		res.Aborted = n
		if err != nil {
			return res, fmt.Errorf("aborting stale multipart uploads under %s: %w", s.keyPrefix, err)
		}
		if n > 0 {
			s.log.Info("aborted unfinished multipart uploads", "prefix", s.keyPrefix, "count", n)
		}
	}

	n, err := s.db.PurgeExpired(ctx, s.clock(), s.clock().Add(-KeyRetention))
	if err != nil {
		return res, fmt.Errorf("purging expired sessions and idempotency keys: %w", err)
	}
	res.Purged = n
	return res, nil
}

// swept is a listed object that StagingKey, FileKey or VersionKey made.
type swept struct {
	storage.BlobEntry
	id     string
	staged bool // a StagingKey
}

// ours reports whether the object is one of the app's keys, and whose.
func (s *Service) ours(e storage.BlobEntry) (swept, bool) {
	if id, ok := storage.StagedID(s.keyPrefix, e.Key); ok {
		return swept{e, id, true}, true
	}
	id, ok := storage.FileID(s.keyPrefix, e.Key)
	return swept{e, id, false}, ok
}

// named reports whether a row names o's key: a file whose Key is exactly
// it, or, for a staging key, an open intent. files and uploads are what
// storage.Database.NamedKeys answered.
func (o swept) named(files map[string]string, uploads map[string]bool) bool {
	if o.staged {
		return uploads[o.id]
	}
	if key, ok := files[o.id]; ok {
		return key == o.Key
	}
	// A complete in progress copies to a version key before its row
	// exists; its intent is still open.
	return uploads[o.id]
}

// closesURL reports whether o is the empty object a completed direct
// upload leaves at its staging key (closeStaging) while the upload's URL
// may still work: removing it would let that URL write again.
func (o swept) closesURL(files map[string]string, now time.Time, presignTTL time.Duration) bool {
	_, completed := files[o.id]
	return o.staged && o.Size == 0 && completed && now.Sub(o.Modified) < presignTTL
}

// removeOrphans looks up a batch of objects older than the grace period
// in one query, and removes those no row names. The grace period, not
// the moment of the lookup, is what spares a racing upload's object: its
// row follows it within seconds, so it is never in a batch.
func (s *Service) removeOrphans(ctx context.Context, batch []swept, res *SweepResult) error {
	if len(batch) == 0 {
		return nil
	}
	ids := make([]string, len(batch))
	for i, o := range batch {
		ids[i] = o.id
	}
	files, uploads, err := s.db.NamedKeys(ctx, ids)
	if err != nil {
		return fmt.Errorf("looking up the rows of %d objects under %s: %w", len(batch), s.keyPrefix, err)
	}
	for _, o := range batch {
		if o.named(files, uploads) || o.closesURL(files, s.clock(), s.presignTTL) {
			continue
		}
		// A sweep whose lock was lost must stop removing at once, and not
		// every store's Delete looks at ctx (a local directory's does not).
		if err := ctx.Err(); err != nil {
			return fmt.Errorf("sweep stopped before removing %s: %w", o.Key, err)
		}
		if err := s.blobs.Delete(ctx, o.Key); err != nil {
			return fmt.Errorf("removing orphan %s: %w", o.Key, err)
		}
		res.Removed++
		s.log.Info("removed an object no file names", "key", o.Key, "size", o.Size, "modified", o.Modified)
	}
	return nil
}

// multipartAborter finds a storage.MultipartAborter in blobs or in what it
// wraps (the metrics' instrumented store).
func multipartAborter(blobs storage.Blobs) (storage.MultipartAborter, bool) {
	return storage.Capability[storage.MultipartAborter](blobs)
}
