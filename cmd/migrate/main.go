// Command migrate applies the schema migrations of the database the
// environment names (goose SQL for Postgres, MySQL and SQLite; versioned
// steps for MongoDB). It is fly.toml's release_command for a database
// server. SQLite apps migrate themselves at start, since the release
// machine has no volume.
//
//	migrate [up|down|down-to VERSION|status|version]   (default: up)
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strconv"
	"syscall"

	"github.com/example/flystorage/internal/app"
	"github.com/example/flystorage/internal/config"
	"github.com/example/flystorage/internal/storage"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Getenv, os.Stdout)
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, "migrate:", err)
	}
	os.Exit(config.ExitCode(err))
}

// run parses the command, loads the configuration as the app does
// (internal/app), and drives the selected database's migrations.
func run(ctx context.Context, args []string, getenv func(string) string, stdout io.Writer) error {
	command, target, err := parseArgs(args)
	if err != nil {
		return err
	}
	setup, err := app.Load(getenv)
	if err != nil {
		return err
	}
	m, err := setup.DB.Migrations(ctx)
	if err != nil {
		return fmt.Errorf("opening %s: %w", setup.DB.Redacted(), err)
	}
	defer m.Close()
	return apply(ctx, m, command, target, stdout)
}

// parseArgs returns the command (up by default) and, for down-to, its
// version.
func parseArgs(args []string) (command string, target int64, err error) {
	command = "up"
	if len(args) > 0 {
		command = args[0]
	}
	switch command {
	case "up", "down", "status", "version":
		if len(args) > 1 {
			return "", 0, config.UsageError(fmt.Sprintf("%s takes no arguments", command))
		}
	case "down-to":
		v, err := strconv.ParseInt(argOrEmpty(args, 1), 10, 64)
		if err != nil || v < 0 || len(args) > 2 {
			return "", 0, config.UsageError("down-to takes one version number, e.g. `migrate down-to 0`")
		}
		target = v
	default:
		return "", 0, config.UsageError(fmt.Sprintf("unknown command %q: use up, down, down-to VERSION, status or version", command))
	}
	return command, target, nil
}

// apply runs command on m and prints what it did.
func apply(ctx context.Context, m storage.Migrations, command string, target int64, stdout io.Writer) error {
	where := m.Where()
	switch command {
	case "up":
		results, err := m.Up(ctx)
		printResults(stdout, "up", results)
		if err != nil {
			return fmt.Errorf("migrating %s up: %w", where, err)
		}
		if len(results) == 0 {
			fmt.Fprintln(stdout, "no pending migrations")
		}
	case "down":
		result, err := m.Down(ctx)
		if errors.Is(err, storage.ErrNothingToRollBack) {
			fmt.Fprintln(stdout, "nothing to roll back: no migration is applied")
			return nil
		}
		if result.Version != 0 {
			printResults(stdout, "down", []storage.MigrationResult{result})
		}
		if err != nil {
			return fmt.Errorf("migrating %s down: %w", where, err)
		}
	case "down-to":
		results, err := m.DownTo(ctx, target)
		printResults(stdout, "down", results)
		if err != nil {
			return fmt.Errorf("migrating %s down to %d: %w", where, target, err)
		}
		if len(results) == 0 {
			fmt.Fprintf(stdout, "nothing to roll back: the schema is at or below version %d\n", target)
		}
	case "status":
		statuses, err := m.Status(ctx)
		if err != nil {
			return fmt.Errorf("reading the status of %s: %w", where, err)
		}
		for _, s := range statuses {
			applied := "pending"
			if s.Applied {
				applied = "applied " + s.AppliedAt.UTC().Format("2006-01-02 15:04:05")
			}
			fmt.Fprintf(stdout, "%5d  %-40s %s\n", s.Version, s.Name, applied)
		}
	case "version":
		v, err := m.Version(ctx)
		if err != nil {
			return fmt.Errorf("reading the version of %s: %w", where, err)
		}
		fmt.Fprintln(stdout, v)
	}
	return nil
}

func argOrEmpty(args []string, i int) string {
	if i < len(args) {
		return args[i]
	}
	return ""
}

func printResults(w io.Writer, direction string, results []storage.MigrationResult) {
	for _, r := range results {
		fmt.Fprintf(w, "%-4s %s (%s)\n", direction, r.Name, r.Duration.Round(100_000))
	}
}
