package sqlite

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// ErrInUse is returned by LockExclusive while a process has the database
// open through Open.
var ErrInUse = errors.New("the database is open in a running app: stop the app (fly scale count 0, or stop the machine) before restoring")

// The lock file beside the database (path + ".lock") tells a restore that
// an app has the database open: Open holds a shared advisory lock (flock)
// on it for the Store's lifetime, and LockExclusive takes it exclusively
// without waiting. The kernel drops the lock when the process dies, so a
// crash never leaves it held.
func lockPath(path string) string { return path + ".lock" }

// LockExclusive locks the database at path against Open, for a restore:
// it fails at once with an error matching ErrInUse while a Store has it
// open. unlock releases it.
func LockExclusive(path string) (unlock func() error, err error) {
	f, err := lockFile(path, true)
	if err != nil {
		return nil, err
	}
	return f.Close, nil
}

// lockFile opens path's lock file and takes a shared or an exclusive lock
// on it without waiting.
func lockFile(path string, exclusive bool) (*os.File, error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return nil, fmt.Errorf("creating the database directory: %w", err)
	}
	f, err := os.OpenFile(lockPath(path), os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return nil, fmt.Errorf("opening the lock file of %s: %w", path, err)
	}
	busy, err := flock(f, exclusive)
	switch {
	case busy && exclusive:
		f.Close()
		return nil, fmt.Errorf("%s: %w", path, ErrInUse)
	case busy:
		f.Close()
		return nil, fmt.Errorf("%s is being restored (app restore holds %s): start the app when it is done", path, lockPath(path))
	case err != nil:
		f.Close()
		return nil, fmt.Errorf("locking %s: %w", lockPath(path), err)
	}
	return f, nil
}

// BeforeRestoreSuffix names the copy of a database that a restore
// replaced: path + BeforeRestoreSuffix + a UTC time. Open removes such
// copies once it has opened and migrated the restored database.
const BeforeRestoreSuffix = ".before-restore-"

// removeBeforeRestore deletes what a restore kept of the database it
// replaced.
func removeBeforeRestore(path string) error {
	entries, err := os.ReadDir(filepath.Dir(path))
	if err != nil {
		return err
	}
	var errs []error
	for _, e := range entries {
		if strings.HasPrefix(e.Name(), filepath.Base(path)+BeforeRestoreSuffix) {
			errs = append(errs, os.Remove(filepath.Join(filepath.Dir(path), e.Name())))
		}
	}
	return errors.Join(errs...)
}
