package s3_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"math/rand/v2"
	"strings"
	"testing"
	"testing/iotest"

	"github.com/aws/aws-sdk-go-v2/aws"
	awss3 "github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/example/flystorage/internal/storage"
	"github.com/example/flystorage/internal/storage/s3"
	"github.com/example/flystorage/internal/storage/storagetest"
	"github.com/example/flystorage/internal/testenv"
)

func TestConformance(t *testing.T) {
	storagetest.RunBlobs(t, func(t *testing.T) storage.Blobs {
		return testenv.S3Bucket(t).Blobs(t)
	})
}

// TestLargeUploadIsMultipart checks that a stream longer than one part
// reaches the store as a multipart upload: S3 gives such an object an ETag
// that ends in "-<parts>".
func TestLargeUploadIsMultipart(t *testing.T) {
	env := testenv.S3Bucket(t)
	ctx := context.Background()
	b := env.Blobs(t, func(o *s3.Options) { o.PartSize = 5 << 20 })
	key := "s3test/" + storage.NewID()
	if err := b.Put(ctx, key, io.LimitReader(zeros{}, 12<<20), -1, "application/octet-stream"); err != nil {
		t.Fatalf("Put: %v", err)
	}
	t.Cleanup(func() { b.Delete(ctx, key) })
	head, err := b.Client().HeadObject(ctx, &awss3.HeadObjectInput{Bucket: &env.Bucket, Key: &key})
	if err != nil {
		t.Fatalf("HeadObject: %v", err)
	}
	if etag := strings.Trim(aws.ToString(head.ETag), `"`); !strings.HasSuffix(etag, "-3") {
		t.Errorf("ETag = %q, want a multipart ETag of 3 parts (12 MiB in 5 MiB parts)", etag)
	}
}

type zeros struct{}

func (zeros) Read(p []byte) (int, error) { clear(p); return len(p), nil }

// TestFailedMultipartUploadIsAborted cuts a stream off after two parts:
// nothing is left at the key, and no unfinished upload keeps its parts.
func TestFailedMultipartUploadIsAborted(t *testing.T) {
	env := testenv.S3Bucket(t)
	ctx := context.Background()
	b := env.Blobs(t, func(o *s3.Options) { o.PartSize = 5 << 20 })
	boom := errors.New("client went away")
	key := "s3test/" + storage.NewID()
	if err := b.Put(ctx, key, io.MultiReader(io.LimitReader(zeros{}, 11<<20), iotest.ErrReader(boom)), -1, ""); !errors.Is(err, boom) {
		t.Fatalf("Put = %v, want the reader's error", err)
	}
	uploads, err := env.Client().ListMultipartUploads(ctx, &awss3.ListMultipartUploadsInput{Bucket: &env.Bucket})
	if err != nil {
		t.Fatal(err)
	}
	if len(uploads.Uploads) != 0 {
		t.Errorf("%d multipart uploads left unfinished after a failed Put", len(uploads.Uploads))
	}
}

// TestMultipartBytesArrive uploads streams around the part size (one byte
// short of it, exactly one and two parts, and a short last part) and reads
// each back byte for byte.
func TestMultipartBytesArrive(t *testing.T) {
	env := testenv.S3Bucket(t)
	ctx := context.Background()
	b := env.Blobs(t, func(o *s3.Options) { o.PartSize = 5 << 20; o.Concurrency = 2 })
	for _, size := range []int{0, 5<<20 - 1, 5 << 20, 10 << 20, 11<<20 + 7} {
		data := make([]byte, size)
		rand.NewChaCha8([32]byte{byte(size)}).Read(data)
		key := "s3test/" + storage.NewID()
		if err := b.Put(ctx, key, iotest.HalfReader(bytes.NewReader(data)), -1, "application/octet-stream"); err != nil {
			t.Fatalf("Put(%d bytes): %v", size, err)
		}
		t.Cleanup(func() { b.Delete(ctx, key) })
		r, info, err := b.Get(ctx, key, nil)
		if err != nil {
			t.Fatalf("Get(%d bytes): %v", size, err)
		}
		got, err := io.ReadAll(r)
		r.Close()
		if err != nil || !bytes.Equal(got, data) || info.Size != int64(size) {
			t.Errorf("%d bytes put, %d read back (size %d), equal %v, err %v", size, len(got), info.Size, bytes.Equal(got, data), err)
		}
	}
}

