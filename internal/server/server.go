// Package server is flystorage's HTTP API: JSON in and out, snake_case
// fields, RFC 3339 UTC times. Routes are in routes.go; the mapping from error
// kind to status is in errors.go.
package server

import (
	"crypto/sha256"
	"crypto/subtle"
	"errors"
	"log/slog"
	"net/http"
	"strings"
	"sync/atomic"
	"time"

	"github.com/example/flystorage/internal/cache"
	"github.com/example/flystorage/internal/config"
	"github.com/example/flystorage/internal/region"
	"github.com/example/flystorage/internal/service"
	"github.com/example/flystorage/internal/storage"
)

// checkTimeout bounds each readiness check, so a backend that is down turns
// /readyz into a 503 instead of a hang. Operations are bounded by
// service.OpTimeout.
const checkTimeout = 2 * time.Second

// maxPathBytes bounds a request's path: no route needs more than an id or
// two, and a longer one is answered before any store or Redis sees it.
const maxPathBytes = 1024

// Options are what a Server needs.
type Options struct {
	// Service does the work; the server translates HTTP to its calls.
	Service        *service.Service
	MaxUploadBytes int64
	// PresignTTL is how long download and upload URLs work.
	PresignTTL time.Duration
	// PublicURL, when set, is a public bucket's base URL: download links
	// are PublicURL/key and never expire.
	PublicURL string
	// SigningKey signs the app's own URLs for local files.
	SigningKey []byte
	// APIToken, when set, is required as a bearer token for writes under
	// /api/. Without it, OnFly refuses those writes: a public *.fly.dev
	// address must not be an open file host.
	APIToken string
	OnFly    bool
	// Metrics, if set, counts requests and is served at /metrics unless
	// MetricsElsewhere.
	Metrics          *Metrics
	MetricsElsewhere bool
	// Region, when set, applies the multi-region rules (fly-replay,
	// read-your-writes) to every request; see internal/region.
	Region *region.Router
	// Cache is Redis, for /readyz and /api/storage; nil without it.
	Cache *cache.Cache
	// Replication, when set, reports SQLite's replica in the bucket under
	// "replication" in /api/storage.
	Replication storage.ReplicationReporter
	// Sessions keep the page signed in (POST /api/session); SessionTTL is
	// how long one lasts. nil: the page cannot sign in.
	Sessions   cache.Sessions
	SessionTTL time.Duration
	// Limiter, when set, limits writes per client (RATE_LIMIT).
	Limiter cache.Limiter
	Logger  *slog.Logger
}

// Server serves the API.
type Server struct {
	svc        *service.Service
	now        func() time.Time // the service's clock: signed links expire on it
	db         storage.Database
	blobs      storage.Blobs
	maxUpload  int64
	presignTTL time.Duration
	publicURL  string
	signingKey []byte
	apiToken   string
	onFly      bool
	metrics    *Metrics
	region     *region.Router
	cache      *cache.Cache
	repl       storage.ReplicationReporter
	sessions   cache.Sessions
	sessionTTL time.Duration
	limiter    cache.Limiter
	routed     http.Handler // mux, behind the region rules when there are any
	draining   atomic.Bool
	totals     totals // what /api/status counted last
	log        *slog.Logger
	mux        *http.ServeMux
}

// New returns the API handler.
func New(o Options) *Server {
	s := &Server{svc: o.Service, now: o.Service.Now, db: o.Service.DB(), blobs: o.Service.Blobs(), maxUpload: o.MaxUploadBytes,
		presignTTL: o.PresignTTL, publicURL: o.PublicURL, signingKey: o.SigningKey,
		apiToken: o.APIToken, onFly: o.OnFly, metrics: o.Metrics, region: o.Region, cache: o.Cache, repl: o.Replication,
		sessions: o.Sessions, sessionTTL: o.SessionTTL, limiter: o.Limiter, log: o.Logger, mux: http.NewServeMux()}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	if s.presignTTL == 0 {
		s.presignTTL = config.DefaultPresignTTL
	}
	s.routes()
	if s.metrics != nil && !o.MetricsElsewhere {
		s.mux.Handle("GET /metrics", s.metrics.Handler())
	}
	s.routed = s.mux
	if s.region != nil {
		s.routed = s.region.Wrap(s.mux)
	}
	return s
}

