// Package s3 keeps file contents in an S3 bucket through aws-sdk-go-v2:
// Tigris on Fly (`fly storage create`), MinIO locally. Uploads stream in
// parts (upload.go); downloads stream the response body. Neither ever
// holds a whole file in memory.
package s3

import (
	"context"
	"errors"
	"fmt"
	"io"
	"iter"
	"mime"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/smithy-go"
	smithyhttp "github.com/aws/smithy-go/transport/http"

	appconfig "github.com/example/flystorage/internal/config"
	"github.com/example/flystorage/internal/storage"
)

var (
	_ storage.Blobs            = (*Bucket)(nil)
	_ storage.Presigner        = (*Bucket)(nil)
	_ storage.MultipartAborter = (*Bucket)(nil)
)

// Limits that keep a store that is down from hanging a request: a refused
// or unreachable endpoint fails within dialTimeout, one that stalls within
// Options.Timeout of its last byte, and each is tried retryMaxAttempts
// times in all.
const (
	dialTimeout      = 5 * time.Second
	retryMaxAttempts = 3
	// DefaultTimeout is how long a connection may make no progress.
	DefaultTimeout = appconfig.DefaultS3Timeout
	// abortTimeout lets a failed multipart upload be aborted even when the
	// request that drove it was cancelled, so no parts are left behind.
	abortTimeout = 10 * time.Second
	// defaultPartSize is the size of a multipart upload's parts; an upload
	// holds at most Concurrency+1 of them in memory.
	defaultPartSize = appconfig.DefaultPartSize
	// defaultConcurrency is how many parts of one upload are on their way
	// while the next is read.
	defaultConcurrency = appconfig.DefaultConcurrency
)

// Options locate the bucket.
type Options struct {
	Bucket          string
	Endpoint        string // empty: the SDK's own resolution (AWS_ENDPOINT_URL_S3)
	Region          string
	AccessKeyID     string // empty: the SDK's default credential chain
	SecretAccessKey string
	PathStyle       bool
	// Timeout fails a request whose connection sends and receives nothing
	// for this long; 0 means DefaultTimeout.
	Timeout     time.Duration
	PartSize    int64 // 0: defaultPartSize
	Concurrency int   // 0: defaultConcurrency
	// PublicEndpoint names the store in presigned URLs, for browsers that
	// reach it by another name than the app does; empty: Endpoint.
	PublicEndpoint string
	// Now is the clock presigned URLs are signed on, so their expiry
	// follows the app's; nil means the SDK's (time.Now).
	Now func() time.Time
}

// Bucket is a storage.Blobs on one S3 bucket.
type Bucket struct {
	client      *s3.Client
	presigner   *s3.PresignClient
	bucket      string
	partSize    int64
	concurrency int
	// hashParts: the store is reached over plain HTTP, where the SDK signs
	// each request's body and so hashes it before sending (over HTTPS it
	// sends it unsigned). An upload then hashes each part as it reads it,
	// while the previous part is sent, instead (upload.go).
	hashParts bool
	describe  map[string]string
}

