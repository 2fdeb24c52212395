package service

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io"
	"strings"
	"time"

	"github.com/example/flystorage/internal/cache"
	"github.com/example/flystorage/internal/storage"
)

// Direct uploads: the client records an intent (StartUpload), puts the
// bytes at a URL of its own (a presigned URL into the bucket, or the app's
// signed URL for a directory, which calls PutUpload), then completes.
//
// The URL always writes a staging key. Completing copies the staged bytes
// to a VersionKey that no URL can write, hashes what that key holds, and
// records it, so the bytes hashed are the bytes kept, whatever the client
// puts meanwhile, and two completes at once each write their own copy.

// MaxDirectUpload is S3's limit for one CopyObject, which completing a
// direct upload to a bucket uses.
const MaxDirectUpload = 5 << 30

// NewUpload is an intent to upload size bytes straight to the store.
type NewUpload struct {
	ID          string // empty for a new one, or an idempotent retry's
	Name        string
	ContentType string
	Size        int64
}

// Target is where the client puts the bytes: a presigned URL, or empty
// when the store cannot sign one and the app serves the upload itself.
type Target struct {
	URL     string
	Headers map[string]string
}

// StartUpload records an intent, valid for PresignTTL, and presigns its
// URL when the store can.
func (s *Service) StartUpload(ctx context.Context, nu NewUpload) (storage.Upload, Target, error) {
	switch {
	case nu.Size < 0:
		return storage.Upload{}, Target{}, refuse(storage.ErrInvalid, "size %d is out of range: send the exact number of bytes to upload, 0 to MAX_UPLOAD_BYTES (%d)", nu.Size, s.maxUpload)
	case nu.Size > s.maxUpload:
		return storage.Upload{}, Target{}, refuse(storage.ErrTooLarge, "the file exceeds MAX_UPLOAD_BYTES (%d bytes)", s.maxUpload)
	}
	if _, canPresign := s.blobs.(storage.Presigner); canPresign && nu.Size > MaxDirectUpload {
		// complete copies the staged object in one CopyObject, which S3
		// caps at 5 GiB: refuse before the client sends a byte.
		return storage.Upload{}, Target{}, refuse(storage.ErrTooLarge,
			"direct uploads to the bucket are limited to %d bytes (5 GiB); send larger files to POST /api/files", int64(MaxDirectUpload))
	}
	now := s.now()
	u := storage.Upload{ID: nu.ID, Name: nu.Name, ContentType: nu.ContentType, Size: nu.Size,
		CreatedAt: now, ExpiresAt: now.Add(s.presignTTL).Truncate(time.Second)}
	if u.ID == "" {
		u.ID = storage.NewID()
	}
	u.Key = storage.StagingKey(s.keyPrefix, u.ID)
	t, err := s.Target(ctx, u)
	if err != nil {
		return u, t, err
	}
	dbCtx, cancel := op(ctx)
	defer cancel()
	return u, t, s.db.CreateUpload(dbCtx, u)
}

// Target presigns the URL of an upload intent when the store can; an empty
// Target means the app takes the PUT itself (PutUpload).
func (s *Service) Target(ctx context.Context, u storage.Upload) (Target, error) {
	var t Target
	if presigner, ok := s.blobs.(storage.Presigner); ok {
		var err error
		ttl := u.ExpiresAt.Sub(s.clock())
		if ttl < time.Second {
			return t, refuse(storage.ErrNotFound, "upload %q expired at %s; start a new one", u.ID, u.ExpiresAt.Format(time.RFC3339))
		}
		t.URL, t.Headers, err = presigner.PresignPut(ctx, u.Key, u.ContentType, u.Size, ttl)
		return t, err
	}
	return t, nil
}

// GetUpload returns an error matching storage.ErrNotFound if no intent has
// that id.
func (s *Service) GetUpload(ctx context.Context, id string) (storage.Upload, error) {
	ctx, cancel := op(ctx)
	defer cancel()
	return s.db.GetUpload(ctx, id)
}

// PutUpload stores the bytes of a direct upload to a store that cannot
// presign: exactly the announced size, at the intent's staging key.
func (s *Service) PutUpload(ctx context.Context, id string, body io.Reader, contentType string) error {
	u, err := s.GetUpload(ctx, id)
	if err != nil {
		return err
	}
	if s.clock().After(u.ExpiresAt) {
		return refuse(storage.ErrNotFound, "upload %q expired at %s; start a new one", id, u.ExpiresAt.Format(time.RFC3339))
	}
	if contentType != "" && contentType != u.ContentType {
		return refuse(storage.ErrInvalid, "Content-Type %q is not the announced %q", contentType, u.ContentType)
	}
	m := &meter{r: io.LimitReader(body, u.Size+1), hash: sha256.New()}
	if err := s.blobs.Put(ctx, u.Key, m, u.Size, u.ContentType); err != nil {
		if errors.Is(err, storage.ErrInvalid) && m.readErr == nil {
			return refuse(storage.ErrInvalid, "the body is not the announced %d bytes", u.Size)
		}
		return m.blame(err)
	}
	return nil
}

