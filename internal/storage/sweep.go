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

// SweepResult counts what Sweep saw.
type SweepResult struct {
	Checked int // objects under FilePrefix
	Removed int // objects no row named, older than SweepGrace
}

// Sweep removes file objects that no row names and that are older than
// grace: what a crash between an upload's two steps leaves, or a delete
// whose second step failed. Objects whose key is not one FileKey makes are
// left alone.
func Sweep(ctx context.Context, db Database, blobs Blobs, grace time.Duration, log *slog.Logger) (SweepResult, error) {
	var res SweepResult
	cutoff := time.Now().Add(-grace)
	for entry, err := range blobs.List(ctx, FilePrefix) {
		if err != nil {
			return res, fmt.Errorf("listing %s: %w", FilePrefix, err)
		}
		id, ok := FileID(entry.Key)
		if !ok {
			continue
		}
		res.Checked++
		if entry.Modified.After(cutoff) {
			continue
		}
		switch _, err := db.GetFile(ctx, id); {
		case err == nil:
			continue
		case !errors.Is(err, ErrNotFound):
			return res, fmt.Errorf("looking up file %s: %w", id, err)
		}
		if err := blobs.Delete(ctx, entry.Key); err != nil {
			return res, fmt.Errorf("removing orphan %s: %w", entry.Key, err)
		}
		res.Removed++
		log.Info("removed an object no file names", "key", entry.Key, "size", entry.Size, "modified", entry.Modified)
	}
	return res, nil
}