// New builds a client for the bucket. It does not contact the store.
func New(ctx context.Context, o Options) (*Bucket, error) {
	if o.Timeout == 0 {
		o.Timeout = DefaultTimeout
	}
	dialer := &net.Dialer{Timeout: dialTimeout, KeepAlive: 30 * time.Second}
	httpClient := awshttp.NewBuildableClient().WithTransportOptions(func(t *http.Transport) {
		t.DialContext = func(ctx context.Context, network, addr string) (net.Conn, error) {
			c, err := dialer.DialContext(ctx, network, addr)
			if err != nil {
				return nil, err
			}
			return &progressConn{Conn: c, timeout: o.Timeout}, nil
		}
		t.ResponseHeaderTimeout = o.Timeout
	})
	opts := []func(*config.LoadOptions) error{
		config.WithRegion(o.Region),
		config.WithHTTPClient(httpClient),
		config.WithRetryMaxAttempts(retryMaxAttempts),
		// Tigris and several S3-compatible stores reject the CRC32 checksum
		// trailers the SDK sends by default since 2025; ask for checksums
		// only where the API requires them (docs/tigris.md).
		config.WithRequestChecksumCalculation(aws.RequestChecksumCalculationWhenRequired),
		config.WithResponseChecksumValidation(aws.ResponseChecksumValidationWhenRequired),
	}
	if o.AccessKeyID != "" {
		opts = append(opts, config.WithCredentialsProvider(
			credentials.NewStaticCredentialsProvider(o.AccessKeyID, o.SecretAccessKey, "")))
	}
	awsCfg, err := config.LoadDefaultConfig(ctx, opts...)
	if err != nil {
		return nil, fmt.Errorf("loading AWS configuration: %w", err)
	}
	client := s3.NewFromConfig(awsCfg, func(so *s3.Options) {
		if o.Endpoint != "" {
			so.BaseEndpoint = aws.String(o.Endpoint)
		}
		so.UsePathStyle = o.PathStyle
	})
	// URLs a browser follows name the store as the browser reaches it, and
	// are signed on the app's clock.
	var presignOpts []func(*s3.PresignOptions)
	if o.Now != nil {
		presignOpts = append(presignOpts, func(po *s3.PresignOptions) {
			po.Presigner = clockPresigner{v4.NewSigner(), o.Now}
		})
	}
	presigner := s3.NewPresignClient(client, presignOpts...)
	if o.PublicEndpoint != "" {
		presigner = s3.NewPresignClient(s3.NewFromConfig(awsCfg, func(so *s3.Options) {
			so.BaseEndpoint = aws.String(o.PublicEndpoint)
			so.UsePathStyle = o.PathStyle
		}), presignOpts...)
	}
	if o.PartSize == 0 {
		o.PartSize = defaultPartSize
	}
	if o.Concurrency == 0 {
		o.Concurrency = defaultConcurrency
	}
	endpoint := o.Endpoint
	if endpoint == "" {
		endpoint = "(SDK default)"
	}
	return &Bucket{
		client:      client,
		presigner:   presigner,
		bucket:      o.Bucket,
		partSize:    o.PartSize,
		concurrency: o.Concurrency,
		hashParts:   strings.HasPrefix(strings.ToLower(o.Endpoint), "http://"),
		describe:    map[string]string{"backend": "s3", "bucket": o.Bucket, "endpoint": endpoint, "region": o.Region},
	}, nil
}

// Client returns the underlying S3 client, for tests and tools.
func (b *Bucket) Client() *s3.Client { return b.client }

// Close does nothing: the client holds no resources that need releasing.
func (b *Bucket) Close() error { return nil }

// Backend is "s3" (storage.Describer).
func (b *Bucket) Backend() string { return "s3" }

// Describe returns the backend name, bucket, endpoint and region.
func (b *Bucket) Describe() map[string]string { return b.describe }

// Ping checks the bucket exists and the credentials may use it.
func (b *Bucket) Ping(ctx context.Context) error {
	_, err := b.client.HeadBucket(ctx, &s3.HeadBucketInput{Bucket: &b.bucket})
	return translate(err)
}

// Get streams the object at key, or the range rng selects.
func (b *Bucket) Get(ctx context.Context, key string, rng *storage.ByteRange) (io.ReadCloser, storage.BlobInfo, error) {
	in := &s3.GetObjectInput{Bucket: &b.bucket, Key: &key}
	if rng != nil {
		end := ""
		if rng.Length >= 0 {
			end = strconv.FormatInt(rng.Start+rng.Length-1, 10)
		}
		in.Range = aws.String(fmt.Sprintf("bytes=%d-%s", rng.Start, end))
	}
	out, err := b.client.GetObject(ctx, in)
	if err != nil {
		return nil, storage.BlobInfo{}, translate(err)
	}
	size := aws.ToInt64(out.ContentLength)
	if cr := aws.ToString(out.ContentRange); cr != "" { // bytes start-end/total
		if i := strings.LastIndexByte(cr, '/'); i >= 0 {
			if total, err := strconv.ParseInt(cr[i+1:], 10, 64); err == nil {
				size = total
			}
		}
	}
	return out.Body, storage.BlobInfo{Size: size, ContentType: aws.ToString(out.ContentType)}, nil
}

// clockPresigner signs at the time its clock gives instead of the SDK's.
type clockPresigner struct {
	signer *v4.Signer
	now    func() time.Time
}