// TestFailedPartAbortsUpload: a part the store refuses fails the Put with
// the store's error, and the upload is aborted.
func TestFailedPartAbortsUpload(t *testing.T) {
	env := testenv.S3Bucket(t)
	ctx := context.Background()
	b := env.Blobs(t, func(o *s3.Options) { o.PartSize = 5 << 20 })
	key := "s3test/" + storage.NewID()
	// The second part goes out while the third is read: removing the
	// upload's parts by aborting it from outside makes that part fail.
	r := &hookReader{r: io.LimitReader(zeros{}, 16<<20), at: 11 << 20, hook: func() {
		uploads, err := env.Client().ListMultipartUploads(ctx, &awss3.ListMultipartUploadsInput{Bucket: &env.Bucket, Prefix: &key})
		if err != nil || len(uploads.Uploads) != 1 {
			t.Errorf("listing the upload in flight: %v, %d uploads", err, len(uploads.Uploads))
			return
		}
		if _, err := env.Client().AbortMultipartUpload(ctx, &awss3.AbortMultipartUploadInput{Bucket: &env.Bucket, Key: &key, UploadId: uploads.Uploads[0].UploadId}); err != nil {
			t.Error(err)
		}
	}}
	err := b.Put(ctx, key, r, -1, "")
	if err == nil {
		t.Fatal("Put succeeded although its upload was aborted under it")
	}
	if _, err := b.Stat(ctx, key); !errors.Is(err, storage.ErrNotFound) {
		t.Errorf("Stat after the failed Put: %v, want ErrNotFound", err)
	}
}

// hookReader calls hook once, when at bytes have been read.
type hookReader struct {
	r    io.Reader
	n    int64
	at   int64
	hook func()
}

func (h *hookReader) Read(p []byte) (int, error) {
	if h.n < h.at && h.n+int64(len(p)) > h.at {
		p = p[:h.at-h.n]
	}
	n, err := h.r.Read(p)
	h.n += int64(n)
	if h.n == h.at && h.hook != nil {
		h.hook()
		h.hook = nil
	}
	return n, err
}

// TestUploadHoldsConcurrencyPlusOneParts streams 26 MiB in 5 MiB parts:
// however the reading and the sending interleave, an upload never holds
// more than Concurrency+1 parts, and gives them all back when it ends.
func TestUploadHoldsConcurrencyPlusOneParts(t *testing.T) {
	env := testenv.S3Bucket(t)
	ctx := context.Background()
	for _, concurrency := range []int{1, 3} {
		b := env.Blobs(t, func(o *s3.Options) { o.PartSize = 5 << 20; o.Concurrency = concurrency })
		key := "s3test/" + storage.NewID()
		r := &partsWatcher{r: io.LimitReader(zeros{}, 26<<20)}
		if err := b.Put(ctx, key, r, -1, ""); err != nil {
			t.Fatalf("Put with concurrency %d: %v", concurrency, err)
		}
		t.Cleanup(func() { b.Delete(ctx, key) })
		if r.most < 1 || r.most > int64(concurrency)+1 {
			t.Errorf("concurrency %d: the upload held up to %d parts while reading, want 1 to %d", concurrency, r.most, concurrency+1)
		}
		if n := s3.PartsMapped(); n != 0 {
			t.Errorf("concurrency %d: %d parts still held after Put returned", concurrency, n)
		}
	}
}

// partsWatcher notes the most parts held while it was read.
type partsWatcher struct {
	r    io.Reader
	most int64
}

func (w *partsWatcher) Read(p []byte) (int, error) {
	w.most = max(w.most, s3.PartsMapped())
	return w.r.Read(p)
}

