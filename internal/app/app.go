// Package app is flystorage's composition root: it loads the whole
// configuration, opens the stores, builds the service and the HTTP
// server, runs the periodic jobs, and shuts down. What expires (links,
// upload intents, the sweep's grace) follows the clock in
// Options; the jobs' schedule runs on real tickers. It is the one package
// that knows every concrete type; below it nothing reaches up
// (docs/architecture.md, "Layers"). cmd/app parses its arguments and
// calls Run.
package app

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/example/flystorage/internal/cache"
	"github.com/example/flystorage/internal/config"
)

// Options are what the app takes from the process around it.
type Options struct {
	// Getenv reads the environment (os.Getenv).
	Getenv func(string) string
	// Stdout gets a command's result; Stderr the log and progress.
	Stdout, Stderr io.Writer
	// Clock is the app's time: upload intents, signed and presigned links
	// and the sweep expire on it. nil means time.Now. Tests move
	// it instead of sleeping; the app reads it at every use, so a move
	// reaches a running server.
	Clock func() time.Time
}

// Commands are what Run runs: serve (the default), sweep, restore and
// verify.
var Commands = []string{"serve", "sweep", "restore", "verify"}

// Run runs command with args (only restore takes any) until ctx is
// cancelled: it loads the configuration, logs it, opens the stores and
// Redis, and serves or runs the one-off command. Its errors are wrapped
// with what it was doing; config.ExitCode turns them into exit statuses.
func Run(ctx context.Context, command string, args []string, o Options) error {
	setup, err := Load(o.Getenv)
	if err != nil {
		return err
	}
	setup.Clock = o.Clock
	if setup.Clock == nil {
		setup.Clock = time.Now
	}
	log := newLogger(setup.Config, o.Stderr)
	log.Info("starting", "command", command, "config", setup)

	switch command {
	case "restore":
		// Restore runs before the app: it must not open, and so create or
		// migrate, the database it is about to replace.
		return restore(ctx, setup, args, o.Stdout, o.Stderr, log)
	case "verify":
		return verify(ctx, setup, o.Stdout, log)
	}

	// SQLite's replica in the bucket (replication.go): the lease, a
	// restore onto an empty volume, then Litestream; before the database
	// opens, and closed after it.
	var repl replicaNode
	if command == "serve" {
		if repl, ctx, err = openReplication(ctx, &setup, log); err != nil {
			return stoppedWaiting(ctx, err)
		}
		defer closeReplication(repl, log)
	}
	st, err := Open(ctx, setup, log)
	if err != nil {
		return err
	}
	defer st.Close()
	if repl != nil {
		if err := repl.Attach(st.Primary); err != nil {
			return err
		}
	}
	redis, err := cache.Open(ctx, setup.Cache, log)
	if err != nil {
		return err
	}
	defer redis.Close()

	switch command {
	case "sweep":
		return sweepOnce(ctx, setup, st, redis, o.Stdout, log)
	case "serve":
		err := serve(ctx, setup, st, redis, repl, log)
		if repl != nil {
			err = errors.Join(err, repl.Err()) // the lease lost, or taken over: restart
		}
		return err
	}
	return config.UsageError(fmt.Sprintf("unknown command %q", command))
}
