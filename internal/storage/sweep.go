package storage

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"
)

// SweepGrace is how old an object without a row must be before Sweep
// removes it: an upload writes its object a moment before its row, and
// must not lose the race.
const SweepGrace = time.Hour

// SweepResult counts what Sweep did.
type SweepResult struct {
	Expired int // upload intents past their expiry, removed with their objects
	Checked int // file objects looked at
	Removed int // objects no row named, older than the grace period
	Aborted int // unfinished multipart uploads older than the grace period
}

// MultipartAborter is implemented by blob stores whose unfinished
// multipart uploads keep their parts (S3): an upload whose abort failed
// leaves parts that no listing of objects shows.
type MultipartAborter interface {
	// AbortStale aborts the unfinished multipart uploads of keys under
	// prefix begun before olderThan, and returns how many it aborted.
	AbortStale(ctx context.Context, prefix string, olderThan time.Time) (int, error)
}

// multipartAborter finds a MultipartAborter in blobs or in what it wraps.
func multipartAborter(blobs Blobs) (MultipartAborter, bool) {
	for {
		if a, ok := blobs.(MultipartAborter); ok {
			return a, true
		}
		u, ok := blobs.(interface{ Unwrap() Blobs })
		if !ok {
			return nil, false
		}
		blobs = u.Unwrap()
	}
}

// Sweep cleans the blob store of what no file names, in two passes.
//
// First, upload intents that expired are removed with whatever object the
// client put. Then every object under prefix whose key FileKey or
// StagingKey made is looked up: one older than grace with neither a file
// row nor an upload intent of its id is removed. That is what a crash
// between an upload's two steps leaves, a delete whose second step failed,
// or a presigned PUT repeated after its upload completed. Other keys are
// left alone. Last, a store that keeps the parts of unfinished multipart
// uploads (MultipartAborter) has those under prefix begun before the grace
// period aborted.
func Sweep(ctx context.Context, db Database, blobs Blobs, prefix string, grace time.Duration, log *slog.Logger) (SweepResult, error) {
	var res SweepResult
	for {
		expired, err := db.ExpiredUploads(ctx, time.Now(), 100)
		if err != nil {
			return res, fmt.Errorf("listing expired uploads: %w", err)
		}
		for _, u := range expired {
			// The intent goes first: a completion racing the sweep either
			// takes it (and the sweep leaves the object) or finds it gone.
			switch err := db.DeleteUpload(ctx, u.ID); {
			case errors.Is(err, ErrNotFound):
				continue
			case err != nil:
				return res, fmt.Errorf("removing expired upload %s: %w", u.ID, err)
			}
			if err := blobs.Delete(ctx, u.Key); err != nil {
				return res, fmt.Errorf("removing the object of expired upload %s: %w", u.ID, err)
			}
			res.Expired++
			log.Info("removed an expired upload", "id", u.ID, "key", u.Key, "expired", u.ExpiresAt)
		}
		if len(expired) < 100 {
			break
		}
	}

	cutoff := time.Now().Add(-grace)
	for entry, err := range blobs.List(ctx, prefix) {
		if err != nil {
			return res, fmt.Errorf("listing %s: %w", prefix, err)
		}
		// A file's key, or a staging key that a presigned PUT may have
		// written after its upload was completed.
		id, ok := FileID(prefix, entry.Key)
		if !ok {
			id, ok = FileID(prefix+stagingDir, entry.Key)
		}
		if !ok {
			continue
		}
		res.Checked++
		if entry.Modified.After(cutoff) {
			continue
		}
		named, err := rowNames(ctx, db, id)
		if err != nil {
			return res, err
		}
		if named {
			continue
		}
		if err := blobs.Delete(ctx, entry.Key); err != nil {
			return res, fmt.Errorf("removing orphan %s: %w", entry.Key, err)
		}
		res.Removed++
		log.Info("removed an object no file names", "key", entry.Key, "size", entry.Size, "modified", entry.Modified)
	}

	// Last, the parts of uploads that never completed nor aborted.
	if a, ok := multipartAborter(blobs); ok {
		n, err := a.AbortStale(ctx, prefix, cutoff)
		res.Aborted = n
		if err != nil {
			return res, fmt.Errorf("aborting stale multipart uploads under %s: %w", prefix, err)
		}
		if n > 0 {
			log.Info("aborted unfinished multipart uploads", "prefix", prefix, "count", n)
		}
	}
	return res, nil
}

// rowNames reports whether a file or an upload intent has that id.
func rowNames(ctx context.Context, db Database, id string) (bool, error) {
	if _, err := db.GetFile(ctx, id); !errors.Is(err, ErrNotFound) {
		return err == nil, wrapLookup(err, "file", id)
	}
	if _, err := db.GetUpload(ctx, id); !errors.Is(err, ErrNotFound) {
		return err == nil, wrapLookup(err, "upload", id)
	}
	return false, nil
}

func wrapLookup(err error, what, id string) error {
	if err == nil {
		return nil
	}
	return fmt.Errorf("looking up %s %s: %w", what, id, err)
}
