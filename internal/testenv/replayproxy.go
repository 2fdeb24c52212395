package testenv

import (
	"bytes"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"
)

// EntryRegionHeader names the region a request reaches first through a
// ReplayProxy, standing in for the Fly edge nearest the client. The proxy
// removes it before passing the request on.
const EntryRegionHeader = "Test-Entry-Region"

// MaxReplayBody is the largest request body Fly's proxy replays (1 MB).
const MaxReplayBody = 1 << 20

// ReplayProxy stands in for Fly's proxy in front of app machines in
// several regions, with the fly-replay behaviour Fly documents: a request
// goes to the machine of its entry region (EntryRegionHeader); if that
// machine answers with a Fly-Replay: region=X header, the proxy discards
// the answer and sends the same request (method, path, headers, body) to
// region X, adding Fly-Replay-Src, and returns that answer. It replays a
// request at most once, and never one whose body is over 1 MB. A
// Fly-Replay: instance=ID answer goes to the backend registered under
// that machine id (backends may name machines as well as regions).
//
// Fly documents that larger requests cannot be replayed but not what its
// proxy answers then; this one assumes an error and answers 502 with a
// message naming the limit. An answer asking for a second replay gets 502
// too.
type ReplayProxy struct {
	URL      string
	backends map[string]*url.URL
	rt       http.RoundTripper

	mu   sync.Mutex
	hops []Hop
}

// Hop is one request the proxy sent to a machine.
type Hop struct {
	Method, Path string
	Region       string
	Replayed     bool // carried Fly-Replay-Src
	Status       int
	ReplayTo     string // the region its Fly-Replay answer named, if any
}

// NewReplayProxy serves a ReplayProxy in front of backends, a base URL
// for each region code, until the test ends.
func NewReplayProxy(t testing.TB, backends map[string]string) *ReplayProxy {
	t.Helper()
	p := &ReplayProxy{backends: map[string]*url.URL{}, rt: &http.Transport{}}
	for region, raw := range backends {
		u, err := url.Parse(raw)
		if err != nil {
			t.Fatalf("backend %s: %v", region, err)
		}
		p.backends[region] = u
	}
	srv := httptest.NewServer(p)
	t.Cleanup(srv.Close)
	p.URL = srv.URL
	return p
}

// Hops returns every request sent to a machine so far, in order.
func (p *ReplayProxy) Hops() []Hop {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]Hop(nil), p.hops...)
}

func (p *ReplayProxy) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	entry := r.Header.Get(EntryRegionHeader)
	if _, ok := p.backends[entry]; !ok {
		http.Error(w, fmt.Sprintf("test proxy: no machine in entry region %q (set %s)", entry, EntryRegionHeader), http.StatusBadGateway)
		return
	}
	// Keep up to 1 MB (and a byte) to replay; a larger body streams on
	// to the first machine and cannot be replayed.
	head, err := io.ReadAll(io.LimitReader(r.Body, MaxReplayBody+1))
	if err != nil {
		http.Error(w, "test proxy: reading the request body: "+err.Error(), http.StatusBadGateway)
		return
	}
	tooLarge := len(head) > MaxReplayBody
	body := io.Reader(bytes.NewReader(head))
	if tooLarge {
		body = io.MultiReader(bytes.NewReader(head), r.Body)
	}
	resp, err := p.send(r, entry, body, "")
	if err != nil {
		http.Error(w, "test proxy: "+err.Error(), http.StatusBadGateway)
		return
	}
	target := replayRegion(resp.Header.Get("Fly-Replay"))
	if target == "" {
		copyResponse(w, resp)
		return
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	switch {
	case tooLarge:
		http.Error(w, fmt.Sprintf("test proxy: cannot replay a request body over %d bytes to %s", MaxReplayBody, target), http.StatusBadGateway)
		return
	case p.backends[target] == nil:
		http.Error(w, fmt.Sprintf("test proxy: no machine in region %q to replay to", target), http.StatusBadGateway)
		return
	}
	src := fmt.Sprintf("instance=test-%s;region=%s;t=%d", entry, entry, time.Now().UnixMicro())
	resp, err = p.send(r, target, bytes.NewReader(head), src)
	if err != nil {
		http.Error(w, "test proxy: "+err.Error(), http.StatusBadGateway)
		return
	}
	if again := replayRegion(resp.Header.Get("Fly-Replay")); again != "" {
		resp.Body.Close()
		http.Error(w, fmt.Sprintf("test proxy: a replayed request asked to be replayed again, to %s", again), http.StatusBadGateway)
		return
	}
	copyResponse(w, resp)
}

// send passes r to the machine in region with body, and records the hop.
func (p *ReplayProxy) send(r *http.Request, region string, body io.Reader, replaySrc string) (*http.Response, error) {
	u := *p.backends[region]
	u.Path, u.RawQuery = r.URL.Path, r.URL.RawQuery
	out, err := http.NewRequestWithContext(r.Context(), r.Method, u.String(), body)
	if err != nil {
		return nil, err
	}
	out.Header = r.Header.Clone()
	out.Header.Del(EntryRegionHeader)
	out.Header.Del("Fly-Replay-Src") // only the proxy sets it
	if replaySrc != "" {
		out.Header.Set("Fly-Replay-Src", replaySrc)
	}
	out.ContentLength = r.ContentLength
	if r.ContentLength == 0 {
		out.Body = http.NoBody
	}
	resp, err := p.rt.RoundTrip(out)
	if err != nil {
		return nil, fmt.Errorf("%s %s in %s: %w", r.Method, r.URL.Path, region, err)
	}
	p.mu.Lock()
	p.hops = append(p.hops, Hop{Method: r.Method, Path: r.URL.Path, Region: region, Replayed: replaySrc != "",
		Status: resp.StatusCode, ReplayTo: replayRegion(resp.Header.Get("Fly-Replay"))})
	p.mu.Unlock()
	return resp, nil
}

// replayRegion reads the first region of a Fly-Replay value such as
// region=ord or region="ord,any";state=x, or the machine of
// instance=<id>.
func replayRegion(v string) string {
	for _, field := range strings.Split(v, ";") {
		if k, val, ok := strings.Cut(strings.TrimSpace(field), "="); ok && (k == "region" || k == "instance") {
			first, _, _ := strings.Cut(strings.Trim(val, `"`), ",")
			return first
		}
	}
	return ""
}

func copyResponse(w http.ResponseWriter, resp *http.Response) {
	defer resp.Body.Close()
	for k, vs := range resp.Header {
		for _, v := range vs {
			w.Header().Add(k, v)
		}
	}
	w.WriteHeader(resp.StatusCode)
	io.Copy(w, resp.Body)
}
