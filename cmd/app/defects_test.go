package main

import (
	"maps"
	"net/http"
	"strings"
	"testing"

	"github.com/example/flystorage/internal/testenv"
)

// These tests reproduce issue 21's defects against the whole app, each on
// the services its row names.

// sessionCookie signs in on a with token and returns the Cookie header
// value of the session.
func sessionCookie(t *testing.T, a *app, token string) string {
	t.Helper()
	r := a.do(t, "POST", "/api/session", "application/json", strings.NewReader(`{"token":"`+token+`"}`), "Sec-Fetch-Site", "same-origin")
	expect(t, "signing in", r, 201)
	for _, c := range (&http.Response{Header: r.header}).Cookies() {
		if c.Name == "flystorage_session" {
			return c.Name + "=" + c.Value
		}
	}
	t.Fatalf("signing in set no flystorage_session cookie: %v", r.header["Set-Cookie"])
	return ""
}

// TestRotatingTokenEndsSessions is issue 21's row 1 on Postgres with
// Redis: a session made with the old API_TOKEN must not write once the app
// runs with a new one.
func TestRotatingTokenEndsSessions(t *testing.T) {
	redisSrv := testenv.StartRedis(t)
	apps, env := machines(t, 1, redisSrv.URL(), map[string]string{"API_TOKEN": "the-old-token-0123456"})
	old := apps[0]
	cookie := sessionCookie(t, old, "the-old-token-0123456")
	old.stop()

	env = maps.Clone(env)
	env["API_TOKEN"] = "the-new-token-6543210"
	rotated := startApp(t, env)
	page := &app{url: rotated.url, logs: rotated.logs} // the cookie, no token
	withCookie := []string{"Cookie", cookie, "Sec-Fetch-Site", "same-origin"}
	if s := page.do(t, "GET", "/api/session", "", nil, withCookie...).json(t); s["signed_in"] != false {
		t.Errorf("after rotating API_TOKEN, GET /api/session with the old cookie says %v, want signed_in false", s)
	}
	expectError(t, "a write with a session of the old token", page.do(t, "POST", "/api/notes", "application/json",
		strings.NewReader(`{"title":"by an old session"}`), withCookie...), 401, "unauthorized")

	// A session of the new token works.
	fresh := sessionCookie(t, page, "the-new-token-6543210")
	expect(t, "a write with a session of the new token", page.do(t, "POST", "/api/notes", "application/json",
		strings.NewReader(`{"title":"by a new session"}`), "Cookie", fresh, "Sec-Fetch-Site", "same-origin"), 201)
}
