package app

import (
	"context"
	"errors"
	"io"
	"log/slog"

	"github.com/example/flystorage/internal/cache"
	"github.com/example/flystorage/internal/config"
	"github.com/example/flystorage/internal/region"
	"github.com/example/flystorage/internal/service"
	"github.com/example/flystorage/internal/storage"
	"github.com/example/flystorage/internal/storage/backend"
)

// Storage is the database and the blob store the app runs on.
type Storage struct {
	// DB is what the app reads and writes: the database, or in a replica
	// region a region.Database that reads the nearby replica.
	DB    storage.Database
	Blobs storage.Blobs
	// Primary is the database at its primary URL; Replica is the read
	// replica, nil when there is none.
	Primary, Replica storage.Database
	// RegionMetrics count replica fallbacks; the router counts replays.
	RegionMetrics *region.Metrics
}

// Close closes both stores.
func (s *Storage) Close() error {
	return errors.Join(s.DB.Close(), s.Blobs.Close())
}

// Open opens the database and the blob store that the setup names. In a
// replica region it also opens the read replica, if the driver has one
// configured; a replica that cannot be opened leaves reads on the primary,
// with a warning, rather than keeping the machine down.
func Open(ctx context.Context, s Setup, log *slog.Logger) (*Storage, error) {
	opts := storage.OpenOptions{Migrate: s.Config.MigrateOnStart, Logger: log}
	db, err := s.DB.Open(ctx, opts)
	if err != nil {
		return nil, err
	}
	st := &Storage{DB: db, Primary: db, RegionMetrics: region.NewMetrics()}
	if rs, ok := s.DB.(storage.ReplicaSource); ok && s.Region.Replica() {
		replica, err := rs.OpenReplica(ctx, opts)
		switch {
		case err != nil:
			log.Warn("the read replica cannot be opened; reads go to the primary until the app restarts", "err", err)
		case replica != nil:
			st.Replica = replica
			st.DB = region.NewDatabase(db, replica, region.DatabaseOptions{Metrics: st.RegionMetrics, Logger: log})
		}
	}
	if st.Blobs, err = backend.OpenBlobs(ctx, s.Config, s.Clock); err != nil {
		st.DB.Close()
		return nil, err
	}
	return st, nil
}

// newRouter applies the multi-region rules (docs/regions.md). Off Fly, or
// in the primary region, it changes nothing.
func newRouter(setup Setup, st *Storage, repl replicaNode, log *slog.Logger) *region.Router {
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
	if p, ok := st.Primary.(storage.WritePositioner); ok && setup.Region.Region != "" && setup.Region.PrimaryRegion != "" {
		o.Primary = p
	}
	if r, ok := st.Replica.(storage.ReplayPositioner); ok && st.Replica != nil {
		o.Replica = r
	}
	// A SQLite follower reads its copy and replays writes to the writer;
	// the writer's tokens are Litestream TXIDs (replication.go).
	if repl != nil {
		sqliteRouting(&o, repl)
	}
	rt := region.NewRouter(o)
	rt.LogStart()
	return rt
}

// newService builds the service every command shares.
func newService(setup Setup, db storage.Database, blobs storage.Blobs, redis *cache.Cache, log *slog.Logger) *service.Service {
	cfg := setup.Config
	return service.New(service.Options{DB: db, Blobs: blobs, KeyPrefix: cfg.FileKeyPrefix(),
		PresignTTL: cfg.PresignTTL, MaxUpload: cfg.MaxUploadBytes, Cache: redis, Now: setup.Clock, Logger: log})
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
