package testenv

import (
	"os"
	"os/exec"
	"testing"
)

// Chromium returns the path of a Chromium for browser tests: CHROMIUM_BIN,
// or Debian's chromium package (`make test` installs it as root).
func Chromium(t testing.TB) string {
	t.Helper()
	if p := os.Getenv("CHROMIUM_BIN"); p != "" {
		return p
	}
	for _, name := range []string{"chromium", "chromium-browser"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	need(t, "CHROMIUM_BIN", "the path of a Chromium (apt-get install chromium)")
	return ""
}

// AxeCore returns the path of axe-core's axe.min.js for the page's
// accessibility test: TEST_AXE_JS, which `make test` sets from
// scripts/axe.sh.
func AxeCore(t testing.TB) string {
	t.Helper()
	p := os.Getenv("TEST_AXE_JS")
	if p == "" {
		need(t, "TEST_AXE_JS", "the path of axe-core's axe.min.js (scripts/axe.sh installs it)")
	}
	return p
}
