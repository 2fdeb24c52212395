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
// within checkTimeout, and 503 otherwise, with what each said. A store on a
// local volume also reports free_bytes: a full disk still serves reads and
// deletes, so it stays ready, but this shows why writes answer 507.
func (s *Server) readyz(w http.ResponseWriter, r *http.Request) {
	if s.draining.Load() {
		writeJSON(w, http.StatusServiceUnavailable, map[string]any{"status": "draining", "checks": map[string]any{}})
		return
	}
	checks := map[string]func(context.Context) error{"database": s.db.Ping, "files": s.blobs.Ping}
	describe := map[string]map[string]string{"database": s.db.Describe(), "files": s.blobs.Describe()}
	stores := map[string]any{"database": s.db, "files": s.blobs}

	var mu sync.Mutex
	var wg sync.WaitGroup
	status, results := "ok", map[string]map[string]any{}
	for name, check := range checks {
		wg.Go(func() {
			ctx, cancel := context.WithTimeout(r.Context(), checkTimeout)
			defer cancel()
			res := map[string]any{"backend": describe[name]["backend"], "status": "ok"}
			if err := check(ctx); err != nil {
				res["status"], res["error"] = "unavailable", err.Error()
			}
			if v, ok := volumeOf(stores[name]); ok {
				if vol, err := v.Volume(); err == nil {
					res["free_bytes"] = vol.FreeBytes
				}
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
	writeJSON(w, http.StatusOK, map[string]any{"database": s.db.Describe(), "files": s.blobs.Describe()})
	return nil
}
