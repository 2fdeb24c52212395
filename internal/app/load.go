package app

import (
	"log/slog"
	"time"

	"github.com/example/flystorage/internal/cache"
	"github.com/example/flystorage/internal/config"
	"github.com/example/flystorage/internal/region"
	"github.com/example/flystorage/internal/replication"
	"github.com/example/flystorage/internal/storage"
	"github.com/example/flystorage/internal/storage/backend"
	"github.com/example/flystorage/internal/storage/engine"
)

// Setup is the whole configuration: the app-wide settings, the chosen
// database, configured but not opened, Redis and the regions.
type Setup struct {
	Config config.Config
	Driver engine.Driver
	DB     storage.Source
	// Region says where this machine runs and where the primary is.
	Region region.Config
	// Cache is Redis (REDIS_URL): cache, sessions, rate limits and locks.
	Cache cache.Config
	// Replication is SQLite's continuous replica in the bucket
	// (internal/replication); it applies with SQLite and a bucket only.
	Replication replication.Config
	// Clock is the time links are signed on; nil means time.Now. Tests
	// move it instead of waiting for a link to expire.
	Clock func() time.Time
}

// LogValue logs the whole configuration, every secret masked.
func (s Setup) LogValue() slog.Value {
	return slog.GroupValue(slog.String("database", s.Driver.Name), slog.Any("db", s.DB), slog.Any("region", s.Region), slog.Any("redis", s.Cache), slog.Any("replication", s.Replication), slog.Any("", s.Config))
}

// Load reads and checks the whole configuration through getenv: the
// app-wide table, the database the registry selects, the regions, Redis
// and SQLite's replication. Its errors are *config.Error values naming the variable at fault.
func Load(getenv func(string) string) (Setup, error) {
	cfg, err := config.Load(getenv)
	if err != nil {
		return Setup{}, err
	}
	driver, src, err := backend.Select(getenv)
	if err != nil {
		return Setup{}, err
	}
	reg, err := region.Load(getenv)
	if err != nil {
		return Setup{}, err
	}
	redis, err := cache.Load(getenv)
	if err != nil {
		return Setup{}, err
	}
	repl, err := replication.Load(getenv)
	if err != nil {
		return Setup{}, err
	}
	// With its replica in the bucket, SQLite is one database that every
	// machine shares, writer and followers, and so are its files
	// (internal/replication).
	cfg.DatabaseLocal = driver.Local && !(cfg.S3 != nil && repl.Enabled)
	if cfg.BlobDir == "" {
		cfg.BlobDir = backend.DefaultBlobDir(driver, src)
	}
	return Setup{Config: cfg, Driver: driver, DB: src, Region: reg, Cache: redis, Replication: repl}, nil
}

// Vars documents every variable the app reads: the app-wide table, Redis's,
// the regions', the replication's and each driver's own, each name once, in that order.
func Vars() []config.Var {
	out := config.Vars()
	seen := map[string]int{}
	for i, v := range out {
		seen[v.Name] = i
	}
	lists := [][]config.Var{cache.Vars, region.Vars, replication.Vars}
	for _, d := range backend.Drivers {
		lists = append(lists, d.Vars)
	}
	for _, list := range lists {
		for _, v := range list {
			if _, ok := seen[v.Name]; ok {
				continue
			}
			seen[v.Name] = len(out)
			out = append(out, v)
		}
	}
	return out
}
