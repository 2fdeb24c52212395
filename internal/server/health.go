package server

import (
	"context"
	"net/http"
	"sync"
)

// healthz answers as long as the process serves HTTP; it touches no backend,
// so a slow database never gets the machine restarted.
func (s *Server) healthz(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
}

// readyz answers 200 when the database and the file store both answer
// within checkTimeout, and 503 otherwise, with what each said.
func (s *Server) readyz(w http.ResponseWriter, r *http.Request) {
	if s.draining.Load() {
		writeJSON(w, http.StatusServiceUnavailable, map[string]any{"status": "draining", "checks": map[string]any{}})
		return
	}
	checks := map[string]func(context.Context) error{"database": s.db.Ping, "files": s.blobs.Ping}
	describe := map[string]map[string]string{"database": s.db.Describe(), "files": s.blobs.Describe()}

	var mu sync.Mutex
	var wg sync.WaitGroup
	status, results := "ok", map[string]map[string]string{}
	for name, check := range checks {
		wg.Go(func() {
			ctx, cancel := context.WithTimeout(r.Context(), checkTimeout)
			defer cancel()
			res := map[string]string{"backend": describe[name]["backend"], "status": "ok"}
			if err := check(ctx); err != nil {
				res["status"], res["error"] = "unavailable", err.Error()
			}
			mu.Lock()
			defer mu.Unlock()
			results[name] = res
			if res["status"] != "ok" {
				status = "unavailable"
			}
		})
	}
	wg.Wait()
	code := http.StatusOK
	if status != "ok" {
		code = http.StatusServiceUnavailable
	}
	writeJSON(w, code, map[string]any{"status": status, "checks": results})
}

// describeStorage shows which backends are active, with no secret.
func (s *Server) describeStorage(w http.ResponseWriter, r *http.Request) error {
	out := map[string]any{"database": s.db.Describe(), "files": s.blobs.Describe()}
	if s.region != nil {
		ctx, cancel := context.WithTimeout(r.Context(), checkTimeout)
		defer cancel()
		out["region"] = s.region.Describe(ctx)
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}
