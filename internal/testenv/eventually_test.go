package testenv

import (
	"testing"
	"testing/synctest"
	"time"
)

// TestEventually runs in a synctest bubble, so its clock moves only when
// every goroutine waits: the timings below are exact, and the test takes
// no real time.
func TestEventually(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		start, calls := time.Now(), 0
		if !Eventually(time.Second, func() bool { calls++; return calls == 3 }) {
			t.Error("Eventually = false for a condition that held on the third call")
		}
		if waited := time.Since(start); waited != 2*pollInterval {
			t.Errorf("Eventually waited %v for a condition that held on the third call, want %v", waited, 2*pollInterval)
		}

		start = time.Now()
		if Eventually(time.Second, func() bool { return false }) {
			t.Error("Eventually = true for a condition that never held")
		}
		if waited := time.Since(start); waited != time.Second {
			t.Errorf("Eventually gave up after %v, want the timeout (1s)", waited)
		}

		start = time.Now()
		if !Eventually(time.Second, func() bool { return time.Since(start) >= time.Second }) {
			t.Error("Eventually = false for a condition that held at the deadline")
		}
	})
}
