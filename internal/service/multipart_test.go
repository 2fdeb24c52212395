package service_test

import (
	"bytes"
	"context"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awss3 "github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/example/flystorage/internal/service"
	"github.com/example/flystorage/internal/storage"
	"github.com/example/flystorage/internal/testenv"
)

// TestSweepAbortsStaleMultipartUploads: an upload whose abort failed (the
// store was down) leaves its parts in the bucket, invisible to a listing.
// The sweep aborts those under the files prefix once they are older than
// the grace period, and leaves younger ones and other prefixes alone.
func TestSweepAbortsStaleMultipartUploads(t *testing.T) {
	env := testenv.S3Bucket(t)
	ctx := context.Background()
	b := env.Blobs(t)
	client := b.Client()
	start := func(key string) {
		t.Helper()
		up, err := client.CreateMultipartUpload(ctx, &awss3.CreateMultipartUploadInput{Bucket: &env.Bucket, Key: &key})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := client.UploadPart(ctx, &awss3.UploadPartInput{Bucket: &env.Bucket, Key: &key, UploadId: up.UploadId,
			PartNumber: aws.Int32(1), Body: bytes.NewReader(make([]byte, 5<<20))}); err != nil {
			t.Fatal(err)
		}
	}
	start(storage.FileKey("files/", storage.NewID()))
	start(storage.FileKey("files/", storage.NewID()))
	start("backups/app-20260101T000000.000Z.db.gz") // not the sweep's
	// uploads counts the unfinished uploads under prefix (listing them all:
	// MinIO lists none for a prefix that is not a whole key).
	uploads := func(prefix string) int {
		out, err := client.ListMultipartUploads(ctx, &awss3.ListMultipartUploadsInput{Bucket: &env.Bucket})
		if err != nil {
			t.Fatal(err)
		}
		n := 0
		for _, u := range out.Uploads {
			if strings.HasPrefix(aws.ToString(u.Key), prefix) {
				n++
			}
		}
		return n
	}
	db, _ := testenv.LocalStores(t)
	clk := &clock{t: time.Now()}
	s := service.New(service.Options{DB: db, Blobs: b, KeyPrefix: "files/", Now: clk.Now})

	// Within the grace period nothing is aborted.
	res, err := s.Sweep(ctx, service.SweepGrace)
	if err != nil {
		t.Fatal(err)
	}
	if res.Aborted != 0 || uploads("files/") != 2 {
		t.Fatalf("a sweep within the grace period aborted %d uploads; %d remain, want 2", res.Aborted, uploads("files/"))
	}
	// Past the grace period both are stale.
	clk.Add(service.SweepGrace + time.Hour)
	res, err = s.Sweep(ctx, service.SweepGrace)
	if err != nil {
		t.Fatal(err)
	}
	if res.Aborted != 2 || uploads("files/") != 0 {
		t.Errorf("sweep aborted %d stale uploads, %d remain; want 2 aborted, none left", res.Aborted, uploads("files/"))
	}
	if n := uploads("backups/"); n != 1 {
		t.Errorf("the sweep of files/ touched uploads under backups/: %d left, want 1", n)
	}
}
