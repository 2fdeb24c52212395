package main

import (
	"context"
	"io"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/example/flystorage/internal/app"
)

// testClock is the clock of every app a test runs; moveClock moves it.
var testClock clock

// runApp runs the app as main does, with getenv as its environment, its
// output to stdout and stderr, and on testClock, read at every use so that
// a move reaches a running server and ticks its jobs.
func runApp(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	return run(ctx, args, app.Options{Getenv: getenv, Stdout: stdout, Stderr: stderr,
		Clock: testClock.Now, NewTicker: testClock.NewTicker})
}

// moveClock moves the clock of the apps the test runs (runApp) to d from
// real time until the test ends, ticking the jobs whose next run that
// reaches.
func moveClock(t *testing.T, d time.Duration) {
	old := testClock.set(d)
	t.Cleanup(func() { testClock.set(old) })
}

// clock is real time moved by an offset, which the apps' servers read
// while a test moves it, and the tickers of the apps' jobs, which tick
// only when the offset moves past their next time.
type clock struct {
	offset atomic.Int64 // nanoseconds

	mu      sync.Mutex
	tickers []*ticker
}

// ticker is one job's schedule on a clock.
type ticker struct {
	c     chan time.Time
	every time.Duration
	next  time.Time
}

// Now is real time moved by the clock's offset.
func (c *clock) Now() time.Time { return time.Now().Add(time.Duration(c.offset.Load())) }

// NewTicker is app.Options.NewTicker on c.
func (c *clock) NewTicker(d time.Duration) (<-chan time.Time, func()) {
	c.mu.Lock()
	defer c.mu.Unlock()
	tk := &ticker{c: make(chan time.Time, 1), every: d, next: c.Now().Add(d)}
	c.tickers = append(c.tickers, tk)
	return tk.c, func() {
		c.mu.Lock()
		defer c.mu.Unlock()
		c.tickers = slices.DeleteFunc(c.tickers, func(x *ticker) bool { return x == tk })
	}
}

// set moves the clock to offset from real time and returns the offset it
// had. Each ticker whose next time that reaches ticks once, as a
// time.Ticker drops the ticks a busy job misses.
func (c *clock) set(offset time.Duration) time.Duration {
	c.mu.Lock()
	defer c.mu.Unlock()
	old := time.Duration(c.offset.Swap(int64(offset)))
	now := c.Now()
	for _, tk := range c.tickers {
		if now.Before(tk.next) {
			continue
		}
		for !now.Before(tk.next) {
			tk.next = tk.next.Add(tk.every)
		}
		select {
		case tk.c <- now:
		default:
		}
	}
	return old
}

// scheduled reports whether a job is scheduled every d on c.
func (c *clock) scheduled(d time.Duration) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return slices.ContainsFunc(c.tickers, func(tk *ticker) bool { return tk.every == d })
}
