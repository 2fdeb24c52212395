package server

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/example/flystorage/internal/storage"
)

// statusJSON is what the page's dashboard reads every two seconds besides
// /api/storage and /readyz: the figures that otherwise exist only on
// /metrics. It holds names and numbers, never a URL or a key. Counters are
// totals since the process started; the page turns two of them into a
// rate. The totals are absent when the database could not count them.
type statusJSON struct {
	Pools      []poolJSON   `json:"pools"`
	Requests   requestsJSON `json:"requests"`
	Cache      cacheJSON    `json:"cache"`
	Files      filesJSON    `json:"files"`
	NotesTotal *int64       `json:"notes_total,omitempty"`
	FilesTotal *int64       `json:"files_total,omitempty"`
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
	out.NotesTotal, out.FilesTotal = s.countTotals(r.Context())
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

// countEvery is how long /api/status reuses the totals it counted last.
// Counting reads a whole table or index on every engine, so the list
// routes never count (make bench measures GET /api/notes), and here the
// page's polling, in any number of tabs, costs one count of each per
// countEvery per process.
const countEvery = 5 * time.Second

// totals are the last count of notes and files that /api/status gives,
// and when it was taken on the service's clock. A count that failed is
// kept too, as absent, so a database that is down is not asked again on
// every poll.
type totals struct {
	mu           sync.Mutex
	at           time.Time // zero: never counted
	notes, files *int64
	failing      bool // the last count failed, and that was logged
}

// countTotals returns the totals, counting again when the last count is
// countEvery old (or the clock went back past it). A request that comes
// while another counts waits for that count instead of making its own.
// A database without storage.Counter gives none; one whose count fails
// gives none, and the failure is logged once until a count works again.
func (s *Server) countTotals(ctx context.Context) (notes, files *int64) {
	c, ok := s.db.(storage.Counter)
	if !ok {
		return nil, nil
	}
	t := &s.totals
	t.mu.Lock()
	defer t.mu.Unlock()
	now := s.now()
	if age := now.Sub(t.at); !t.at.IsZero() && age >= 0 && age < countEvery {
		return t.notes, t.files
	}
	// The count is shared with every request until the next, so one
	// request leaving must not cancel it.
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), checkTimeout)
	defer cancel()
	n, errNotes := c.CountNotes(ctx)
	f, errFiles := c.CountFiles(ctx)
	t.at, t.notes, t.files = now, nil, nil
	if errNotes == nil {
		t.notes = &n
	}
	if errFiles == nil {
		t.files = &f
	}
	switch err := errors.Join(errNotes, errFiles); {
	case err != nil && !t.failing:
		s.log.Warn("counting notes and files failed: /api/status gives no totals, and the page none, until a count works", "err", err)
		t.failing = true
	case err == nil:
		t.failing = false
	}
	return t.notes, t.files
}

// dataRoute reports whether a route pattern ("GET /api/notes/{id}") reads
// or writes notes or files.
func dataRoute(route string) bool {
	_, path, _ := strings.Cut(route, " ")
	return strings.HasPrefix(path, "/api/notes") || strings.HasPrefix(path, "/api/files") || strings.HasPrefix(path, "/signed/")
}