func (p clockPresigner) PresignHTTP(ctx context.Context, creds aws.Credentials, r *http.Request, payloadHash, service, region string,
	_ time.Time, optFns ...func(*v4.SignerOptions)) (string, http.Header, error) {
	return p.signer.PresignHTTP(ctx, creds, r, payloadHash, service, region, p.now(), optFns...)
}

// PresignGet signs a GET of key, served as an attachment named filename.
func (b *Bucket) PresignGet(ctx context.Context, key string, ttl time.Duration, filename string) (string, error) {
	req, err := b.presigner.PresignGetObject(ctx, &s3.GetObjectInput{
		Bucket:                     &b.bucket,
		Key:                        &key,
		ResponseContentDisposition: aws.String(mime.FormatMediaType("attachment", map[string]string{"filename": filename})),
	}, s3.WithPresignExpires(ttl))
	if err != nil {
		return "", translate(err)
	}
	return req.URL, nil
}

// PresignPut signs a PUT of exactly size bytes of contentType to key. The
// signature covers both headers, so the store refuses any other body.
func (b *Bucket) PresignPut(ctx context.Context, key, contentType string, size int64, ttl time.Duration) (string, map[string]string, error) {
	// If-None-Match: * makes the URL write only where no object is: once
	// the upload is completed, the app leaves an empty object at the key
	// (service.CompleteUpload), and a later PUT gets 412.
	req, err := b.presigner.PresignPutObject(ctx, &s3.PutObjectInput{
		Bucket:        &b.bucket,
		Key:           &key,
		ContentType:   &contentType,
		ContentLength: &size,
		IfNoneMatch:   aws.String("*"),
	}, s3.WithPresignExpires(ttl))
	if err != nil {
		return "", nil, translate(err)
	}
	return req.URL, map[string]string{"Content-Type": contentType, "If-None-Match": "*"}, nil
}

// Stat reads the object's size and content type.
func (b *Bucket) Stat(ctx context.Context, key string) (storage.BlobInfo, error) {
	out, err := b.client.HeadObject(ctx, &s3.HeadObjectInput{Bucket: &b.bucket, Key: &key})
	if err != nil {
		return storage.BlobInfo{}, translate(err)
	}
	return storage.BlobInfo{Size: aws.ToInt64(out.ContentLength), ContentType: aws.ToString(out.ContentType)}, nil
}

// Delete removes the object; S3 treats a missing one as deleted.
func (b *Bucket) Delete(ctx context.Context, key string) error {
	_, err := b.client.DeleteObject(ctx, &s3.DeleteObjectInput{Bucket: &b.bucket, Key: &key})
	return translate(err)
}

// List pages through the objects under prefix.
func (b *Bucket) List(ctx context.Context, prefix string) iter.Seq2[storage.BlobEntry, error] {
	return func(yield func(storage.BlobEntry, error) bool) {
		pages := s3.NewListObjectsV2Paginator(b.client, &s3.ListObjectsV2Input{Bucket: &b.bucket, Prefix: &prefix})
		for pages.HasMorePages() {
			page, err := pages.NextPage(ctx)
			if err != nil {
				yield(storage.BlobEntry{}, translate(err))
				return
			}
			for _, o := range page.Contents {
				if !yield(storage.BlobEntry{Key: aws.ToString(o.Key), Size: aws.ToInt64(o.Size), Modified: aws.ToTime(o.LastModified)}, nil) {
					return
				}
			}
		}
	}
}

// Copy copies src to dst on the store's side, without the bytes passing
// through the app (one CopyObject: up to 5 GiB).
func (b *Bucket) Copy(ctx context.Context, src, dst string) error {
	_, err := b.client.CopyObject(ctx, &s3.CopyObjectInput{
		Bucket:     &b.bucket,
		Key:        &dst,
		CopySource: aws.String(b.bucket + "/" + url.PathEscape(src)),
	})
	return translate(err)
}

// progressConn fails a read or write once the connection has moved no byte
// in either direction for timeout. A deadline on the whole request would
// cut off large uploads on slow links; this one cuts off only a stall, such
// as a store that accepts a connection and then stops reading.
type progressConn struct {
	net.Conn
	timeout time.Duration
}

