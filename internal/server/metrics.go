package server

import (
	"context"
	"io"
	"iter"
	"net/http"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/example/flystorage/internal/storage"
)

// Metrics are what /metrics shows, in Prometheus's text format: requests
// by route pattern, method and status with their latency, the database's
// connection pools, blob store operations, and the build.
type Metrics struct {
	registry  *prometheus.Registry
	requests  *prometheus.CounterVec
	latency   *prometheus.HistogramVec
	blobOps   *prometheus.CounterVec
	blobTimes *prometheus.HistogramVec
	volumes   *volumeCollector
}

// NewMetrics registers the app's metrics, the Go runtime's, the process's
// and the build's. db's pools are read at each scrape if it reports them.
func NewMetrics(db storage.Database) *Metrics {
	m := &Metrics{
		registry: prometheus.NewRegistry(),
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "flystorage_http_requests_total", Help: "HTTP requests answered, by route pattern, method and status.",
		}, []string{"route", "method", "status"}),
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "flystorage_http_request_duration_seconds", Help: "Time to answer HTTP requests, by route pattern and method.",
			Buckets: prometheus.ExponentialBuckets(0.001, 4, 9), // 1ms to about 65s
		}, []string{"route", "method"}),
		blobOps: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "flystorage_blob_operations_total", Help: "Blob store operations, by operation and result (ok, not_found, error).",
		}, []string{"op", "result"}),
		blobTimes: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "flystorage_blob_operation_duration_seconds", Help: "Time blob store operations took, by operation.",
			Buckets: prometheus.ExponentialBuckets(0.001, 4, 9),
		}, []string{"op"}),
	}
	m.registry.MustRegister(m.requests, m.latency, m.blobOps, m.blobTimes,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		collectors.NewBuildInfoCollector())
	if pools, ok := db.(storage.PoolReporter); ok {
		m.registry.MustRegister(poolCollector{pools})
	}
	m.volumes = &volumeCollector{stores: map[string]storage.VolumeReporter{}}
	m.registry.MustRegister(m.volumes)
	if v, ok := volumeOf(db); ok {
		m.volumes.add("database", v)
	}
	return m
}

// Registerer is the registry, for packages that register their own
// metrics (the regions', the cache's) on /metrics.
func (m *Metrics) Registerer() prometheus.Registerer { return m.registry }

// Handler serves the metrics in Prometheus's text format.
func (m *Metrics) Handler() http.Handler {
	return promhttp.HandlerFor(m.registry, promhttp.HandlerOpts{})
}

func (m *Metrics) observeRequest(route, method string, status int, d time.Duration) {
	m.requests.WithLabelValues(route, method, strconv.Itoa(status)).Inc()
	m.latency.WithLabelValues(route, method).Observe(d.Seconds())
}

func (m *Metrics) observeBlob(op string, start time.Time, err error) {
	result := "ok"
	switch {
	case err == nil:
	case isNotFound(err):
		result = "not_found"
	default:
		result = "error"
	}
	m.blobOps.WithLabelValues(op, result).Inc()
	m.blobTimes.WithLabelValues(op).Observe(time.Since(start).Seconds())
}

var (
	poolConns    = prometheus.NewDesc("flystorage_db_pool_connections", "Open database connections, by pool and state (in_use, idle).", []string{"pool", "state"}, nil)
	poolMax      = prometheus.NewDesc("flystorage_db_pool_max_connections", "Most connections the pool may open.", []string{"pool"}, nil)
	poolAcquires = prometheus.NewDesc("flystorage_db_pool_acquires_total", "Connections handed out by the pool (0 where the driver does not count them).", []string{"pool"}, nil)
	poolWaits    = prometheus.NewDesc("flystorage_db_pool_waits_total", "Times a caller waited for a connection.", []string{"pool"}, nil)
	poolWaitTime = prometheus.NewDesc("flystorage_db_pool_wait_seconds_total", "Time callers spent acquiring connections.", []string{"pool"}, nil)
)

// poolCollector reads the pools' statistics at each scrape.
type poolCollector struct{ db storage.PoolReporter }

func (c poolCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{poolConns, poolMax, poolAcquires, poolWaits, poolWaitTime} {
		ch <- d
	}
}