// Drain makes /readyz answer 503, so Fly's proxy stops sending new
// requests while in-flight ones finish.
func (s *Server) Drain() { s.draining.Store(true) }

// ServeHTTP checks the caller may write, routes, and logs one line per
// request with the route pattern and the request id: Fly's Fly-Request-Id
// when the proxy sent one, so the line matches Fly's own logs.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	id := r.Header.Get("Fly-Request-Id")
	if id == "" {
		id = storage.NewID()
	}
	w.Header().Set("X-Request-Id", id)
	rec := &statusRecorder{ResponseWriter: w, status: http.StatusOK}
	if len(r.URL.Path) > maxPathBytes {
		s.writeError(rec, r, errorf(http.StatusRequestURITooLong, "uri_too_long", "the path is over %d bytes", maxPathBytes))
	} else if err := s.admit(r); err != nil {
		var apiErr *apiError
		if errors.As(err, &apiErr) && apiErr.status == http.StatusUnauthorized {
			rec.Header().Set("WWW-Authenticate", `Bearer realm="flystorage"`)
		}
		s.writeError(rec, r, err)
	} else {
		s.routed.ServeHTTP(rec, r)
	}
	route := r.Pattern // set by the mux
	if route == "" {
		route = "unmatched"
	}
	d := time.Since(start)
	if s.metrics != nil {
		s.metrics.observeRequest(route, r.Method, rec.status, d)
	}
	s.logRequest(r, route, rec, d, id)
}

// logRequest writes the request's line. It hands the record to the handler
// itself: the Logger's methods would also look up the caller's program
// counter for every line, which no handler here prints.
func (s *Server) logRequest(r *http.Request, route string, rec *statusRecorder, d time.Duration, id string) {
	h := s.log.Handler()
	if !h.Enabled(r.Context(), slog.LevelInfo) {
		return
	}
	line := slog.NewRecord(time.Now(), slog.LevelInfo, "request", 0)
	line.AddAttrs(slog.String("method", r.Method), slog.String("route", route), slog.String("path", r.URL.Path),
		slog.Int("status", rec.status), slog.Int64("bytes", rec.bytes),
		slog.Duration("duration", d.Round(time.Microsecond)), slog.String("request_id", id))
	h.Handle(r.Context(), line)
}

// admit lets reads through, and a write under /api/ only within the
// client's rate limit and with the API token: as a bearer token, or a
// session cookie from a page on this site.
func (s *Server) admit(r *http.Request) error {
	switch r.Method {
	case http.MethodGet, http.MethodHead, http.MethodOptions:
		return nil
	}
	if !strings.HasPrefix(r.URL.Path, "/api/") {
		return nil // /signed/... carries its own signature
	}
	if err := s.limit(r); err != nil {
		return err
	}
	if r.URL.Path == "/api/session" {
		return nil // signing in and out check the token and the cookie themselves
	}
	return s.authorize(r)
}

// authorize checks a write for the API token.
func (s *Server) authorize(r *http.Request) error {
	if s.apiToken == "" {
		if s.onFly {
			return errorf(http.StatusUnauthorized, "unauthorized",
				"writes are off on Fly until you set a token: fly secrets set API_TOKEN=$(openssl rand -hex 32), then send Authorization: Bearer <token>")
		}
		return nil
	}
	if got, ok := bearer(r); ok {
		if !s.validToken(got) {
			return errorf(http.StatusUnauthorized, "unauthorized", "the bearer token is not API_TOKEN")
		}
		return nil
	}
	signedIn, err := s.signedIn(r)
	if err != nil {
		return err
	}
	if !signedIn {
		return errorf(http.StatusUnauthorized, "unauthorized", "this write needs Authorization: Bearer <API_TOKEN>, or signing in on the page")
	}
	return sameSite(r)
}

// bearer returns the token of an Authorization: Bearer header. The scheme
// is case-insensitive (RFC 9110, section 11.1).
func bearer(r *http.Request) (string, bool) {
	scheme, token, ok := strings.Cut(r.Header.Get("Authorization"), " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return "", false
	}
	return token, true
}

// validToken compares digests, which keeps the comparison constant-time
// whatever the lengths.
func (s *Server) validToken(got string) bool {
	want, have := sha256.Sum256([]byte(s.apiToken)), sha256.Sum256([]byte(strings.TrimSpace(got)))
	return subtle.ConstantTimeCompare(want[:], have[:]) == 1
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
