package sqlite

import (
	"context"
	"sync"
	"testing"
)

// TestReadersKeepTheirConnections reads from more goroutines than
// database/sql keeps idle connections by default (2): every reader
// connection the pool opens must stay open for the next read, since
// opening one costs the pragmas and every statement prepared again.
func TestReadersKeepTheirConnections(t *testing.T) {
	s := openTest(t)
	ctx := context.Background()
	n := note("read me")
	if err := s.CreateNote(ctx, n); err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	for range 16 {
		wg.Go(func() {
			for range 200 {
				if _, err := s.GetNote(ctx, n.ID); err != nil {
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
