package region

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"sync/atomic"
	"time"

	"golang.org/x/sync/singleflight"

	"github.com/example/flystorage/internal/storage"
)

// Headers and the cookie of the fly-replay protocol and of the consistency
// token.
const (
	// ReplayHeader, on a response, asks Fly's proxy to run the same request
	// again in another region; the client never sees that response.
	ReplayHeader = "Fly-Replay"
	// ReplaySrcHeader is what the proxy adds to a replayed request. A
	// request carrying it is never replayed again.
	ReplaySrcHeader = "Fly-Replay-Src"
	// TokenHeader carries the consistency token: set on every successful
	// write, sent back by API clients on their reads.
	TokenHeader = "Consistency-Token"
	// TokenCookie carries the same token for the page.
	TokenCookie = "consistency_token"
	// MaxReplayBody is the largest request body Fly's proxy replays.
	MaxReplayBody = 1 << 20
)

// ReplayStatus is the status of a response carrying fly-replay. The proxy
// discards that response, so the status matters only when no proxy acts
// on the header (a client talking to the machine directly, or a test);
// 409 Conflict is what Fly's own examples answer.
const ReplayStatus = http.StatusConflict

// tokenMaxAge is how long the cookie lives: a replica normally catches up
// in well under a second, and a stale token costs nothing since the
// replica is past it.
const tokenMaxAge = 5 * time.Minute

// Options configure a Router.
type Options struct {
	Config Config
	// Local is true when the database (SQLite) or the files (a local
	// directory) live on this machine's volume: there is no replica of
	// them, so a machine outside the primary region sends every request
	// there.
	Local bool
	// Holder, when set, says this machine follows a SQLite replica that
	// another machine writes (internal/replication), and returns that
	// machine's id (FLY_MACHINE_ID): writes are replayed to it with
	// fly-replay: instance=<id>, in any region, and reads are served here.
	Holder func() string
	// Primary gives the token after each write; nil sets no token.
	Primary storage.WritePositioner
	// Replica is the read replica; nil when reads go to the primary, and
	// then reads never wait.
	Replica storage.ReplayPositioner
	// InPlace reports whether a write in a replica region is served here,
	// over DATABASE_URL, instead of replayed. By default: POST /api/files,
	// whose body may pass the 1 MB Fly replays. Writes whose bodies are
	// larger than that, or of unknown length, are always served in place.
	InPlace func(*http.Request) bool
	// Exempt requests are always served here: health checks, which Fly
	// sends to each machine, and metrics. By default GET /healthz, /readyz
	// and /metrics.
	Exempt  func(*http.Request) bool
	Metrics *Metrics
	Logger  *slog.Logger
	// Now and Sleep are the clock; tests move it instead of sleeping.
	Now   func() time.Time
	Sleep func(ctx context.Context, d time.Duration) error
	// Poll is how often the replica is asked how far it has replayed
	// while reads wait for it, however many; 10ms by default.
	Poll time.Duration
}

// Router applies the rules of docs/regions.md to each request (Wrap) and
// turns a write refused by a read-only replica into a replay
// (HandleError).
type Router struct {
	o    Options
	seen atomic.Uint64 // the highest replay position the replica reported
	// primarySeen is the highest write position the primary reported;
	// asking shares one query among the reads that need it at once.
	primarySeen atomic.Uint64
	asking      singleflight.Group
	waiting     waiters // the reads waiting for the replica (poll.go)
}

