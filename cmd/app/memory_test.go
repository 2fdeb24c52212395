package main

import (
	"bufio"
	"net"
	"net/http"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// TestStartupLeavesNoHeapBehind: the collector's heap goal when the app
// starts serving is the app's own, a few MiB, not twice what opening the
// stores left (goose keeps 16 MiB of migration buffers, which put it at
// 18 to 34 MiB), which an upload's garbage would then fill
// (docs/performance.md).
func TestStartupLeavesNoHeapBehind(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	metricsPort := strconv.Itoa(ln.Addr().(*net.TCPAddr).Port)
	ln.Close()
	startCrashProc(t, map[string]string{
		"DATABASE_PATH": filepath.Join(t.TempDir(), "app.db"),
		"METRICS_PORT":  metricsPort,
	})
	res, err := http.Get("http://127.0.0.1:" + metricsPort + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	sc := bufio.NewScanner(res.Body)
	for sc.Scan() {
		v, ok := strings.CutPrefix(sc.Text(), "go_memstats_next_gc_bytes ")
		if !ok {
			continue
		}
		goal, err := strconv.ParseFloat(v, 64)
		if err != nil {
			t.Fatal(err)
		}
		if goal > 12<<20 {
			t.Errorf("heap goal after start = %.1f MiB, want at most 12 MiB", goal/(1<<20))
		}
		return
	}
	t.Fatal("no go_memstats_next_gc_bytes in /metrics")
}
