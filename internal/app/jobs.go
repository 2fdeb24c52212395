package app

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"time"

	"github.com/example/flystorage/internal/cache"
	"github.com/example/flystorage/internal/config"
	"github.com/example/flystorage/internal/service"
)

// sweepOnce runs `app sweep`. The command takes the servers' lock, so it
// never sweeps while a machine's periodic sweep runs.
func sweepOnce(ctx context.Context, setup Setup, st *Storage, redis *cache.Cache, stdout io.Writer, log *slog.Logger) error {
	ran := false
	err := Locked(ctx, redis, SweepLock(setup.Config), jobLockTTL, log, func(ctx context.Context) error {
		ran = true
		res, err := newService(setup, st.DB, st.Blobs, redis, log).Sweep(ctx, service.SweepGrace)
		fmt.Fprintf(stdout, "removed %d expired uploads; checked %d objects, removed %d that no file names; purged %d expired sessions and keys\n",
			res.Expired, res.Checked, res.Removed, res.Purged)
		return err
	})
	if err == nil && !ran {
		fmt.Fprintln(stdout, "skipped: another machine is sweeping")
	}
	return err
}

// jobs runs the periodic work, each every its interval until ctx is
// cancelled: the orphan sweep (SWEEP_INTERVAL). An interval of 0 turns a
// job off. SQLite's replication and the verification of its backups run
// in Litestream's goroutines and the Replicator's (replication.go).
func jobs(ctx context.Context, setup Setup, st *Storage, svc *service.Service, redis *cache.Cache, log *slog.Logger) {
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
		return func() error { return Locked(ctx, redis, name, jobLockTTL, log, job) }
	}
	every(cfg.SweepInterval, "orphan sweep", lockedJob(SweepLock(cfg), func(ctx context.Context) error {
		res, err := svc.Sweep(ctx, service.SweepGrace)
		if err == nil {
			log.Info("orphan sweep", "expired_uploads", res.Expired, "checked", res.Checked, "removed", res.Removed, "purged", res.Purged)
		}
		return err
	}), false)
	wg.Wait()
}

// Locked runs job under the lock name, which every machine sharing Redis
// shares, for ttl renewed as it runs. When another holder has the lock it
// logs so and returns nil without running job. job runs with the lease's
// context, which ends before the lock can expire: a job that lost its
// lock stops before another machine can start.
func Locked(ctx context.Context, redis *cache.Cache, name string, ttl time.Duration, log *slog.Logger, job func(ctx context.Context) error) error {
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

// SweepLock names the sweep's lock after the files it works on, so only
// machines sharing them take turns.
func SweepLock(cfg config.Config) string { return "sweep:" + cfg.FileKeyPrefix() }

// jobLockTTL is how long a job's lock lives in Redis unless renewed; the
// holder renews it as it works, so a job may run longer.
const jobLockTTL = 2 * time.Minute
