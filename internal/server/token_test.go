package server_test

import (
	"io"
	"net/http"
	"strings"
	"testing"
)

// TestWrongBearerToken is the unit-level twin of cmd/app's TestAPIToken:
// a write with a bearer token that is not API_TOKEN answers 401 with
// WWW-Authenticate, stores nothing, and the right token in any case of
// the scheme is accepted.
func TestWrongBearerToken(t *testing.T) {
	srv := newSite(t, nil)
	for _, auth := range []string{"Bearer " + token + "x", "Bearer " + token[:len(token)-1], "Bearer ", "Basic " + token, token} {
		res := send(t, http.DefaultClient, "POST", srv.URL+"/api/notes", `{"title":"t"}`, "Authorization", auth)
		if res.StatusCode != http.StatusUnauthorized || !strings.HasPrefix(res.Header.Get("WWW-Authenticate"), "Bearer") {
			t.Errorf("a write with Authorization %q = %d (WWW-Authenticate %q), want 401 with a Bearer challenge", auth, res.StatusCode, res.Header.Get("WWW-Authenticate"))
		}
	}
	res, err := http.Get(srv.URL + "/api/notes")
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	var b strings.Builder
	if _, err := io.Copy(&b, res.Body); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(b.String(), `"notes":[]`) {
		t.Errorf("refused writes stored notes: %s", b.String())
	}
	for _, scheme := range []string{"Bearer", "bearer"} {
		if res := send(t, http.DefaultClient, "POST", srv.URL+"/api/notes", `{"title":"t"}`, "Authorization", scheme+" "+token); res.StatusCode != http.StatusCreated {
			t.Errorf("a write with %s and the token = %d, want 201", scheme, res.StatusCode)
		}
	}
}
