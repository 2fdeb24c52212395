package main

import (
	"fmt"
	"path/filepath"
	"runtime"
	"sync"
	"testing"
	"time"
)

// recordingTB is a testing.TB whose failures and cleanups the test sees.
type recordingTB struct {
	testing.TB
	mu       sync.Mutex
	failures []string
	cleanups []func()
}

func (r *recordingTB) Helper() {}

func (r *recordingTB) Errorf(format string, args ...any) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.failures = append(r.failures, fmt.Sprintf(format, args...))
}

func (r *recordingTB) Fatalf(format string, args ...any) {
	r.Errorf(format, args...)
	runtime.Goexit()
}

func (r *recordingTB) Cleanup(f func()) { r.cleanups = append(r.cleanups, f) }

// TestStartAppFailsFast: when the app exits before listening, startApp
// fails the test and its cleanup returns at once, instead of waiting
// forever for a result it already took.
func TestStartAppFailsFast(t *testing.T) {
	rec := &recordingTB{TB: t}
	started := make(chan struct{})
	go func() {
		defer close(started)
		startApp(rec, map[string]string{
			"DATABASE_URL":  "bogus://nowhere",
			"DATABASE_PATH": filepath.Join(t.TempDir(), "app.db"),
		})
	}()
	select {
	case <-started:
	case <-time.After(40 * time.Second):
		t.Fatal("startApp did not return within 40s for an app that cannot start")
	}
	if len(rec.failures) == 0 {
		t.Fatal("startApp did not fail for an app that cannot start")
	}
	cleaned := make(chan struct{})
	go func() {
		defer close(cleaned)
		for i := len(rec.cleanups) - 1; i >= 0; i-- {
			rec.cleanups[i]()
		}
	}()
	select {
	case <-cleaned:
	case <-time.After(shutdownDeadline + 10*time.Second):
		t.Fatal("startApp's cleanup hung after the app failed to start")
	}
	t.Logf("startApp reported: %v", rec.failures)
}
