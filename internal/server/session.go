package server

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"math"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// sessionCookie holds a session's secret. It is HttpOnly, so no script
// reads it, and SameSite=Strict, so no other site's page sends it.
const sessionCookie = "flystorage_session"

type sessionInput struct {
	Token string `json:"token"`
}

// signIn (POST /api/session) trades the API token for a session cookie, so
// the page never keeps the token itself.
func (s *Server) signIn(w http.ResponseWriter, r *http.Request) error {
	if err := sameSite(r); err != nil {
		return err
	}
	var in sessionInput
	if err := decode(w, r, &in); err != nil {
		return err
	}
	switch {
	case s.apiToken == "":
		return errorf(http.StatusBadRequest, "invalid", "API_TOKEN is not set, so writes need no sign-in")
	case s.sessions == nil:
		return errorf(http.StatusNotFound, "not_found", "sessions are off")
	case !s.validToken(in.Token):
		return errorf(http.StatusUnauthorized, "unauthorized", "that is not the API token")
	}
	secret, err := s.sessions.Create(r.Context(), s.sessionTTL)
	if err != nil {
		return fromStore(err, "the session store")
	}
	http.SetCookie(w, &http.Cookie{Name: sessionCookie, Value: secret + "." + s.seal(secret), Path: "/", MaxAge: int(s.sessionTTL.Seconds()),
		HttpOnly: true, Secure: s.onFly, SameSite: http.SameSiteStrictMode})
	writeJSON(w, http.StatusCreated, map[string]any{"signed_in": true, "expires_at": s.now().Add(s.sessionTTL).UTC().Truncate(time.Second)})
	return nil
}

// signOut (DELETE /api/session) revokes the session at once, on every
// machine, and clears the cookie.
func (s *Server) signOut(w http.ResponseWriter, r *http.Request) error {
	if err := sameSite(r); err != nil {
		return err
	}
	// The cookie goes in every case, even when the store cannot be reached.
	http.SetCookie(w, &http.Cookie{Name: sessionCookie, Path: "/", MaxAge: -1, HttpOnly: true, Secure: s.onFly, SameSite: http.SameSiteStrictMode})
	if c, err := r.Cookie(sessionCookie); err == nil && s.sessions != nil {
		secret, _, _ := strings.Cut(c.Value, ".")
		if err := s.sessions.Delete(r.Context(), secret); err != nil {
			return fromStore(err, "the session store")
		}
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// session (GET /api/session) tells the page whether writes need a token
// and whether it is signed in.
func (s *Server) session(w http.ResponseWriter, r *http.Request) error {
	signedIn, err := s.signedIn(r)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, map[string]bool{
		"token_required": s.apiToken != "" || s.onFly,
		"signed_in":      signedIn,
	})
	return nil
}

// signedIn reports whether the request carries a live session's cookie.
func (s *Server) signedIn(r *http.Request) (bool, error) {
	c, err := r.Cookie(sessionCookie)
	if err != nil || s.sessions == nil {
		return false, nil
	}
	secret, seal, _ := strings.Cut(c.Value, ".")
	if !hmac.Equal([]byte(seal), []byte(s.seal(secret))) {
		return false, nil // made with another API_TOKEN, or forged
	}
	ok, err := s.sessions.Get(r.Context(), secret)
	if err != nil {
		return false, fromStore(err, "the session store")
	}
	return ok, nil
}

// seal binds a session to the API token that minted it: the cookie is the
// session's secret, a dot, and this MAC of the secret keyed by the token.
// Rotating API_TOKEN (fly secrets set API_TOKEN=...) therefore ends every
// session made with the old one, on every machine, at once; the store's
// entries of those sessions expire unused.
func (s *Server) seal(secret string) string {
	mac := hmac.New(sha256.New, []byte(s.apiToken))
	mac.Write([]byte("flystorage session\x00" + secret))
	return base64.RawURLEncoding.EncodeToString(mac.Sum(nil))
}

// sameSite refuses a request that a page on another site made: a browser
// says where a request comes from in Sec-Fetch-Site, and older ones in
// Origin. SameSite=Strict already keeps the cookie off such requests; this
// is the second lock on the door.
func sameSite(r *http.Request) error {
	switch site := r.Header.Get("Sec-Fetch-Site"); site {
	case "", "same-origin", "none":
	default:
		return errorf(http.StatusForbidden, "forbidden", "a page on another site (Sec-Fetch-Site: %s) cannot write with this site's session", site)
	}
	if origin := r.Header.Get("Origin"); origin != "" {
		u, err := url.Parse(origin)
		if err != nil || u.Scheme != scheme(r) || u.Host != r.Host {
			return errorf(http.StatusForbidden, "forbidden", "a page on another origin cannot write with this site's session")
		}
	}
	return nil
}

// scheme is the scheme the client used: https when the connection is TLS
// or Fly's proxy, which ends TLS, says so in X-Forwarded-Proto.
func scheme(r *http.Request) string {
	if r.TLS != nil || r.Header.Get("X-Forwarded-Proto") == "https" {
		return "https"
	}
	return "http"
}

// privateNet is Fly's private network (6PN): requests over .internal come
// from there, straight from another machine, without Fly's proxy.
var privateNet = netip.MustParsePrefix("fdaa::/16")

// client is the key RATE_LIMIT counts r under: the connection's address,
// or on Fly the Fly-Client-IP that Fly's proxy sets. The header is trusted
// only on a connection from the proxy: a request over the private network
// (.internal) or from this machine itself carries whatever its sender
// wrote, so it is keyed by the address it comes from.
func (s *Server) client(r *http.Request) string {
	host, _, _ := net.SplitHostPort(r.RemoteAddr)
	if !s.onFly {
		return host
	}
	peer, err := netip.ParseAddr(host)
	if err != nil || peer.IsLoopback() || privateNet.Contains(peer.Unmap()) {
		return host
	}
	if ip := r.Header.Get("Fly-Client-IP"); ip != "" {
		return ip
	}
	return host
}

// limit applies RATE_LIMIT to the client (see client). A request that the
// region rules will replay is counted only where it is served, so a write
// entering a replica region is not counted twice.
func (s *Server) limit(r *http.Request) error {
	if s.limiter == nil || s.region != nil && s.region.Replays(r) {
		return nil
	}
	ok, retry := s.limiter.Allow(r.Context(), s.client(r))
	if ok {
		return nil
	}
	secs := int(math.Ceil(retry.Seconds()))
	return &apiError{status: http.StatusTooManyRequests, code: "rate_limited",
		msg: "too many writes from this client: try again in " + strconv.Itoa(secs) + "s (RATE_LIMIT)", retryAfter: max(secs, 1)}
}