func (c *progressConn) Read(b []byte) (int, error) {
	c.Conn.SetDeadline(time.Now().Add(c.timeout))
	n, err := c.Conn.Read(b)
	if n > 0 {
		c.Conn.SetDeadline(time.Now().Add(c.timeout))
	}
	return n, err
}

func (c *progressConn) Write(b []byte) (int, error) {
	c.Conn.SetDeadline(time.Now().Add(c.timeout))
	return c.Conn.Write(b)
}

// ReadFrom copies a request body to the connection through a buffer
// reused across requests. net/http writes every body of known length this
// way, and io.Copy would allocate a 32 KiB buffer for each (one per part
// of an upload).
func (c *progressConn) ReadFrom(r io.Reader) (int64, error) {
	buf := copyBuffers.Get().(*[32 << 10]byte)
	defer copyBuffers.Put(buf)
	return io.CopyBuffer(writerOnly{c}, r, buf[:])
}

// writerOnly hides progressConn's ReadFrom from io.CopyBuffer, which
// would otherwise call it again.
type writerOnly struct{ io.Writer }

var copyBuffers = sync.Pool{New: func() any { return new([32 << 10]byte) }}

// AbortStale aborts the unfinished multipart uploads under prefix begun
// before olderThan: what an upload whose abort failed (the store was down)
// leaves, parts that cost storage and show in no listing of objects.
func (b *Bucket) AbortStale(ctx context.Context, prefix string, olderThan time.Time) (int, error) {
	aborted := 0
	// The whole bucket's uploads, filtered here: MinIO lists uploads only
	// for an exact key or for no prefix at all.
	in := &s3.ListMultipartUploadsInput{Bucket: &b.bucket}
	for {
		out, err := b.client.ListMultipartUploads(ctx, in)
		if err != nil {
			return aborted, translate(err)
		}
		for _, u := range out.Uploads {
			if !strings.HasPrefix(aws.ToString(u.Key), prefix) || u.Initiated == nil || !u.Initiated.Before(olderThan) {
				continue
			}
			_, err := b.client.AbortMultipartUpload(ctx, &s3.AbortMultipartUploadInput{Bucket: &b.bucket, Key: u.Key, UploadId: u.UploadId})
			var apiErr smithy.APIError
			if errors.As(err, &apiErr) && apiErr.ErrorCode() == "NoSuchUpload" {
				continue // completed or aborted meanwhile
			}
			if err != nil {
				return aborted, fmt.Errorf("aborting the upload of %s: %w", aws.ToString(u.Key), translate(err))
			}
			aborted++
		}
		if !aws.ToBool(out.IsTruncated) {
			return aborted, nil
		}
		in.KeyMarker, in.UploadIdMarker = out.NextKeyMarker, out.NextUploadIdMarker
	}
}

// translate turns SDK errors into the storage error kinds by their type and
// S3 error code, never by their text.
func translate(err error) error {
	var bodyErr *bodyError
	if err == nil || errors.As(err, &bodyErr) {
		return err
	}
	var apiErr smithy.APIError
	var sendErr *smithyhttp.RequestSendError
	var netErr net.Error
	switch {
	case errors.As(err, &apiErr):
		switch apiErr.ErrorCode() {
		case "NoSuchKey", "NotFound":
			return fmt.Errorf("%w: %w", storage.ErrNotFound, err)
		case "AccessDenied", "InvalidAccessKeyId", "SignatureDoesNotMatch", "ExpiredToken", "InvalidToken", "NoSuchBucket", "AllAccessDisabled":
			return &storage.RefusedError{Code: apiErr.ErrorCode(), Err: err}
		case "Forbidden":
			// A HEAD has no body, so S3 gives only the status: 403.
			return &storage.RefusedError{Code: "AccessDenied", Err: err}
		case "SlowDown", "ServiceUnavailable", "RequestTimeout":
			return fmt.Errorf("%w: %w", storage.ErrUnavailable, err)
		}
	case errors.As(err, &sendErr), errors.As(err, &netErr), errors.Is(err, context.DeadlineExceeded):
		return fmt.Errorf("%w: %w", storage.ErrUnavailable, err)
	}
	return err
}
