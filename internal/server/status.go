package server

import (
	"net/http"
	"strings"

	"github.com/example/flystorage/internal/storage"
)

// statusJSON is what the page's dashboard reads every two seconds besides
// /api/storage and /readyz: the figures that otherwise exist only on
// /metrics. It holds names and numbers, never a URL or a key. Counters are
// totals since the process started; the page turns two of them into a
// rate.
type statusJSON struct {
	Pools    []poolJSON   `json:"pools"`
	Requests requestsJSON `json:"requests"`
	Cache    cacheJSON    `json:"cache"`
	Files    filesJSON    `json:"files"`
}

type poolJSON struct {
	Name  string `json:"name"`
	InUse int64  `json:"in_use"`
	Idle  int64  `json:"idle"`
	Max   int64  `json:"max"`
}

// requestsJSON counts the requests that read or write notes and files,
// leaving out the page's own polling and its static files.
type requestsJSON struct {
	Reads  float64 `json:"reads"`
	Writes float64 `json:"writes"`
}

type cacheJSON struct {
	Hits   float64 `json:"hits"`
	Misses float64 `json:"misses"`
}

type filesJSON struct {
	// Public says download links are the bucket's own public URLs, which
	// never expire; otherwise they are signed and expire.
	Public bool `json:"public"`
}

// status answers GET /api/status.
func (s *Server) status(w http.ResponseWriter, r *http.Request) error {
	out := statusJSON{Pools: []poolJSON{}, Files: filesJSON{Public: s.publicURL != ""}}
	if p, ok := s.db.(storage.PoolReporter); ok {
		for _, st := range p.PoolStats() {
			out.Pools = append(out.Pools, poolJSON{Name: st.Name, InUse: st.InUse, Idle: st.Idle, Max: st.Max})
		}
	}
	if s.metrics != nil {
		err := s.metrics.each(func(family string, label func(string) string, v float64) {
			switch family {
			case "flystorage_http_requests_total":
				if !dataRoute(label("route")) {
					return
				}
				if m := label("method"); m == http.MethodGet || m == http.MethodHead {
					out.Requests.Reads += v
				} else {
					out.Requests.Writes += v
				}
			case "flystorage_cache_hits_total":
				out.Cache.Hits += v
			case "flystorage_cache_misses_total":
				out.Cache.Misses += v
			}
		})
		if err != nil {
			return err
		}
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

// dataRoute reports whether a route pattern ("GET /api/notes/{id}") reads
// or writes notes or files.
func dataRoute(route string) bool {
	_, path, _ := strings.Cut(route, " ")
	return strings.HasPrefix(path, "/api/notes") || strings.HasPrefix(path, "/api/files") || strings.HasPrefix(path, "/signed/")
}
