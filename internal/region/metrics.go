package region

import "github.com/prometheus/client_golang/prometheus"

// Metrics counts what the router and the read wrapper decide, for /metrics.
type Metrics struct {
	replays   *prometheus.CounterVec
	waits     *prometheus.CounterVec
	fallbacks prometheus.Counter
}

// Replay reasons, the reason label of flystorage_region_replays_total.
const (
	ReasonWrite    = "write"     // a write in a replica region
	ReasonLocal    = "local"     // SQLite or local files: every request goes to the primary region
	ReasonBehind   = "behind"    // the replica did not reach the client's token within REPLICA_WAIT
	ReasonReadOnly = "read_only" // a write reached a read-only replica (SQLSTATE 25006)
)

// Wait outcomes, the outcome label of flystorage_region_replica_waits_total.
const (
	WaitCaughtUp = "caught_up" // the replica was, or got, at or past the token
	WaitTimeout  = "timeout"   // it did not within REPLICA_WAIT: replayed
	WaitError    = "error"     // the replica could not say: read from the primary
)

// NewMetrics makes the counters; Register adds them to a registry.
func NewMetrics() *Metrics {
	m := &Metrics{
		replays: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "flystorage_region_replays_total",
			Help: "Requests answered with fly-replay to the primary region, by reason (write, local, behind, read_only).",
		}, []string{"reason"}),
		waits: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "flystorage_region_replica_waits_total",
			Help: "Reads carrying a consistency token that checked the replica, by outcome (caught_up, timeout, error).",
		}, []string{"outcome"}),
		fallbacks: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "flystorage_region_read_fallbacks_total",
			Help: "Reads sent to the primary because the replica at DATABASE_READ_URL failed.",
		}),
	}
	for _, r := range []string{ReasonWrite, ReasonLocal, ReasonBehind, ReasonReadOnly} {
		m.replays.WithLabelValues(r)
	}
	for _, o := range []string{WaitCaughtUp, WaitTimeout, WaitError} {
		m.waits.WithLabelValues(o)
	}
	return m
}

// Register adds the counters to reg (the server's registry).
func (m *Metrics) Register(reg prometheus.Registerer) error {
	for _, c := range []prometheus.Collector{m.replays, m.waits, m.fallbacks} {
		if err := reg.Register(c); err != nil {
			return err
		}
	}
	return nil
}

func (m *Metrics) replay(reason string) {
	if m != nil {
		m.replays.WithLabelValues(reason).Inc()
	}
}

func (m *Metrics) wait(outcome string) {
	if m != nil {
		m.waits.WithLabelValues(outcome).Inc()
	}
}

func (m *Metrics) fallback() {
	if m != nil {
		m.fallbacks.Inc()
	}
}
