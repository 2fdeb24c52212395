package replication

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/superfly/ltx"
)

// Register adds the replication's metrics to reg: the lag, both TXIDs,
// and the commit time of the newest verified backup.
func (r *Replicator) Register(reg prometheus.Registerer) error {
	return registerGauges(reg, r.positions, func() float64 {
		if v := r.verified.Load(); v != nil {
			return float64(v.At.UnixNano()) / 1e9
		}
		return 0
	})
}

// registerGauges registers the gauges every machine reports, a writer or
// a follower.
func registerGauges(reg prometheus.Registerer, positions func() (local, replicated ltx.TXID, lag time.Duration), verified func() float64) error {
	gauge := func(name, help string, f func() float64) prometheus.Collector {
		return prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: name, Help: help}, f)
	}
	for _, c := range []prometheus.Collector{
		gauge("flystorage_sqlite_replication_lag_seconds", "How far the bucket's replica is behind the writer's volume, or this follower's copy behind the replica: 0 when it holds every transaction, else seconds.",
			func() float64 { _, _, lag := positions(); return lag.Seconds() }),
		gauge("flystorage_sqlite_local_txid", "The newest transaction on this machine's volume (Litestream's TXID).",
			func() float64 { local, _, _ := positions(); return float64(local) }),
		gauge("flystorage_sqlite_replicated_txid", "The newest transaction in the bucket's replica.",
			func() float64 { _, replicated, _ := positions(); return float64(replicated) }),
		gauge("flystorage_sqlite_backup_verified_timestamp_seconds", "Commit time (Unix seconds) of the newest replicated state a restore proved good; 0 before the first.",
			verified),
	} {
		if err := reg.Register(c); err != nil {
			return err
		}
	}
	return nil
}
