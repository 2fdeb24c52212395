package server

import (
	"net/http"
	"strings"
)

// routes lists every endpoint of the app.
func (s *Server) routes() {
	s.mux.Handle("GET /{$}", s.handle(s.page))
	s.mux.Handle("GET /static/", staticFiles)

	s.mux.HandleFunc("GET /healthz", s.healthz)
	s.mux.HandleFunc("GET /readyz", s.readyz)
	s.mux.Handle("GET /api/storage", s.handle(s.describeStorage))
	s.mux.Handle("GET /api/status", s.handle(s.status)) // the page's dashboard

	// The page signs in with the API token once and keeps a session cookie.
	s.mux.Handle("GET /api/session", s.handle(s.session))
	s.mux.Handle("POST /api/session", s.handle(s.signIn))
	s.mux.Handle("DELETE /api/session", s.handle(s.signOut))

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
	s.mux.Handle("GET /api/files/{id}/url", s.handle(s.fileURL))

	// Direct uploads: the client asks for a URL, PUTs the bytes there (the
	// bucket, or /signed/uploads for local files), then completes.
	s.mux.Handle("POST /api/files/uploads", s.handle(s.createUpload))
	s.mux.Handle("POST /api/files/uploads/{id}/complete", s.handle(s.completeUpload))

	// The app's own signed URLs, for local files.
	s.mux.Handle("GET /signed/files/{id}", s.handle(s.signedDownload))
	s.mux.Handle("PUT /signed/uploads/{id}", s.handle(s.signedUpload))

	s.mux.Handle(catchAll, s.handle(func(w http.ResponseWriter, r *http.Request) error {
		if allow := s.allowed(r); len(allow) > 0 {
			w.Header().Set("Allow", strings.Join(allow, ", "))
			return errorf(http.StatusMethodNotAllowed, "method_not_allowed", "%s is not allowed on %s; use %s", r.Method, r.URL.Path, strings.Join(allow, ", "))
		}
		return errorf(http.StatusNotFound, "not_found", "no route for %s %s", r.Method, r.URL.Path)
	}))
}

// catchAll answers every /api/ request no route above matches.
const catchAll = "/api/"

// allowed lists, sorted, the methods some route serves on r's path.
func (s *Server) allowed(r *http.Request) []string {
	var allow []string
	for _, m := range []string{"DELETE", "GET", "HEAD", "PATCH", "POST", "PUT"} {
		probe := *r
		probe.Method = m
		if _, pattern := s.mux.Handler(&probe); pattern != "" && pattern != catchAll {
			allow = append(allow, m)
		}
	}
	return allow
}