// NewRouter makes a Router; zero options get their defaults.
func NewRouter(o Options) *Router {
	if o.InPlace == nil {
		o.InPlace = func(r *http.Request) bool { return r.Method == http.MethodPost && r.URL.Path == "/api/files" }
	}
	if o.Exempt == nil {
		o.Exempt = func(r *http.Request) bool {
			return r.Method == http.MethodGet && (r.URL.Path == "/healthz" || r.URL.Path == "/readyz" || r.URL.Path == "/metrics")
		}
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Sleep == nil {
		o.Sleep = sleep
	}
	if o.Poll <= 0 {
		o.Poll = 10 * time.Millisecond
	}
	if o.Config.Wait == 0 {
		o.Config.Wait = DefaultWait
	}
	return &Router{o: o}
}

func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// LogStart logs at start what the machine does with requests, so an
// operator sees why a SQLite machine in syd answers nothing itself.
func (rt *Router) LogStart() {
	c := rt.o.Config
	switch {
	case !c.Replica():
		return
	case rt.o.Local:
		rt.o.Logger.Warn("this machine is outside the primary region and its data is on a local volume (SQLite or BLOB_DIR): every request is replayed to the primary region (docs/regions.md)",
			"region", c.Region, "primary_region", c.PrimaryRegion)
	default:
		reads := "the primary at DATABASE_URL (set DATABASE_READ_URL to read a nearby replica)"
		if rt.o.Replica != nil {
			reads = "the replica at DATABASE_READ_URL"
		}
		rt.o.Logger.Info("this machine is outside the primary region: writes are replayed there, reads go to "+reads,
			"region", c.Region, "primary_region", c.PrimaryRegion, "replica_wait", c.Wait)
	}
}

// isWrite reports whether r changes data: POST, PUT, PATCH and DELETE under
// /api/ and the app's signed uploads.
func isWrite(r *http.Request) bool {
	switch r.Method {
	case http.MethodPost, http.MethodPut, http.MethodPatch, http.MethodDelete:
		return strings.HasPrefix(r.URL.Path, "/api/") || strings.HasPrefix(r.URL.Path, "/signed/")
	}
	return false
}

// replayable reports whether Fly's proxy can replay r: its body is known
// to be at most MaxReplayBody bytes.
func replayable(r *http.Request) bool {
	return r.ContentLength >= 0 && r.ContentLength <= MaxReplayBody
}

// Wrap applies the rules to every request before next sees it:
//
//   - Outside a replica region (or off Fly) requests pass, and successful
//     writes get a consistency token.
//   - Local data (SQLite, local files) in a replica region: every request
//     is replayed to the primary region.
//   - Writes in a replica region are replayed, except those served in
//     place (InPlace, or too large to replay), which go to the primary
//     over DATABASE_URL and get a token.
//   - Reads in a replica region carrying a token wait up to REPLICA_WAIT
//     for the replica to reach it, and are replayed if it does not.
//
// A request already replayed (Fly-Replay-Src) is never replayed again.
func (rt *Router) Wrap(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c := rt.o.Config
		if rt.o.Exempt(r) {
			next.ServeHTTP(w, r)
			return
		}
		replayed := r.Header.Get(ReplaySrcHeader) != ""
		write := isWrite(r)
		if rt.o.Holder != nil {
			rt.follow(w, r, next, write, replayed)
			return
		}
		if !c.Replica() {
			rt.serve(w, r, next, write)
			return
		}
		if rt.o.Local {
			switch {
			case replayed:
				rt.misrouted(w, r)
			case !replayable(r):
				rt.tooLargeToReplay(w)
			default:
				rt.replay(w, ReasonLocal)
			}
			return
		}
		if write {
			if !replayed && replayable(r) && !rt.o.InPlace(r) {
				rt.replay(w, ReasonWrite)
				return
			}
			// Served in place: every database call goes to the primary.
			rt.serve(w, r.WithContext(WithPrimaryReads(r.Context())), next, true)
			return
		}
		token := tokenFrom(r)
		if token == 0 || rt.o.Replica == nil {
			next.ServeHTTP(w, r)
			return
		}
		caughtUp, err := rt.wait(r.Context(), token)
		switch {
		case errors.Is(err, errBeyondPrimary):
			// No write made this token: read the replica as it is.
			next.ServeHTTP(w, r)
		case err != nil:
			if r.Context().Err() != nil {
				return // the client went away
			}
			rt.o.Metrics.wait(WaitError)
			rt.o.Logger.Warn("could not ask the replica how far it has replayed: reading from the primary", "err", err)
			next.ServeHTTP(w, r.WithContext(WithPrimaryReads(r.Context())))
		case caughtUp:
			rt.o.Metrics.wait(WaitCaughtUp)
			next.ServeHTTP(w, r)
		default:
			rt.o.Metrics.wait(WaitTimeout)
			if replayed || !replayable(r) {
				next.ServeHTTP(w, r.WithContext(WithPrimaryReads(r.Context())))
				return
			}
			rt.replay(w, ReasonBehind)
		}
	})
}

