// Package region runs the app in several Fly regions at once: the database
// primary lives in PRIMARY_REGION, machines elsewhere read a nearby replica
// and send writes to the primary with Fly's fly-replay response header, and
// a consistency token gives every client its own writes back (read your
// writes). docs/regions.md explains the whole design.
package region

import (
	"fmt"
	"log/slog"
	"regexp"
	"time"

	"github.com/example/flystorage/internal/config"
)

// Vars documents the variables Load reads.
var Vars = []config.Var{
	{Name: "FLY_REGION", Group: "Regions", Doc: "The region this machine runs in; Fly sets it."},
	{Name: "PRIMARY_REGION", Group: "Regions", Example: "ord",
		Doc: "The region of the database's primary (fly.toml's primary_region). When it and FLY_REGION are both set and differ, this machine sends writes there with fly-replay (docs/regions.md)."},
	{Name: "REPLICA_WAIT", Group: "Regions", Default: "500ms",
		Doc: "How long a read carrying a consistency token waits for the replica to catch up before it is replayed to the primary region."},
}

// DefaultWait is REPLICA_WAIT's default.
const DefaultWait = 500 * time.Millisecond

// maxWait bounds REPLICA_WAIT: a request waits at most this long before it
// is replayed, and Fly's proxy times requests out.
const maxWait = 30 * time.Second

// Config is where this machine runs and where its database is.
type Config struct {
	Region        string        // FLY_REGION; empty off Fly
	PrimaryRegion string        // PRIMARY_REGION
	Wait          time.Duration // REPLICA_WAIT
}

// Replica reports whether this machine runs outside the primary region:
// both regions are known and differ. Otherwise nothing about regions
// changes what the app does.
func (c Config) Replica() bool {
	return c.Region != "" && c.PrimaryRegion != "" && c.Region != c.PrimaryRegion
}

// LogValue shows the configuration with the read URL's password masked.
func (c Config) LogValue() slog.Value {
	return slog.GroupValue(
		slog.String("region", c.Region),
		slog.String("primary_region", c.PrimaryRegion),
		slog.Bool("replica_region", c.Replica()),
		slog.Duration("replica_wait", c.Wait),
	)
}

// String is LogValue's form.
func (c Config) String() string { return c.LogValue().String() }

// regionCode matches Fly's region codes (ord, syd, ...); the code goes into
// a response header, so nothing else is let through.
var regionCode = regexp.MustCompile(`^[a-z0-9]{2,16}$`)

// Load reads the region variables. Errors are *config.Error naming the
// variable. The replica's URL (DATABASE_READ_URL) is the Postgres driver's.
func Load(getenv func(string) string) (Config, error) {
	env := config.NewEnv(getenv)
	c := Config{Region: env("FLY_REGION"), PrimaryRegion: env("PRIMARY_REGION")}
	for _, v := range []struct{ name, value string }{{"FLY_REGION", c.Region}, {"PRIMARY_REGION", c.PrimaryRegion}} {
		if v.value != "" && !regionCode.MatchString(v.value) {
			return Config{}, &config.Error{Var: v.name, Msg: fmt.Sprintf("%q is not a Fly region code such as ord or syd (lower-case letters and digits)", v.value)}
		}
	}
	var err error
	if c.Wait, err = env.Duration("REPLICA_WAIT", DefaultWait); err != nil {
		return Config{}, err
	}
	if c.Wait > maxWait {
		return Config{}, &config.Error{Var: "REPLICA_WAIT", Msg: fmt.Sprintf("%s is longer than %s: a read waits this long before it is replayed", c.Wait, maxWait)}
	}
	return c, nil
}
