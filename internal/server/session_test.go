package server_test

import (
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/example/flystorage/internal/cache"
	"github.com/example/flystorage/internal/server"
	"github.com/example/flystorage/internal/service"
	"github.com/example/flystorage/internal/testenv"
)

const token = "0123456789abcdef0123"

// newSite serves the API with API_TOKEN set and sessions in the database,
// as the app runs without Redis.
func newSite(t *testing.T, limiter cache.Limiter) *httptest.Server {
	db, blobs := testenv.LocalStores(t)
	var c *cache.Cache // no Redis: sessions in the database
	svc := service.New(service.Options{DB: db, Blobs: blobs, KeyPrefix: "files/", MaxUpload: 1 << 20})
	srv := httptest.NewServer(server.New(server.Options{Service: svc, MaxUploadBytes: 1 << 20, APIToken: token,
		Sessions: c.Sessions(db), SessionTTL: time.Hour, Limiter: limiter}))
	t.Cleanup(srv.Close)
	return srv
}

func send(t *testing.T, client *http.Client, method, url, body string, headers ...string) *http.Response {
	t.Helper()
	req, _ := http.NewRequest(method, url, strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	res, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	return res
}

func TestSessions(t *testing.T) {
	srv := newSite(t, nil)
	jar, _ := cookiejar.New(nil)
	browser := &http.Client{Jar: jar}
	note := `{"title":"t"}`

	if res := send(t, browser, "POST", srv.URL+"/api/notes", note); res.StatusCode != http.StatusUnauthorized {
		t.Fatalf("a write before signing in = %d, want 401", res.StatusCode)
	}
	if res := send(t, browser, "POST", srv.URL+"/api/session", `{"token":"wrong-token-0123456"}`); res.StatusCode != http.StatusUnauthorized {
		t.Errorf("signing in with a wrong token = %d, want 401", res.StatusCode)
	}
	res := send(t, browser, "POST", srv.URL+"/api/session", `{"token":"`+token+`"}`)
	if res.StatusCode != http.StatusCreated {
		t.Fatalf("signing in = %d, want 201", res.StatusCode)
	}
	c := res.Cookies()[0]
	if !c.HttpOnly || c.SameSite != http.SameSiteStrictMode || c.Value == "" || strings.Contains(c.Value, token) {
		t.Errorf("session cookie %+v: want HttpOnly, SameSite=Strict, and a secret that is not the token", c)
	}
	if res := send(t, browser, "POST", srv.URL+"/api/notes", note, "Sec-Fetch-Site", "same-origin"); res.StatusCode != http.StatusCreated {
		t.Errorf("a write with the session = %d, want 201", res.StatusCode)
	}
	// Another site's page cannot write with the cookie.
	for _, h := range [][]string{{"Sec-Fetch-Site", "cross-site"}, {"Origin", "https://evil.example"}} {
		if res := send(t, browser, "POST", srv.URL+"/api/notes", note, h...); res.StatusCode != http.StatusForbidden {
			t.Errorf("a cross-site write (%s: %s) with the session = %d, want 403", h[0], h[1], res.StatusCode)
		}
	}
	// The bearer token keeps working for API clients, without a cookie.
	if res := send(t, http.DefaultClient, "POST", srv.URL+"/api/notes", note, "Authorization", "Bearer "+token); res.StatusCode != http.StatusCreated {
		t.Errorf("a write with the bearer token = %d, want 201", res.StatusCode)
	}
	// Signing out revokes the session at once.
	stolen := &http.Cookie{Name: c.Name, Value: c.Value}
	if res := send(t, browser, "DELETE", srv.URL+"/api/session", ""); res.StatusCode != http.StatusNoContent {
		t.Errorf("signing out = %d, want 204", res.StatusCode)
	}
	req, _ := http.NewRequest("POST", srv.URL+"/api/notes", strings.NewReader(note))
	req.AddCookie(stolen)
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusUnauthorized {
		t.Errorf("a write with a revoked session's cookie = %d, want 401", res.StatusCode)
	}
}

func TestRateLimit(t *testing.T) {
	now := time.Now()
	srv := newSite(t, cache.NewLocalLimiter(cache.Rate{N: 3, Per: time.Minute}, func() time.Time { return now }, 100))
	statuses := []int{}
	var last *http.Response
	for range 5 {
		last = send(t, http.DefaultClient, "POST", srv.URL+"/api/notes", `{"title":"t"}`, "Authorization", "Bearer "+token)
		statuses = append(statuses, last.StatusCode)
	}
	if want := []int{201, 201, 201, 429, 429}; !slices.Equal(statuses, want) {
		t.Errorf("five writes under a limit of 3/m answered %v, want %v", statuses, want)
	}
	if ra := last.Header.Get("Retry-After"); ra == "" || ra == "0" {
		t.Errorf("429 without a Retry-After: %q", ra)
	}
	if res := send(t, http.DefaultClient, "GET", srv.URL+"/api/notes", ""); res.StatusCode != http.StatusOK {
		t.Errorf("a read over the write limit = %d, want 200 (only writes are limited)", res.StatusCode)
	}
}
