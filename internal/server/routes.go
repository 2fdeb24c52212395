package server

import "net/http"

// routes lists every endpoint of the app.
func (s *Server) routes() {
	s.mux.HandleFunc("GET /healthz", s.healthz)
	s.mux.HandleFunc("GET /readyz", s.readyz)
	s.mux.Handle("GET /api/storage", s.handle(s.describeStorage))

	s.mux.Handle("POST /api/notes", s.handle(s.createNote))
	s.mux.Handle("GET /api/notes", s.handle(s.listNotes))
	s.mux.Handle("GET /api/notes/{id}", s.handle(s.getNote))
	s.mux.Handle("PUT /api/notes/{id}", s.handle(s.updateNote))
	s.mux.Handle("DELETE /api/notes/{id}", s.handle(s.deleteNote))

	s.mux.Handle("POST /api/files", s.handle(s.createFile))
	s.mux.Handle("GET /api/files", s.handle(s.listFiles))
	s.mux.Handle("GET /api/files/{id}", s.handle(s.getFile))
	s.mux.Handle("GET /api/files/{id}/content", s.handle(s.getFileContent))
	s.mux.Handle("DELETE /api/files/{id}", s.handle(s.deleteFile))

	s.mux.Handle("/api/", s.handle(func(w http.ResponseWriter, r *http.Request) error {
		return errorf(http.StatusNotFound, "not_found", "no route for %s %s", r.Method, r.URL.Path)
	}))
}
