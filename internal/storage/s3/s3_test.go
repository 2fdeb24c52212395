package s3_test

import (
	"context"
	"errors"
	"io"
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
