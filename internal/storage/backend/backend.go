// Package backend is the one place that chooses where data goes: it finds
// the database driver the environment selects in the registry
// (registry.go), and opens the blob store the configuration names. It
// sits apart from package storage because it imports every backend, and
// every backend imports storage. It imports nothing above the drivers:
// the composition root (internal/app) loads the rest of the configuration.
package backend

import (
	"context"
	"fmt"
	"net/url"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/example/flystorage/internal/config"
	"github.com/example/flystorage/internal/storage"
	"github.com/example/flystorage/internal/storage/engine"
	"github.com/example/flystorage/internal/storage/localfs"
	"github.com/example/flystorage/internal/storage/s3"
)

// Select finds the driver the environment selects and loads its
// configuration. Its errors are *config.Error values naming the variable
// at fault: two database variables, a scheme no driver takes, a driver's
// own bad value, or a variable only another driver reads.
func Select(getenv func(string) string) (engine.Driver, storage.Source, error) {
	env := config.NewEnv(getenv)
	driver, value, err := Choose(env)
	if err != nil {
		return engine.Driver{}, nil, err
	}
	src, err := driver.Load(value, getenv)
	if err != nil {
		return engine.Driver{}, nil, err
	}
	if err := checkForeignVars(env, driver); err != nil {
		return engine.Driver{}, nil, err
	}
	return driver, src, nil
}

// Choose finds the driver the environment selects and the value of its
// variable: exactly one database variable may be set; none selects
// Default.
func Choose(env config.Env) (engine.Driver, string, error) {
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
		return engine.Driver{}, "", &config.Error{Var: strings.Join(set, " and "),
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
	return engine.Driver{}, "", &config.Error{Var: name,
		Msg: fmt.Sprintf("unsupported scheme %q: use %s", scheme(value), strings.Join(schemes, ", "))}
}

// hasScheme reports whether raw starts with scheme://, in any case.
func hasScheme(raw, scheme string) bool {
	return len(raw) >= len(scheme)+3 && strings.EqualFold(raw[:len(scheme)+3], scheme+"://")
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
func checkForeignVars(env config.Env, chosen engine.Driver) error {
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

// DefaultBlobDir is BLOB_DIR's default. It puts local files beside a
// local database's file, on its volume, and gives each database server a
// directory of its own, so that switching a checkout between databases
// never lets one database's sweep delete the files another's rows name.
func DefaultBlobDir(d engine.Driver, src storage.Source) string {
	if f, ok := src.(storage.FileSource); ok && d.Local {
		return filepath.Join(filepath.Dir(f.File()), "blobs")
	}
	return filepath.Join("data", d.Name+"-blobs")
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
