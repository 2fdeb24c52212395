package testenv

import (
	"os"
	"os/exec"
	"strings"
	"testing"
)

// SmallFS mounts a tmpfs of size (mount's syntax, e.g. "2m") on a fresh
// directory and returns it, unmounted when the test ends: a real file
// system that fills up, for tests of a full disk. Mounting needs root
// (CI and `make test` run as root); elsewhere the test skips, or fails
// under CI.
func SmallFS(t testing.TB, size string) string {
	t.Helper()
	dir := t.TempDir()
	out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size="+size, "tmpfs", dir).CombinedOutput()
	if err != nil {
		why := "mounting a " + size + " tmpfs for a full-disk test: " + strings.TrimSpace(string(out)) + " (" + err.Error() + "); run the tests as root"
		if os.Getenv("CI") != "" {
			t.Fatal(why)
		}
		t.Skip(why)
	}
	// Lazy, so that a file a failed test left open cannot keep it mounted.
	t.Cleanup(func() { exec.Command("umount", "-l", dir).Run() })
	return dir
}
