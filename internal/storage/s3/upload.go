// This file replaces the SDK's transfer manager
// (feature/s3/transfermanager) for uploads, to keep an upload's memory
// small enough for a 256 MB machine. Measured against it on 2026-12-06
// (same build, 5 MiB parts, one sent while the next is read, MinIO on
// loopback): one 512 MiB upload peaked at 42-44 MiB of app RSS against
// 51-67 MiB; eight at once at 117 MiB against 179 MiB, which the transfer
// manager's heap then kept; the same CPU per GiB (docs/performance.md,
// "Hand-written or library").

package s3

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"slices"
	"sync"
	"sync/atomic"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
	"github.com/aws/smithy-go/middleware"

	appconfig "github.com/example/flystorage/internal/config"
	"github.com/example/flystorage/internal/storage"
)

// partsMapped counts the parts of every upload in progress, for tests.
var partsMapped atomic.Int64

// maxParts is the most parts S3 takes in one multipart upload.
const maxParts = appconfig.MaxParts

// upload is one Put: the body read into parts of partSize, each sent as
// soon as it is full while the next is read. An upload holds at most
// concurrency+1 parts in memory: concurrency of them on their way while
// one is read, or all of them when the store is slower than the body.
//
// The parts live outside the Go heap (partbuf_linux.go) and are returned
// to the kernel when the upload ends. The SDK's transfer manager, used
// before, allocated all concurrency+1 parts on the heap at the start of
// every upload plus a first part read with io.ReadAll, and left them to
// the collector: with GOGC's default the heap could grow to twice that
// before the next collection (docs/performance.md).
type upload struct {
	b           *Bucket
	key         string
	contentType string
	partSize    int
	concurrency int

	free   chan []byte // parts sent and ready to be filled again
	made   int         // parts mapped so far, at most concurrency+1
	all    [][]byte    // every part mapped, unmapped by release
	wg     sync.WaitGroup
	mu     sync.Mutex
	err    error // the first failure of a part
	done   []types.CompletedPart
	cancel context.CancelFunc
	// hash hashes each part as it is read, when the SDK would hash it
	// before sending: see Bucket.hashParts.
	hash hash.Hash
}

// Put streams r to key. A body shorter than one part goes up in one
// PutObject; a longer one in a multipart upload, aborted if anything fails,
// so nothing is left at key. When size is known, a body of another length
// fails with storage.ErrInvalid and is not stored.
func (b *Bucket) Put(ctx context.Context, key string, r io.Reader, size int64, contentType string) error {
	u := &upload{b: b, key: key, contentType: contentType, partSize: int(b.partSize), concurrency: b.concurrency}
	if size > int64(u.partSize)*maxParts {
		// A known size too large for S3's 10,000 parts gets larger parts.
		u.partSize = int((size + maxParts - 1) / maxParts)
	}
	u.free = make(chan []byte, u.concurrency+1)
	if b.hashParts {
		u.hash = sha256.New()
	}
	defer u.release()
	return translate(u.run(ctx, r, size))
}

