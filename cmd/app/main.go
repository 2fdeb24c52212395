// Command app serves flystorage: notes in Postgres or SQLite, files in an S3
// bucket or a local directory, chosen by the environment (see the README).
//
//	app [serve]   serve HTTP (the default)
//	app sweep     remove file objects that no row names, then exit
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
	"github.com/example/flystorage/internal/storage"
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

// run starts the app and serves until ctx is cancelled, or runs the command
// args name.
func run(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	command := "serve"
	if len(args) > 0 {
		command = args[0]
	}
	if (command != "serve" && command != "sweep") || len(args) > 1 {
		return config.UsageError(fmt.Sprintf("usage: app [serve|sweep], not %q", args))
	}
	log := slog.New(slog.NewTextHandler(stderr, nil))

	cfg, err := config.Load(getenv)
	if err != nil {
		return err
	}
	log.Info("starting", "command", command, "config", cfg)

	st, err := backend.Open(ctx, cfg, log)
	if err != nil {
		return err
	}
	defer st.Close()

	if command == "sweep" {
		res, err := storage.Sweep(ctx, st.DB, st.Blobs, cfg.KeyPrefix, storage.SweepGrace, log)
		fmt.Fprintf(stdout, "removed %d expired uploads; checked %d objects, removed %d that no file names\n", res.Expired, res.Checked, res.Removed)
		return err
	}
	return serve(ctx, cfg, st, log)
}

// serve answers HTTP on cfg.Port and sweeps orphans every cfg.SweepInterval
// until ctx is cancelled, then lets in-flight requests finish.
func serve(ctx context.Context, cfg config.Config, st *backend.Storage, log *slog.Logger) error {
	ln, err := net.Listen("tcp", ":"+strconv.Itoa(cfg.Port)) // every interface: Fly's proxy uses IPv4, its private network IPv6
	if err != nil {
		return fmt.Errorf("listening on port %d: %w", cfg.Port, err)
	}
	opts := server.Options{
		DB:             st.DB,
		Blobs:          st.Blobs,
		MaxUploadBytes: cfg.MaxUploadBytes,
		KeyPrefix:      cfg.KeyPrefix,
		PresignTTL:     cfg.PresignTTL,
		Logger:         log,
	}
	switch {
	case cfg.S3 == nil: // local files: the app signs its own download and upload URLs
		if opts.SigningKey, err = server.SigningKey(cfg.URLSigningKey, cfg.BlobDir); err != nil {
			return err
		}
	case cfg.S3.Public:
		opts.PublicURL = cfg.S3.PublicURL
	}
	srv := &http.Server{
		Handler:           server.New(opts),
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       2 * time.Minute,
	}
	log.Info("listening", "addr", ln.Addr().String(), "database", st.DB.Describe()["backend"], "files", st.Blobs.Describe()["backend"])

	serveErr := make(chan error, 1)
	go func() { serveErr <- srv.Serve(ln) }()
	sweepDone := make(chan struct{})
	go func() {
		defer close(sweepDone)
		sweepEvery(ctx, cfg.SweepInterval, cfg.KeyPrefix, st, log)
	}()

	select {
	case err = <-serveErr:
		err = fmt.Errorf("serving: %w", err)
	case <-ctx.Done():
		log.Info("shutting down")
		shutdownCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), shutdownTimeout)
		defer cancel()
		if err = srv.Shutdown(shutdownCtx); err != nil {
			// Requests still running are cut off before the stores close
			// under them.
			srv.Close()
			err = fmt.Errorf("shutting down: %w", err)
		}
	}
	<-sweepDone
	return err
}

// sweepEvery runs storage.Sweep every interval until ctx is cancelled; an
// interval of 0 turns it off.
func sweepEvery(ctx context.Context, interval time.Duration, prefix string, st *backend.Storage, log *slog.Logger) {
	if interval <= 0 {
		return
	}
	tick := time.NewTicker(interval)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
			res, err := storage.Sweep(ctx, st.DB, st.Blobs, prefix, storage.SweepGrace, log)
			if err != nil && ctx.Err() == nil {
				log.Error("orphan sweep failed", "err", err)
				continue
			}
			log.Info("orphan sweep", "expired_uploads", res.Expired, "checked", res.Checked, "removed", res.Removed)
		}
	}
}
