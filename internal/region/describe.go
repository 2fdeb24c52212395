package region

import (
	"context"
	"strconv"
	"time"

	"github.com/example/flystorage/internal/storage"
)

// Describe returns what /api/storage and the page show about regions: this
// machine's region, the primary region, where reads go, and how far the
// replica is behind, in seconds and bytes of log. It asks both databases,
// so a failure shows as "unknown" rather than failing the page.
func (rt *Router) Describe(ctx context.Context) map[string]string {
	c := rt.o.Config
	d := map[string]string{
		"region":         orNone(c.Region),
		"primary_region": orNone(c.PrimaryRegion),
		"replica_region": strconv.FormatBool(c.Replica()),
		"replica_wait":   c.Wait.String(),
	}
	switch {
	case !c.Replica():
		d["reads"] = "here: this machine is in the primary region"
		if c.PrimaryRegion == "" || c.Region == "" {
			d["reads"] = "here: FLY_REGION or PRIMARY_REGION is not set, so regions change nothing"
		}
		return d
	case rt.o.Local:
		d["reads"] = "replayed to " + c.PrimaryRegion + ": the data is on a volume there"
		d["writes"] = d["reads"]
		return d
	case rt.o.Replica == nil:
		d["reads"] = "the primary, over DATABASE_URL (no DATABASE_READ_URL)"
	default:
		d["reads"] = "the replica at DATABASE_READ_URL"
	}
	d["writes"] = "replayed to " + c.PrimaryRegion + "; uploads through the app are written here over DATABASE_URL"
	if rt.o.Replica == nil {
		return d
	}
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	d["replica_lag_seconds"], d["replica_lag_bytes"] = "unknown", "unknown"
	if lagger, ok := rt.o.Replica.(storage.ReplayLagger); ok {
		if lag, err := lagger.ReplayLag(ctx); err == nil {
			d["replica_lag_seconds"] = strconv.FormatFloat(lag.Seconds(), 'f', 3, 64)
		}
	}
	if rt.o.Primary != nil {
		replayed, err1 := rt.o.Replica.ReplayPosition(ctx)
		written, err2 := rt.o.Primary.WritePosition(ctx)
		if err1 == nil && err2 == nil {
			rt.observe(replayed)
			behind := uint64(0)
			if written > replayed {
				behind = uint64(written - replayed)
			}
			d["replica_lag_bytes"] = strconv.FormatUint(behind, 10)
		}
	}
	return d
}

func orNone(s string) string {
	if s == "" {
		return "(not set)"
	}
	return s
}
