package server

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strconv"

	"github.com/example/flystorage/internal/service"
	"github.com/example/flystorage/internal/storage"
)

// kinds maps each storage error kind to its status, error code and the
// message a client sees. It is the only place that decides what a backend
// failure looks like over HTTP. Backend errors carry host names, users and
// SQL; they go to the log, never to the client.
var kinds = []struct {
	err    error
	status int
	code   string
	msg    string
}{
	{storage.ErrInvalid, http.StatusBadRequest, "invalid", "the store refused the value"},
	{storage.ErrNotFound, http.StatusNotFound, "not_found", "not found"},
	{storage.ErrConflict, http.StatusConflict, "conflict", "it already exists"},
	{storage.ErrTooLarge, http.StatusRequestEntityTooLarge, "too_large", "too large"},
	{storage.ErrNoSpace, http.StatusInsufficientStorage, "insufficient_storage", "the disk is full"},
	{storage.ErrRefused, http.StatusBadGateway, "bad_gateway", "a backend refused the app's request"},
	{storage.ErrUnavailable, http.StatusServiceUnavailable, "unavailable", "a backend is unavailable; try again shortly"},
}

// apiError is an error with the status, code and message the client gets.
// cause, if any, is logged and never sent.
type apiError struct {
	status int
	code   string
	msg    string
	cause  error
	// retryAfter, in seconds, is sent as Retry-After when set.
	retryAfter int
}

func (e *apiError) Error() string {
	if e.cause != nil {
		return e.msg + ": " + e.cause.Error()
	}
	return e.msg
}

func (e *apiError) Unwrap() error { return e.cause }

func errorf(status int, code, format string, args ...any) error {
	return &apiError{status: status, code: code, msg: fmt.Sprintf(format, args...)}
}

// fromStore turns an error of the database or file store into what the
// client should see: the kind's status and a message that says what failed
// ("the database is unavailable") without the backend's own words.
func fromStore(err error, what string) error {
	var refusal *service.Error
	if errors.As(err, &refusal) {
		// The service's refusals are written for the client.
		for _, k := range kinds {
			if errors.Is(refusal.Kind, k.err) {
				return &apiError{status: k.status, code: k.code, msg: refusal.Msg}
			}
		}
	}
	for _, k := range kinds {
		if errors.Is(err, k.err) {
			msg := k.msg
			switch k.err {
			case storage.ErrUnavailable:
				msg = what + " is unavailable; try again shortly"
			case storage.ErrNoSpace:
				msg = "the disk of " + what + " is full: delete files or notes, or extend the volume"
			case storage.ErrRefused:
				// Say what the store refused (S3's code, e.g. AccessDenied or
				// NoSuchBucket), never the credentials.
				msg = what + " refused the app's credentials or bucket; check BUCKET_NAME, AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY"
				var refused *storage.RefusedError
				if errors.As(err, &refused) {
					msg += " (" + refused.Code + ")"
				}
			}
			return &apiError{status: k.status, code: k.code, msg: msg, cause: err}
		}
	}
	return err
}

// handle adapts a handler that returns an error, writing the error as
// {"error":{"code","message"}}. Errors of no known kind are logged and
// answered 500 without detail.
func (s *Server) handle(h func(http.ResponseWriter, *http.Request) error) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if err := h(w, r); err != nil {
			s.writeError(w, r, err)
		}
	})
}

func (s *Server) writeError(w http.ResponseWriter, r *http.Request, err error) {
	if s.region != nil && s.region.HandleError(w, r, err) {
		return // a write reached a read-only replica: replayed to the primary
	}
	if r.Context().Err() != nil && errors.Is(err, context.Canceled) {
		// The client went away: nobody reads an answer, and it is not ours
		// to count as a failure.
		s.log.Info("client went away", "method", r.Method, "path", r.URL.Path, "err", err)
		return
	}
	if errors.Is(err, errStalled) {
		// The rest of the body may never come: close the connection rather
		// than let net/http wait to discard it before answering.
		w.Header().Set("Connection", "close")
	}
	status, code, msg := http.StatusInternalServerError, "internal", "internal error"
	var apiErr *apiError
	if errors.As(err, &apiErr) {
		status, code, msg = apiErr.status, apiErr.code, apiErr.msg
		if apiErr.retryAfter > 0 {
			w.Header().Set("Retry-After", strconv.Itoa(apiErr.retryAfter))
		}
	} else if e, ok := fromStore(err, "a backend").(*apiError); ok {
		status, code, msg = e.status, e.code, e.msg
	}
	if status >= 500 {
		s.log.Error("request failed", "method", r.Method, "path", r.URL.Path, "status", status, "err", err)
	}
	writeJSON(w, status, map[string]any{"error": map[string]string{"code": code, "message": msg}})
}

func isNotFound(err error) bool { return errors.Is(err, storage.ErrNotFound) }
