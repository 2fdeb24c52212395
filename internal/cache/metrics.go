package cache

import "github.com/prometheus/client_golang/prometheus"

// Metrics are the cache's counters. The app adds Collectors to its
// registry.
type Metrics struct {
	hits, misses *prometheus.CounterVec // by kind
	bypassed     *prometheus.CounterVec // by kind
	errors       *prometheus.CounterVec // by op
	limited      prometheus.Counter
}

// NewMetrics makes unregistered counters.
func NewMetrics() *Metrics {
	return &Metrics{
		hits: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "flystorage_cache_hits_total", Help: "Reads answered from the Redis cache, by kind (note, file).",
		}, []string{"kind"}),
		misses: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "flystorage_cache_misses_total", Help: "Reads the Redis cache could not answer (absent, or Redis failed), by kind.",
		}, []string{"kind"}),
		bypassed: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "flystorage_cache_bypassed_total", Help: "Reads that skipped the cache because an invalidation of that entry has not reached Redis yet, by kind.",
		}, []string{"kind"}),
		errors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "flystorage_redis_errors_total", Help: "Redis commands that failed, timed out, or were skipped after repeated failures, by operation; the app went on without Redis.",
		}, []string{"op"}),
		limited: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "flystorage_rate_limited_total", Help: "Requests refused by RATE_LIMIT.",
		}),
	}
}

// Collectors returns every counter.
func (m *Metrics) Collectors() []prometheus.Collector {
	return []prometheus.Collector{m.hits, m.misses, m.bypassed, m.errors, m.limited}
}
