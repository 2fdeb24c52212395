// Command app serves flystorage: notes in Postgres or SQLite, files in an S3
// bucket or a local directory, chosen by the environment (docs/configuration.md).
//
//	app [serve]                                   serve HTTP (the default)
//	app sweep                                     remove file objects that no row names
//	app restore [--timestamp T --output PATH] [--force|--if-missing]   SQLite from its replica
//	app verify                                    restore the replica into a temporary file and check it
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"os"
	"os/signal"
	"runtime"
	"runtime/debug"
	"slices"
	"strconv"
	"sync"
	"syscall"
	"time"

	"github.com/example/flystorage/internal/cache"
	"github.com/example/flystorage/internal/config"
	"github.com/example/flystorage/internal/region"
	"github.com/example/flystorage/internal/server"
	"github.com/example/flystorage/internal/service"
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

// now is the app's clock: upload intents, signed and presigned links and
// the sweep expire on it. Tests move it instead of sleeping; the app
// reads it through clock, so a move reaches a running server.
var now = time.Now

func clock() time.Time { return now() }

// drainDelay is how long /readyz answers 503 before the server stops
// accepting connections, so Fly's proxy sees the machine leave first.
const drainDelay = time.Second

// run starts the app and serves until ctx is cancelled, or runs the command
// args name.
func run(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	command := "serve"
	if len(args) > 0 {
		command, args = args[0], args[1:]
	}
	if !slices.Contains([]string{"serve", "sweep", "restore", "verify"}, command) || (command != "restore" && len(args) > 0) {
		return config.UsageError("usage: app [serve | sweep | verify | restore [--timestamp T --output PATH] [--force|--if-missing]]")
	}
	setup, err := backend.Load(getenv)
	if err != nil {
		return err
	}
	setup.Clock = clock
	cfg := setup.Config
	logs := newLogWriter(stderr)
	defer logs.Close()
	log := newLogger(cfg, logs)
	log.Info("starting", "command", command, "config", setup)

	if command == "restore" {
		// Restore runs before the app: it must not open, and so create or
		// migrate, the database it is about to replace.
		return restore(ctx, setup, args, stdout, stderr, log)
	}
	if command == "verify" {
		return verify(ctx, setup, stdout, log)
	}
	// SQLite's replica in the bucket (cmd/app/replication.go): the lease,
	// a restore onto an empty volume, then Litestream; before the
	// database opens, and closed after it.
	var repl replicaNode
	if command == "serve" {
		if repl, ctx, err = openReplication(ctx, &setup, log); err != nil {
			return stoppedWaiting(ctx, err)
		}
		defer closeReplication(repl, log)
	}
	st, err := backend.Open(ctx, setup, log)
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
		// The command takes the servers' lock, so it never sweeps while a
		// machine's periodic sweep runs.
		ran := false
		err := locked(ctx, redis, sweepLock(cfg), jobLockTTL, log, func(ctx context.Context) error {
			ran = true
			res, err := newService(cfg, st.DB, st.Blobs, redis, log).Sweep(ctx, service.SweepGrace)
			fmt.Fprintf(stdout, "removed %d expired uploads; checked %d objects, removed %d that no file names; purged %d expired sessions and keys\n",
				res.Expired, res.Checked, res.Removed, res.Purged)
			return err
		})
		if err == nil && !ran {
			fmt.Fprintln(stdout, "skipped: another machine is sweeping")
		}
		return err
	}
	err = serve(ctx, setup, st, redis, repl, log)
	if repl != nil {
		err = errors.Join(err, repl.Err()) // the lease lost, or taken over: restart
	}
	return err
}

// serve answers HTTP on cfg.Port, and runs the periodic jobs, until ctx is
// cancelled; then it lets in-flight requests finish.
func serve(ctx context.Context, setup backend.Setup, st *backend.Storage, redis *cache.Cache, repl replicaNode, log *slog.Logger) error {
	cfg := setup.Config
	ln, err := net.Listen("tcp", ":"+strconv.Itoa(cfg.Port)) // every interface: Fly's proxy uses IPv4, its private network IPv6
	if err != nil {
		return fmt.Errorf("listening on port %d: %w", cfg.Port, err)
	}
	metrics := server.NewMetrics(st.DB)
	svc := newService(cfg, st.DB, metrics.InstrumentBlobs(st.Blobs), redis, log)
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
	switch {
	case cfg.S3 == nil: // local files: the app signs its own download and upload URLs
		if opts.SigningKey, err = server.SigningKey(cfg.URLSigningKey, cfg.BlobDir); err != nil {
			return err
		}
	case cfg.S3.Public:
		opts.PublicURL = cfg.S3.PublicURL
	}
	opts.Region = newRouter(setup, st, repl, log)
	if err := errors.Join(st.RegionMetrics.Register(metrics.Registerer()), redis.Register(metrics.Registerer())); err != nil {
		return err
	}
	if repl != nil {
		opts.Replication = repl
		if err := repl.Register(metrics.Registerer()); err != nil {
			return err
		}
	}
	handler := server.New(opts)
	srv := &http.Server{
		Handler:           handler,
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       2 * time.Minute,
	}
	servers := []*http.Server{srv}
	listeners := []net.Listener{ln}
	if cfg.MetricsPort != 0 {
		mln, err := net.Listen("tcp", ":"+strconv.Itoa(cfg.MetricsPort))
		if err != nil {
			ln.Close()
			return fmt.Errorf("listening on METRICS_PORT %d: %w", cfg.MetricsPort, err)
		}
		mux := http.NewServeMux()
		mux.Handle("GET /metrics", metrics.Handler())
		// Profiles are served here only, never on the public port.
		mux.HandleFunc("/debug/pprof/", pprof.Index)
		mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
		mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
		mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
		mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
		servers = append(servers, &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second})
		listeners = append(listeners, mln)
		log.Info("serving metrics", "addr", mln.Addr().String())
	}
	dropStartupGarbage()
	// Every listener is open before the app says it listens.
	log.Info("listening", "addr", ln.Addr().String(), "database", st.DB.Describe()["backend"], "files", st.Blobs.Describe()["backend"])
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

