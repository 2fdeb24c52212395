package server

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io"
	"net/http"

	"github.com/example/flystorage/internal/service"
)

// Idempotent writes. A client that sends POST /api/notes, /api/files,
// /api/files/uploads or .../complete with an Idempotency-Key header and
// retries it with the same key and the same request within 24 hours gets
// the first response's resource back and never a second one; the same key
// with another request answers 422. docs/api.md says more.

// maxKeyLen bounds the header; keys are stored hashed, so any length up to
// it fits.
const maxKeyLen = 255

// replayedHeader marks an answer that a retry got from the first request.
const replayedHeader = "Idempotent-Replayed"

// claim resolves the request's Idempotency-Key: the id to create under (""
// without a key) and whether an earlier request with the key claimed it,
// in which case the caller answers with what that id names, if it exists.
// parts are what the request asks for, which must match on a retry.
func (s *Server) claim(r *http.Request, parts ...string) (id string, retry bool, err error) {
	key := r.Header.Get("Idempotency-Key")
	if key == "" {
		return "", false, nil
	}
	if len(key) > maxKeyLen || !printable(key) {
		return "", false, errorf(http.StatusBadRequest, "invalid", "Idempotency-Key must be 1 to %d printable ASCII characters, such as a UUID", maxKeyLen)
	}
	scoped := sha256.Sum256([]byte(r.Method + " " + r.URL.Path + " " + key))
	h := sha256.New()
	for _, p := range append([]string{r.Method, r.URL.Path}, parts...) {
		io.WriteString(h, p)
		h.Write([]byte{0})
	}
	id, retry, err = s.svc.Claim(r.Context(), hex.EncodeToString(scoped[:]), hex.EncodeToString(h.Sum(nil)))
	switch {
	case errors.Is(err, service.ErrKeyReused):
		return "", false, errorf(http.StatusUnprocessableEntity, "idempotency_key_reused",
			"this Idempotency-Key came with a different request before; send a new key for a new request")
	case err != nil:
		return "", false, fromStore(err, "the database")
	}
	return id, retry, nil
}

func printable(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < 0x20 || s[i] > 0x7e {
			return false
		}
	}
	return true
}

// notGone lets a retry create what its key claimed, which a lookup
// answered with err: only when it is missing and was never deleted
// (service.Gone). A retry never brings back what was deleted since. When
// Gone says it was not deleted, found looks once more, since a retry
// racing the first request may find the thing made meanwhile; it answers
// and returns true if so.
func (s *Server) notGone(r *http.Request, err error, what, id string, found func() bool) error {
	if !isNotFound(err) {
		return dbError(err, what, id)
	}
	gone, err := s.svc.Gone(r.Context(), id)
	switch {
	case err != nil:
		return fromStore(err, "the database")
	case gone && !found():
		return errorf(http.StatusConflict, "conflict",
			"the %s this Idempotency-Key created (%s) was deleted since; send a new key to create another", what, id)
	}
	return nil
}

// replayed answers a retry with what its first request made.
func replayed(w http.ResponseWriter, location string, v any) {
	w.Header().Set(replayedHeader, "true")
	if location != "" {
		w.Header().Set("Location", location)
	}
	writeJSON(w, http.StatusCreated, v)
}
