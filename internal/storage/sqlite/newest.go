package sqlite

import (
	"sync"
	"sync/atomic"

	"github.com/example/flystorage/internal/storage"
)

// maxNewestBytes bounds the titles and bodies the newest-notes cache
// keeps; a larger first page is not cached.
const maxNewestBytes = 256 << 10

// newest caches the first page of notes (no cursor), the page every visit
// loads, for one page size at a time. This process is the file's only
// writer (the writer goroutine), so it knows exactly when the page changes:
// every notes write bumps gen after its COMMIT and before its caller hears
// back, and a page read under an older gen is never served. A write made
// to the file by another program (the sqlite3 shell) is not seen until the
// app's next notes write.
type newest struct {
	gen atomic.Uint64

	mu    sync.Mutex
	page  []storage.Note
	next  string
	limit int
	at    uint64 // gen the page was read under
}

// changed records a notes write. Called after the write returned, whether
// or not it failed: a failed write changes nothing, and a spare bump only
// costs a read.
func (c *newest) changed() { c.gen.Add(1) }

// get returns a copy of the cached page of limit notes if it is current,
// and the gen to store a fresh read under otherwise.
func (c *newest) get(limit int) (page []storage.Note, next string, ok bool, gen uint64) {
	gen = c.gen.Load()
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.page == nil || c.limit != limit || c.at != gen {
		return nil, "", false, gen
	}
	return append([]storage.Note(nil), c.page...), c.next, true, gen
}

// put caches a page read under gen (which get returned before the read
// began), unless it is too large.
func (c *newest) put(limit int, gen uint64, page []storage.Note, next string) {
	size := 0
	for _, n := range page {
		size += len(n.Title) + len(n.Body)
	}
	if size > maxNewestBytes {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.page, c.next, c.limit, c.at = append([]storage.Note(nil), page...), next, limit, gen
}