// dropStartupGarbage collects what opening the stores left behind before
// the app serves. The collector sets its next heap goal at twice the heap
// that survives a collection, and startup leaves 16 MiB that survives
// one: goose keeps the 4 MiB buffers it parses migrations with in a
// sync.Pool, which only the second collection after their use empties.
// Left there, they let an upload's garbage grow the heap by as much
// before it is collected (docs/performance.md).
func dropStartupGarbage() {
	runtime.GC()
	debug.FreeOSMemory() // a second collection, and the pages to the kernel
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

// newRouter applies the multi-region rules (docs/regions.md). Off Fly, or
// in the primary region, it changes nothing.
func newRouter(setup backend.Setup, st *backend.Storage, repl replicaNode, log *slog.Logger) *region.Router {
	o := region.Options{
		Config: setup.Region,
		// A database file or files on this machine's volume have no replica
		// elsewhere: machines outside the primary region replay everything.
		Local:   setup.Driver.Local || setup.Config.S3 == nil,
		Metrics: st.RegionMetrics,
		Logger:  log,
	}
	// Consistency tokens cost a query per write; they matter only where
	// regions are known, since only then may another region read a replica.
	if p, ok := st.Primary.(region.Positioner); ok && setup.Region.Region != "" && setup.Region.PrimaryRegion != "" {
		o.Primary = p
	}
	if r, ok := st.Replica.(region.ReplicaPositioner); ok && st.Replica != nil {
		o.Replica = r
	}
	// A SQLite follower reads its copy and replays writes to the writer;
	// the writer's tokens are Litestream TXIDs (cmd/app/replication.go).
	if repl != nil {
		sqliteRouting(&o, repl)
	}
	rt := region.NewRouter(o)
	rt.LogStart()
	return rt
}

// newService builds the service every command shares.
func newService(cfg config.Config, db storage.Database, blobs storage.Blobs, redis *cache.Cache, log *slog.Logger) *service.Service {
	return service.New(service.Options{DB: db, Blobs: blobs, KeyPrefix: cfg.FileKeyPrefix(),
		PresignTTL: cfg.PresignTTL, MaxUpload: cfg.MaxUploadBytes, Cache: redis, Now: clock, Logger: log})
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

// jobs runs the periodic work, each every its interval until ctx is
// cancelled: the orphan sweep (SWEEP_INTERVAL). An interval of 0 turns a
// job off.
func jobs(ctx context.Context, setup backend.Setup, st *backend.Storage, svc *service.Service, redis *cache.Cache, log *slog.Logger) {
	cfg := setup.Config
	var wg sync.WaitGroup
	every := func(interval time.Duration, name string, job func() error, dueNow bool) {
		if interval <= 0 {
			return
		}
		wg.Go(func() {
			if dueNow {
				if err := job(); err != nil && ctx.Err() == nil {
					log.Error(name+" failed", "err", err)
				}
			}
			tick := time.NewTicker(interval)
			defer tick.Stop()
			for {
				select {
				case <-ctx.Done():
					return
				case <-tick.C:
					if err := job(); err != nil && ctx.Err() == nil {
						log.Error(name+" failed", "err", err)
					}
				}
			}
		})
	}
	// Machines that share a bucket take turns: each job holds a lock in
	// Redis while it runs, and stops the moment the lock is lost.
	lockedJob := func(name string, job func(ctx context.Context) error) func() error {
		return func() error { return locked(ctx, redis, name, jobLockTTL, log, job) }
	}
	every(cfg.SweepInterval, "orphan sweep", lockedJob(sweepLock(cfg), func(ctx context.Context) error {
		res, err := svc.Sweep(ctx, service.SweepGrace)
		if err == nil {
			log.Info("orphan sweep", "expired_uploads", res.Expired, "checked", res.Checked, "removed", res.Removed, "purged", res.Purged)
		}
		return err
	}), false)
	wg.Wait()
}

// locked runs job under the lock name, which every machine sharing Redis
// shares, for ttl renewed as it runs. When another holder has the lock it
// logs so and returns nil without running job. job runs with the lease's
// context, which ends before the lock can expire: a job that lost its
// lock stops before another machine can start.
func locked(ctx context.Context, redis *cache.Cache, name string, ttl time.Duration, log *slog.Logger, job func(ctx context.Context) error) error {
	lease, err := redis.Lock(ctx, name, ttl)
	switch {
	case errors.Is(err, cache.ErrLocked):
		log.Info("skipped: another machine is running it", "job", name)
		return nil
	case err != nil:
		return fmt.Errorf("taking the lock %s: %w", name, err)
	}
	defer lease.Release(context.WithoutCancel(ctx))
	return job(lease.Context())
}

// sweepLock names the sweep's lock after what it works on, so only
// machines sharing it take turns.
func sweepLock(cfg config.Config) string { return "sweep:" + cfg.FileKeyPrefix() }

// jobLockTTL is how long a job's lock lives in Redis unless renewed; the
// holder renews it as it works, so a job may run longer.
const jobLockTTL = 2 * time.Minute
