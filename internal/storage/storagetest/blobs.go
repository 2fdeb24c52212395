package storagetest

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"strings"
	"testing"
	"testing/iotest"
	"time"

	"github.com/example/flystorage/internal/storage"
)

// This file holds the tests of storage.Blobs that RunBlobs runs, in the
// order of blobTests.

// testBlobRoundTrip puts empty, one-byte and 100 KiB blobs, each with its
// size given and unknown (-1), and reads each back whole.
func testBlobRoundTrip(t *testing.T, b storage.Blobs) {
	for _, size := range []int64{0, 1, 100 << 10} {
		data := randomBytes(size)
		for _, known := range []bool{true, false} {
			k := blobKey("blob")
			n := int64(-1)
			if known {
				n = size
			}
			if err := b.Put(t.Context(), k, bytes.NewReader(data), n, "text/plain"); err != nil {
				t.Fatalf("Put(%d bytes, size known %v): %v", size, known, err)
			}
			assertBlob(t, b, k, data)
		}
	}
}

// testBlobRanges reads parts of a blob: its first and last byte, a middle
// span and open-ended tails; the info gives the whole blob's size.
func testBlobRanges(t *testing.T, b storage.Blobs) {
	data := randomBytes(10_000)
	k := blobKey("ranged")
	if err := b.Put(t.Context(), k, bytes.NewReader(data), int64(len(data)), "application/octet-stream"); err != nil {
		t.Fatal(err)
	}
	for _, rng := range []storage.ByteRange{{Start: 0, Length: 1}, {Start: 100, Length: 900}, {Start: 9_999, Length: 1}, {Start: 5_000, Length: -1}, {Start: 0, Length: -1}} {
		r, info, err := b.Get(t.Context(), k, &rng)
		if err != nil {
			t.Fatalf("Get(%+v): %v", rng, err)
		}
		got, err := io.ReadAll(r)
		r.Close()
		end := int64(len(data))
		if rng.Length >= 0 {
			end = rng.Start + rng.Length
		}
		if err != nil || !bytes.Equal(got, data[rng.Start:end]) || info.Size != int64(len(data)) {
			t.Errorf("Get(%+v) = %d bytes (whole size %d), %v; want bytes %d to %d of %d", rng, len(got), info.Size, err, rng.Start, end, len(data))
		}
	}
}

// testBlobLargerThanOnePart streams 12 MiB with no size, which crosses the
// transfer manager's default 8 MiB part, so S3 stores it as a multipart
// upload.
func testBlobLargerThanOnePart(t *testing.T, b storage.Blobs) {
	data := randomBytes(12 << 20)
	k := blobKey("large")
	if err := b.Put(t.Context(), k, io.MultiReader(bytes.NewReader(data)), -1, "application/octet-stream"); err != nil {
		t.Fatalf("Put: %v", err)
	}
	assertBlob(t, b, k, data)
}

func testBlobMissing(t *testing.T, b storage.Blobs) {
	k := blobKey("missing")
	if _, _, err := b.Get(t.Context(), k, nil); !errors.Is(err, storage.ErrNotFound) {
		t.Errorf("Get(missing) = %v, want ErrNotFound", err)
	}
	if _, err := b.Stat(t.Context(), k); !errors.Is(err, storage.ErrNotFound) {
		t.Errorf("Stat(missing) = %v, want ErrNotFound", err)
	}
	if err := b.Delete(t.Context(), k); err != nil {
		t.Errorf("Delete(missing) = %v, want nil", err)
	}
}

func testBlobDelete(t *testing.T, b storage.Blobs) {
	k := blobKey("doomed")
	if err := b.Put(t.Context(), k, strings.NewReader("bye"), 3, "text/plain"); err != nil {
		t.Fatalf("Put: %v", err)
	}
	if err := b.Delete(t.Context(), k); err != nil {
		t.Fatalf("Delete: %v", err)
	}
	if _, err := b.Stat(t.Context(), k); !errors.Is(err, storage.ErrNotFound) {
		t.Errorf("Stat after delete = %v, want ErrNotFound", err)
	}
}

// testBlobFailedPutLeavesNothing: a Put whose reader fails returns the
// reader's error and leaves no blob, within one part and past the first.
func testBlobFailedPutLeavesNothing(t *testing.T, b storage.Blobs) {
	for _, size := range []int64{10 << 10, 9 << 20} {
		k := blobKey("failed")
		boom := errors.New("client went away")
		r := io.MultiReader(bytes.NewReader(randomBytes(size)), iotest.ErrReader(boom))
		if err := b.Put(t.Context(), k, r, -1, "text/plain"); !errors.Is(err, boom) {
			t.Errorf("Put(reader failing after %d bytes) = %v, want the reader's error", size, err)
		}
		if _, err := b.Stat(t.Context(), k); !errors.Is(err, storage.ErrNotFound) {
			t.Errorf("Stat after failed Put of %d bytes = %v, want ErrNotFound", size, err)
		}
	}
}

// testBlobList lists every blob under a prefix, nested ones too, with its
// size and a modification time of about now, and nothing outside it.
func testBlobList(t *testing.T, b storage.Blobs) {
	prefix := blobKey("")
	want := map[string]int64{prefix + "a": 1, prefix + "b": 2, prefix + "deep/c": 3}
	for k, size := range want {
		if err := b.Put(t.Context(), k, bytes.NewReader(randomBytes(size)), size, "text/plain"); err != nil {
			t.Fatalf("Put(%s): %v", k, err)
		}
	}
	if err := b.Put(t.Context(), blobKey("other"), strings.NewReader("x"), 1, ""); err != nil {
		t.Fatal(err)
	}
	got := map[string]int64{}
	for e, err := range b.List(t.Context(), prefix) {
		if err != nil {
			t.Fatalf("List: %v", err)
		}
		got[e.Key] = e.Size
		if time.Since(e.Modified) > time.Hour || time.Until(e.Modified) > time.Minute {
			t.Errorf("List: %s modified %v, want about now", e.Key, e.Modified)
		}
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("List(%s) = %v, want %v", prefix, got, want)
	}
}

func testBlobListEmptyPrefix(t *testing.T, b storage.Blobs) {
	if err := b.Put(t.Context(), blobKey("elsewhere"), strings.NewReader("x"), 1, ""); err != nil {
		t.Fatal(err)
	}
	for e, err := range b.List(t.Context(), blobKey("")) {
		t.Errorf("List of an empty prefix yielded %+v, %v", e, err)
	}
}

func testBlobPing(t *testing.T, b storage.Blobs) {
	if err := b.Ping(t.Context()); err != nil {
		t.Errorf("Ping: %v", err)
	}
}
