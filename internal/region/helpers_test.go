package region_test

import (
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/example/flystorage/internal/region"
)

func httpHandler(f func()) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { f() })
}

func get(h http.Handler, path, token string) *httptest.ResponseRecorder {
	req := httptest.NewRequest("GET", path, nil)
	req.Header.Set(region.TokenHeader, token)
	w := httptest.NewRecorder()
	h.ServeHTTP(w, req)
	return w
}

// fallbacks reads flystorage_region_read_fallbacks_total.
func fallbacks(t *testing.T, m *region.Metrics) float64 {
	t.Helper()
	reg := prometheus.NewRegistry()
	if err := m.Register(reg); err != nil {
		t.Fatal(err)
	}
	families, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range families {
		if f.GetName() == "flystorage_region_read_fallbacks_total" {
			var total float64
			for _, m := range f.GetMetric() {
				total += (*dto.Metric).GetCounter(m).GetValue()
			}
			return total
		}
	}
	t.Fatal("no flystorage_region_read_fallbacks_total")
	return 0
}
