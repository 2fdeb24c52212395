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
// are left alone. Then a store that keeps the parts of unfinished
// multipart uploads (storage.MultipartAborter) has those under the prefix
// begun before the grace period aborted. Last, expired sessions and old
// idempotency keys go.
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
	for entry, err := range s.blobs.List(ctx, s.keyPrefix) {
		if err != nil {
			return res, fmt.Errorf("listing %s: %w", s.keyPrefix, err)
		}
		named, ours, err := s.named(ctx, entry.Key)
		if !ours {
			continue
		}
		res.Checked++
		if entry.Modified.After(cutoff) {
			continue
		}
		if err != nil {
			return res, err
		}
		if named {
			continue
		}
		if err := s.blobs.Delete(ctx, entry.Key); err != nil {
			return res, fmt.Errorf("removing orphan %s: %w", entry.Key, err)
		}
		res.Removed++
		s.log.Info("removed an object no file names", "key", entry.Key, "size", entry.Size, "modified", entry.Modified)
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

// named reports whether key is one of the app's keys (ours) and whether a
// row names it: a file whose Key is exactly it, or, for a staging key, an
// open intent.
func (s *Service) named(ctx context.Context, key string) (named, ours bool, err error) {
	if id, ok := storage.StagedID(s.keyPrefix, key); ok {
		_, err := s.db.GetUpload(ctx, id)
		if errors.Is(err, storage.ErrNotFound) {
			return false, true, nil
		}
		return err == nil, true, wrapLookup(err, "upload", id)
	}
	id, ok := storage.FileID(s.keyPrefix, key)
	if !ok {
		return false, false, nil
	}
	f, err := s.db.GetFile(ctx, id)
	switch {
	case err == nil:
		return f.Key == key, true, nil
	case !errors.Is(err, storage.ErrNotFound):
		return false, true, wrapLookup(err, "file", id)
	}
	// A complete in progress copies to a version key before its row
	// exists; its intent is still open.
	_, err = s.db.GetUpload(ctx, id)
	if errors.Is(err, storage.ErrNotFound) {
		return false, true, nil
	}
	return err == nil, true, wrapLookup(err, "upload", id)
}

func wrapLookup(err error, what, id string) error {
	if err == nil {
		return nil
	}
	return fmt.Errorf("looking up %s %s: %w", what, id, err)
}

// multipartAborter finds a storage.MultipartAborter in blobs or in what it
// wraps (the metrics' instrumented store).
func multipartAborter(blobs storage.Blobs) (storage.MultipartAborter, bool) {
	for {
		if a, ok := blobs.(storage.MultipartAborter); ok {
			return a, true
		}
		u, ok := blobs.(interface{ Unwrap() storage.Blobs })
		if !ok {
			return nil, false
		}
		blobs = u.Unwrap()
	}
}
