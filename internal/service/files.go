package service

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"

	"github.com/example/flystorage/internal/cache"
	"github.com/example/flystorage/internal/storage"
)

// NewFile is a file to store from a stream.
type NewFile struct {
	// ID is the file's id: empty for a new one, or the id an idempotent
	// retry claimed.
	ID          string
	Name        string
	ContentType string
	Body        io.Reader
}

// Upload streams f.Body to the blob store, hashing it on the way, and
// records the file. A body over MaxUpload gives an error matching
// storage.ErrTooLarge; a body that cannot be read, one matching ErrBadBody.
//
// The object is written first and the row second. If the row surely was
// not written, the object is deleted; if that is unclear (the database went
// away mid-insert), the object stays for the sweep, since deleting it could
// leave a listed file without its bytes. A crash between the two steps
// likewise leaves only an object no row names, which the sweep removes.
func (s *Service) Upload(ctx context.Context, nf NewFile) (storage.File, error) {
	f := storage.File{ID: nf.ID, Name: nf.Name, ContentType: nf.ContentType}
	f.Key = storage.FileKey(s.keyPrefix, f.ID)
	if f.ID == "" {
		f.ID = storage.NewID()
		f.Key = storage.FileKey(s.keyPrefix, f.ID)
	} else {
		// A retry may race the first attempt: each writes its own object.
		f.Key = storage.VersionKey(s.keyPrefix, f.ID)
	}
	body := &meter{r: nf.Body, limit: s.maxUpload, hash: sha256.New()}
	if err := s.blobs.Put(ctx, f.Key, body, -1, f.ContentType); err != nil {
		return f, body.blame(err)
	}
	f.Size, f.SHA256, f.CreatedAt = body.n, hex.EncodeToString(body.hash.Sum(nil)), s.now()

	// The bytes are stored: record them even if the client leaves now.
	ctx, cancel := detached(ctx)
	defer cancel()
	got, err := s.record(ctx, f, func() error { return s.db.CreateFile(ctx, f) })
	if errors.Is(err, errLost) {
		return got, nil // a concurrent retry of this upload recorded it
	}
	return got, err
}

// record runs insert, which writes the row of f, whose object is stored,
// and returns the file that stands. When another write recorded the id
// first (ErrConflict or, for a complete, ErrNotFound with the file
// present), that file is returned and f's own object deleted. When the
// insert's outcome is unknown it looks for the row, and it deletes the
// object only when the row surely does not name it.
func (s *Service) record(ctx context.Context, f storage.File, insert func() error) (storage.File, error) {
	err := insert()
	if err == nil {
		return f, nil
	}
	got, getErr := s.db.GetFile(ctx, f.ID)
	switch {
	case getErr == nil && got.Key == f.Key:
		return got, nil // committed after all
	case getErr == nil:
		// Another write of this id won: its row names its own object.
		s.deleteObject(ctx, f.Key, "a losing write's object")
		return got, errLost
	case errors.Is(err, storage.ErrOutcomeUnknown) && !errors.Is(getErr, storage.ErrNotFound):
		s.log.Warn("kept the object of an upload whose row may exist; the sweep removes it if not", "key", f.Key, "err", err)
		return f, err
	}
	s.deleteObject(ctx, f.Key, "the object of a file whose row failed")
	return f, err
}

// errLost tells a caller of record that another write of the same id
// recorded its file first.
var errLost = errors.New("another write of this id won")

func (s *Service) deleteObject(ctx context.Context, key, what string) {
	if err := s.blobs.Delete(ctx, key); err != nil {
		s.log.Error("removing "+what+"; the sweep removes it", "key", key, "err", err)
	}
}

// GetFile returns an error matching storage.ErrNotFound if no file has
// that id.
func (s *Service) GetFile(ctx context.Context, id string) (storage.File, error) {
	ctx, cancel := op(ctx)
	defer cancel()
	load := func(ctx context.Context) (storage.File, error) { return s.db.GetFile(ctx, id) }
	return cache.Read(ctx, s.cache, cache.File, id, load)
}

// ListFiles returns a page of files, newest first.
func (s *Service) ListFiles(ctx context.Context, p storage.Page) ([]storage.File, string, error) {
	ctx, cancel := op(ctx)
	defer cancel()
	return s.db.ListFiles(ctx, p)
}

// DeleteFile removes the row first and the object second, so a failure in
// between leaves an unlisted object for the sweep, never a listed file
// whose bytes are gone.
func (s *Service) DeleteFile(ctx context.Context, id string) error {
	dbCtx, cancel := op(ctx)
	defer cancel()
	f, err := s.db.DeleteFile(dbCtx, id)
	s.cache.Invalidate(context.WithoutCancel(ctx), cache.File, id)
	if err != nil {
		return err
	}
	s.markDeleted(ctx, id)
	ctx, cancel = detached(ctx)
	defer cancel()
	s.deleteObject(ctx, f.Key, "the object of a deleted file")
	return nil
}

// meter counts and hashes what passes through it, and fails once more than
// limit bytes have been read, so the store aborts the upload.
type meter struct {
	r       io.Reader
	n       int64
	limit   int64
	hash    hash.Hash
	readErr error
}

func (m *meter) Read(p []byte) (int, error) {
	n, err := m.r.Read(p)
	m.n += int64(n)
	m.hash.Write(p[:n])
	if m.limit > 0 && m.n > m.limit {
		return n, storage.ErrTooLarge
	}
	if err != nil && !errors.Is(err, io.EOF) {
		m.readErr = err
		err = fmt.Errorf("%w: %w", ErrBadBody, err)
	}
	return n, err
}

// blame turns a failed Put into the client's fault when the body was what
// failed: too large, or not readable.
func (m *meter) blame(err error) error {
	switch {
	case m.limit > 0 && m.n > m.limit:
		return fmt.Errorf("%w: the file exceeds %d bytes", storage.ErrTooLarge, m.limit)
	case m.readErr != nil:
		return fmt.Errorf("%w: %w", ErrBadBody, m.readErr)
	}
	return err
}
