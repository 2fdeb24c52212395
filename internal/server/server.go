// Package server is flystorage's HTTP API: JSON in and out, snake_case
// fields, RFC 3339 UTC times. Routes are in routes.go; the mapping from error
// kind to status is in errors.go.
package server

import (
	"log/slog"
	"net/http"
	"time"

	"github.com/example/flystorage/internal/storage"
)

// Timeouts that turn a backend that is down into a 503 instead of a hang.
const (
	// opTimeout bounds one database operation.
	opTimeout = 10 * time.Second
	// checkTimeout bounds each readiness check.
	checkTimeout = 2 * time.Second
)

// Options are what a Server needs.
type Options struct {
	DB             storage.Database
	Blobs          storage.Blobs
	MaxUploadBytes int64
	// KeyPrefix starts every file's key (BUCKET_PREFIX).
	KeyPrefix string
	// PresignTTL is how long download and upload URLs work.
	PresignTTL time.Duration
	// PublicURL, when set, is a public bucket's base URL: download links
	// are PublicURL/key and never expire.
	PublicURL string
	// SigningKey signs the app's own URLs for local files.
	SigningKey []byte
	Logger     *slog.Logger
}

// Server serves the API.
type Server struct {
	db         storage.Database
	blobs      storage.Blobs
	maxUpload  int64
	keyPrefix  string
	presignTTL time.Duration
	publicURL  string
	signingKey []byte
	log        *slog.Logger
	mux        *http.ServeMux
}

// New returns the API handler.
func New(o Options) *Server {
	s := &Server{db: o.DB, blobs: o.Blobs, maxUpload: o.MaxUploadBytes, keyPrefix: o.KeyPrefix,
		presignTTL: o.PresignTTL, publicURL: o.PublicURL, signingKey: o.SigningKey, log: o.Logger, mux: http.NewServeMux()}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	if s.presignTTL == 0 {
		s.presignTTL = 15 * time.Minute
	}
	s.routes()
	return s
}

// ServeHTTP logs one line per request.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	rec := &statusRecorder{ResponseWriter: w, status: http.StatusOK}
	s.mux.ServeHTTP(rec, r)
	s.log.Info("request", "method", r.Method, "path", r.URL.Path, "status", rec.status,
		"bytes", rec.bytes, "duration", time.Since(start).Round(time.Microsecond))
}

type statusRecorder struct {
	http.ResponseWriter
	status int
	bytes  int64
}

func (r *statusRecorder) WriteHeader(code int) {
	r.status = code
	r.ResponseWriter.WriteHeader(code)
}

func (r *statusRecorder) Write(b []byte) (int, error) {
	n, err := r.ResponseWriter.Write(b)
	r.bytes += int64(n)
	return n, err
}

// Unwrap lets http.ResponseController reach the real writer.
func (r *statusRecorder) Unwrap() http.ResponseWriter { return r.ResponseWriter }
