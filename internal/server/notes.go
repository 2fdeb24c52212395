package server

import (
	"errors"
	"net/http"
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
	return storage.Note{Title: *in.Title, Body: in.Body}, nil
}

func (s *Server) createNote(w http.ResponseWriter, r *http.Request) error {
	n, err := readNote(w, r)
	if err != nil {
		return err
	}
	id, retry, err := s.claim(r, n.Title, n.Body)
	if err != nil {
		return err
	}
	if retry {
		if got, err := s.svc.GetNote(r.Context(), id); err == nil {
			replayed(w, "/api/notes/"+id, toNoteJSON(got))
			return nil
		}
	}
	n.ID = id
	n, err = s.svc.CreateNote(r.Context(), n)
	if id != "" && errors.Is(err, storage.ErrConflict) {
		// A retry racing its first request: that one made the note.
		if got, gerr := s.svc.GetNote(r.Context(), id); gerr == nil {
			replayed(w, "/api/notes/"+id, toNoteJSON(got))
			return nil
		}
	}
	if err != nil {
		return dbError(err, "note", n.ID)
	}
	w.Header().Set("Location", "/api/notes/"+n.ID)
	writeJSON(w, http.StatusCreated, toNoteJSON(n))
	return nil
}

func (s *Server) getNote(w http.ResponseWriter, r *http.Request) error {
	id := r.PathValue("id")
	n, err := s.svc.GetNote(r.Context(), id)
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
	updated, err := s.svc.UpdateNote(r.Context(), n)
	if err != nil {
		return dbError(err, "note", n.ID)
	}
	writeJSON(w, http.StatusOK, toNoteJSON(updated))
	return nil
}

func (s *Server) deleteNote(w http.ResponseWriter, r *http.Request) error {
	id := r.PathValue("id")
	if err := s.svc.DeleteNote(r.Context(), id); err != nil {
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
	notes, next, err := s.svc.ListNotes(r.Context(), p)
	if err != nil {
		return fromStore(err, "the database")
	}
	out := make([]noteJSON, len(notes))
	for i, n := range notes {
		out[i] = toNoteJSON(n)
	}
	writeJSON(w, http.StatusOK, notePage{Notes: out, NextCursor: nextCursor(next)})
	return nil
}