// CompleteUpload turns the intent into a file and returns it, with created
// false when the upload was completed before (by this call's retry, or a
// concurrent one): a second complete answers like the first.
func (s *Service) CompleteUpload(ctx context.Context, id string) (f storage.File, created bool, err error) {
	u, err := s.GetUpload(ctx, id)
	if errors.Is(err, storage.ErrNotFound) {
		if f, ferr := s.GetFile(ctx, id); ferr == nil {
			return f, false, nil
		}
		return f, false, refuse(storage.ErrNotFound, "no upload has id %q (it may have expired)", id)
	}
	if err != nil {
		return f, false, err
	}
	if s.clock().After(u.ExpiresAt) {
		return f, false, refuse(storage.ErrNotFound, "upload %q expired at %s; start a new one", id, u.ExpiresAt.Format(time.RFC3339))
	}
	storeCtx, cancel := op(ctx)
	defer cancel()
	info, err := s.blobs.Stat(storeCtx, u.Key)
	switch {
	case errors.Is(err, storage.ErrNotFound):
		if f, ferr := s.GetFile(ctx, id); ferr == nil {
			return f, false, nil // a concurrent complete won and removed the staged bytes
		}
		return f, false, refuse(storage.ErrInvalid, "nothing has been uploaded for %q yet: PUT the bytes to its url first", id)
	case err != nil:
		return f, false, err
	case info.Size != u.Size:
		return f, false, refuse(storage.ErrInvalid, "the upload has %d bytes, %d were announced", info.Size, u.Size)
	case info.ContentType != "" && info.ContentType != u.ContentType:
		return f, false, refuse(storage.ErrInvalid, "the upload is %s, %s was announced", info.ContentType, u.ContentType)
	}

	// From here on the work is done even if the client leaves.
	ctx, cancel = detached(ctx)
	defer cancel()
	f = storage.File{ID: u.ID, Name: u.Name, ContentType: u.ContentType, Key: storage.VersionKey(s.keyPrefix, u.ID)}
	if f.Size, f.SHA256, err = s.copyStaged(ctx, u.Key, f.Key, f.ContentType); err != nil {
		s.deleteObject(ctx, f.Key, "a failed complete's copy")
		if won, ferr := s.GetFile(ctx, id); ferr == nil && errors.Is(err, storage.ErrNotFound) {
			return won, false, nil // a concurrent complete won and removed the staged bytes
		}
		return f, false, err
	}
	if f.Size != u.Size {
		s.deleteObject(ctx, f.Key, "a complete's copy of changed bytes")
		if won, ferr := s.GetFile(ctx, id); ferr == nil {
			return won, false, nil // a concurrent complete won and closed the staging key
		}
		return f, false, refuse(storage.ErrConflict, "the upload changed while it was being completed (%d bytes, %d announced); complete it again", f.Size, u.Size)
	}
	f.CreatedAt = s.now()
	got, err := s.record(ctx, f, func() error { return s.db.CompleteUpload(ctx, f, s.clock()) })
	s.cache.Invalidate(ctx, cache.File, id)
	switch {
	case errors.Is(err, errLost):
		return got, false, nil
	case errors.Is(err, storage.ErrNotFound):
		return f, false, refuse(storage.ErrNotFound, "upload %q expired or was swept meanwhile; start a new one", id)
	case err != nil:
		return f, false, err
	}
	s.closeStaging(ctx, u)
	return got, true, nil
}

// closeStaging ends the staging object of a completed upload. A bucket's
// presigned URL stays valid until it expires and writes only where no
// object is (If-None-Match: *), so the staged bytes are replaced with an
// empty object that keeps the URL useless; the sweep removes it once the
// URL has expired. A directory's URL is the app's own, which refuses a
// completed upload, so the object is simply deleted.
func (s *Service) closeStaging(ctx context.Context, u storage.Upload) {
	if _, ok := s.blobs.(storage.Presigner); ok {
		err := s.blobs.Put(ctx, u.Key, strings.NewReader(""), 0, u.ContentType)
		if err == nil {
			return
		}
		s.log.Warn("closing a completed upload's URL; deleting its staged bytes instead", "key", u.Key, "err", err)
	}
	s.deleteObject(ctx, u.Key, "a completed upload's staging object")
}

// copyStaged copies the staged object at src to dst and returns the size
// and SHA-256 of what dst holds. A bucket copies on its side, and dst is
// then read back to hash; a directory streams src to dst through the hash.
func (s *Service) copyStaged(ctx context.Context, src, dst, contentType string) (int64, string, error) {
	h := sha256.New()
	if p, ok := s.blobs.(storage.Presigner); ok {
		if err := p.Copy(ctx, src, dst); err != nil {
			return 0, "", err
		}
		r, _, err := s.blobs.Get(ctx, dst, nil)
		if err != nil {
			return 0, "", err
		}
		defer r.Close()
		n, err := io.Copy(h, r)
		if err != nil {
			return 0, "", errors.Join(storage.ErrUnavailable, err)
		}
		return n, hex.EncodeToString(h.Sum(nil)), nil
	}
	r, _, err := s.blobs.Get(ctx, src, nil)
	if err != nil {
		return 0, "", err
	}
	defer r.Close()
	m := &meter{r: r, hash: h}
	if err := s.blobs.Put(ctx, dst, m, -1, contentType); err != nil {
		return 0, "", err
	}
	return m.n, hex.EncodeToString(h.Sum(nil)), nil
}
