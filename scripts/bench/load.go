package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"net/url"
	"sync"
	"sync/atomic"
	"time"
)

// maxRequests bounds one figure's requests whatever its duration.
const maxRequests = 5_000_000

// loopback refuses any URL whose host is not a loopback address: the load
// generator is for this machine only.
func loopback(raw string) error {
	u, err := url.Parse(raw)
	if err != nil {
		return err
	}
	host := u.Hostname()
	if host == "localhost" {
		return nil
	}
	if ip := net.ParseIP(host); ip == nil || !ip.IsLoopback() {
		return fmt.Errorf("%s is not a loopback address: the benchmark only loads this machine", raw)
	}
	return nil
}

// client keeps one connection per worker alive.
func newClient(workers int) *http.Client {
	return &http.Client{
		Timeout: 30 * time.Second,
		Transport: &http.Transport{
			MaxIdleConns: workers, MaxIdleConnsPerHost: workers, MaxConnsPerHost: workers,
			DisableCompression: true,
		},
	}
}

// rate runs fn from workers goroutines for d (after a short warm-up that is
// not counted) and returns completed operations per second. The first
// error stops it.
func rate(ctx context.Context, workers int, d time.Duration, fn func(ctx context.Context, rng *rand.Rand) error) (float64, error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var (
		counting atomic.Bool
		n        atomic.Int64
		failed   error
		once     sync.Once
		wg       sync.WaitGroup
	)
	for w := range workers {
		wg.Go(func() {
			rng := rand.New(rand.NewPCG(uint64(w), uint64(time.Now().UnixNano())))
			for ctx.Err() == nil {
				if err := fn(ctx, rng); err != nil {
					if ctx.Err() == nil {
						once.Do(func() { failed = err; cancel() })
					}
					return
				}
				if counting.Load() && n.Add(1) >= maxRequests {
					cancel()
				}
			}
		})
	}
	warm := min(d/5, 200*time.Millisecond)
	select {
	case <-time.After(warm):
	case <-ctx.Done():
	}
	counting.Store(true)
	start := time.Now()
	select {
	case <-time.After(d):
	case <-ctx.Done():
	}
	elapsed := time.Since(start)
	counting.Store(false)
	got := n.Load()
	cancel()
	wg.Wait()
	if failed != nil {
		return 0, failed
	}
	return float64(got) / elapsed.Seconds(), nil
}

// httpRate loads base with workers clients sending what next returns.
func httpRate(ctx context.Context, workers int, d time.Duration, c *http.Client, want int,
	next func(rng *rand.Rand) (method, path string, body []byte)) (float64, error) {
	return rate(ctx, workers, d, func(ctx context.Context, rng *rand.Rand) error {
		method, u, body := next(rng)
		var r io.Reader
		if body != nil {
			r = bytes.NewReader(body)
		}
		req, err := http.NewRequestWithContext(ctx, method, u, r)
		if err != nil {
			return err
		}
		if body != nil {
			req.Header.Set("Content-Type", "application/json")
		}
		res, err := c.Do(req)
		if err != nil {
			return err
		}
		_, err = io.Copy(io.Discard, res.Body)
		res.Body.Close()
		if res.StatusCode != want {
			return fmt.Errorf("%s %s: %s, want %d", method, u, res.Status, want)
		}
		return err
	})
}

// noteBodies are small notes, as the page sends, made once so that the
// load generator spends its CPU sending them.
var noteBodies = func() [][]byte {
	out := make([][]byte, 1024)
	for i := range out {
		out[i], _ = json.Marshal(map[string]string{"title": fmt.Sprintf("note %d", i), "body": "a benchmark note with a short body"})
	}
	return out
}()

func noteBody(rng *rand.Rand) []byte { return noteBodies[rng.IntN(len(noteBodies))] }

// createNotes makes n notes through the API and returns their ids.
func createNotes(ctx context.Context, c *http.Client, base string, n int) ([]string, error) {
	ids := make([]string, 0, n)
	rng := rand.New(rand.NewPCG(1, 2))
	for range n {
		res, err := c.Post(base+"/api/notes", "application/json", bytes.NewReader(noteBody(rng)))
		if err != nil {
			return nil, err
		}
		var out struct{ ID string }
		err = json.NewDecoder(res.Body).Decode(&out)
		res.Body.Close()
		if err != nil || res.StatusCode != http.StatusCreated {
			return nil, fmt.Errorf("creating a note: %s %v", res.Status, err)
		}
		ids = append(ids, out.ID)
	}
	return ids, nil
}

// slice is how long each turn of an interleaved pair runs.
const slice = 500 * time.Millisecond

// pair measures app and ceiling in alternating turns of slice, d each in
// all, so that both see the same moments of a busy machine, and returns
// their rates.
func pair(d time.Duration, app, ceiling func(time.Duration) (float64, error)) (float64, float64, error) {
	var a, c, secs float64
	for done := time.Duration(0); done < d; done += slice {
		x, err := app(slice)
		if err != nil {
			return 0, 0, err
		}
		y, err := ceiling(slice)
		if err != nil {
			return 0, 0, err
		}
		a, c, secs = a+x*slice.Seconds(), c+y*slice.Seconds(), secs+slice.Seconds()
	}
	return a / secs, c / secs, nil
}
