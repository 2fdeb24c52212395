// Package localfs keeps file contents in a directory: on a Fly volume beside
// the SQLite file, or under ./data locally. It is what the app uses when no
// BUCKET_NAME is set.
package localfs

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"iter"
	"os"
	"path"
	"strings"
	"syscall"
	"time"

	"github.com/example/flystorage/internal/storage"
)

var _ storage.Blobs = (*Dir)(nil)

// tmpDir holds uploads in progress, inside the root so that the final rename
// stays on one filesystem and is atomic. Keys may not start with a dot, so
// none can reach it.
const tmpDir = ".tmp"

// Dir is a storage.Blobs in a directory. Every path goes through an os.Root,
// so no key, and no symlink planted in the directory, can reach a file
// outside it.
type Dir struct {
	root *os.Root
	dir  string
}

// New creates dir if needed and opens it.
func New(dir string) (*Dir, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("creating %s: %w", dir, err)
	}
	root, err := os.OpenRoot(dir)
	if err != nil {
		return nil, err
	}
	if err := root.MkdirAll(tmpDir, 0o700); err != nil {
		root.Close()
		return nil, fmt.Errorf("creating %s/%s: %w", dir, tmpDir, err)
	}
	d := &Dir{root: root, dir: dir}
	d.removeStaleTemp()
	return d, nil
}

// Close releases the directory.
func (d *Dir) Close() error { return d.root.Close() }

// Backend is "local" (storage.Describer).
func (d *Dir) Backend() string { return "local" }

// Describe returns the backend name and the directory.
func (d *Dir) Describe() map[string]string {
	return map[string]string{"backend": "local", "dir": d.dir}
}

// Ping checks the directory is still there.
func (d *Dir) Ping(ctx context.Context) error {
	_, err := d.root.Stat(tmpDir)
	return translate(err)
}

// checkKey accepts slash-separated relative keys with no "." or ".."
// element and no element starting with a dot.
func checkKey(key string) error {
	if !fs.ValidPath(key) || key == "." {
		return fmt.Errorf("%w: blob key %q is not a clean relative path", storage.ErrInvalid, key)
	}
	for _, elem := range strings.Split(key, "/") {
		if strings.HasPrefix(elem, ".") {
			return fmt.Errorf("%w: blob key %q has an element starting with a dot", storage.ErrInvalid, key)
		}
	}
	return nil
}

// Put writes r to a temporary file, syncs it, and renames it to key, so a
// reader sees the whole blob or nothing.
func (d *Dir) Put(ctx context.Context, key string, r io.Reader, size int64, _ string) (err error) {
	if err := checkKey(key); err != nil {
		return err
	}
	tmp := path.Join(tmpDir, randomName())
	f, err := d.root.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
	if err != nil {
		return translate(err)
	}
	defer func() {
		if err != nil {
			f.Close()
			d.root.Remove(tmp)
		}
	}()
	n, err := io.Copy(f, contextReader{ctx, r})
	if err != nil {
		return translate(err)
	}
	if size >= 0 && n != size {
		return fmt.Errorf("%w: got %d bytes, expected %d", storage.ErrInvalid, n, size)
	}
	if err := f.Sync(); err != nil {
		return translate(err)
	}
	if err := f.Close(); err != nil {
		return translate(err)
	}
	if dir := path.Dir(key); dir != "." {
		if err := d.root.MkdirAll(dir, 0o755); err != nil {
			return translate(err)
		}
	}
	return translate(d.root.Rename(tmp, key))
}

var _ storage.VolumeReporter = (*Dir)(nil)

// Volume reports the file system holding the directory.
func (d *Dir) Volume() (storage.Volume, error) { return storage.StatVolume(d.dir) }

// Get opens the blob at key, positioned at rng's start and cut at its end.
func (d *Dir) Get(ctx context.Context, key string, rng *storage.ByteRange) (io.ReadCloser, storage.BlobInfo, error) {
	if err := checkKey(key); err != nil {
		return nil, storage.BlobInfo{}, err
	}
	f, err := d.root.Open(key)
	if err != nil {
		return nil, storage.BlobInfo{}, translate(err)
	}
	fi, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, storage.BlobInfo{}, translate(err)
	}
	info := storage.BlobInfo{Size: fi.Size()}
	if rng == nil {
		return f, info, nil
	}
	if _, err := f.Seek(rng.Start, io.SeekStart); err != nil {
		f.Close()
		return nil, storage.BlobInfo{}, err
	}
	if rng.Length < 0 {
		return f, info, nil
	}
	return struct {
		io.Reader
		io.Closer
	}{io.LimitReader(f, rng.Length), f}, info, nil
}

