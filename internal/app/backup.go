package app

// This file holds every part of SQLite's backups to the bucket: the
// `backup` and `restore` commands and the periodic job's pieces.

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"
	"time"

	"github.com/example/flystorage/internal/backup"
	"github.com/example/flystorage/internal/cache"
	"github.com/example/flystorage/internal/config"
	"github.com/example/flystorage/internal/storage"
	"github.com/example/flystorage/internal/storage/backend"
)

// backupOnce runs `app backup`, under the lock the servers' job takes.
func backupOnce(ctx context.Context, setup Setup, st *Storage, redis *cache.Cache, stdout, stderr io.Writer, log *slog.Logger) error {
	var key string
	err := Locked(ctx, redis, BackupLock(setup.Config), jobLockTTL, log, func(ctx context.Context) (err error) {
		key, err = backUp(ctx, setup, st, progressTo(stdout, stderr), log)
		return err
	})
	if err != nil {
		return err
	}
	if key == "" {
		fmt.Fprintln(stdout, "skipped: another machine is backing up")
		return nil
	}
	fmt.Fprintln(stdout, key)
	return nil
}

// BackupLock names the backup job's lock after the backups' prefix, so
// only machines sharing it take turns.
func BackupLock(cfg config.Config) string { return "backup:" + cfg.BackupPrefix() }

// backUp snapshots the SQLite database into the bucket and prunes old
// backups down to BACKUP_KEEP.
func backUp(ctx context.Context, setup Setup, st *Storage, progress func(done, total int64), log *slog.Logger) (string, error) {
	cfg := setup.Config
	db, ok := st.DB.(backup.Snapshotter)
	file, isFile := setup.DB.(storage.FileSource)
	if !ok || !isFile || cfg.S3 == nil {
		return "", config.UsageError(fmt.Sprintf("app backup backs up SQLite (DATABASE_PATH) to a bucket (BUCKET_NAME); the database is %s: use its provider's backups", setup.Driver.Name))
	}
	key, err := backup.Create(ctx, db, file.File(), st.Blobs, cfg.BackupPrefix(), progress)
	if err != nil {
		return "", err
	}
	log.Info("backed up", "key", key)
	if cfg.BackupKeep > 0 {
		n, err := backup.Prune(ctx, st.Blobs, cfg.BackupPrefix(), cfg.BackupKeep)
		if err != nil {
			return key, fmt.Errorf("pruning old backups: %w", err)
		}
		if n > 0 {
			log.Info("pruned old backups", "removed", n, "kept", cfg.BackupKeep)
		}
	}
	return key, nil
}

// restore runs `app restore [KEY|latest] [--force|--if-missing]`.
func restore(ctx context.Context, setup Setup, args []string, stdout, stderr io.Writer) error {
	cfg := setup.Config
	flags := flag.NewFlagSet("restore", flag.ContinueOnError)
	flags.SetOutput(stderr)
	var opts backup.RestoreOptions
	flags.BoolVar(&opts.Force, "force", false, "replace the database at DATABASE_PATH")
	flags.BoolVar(&opts.IfMissing, "if-missing", false, "do nothing if the database exists (for a machine's boot command)")
	key := "latest"
	if len(args) > 0 && !strings.HasPrefix(args[0], "-") {
		key, args = args[0], args[1:]
	}
	if err := flags.Parse(args); err != nil || flags.NArg() > 0 || (opts.Force && opts.IfMissing) {
		return config.UsageError("usage: app restore [KEY|latest] [--force | --if-missing]")
	}
	file, isFile := setup.DB.(storage.FileSource)
	if !isFile || cfg.S3 == nil {
		return config.UsageError("app restore restores SQLite (DATABASE_PATH) from a bucket (BUCKET_NAME)")
	}
	path := file.File()
	blobs, err := backend.OpenBlobs(ctx, cfg, setup.Clock)
	if err != nil {
		return err
	}
	defer blobs.Close()
	restored, err := backup.Restore(ctx, blobs, cfg.BackupPrefix(), key, path, opts, progressTo(stdout, stderr))
	switch {
	case errors.Is(err, backup.ErrNoBackups) && opts.IfMissing:
		// A machine's first boot, before it has backed anything up.
		fmt.Fprintf(stdout, "no backups under %s; starting with an empty database\n", cfg.BackupPrefix())
	case err != nil:
		return err
	case restored == "":
		fmt.Fprintf(stdout, "%s exists; nothing restored\n", path)
	default:
		fmt.Fprintf(stdout, "restored %s to %s\n", restored, path)
		// Nothing cached from before the restore may be served after it.
		redis, err := cache.Open(ctx, setup.Cache, slog.New(slog.NewTextHandler(stderr, nil)))
		if err == nil {
			err = redis.Flush(ctx)
			redis.Close()
		}
		if err != nil {
			fmt.Fprintf(stderr, "restored, but the Redis cache could not be flushed (%v): cached notes and files from before the restore may be served for up to CACHE_TTL\n", err)
		}
	}
	return nil
}

// progressTo reports progress on stderr when stdout is a terminal, and
// stays quiet in logs and scripts.
func progressTo(stdout, stderr io.Writer) func(done, total int64) {
	f, ok := stdout.(*os.File)
	if !ok {
		return nil
	}
	if fi, err := f.Stat(); err != nil || fi.Mode()&os.ModeCharDevice == 0 {
		return nil
	}
	var last time.Time
	return func(done, total int64) {
		if time.Since(last) < 200*time.Millisecond && done < total {
			return
		}
		last = time.Now()
		fmt.Fprintf(stderr, "\r%d of %d MiB", done>>20, total>>20)
		if done >= total {
			fmt.Fprintln(stderr)
		}
	}
}

// backupDue reports whether the newest backup is older than
// BACKUP_INTERVAL. A machine that Fly stops when idle may never stay up for
// a whole interval, so the server backs up at start when one is due.
func backupDue(ctx context.Context, setup Setup, st *Storage, log *slog.Logger) bool {
	cfg := setup.Config
	all, err := backup.List(ctx, st.Blobs, cfg.BackupPrefix())
	if err != nil {
		log.Warn("listing backups to see if one is due", "err", err)
		return false
	}
	due := len(all) == 0 || setup.Clock().Sub(all[0].Modified) > cfg.BackupInterval
	if !due {
		log.Info("no backup due at start", "newest", all[0].Key, "interval", cfg.BackupInterval)
	}
	return due
}