// Replays reports whether Wrap answers r with a replay to the primary
// region before any handler sees it: a write in a replica region that can
// be replayed, or any request when the data is on the primary's volume.
// Whatever counts requests (RATE_LIMIT) counts such a one only where it is
// replayed to. A read that may be replayed after waiting for the replica
// is not known in advance, and reports false.
func (rt *Router) Replays(r *http.Request) bool {
	c := rt.o.Config
	if rt.o.Holder != nil {
		// A SQLite follower replays writes to the writer, in any region.
		return isWrite(r) && replayable(r) && r.Header.Get(ReplaySrcHeader) == "" && rt.o.Holder() != ""
	}
	if !c.Replica() || rt.o.Exempt(r) || r.Header.Get(ReplaySrcHeader) != "" || !replayable(r) {
		return false
	}
	return rt.o.Local || isWrite(r) && !rt.o.InPlace(r)
}

// follow serves a follower's reads here and replays its writes to the
// machine that holds the replica's lease.
func (rt *Router) follow(w http.ResponseWriter, r *http.Request, next http.Handler, write, replayed bool) {
	holder := rt.o.Holder()
	switch {
	case !write && rt.o.Replica != nil && tokenFrom(r) != 0:
		// A read after the client's own write: served here once the copy
		// holds the write, else by the writer.
		caughtUp, err := rt.wait(r.Context(), tokenFrom(r))
		switch {
		case err == nil && caughtUp:
			rt.o.Metrics.wait(WaitCaughtUp)
			next.ServeHTTP(w, r)
		case replayed || holder == "" || !replayable(r):
			rt.o.Metrics.wait(WaitTimeout)
			writeError(w, http.StatusServiceUnavailable, "unavailable",
				"this machine's copy of the database has not reached your last write yet, and the writer cannot be asked; try again shortly")
		default:
			rt.o.Metrics.wait(WaitTimeout)
			rt.o.Metrics.replay(ReasonBehind)
			w.Header().Set(ReplayHeader, "instance="+holder)
			writeError(w, ReplayStatus, "replay", "this machine's copy has not reached your last write; the read is replayed to the writer "+holder)
		}
	case !write:
		next.ServeHTTP(w, r)
	case holder == "" && rt.o.Config.PrimaryRegion != "" && !replayed && replayable(r):
		rt.replay(w, ReasonWrite) // no writer now: a machine there starts and takes the lease
	case replayed || holder == "":
		writeError(w, http.StatusServiceUnavailable, "unavailable",
			"this machine follows the database's replica and no writer holds its lease yet; try again shortly")
	case !replayable(r):
		writeError(w, http.StatusMisdirectedRequest, "wrong_region",
			fmt.Sprintf("this machine follows the database's replica and cannot take writes; a request body over 1 MB cannot be replayed to the writer: send it again with the header fly-force-instance-id: %s", holder))
	default:
		rt.o.Metrics.replay(ReasonWrite)
		w.Header().Set(ReplayHeader, "instance="+holder)
		writeError(w, ReplayStatus, "replay", "this machine follows the database's replica; the write is replayed to the writer "+holder)
	}
}

// serve runs next, adding a token to a successful write's answer.
func (rt *Router) serve(w http.ResponseWriter, r *http.Request, next http.Handler, write bool) {
	if !write || rt.o.Primary == nil {
		next.ServeHTTP(w, r)
		return
	}
	tw := &tokenWriter{ResponseWriter: w, rt: rt, r: r}
	next.ServeHTTP(tw, r)
}

// errBeyondPrimary means a token is past the primary's own position: no
// write made it, so no wait can reach it.
var errBeyondPrimary = errors.New("the consistency token is beyond the primary's position")

