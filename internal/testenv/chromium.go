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
