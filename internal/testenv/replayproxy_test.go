package testenv

import (
	"bytes"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
)

// machine is an app stand-in that records what it serves. With replayTo
// set it answers a request not yet replayed with Fly-Replay to that
// region, and with always set it asks even for replayed ones.
type machine struct {
	region, replayTo string
	always           bool
	mu               sync.Mutex
	got              []string // method and URI
	srcs             []string
	bodies           [][]byte
}

func (m *machine) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	src := r.Header.Get("Fly-Replay-Src")
	if m.replayTo != "" && (src == "" || m.always) {
		w.Header().Set("Fly-Replay", "region="+m.replayTo)
		w.WriteHeader(http.StatusConflict)
		io.WriteString(w, "replay me")
		return
	}
	body, _ := io.ReadAll(r.Body)
	m.mu.Lock()
	m.got = append(m.got, r.Method+" "+r.URL.RequestURI())
	m.srcs = append(m.srcs, src)
	m.bodies = append(m.bodies, body)
	m.mu.Unlock()
	w.Header().Set("X-Served-By", m.region)
	w.WriteHeader(http.StatusCreated)
}

func twoRegions(t *testing.T, syd, ord *machine) *ReplayProxy {
	t.Helper()
	s, o := httptest.NewServer(syd), httptest.NewServer(ord)
	t.Cleanup(s.Close)
	t.Cleanup(o.Close)
	return NewReplayProxy(t, map[string]string{"syd": s.URL, "ord": o.URL})
}

func post(t *testing.T, p *ReplayProxy, entry string, body []byte) *http.Response {
	t.Helper()
	req, _ := http.NewRequest("POST", p.URL+"/api/notes?x=1", bytes.NewReader(body))
	req.Header.Set(EntryRegionHeader, entry)
	req.Header.Set("Authorization", "Bearer t")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp
}

func TestReplayProxyReplaysTheSameRequest(t *testing.T) {
	syd, ord := &machine{region: "syd", replayTo: "ord"}, &machine{region: "ord"}
	p := twoRegions(t, syd, ord)
	body := []byte(`{"title":"hello"}`)
	resp := post(t, p, "syd", body)
	if resp.StatusCode != http.StatusCreated || resp.Header.Get("X-Served-By") != "ord" {
		t.Fatalf("got %d served by %q, want 201 from ord", resp.StatusCode, resp.Header.Get("X-Served-By"))
	}
	if len(ord.got) != 1 || ord.got[0] != "POST /api/notes?x=1" || !bytes.Equal(ord.bodies[0], body) {
		t.Fatalf("ord got %q with bodies %q, want the same POST and body", ord.got, ord.bodies)
	}
	if !strings.Contains(ord.srcs[0], "region=syd") {
		t.Errorf("Fly-Replay-Src = %q, want it to name syd", ord.srcs[0])
	}
	if len(syd.got) != 0 {
		t.Errorf("syd served %q; its replay answer should have been discarded", syd.got)
	}
	hops := p.Hops()
	if len(hops) != 2 || hops[0].ReplayTo != "ord" || !hops[1].Replayed || hops[1].Region != "ord" {
		t.Errorf("hops = %+v", hops)
	}
}

func TestReplayProxyPassesAnswersWithoutReplay(t *testing.T) {
	syd, ord := &machine{region: "syd"}, &machine{region: "ord"}
	p := twoRegions(t, syd, ord)
	resp := post(t, p, "syd", []byte("x"))
	if resp.Header.Get("X-Served-By") != "syd" || syd.srcs[0] != "" {
		t.Fatalf("served by %q with src %q, want syd without Fly-Replay-Src", resp.Header.Get("X-Served-By"), syd.srcs)
	}
}

func TestReplayProxyRefusesBodiesOver1MB(t *testing.T) {
	syd, ord := &machine{region: "syd", replayTo: "ord"}, &machine{region: "ord"}
	p := twoRegions(t, syd, ord)
	resp := post(t, p, "syd", make([]byte, MaxReplayBody+1))
	if resp.StatusCode != http.StatusBadGateway || len(ord.got) != 0 {
		t.Fatalf("got %d and ord served %d requests, want 502 and none", resp.StatusCode, len(ord.got))
	}
	resp = post(t, p, "syd", make([]byte, MaxReplayBody))
	if resp.StatusCode != http.StatusCreated || len(ord.bodies) != 1 || len(ord.bodies[0]) != MaxReplayBody {
		t.Fatalf("a body of exactly 1 MB: got %d, ord bodies %d, want it replayed whole", resp.StatusCode, len(ord.bodies))
	}
}

func TestReplayProxyNeverReplaysTwice(t *testing.T) {
	syd, ord := &machine{region: "syd", replayTo: "ord"}, &machine{region: "ord", replayTo: "syd", always: true}
	p := twoRegions(t, syd, ord)
	resp := post(t, p, "syd", []byte("x"))
	if resp.StatusCode != http.StatusBadGateway {
		t.Fatalf("got %d, want 502 for a second replay", resp.StatusCode)
	}
	if hops := p.Hops(); len(hops) != 2 {
		t.Fatalf("hops = %+v, want exactly two", hops)
	}
}