// wait waits until the replica reaches token (true) or REPLICA_WAIT passes
// (false), asking through the poller. When the first answer asked for
// this read is behind the token, it checks the token against the
// primary's own position once: a token beyond it (forged, or from another
// database) is errBeyondPrimary at once, so that no client can keep a
// read waiting for REPLICA_WAIT at will.
func (rt *Router) wait(ctx context.Context, token storage.Position) (bool, error) {
	if uint64(token) <= rt.seen.Load() {
		return true, nil // replay positions only grow
	}
	ctx, cancel := context.WithTimeout(ctx, rt.o.Config.Wait+5*time.Second) // a hung replica
	defer cancel()
	w := &waiter{token: token, deadline: rt.o.Now().Add(rt.o.Config.Wait),
		behind: make(chan struct{}, 1), done: make(chan waitOutcome, 1)}
	rt.join(w)
	defer rt.leave(w)
	for {
		select {
		case o := <-w.done:
			return o.caughtUp, o.err
		case <-w.behind:
			if rt.beyondPrimary(ctx, token) {
				return false, errBeyondPrimary
			}
		case <-ctx.Done():
			return false, ctx.Err()
		}
	}
}

// beyondPrimary reports whether token is past the primary's current write
// position. Reads that ask at once share one query; a token at or below a
// position the primary already reported needs none. It reports false when
// it cannot tell.
//
// A shared question may have been asked before the token's write
// committed, so an answer below the token is checked once more with a
// question asked after this read arrived: only that one proves the token
// was never written.
func (rt *Router) beyondPrimary(ctx context.Context, token storage.Position) bool {
	for range 2 {
		if rt.o.Primary == nil || uint64(token) <= rt.primarySeen.Load() {
			return false
		}
		p, err := rt.primaryPosition(ctx)
		if err != nil || token <= p {
			return false
		}
	}
	return true
}

// primaryPosition asks the primary for its write position, sharing the
// question with every read that asks while it is on its way, and records
// the answer in primarySeen.
func (rt *Router) primaryPosition(ctx context.Context) (storage.Position, error) {
	v, err, _ := rt.asking.Do("position", func() (any, error) {
		// Not the first asker's context: its client may leave while others
		// wait for the answer.
		ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), rt.o.Config.Wait+5*time.Second)
		defer cancel()
		return rt.o.Primary.WritePosition(ctx)
	})
	if err != nil {
		return 0, err
	}
	p := v.(storage.Position)
	for {
		old := rt.primarySeen.Load()
		if uint64(p) <= old || rt.primarySeen.CompareAndSwap(old, uint64(p)) {
			return p, nil
		}
	}
}

func (rt *Router) observe(p storage.Position) {
	for {
		old := rt.seen.Load()
		if uint64(p) <= old || rt.seen.CompareAndSwap(old, uint64(p)) {
			return
		}
	}
}

// HandleError answers with a replay to the primary region when err means
// the write reached a read-only replica (storage.ErrReadOnly) and the
// request can still be replayed, and reports whether it did. The HTTP
// layer's error writer calls it first.
func (rt *Router) HandleError(w http.ResponseWriter, r *http.Request, err error) bool {
	if !errors.Is(err, storage.ErrReadOnly) || !rt.o.Config.Replica() || r.Header.Get(ReplaySrcHeader) != "" || !replayable(r) {
		return false
	}
	rt.o.Logger.Warn("a write reached a read-only replica: replaying it to the primary region; check that DATABASE_URL names the primary",
		"method", r.Method, "path", r.URL.Path, "primary_region", rt.o.Config.PrimaryRegion)
	rt.replay(w, ReasonReadOnly)
	return true
}

func (rt *Router) replay(w http.ResponseWriter, reason string) {
	c := rt.o.Config
	rt.o.Metrics.replay(reason)
	w.Header().Set(ReplayHeader, "region="+c.PrimaryRegion)
	writeError(w, ReplayStatus, "replay", fmt.Sprintf("this machine is in %s; the request is replayed to the primary region %s", c.Region, c.PrimaryRegion))
}

