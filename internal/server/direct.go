package server

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/example/flystorage/internal/storage"
)

// Links and uploads that bypass the app.
//
// With S3, a client downloads and uploads through presigned URLs, so the
// bytes go straight between the browser and the bucket. A local directory
// cannot sign URLs, so the app signs its own (/signed/...) with an HMAC key
// and serves them itself; the API is the same either way.

// urlJSON answers GET /api/files/{id}/url. ExpiresAt is null for a public
// bucket's URLs, which do not expire.
type urlJSON struct {
	URL       string     `json:"url"`
	ExpiresAt *time.Time `json:"expires_at"`
}

// fileURL returns a URL that downloads the file without the API: the
// public bucket URL, a presigned GET, or an app URL signed for local files.
func (s *Server) fileURL(w http.ResponseWriter, r *http.Request) error {
	f, err := s.lookupFile(r)
	if err != nil {
		return err
	}
	expires := time.Now().Add(s.presignTTL).UTC().Truncate(time.Second)
	out := urlJSON{ExpiresAt: &expires}
	presigner, canPresign := s.blobs.(storage.Presigner)
	switch {
	case s.publicURL != "":
		out.URL, out.ExpiresAt = s.publicURL+"/"+escapeKey(f.Key), nil
	case canPresign:
		if out.URL, err = presigner.PresignGet(r.Context(), f.Key, s.presignTTL, f.Name); err != nil {
			return fromStore(err, "the file store")
		}
	default:
		out.URL = s.signURL(r, http.MethodGet, "/signed/files/"+f.ID, expires)
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

// escapeKey escapes each element of an object key for a URL path.
func escapeKey(key string) string {
	parts := strings.Split(key, "/")
	for i, p := range parts {
		parts[i] = url.PathEscape(p)
	}
	return strings.Join(parts, "/")
}

// maxDirectUpload is S3's limit for one CopyObject.
const maxDirectUpload = 5 << 30

type uploadInput struct {
	Name        string `json:"name"`
	ContentType string `json:"content_type"`
	Size        *int64 `json:"size"`
}

type uploadJSON struct {
	ID        string            `json:"id"`
	URL       string            `json:"url"`
	Method    string            `json:"method"`
	Headers   map[string]string `json:"headers"`
	ExpiresAt time.Time         `json:"expires_at"`
}

// createUpload records an upload intent and answers with where to PUT the
// bytes: a presigned URL into the bucket, or the app's own signed URL for
// local files. The client then calls completeUpload.
func (s *Server) createUpload(w http.ResponseWriter, r *http.Request) error {
	var in uploadInput
	if err := decode(w, r, &in); err != nil {
		return err
	}
	switch {
	case in.Size == nil || *in.Size < 0:
		return errorf(http.StatusBadRequest, "invalid", "size is required: the exact number of bytes to upload")
	case *in.Size > s.maxUpload:
		return s.tooLarge()
	}
	if _, ok := s.blobs.(storage.Presigner); ok && *in.Size > maxDirectUpload {
		// complete copies the staged object in one CopyObject, which S3
		// caps at 5 GiB: refuse before the client sends a byte.
		return errorf(http.StatusRequestEntityTooLarge, "too_large",
			"direct uploads to the bucket are limited to %d bytes (5 GiB); send larger files to POST /api/files", int64(maxDirectUpload))
	}
	now := storage.Now()
	u := storage.Upload{
		ID:          storage.NewID(),
		Name:        cleanName(in.Name),
		ContentType: contentType(in.ContentType),
		Size:        *in.Size,
		CreatedAt:   now,
		ExpiresAt:   now.Add(s.presignTTL).Truncate(time.Second),
	}
	u.Key = storage.FileKey(s.keyPrefix, u.ID)

	out := uploadJSON{ID: u.ID, Method: http.MethodPut, ExpiresAt: u.ExpiresAt}
	if presigner, ok := s.blobs.(storage.Presigner); ok {
		// The presigned PUT works until it expires, whatever happens: it
		// writes a staging key, which completeUpload copies to the file's.
		u.Key = storage.StagingKey(s.keyPrefix, u.ID)
		var err error
		if out.URL, out.Headers, err = presigner.PresignPut(r.Context(), u.Key, u.ContentType, u.Size, s.presignTTL); err != nil {
			return fromStore(err, "the file store")
		}
	} else {
		out.URL = s.signURL(r, http.MethodPut, "/signed/uploads/"+u.ID, u.ExpiresAt)
		out.Headers = map[string]string{"Content-Type": u.ContentType}
	}

	ctx, cancel := context.WithTimeout(r.Context(), opTimeout)
	defer cancel()
	if err := s.db.CreateUpload(ctx, u); err != nil {
		return fromStore(err, "the database")
	}
	w.Header().Set("Location", "/api/files/uploads/"+u.ID)
	writeJSON(w, http.StatusCreated, out)
	return nil
}

// completeUpload checks that the bytes arrived as announced, hashes them,
// and turns the intent into a file.
func (s *Server) completeUpload(w http.ResponseWriter, r *http.Request) error {
	id := r.PathValue("id")
	ctx, cancel := context.WithTimeout(r.Context(), opTimeout)
	defer cancel()
	u, err := s.db.GetUpload(ctx, id)
	if errors.Is(err, storage.ErrNotFound) {
		// Completing twice answers like the first time.
		if f, ferr := s.db.GetFile(ctx, id); ferr == nil {
			writeJSON(w, http.StatusOK, toFileJSON(f))
			return nil
		}
		return errorf(http.StatusNotFound, "not_found", "no upload has id %q (it may have expired)", id)
	}
	if err != nil {
		return fromStore(err, "the database")
	}
	if time.Now().After(u.ExpiresAt) {
		return errorf(http.StatusNotFound, "not_found", "upload %q expired at %s; start a new one", id, u.ExpiresAt.Format(time.RFC3339))
	}

	info, err := s.blobs.Stat(r.Context(), u.Key)
	switch {
	case errors.Is(err, storage.ErrNotFound):
		return errorf(http.StatusBadRequest, "invalid", "nothing has been uploaded for %q yet: PUT the bytes to its url first", id)
	case err != nil:
		return fromStore(err, "the file store")
	case info.Size != u.Size:
		return errorf(http.StatusBadRequest, "invalid", "the upload has %d bytes, %d were announced", info.Size, u.Size)
	case info.ContentType != "" && info.ContentType != u.ContentType:
		return errorf(http.StatusBadRequest, "invalid", "the upload is %s, %s was announced", info.ContentType, u.ContentType)
	}

	// The bytes never passed through the app: read them once to record
	// their hash, which is also the download's ETag.
	body, _, err := s.blobs.Get(r.Context(), u.Key, nil)
	if err != nil {
		return fromStore(err, "the file store")
	}
	defer body.Close()
	h := sha256.New()
	if _, err := io.Copy(h, body); err != nil {
		return fromStore(fmt.Errorf("%w: reading the upload: %w", storage.ErrUnavailable, err), "the file store")
	}

	f := storage.File{ID: u.ID, Name: u.Name, ContentType: u.ContentType, Size: u.Size,
		SHA256: hex.EncodeToString(h.Sum(nil)), Key: storage.FileKey(s.keyPrefix, u.ID), CreatedAt: storage.Now()}
	ctx, cancel = context.WithTimeout(context.WithoutCancel(r.Context()), opTimeout)
	defer cancel()
	staged := u.Key != f.Key
	if staged {
		if err := s.blobs.(storage.Presigner).Copy(ctx, u.Key, f.Key); err != nil {
			return fromStore(err, "the file store")
		}
	}
	err = s.recordFile(ctx, f, func() error { return s.db.CompleteUpload(ctx, f, time.Now()) })
	if errors.Is(err, storage.ErrNotFound) {
		return errorf(http.StatusNotFound, "not_found", "upload %q expired or was completed meanwhile", id)
	}
	if err != nil {
		return err
	}
	if staged {
		if err := s.blobs.Delete(ctx, u.Key); err != nil {
			s.log.Warn("removing a completed upload's staging object; the orphan sweep removes it", "key", u.Key, "err", err)
		}
	}
	w.Header().Set("Location", "/api/files/"+f.ID)
	writeJSON(w, http.StatusCreated, toFileJSON(f))
	return nil
}

// signedDownload serves /signed/files/{id}, the URL fileURL makes for local
// files.
func (s *Server) signedDownload(w http.ResponseWriter, r *http.Request) error {
	if err := s.checkSignature(r); err != nil {
		return err
	}
	f, err := s.lookupFile(r)
	if err != nil {
		return err
	}
	return s.serveContent(w, r, f)
}

// signedUpload takes the PUT of a direct upload to local files: exactly the
// announced bytes, of the announced type.
func (s *Server) signedUpload(w http.ResponseWriter, r *http.Request) error {
	if err := s.checkSignature(r); err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(r.Context(), opTimeout)
	u, err := s.db.GetUpload(ctx, r.PathValue("id"))
	cancel()
	if err != nil {
		return dbError(err, "upload", r.PathValue("id"))
	}
	if ct := r.Header.Get("Content-Type"); ct != "" && contentType(ct) != u.ContentType {
		return errorf(http.StatusBadRequest, "invalid", "Content-Type %q is not the announced %q", ct, u.ContentType)
	}
	if r.ContentLength >= 0 && r.ContentLength != u.Size {
		return errorf(http.StatusBadRequest, "invalid", "Content-Length %d is not the announced %d bytes", r.ContentLength, u.Size)
	}
	if err := s.blobs.Put(r.Context(), u.Key, io.LimitReader(r.Body, u.Size+1), u.Size, u.ContentType); err != nil {
		if errors.Is(err, storage.ErrInvalid) {
			return errorf(http.StatusBadRequest, "invalid", "the body is not the announced %d bytes", u.Size)
		}
		return s.uploadError(err)
	}
	w.WriteHeader(http.StatusOK)
	return nil
}

// signURL returns an absolute URL for method and path that checkSignature
// accepts until expires.
func (s *Server) signURL(r *http.Request, method, path string, expires time.Time) string {
	exp := strconv.FormatInt(expires.Unix(), 10)
	q := url.Values{"expires": {exp}, "signature": {s.signature(method, path, exp)}}
	return baseURL(r) + path + "?" + q.Encode()
}

func (s *Server) signature(method, path, expires string) string {
	m := hmac.New(sha256.New, s.signingKey)
	fmt.Fprintf(m, "%s %s %s", method, path, expires)
	return hex.EncodeToString(m.Sum(nil))
}

// checkSignature accepts a request whose URL signURL made and that has not
// expired.
func (s *Server) checkSignature(r *http.Request) error {
	q := r.URL.Query()
	exp, err := strconv.ParseInt(q.Get("expires"), 10, 64)
	if err != nil {
		return errorf(http.StatusForbidden, "forbidden", "the URL is not signed: ask /api/files/{id}/url for one")
	}
	method := r.Method
	if method == http.MethodHead {
		method = http.MethodGet // a HEAD asks what the signed GET would get
	}
	want := s.signature(method, r.URL.Path, q.Get("expires"))
	if !hmac.Equal([]byte(want), []byte(q.Get("signature"))) {
		return errorf(http.StatusForbidden, "forbidden", "the URL's signature does not match")
	}
	if time.Now().Unix() > exp {
		return errorf(http.StatusForbidden, "forbidden", "the URL expired at %s", time.Unix(exp, 0).UTC().Format(time.RFC3339))
	}
	return nil
}

// baseURL is the scheme and host the client used. Fly's proxy terminates
// TLS and says so in X-Forwarded-Proto.
func baseURL(r *http.Request) string {
	scheme := "http"
	if r.TLS != nil || r.Header.Get("X-Forwarded-Proto") == "https" {
		scheme = "https"
	}
	return scheme + "://" + r.Host
}