func (u *upload) run(ctx context.Context, r io.Reader, size int64) error {
	buf, err := u.part(ctx)
	if err != nil {
		return err
	}
	n, err := u.fill(r, buf)
	switch {
	case err == io.EOF:
		if size >= 0 && int64(n) != size {
			return wrongSize(int64(n), size)
		}
		return u.single(ctx, buf[:n], u.sum())
	case err != nil:
		return readError(err)
	}

	out, err := u.b.client.CreateMultipartUpload(ctx, &s3.CreateMultipartUploadInput{
		Bucket: &u.b.bucket, Key: &u.key, ContentType: nonEmpty(u.contentType),
	})
	if err != nil {
		return err
	}
	id := out.UploadId
	ctx, u.cancel = context.WithCancel(ctx)
	defer u.cancel()

	total, last := int64(n), false
	var readErr error
	for num := int32(1); ; num++ {
		u.send(ctx, id, num, buf[:n], u.sum())
		if last || u.failed() {
			break
		}
		if buf, readErr = u.part(ctx); readErr != nil {
			break
		}
		n, readErr = u.fill(r, buf)
		total += int64(n)
		if readErr == io.EOF {
			readErr, last = nil, true
		}
		if readErr != nil || n == 0 {
			u.free <- buf
			if readErr != nil {
				readErr = readError(readErr)
			}
			break
		}
		if num == maxParts {
			u.free <- buf
			readErr = fmt.Errorf("%w: the body exceeds S3's %d parts of %d bytes; raise S3_PART_SIZE", storage.ErrTooLarge, maxParts, u.partSize)
			break
		}
	}
	u.wg.Wait()

	// A failed part cancels ctx, which may have cut the reading short:
	// then the part's error is the cause.
	err = readErr
	if err == nil || (u.err != nil && errors.Is(err, context.Canceled)) {
		err = u.err
	}
	if err == nil && size >= 0 && total != size {
		err = wrongSize(total, size)
	}
	if err != nil {
		return u.abort(ctx, id, err)
	}
	slices.SortFunc(u.done, func(a, b types.CompletedPart) int { return int(*a.PartNumber - *b.PartNumber) })
	_, err = u.b.client.CompleteMultipartUpload(ctx, &s3.CompleteMultipartUploadInput{
		Bucket: &u.b.bucket, Key: &u.key, UploadId: id,
		MultipartUpload: &types.CompletedMultipartUpload{Parts: u.done},
	})
	if err != nil {
		return u.abort(ctx, id, err)
	}
	return nil
}

// fill reads from r until buf is full, r ends (io.EOF) or fails. Unlike
// io.ReadFull it keeps an error that comes with the bytes that fill buf.
// With u.hash it hashes the bytes as they arrive, for sum.
func (u *upload) fill(r io.Reader, buf []byte) (n int, err error) {
	if u.hash != nil {
		u.hash.Reset()
	}
	for n < len(buf) && err == nil {
		var m int
		m, err = r.Read(buf[n:])
		if u.hash != nil {
			u.hash.Write(buf[n : n+m])
		}
		n += m
	}
	return n, err
}

// sum is the SHA-256 of what fill read last, for the request's signature,
// or "" when the SDK need not hash it (u.hash is nil).
func (u *upload) sum() string {
	if u.hash == nil {
		return ""
	}
	return hex.EncodeToString(u.hash.Sum(nil))
}

// withPayloadHash gives a request the SHA-256 of its body, so that the SDK
// signs with it instead of reading the body once more to compute it.
func withPayloadHash(sum string) []func(*s3.Options) {
	if sum == "" {
		return nil
	}
	return []func(*s3.Options){func(o *s3.Options) {
		o.APIOptions = append(o.APIOptions, func(stack *middleware.Stack) error {
			return stack.Finalize.Insert(middleware.FinalizeMiddlewareFunc("flystoragePayloadHash",
				func(ctx context.Context, in middleware.FinalizeInput, next middleware.FinalizeHandler) (middleware.FinalizeOutput, middleware.Metadata, error) {
					return next.HandleFinalize(v4.SetPayloadHash(ctx, sum), in)
				}), "ComputePayloadHash", middleware.Before)
		})
	}}
}

// single stores a body of less than one part with one PutObject.
func (u *upload) single(ctx context.Context, data []byte, sum string) error {
	body := newPartBody(data)
	defer body.close()
	_, err := u.b.client.PutObject(ctx, &s3.PutObjectInput{
		Bucket: &u.b.bucket, Key: &u.key, Body: body,
		ContentLength: aws.Int64(int64(len(data))), ContentType: nonEmpty(u.contentType),
	}, withPayloadHash(sum)...)
	return err
}

