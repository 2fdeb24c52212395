package main

import (
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/example/flystorage/internal/testenv"
)

// TestMain lets a test run this package's main in a child process: the test
// binary re-executed with FLYSTORAGE_RUN_APP=1 is the app.
func TestMain(m *testing.M) {
	if os.Getenv("FLYSTORAGE_RUN_APP") == "1" {
		main()
		return
	}
	os.Exit(m.Run())
}

// TestGracefulShutdown sends SIGTERM to the app while an upload is still
// streaming: /readyz turns 503 at once, the upload completes with 201, and
// the process exits 0.
func TestGracefulShutdown(t *testing.T) {
	dir := t.TempDir()
	cmd := exec.Command(os.Args[0])
	cmd.Env = []string{"FLYSTORAGE_RUN_APP=1", "PORT=0", "DATABASE_PATH=" + filepath.Join(dir, "app.db"), "SHUTDOWN_TIMEOUT=20s"}
	logs := newLogSink()
	cmd.Stdout, cmd.Stderr = logs, logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	defer func() {
		select {
		case <-exited:
		default:
			cmd.Process.Kill()
		}
	}()
	var base string
	select {
	case addr := <-logs.listening:
		_, port, _ := net.SplitHostPort(addr)
		base = "http://127.0.0.1:" + port
	case <-time.After(30 * time.Second):
		t.Fatalf("the app did not listen; logs:\n%s", logs)
	}

	// An upload whose body arrives in two halves, with the signal between.
	pr, pw := io.Pipe()
	const boundary = "shutdown-test-boundary"
	result := make(chan *http.Response, 1)
	go func() {
		req, _ := http.NewRequest("POST", base+"/api/files", pr)
		req.Header.Set("Content-Type", "multipart/form-data; boundary="+boundary)
		res, err := client.Do(req)
		if err != nil {
			t.Errorf("upload: %v", err)
			res = nil
		}
		result <- res
	}()
	fmt.Fprintf(pw, "--%s\r\nContent-Disposition: form-data; name=\"file\"; filename=\"slow.bin\"\r\n\r\n", boundary)
	pw.Write(make([]byte, 1<<20))

	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if !testenv.Eventually(30*time.Second, func() bool { return strings.Contains(logs.String(), "shutting down") }) {
		t.Fatalf("no \"shutting down\" in the log within 30s of SIGTERM:\n%s", logs.String())
	}
	fresh := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
	if res, err := fresh.Get(base + "/readyz"); err != nil || res.StatusCode != 503 {
		t.Errorf("/readyz right after SIGTERM: %v %v, want 503", res, err)
	} else {
		res.Body.Close()
	}

	pw.Write(make([]byte, 1<<20))
	fmt.Fprintf(pw, "\r\n--%s--\r\n", boundary)
	pw.Close()
	if res := <-result; res == nil || res.StatusCode != 201 {
		t.Errorf("the upload in flight at SIGTERM: %v, want 201", res)
	} else {
		res.Body.Close()
	}
	select {
	case err := <-exited:
		if err != nil {
			t.Errorf("the app exited with %v, want 0; logs:\n%s", err, logs)
		}
	case <-time.After(30 * time.Second):
		t.Fatalf("the app did not exit after SIGTERM; logs:\n%s", logs)
	}
	if !strings.Contains(logs.String(), "msg=stopped") {
		t.Errorf("no clean stop in the logs:\n%s", logs)
	}
}
