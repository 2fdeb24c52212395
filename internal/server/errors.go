package server

import (
	"errors"
	"fmt"
	"net/http"

	"github.com/example/flystorage/internal/storage"
)

// kinds maps each storage error kind to its status and error code. It is
// the only place that decides what a backend failure looks like over HTTP.
var kinds = []struct {
	err    error
	status int
	code   string
}{
	{storage.ErrInvalid, http.StatusBadRequest, "invalid"},
	{storage.ErrNotFound, http.StatusNotFound, "not_found"},
	{storage.ErrConflict, http.StatusConflict, "conflict"},
	{storage.ErrTooLarge, http.StatusRequestEntityTooLarge, "too_large"},
	{storage.ErrUnavailable, http.StatusServiceUnavailable, "unavailable"},
}

// apiError is an error with its own status, for failures of the request
// itself rather than of a backend.
type apiError struct {
	status int
	code   string
	msg    string
}

func (e *apiError) Error() string { return e.msg }

func errorf(status int, code, format string, args ...any) error {
	return &apiError{status: status, code: code, msg: fmt.Sprintf(format, args...)}
}

// handle adapts a handler that returns an error, writing the error as
// {"error":{"code","message"}} with the status its kind maps to. Errors of
// no known kind are logged and answered 500 without detail.
func (s *Server) handle(h func(http.ResponseWriter, *http.Request) error) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if err := h(w, r); err != nil {
			s.writeError(w, r, err)
		}
	})
}

func (s *Server) writeError(w http.ResponseWriter, r *http.Request, err error) {
	status, code, msg := http.StatusInternalServerError, "internal", "internal error"
	var apiErr *apiError
	if errors.As(err, &apiErr) {
		status, code, msg = apiErr.status, apiErr.code, apiErr.msg
	} else {
		for _, k := range kinds {
			if errors.Is(err, k.err) {
				status, code, msg = k.status, k.code, err.Error()
				break
			}
		}
	}
	if status >= 500 {
		s.log.Error("request failed", "method", r.Method, "path", r.URL.Path, "status", status, "err", err)
	}
	writeJSON(w, status, map[string]any{"error": map[string]string{"code": code, "message": msg}})
}
