package app

import (
	"bytes"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"
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

// TestLogWriterPaces: a line written at rest goes out at once, and the
// lines that come within logPace of that write wait for the pace and go out
// together, not one write each. The test stops time: the pause ends when
// it says so.
func TestLogWriterPaces(t *testing.T) {
	out := &slowWriter{}
	paused := make(chan chan time.Time, 1)
	w := startLogWriter(out, func(d time.Duration) <-chan time.Time {
		if d != logPace {
			t.Errorf("paused for %s, want logPace", d)
		}
		c := make(chan time.Time, 1)
		paused <- c
		return c
	})
	defer w.Close()

	w.Write([]byte("at rest\n"))
	pace := <-paused // the writer took the line and paces from its write
	w.Flush()
	for i := range 50 {
		fmt.Fprintf(w, "burst %d\n", i)
	}
	out.mu.Lock()
	batches, text := out.batches, out.out.String()
	out.mu.Unlock()
	if batches != 1 || text != "at rest\n" {
		t.Fatalf("before the pace ended: %d writes of %q, want the first line alone", batches, text)
	}
	pace <- time.Time{}
	next := <-paused
	w.Flush()
	out.mu.Lock()
	batches, lines := out.batches, strings.Count(out.out.String(), "\n")
	out.mu.Unlock()
	if batches != 2 || lines != 51 {
		t.Fatalf("after the pace: %d writes, %d lines; want the 50 in one write", batches, lines)
	}
	next <- time.Time{}
}

// TestLogWriterCloseEndsAPause: Close does not wait out the pace.
func TestLogWriterCloseEndsAPause(t *testing.T) {
	out := &slowWriter{}
	paused := make(chan struct{}, 1)
	w := startLogWriter(out, func(time.Duration) <-chan time.Time {
		paused <- struct{}{}
		return nil // a pace that never ends
	})
	w.Write([]byte("one\n"))
	<-paused
	w.Write([]byte("two\n"))
	w.Close()
	if got := out.out.String(); got != "one\ntwo\n" {
		t.Fatalf("after Close: %q, want both lines", got)
	}
}
