package service

import (
	"context"
	"strings"

	"github.com/example/flystorage/internal/cache"
	"github.com/example/flystorage/internal/storage"
)

// CreateNote validates n and stores it under n.ID, or a new id when it is
// empty, and returns it as stored.
func (s *Service) CreateNote(ctx context.Context, n storage.Note) (storage.Note, error) {
	if err := validate(n); err != nil {
		return n, err
	}
	if n.ID == "" {
		n.ID = storage.NewID()
	}
	n.CreatedAt = s.now()
	n.UpdatedAt = n.CreatedAt
	ctx, cancel := op(ctx)
	defer cancel()
	return n, s.db.CreateNote(ctx, n)
}

// GetNote returns an error matching storage.ErrNotFound if no note has
// that id. With Redis, it reads through the cache, which never keeps what
// a lagging replica answered (cache.Read).
func (s *Service) GetNote(ctx context.Context, id string) (storage.Note, error) {
	ctx, cancel := op(ctx)
	defer cancel()
	load := func(ctx context.Context) (storage.Note, error) { return s.db.GetNote(ctx, id) }
	return cache.Read(ctx, s.cache, cache.Note, id, load)
}

// UpdateNote validates n and replaces the note's title and body.
func (s *Service) UpdateNote(ctx context.Context, n storage.Note) (storage.Note, error) {
	if err := validate(n); err != nil {
		return n, err
	}
	n.UpdatedAt = s.now()
	ctx, cancel := op(ctx)
	defer cancel()
	// The cached copy goes after the commit and before the answer, so a
	// client that saw its write succeed never reads the older note.
	defer s.cache.Invalidate(context.WithoutCancel(ctx), cache.Note, n.ID)
	return s.db.UpdateNote(ctx, n)
}

// DeleteNote returns an error matching storage.ErrNotFound if no note has
// that id.
func (s *Service) DeleteNote(ctx context.Context, id string) error {
	ctx, cancel := op(ctx)
	defer cancel()
	defer s.cache.Invalidate(context.WithoutCancel(ctx), cache.Note, id)
	if err := s.db.DeleteNote(ctx, id); err != nil {
		return err
	}
	s.markDeleted(ctx, id)
	return nil
}

// ListNotes returns a page of notes, newest first.
func (s *Service) ListNotes(ctx context.Context, p storage.Page) ([]storage.Note, string, error) {
	ctx, cancel := op(ctx)
	defer cancel()
	return s.db.ListNotes(ctx, p)
}

// validate checks the note against the domain's rules; the refusal's
// message is for the client.
func validate(n storage.Note) error {
	if err := n.Validate(); err != nil {
		return refuse(storage.ErrInvalid, "%s", strings.TrimPrefix(err.Error(), storage.ErrInvalid.Error()+": "))
	}
	return nil
}
