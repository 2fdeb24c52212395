package localfs_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"testing/iotest"

	"github.com/example/flystorage/internal/storage"
	"github.com/example/flystorage/internal/storage/localfs"
	"github.com/example/flystorage/internal/storage/storagetest"
)

func open(t *testing.T, dir string) *localfs.Dir {
	t.Helper()
	d, err := localfs.New(dir)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	t.Cleanup(func() { d.Close() })
	return d
}

func TestConformance(t *testing.T) {
	storagetest.RunBlobs(t, func(t *testing.T) storage.Blobs { return open(t, filepath.Join(t.TempDir(), "blobs")) })
}

func TestKeysCannotEscape(t *testing.T) {
	parent := t.TempDir()
	d := open(t, filepath.Join(parent, "blobs"))
	ctx := context.Background()
	for _, key := range []string{"../outside", "/etc/passwd", "a/../../outside", ".tmp/x", "a//b", "", ".", "a/.hidden"} {
		if err := d.Put(ctx, key, strings.NewReader("x"), 1, ""); !errors.Is(err, storage.ErrInvalid) {
			t.Errorf("Put(%q) = %v, want ErrInvalid", key, err)
		}
		if _, _, err := d.Get(ctx, key, nil); !errors.Is(err, storage.ErrInvalid) {
			t.Errorf("Get(%q) = %v, want ErrInvalid", key, err)
		}
	}
	// A symlink planted in the directory does not lead out of it either.
	if err := os.WriteFile(filepath.Join(parent, "secret"), []byte("s"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(filepath.Join(parent, "secret"), filepath.Join(parent, "blobs", "link")); err != nil {
		t.Fatal(err)
	}
	if _, _, err := d.Get(ctx, "link", nil); err == nil {
		t.Errorf("Get through a symlink out of the directory succeeded")
	}
	entries, _ := os.ReadDir(parent)
	if len(entries) != 2 {
		t.Errorf("parent directory holds %d entries, want blobs and secret only", len(entries))
	}
}

func TestNoPartialFileVisible(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "blobs")
	d := open(t, dir)
	boom := errors.New("cut off")
	r := io.MultiReader(bytes.NewReader(make([]byte, 1<<20)), iotest.ErrReader(boom))
	err := d.Put(context.Background(), "files/x", r, -1, "")
	if !errors.Is(err, boom) {
		t.Fatalf("Put = %v, want the reader's error", err)
	}
	var found []string
	filepath.WalkDir(dir, func(path string, e os.DirEntry, err error) error {
		if err == nil && !e.IsDir() {
			found = append(found, path)
		}
		return nil
	})
	if len(found) != 0 {
		t.Errorf("after a failed Put the directory holds %v, want nothing (not even a temp file)", found)
	}
}
