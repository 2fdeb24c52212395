package server

import (
	"bufio"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/example/flystorage/internal/service"
	"github.com/example/flystorage/internal/testenv"
)

// TestSlowJSONBodyGetsAnAnswer: a POST declaring 100 bytes and sending 4
// is answered 408 once the body read deadline passes, instead of holding
// the connection forever.
func TestSlowJSONBodyGetsAnAnswer(t *testing.T) {
	db, blobs := testenv.LocalStores(t)
	defer func(d time.Duration) { jsonBodyTimeout = d }(jsonBodyTimeout)
	jsonBodyTimeout = 100 * time.Millisecond
	srv := httptest.NewServer(New(Options{Service: service.New(service.Options{DB: db, Blobs: blobs, KeyPrefix: "files/", MaxUpload: 1 << 20}), MaxUploadBytes: 1 << 20}))
	defer srv.Close()

	conn, err := net.Dial("tcp", srv.Listener.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	io.WriteString(conn, "POST /api/notes HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{\"ti")
	// The answer must come by the server's deadline; 10 s bounds the wait.
	conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	status, err := bufio.NewReader(conn).ReadString('\n')
	if err != nil {
		t.Fatalf("no answer to a stalled body: %v", err)
	}
	if !strings.Contains(status, " 408 ") {
		t.Errorf("stalled body answered %q, want 408", strings.TrimSpace(status))
	}
}

// fakeConn records the read deadlines set on it.
type fakeConn struct{ deadlines []time.Time }

func (c *fakeConn) SetReadDeadline(t time.Time) error {
	c.deadlines = append(c.deadlines, t)
	return nil
}

// chunks returns its chunks one Read at a time, then err.
type chunks struct {
	parts []string
	err   error
}

func (c *chunks) Read(p []byte) (int, error) {
	if len(c.parts) == 0 {
		return 0, c.err
	}
	n := copy(p, c.parts[0])
	c.parts = c.parts[1:]
	return n, nil
}

// TestProgressDeadlineMovesWithBytes: every Read that brings bytes pushes
// the deadline to now+idle; a Read that brings none leaves it; Stop clears
// it; a deadline error becomes errStalled naming the idle time.
func TestProgressDeadlineMovesWithBytes(t *testing.T) {
	clock := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	now := func() time.Time { return clock }
	conn := &fakeConn{}
	src := &chunks{parts: []string{"ab", "", "cd"}, err: os.ErrDeadlineExceeded}
	r := newProgressDeadline(src, conn, 30*time.Second, now)
	if len(conn.deadlines) != 1 || !conn.deadlines[0].Equal(clock.Add(30*time.Second)) {
		t.Fatalf("deadlines after start: %v, want one at now+30s", conn.deadlines)
	}
	buf := make([]byte, 8)
	for i, step := range []time.Duration{5 * time.Second, 10 * time.Second, 20 * time.Second} {
		clock = clock.Add(step)
		n, err := r.Read(buf)
		if err != nil {
			t.Fatalf("read %d: %v", i, err)
		}
		want := []int{2, 2, 3}[i] // the empty read sets nothing
		if len(conn.deadlines) != want || (n > 0 && !conn.deadlines[len(conn.deadlines)-1].Equal(clock.Add(30*time.Second))) {
			t.Fatalf("after read %d (%d bytes): deadlines %v", i, n, conn.deadlines)
		}
	}
	_, err := r.Read(buf)
	if !errors.Is(err, errStalled) || !strings.Contains(err.Error(), "30s") {
		t.Errorf("deadline error: %v, want errStalled naming 30s", err)
	}
	r.Stop()
	if last := conn.deadlines[len(conn.deadlines)-1]; !last.IsZero() {
		t.Errorf("Stop left deadline %v, want none", last)
	}
}

// TestProgressDeadlineOnARealConnection: an upload body that stops moving
// fails with errStalled at the idle deadline, on a real connection.
func TestProgressDeadlineOnARealConnection(t *testing.T) {
	got := make(chan error, 1)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		pr := newProgressDeadline(r.Body, http.NewResponseController(w), 100*time.Millisecond, time.Now)
		defer pr.Stop()
		_, err := io.Copy(io.Discard, pr)
		got <- err
	}))
	defer srv.Close()
	conn, err := net.Dial("tcp", srv.Listener.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	io.WriteString(conn, "PUT / HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\nabcd")
	select {
	case err := <-got:
		if !errors.Is(err, errStalled) {
			t.Errorf("stalled upload: %v, want errStalled", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("a stalled upload was still being read after 10s")
	}
}
