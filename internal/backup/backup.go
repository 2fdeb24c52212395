// Package backup copies a SQLite database to the bucket and back: a
// consistent snapshot taken while the app keeps writing, compressed, under
// backups/ with a timestamped key. Postgres needs none of this: Managed
// Postgres takes daily snapshots (docs/operations.md, "Backups").
package backup

import (
	"cmp"
	"compress/gzip"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/example/flystorage/internal/storage"
	"github.com/example/flystorage/internal/storage/sqlite"
)

// Prefix is where backups go in the bucket by default, apart from the
// files (config.BackupPrefix scopes it per machine with SQLite on Fly).
const Prefix = "backups/"

// keyFormat sorts as text in time order.
const keyFormat = "20060102T150405.000Z"

// Snapshotter writes a consistent copy of a live database to a new file.
type Snapshotter interface {
	Snapshot(ctx context.Context, dst string) error
}

// Create snapshots db into a temporary file beside dbPath (on the same
// volume, which has room for it), gzips it into the bucket under prefix,
// and returns the key. progress, if not nil, hears how many bytes have gone.
func Create(ctx context.Context, db Snapshotter, dbPath string, blobs storage.Blobs, prefix string, progress func(done, total int64)) (string, error) {
	tmp := filepath.Join(filepath.Dir(dbPath), fmt.Sprintf(".backup-%d.db", time.Now().UnixNano()))
	defer os.Remove(tmp)
	if err := db.Snapshot(ctx, tmp); err != nil {
		return "", fmt.Errorf("snapshotting the database: %w", err)
	}
	f, err := os.Open(tmp)
	if err != nil {
		return "", err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return "", err
	}

	key := prefix + "app-" + time.Now().UTC().Format(keyFormat) + ".db.gz"
	pr, pw := io.Pipe()
	go func() {
		zw := gzip.NewWriter(pw)
		_, err := io.Copy(zw, &counter{r: f, total: fi.Size(), report: progress})
		pw.CloseWithError(errors.Join(err, zw.Close()))
	}()
	if err := blobs.Put(ctx, key, pr, -1, "application/gzip"); err != nil {
		pr.CloseWithError(err)
		return "", fmt.Errorf("uploading %s: %w", key, err)
	}
	return key, nil
}

// List returns the backups directly under prefix, newest first.
func List(ctx context.Context, blobs storage.Blobs, prefix string) ([]storage.BlobEntry, error) {
	var out []storage.BlobEntry
	for e, err := range blobs.List(ctx, prefix) {
		if err != nil {
			return nil, err
		}
		name := strings.TrimPrefix(e.Key, prefix)
		if strings.HasSuffix(name, ".db.gz") && !strings.Contains(name, "/") {
			out = append(out, e)
		}
	}
	slices.SortFunc(out, func(a, b storage.BlobEntry) int { return cmp.Compare(b.Key, a.Key) })
	return out, nil
}

// Prune deletes all but the keep newest backups under prefix and returns
// how many it deleted.
func Prune(ctx context.Context, blobs storage.Blobs, prefix string, keep int) (int, error) {
	all, err := List(ctx, blobs, prefix)
	if err != nil || len(all) <= keep {
		return 0, err
	}
	for i, e := range all[keep:] {
		if err := blobs.Delete(ctx, e.Key); err != nil {
			return i, fmt.Errorf("deleting %s: %w", e.Key, err)
		}
	}
	return len(all) - keep, nil
}

// RestoreOptions say what to do about an existing database.
type RestoreOptions struct {
	Force     bool // replace it
	IfMissing bool // leave it, and do nothing
}

// ErrExists is returned by Restore when the database exists and neither
// option says what to do.
var ErrExists = errors.New("the database exists: pass --force to replace it, or --if-missing to keep it")

// ErrNotAppDatabase is returned by Restore when the backup is a valid
// SQLite file (or an empty one) without this app's schema.
var ErrNotAppDatabase = errors.New("not a flystorage database")

// ErrNoBackups is returned by Restore when there is no backup to restore.
var ErrNoBackups = errors.New("there are no backups")

