package server

import (
	"context"
	"errors"
	"net/http"
	"sync"

	"github.com/example/flystorage/internal/storage"
)

// healthz answers as long as the process serves HTTP; it touches no backend,
// so a slow database never gets the machine restarted.
func (s *Server) healthz(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
}

// readyz answers 200 when the database and the file store both answer
// within checkTimeout, and 503 otherwise. Redis is optional: when it does
// not answer, the app serves from the database, so readyz says "degraded"
// and still answers 200. Each check says only the kind of failure, since
// readyz answers anyone; the cause goes to the log. A store on a local
// volume also reports free_bytes: a full disk still serves reads and
// deletes, so it stays ready, but this shows why writes answer 507.
func (s *Server) readyz(w http.ResponseWriter, r *http.Request) {
	if s.draining.Load() {
		writeJSON(w, http.StatusServiceUnavailable, map[string]any{"status": "draining", "checks": map[string]any{}})
		return
	}
	type check struct {
		ping     func(context.Context) error
		backend  string
		optional bool
		store    any
	}
	checks := map[string]check{
		"database": {s.db.Ping, s.db.Backend(), false, s.db},
		"files":    {s.blobs.Ping, s.blobs.Backend(), false, s.blobs},
	}
	if s.cache.Enabled() {
		checks["cache"] = check{s.cache.Ping, "redis", true, nil}
	}

	var mu sync.Mutex
	var wg sync.WaitGroup
	status, results := "ok", map[string]map[string]any{}
	for name, c := range checks {
		wg.Go(func() {
			ctx, cancel := context.WithTimeout(r.Context(), checkTimeout)
			defer cancel()
			res := map[string]any{"backend": c.backend, "status": "ok"}
			if err := c.ping(ctx); err != nil {
				res["status"], res["error"] = "unavailable", failureKind(err)
				if c.optional {
					// The cache logs its own failures, at most once a
					// minute, however often Fly probes.
					res["status"] = "degraded"
				} else {
					s.log.Warn("readiness check failed", "check", name, "err", err)
				}
			}
			if v, ok := volumeOf(c.store); ok {
				if vol, err := v.Volume(); err == nil {
					res["free_bytes"] = vol.FreeBytes
				}
			}
			mu.Lock()
			defer mu.Unlock()
			results[name] = res
			switch {
			case res["status"] == "unavailable":
				status = "unavailable"
			case res["status"] == "degraded" && status == "ok":
				status = "degraded"
			}
		})
	}
	wg.Wait()
	code := http.StatusOK
	if status == "unavailable" {
		code = http.StatusServiceUnavailable
	}
	writeJSON(w, code, map[string]any{"status": status, "checks": results})
}

// failureKind names what went wrong without the backend's own words, which
// carry hosts, users and database names.
func failureKind(err error) string {
	switch {
	case errors.Is(err, context.DeadlineExceeded):
		return "timed out"
	case errors.Is(err, storage.ErrNoSpace):
		return "out of space"
	case errors.Is(err, storage.ErrRefused):
		return "refused the app's credentials"
	}
	return "unreachable"
}

// describeStorage shows which backends are active, with no secret.
func (s *Server) describeStorage(w http.ResponseWriter, r *http.Request) error {
	out := map[string]any{"database": s.db.Describe(), "files": s.blobs.Describe(), "cache": s.cache.Describe()}
	if s.region != nil {
		ctx, cancel := context.WithTimeout(r.Context(), checkTimeout)
		defer cancel()
		out["region"] = s.region.Describe(ctx)
	}
	if s.repl != nil {
		out["replication"] = s.repl.ReplicationStatus()
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}
