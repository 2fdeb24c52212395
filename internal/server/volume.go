package server

import (
	"sync"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/example/flystorage/internal/storage"
)

// volumeOf finds the local volume a store keeps its data on, through the
// metrics wrapper; ok is false for stores with none (Postgres, S3).
func volumeOf(store any) (storage.VolumeReporter, bool) {
	return storage.Capability[storage.VolumeReporter](store)
}

var volumeFree = prometheus.NewDesc("flystorage_volume_free_bytes",
	"Bytes free on the volume holding the store's data (SQLite, local files); writes fail with 507 at zero.", []string{"store"}, nil)

// volumeCollector reads the stores' free space at each scrape.
type volumeCollector struct {
	mu     sync.Mutex
	stores map[string]storage.VolumeReporter // by label: database, files
}

func (c *volumeCollector) add(store string, v storage.VolumeReporter) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.stores[store] = v
}

func (c *volumeCollector) Describe(ch chan<- *prometheus.Desc) { ch <- volumeFree }

func (c *volumeCollector) Collect(ch chan<- prometheus.Metric) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for store, v := range c.stores {
		if vol, err := v.Volume(); err == nil {
			ch <- prometheus.MustNewConstMetric(volumeFree, prometheus.GaugeValue, float64(vol.FreeBytes), store)
		}
	}
}
