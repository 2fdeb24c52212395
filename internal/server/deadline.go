package server

import (
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"time"
)

// Body read deadlines. Without them a client that declares a body and
// stops sending holds a connection and a goroutine forever.
// jsonBodyTimeout bounds reading a JSON request body, which is small; a
// variable so that tests can shorten it.
var jsonBodyTimeout = 10 * time.Second

const (
	// uploadIdleTimeout fails an upload when no byte of it arrives for this
	// long; an upload that keeps moving, however slowly, never times out.
	uploadIdleTimeout = 30 * time.Second
)

// errStalled is the error of a request body that stopped arriving.
var errStalled = errors.New("the request body stopped arriving")

// readDeadliner is the connection's read deadline: an
// *http.ResponseController in the server, a recorder in tests.
type readDeadliner interface {
	SetReadDeadline(time.Time) error
}

// progressDeadline reads a request body, moving the connection's read
// deadline to now()+idle every time bytes arrive, so that a body that stops
// for idle fails with errStalled while a slow one that keeps moving works.
// Stop clears the deadline; call it when done with the body.
type progressDeadline struct {
	r    io.Reader
	conn readDeadliner
	idle time.Duration
	now  func() time.Time
}

// newProgressDeadline starts the first deadline at now()+idle. A writer
// whose connection has no deadlines (http.ErrNotSupported) reads as is.
func newProgressDeadline(r io.Reader, conn readDeadliner, idle time.Duration, now func() time.Time) *progressDeadline {
	p := &progressDeadline{r: r, conn: conn, idle: idle, now: now}
	conn.SetReadDeadline(now().Add(idle))
	return p
}

func (p *progressDeadline) Read(b []byte) (int, error) {
	n, err := p.r.Read(b)
	if n > 0 {
		p.conn.SetReadDeadline(p.now().Add(p.idle))
	}
	if err != nil && errors.Is(err, os.ErrDeadlineExceeded) {
		err = fmt.Errorf("%w: no bytes for %s", errStalled, p.idle)
	}
	return n, err
}

// Stop clears the read deadline, so that it cannot cut a later request on
// the same connection.
func (p *progressDeadline) Stop() { p.conn.SetReadDeadline(time.Time{}) }

// stalledError is what the client sees of errStalled.
func stalledError(err error) error {
	return &apiError{status: http.StatusRequestTimeout, code: "timeout",
		msg: "the request body stopped arriving; send it again", cause: err}
}