// TestPutOfWrongSizeStoresNothing: a body longer or shorter than the size
// announced fails with ErrInvalid, in one part or several, and leaves
// neither an object nor an unfinished upload.
func TestPutOfWrongSizeStoresNothing(t *testing.T) {
	env := testenv.S3Bucket(t)
	ctx := context.Background()
	b := env.Blobs(t, func(o *s3.Options) { o.PartSize = 5 << 20 })
	for _, c := range []struct{ size, body int64 }{
		{100, 50}, {50, 100}, // one part
		{12 << 20, 11 << 20}, {6 << 20, 11 << 20}, // several
	} {
		key := "s3test/" + storage.NewID()
		err := b.Put(ctx, key, io.LimitReader(zeros{}, c.body), c.size, "")
		if !errors.Is(err, storage.ErrInvalid) {
			t.Errorf("Put(%d bytes announced as %d) = %v, want ErrInvalid", c.body, c.size, err)
		}
		if _, err := b.Stat(ctx, key); !errors.Is(err, storage.ErrNotFound) {
			t.Errorf("Stat after Put(%d bytes announced as %d) = %v, want ErrNotFound", c.body, c.size, err)
		}
	}
	uploads, err := env.Client().ListMultipartUploads(ctx, &awss3.ListMultipartUploadsInput{Bucket: &env.Bucket})
	if err != nil {
		t.Fatal(err)
	}
	if len(uploads.Uploads) != 0 {
		t.Errorf("%d multipart uploads left unfinished", len(uploads.Uploads))
	}
}

// TestPartBodyAfterClose: once its request has returned, a part's body
// gives no more bytes, since its buffer is refilled or unmapped next.
func TestPartBodyAfterClose(t *testing.T) {
	body, closeBody := s3.NewPartBody([]byte("part"))
	if got, err := io.ReadAll(body); string(got) != "part" || err != nil {
		t.Fatalf("ReadAll = %q, %v", got, err)
	}
	if _, err := body.Seek(0, io.SeekStart); err != nil {
		t.Fatal(err)
	}
	closeBody()
	if n, err := body.Read(make([]byte, 4)); n != 0 || err == nil {
		t.Errorf("Read after close = %d, %v; want 0 and an error", n, err)
	}
	if _, err := body.Seek(0, io.SeekStart); err == nil {
		t.Error("Seek after close succeeded")
	}
	if n, err := io.Copy(io.Discard, body); n != 0 || err == nil {
		t.Errorf("WriteTo after close = %d, %v; want 0 and an error", n, err)
	}
}

// TestRefusalsCarryS3sCode: a refusal is a storage.RefusedError with S3's
// own code, which the HTTP layer shows the client, whether S3 answered
// with a body (a PUT) or only a status (a HEAD's 403).
func TestRefusalsCarryS3sCode(t *testing.T) {
	env := testenv.S3Bucket(t)
	ctx := context.Background()
	missing := env.Blobs(t, func(o *s3.Options) { o.Bucket = "flystorage-missing-" + testenv.RandomHex(6) })
	wrongKey := env.Blobs(t, func(o *s3.Options) { o.SecretAccessKey = "wrong" })
	for _, tc := range []struct {
		what string
		err  error
		code string
	}{
		{"Put to a missing bucket", missing.Put(ctx, "k", strings.NewReader("x"), 1, "text/plain"), "NoSuchBucket"},
		{"Put with a wrong secret key", wrongKey.Put(ctx, "k", strings.NewReader("x"), 1, "text/plain"), "SignatureDoesNotMatch"},
		{"Stat with a wrong secret key", func() error { _, err := wrongKey.Stat(ctx, "k"); return err }(), "AccessDenied"},
	} {
		var refused *storage.RefusedError
		if !errors.As(tc.err, &refused) || refused.Code != tc.code || !errors.Is(tc.err, storage.ErrRefused) {
			t.Errorf("%s = %v; want a storage.RefusedError with code %s, matching ErrRefused", tc.what, tc.err, tc.code)
		}
	}
}
