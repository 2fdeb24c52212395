// Package backend is the one place that chooses where data goes: it reads
// the configuration, finds the database driver in the registry
// (registry.go), and opens one database and one blob store. It sits apart
// from package storage because it imports every backend, and every backend
// imports storage.
package backend

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/example/flystorage/internal/cache"
	"github.com/example/flystorage/internal/config"
	"github.com/example/flystorage/internal/region"
	"github.com/example/flystorage/internal/replication"
	"github.com/example/flystorage/internal/storage"
	"github.com/example/flystorage/internal/storage/localfs"
	"github.com/example/flystorage/internal/storage/s3"
)

// Setup is the whole configuration: the app-wide settings and the chosen
// database, configured but not opened.
type Setup struct {
	Config config.Config
	Driver storage.Driver
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

// Load reads and checks the whole configuration through getenv. Its errors
// are *config.Error values naming the variable at fault.
func Load(getenv func(string) string) (Setup, error) {
	cfg, err := config.Load(getenv)
	if err != nil {
		return Setup{}, err
	}
	env := config.NewEnv(getenv)
	driver, value, err := Choose(env)
	if err != nil {
		return Setup{}, err
	}
	src, err := driver.Load(value, getenv)
	if err != nil {
		return Setup{}, err
	}
	if err := checkForeignVars(env, driver); err != nil {
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
		cfg.BlobDir = defaultBlobDir(driver, src)
	}
	return Setup{Config: cfg, Driver: driver, DB: src, Region: reg, Cache: redis, Replication: repl}, nil
}

// Choose finds the driver the environment selects and the value of its
// variable: exactly one database variable may be set; none selects
// Default.
func Choose(env config.Env) (storage.Driver, string, error) {
	var set []string
	for _, d := range Drivers {
		if env(d.Var) != "" && !slices.Contains(set, d.Var) {
			set = append(set, d.Var)
		}
	}
	switch len(set) {
	case 0:
		return Default, "", nil
	case 1:
	default:
		return storage.Driver{}, "", &config.Error{Var: strings.Join(set, " and "),
			Msg: "are all set, but the app uses one database: keep the one you mean and unset the others (fly secrets unset NAME)"}
	}
	name, value := set[0], env(set[0])
	var schemes []string
	for _, d := range Drivers {
		if d.Var != name {
			continue
		}
		if len(d.Schemes) == 0 {
			return d, value, nil
		}
		for _, s := range d.Schemes {
			schemes = append(schemes, s+"://")
			if hasScheme(value, s) {
				return d, value, nil
			}
		}
	}
	return storage.Driver{}, "", &config.Error{Var: name,
		Msg: fmt.Sprintf("unsupported scheme %q: use %s", scheme(value), strings.Join(schemes, ", "))}
}

// hasScheme reports whether raw starts with scheme://, in any case.
func hasScheme(raw, scheme string) bool {
	return len(raw) > len(scheme)+3 && strings.EqualFold(raw[:len(scheme)+3], scheme+"://")
}

// scheme is what stands before "://", for an error message; never the
// rest, which may hold a password.
func scheme(raw string) string {
	if u, err := url.Parse(raw); err == nil && u.Scheme != "" {
		return u.Scheme
	}
	s, _, ok := strings.Cut(raw, "://")
	if !ok || len(s) > 20 {
		return "(none)"
	}
	return s
}

// checkForeignVars refuses a variable that only another database reads,
// such as DIRECT_DATABASE_URL with SQLite: it would do nothing, silently.
func checkForeignVars(env config.Env, chosen storage.Driver) error {
	mine := map[string]bool{chosen.Var: true}
	for _, v := range chosen.Vars {
		mine[v.Name] = true
	}
	for _, d := range Drivers {
		for _, v := range d.Vars {
			if mine[v.Name] || v.Name == d.Var || env(v.Name) == "" {
				continue
			}
			return &config.Error{Var: v.Name,
				Msg: fmt.Sprintf("is set, but it applies to %s and the database is %s: unset it", d.Name, chosen.Name)}
		}
	}
	return nil
}

// defaultBlobDir puts local files beside a local database's file, on its
// volume, and gives each database server a directory of its own, so that
// switching a checkout between databases never lets one database's sweep
// delete the files another's rows name.
func defaultBlobDir(d storage.Driver, src storage.Source) string {
	if dir, ok := src.(interface{ Dir() string }); ok && d.Local {
		return filepath.Join(dir.Dir(), "blobs")
	}
	return filepath.Join("data", d.Name+"-blobs")
}

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
	if st.Blobs, err = OpenBlobs(ctx, s.Config, s.Clock); err != nil {
		st.DB.Close()
		return nil, err
	}
	return st, nil
}

// OpenBlobs opens the blob store that cfg names: the bucket, or the
// directory. A bucket presigns on clock (nil: time.Now).
func OpenBlobs(ctx context.Context, cfg config.Config, clock func() time.Time) (storage.Blobs, error) {
	if cfg.S3 == nil { // BLOB_DIR, or its default
		d, err := localfs.New(cfg.BlobDir)
		if err != nil {
			return nil, fmt.Errorf("opening blob directory: %w", err)
		}
		return d, nil
	}
	b, err := s3.New(ctx, s3.Options{ // BUCKET_NAME
		Bucket:          cfg.S3.Bucket,
		Endpoint:        cfg.S3.Endpoint,
		Region:          cfg.S3.Region,
		AccessKeyID:     cfg.S3.AccessKeyID,
		SecretAccessKey: cfg.S3.SecretAccessKey,
		PathStyle:       cfg.S3.PathStyle,
		Timeout:         cfg.S3.Timeout,
		PartSize:        cfg.S3.PartSize,
		Concurrency:     cfg.S3.Concurrency,
		PublicEndpoint:  cfg.S3.PublicEndpoint,
		Now:             clock,
	})
	if err != nil {
		return nil, fmt.Errorf("opening bucket %s: %w", cfg.S3.Bucket, err)
	}
	return b, nil
}

// Vars documents every variable the app reads: the app-wide table, each
// driver's own and the regions', each name once, in that order.
func Vars() []config.Var {
	out := config.Vars()
	seen := map[string]int{}
	for i, v := range out {
		seen[v.Name] = i
	}
	lists := [][]config.Var{cache.Vars, region.Vars, replication.Vars}
	for _, d := range Drivers {
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
