// Command app serves flystorage: notes in Postgres or SQLite, files in an S3
// bucket or a local directory, chosen by the environment (see the README).
package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strconv"
	"syscall"
	"time"

	"github.com/example/flystorage/internal/config"
	"github.com/example/flystorage/internal/server"
	"github.com/example/flystorage/internal/storage/backend"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Getenv, os.Stdout, os.Stderr)
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, "app:", err)
	}
	os.Exit(config.ExitCode(err))
}

// shutdownTimeout is how long in-flight requests get to finish after a
// signal.
const shutdownTimeout = 5 * time.Second

// run starts the app and serves until ctx is cancelled.
func run(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	if len(args) > 0 && args[0] != "serve" {
		return config.UsageError(fmt.Sprintf("unknown command %q: the only command is serve (the default)", args[0]))
	}
	log := slog.New(slog.NewTextHandler(stderr, nil))

	cfg, err := config.Load(getenv)
	if err != nil {
		return err
	}
	log.Info("starting", "config", cfg)

	st, err := backend.Open(ctx, cfg, log)
	if err != nil {
		return err
	}
	defer st.Close()

	ln, err := net.Listen("tcp", ":"+strconv.Itoa(cfg.Port)) // every interface: Fly's proxy uses IPv4, its private network IPv6
	if err != nil {
		return fmt.Errorf("listening on port %d: %w", cfg.Port, err)
	}
	srv := &http.Server{
		Handler:           server.New(server.Options{DB: st.DB, Blobs: st.Blobs, MaxUploadBytes: cfg.MaxUploadBytes, Logger: log}),
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       2 * time.Minute,
	}
	log.Info("listening", "addr", ln.Addr().String(), "database", st.DB.Describe()["backend"], "files", st.Blobs.Describe()["backend"])

	serveErr := make(chan error, 1)
	go func() { serveErr <- srv.Serve(ln) }()
	select {
	case err := <-serveErr:
		return fmt.Errorf("serving: %w", err)
	case <-ctx.Done():
	}

	log.Info("shutting down")
	shutdownCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), shutdownTimeout)
	defer cancel()
	if err := srv.Shutdown(shutdownCtx); err != nil {
		return fmt.Errorf("shutting down: %w", err)
	}
	return nil
}
