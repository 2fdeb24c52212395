package app

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"runtime"
	"runtime/debug"
	"strconv"
	"time"

	"github.com/example/flystorage/internal/cache"
	"github.com/example/flystorage/internal/server"
	"github.com/example/flystorage/internal/service"
)

// drainDelay is how long /readyz answers 503 before the server stops
// accepting connections, so Fly's proxy sees the machine leave first.
const drainDelay = time.Second

// serve answers HTTP on cfg.Port, and runs the periodic jobs, until ctx is
// cancelled; then it lets in-flight requests finish.
func serve(ctx context.Context, setup Setup, st *Storage, redis *cache.Cache, repl replicaNode, log *slog.Logger) error {
	cfg := setup.Config
	ln, err := net.Listen("tcp", ":"+strconv.Itoa(cfg.Port)) // every interface: Fly's proxy uses IPv4, its private network IPv6
	if err != nil {
		return fmt.Errorf("listening on port %d: %w", cfg.Port, err)
	}
	metrics := server.NewMetrics(st.DB)
	svc := newService(setup, st.DB, metrics.InstrumentBlobs(st.Blobs), redis, log)
	handler, err := newHandler(setup, st, svc, redis, repl, metrics, log)
	if err != nil {
		ln.Close()
		return err
	}
	servers := []*http.Server{{Handler: handler, ReadHeaderTimeout: 10 * time.Second, IdleTimeout: 2 * time.Minute}}
	listeners := []net.Listener{ln}
	if cfg.MetricsPort != 0 {
		mln, err := net.Listen("tcp", ":"+strconv.Itoa(cfg.MetricsPort))
		if err != nil {
			ln.Close()
			return fmt.Errorf("listening on METRICS_PORT %d: %w", cfg.MetricsPort, err)
		}
		servers = append(servers, metricsServer(metrics))
		listeners = append(listeners, mln)
		log.Info("serving metrics", "addr", mln.Addr().String())
	}
	dropStartupGarbage()
	// Every listener is open before the app says it listens.
	log.Info("listening", "addr", ln.Addr().String(), "database", st.DB.Backend(), "files", st.Blobs.Backend())
	serveErr := make(chan error, len(servers))
	for i, s := range servers {
		go func() { serveErr <- s.Serve(listeners[i]) }()
	}

	// The jobs stop with the server, whether a signal or a failure ends it.
	jobsCtx, stopJobs := context.WithCancel(ctx)
	defer stopJobs()
	jobsDone := make(chan struct{})
	go func() {
		defer close(jobsDone)
		jobs(jobsCtx, setup, st, svc, redis, log)
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
	stopJobs()
	<-jobsDone
	return err
}

// newHandler builds the HTTP handler on the service, Redis and the
// multi-region router, and registers the stores' metrics.
func newHandler(setup Setup, st *Storage, svc *service.Service, redis *cache.Cache, repl replicaNode, metrics *server.Metrics, log *slog.Logger) (*server.Server, error) {
	cfg := setup.Config
	opts := server.Options{
		Service:          svc,
		Cache:            redis,
		Sessions:         redis.Sessions(st.DB),
		SessionTTL:       setup.Cache.SessionTTL,
		Limiter:          redis.Limiter(),
		MaxUploadBytes:   cfg.MaxUploadBytes,
		PresignTTL:       cfg.PresignTTL,
		APIToken:         cfg.APIToken,
		OnFly:            cfg.OnFly,
		Metrics:          metrics,
		MetricsElsewhere: cfg.MetricsPort != 0,
		Logger:           log,
	}
	var err error
	switch {
	case cfg.S3 == nil: // local files: the app signs its own download and upload URLs
		if opts.SigningKey, err = server.SigningKey(cfg.URLSigningKey, cfg.BlobDir); err != nil {
			return nil, err
		}
	case cfg.S3.Public:
		opts.PublicURL = cfg.S3.PublicURL
	}
	opts.Region = newRouter(setup, st, repl, log)
	if repl != nil {
		opts.Replication = repl
		if err := repl.Register(metrics.Registerer()); err != nil {
			return nil, err
		}
	}
	if err := errors.Join(st.RegionMetrics.Register(metrics.Registerer()), redis.Register(metrics.Registerer())); err != nil {
		return nil, err
	}
	return server.New(opts), nil
}

// metricsServer serves /metrics and the profiles on METRICS_PORT.
func metricsServer(metrics *server.Metrics) *http.Server {
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", metrics.Handler())
	// Profiles are served here only, never on the public port.
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	return &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
}

// dropStartupGarbage collects what opening the stores left behind before
// the app serves. The collector sets its next heap goal at twice the heap
// that survives a collection, and startup leaves 16 MiB that survives
// one: goose keeps the 4 MiB buffers it parses migrations with in a
// sync.Pool, which only the second collection after their use empties.
// Left there, they let an upload's garbage grow the heap by as much
// before it is collected. This tuning overrides the runtime's defaults
// because without it peak RSS under 512 MiB uploads was 7-25 % higher
// (46-55 MiB against 42-44), and with four or eight at once 10-20 %
// (docs/performance.md, "Hand-written or library").
func dropStartupGarbage() {
	runtime.GC()
	debug.FreeOSMemory() // a second collection, and the pages to the kernel
}

// shutdown stops serving gracefully: /readyz turns 503 first, then the
// servers stop accepting and in-flight requests get until timeout to
// finish; only then do the stores close (Run's deferred Close).
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
