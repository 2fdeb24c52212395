package testenv

import "time"

// pollInterval is how often Eventually asks again: short enough that a
// test hardly waits past the event, long enough not to busy a small
// machine's two cores.
const pollInterval = 20 * time.Millisecond

// Eventually calls cond every 20ms until it returns true, and reports
// whether it did within timeout. It is the one way a test waits for
// another process or goroutine: a server to accept connections, a log line
// to appear, Redis to expire a key. The caller fails with what it was
// waiting for and what it saw:
//
//	if !testenv.Eventually(30*time.Second, func() bool { return strings.Contains(logs.String(), "backed up") }) {
//		t.Fatalf("no backup within 30s; logs:\n%s", logs)
//	}
//
// A test that waits for time itself moves an injected clock or runs in a
// testing/synctest bubble instead.
func Eventually(timeout time.Duration, cond func() bool) bool {
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	tick := time.NewTicker(pollInterval)
	defer tick.Stop()
	for !cond() {
		select {
		case <-deadline.C:
			return cond()
		case <-tick.C:
		}
	}
	return true
}
