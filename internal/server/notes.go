package server

import (
	"context"
	"net/http"
	"strings"
	"time"

	"github.com/example/flystorage/internal/storage"
)

type noteJSON struct {
	ID        string    `json:"id"`
	Title     string    `json:"title"`
	Body      string    `json:"body"`
	CreatedAt time.Time `json:"created_at"`
	UpdatedAt time.Time `json:"updated_at"`
}

func toNoteJSON(n storage.Note) noteJSON {
	return noteJSON{ID: n.ID, Title: n.Title, Body: n.Body, CreatedAt: n.CreatedAt.UTC(), UpdatedAt: n.UpdatedAt.UTC()}
}

type noteInput struct {
	Title *string `json:"title"`
	Body  string  `json:"body"`
}

func readNote(w http.ResponseWriter, r *http.Request) (storage.Note, error) {
	var in noteInput
	if err := decode(w, r, &in); err != nil {
		return storage.Note{}, err
	}
	if in.Title == nil {
		return storage.Note{}, errorf(http.StatusBadRequest, "invalid", "title is required")
	}
	n := storage.Note{Title: *in.Title, Body: in.Body}
	if err := n.Validate(); err != nil {
		return n, errorf(http.StatusBadRequest, "invalid", "%s", strings.TrimPrefix(err.Error(), "invalid: "))
	}
	return n, nil
}

func (s *Server) createNote(w http.ResponseWriter, r *http.Request) error {
	n, err := readNote(w, r)
	if err != nil {
		return err
	}
	n.ID = storage.NewID()
	n.CreatedAt = storage.Now()
	n.UpdatedAt = n.CreatedAt
	ctx, cancel := context.WithTimeout(r.Context(), opTimeout)
	defer cancel()
	if err := s.db.CreateNote(ctx, n); err != nil {
		return dbError(err, "note", n.ID)
	}
	w.Header().Set("Location", "/api/notes/"+n.ID)
	writeJSON(w, http.StatusCreated, toNoteJSON(n))
	return nil
}

func (s *Server) getNote(w http.ResponseWriter, r *http.Request) error {
	id := r.PathValue("id")
	ctx, cancel := context.WithTimeout(r.Context(), opTimeout)
	defer cancel()
	n, err := s.db.GetNote(ctx, id)
	if err != nil {
		return dbError(err, "note", id)
	}
	writeJSON(w, http.StatusOK, toNoteJSON(n))
	return nil
}

func (s *Server) updateNote(w http.ResponseWriter, r *http.Request) error {
	n, err := readNote(w, r)
	if err != nil {
		return err
	}
	n.ID = r.PathValue("id")
	n.UpdatedAt = storage.Now()
	ctx, cancel := context.WithTimeout(r.Context(), opTimeout)
	defer cancel()
	updated, err := s.db.UpdateNote(ctx, n)
	if err != nil {
		return dbError(err, "note", n.ID)
	}
	writeJSON(w, http.StatusOK, toNoteJSON(updated))
	return nil
}

func (s *Server) deleteNote(w http.ResponseWriter, r *http.Request) error {
	id := r.PathValue("id")
	ctx, cancel := context.WithTimeout(r.Context(), opTimeout)
	defer cancel()
	if err := s.db.DeleteNote(ctx, id); err != nil {
		return dbError(err, "note", id)
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func (s *Server) listNotes(w http.ResponseWriter, r *http.Request) error {
	p, err := page(r)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(r.Context(), opTimeout)
	defer cancel()
	notes, next, err := s.db.ListNotes(ctx, p)
	if err != nil {
		return fromStore(err, "the database")
	}
	out := make([]noteJSON, len(notes))
	for i, n := range notes {
		out[i] = toNoteJSON(n)
	}
	writeJSON(w, http.StatusOK, map[string]any{"notes": out, "next_cursor": nextCursor(next)})
	return nil
}