// Restore writes the backup at key ("latest" for the newest under prefix)
// to dbPath and
// returns the key it restored, or "" when IfMissing found a database. It
// downloads to a temporary file, checks it with PRAGMA integrity_check and
// for this app's schema (ErrNotAppDatabase), and only then renames it into
// place, so a failure leaves dbPath as it was. The database it replaces is
// kept beside it as dbPath.before-restore-<time> until the app next opens
// the restored one. While an app has dbPath open it fails with an error
// matching sqlite.ErrInUse.
func Restore(ctx context.Context, blobs storage.Blobs, prefix, key, dbPath string, opts RestoreOptions, progress func(done, total int64)) (string, error) {
	exists := false
	switch _, err := os.Stat(dbPath); {
	case err == nil && opts.IfMissing:
		return "", nil
	case err == nil && !opts.Force:
		return "", fmt.Errorf("%s: %w", dbPath, ErrExists)
	case err == nil:
		exists = true
	case !errors.Is(err, fs.ErrNotExist):
		return "", err
	}
	// A running app would keep writing into the file this replaces, and
	// lose it all at its next start.
	unlock, err := sqlite.LockExclusive(dbPath)
	if err != nil {
		return "", err
	}
	defer unlock()
	if key == "" || key == "latest" {
		all, err := List(ctx, blobs, prefix)
		if err != nil {
			return "", fmt.Errorf("listing backups: %w", err)
		}
		if len(all) == 0 {
			return "", fmt.Errorf("%w under %s in the bucket", ErrNoBackups, prefix)
		}
		key = all[0].Key
	}

	body, info, err := blobs.Get(ctx, key, nil)
	if err != nil {
		return "", fmt.Errorf("downloading %s: %w", key, err)
	}
	defer body.Close()
	zr, err := gzip.NewReader(&counter{r: body, total: info.Size, report: progress})
	if err != nil {
		return "", fmt.Errorf("%s is not a gzip file: %w", key, err)
	}
	if err := os.MkdirAll(filepath.Dir(dbPath), 0o755); err != nil {
		return "", err
	}
	tmp := dbPath + ".restoring"
	defer os.Remove(tmp)
	if err := writeFile(tmp, zr); err != nil {
		return "", fmt.Errorf("restoring %s: %w", key, err)
	}
	if err := checkIntegrity(ctx, tmp); err != nil {
		return "", fmt.Errorf("%s: %w", key, err)
	}
	if err := checkSchema(ctx, tmp); err != nil {
		return "", fmt.Errorf("%s: %w", key, err)
	}
	if exists {
		// Keep the old database, with its write-ahead log (which holds
		// committed writes of its own and must not be replayed into the
		// restored file), under one name until the next start.
		old := dbPath + sqlite.BeforeRestoreSuffix + time.Now().UTC().Format(keyFormat)
		for _, suffix := range []string{"", "-wal"} {
			if err := os.Rename(dbPath+suffix, old+suffix); err != nil && !errors.Is(err, fs.ErrNotExist) {
				return "", fmt.Errorf("keeping the database being replaced: %w", err)
			}
		}
		if err := os.Remove(dbPath + "-shm"); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return "", err
		}
	}
	if err := os.Rename(tmp, dbPath); err != nil {
		return "", err
	}
	return key, nil
}

// appTables are the tables every version of the app's schema has.
var appTables = []string{"goose_db_version", "notes", "files", "uploads"}

// checkSchema refuses a database file that lacks this app's tables: an
// empty file or another program's SQLite database passes integrity_check.
func checkSchema(ctx context.Context, path string) error {
	db, err := sql.Open("sqlite", "file:"+(&url.URL{Path: path}).EscapedPath()+"?mode=ro")
	if err != nil {
		return err
	}
	defer db.Close()
	var missing []string
	for _, table := range appTables {
		var n int
		if err := db.QueryRowContext(ctx, "SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = ?", table).Scan(&n); err != nil {
			return fmt.Errorf("reading the restored database's schema: %w", err)
		}
		if n == 0 {
			missing = append(missing, table)
		}
	}
	if len(missing) > 0 {
		return fmt.Errorf("%w: it has no %s table", ErrNotAppDatabase, strings.Join(missing, ", "))
	}
	return nil
}

func writeFile(path string, r io.Reader) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o644)
	if err != nil {
		return err
	}
	if _, err := io.Copy(f, r); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// checkIntegrity runs PRAGMA integrity_check on a database file.
func checkIntegrity(ctx context.Context, path string) error {
	db, err := sql.Open("sqlite", "file:"+(&url.URL{Path: path}).EscapedPath()+"?mode=ro")
	if err != nil {
		return err
	}
	defer db.Close()
	var result string
	if err := db.QueryRowContext(ctx, "PRAGMA integrity_check").Scan(&result); err != nil {
		return fmt.Errorf("checking the restored database: %w", err)
	}
	if result != "ok" {
		return fmt.Errorf("the restored database fails PRAGMA integrity_check: %s", result)
	}
	return nil
}

// counter reports the bytes read through it.
type counter struct {
	r      io.Reader
	done   int64
	total  int64
	report func(done, total int64)
}

func (c *counter) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.done += int64(n)
	if c.report != nil && (n > 0 || err == io.EOF) {
		c.report(c.done, c.total)
	}
	return n, err
}
