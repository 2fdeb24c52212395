package main

import (
	"context"
	"io"
	"time"

	"github.com/example/flystorage/internal/app"
)

// testNow is the clock of every app a test runs; moveClock moves it.
var testNow = time.Now

// runApp runs the app as main does, with getenv as its environment, its
// output to stdout and stderr, and on testNow, read at every use so that
// a move reaches a running server.
func runApp(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	return run(ctx, args, app.Options{Getenv: getenv, Stdout: stdout, Stderr: stderr,
		Clock: func() time.Time { return testNow() }})
}
