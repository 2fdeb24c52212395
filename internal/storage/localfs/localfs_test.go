package localfs_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
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

// TestListReadsInChunks lists a tree whose directories hold more entries
// than List reads at a time, deleting each blob as it is yielded (as the
// sweep deletes orphans while it lists): every blob under the prefix is
// yielded once. Listing everything leaves out the temporary directory,
// and a consumer that stops is not called again.
func TestListReadsInChunks(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "blobs")
	d := open(t, dir)
	ctx := context.Background()
	want := map[string]bool{}
	others := 0
	// Written directly, not through Put, which syncs each file.
	for _, sub := range []string{"files/", "files/incoming/", "files/incoming/deeper/", "files/empty/", "other/"} {
		if err := os.MkdirAll(filepath.Join(dir, filepath.FromSlash(sub)), 0o755); err != nil {
			t.Fatal(err)
		}
		n := 2*localfs.ListChunk + 3
		switch sub {
		case "files/incoming/deeper/":
			n = 1
		case "files/empty/":
			n = 0
		}
		for i := range n {
			key := fmt.Sprintf("%s%05d", sub, i)
			if err := os.WriteFile(filepath.Join(dir, filepath.FromSlash(key)), []byte("x"), 0o644); err != nil {
				t.Fatal(err)
			}
			if strings.HasPrefix(key, "files/") {
				want[key] = true
			} else {
				others++
			}
		}
	}
	if err := os.WriteFile(filepath.Join(dir, ".tmp", "upload-in-progress"), []byte("x"), 0o600); err != nil {
		t.Fatal(err)
	}

	got := map[string]int{}
	for e, err := range d.List(ctx, "files/") {
		if err != nil {
			t.Fatalf("List: %v", err)
		}
		got[e.Key]++
		if e.Size != 1 {
			t.Errorf("List yielded %s of %d bytes, want 1", e.Key, e.Size)
		}
		if err := d.Delete(ctx, e.Key); err != nil {
			t.Fatal(err)
		}
	}
	for k, n := range got {
		if !want[k] || n != 1 {
			t.Errorf("List yielded %s %d times; want it once if it is under files/, else never", k, n)
		}
	}
	if len(got) != len(want) {
		t.Errorf("List yielded %d keys, want %d", len(got), len(want))
	}

	n := 0
	for e, err := range d.List(ctx, "") {
		if err != nil || !strings.HasPrefix(e.Key, "other/") {
			t.Errorf("List of everything yielded %q, %v; want only other/'s blobs", e.Key, err)
		}
		n++
	}
	if n != others {
		t.Errorf("List of everything yielded %d blobs, want %d", n, others)
	}
	// Were List to call yield after the loop stopped, the runtime would
	// panic.
	for range d.List(ctx, "other/") {
		break
	}
}

// TestListSkipsWhatIsDeletedMeanwhile deletes a directory List has read
// the name of but not yet walked, as a user's delete can while a sweep
// lists: what is gone is skipped, not an error that stops the listing.
func TestListSkipsWhatIsDeletedMeanwhile(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "blobs")
	d := open(t, dir)
	ctx := context.Background()
	for _, k := range []string{"files/x/1", "files/y/2"} {
		p := filepath.Join(dir, filepath.FromSlash(k))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte("x"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	var seen []string
	for e, err := range d.List(ctx, "files/") {
		if err != nil {
			t.Fatalf("List after a directory it had read the name of went: %v", err)
		}
		seen = append(seen, e.Key)
		// Whichever directory comes first, the other one goes.
		other := map[string]string{"files/x/1": "y", "files/y/2": "x"}[e.Key]
		if err := os.RemoveAll(filepath.Join(dir, "files", other)); err != nil {
			t.Fatal(err)
		}
	}
	if len(seen) != 1 {
		t.Errorf("List yielded %q, want only the first object, the other's directory being deleted", seen)
	}
}