// send uploads data as part num in the background, and puts its buffer
// back in u.free when done. The first part to fail cancels the others.
func (u *upload) send(ctx context.Context, id *string, num int32, data []byte, sum string) {
	u.wg.Add(1)
	go func() {
		defer u.wg.Done()
		body := newPartBody(data)
		out, err := u.b.client.UploadPart(ctx, &s3.UploadPartInput{
			Bucket: &u.b.bucket, Key: &u.key, UploadId: id, PartNumber: aws.Int32(num),
			Body: body, ContentLength: aws.Int64(int64(len(data))),
		}, withPayloadHash(sum)...)
		body.close()
		u.free <- data[:cap(data)]
		u.mu.Lock()
		defer u.mu.Unlock()
		if err != nil {
			if u.err == nil {
				u.err = fmt.Errorf("uploading part %d: %w", num, err)
				u.cancel()
			}
			return
		}
		u.done = append(u.done, types.CompletedPart{ETag: out.ETag, PartNumber: aws.Int32(num)})
	}()
}

func (u *upload) failed() bool {
	u.mu.Lock()
	defer u.mu.Unlock()
	return u.err != nil
}

// part returns a buffer to fill: a new one while fewer than concurrency+1
// exist, else the next one a sent part gives back.
func (u *upload) part(ctx context.Context) ([]byte, error) {
	select {
	case buf := <-u.free:
		return buf, nil
	default:
	}
	if u.made < u.concurrency+1 {
		buf, err := mapPart(u.partSize)
		if err != nil {
			return nil, fmt.Errorf("allocating a part of %d bytes: %w", u.partSize, err)
		}
		u.made++
		u.all = append(u.all, buf)
		partsMapped.Add(1)
		return buf, nil
	}
	select {
	case buf := <-u.free:
		return buf, nil
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// release returns every part to the kernel. Every request that read one
// has returned and closed its body by then.
func (u *upload) release() {
	for _, buf := range u.all {
		unmapPart(buf)
		partsMapped.Add(-1)
	}
	u.all = nil
}

// abort aborts the multipart upload after err, even if ctx was cancelled,
// so that its parts do not stay behind, and returns err.
func (u *upload) abort(ctx context.Context, id *string, err error) error {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), abortTimeout)
	defer cancel()
	if _, abortErr := u.b.client.AbortMultipartUpload(ctx, &s3.AbortMultipartUploadInput{
		Bucket: &u.b.bucket, Key: &u.key, UploadId: id,
	}); abortErr != nil {
		return fmt.Errorf("%w (and aborting the multipart upload failed, so the sweep will: %v)", err, abortErr)
	}
	return err
}

// readError is a failure to read the body: the caller's, never the
// store's, so translate leaves it as it is.
func readError(err error) error { return &bodyError{err} }

type bodyError struct{ err error }

func (e *bodyError) Error() string { return "reading the body: " + e.err.Error() }
func (e *bodyError) Unwrap() error { return e.err }

func wrongSize(got, want int64) error {
	return fmt.Errorf("%w: the body has %d bytes, %d were announced", storage.ErrInvalid, got, want)
}

func nonEmpty(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}

// partBody is a part as the SDK reads it: seekable, so that the SDK can
// hash it for the signature and rewind it for a retry. close cuts it off
// from its buffer: net/http may still read a request's body after the
// request has returned, and the buffer is about to be refilled or
// unmapped, so a read after close gets an error, never the memory.
type partBody struct {
	mu     sync.Mutex
	r      *bytes.Reader
	closed bool
}

var errPartDone = errors.New("s3: part body read after its request returned")

func newPartBody(data []byte) *partBody { return &partBody{r: bytes.NewReader(data)} }

func (p *partBody) Read(b []byte) (int, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return 0, errPartDone
	}
	return p.r.Read(b)
}

// WriteTo writes the rest of the part straight from its buffer. The SDK
// hashes a part for its signature through it, which would otherwise take a
// 32 KiB copy buffer per part.
func (p *partBody) WriteTo(w io.Writer) (int64, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return 0, errPartDone
	}
	return p.r.WriteTo(w)
}

func (p *partBody) Seek(offset int64, whence int) (int64, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return 0, errPartDone
	}
	return p.r.Seek(offset, whence)
}

func (p *partBody) close() {
	p.mu.Lock()
	p.closed = true
	p.mu.Unlock()
}
