package server

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"strconv"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/example/flystorage/internal/storage"
)

// maxJSONBytes bounds a JSON request body: a note's body plus room for
// escaping and the title.
const maxJSONBytes = 8 * storage.MaxBodyBytes

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	a, ok := v.(jsonAppender)
	if !ok {
		json.NewEncoder(w).Encode(v)
		return
	}
	bp := jsonBuffers.Get().(*[]byte)
	b := append(a.appendJSON((*bp)[:0]), '\n') // as json.Encoder ends a value
	w.Write(b)
	if cap(b) <= maxPooledJSON {
		*bp = b
		jsonBuffers.Put(bp)
	}
}

// jsonBuffers hold the answers of writeJSON's jsonAppender path; one larger
// than maxPooledJSON (a page of long notes) is left to the collector.
var jsonBuffers = sync.Pool{New: func() any { b := make([]byte, 0, 1024); return &b }}

const maxPooledJSON = 64 << 10

// decode reads one JSON object into v, refusing unknown fields, trailing
// data, oversized bodies and a body that takes longer than jsonBodyTimeout.
func decode(w http.ResponseWriter, r *http.Request, v any) error {
	// One deadline for the whole body, which is small. A writer without
	// deadlines (http.ErrNotSupported) reads as before.
	rc := http.NewResponseController(w)
	rc.SetReadDeadline(time.Now().Add(jsonBodyTimeout))
	defer rc.SetReadDeadline(time.Time{})
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, maxJSONBytes))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		if errors.Is(err, os.ErrDeadlineExceeded) {
			return stalledError(fmt.Errorf("%w: the JSON body took over %s", errStalled, jsonBodyTimeout))
		}
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			return errorf(http.StatusRequestEntityTooLarge, "too_large", "request body exceeds %d bytes", maxJSONBytes)
		}
		if errors.Is(err, io.EOF) {
			return errorf(http.StatusBadRequest, "invalid", "request body is empty: send a JSON object")
		}
		return errorf(http.StatusBadRequest, "invalid", "request body: %v", err)
	}
	if dec.More() {
		return errorf(http.StatusBadRequest, "invalid", "request body has data after the JSON object")
	}
	return nil
}

// textField decodes the raw JSON value of a text field named name: a
// string (or null, for ""), in valid UTF-8, with no lone surrogate among
// its \u escapes. encoding/json would turn both kinds of bad text into
// U+FFFD without a word.
func textField(raw json.RawMessage, name string) (string, error) {
	if len(raw) == 0 || string(raw) == "null" {
		return "", nil
	}
	var s string
	if err := json.Unmarshal(raw, &s); err != nil {
		return "", errorf(http.StatusBadRequest, "invalid", "%s must be a string", name)
	}
	if !utf8.Valid(raw) || loneSurrogate(raw) {
		return "", errorf(http.StatusBadRequest, "invalid", "%s is not valid UTF-8", name)
	}
	return s, nil
}

// loneSurrogate reports whether a JSON string holds a \u escape of half a
// UTF-16 surrogate pair without its other half.
func loneSurrogate(raw []byte) bool {
	escaped := func(i int) (rune, bool) { // the \uXXXX at raw[i:], if any
		if i+6 > len(raw) || raw[i] != '\\' || raw[i+1] != 'u' {
			return 0, false
		}
		n, err := strconv.ParseUint(string(raw[i+2:i+6]), 16, 32)
		return rune(n), err == nil
	}
	for i := 0; i < len(raw); i++ {
		if raw[i] != '\\' {
			continue
		}
		r, ok := escaped(i)
		if !ok {
			i++ // another escape: skip its character, which may be a backslash
			continue
		}
		switch {
		case r >= 0xd800 && r < 0xdc00:
			low, ok := escaped(i + 6)
			if !ok || low < 0xdc00 || low > 0xdfff {
				return true
			}
			i += 11
		case r >= 0xdc00 && r <= 0xdfff:
			return true
		default:
			i += 5
		}
	}
	return false
}

// Listing limits.
const (
	defaultLimit = 50
	maxLimit     = 200
)

// page reads ?limit=N&cursor=C.
func page(r *http.Request) (storage.Page, error) {
	p := storage.Page{Limit: defaultLimit, Cursor: r.URL.Query().Get("cursor")}
	if v := r.URL.Query().Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > maxLimit {
			return p, errorf(http.StatusBadRequest, "invalid", "limit must be a whole number from 1 to %d", maxLimit)
		}
		p.Limit = n
	}
	if p.Cursor != "" && !storage.ValidID(p.Cursor) {
		return p, errorf(http.StatusBadRequest, "invalid", "cursor %q is malformed: pass next_cursor from the previous page", p.Cursor)
	}
	return p, nil
}

// nextCursor is null in JSON on the last page.
func nextCursor(c string) *string {
	if c == "" {
		return nil
	}
	return &c
}

// pathID returns the {id} of r's path, or a 404 when it is not exactly an
// id NewID makes. A malformed id never reaches Redis or a database: MariaDB
// would match an id plus trailing spaces to the real row (and the cache
// would keep it under the real id), Postgres refuses a NUL or invalid
// UTF-8 as a server error, and a cache miss would hold the id as a key.
func pathID(r *http.Request, what string) (string, error) {
	id := r.PathValue("id")
	if !storage.ValidID(id) {
		shown := id
		if len(shown) > 40 {
			shown = shown[:40] + "..."
		}
		return "", errorf(http.StatusNotFound, "not_found", "no %s has id %q", what, shown)
	}
	return id, nil
}

// dbError describes a failed database call on the thing named: a plain
// not-found for it, or the error kind's status with a message that names
// the database.
func dbError(err error, what, id string) error {
	if errors.Is(err, storage.ErrNotFound) {
		return errorf(http.StatusNotFound, "not_found", "no %s has id %q", what, id)
	}
	return fromStore(err, "the database")
}
