package server

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/example/flystorage/internal/storage"
)

// serveContent streams a file's bytes as a download through
// http.ServeContent, which answers If-None-Match with 304 (the ETag is the
// SHA-256 of the content, so it never changes), a single Range with 206
// and Content-Range, and If-Range. A request for several ranges, or in
// another unit than bytes, gets the whole file, as RFC 9110 allows; so
// does any range of an empty file (ServeContent's choice).
//
// The object is opened only once ServeContent has chosen the status and
// the bytes to send (contentWriter.WriteHeader), so a 304, a 416 or a
// HEAD never reaches the store, and a missing object still gets a 404 of
// its own.
func (s *Server) serveContent(w http.ResponseWriter, r *http.Request, f storage.File) error {
	h := w.Header()
	h.Set("ETag", `"`+f.SHA256+`"`)
	h.Set("Accept-Ranges", "bytes")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Content-Type", f.ContentType) // set, so ServeContent does not sniff
	if rh := r.Header.Get("Range"); !strings.HasPrefix(rh, "bytes=") || strings.Contains(rh, ",") {
		r.Header.Del("Range")
	}
	body := &blobReader{ctx: r.Context(), blobs: s.blobs, f: f}
	defer body.close()
	cw := &contentWriter{ResponseWriter: w, s: s, r: r, body: body}
	http.ServeContent(cw, r, "", time.Time{}, body)
	if err := cmp.Or(body.err, cw.sendErr); err != nil {
		// The status is sent; all we can do is log.
		s.log.Warn("download interrupted", "id", f.ID, "err", err)
	}
	return cw.err
}

// contentWriter opens the object when http.ServeContent sends its status,
// and turns the answers that are errors (no object, no satisfiable range)
// into the API's JSON errors, for the handler to write.
type contentWriter struct {
	http.ResponseWriter
	s       *Server
	r       *http.Request
	body    *blobReader
	err     error // the error to answer with instead
	sendErr error // the connection's, while sending the content
}

func (cw *contentWriter) WriteHeader(code int) {
	h := cw.Header()
	f := cw.body.f
	if code == http.StatusPartialContent && h.Get("Content-Length") == "0" {
		// ServeContent answers a suffix of no bytes ("bytes=-0", or any
		// suffix of an empty file) with an empty 206 that RFC 9110 calls
		// unsatisfiable.
		code = http.StatusRequestedRangeNotSatisfiable
	}
	switch code {
	case http.StatusOK, http.StatusPartialContent:
		// A HEAD sends no bytes, and the row has every header it answers:
		// it never opens the object.
		if cw.r.Method != http.MethodHead && !cw.open() {
			return
		}
		h.Set("Content-Disposition", mime.FormatMediaType("attachment", map[string]string{"filename": f.Name}))
	case http.StatusRequestedRangeNotSatisfiable:
		h.Set("ETag", `"`+f.SHA256+`"`) // ServeContent drops it from errors
		h.Set("Content-Range", fmt.Sprintf("bytes */%d", f.Size))
		h.Del("Content-Length")
		cw.err = errorf(code, "invalid", "Range %q cannot be satisfied (the file has %d bytes)", cw.r.Header.Get("Range"), f.Size)
		return
	}
	cw.ResponseWriter.WriteHeader(code)
}

// open opens the object for the bytes ServeContent is about to send. When
// it cannot, it keeps the error to answer with, drops the headers that
// described the bytes, and returns false.
func (cw *contentWriter) open() bool {
	h := cw.Header()
	f := cw.body.f
	length, _ := strconv.ParseInt(h.Get("Content-Length"), 10, 64)
	err := cw.body.open(length)
	if err == nil {
		return true
	}
	h.Del("Content-Length")
	h.Del("Content-Range")
	cw.err = err
	if errors.Is(err, storage.ErrNotFound) {
		cw.s.log.Error("file row without its object", "id", f.ID, "key", f.Key)
		cw.err = errorf(http.StatusNotFound, "not_found", "the content of file %q is missing from the store", f.ID)
	}
	return false
}

// Write sends the content, or drops ServeContent's own text of an error
// that the handler answers instead.
func (cw *contentWriter) Write(p []byte) (int, error) {
	if cw.err != nil {
		return 0, cw.err
	}
	n, err := cw.ResponseWriter.Write(p)
	if err != nil {
		cw.sendErr = err
	}
	return n, err
}

// blobReader is a file's content as http.ServeContent reads it: its size
// comes from the row, Seek only moves the offset, and open gets the bytes
// from the offset on, as many as the answer sends.
type blobReader struct {
	ctx   context.Context
	blobs storage.Blobs
	f     storage.File
	pos   int64
	body  io.ReadCloser
	err   error // the store's, while reading the content
}

func (b *blobReader) Seek(offset int64, whence int) (int64, error) {
	switch whence {
	case io.SeekStart:
		b.pos = offset
	case io.SeekCurrent:
		b.pos += offset
	case io.SeekEnd:
		b.pos = b.f.Size + offset
	}
	return b.pos, nil
}

func (b *blobReader) Read(p []byte) (int, error) {
	if b.body == nil {
		return 0, errors.New("server: content read before it was opened")
	}
	n, err := b.body.Read(p)
	if err != nil && err != io.EOF {
		b.err = err
	}
	return n, err
}

func (b *blobReader) open(length int64) error {
	var rng *storage.ByteRange
	if b.pos != 0 || length != b.f.Size {
		rng = &storage.ByteRange{Start: b.pos, Length: length}
	}
	body, info, err := b.blobs.Get(b.ctx, b.f.Key, rng)
	if errors.Is(err, storage.ErrNotFound) {
		return err
	}
	if err != nil {
		return fromStore(err, "the file store")
	}
	if info.Size != b.f.Size {
		body.Close()
		return fmt.Errorf("file %s: the store holds %d bytes at %s, the row says %d", b.f.ID, info.Size, b.f.Key, b.f.Size)
	}
	b.body = body
	return nil
}

func (b *blobReader) close() {
	if b.body != nil {
		b.body.Close()
	}
}