// misrouted answers a replayed request that reached a machine which cannot
// serve it either: replaying it again could loop.
func (rt *Router) misrouted(w http.ResponseWriter, r *http.Request) {
	c := rt.o.Config
	rt.o.Logger.Error("a replayed request reached a machine outside the primary region: is a machine running in PRIMARY_REGION?",
		"region", c.Region, "primary_region", c.PrimaryRegion, "replay_src", r.Header.Get(ReplaySrcHeader))
	writeError(w, http.StatusServiceUnavailable, "unavailable",
		fmt.Sprintf("this request was replayed to the primary region %s but reached a machine in %s; no machine in %s could take it", c.PrimaryRegion, c.Region, c.PrimaryRegion))
}

// tooLargeToReplay answers a request this machine cannot serve and Fly
// cannot replay: its body is over 1 MB.
func (rt *Router) tooLargeToReplay(w http.ResponseWriter) {
	c := rt.o.Config
	writeError(w, http.StatusMisdirectedRequest, "wrong_region",
		fmt.Sprintf("this machine is in %s and the data lives in %s; a request body over 1 MB cannot be replayed there: send it again with the header fly-prefer-region: %s", c.Region, c.PrimaryRegion, c.PrimaryRegion))
}

func writeError(w http.ResponseWriter, status int, code, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(map[string]any{"error": map[string]string{"code": code, "message": msg}})
}

// tokenFrom reads the request's token from the header or the cookie,
// taking the later of the two. A malformed token is ignored: the read
// sees the replica as it is.
func tokenFrom(r *http.Request) storage.Position {
	var best storage.Position
	values := []string{r.Header.Get(TokenHeader)}
	if c, err := r.Cookie(TokenCookie); err == nil {
		values = append(values, c.Value)
	}
	for _, v := range values {
		if p, err := storage.ParsePosition(v); err == nil && p > best {
			best = p
		}
	}
	return best
}

// tokenWriter sets the token header and cookie when a write succeeds,
// just before its status goes out.
type tokenWriter struct {
	http.ResponseWriter
	rt          *Router
	r           *http.Request
	wroteHeader bool
}

func (tw *tokenWriter) WriteHeader(status int) {
	if !tw.wroteHeader {
		tw.wroteHeader = true
		if status >= 200 && status < 300 {
			tw.setToken()
		}
	}
	tw.ResponseWriter.WriteHeader(status)
}

func (tw *tokenWriter) Write(b []byte) (int, error) {
	if !tw.wroteHeader {
		tw.WriteHeader(http.StatusOK)
	}
	return tw.ResponseWriter.Write(b)
}

// Unwrap lets http.ResponseController reach the connection.
func (tw *tokenWriter) Unwrap() http.ResponseWriter { return tw.ResponseWriter }

func (tw *tokenWriter) setToken() {
	p, err := tw.rt.o.Primary.WritePosition(tw.r.Context())
	if err != nil {
		// The write happened; only read-your-writes is lost for it.
		tw.rt.o.Logger.Warn("could not read the primary's log position after a write: no consistency token", "err", err)
		return
	}
	v := p.String()
	tw.Header().Set(TokenHeader, v)
	http.SetCookie(tw.ResponseWriter, &http.Cookie{
		Name: TokenCookie, Value: v, Path: "/", MaxAge: int(tokenMaxAge / time.Second),
		HttpOnly: true, SameSite: http.SameSiteLaxMode,
		Secure: tw.r.TLS != nil || tw.r.Header.Get("X-Forwarded-Proto") == "https",
	})
}

type primaryReadsKey struct{}

// WithPrimaryReads marks ctx so that the read wrapper (Database) sends its
// reads to the primary: a write served in place, or a read whose token the
// replica could not confirm.
func WithPrimaryReads(ctx context.Context) context.Context {
	return context.WithValue(ctx, primaryReadsKey{}, true)
}

// PrimaryReads reports whether ctx was marked by WithPrimaryReads.
func PrimaryReads(ctx context.Context) bool {
	v, _ := ctx.Value(primaryReadsKey{}).(bool)
	return v
}
