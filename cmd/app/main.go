// Command app serves flystorage: notes in Postgres or SQLite, files in an S3
// bucket or a local directory, chosen by the environment (docs/configuration.md).
//
//	app [serve]                                   serve HTTP (the default)
//	app sweep                                     remove file objects that no row names
//	app restore [--timestamp T --output PATH] [--force|--if-missing]   SQLite from its replica
//	app verify                                    restore the replica into a temporary file and check it
//
// It parses its arguments and hands them to the composition root,
// internal/app, which does the rest.
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"slices"
	"syscall"

	"github.com/example/flystorage/internal/app"
	"github.com/example/flystorage/internal/config"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], app.Options{Getenv: os.Getenv, Stdout: os.Stdout, Stderr: os.Stderr})
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, "app:", err)
	}
	os.Exit(config.ExitCode(err))
}

// usage is the one line a bad command line gets.
const usage = "usage: app [serve | sweep | verify | restore [--timestamp T --output PATH] [--force|--if-missing]]"

// run checks the command args name and runs it, serving until ctx is
// cancelled. Tests start the whole app through it, with their own
// environment, output and clock in o.
func run(ctx context.Context, args []string, o app.Options) error {
	command := "serve"
	if len(args) > 0 {
		command, args = args[0], args[1:]
	}
	if !slices.Contains(app.Commands, command) || (command != "restore" && len(args) > 0) {
		return config.UsageError(usage)
	}
	return app.Run(ctx, command, args, o)
}
