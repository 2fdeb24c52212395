package server

import (
	"net/http/httptest"
	"testing"
)

// TestRateLimitClient: on Fly, a request from Fly's proxy is counted by
// the Fly-Client-IP the proxy sets, so clients behind the one proxy get a
// limit each; a request from the private network or this machine is
// counted by its own address, whatever header it carries; off Fly the
// header means nothing.
func TestRateLimitClient(t *testing.T) {
	for _, tc := range []struct {
		name, remote, header string
		onFly                bool
		want                 string
	}{
		{"Fly's proxy", "172.16.5.2:41234", "203.0.113.7", true, "203.0.113.7"},
		{"Fly's proxy, no header", "172.16.5.2:41234", "", true, "172.16.5.2"},
		{"the private network", "[fdaa:0:1:a7b:2::3]:41234", "203.0.113.7", true, "fdaa:0:1:a7b:2::3"},
		{"this machine", "127.0.0.1:41234", "203.0.113.7", true, "127.0.0.1"},
		{"off Fly", "172.16.5.2:41234", "203.0.113.7", false, "172.16.5.2"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := httptest.NewRequest("POST", "/api/notes", nil)
			r.RemoteAddr = tc.remote
			if tc.header != "" {
				r.Header.Set("Fly-Client-IP", tc.header)
			}
			if got := (&Server{onFly: tc.onFly}).client(r); got != tc.want {
				t.Errorf("client(RemoteAddr %s, Fly-Client-IP %q) = %q, want %q", tc.remote, tc.header, got, tc.want)
			}
		})
	}
}
