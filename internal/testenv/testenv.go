// Package testenv finds the services integration tests talk to: a real
// Postgres (TEST_DATABASE_URL) and a real S3 store such as MinIO
// (TEST_S3_ENDPOINT and friends). `make test` sets them up; see docs/testing.md.
//
// A test whose service is not configured skips with the variable to set,
// except under CI (CI set), where it fails: CI must not pass on a skip.
package testenv

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"net/url"
	"os"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/jackc/pgx/v5"

	s3store "github.com/example/flystorage/internal/storage/s3"
)

// need returns the value of name, or skips (fails under CI) naming it.
func need(t testing.TB, name, why string) string {
	t.Helper()
	v := os.Getenv(name)
	if v == "" {
		if os.Getenv("CI") != "" {
			t.Fatalf("%s is not set: %s (CI refuses to skip integration tests; run `make test`)", name, why)
		}
		t.Skipf("%s is not set: %s (`make test` sets it up)", name, why)
	}
	return v
}

// PostgresURL returns the URL of a fresh, empty schema in the database at
// TEST_DATABASE_URL, dropped when the test ends. The schema is selected
// through search_path in the URL, so everything the app creates lands in it.
func PostgresURL(t testing.TB) string {
	t.Helper()
	base := need(t, "TEST_DATABASE_URL", "a Postgres URL such as postgres://postgres@127.0.0.1:5432/flystorage_test?sslmode=disable")
	schema := "test_" + RandomHex(6)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, base)
	if err != nil {
		t.Fatalf("connecting to TEST_DATABASE_URL: %v", err)
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, "CREATE SCHEMA "+schema); err != nil {
		t.Fatalf("creating schema: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		conn, err := pgx.Connect(ctx, base)
		if err != nil {
			t.Errorf("connecting to drop schema %s: %v", schema, err)
			return
		}
		defer conn.Close(ctx)
		if _, err := conn.Exec(ctx, "DROP SCHEMA "+schema+" CASCADE"); err != nil {
			t.Errorf("dropping schema %s: %v", schema, err)
		}
	})
	u, err := url.Parse(base)
	if err != nil {
		t.Fatalf("TEST_DATABASE_URL: %v", err)
	}
	q := u.Query()
	q.Set("search_path", schema)
	u.RawQuery = q.Encode()
	return u.String()
}

// S3 is a bucket on a real S3-compatible store.
type S3 struct {
	Endpoint, AccessKeyID, SecretAccessKey, Bucket, Region string
}

// Env returns the app's environment variables for this bucket.
func (s S3) Env() map[string]string {
	return map[string]string{
		"BUCKET_NAME":           s.Bucket,
		"AWS_ENDPOINT_URL_S3":   s.Endpoint,
		"AWS_ACCESS_KEY_ID":     s.AccessKeyID,
		"AWS_SECRET_ACCESS_KEY": s.SecretAccessKey,
		"AWS_REGION":            s.Region,
	}
}

// S3Bucket creates a bucket of its own for the test on the store at
// TEST_S3_ENDPOINT (keys in TEST_S3_ACCESS_KEY_ID and
// TEST_S3_SECRET_ACCESS_KEY), and empties and removes it when the test
// ends, so a test can count everything in it.
func S3Bucket(t testing.TB) S3 {
	t.Helper()
	s := S3{
		Endpoint:        need(t, "TEST_S3_ENDPOINT", "an S3 endpoint such as http://127.0.0.1:9000 (MinIO)"),
		AccessKeyID:     need(t, "TEST_S3_ACCESS_KEY_ID", "the S3 access key id"),
		SecretAccessKey: need(t, "TEST_S3_SECRET_ACCESS_KEY", "the S3 secret access key"),
		Bucket:          "flystorage-test-" + RandomHex(6),
		Region:          "us-east-1",
	}
	client := s.Client()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := client.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: &s.Bucket}); err != nil {
		t.Fatalf("creating bucket %s at TEST_S3_ENDPOINT: %v", s.Bucket, err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		if err := removeBucket(ctx, client, s.Bucket); err != nil {
			t.Errorf("removing bucket %s: %v", s.Bucket, err)
		}
	})
	return s
}

// Options returns the s3 backend's options for the bucket.
func (s S3) Options() s3store.Options {
	return s3store.Options{Bucket: s.Bucket, Endpoint: s.Endpoint, Region: s.Region,
		AccessKeyID: s.AccessKeyID, SecretAccessKey: s.SecretAccessKey, PathStyle: true}
}

// Blobs opens the s3 backend on the bucket with o's changes applied.
func (s S3) Blobs(t testing.TB, change ...func(*s3store.Options)) *s3store.Bucket {
	t.Helper()
	o := s.Options()
	for _, c := range change {
		c(&o)
	}
	b, err := s3store.New(context.Background(), o)
	if err != nil {
		t.Fatalf("opening bucket %s: %v", s.Bucket, err)
	}
	return b
}

// Client returns an S3 client for the store, with path-style URLs.
func (s S3) Client() *s3.Client {
	return s3.New(s3.Options{
		BaseEndpoint: aws.String(s.Endpoint),
		Region:       s.Region,
		Credentials:  credentials.NewStaticCredentialsProvider(s.AccessKeyID, s.SecretAccessKey, ""),
		UsePathStyle: true,
	})
}

// removeBucket aborts unfinished multipart uploads, deletes every object
// and then the bucket.
func removeBucket(ctx context.Context, client *s3.Client, bucket string) error {
	uploads, err := client.ListMultipartUploads(ctx, &s3.ListMultipartUploadsInput{Bucket: &bucket})
	if err != nil {
		return err
	}
	for _, u := range uploads.Uploads {
		client.AbortMultipartUpload(ctx, &s3.AbortMultipartUploadInput{Bucket: &bucket, Key: u.Key, UploadId: u.UploadId})
	}
	pages := s3.NewListObjectsV2Paginator(client, &s3.ListObjectsV2Input{Bucket: &bucket})
	for pages.HasMorePages() {
		page, err := pages.NextPage(ctx)
		if err != nil {
			return err
		}
		for _, o := range page.Contents {
			if _, err := client.DeleteObject(ctx, &s3.DeleteObjectInput{Bucket: &bucket, Key: o.Key}); err != nil {
				return err
			}
		}
	}
	_, err = client.DeleteBucket(ctx, &s3.DeleteBucketInput{Bucket: &bucket})
	return err
}

// RandomHex returns n random bytes in hex.
func RandomHex(n int) string {
	b := make([]byte, n)
	rand.Read(b)
	return hex.EncodeToString(b)
}
