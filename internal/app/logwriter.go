package app

import (
	"io"
	"sync"
	"time"
)

// maxLogBacklog bounds the lines waiting to be written: past it, a logging
// call waits for the output, as an unbatched write would.
const maxLogBacklog = 1 << 20

// logPace is the least time from the start of one write of log lines to
// the next: under load, the lines of that moment go out together.
const logPace = 5 * time.Millisecond

// logWriter batches log lines. One goroutine writes: a line goes out at
// once when the output is idle, and the lines that arrive while a write is
// in progress, or within logPace of its start, go out together in the next
// one, as a group commit does. Under load that is one system call, and one
// wake-up of the writer, for many request lines instead of one each, and no
// request waits on the output; at rest nothing waits at all. Close writes
// what is left at once.
type logWriter struct {
	out   io.Writer
	after func(time.Duration) <-chan time.Time // time.After; tests stop time

	mu      sync.Mutex
	changed *sync.Cond // the backlog or the writer's state changed
	buf     []byte     // lines waiting
	spare   []byte     // the last batch's memory, for reuse
	writing bool
	closed  bool
	closing chan struct{} // closed by Close, to end a pause
	done    chan struct{}
}

func newLogWriter(out io.Writer) *logWriter { return startLogWriter(out, time.After) }

// startLogWriter is newLogWriter with after in place of time.After.
func startLogWriter(out io.Writer, after func(time.Duration) <-chan time.Time) *logWriter {
	w := &logWriter{out: out, after: after, closing: make(chan struct{}), done: make(chan struct{})}
	w.changed = sync.NewCond(&w.mu)
	go w.loop()
	return w
}

// Write queues a copy of p for the writer goroutine.
func (w *logWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	for len(w.buf) > maxLogBacklog && !w.closed {
		w.changed.Wait()
	}
	if w.closed {
		return w.out.Write(p) // after Close, as if unbatched
	}
	w.buf = append(w.buf, p...)
	w.changed.Broadcast()
	return len(p), nil
}

func (w *logWriter) loop() {
	defer close(w.done)
	w.mu.Lock()
	defer w.mu.Unlock()
	for {
		for len(w.buf) == 0 && !w.closed {
			w.changed.Wait()
		}
		if len(w.buf) == 0 {
			return // closed, and everything written
		}
		batch := w.buf
		w.buf, w.spare = w.spare, nil
		w.writing = true
		w.mu.Unlock()
		pace := w.after(logPace)
		w.out.Write(batch)
		w.mu.Lock()
		w.writing = false
		w.spare = batch[:0]
		w.changed.Broadcast()
		if !w.closed {
			w.mu.Unlock()
			select {
			case <-pace:
			case <-w.closing:
			}
			w.mu.Lock()
		}
	}
}

// Flush waits until every line queued so far is written.
func (w *logWriter) Flush() {
	w.mu.Lock()
	defer w.mu.Unlock()
	for len(w.buf) > 0 || w.writing {
		w.changed.Wait()
	}
}

// Close writes what is queued and stops the writer goroutine.
func (w *logWriter) Close() error {
	w.mu.Lock()
	if !w.closed {
		w.closed = true
		close(w.closing)
	}
	w.changed.Broadcast()
	w.mu.Unlock()
	<-w.done
	return nil
}
