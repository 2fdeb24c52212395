package server

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"mime/multipart"
	"net/http"
	"time"

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

// createFile streams the multipart part named "file" to the blob store,
// hashing it on the way, and records it in the database.
//
// The order keeps the two stores consistent: the object is written first
// and the row second. If the row certainly was not written, the object is
// deleted; if that is unclear (the database went away mid-insert), the
// object stays for the orphan sweep, since deleting it could leave a listed
// file without its bytes. A crash between the two steps likewise leaves
// only an object no row names, which the sweep removes.
func (s *Server) createFile(w http.ResponseWriter, r *http.Request) error {
	if r.ContentLength > s.maxUpload+multipartSlack {
		return s.tooLarge()
	}
	r.Body = http.MaxBytesReader(w, r.Body, s.maxUpload+multipartSlack)
	mr, err := r.MultipartReader()
	if err != nil {
		return errorf(http.StatusBadRequest, "invalid", "send the file as multipart/form-data in a part named \"file\": %v", err)
	}
	part, err := nextFilePart(mr)
	if err != nil {
		return s.uploadError(err)
	}
	defer part.Close()

	f := storage.File{
		ID:          storage.NewID(),
		Name:        cleanName(part.FileName()),
		ContentType: contentType(part.Header.Get("Content-Type")),
	}
	f.Key = storage.FileKey(s.keyPrefix, f.ID)
	body := &meter{r: part, limit: s.maxUpload, hash: sha256.New()}
	if err := s.blobs.Put(r.Context(), f.Key, body, -1, f.ContentType); err != nil {
		return s.uploadError(err)
	}
	f.Size, f.SHA256, f.CreatedAt = body.n, hex.EncodeToString(body.hash.Sum(nil)), storage.Now()

	// The bytes are stored: record them even if the client leaves now.
	ctx, cancel := context.WithTimeout(context.WithoutCancel(r.Context()), opTimeout)
	defer cancel()
	if err := s.recordFile(ctx, f, func() error { return s.db.CreateFile(ctx, f) }); err != nil {
		return err
	}
	w.Header().Set("Location", "/api/files/"+f.ID)
	writeJSON(w, http.StatusCreated, toFileJSON(f))
	return nil
}

// recordFile runs insert, which writes the row of f, whose object is
// stored. When the insert's outcome is unknown (the database went away
// after the statement was sent) it looks for the row, and it deletes the
// object only when the row surely does not exist.
func (s *Server) recordFile(ctx context.Context, f storage.File, insert func() error) error {
	err := insert()
	if err == nil {
		return nil
	}
	if errors.Is(err, storage.ErrOutcomeUnknown) {
		switch _, getErr := s.db.GetFile(ctx, f.ID); {
		case getErr == nil:
			return nil // committed after all
		case !errors.Is(getErr, storage.ErrNotFound):
			s.log.Warn("kept the object of an upload whose row may exist; the orphan sweep removes it if not",
				"key", f.Key, "err", err)
			return fromStore(err, "the database")
		}
	}
	if derr := s.blobs.Delete(ctx, f.Key); derr != nil {
		s.log.Error("removing the object of a file whose row failed; the orphan sweep removes it", "key", f.Key, "err", derr)
	}
	return fromStore(err, "the database")
}

// nextFilePart skips form fields until the part named "file".
func nextFilePart(mr *multipart.Reader) (*multipart.Part, error) {
	for {
		part, err := mr.NextPart()
		if errors.Is(err, io.EOF) {
			return nil, errorf(http.StatusBadRequest, "invalid", "the form has no part named \"file\"")
		}
		if err != nil {
			return nil, err
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

// uploadError turns a read error on the request body into the client's
// fault (too large, malformed) rather than a store failure.
func (s *Server) uploadError(err error) error {
	var maxErr *http.MaxBytesError
	switch {
	case errors.Is(err, storage.ErrTooLarge), errors.As(err, &maxErr):
		return s.tooLarge()
	case errors.Is(err, errBadBody):
		return errorf(http.StatusBadRequest, "invalid", "reading the upload: %v", err)
	}
	var apiErr *apiError
	if errors.As(err, &apiErr) {
		return err
	}
	return fromStore(err, "the file store")
}

var errBadBody = errors.New("malformed request body")

// meter counts and hashes what passes through it and fails once more than
// limit bytes have been read, so the store aborts the upload.
type meter struct {
	r     io.Reader
	n     int64
	limit int64
	hash  hash.Hash
}

func (m *meter) Read(p []byte) (int, error) {
	n, err := m.r.Read(p)
	m.n += int64(n)
	m.hash.Write(p[:n])
	if m.n > m.limit {
		return n, storage.ErrTooLarge
	}
	if err != nil && !errors.Is(err, io.EOF) {
		var maxErr *http.MaxBytesError
		if !errors.As(err, &maxErr) {
			err = fmt.Errorf("%w: %w", errBadBody, err)
		}
	}
	return n, err
}

func (s *Server) getFile(w http.ResponseWriter, r *http.Request) error {
	id := r.PathValue("id")
	ctx, cancel := context.WithTimeout(r.Context(), opTimeout)
	defer cancel()
	f, err := s.db.GetFile(ctx, id)
	if err != nil {
		return dbError(err, "file", id)
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
	id := r.PathValue("id")
	ctx, cancel := context.WithTimeout(r.Context(), opTimeout)
	defer cancel()
	f, err := s.db.GetFile(ctx, id)
	if err != nil {
		return f, dbError(err, "file", id)
	}
	return f, nil
}

// deleteFile removes the row first and the object second, so a failure in
// between leaves an unlisted object for the orphan sweep, never a listed
// file whose bytes are gone.
func (s *Server) deleteFile(w http.ResponseWriter, r *http.Request) error {
	id := r.PathValue("id")
	ctx, cancel := context.WithTimeout(r.Context(), opTimeout)
	defer cancel()
	f, err := s.db.DeleteFile(ctx, id)
	if err != nil {
		return dbError(err, "file", id)
	}
	cleanup, cancel := context.WithTimeout(context.WithoutCancel(r.Context()), opTimeout)
	defer cancel()
	if err := s.blobs.Delete(cleanup, f.Key); err != nil {
		s.log.Error("file deleted but its object remains; the orphan sweep removes it", "id", f.ID, "key", f.Key, "err", err)
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func (s *Server) listFiles(w http.ResponseWriter, r *http.Request) error {
	p, err := page(r)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(r.Context(), opTimeout)
	defer cancel()
	files, next, err := s.db.ListFiles(ctx, p)
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