// Stat returns the blob's size.
func (d *Dir) Stat(ctx context.Context, key string) (storage.BlobInfo, error) {
	if err := checkKey(key); err != nil {
		return storage.BlobInfo{}, err
	}
	fi, err := d.root.Stat(key)
	if err != nil {
		return storage.BlobInfo{}, translate(err)
	}
	if !fi.Mode().IsRegular() {
		return storage.BlobInfo{}, fmt.Errorf("%w: %s is not a file", storage.ErrNotFound, key)
	}
	return storage.BlobInfo{Size: fi.Size()}, nil
}

// Delete removes the blob; a missing one is not an error.
func (d *Dir) Delete(ctx context.Context, key string) error {
	if err := checkKey(key); err != nil {
		return err
	}
	if err := d.root.Remove(key); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return translate(err)
	}
	return nil
}

// listChunk is how many entries List reads from a directory at a time.
const listChunk = 256

// List walks the directory below prefix, which must end at a path element
// ("files/", not "fi"), depth first. It reads each directory listChunk
// entries at a time, in the order the file system keeps them, so that a
// directory of a million blobs costs no more memory than one of a
// thousand.
func (d *Dir) List(ctx context.Context, prefix string) iter.Seq2[storage.BlobEntry, error] {
	return func(yield func(storage.BlobEntry, error) bool) {
		dir := strings.TrimSuffix(prefix, "/")
		if dir == "" {
			dir = "."
		}
		fi, err := d.root.Stat(dir)
		switch {
		case errors.Is(err, fs.ErrNotExist):
			return // nothing stored yet
		case err != nil:
			yield(storage.BlobEntry{}, translate(err))
			return
		case !fi.IsDir():
			yield(storage.BlobEntry{Key: dir, Size: fi.Size(), Modified: fi.ModTime()}, nil)
			return
		}
		if _, err := d.walk(ctx, dir, yield); err != nil {
			yield(storage.BlobEntry{}, translate(err))
		}
	}
}

// walk yields every file below dir, and reports whether to go on: false
// once yield has asked to stop, or with the error that stopped it. What is
// deleted while it walks (a directory, or a file read from its directory
// but not yet looked at) is skipped: it is gone, as if listed a moment
// later.
func (d *Dir) walk(ctx context.Context, dir string, yield func(storage.BlobEntry, error) bool) (bool, error) {
	f, err := d.root.Open(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return true, nil
	}
	if err != nil {
		return false, err
	}
	defer f.Close()
	for {
		if err := ctx.Err(); err != nil {
			return false, err
		}
		entries, err := f.ReadDir(listChunk)
		for _, e := range entries {
			p := path.Join(dir, e.Name())
			if e.IsDir() {
				if p == tmpDir {
					continue
				}
				if more, err := d.walk(ctx, p, yield); !more {
					return false, err
				}
				continue
			}
			fi, err := e.Info()
			if errors.Is(err, fs.ErrNotExist) {
				continue
			}
			if err != nil {
				return false, err
			}
			if !yield(storage.BlobEntry{Key: p, Size: fi.Size(), Modified: fi.ModTime()}, nil) {
				return false, nil
			}
		}
		switch {
		case err == io.EOF:
			return true, nil
		case err != nil:
			return false, err
		}
	}
}

// removeStaleTemp deletes uploads a crash interrupted: temporary files
// older than an hour.
func (d *Dir) removeStaleTemp() {
	entries, _ := fs.ReadDir(d.root.FS(), tmpDir)
	for _, e := range entries {
		if fi, err := e.Info(); err == nil && time.Since(fi.ModTime()) > time.Hour {
			d.root.Remove(path.Join(tmpDir, e.Name()))
		}
	}
}

func randomName() string {
	b := make([]byte, 16)
	rand.Read(b)
	return hex.EncodeToString(b)
}

// contextReader stops a copy when the request is cancelled.
type contextReader struct {
	ctx context.Context
	r   io.Reader
}

func (c contextReader) Read(p []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	return c.r.Read(p)
}

func translate(err error) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, fs.ErrNotExist):
		return fmt.Errorf("%w: %w", storage.ErrNotFound, err)
	case errors.Is(err, syscall.ENOSPC), errors.Is(err, syscall.EDQUOT):
		return fmt.Errorf("%w: %w", storage.ErrNoSpace, err)
	}
	return err
}
