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

// drainDelay is how long /readyz answers 503 before the server stops
// accepting connections, so Fly's proxy sees the machine leave first.
const drainDelay = time.Second

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
	cfg, err := config.Load(getenv)
	if err != nil {
		return err
	}
	log := newLogger(cfg, stderr)
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
	metrics := server.NewMetrics(st.DB)
	opts := server.Options{
		DB:               st.DB,
		Blobs:            metrics.InstrumentBlobs(st.Blobs),
		MaxUploadBytes:   cfg.MaxUploadBytes,
		KeyPrefix:        cfg.KeyPrefix,
		PresignTTL:       cfg.PresignTTL,
		APIToken:         cfg.APIToken,
		OnFly:            cfg.OnFly,
		Metrics:          metrics,
		MetricsElsewhere: cfg.MetricsPort != 0,
		Logger:           log,
	}
	switch {
	case cfg.S3 == nil: // local files: the app signs its own download and upload URLs
		if opts.SigningKey, err = server.SigningKey(cfg.URLSigningKey, cfg.BlobDir); err != nil {
			return err
		}
	case cfg.S3.Public:
		opts.PublicURL = cfg.S3.PublicURL
	}
	handler := server.New(opts)
	srv := &http.Server{
		Handler:           handler,
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       2 * time.Minute,
	}
	log.Info("listening", "addr", ln.Addr().String(), "database", st.DB.Describe()["backend"], "files", st.Blobs.Describe()["backend"])

	serveErr := make(chan error, 2)
	go func() { serveErr <- srv.Serve(ln) }()
	servers := []*http.Server{srv}
	if cfg.MetricsPort != 0 {
		mln, err := net.Listen("tcp", ":"+strconv.Itoa(cfg.MetricsPort))
		if err != nil {
			srv.Close()
			return fmt.Errorf("listening on METRICS_PORT %d: %w", cfg.MetricsPort, err)
		}
		mux := http.NewServeMux()
		mux.Handle("GET /metrics", metrics.Handler())
		msrv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
		servers = append(servers, msrv)
		log.Info("serving metrics", "addr", mln.Addr().String())
		go func() { serveErr <- msrv.Serve(mln) }()
	}
	sweepDone := make(chan struct{})
	go func() {
		defer close(sweepDone)
		sweepEvery(ctx, cfg.SweepInterval, cfg.KeyPrefix, st, log)
	}()

	select {
	case err = <-serveErr:
		err = fmt.Errorf("serving: %w", err)
		for _, s := range servers {
			s.Close()
		}
	case <-ctx.Done():
		err = shutdown(ctx, cfg.ShutdownTimeout, handler, servers, log)
	}
	<-sweepDone
	return err
}

// shutdown stops serving gracefully: /readyz turns 503 first, then the
// servers stop accepting and in-flight requests get until timeout to
// finish; only then do the stores close (run's deferred Close).
func shutdown(ctx context.Context, timeout time.Duration, handler *server.Server, servers []*http.Server, log *slog.Logger) error {
	log.Info("shutting down", "timeout", timeout)
	handler.Drain()
	deadline, cancel := context.WithTimeout(context.WithoutCancel(ctx), timeout)
	defer cancel()
	select {
	case <-time.After(min(drainDelay, timeout/2)):
	case <-deadline.Done():
	}
	var failed error
	for _, s := range servers {
		if err := s.Shutdown(deadline); err != nil {
			// Requests still running are cut off before the stores close
			// under them.
			s.Close()
			failed = fmt.Errorf("in-flight requests did not finish within SHUTDOWN_TIMEOUT (%s): %w", timeout, err)
		}
	}
	if failed == nil {
		log.Info("stopped")
	}
	return failed
}

// newLogger logs JSON on Fly (or with LOG_FORMAT=json) and text otherwise,
// at LOG_LEVEL.
func newLogger(cfg config.Config, w io.Writer) *slog.Logger {
	opts := &slog.HandlerOptions{Level: cfg.LogLevel}
	if cfg.LogFormat == "json" {
		return slog.New(slog.NewJSONHandler(w, opts))
	}
	return slog.New(slog.NewTextHandler(w, opts))
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