func (c poolCollector) Collect(ch chan<- prometheus.Metric) {
	for _, p := range c.db.PoolStats() {
		ch <- prometheus.MustNewConstMetric(poolConns, prometheus.GaugeValue, float64(p.InUse), p.Name, "in_use")
		ch <- prometheus.MustNewConstMetric(poolConns, prometheus.GaugeValue, float64(p.Idle), p.Name, "idle")
		ch <- prometheus.MustNewConstMetric(poolMax, prometheus.GaugeValue, float64(p.Max), p.Name)
		ch <- prometheus.MustNewConstMetric(poolAcquires, prometheus.CounterValue, float64(p.Acquires), p.Name)
		ch <- prometheus.MustNewConstMetric(poolWaits, prometheus.CounterValue, float64(p.Waits), p.Name)
		ch <- prometheus.MustNewConstMetric(poolWaitTime, prometheus.CounterValue, p.WaitTotal.Seconds(), p.Name)
	}
}

// InstrumentBlobs wraps b so that every operation is counted and timed. The
// wrapper can presign exactly when b can.
func (m *Metrics) InstrumentBlobs(b storage.Blobs) storage.Blobs {
	ib := &instrumentedBlobs{Blobs: b, m: m}
	if v, ok := volumeOf(b); ok {
		m.volumes.add("files", v)
	}
	if p, ok := b.(storage.Presigner); ok {
		return &instrumentedPresigner{instrumentedBlobs: ib, p: p}
	}
	return ib
}

type instrumentedBlobs struct {
	storage.Blobs
	m *Metrics
}

// Unwrap returns the store it instruments.
func (b *instrumentedBlobs) Unwrap() storage.Blobs { return b.Blobs }

var _ storage.BlobsWrapper = (*instrumentedBlobs)(nil)

func (b *instrumentedBlobs) Put(ctx context.Context, key string, r io.Reader, size int64, contentType string) error {
	start := time.Now()
	err := b.Blobs.Put(ctx, key, r, size, contentType)
	b.m.observeBlob("put", start, err)
	return err
}

func (b *instrumentedBlobs) Get(ctx context.Context, key string, rng *storage.ByteRange) (io.ReadCloser, storage.BlobInfo, error) {
	start := time.Now()
	r, info, err := b.Blobs.Get(ctx, key, rng)
	b.m.observeBlob("get", start, err)
	return r, info, err
}

func (b *instrumentedBlobs) Stat(ctx context.Context, key string) (storage.BlobInfo, error) {
	start := time.Now()
	info, err := b.Blobs.Stat(ctx, key)
	b.m.observeBlob("stat", start, err)
	return info, err
}

func (b *instrumentedBlobs) Delete(ctx context.Context, key string) error {
	start := time.Now()
	err := b.Blobs.Delete(ctx, key)
	b.m.observeBlob("delete", start, err)
	return err
}

func (b *instrumentedBlobs) List(ctx context.Context, prefix string) iter.Seq2[storage.BlobEntry, error] {
	return func(yield func(storage.BlobEntry, error) bool) {
		start := time.Now()
		var failed error
		for e, err := range b.Blobs.List(ctx, prefix) {
			failed = err
			if !yield(e, err) {
				break
			}
		}
		b.m.observeBlob("list", start, failed)
	}
}

type instrumentedPresigner struct {
	*instrumentedBlobs
	p storage.Presigner
}

func (b *instrumentedPresigner) PresignGet(ctx context.Context, key string, ttl time.Duration, filename string) (string, error) {
	start := time.Now()
	u, err := b.p.PresignGet(ctx, key, ttl, filename)
	b.m.observeBlob("presign_get", start, err)
	return u, err
}

func (b *instrumentedPresigner) Copy(ctx context.Context, src, dst string) error {
	start := time.Now()
	err := b.p.Copy(ctx, src, dst)
	b.m.observeBlob("copy", start, err)
	return err
}

func (b *instrumentedPresigner) PresignPut(ctx context.Context, key, contentType string, size int64, ttl time.Duration) (string, map[string]string, error) {
	start := time.Now()
	u, h, err := b.p.PresignPut(ctx, key, contentType, size, ttl)
	b.m.observeBlob("presign_put", start, err)
	return u, h, err
}

// each gathers the registry, as a scrape of /metrics would, and calls fn
// with every sample of the counters and gauges, its family's name and a
// lookup of its labels.
func (m *Metrics) each(fn func(family string, label func(string) string, value float64)) error {
	families, err := m.registry.Gather()
	if err != nil {
		return err
	}
	for _, f := range families {
		for _, s := range f.GetMetric() {
			var v float64
			switch {
			case s.GetCounter() != nil:
				v = s.GetCounter().GetValue()
			case s.GetGauge() != nil:
				v = s.GetGauge().GetValue()
			default:
				continue
			}
			label := func(name string) string {
				for _, l := range s.GetLabel() {
					if l.GetName() == name {
						return l.GetValue()
					}
				}
				return ""
			}
			fn(f.GetName(), label, v)
		}
	}
	return nil
}
