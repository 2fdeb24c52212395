package server

import (
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"strconv"
	"strings"

	"github.com/example/flystorage/internal/storage"
)

// serveContent streams a file's bytes as a download. It answers 304 when
// If-None-Match holds its ETag (the SHA-256 of its content, so it never
// changes), and 206 with Content-Range for a single satisfiable Range. A
// request for several ranges gets the whole file, as RFC 9110 allows.
func (s *Server) serveContent(w http.ResponseWriter, r *http.Request, f storage.File) error {
	etag := `"` + f.SHA256 + `"`
	h := w.Header()
	h.Set("ETag", etag)
	h.Set("Accept-Ranges", "bytes")
	h.Set("X-Content-Type-Options", "nosniff")
	if etagMatches(r.Header.Get("If-None-Match"), etag) {
		w.WriteHeader(http.StatusNotModified)
		return nil
	}

	rng, err := parseRange(r.Header.Get("Range"), f.Size)
	if ir := r.Header.Get("If-Range"); ir != "" && ir != etag {
		rng, err = nil, nil // the client's copy is stale: send it all
	}
	if err != nil {
		h.Set("Content-Range", fmt.Sprintf("bytes */%d", f.Size))
		return errorf(http.StatusRequestedRangeNotSatisfiable, "invalid", "%v (the file has %d bytes)", err, f.Size)
	}

	body, info, err := s.blobs.Get(r.Context(), f.Key, rng)
	if errors.Is(err, storage.ErrNotFound) {
		s.log.Error("file row without its object", "id", f.ID, "key", f.Key)
		return errorf(http.StatusNotFound, "not_found", "the content of file %q is missing from the store", f.ID)
	}
	if err != nil {
		return fromStore(err, "the file store")
	}
	defer body.Close()
	if info.Size != f.Size {
		return fmt.Errorf("file %s: the store holds %d bytes at %s, the row says %d", f.ID, info.Size, f.Key, f.Size)
	}

	h.Set("Content-Type", f.ContentType)
	h.Set("Content-Disposition", mime.FormatMediaType("attachment", map[string]string{"filename": f.Name}))
	status, length := http.StatusOK, f.Size
	if rng != nil {
		status, length = http.StatusPartialContent, rng.Length
		h.Set("Content-Range", fmt.Sprintf("bytes %d-%d/%d", rng.Start, rng.Start+rng.Length-1, f.Size))
	}
	h.Set("Content-Length", strconv.FormatInt(length, 10))
	w.WriteHeader(status)
	if r.Method == http.MethodHead {
		return nil
	}
	if _, err := io.Copy(w, body); err != nil {
		// The status is sent; all we can do is stop and log.
		s.log.Warn("download interrupted", "id", f.ID, "err", err)
	}
	return nil
}

// etagMatches applies If-None-Match's weak comparison.
func etagMatches(header, etag string) bool {
	for _, tag := range strings.Split(header, ",") {
		tag = strings.TrimPrefix(strings.TrimSpace(tag), "W/")
		if tag == "*" || tag == etag {
			return true
		}
	}
	return false
}

// parseRange reads a Range header for one range of a size-byte file: nil
// when there is none (or several), an error when it cannot be satisfied.
func parseRange(header string, size int64) (*storage.ByteRange, error) {
	spec, ok := strings.CutPrefix(header, "bytes=")
	if header == "" || !ok || strings.Contains(spec, ",") {
		return nil, nil
	}
	first, last, ok := strings.Cut(strings.TrimSpace(spec), "-")
	if !ok {
		return nil, fmt.Errorf("malformed Range %q", header)
	}
	var start, end int64
	var err error
	switch {
	case first == "": // the last N bytes
		n, perr := strconv.ParseInt(last, 10, 64)
		if perr != nil || n <= 0 {
			return nil, fmt.Errorf("malformed Range %q", header)
		}
		start, end = max(size-n, 0), size-1
	default:
		if start, err = strconv.ParseInt(first, 10, 64); err != nil || start < 0 {
			return nil, fmt.Errorf("malformed Range %q", header)
		}
		end = size - 1
		if last != "" {
			if end, err = strconv.ParseInt(last, 10, 64); err != nil || end < start {
				return nil, fmt.Errorf("malformed Range %q", header)
			}
			end = min(end, size-1)
		}
	}
	if start >= size {
		return nil, fmt.Errorf("Range %q starts past the end", header)
	}
	return &storage.ByteRange{Start: start, Length: end - start + 1}, nil
}
