package main

import (
	"bytes"
	"fmt"
	"strings"
	"sync"
	"testing"
)

// slowWriter records every Write, each a batch of lines.
type slowWriter struct {
	mu      sync.Mutex
	out     bytes.Buffer
	batches int
	gate    chan struct{} // each Write waits for a value, when set
}

func (s *slowWriter) Write(p []byte) (int, error) {
	if s.gate != nil {
		<-s.gate
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.batches++
	return s.out.Write(p)
}

// TestLogWriterKeepsEveryLineInOrder: lines from many goroutines all come
// out whole and, per goroutine, in order; and lines that arrive while the
// output is busy share one write.
func TestLogWriterKeepsEveryLineInOrder(t *testing.T) {
	out := &slowWriter{gate: make(chan struct{})}
	w := newLogWriter(out)
	w.Write([]byte("first\n")) // the writer takes it, and blocks in out
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			for i := range 100 {
				fmt.Fprintf(w, "g%d line %d\n", g, i)
			}
		})
	}
	wg.Wait() // every line queued while the output was blocked
	close(out.gate)
	w.Flush()
	w.Close()

	lines := strings.Split(strings.TrimSuffix(out.out.String(), "\n"), "\n")
	if len(lines) != 801 || lines[0] != "first" {
		t.Fatalf("%d lines, first %q; want 801, starting with first", len(lines), lines[0])
	}
	next := map[string]int{}
	for _, l := range lines[1:] {
		var g, i int
		if _, err := fmt.Sscanf(l, "g%d line %d", &g, &i); err != nil {
			t.Fatalf("a torn line: %q", l)
		}
		key := fmt.Sprint(g)
		if i != next[key] {
			t.Fatalf("goroutine %d: line %d came after line %d", g, i, next[key]-1)
		}
		next[key]++
	}
	if out.batches > 3 {
		t.Errorf("800 lines queued behind one write took %d writes, want them batched", out.batches)
	}
}
