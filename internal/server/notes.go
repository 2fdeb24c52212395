package server

import (
	"encoding/json"
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

// noteInput keeps the fields raw, so that text which is not valid UTF-8
// is refused by name instead of stored as U+FFFD (textField).
type noteInput struct {
	Title json.RawMessage `json:"title"`
	Body  json.RawMessage `json:"body"`
}

func readNote(w http.ResponseWriter, r *http.Request) (storage.Note, error) {
	var in noteInput
	if err := decode(w, r, &in); err != nil {
		return storage.Note{}, err
	}
	if len(in.Title) == 0 || string(in.Title) == "null" {
		return storage.Note{}, errorf(http.StatusBadRequest, "invalid", "title is required")
	}
	title, err := textField(in.Title, "title")
	if err != nil {
		return storage.Note{}, err
	}
	body, err := textField(in.Body, "body")
	if err != nil {
		return storage.Note{}, err
	}
	return storage.Note{Title: title, Body: body}, nil
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
		got, err := s.svc.GetNote(r.Context(), id)
		if err == nil {
			replayed(w, "/api/notes/"+id, toNoteJSON(got))
			return nil
		}
		answered := false
		if err := s.notGone(r, err, "note", id, func() bool {
			got, err := s.svc.GetNote(r.Context(), id)
			if answered = err == nil; answered {
				replayed(w, "/api/notes/"+id, toNoteJSON(got))
			}
			return answered
		}); err != nil || answered {
			return err
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
	id, err := pathID(r, "note")
	if err != nil {
		return err
	}
	n, err := s.svc.GetNote(r.Context(), id)
	if err != nil {
		return dbError(err, "note", id)
	}
	writeJSON(w, http.StatusOK, toNoteJSON(n))
	return nil
}

func (s *Server) updateNote(w http.ResponseWriter, r *http.Request) error {
	id, err := pathID(r, "note")
	if err != nil {
		return err
	}
	n, err := readNote(w, r)
	if err != nil {
		return err
	}
	n.ID = id
	updated, err := s.svc.UpdateNote(r.Context(), n)
	if err != nil {
		return dbError(err, "note", n.ID)
	}
	writeJSON(w, http.StatusOK, toNoteJSON(updated))
	return nil
}

func (s *Server) deleteNote(w http.ResponseWriter, r *http.Request) error {
	id, err := pathID(r, "note")
	if err != nil {
		return err
	}
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
