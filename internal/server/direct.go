package server

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/example/flystorage/internal/service"
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
	expires := s.now().Add(s.presignTTL).UTC().Truncate(time.Second)
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
	if in.Size == nil {
		return errorf(http.StatusBadRequest, "invalid", "size is required: the exact number of bytes to upload")
	}
	nu := service.NewUpload{Name: cleanName(in.Name), ContentType: contentType(in.ContentType), Size: *in.Size}
	id, retry, err := s.claim(r, nu.Name, nu.ContentType, strconv.FormatInt(nu.Size, 10))
	if err != nil {
		return err
	}
	if retry {
		if done, err := s.retryUpload(w, r, id); done || err != nil {
			return err
		}
	}
	nu.ID = id
	u, target, err := s.svc.StartUpload(r.Context(), nu)
	if err != nil {
		return fromStore(err, "the database")
	}
	s.writeUpload(w, r, u, target, false)
	return nil
}

// retryUpload answers a retried createUpload whose intent exists with the
// same intent, its URL signed again.
func (s *Server) retryUpload(w http.ResponseWriter, r *http.Request, id string) (bool, error) {
	u, err := s.svc.GetUpload(r.Context(), id)
	if err != nil {
		_, ferr := s.svc.GetFile(r.Context(), id)
		if ferr == nil {
			return true, errorf(http.StatusConflict, "conflict", "the upload this key started is complete: GET /api/files/%s", id)
		}
		// Never recorded, unless its file was deleted since.
		if err := s.notGone(r, ferr, "file", id, func() bool { return false }); err != nil {
			return true, err
		}
		return false, nil // never recorded: create it now
	}
	target, err := s.svc.Target(r.Context(), u)
	if err != nil {
		return true, fromStore(err, "the file store")
	}
	s.writeUpload(w, r, u, target, true)
	return true, nil
}

// writeUpload answers with where to PUT the bytes.
func (s *Server) writeUpload(w http.ResponseWriter, r *http.Request, u storage.Upload, target service.Target, retry bool) {
	out := uploadJSON{ID: u.ID, Method: http.MethodPut, URL: target.URL, Headers: target.Headers, ExpiresAt: u.ExpiresAt}
	if out.URL == "" {
		out.URL = s.signURL(r, http.MethodPut, "/signed/uploads/"+u.ID, u.ExpiresAt)
		out.Headers = map[string]string{"Content-Type": u.ContentType}
	}
	if retry {
		w.Header().Set(replayedHeader, "true")
	}
	w.Header().Set("Location", "/api/files/uploads/"+u.ID)
	writeJSON(w, http.StatusCreated, out)
}

// completeUpload turns the intent into a file (service.CompleteUpload); a
// second complete answers 200 with the same file.
func (s *Server) completeUpload(w http.ResponseWriter, r *http.Request) error {
	id, err := pathID(r, "upload")
	if err != nil {
		return err
	}
	// Completing is idempotent by itself; a key is checked, not needed.
	if _, _, err := s.claim(r); err != nil {
		return err
	}
	f, created, err := s.svc.CompleteUpload(r.Context(), id)
	if err != nil {
		return fromStore(err, "the file store")
	}
	status := http.StatusOK
	if created {
		status = http.StatusCreated
		w.Header().Set("Location", "/api/files/"+f.ID)
	}
	writeJSON(w, status, toFileJSON(f))
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
	id, err := pathID(r, "upload")
	if err != nil {
		return err
	}
	u, err := s.svc.GetUpload(r.Context(), id)
	if err != nil {
		return dbError(err, "upload", id)
	}
	if r.ContentLength >= 0 && r.ContentLength != u.Size {
		return errorf(http.StatusBadRequest, "invalid", "Content-Length %d is not the announced %d bytes", r.ContentLength, u.Size)
	}
	ct := r.Header.Get("Content-Type")
	if ct != "" {
		ct = contentType(ct)
	}
	pd := newProgressDeadline(r.Body, http.NewResponseController(w), uploadIdleTimeout, s.now)
	defer pd.Stop()
	if err := s.svc.PutUpload(r.Context(), id, pd, ct); err != nil {
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
	if s.now().Unix() > exp {
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
