package sqlite

import (
	"context"
	"os"
	"path/filepath"
	"sync"
	"testing"
)

// TestReadersKeepTheirConnections reads from more goroutines than
// database/sql keeps idle connections by default (2): every reader
// connection the pool opens must stay open for the next read, since
// opening one costs the pragmas again. (Notes have readers of their own,
// notereader.go; Ping reads through this pool, as every other read does.)
func TestReadersKeepTheirConnections(t *testing.T) {
	s := openTest(t)
	ctx := context.Background()
	var wg sync.WaitGroup
	for range 16 {
		wg.Go(func() {
			for range 200 {
				if err := s.Ping(ctx); err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
	st := s.readers.Stats()
	if st.MaxIdleClosed != 0 || st.MaxLifetimeClosed != 0 || st.MaxIdleTimeClosed != 0 {
		t.Errorf("reader connections were closed and reopened: %d for too many idle, %d for lifetime, %d for idle time (%d open of %d)",
			st.MaxIdleClosed, st.MaxLifetimeClosed, st.MaxIdleTimeClosed, st.OpenConnections, st.MaxOpenConnections)
	}
}

// TestCloseReleasesTheFiles opens and closes a store over and over: Close
// must leave no file open, the writer connection's included (SQLite keeps
// a connection whose prepared statements were not closed).
func TestCloseReleasesTheFiles(t *testing.T) {
	openFiles := func() int {
		fds, err := os.ReadDir("/proc/self/fd")
		if err != nil {
			t.Fatalf("counting open files: %v", err)
		}
		return len(fds)
	}
	path := filepath.Join(t.TempDir(), "app.db")
	ctx := context.Background()
	cycle := func() {
		s, err := Open(ctx, path)
		if err != nil {
			t.Fatal(err)
		}
		if err := s.CreateNote(ctx, note("cycle")); err != nil {
			t.Fatal(err)
		}
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
	}
	cycle() // the first open may keep what the process keeps anyway
	before := openFiles()
	for range 5 {
		cycle()
	}
	if after := openFiles(); after != before {
		t.Errorf("%d files open after 5 more opens and closes, %d before", after, before)
	}
}
