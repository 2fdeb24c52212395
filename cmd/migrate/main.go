// Command migrate applies the embedded goose migrations to the database the
// environment names. It is fly.toml's release_command for Postgres. SQLite
// apps migrate themselves at start, since the release machine has no volume.
//
//	migrate [up|down|down-to VERSION|status|version]   (default: up)
package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path"
	"strconv"
	"syscall"

	"github.com/pressly/goose/v3"

	"github.com/example/flystorage/internal/config"
	"github.com/example/flystorage/internal/storage/backend"
	"github.com/example/flystorage/migrations"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Getenv, os.Stdout, os.Stderr)
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, "migrate:", err)
	}
	os.Exit(config.ExitCode(err))
}

func run(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	command := "up"
	if len(args) > 0 {
		command = args[0]
	}
	var target int64
	switch command {
	case "up", "down", "status", "version":
		if len(args) > 1 {
			return config.UsageError(fmt.Sprintf("%s takes no arguments", command))
		}
	case "down-to":
		v, err := strconv.ParseInt(argOrEmpty(args, 1), 10, 64)
		if err != nil || v < 0 || len(args) > 2 {
			return config.UsageError("down-to takes one version number, e.g. `migrate down-to 0`")
		}
		target = v
	default:
		return config.UsageError(fmt.Sprintf("unknown command %q: use up, down, down-to VERSION, status or version", command))
	}

	cfg, err := config.Load(getenv)
	if err != nil {
		return err
	}
	db, dialect, lock, err := backend.OpenSQL(cfg)
	if err != nil {
		return fmt.Errorf("opening the database: %w", err)
	}
	defer db.Close()
	p, err := migrations.NewProvider(dialect, db, lock)
	if err != nil {
		return err
	}

	where := cfg.DatabasePath
	switch {
	case cfg.DirectDatabaseURL != "":
		where = config.RedactURL(cfg.DirectDatabaseURL)
	case cfg.Database == config.Postgres:
		where = config.RedactURL(cfg.DatabaseURL)
	}
	switch command {
	case "up":
		results, err := p.Up(ctx)
		printResults(stdout, results)
		if err != nil {
			return fmt.Errorf("migrating %s up: %w", where, err)
		}
		if len(results) == 0 {
			fmt.Fprintln(stdout, "no pending migrations")
		}
	case "down":
		result, err := p.Down(ctx)
		if result != nil {
			printResults(stdout, []*goose.MigrationResult{result})
		}
		if err != nil {
			return fmt.Errorf("migrating %s down: %w", where, err)
		}
	case "down-to":
		results, err := p.DownTo(ctx, target)
		printResults(stdout, results)
		if err != nil {
			return fmt.Errorf("migrating %s down to %d: %w", where, target, err)
		}
	case "status":
		statuses, err := p.Status(ctx)
		if err != nil {
			return fmt.Errorf("reading the status of %s: %w", where, err)
		}
		for _, s := range statuses {
			applied := "pending"
			if s.State == goose.StateApplied {
				applied = "applied " + s.AppliedAt.UTC().Format("2006-01-02 15:04:05")
			}
			fmt.Fprintf(stdout, "%5d  %-32s %s\n", s.Source.Version, path.Base(s.Source.Path), applied)
		}
	case "version":
		v, err := p.GetDBVersion(ctx)
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

func printResults(w io.Writer, results []*goose.MigrationResult) {
	for _, r := range results {
		if r.Error != nil {
			fmt.Fprintf(w, "FAILED %s %s: %v\n", r.Direction, path.Base(r.Source.Path), r.Error)
			continue
		}
		fmt.Fprintf(w, "%-4s %s (%s)\n", r.Direction, path.Base(r.Source.Path), r.Duration.Round(100_000))
	}
}
