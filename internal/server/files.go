package server

import (
	"bufio"
	"errors"
	"io"
	"mime"
	"mime/multipart"
	"net/http"
	"time"

	"github.com/example/flystorage/internal/service"
	"github.com/example/flystorage/internal/storage"
)

// multipartSlack is room for the multipart boundaries and headers around
// the file part, so a file of exactly MAX_UPLOAD_BYTES is accepted.
const multipartSlack = 64 << 10

type fileJSON struct {
	ID          string    `json:"id"`
	Name        string    `json:"name"`
	ContentType string    `json:"content_type"`
	Size        int64     `json:"size"`
	SHA256      string    `json:"sha256"`
	CreatedAt   time.Time `json:"created_at"`
}

func toFileJSON(f storage.File) fileJSON {
	return fileJSON{ID: f.ID, Name: f.Name, ContentType: f.ContentType, Size: f.Size, SHA256: f.SHA256, CreatedAt: f.CreatedAt.UTC()}
}

// createFile streams the multipart part named "file" to the service,
// which stores and records it (service.Upload).
func (s *Server) createFile(w http.ResponseWriter, r *http.Request) error {
	if r.ContentLength > s.maxUpload+multipartSlack {
		return s.tooLarge()
	}
	// A slow upload that keeps moving goes on; one that stops fails.
	pd := newProgressDeadline(r.Body, http.NewResponseController(w), uploadIdleTimeout, s.now)
	defer pd.Stop()
	r.Body = http.MaxBytesReader(w, io.NopCloser(pd), s.maxUpload+multipartSlack)
	mr, err := multipartReader(r)
	if err != nil {
		return errorf(http.StatusBadRequest, "invalid", "send the file as multipart/form-data in a part named \"file\": %v", err)
	}
	part, err := nextFilePart(mr)
	if err != nil {
		return s.uploadError(err)
	}
	defer part.Close()
	nf := service.NewFile{
		Name:        cleanName(part.FileName()),
		ContentType: contentType(part.Header.Get("Content-Type")),
		Body:        part,
	}
	if nf.ID, err = s.claimFile(w, r, nf.Name, nf.ContentType); err != nil || nf.ID == "-" {
		return err
	}
	f, err := s.svc.Upload(r.Context(), nf)
	if err != nil {
		return s.uploadError(err)
	}
	w.Header().Set("Location", "/api/files/"+f.ID)
	writeJSON(w, http.StatusCreated, toFileJSON(f))
	return nil
}

// claimFile resolves an upload's Idempotency-Key. When a retry's file
// exists it answers with it, without reading the bytes again, and returns
// "-"; otherwise the id to upload under ("" without a key).
func (s *Server) claimFile(w http.ResponseWriter, r *http.Request, name, contentType string) (string, error) {
	id, retry, err := s.claim(r, name, contentType)
	if err != nil || !retry {
		return id, err
	}
	f, err := s.svc.GetFile(r.Context(), id)
	if err == nil {
		replayed(w, "/api/files/"+id, toFileJSON(f))
		return "-", nil
	}
	answered := false
	err = s.notGone(r, err, "file", id, func() bool {
		f, err := s.svc.GetFile(r.Context(), id)
		if answered = err == nil; answered {
			replayed(w, "/api/files/"+id, toFileJSON(f))
		}
		return answered
	})
	if answered {
		return "-", nil
	}
	return id, err
}

// uploadBufferSize is how much of an upload is read from the connection at
// a time. multipart.Reader reads through a 4 KiB buffer of its own, one
// read system call and one move of the read deadline each; behind a
// 64 KiB buffer an upload takes a sixteenth of them (docs/performance.md).
const uploadBufferSize = 64 << 10

// multipartReader is r.MultipartReader, reading through uploadBufferSize.
func multipartReader(r *http.Request) (*multipart.Reader, error) {
	mediaType, params, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if err != nil || mediaType != "multipart/form-data" {
		return nil, http.ErrNotMultipart
	}
	boundary := params["boundary"]
	if boundary == "" {
		return nil, http.ErrMissingBoundary
	}
	return multipart.NewReader(bufio.NewReaderSize(r.Body, uploadBufferSize), boundary), nil
}

// nextFilePart skips form fields until the part named "file". A malformed
// part header is the client's fault.
func nextFilePart(mr *multipart.Reader) (*multipart.Part, error) {
	for {
		part, err := mr.NextPart()
		if errors.Is(err, io.EOF) {
			return nil, errorf(http.StatusBadRequest, "invalid", "the form has no part named \"file\"")
		}
		if err != nil {
			var maxErr *http.MaxBytesError
			if errors.As(err, &maxErr) {
				return nil, err
			}
			return nil, errorf(http.StatusBadRequest, "invalid", "reading the form: %v", err)
		}
		if part.FormName() == "file" {
			return part, nil
		}
		part.Close()
	}
}

func (s *Server) tooLarge() error {
	return errorf(http.StatusRequestEntityTooLarge, "too_large", "the file exceeds MAX_UPLOAD_BYTES (%d bytes)", s.maxUpload)
}

// uploadError turns a failed read of the request body into the client's
// fault (too large, malformed) rather than a store failure.
func (s *Server) uploadError(err error) error {
	var maxErr *http.MaxBytesError
	switch {
	case errors.Is(err, errStalled):
		return stalledError(err)
	case errors.Is(err, storage.ErrTooLarge), errors.As(err, &maxErr):
		return s.tooLarge()
	case errors.Is(err, service.ErrBadBody):
		return errorf(http.StatusBadRequest, "invalid", "reading the upload: %v", err)
	}
	var apiErr *apiError
	if errors.As(err, &apiErr) {
		return err
	}
	return fromStore(err, "the file store")
}

func (s *Server) getFile(w http.ResponseWriter, r *http.Request) error {
	f, err := s.lookupFile(r)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, toFileJSON(f))
	return nil
}

// getFileContent streams the file's bytes as a download.
func (s *Server) getFileContent(w http.ResponseWriter, r *http.Request) error {
	f, err := s.lookupFile(r)
	if err != nil {
		return err
	}
	return s.serveContent(w, r, f)
}

// lookupFile reads the row of the file named by the {id} in the path.
func (s *Server) lookupFile(r *http.Request) (storage.File, error) {
	id, err := pathID(r, "file")
	if err != nil {
		return storage.File{}, err
	}
	f, err := s.svc.GetFile(r.Context(), id)
	if err != nil {
		return f, dbError(err, "file", id)
	}
	return f, nil
}

func (s *Server) deleteFile(w http.ResponseWriter, r *http.Request) error {
	id, err := pathID(r, "file")
	if err != nil {
		return err
	}
	if err := s.svc.DeleteFile(r.Context(), id); err != nil {
		return dbError(err, "file", id)
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func (s *Server) listFiles(w http.ResponseWriter, r *http.Request) error {
	p, err := page(r)
	if err != nil {
		return err
	}
	files, next, err := s.svc.ListFiles(r.Context(), p)
	if err != nil {
		return fromStore(err, "the database")
	}
	out := make([]fileJSON, len(files))
	for i, f := range files {
		out[i] = toFileJSON(f)
	}
	writeJSON(w, http.StatusOK, map[string]any{"files": out, "next_cursor": nextCursor(next)})
	return nil
}
