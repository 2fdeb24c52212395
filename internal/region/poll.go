package region

import (
	"context"
	"sync"
	"time"

	"github.com/example/flystorage/internal/storage"
)

// This file holds how reads carrying a consistency token wait for the
// replica (Router.wait). One goroutine per Router (poll) asks the replica
// how far it has replayed, at once and then every Poll, for as long as any
// read waits, and wakes each read when the replica reaches its token, its
// REPLICA_WAIT passes or the replica fails: a thousand reads waiting at
// once cost the replica the queries of one (issue 21, row 8).

// waiter is one read waiting for the replica to reach token.
type waiter struct {
	token    storage.Position
	deadline time.Time
	// asked is set by the poller once it has asked the replica for this
	// read.
	asked bool
	// behind receives when the first answer asked for this read is behind
	// token, and done the outcome. Each holds one value, so the poller
	// never waits for a read.
	behind chan struct{}
	done   chan waitOutcome
}

type waitOutcome struct {
	caughtUp bool
	err      error
}

// waiters is the reads waiting for the replica, and whether a poller
// runs for them.
type waiters struct {
	mu      sync.Mutex
	set     map[*waiter]struct{}
	polling bool
}

// join adds w to the waiting reads, starting the poller if none runs.
func (rt *Router) join(w *waiter) {
	ws := &rt.waiting
	ws.mu.Lock()
	defer ws.mu.Unlock()
	if ws.set == nil {
		ws.set = map[*waiter]struct{}{}
	}
	ws.set[w] = struct{}{}
	if !ws.polling {
		ws.polling = true
		go rt.poll()
	}
}

// leave removes w, whether or not the poller settled it.
func (rt *Router) leave(w *waiter) {
	rt.waiting.mu.Lock()
	defer rt.waiting.mu.Unlock()
	delete(rt.waiting.set, w)
}

// poll asks the replica how far it has replayed, one question at a time
// and Poll apart, until no read waits; join starts it again. A read that
// joins while a question is on its way is woken by the answer if it
// reaches the read's token, and otherwise waits for the next question.
func (rt *Router) poll() {
	for {
		asking := rt.askingFor()
		if asking == nil {
			return
		}
		// Not any read's context: the read that started the poller may
		// leave while others wait.
		ctx, cancel := context.WithTimeout(context.Background(), rt.o.Config.Wait+5*time.Second)
		p, err := rt.o.Replica.ReplayPosition(ctx)
		cancel()
		if err == nil {
			rt.observe(p)
		}
		pause, more := rt.settle(asking, p, err)
		if !more {
			return
		}
		rt.o.Sleep(context.Background(), pause)
	}
}

// askingFor returns the reads waiting now, or nil, stopping the poller,
// when there are none.
func (rt *Router) askingFor() []*waiter {
	ws := &rt.waiting
	ws.mu.Lock()
	defer ws.mu.Unlock()
	if len(ws.set) == 0 {
		ws.polling = false
		return nil
	}
	asking := make([]*waiter, 0, len(ws.set))
	for w := range ws.set {
		asking = append(asking, w)
	}
	return asking
}

// settle gives the replica's answer (p, or err) to the reads it was asked
// for, and returns how long to pause before asking again: Poll, or less
// if a read's REPLICA_WAIT ends sooner. A position only grows, so p also
// wakes the reads that joined since and whose token it reaches. It
// reports false, stopping the poller, when no read waits any more.
func (rt *Router) settle(asked []*waiter, p storage.Position, err error) (time.Duration, bool) {
	ws := &rt.waiting
	ws.mu.Lock()
	defer ws.mu.Unlock()
	if err == nil {
		for w := range ws.set {
			if p >= w.token {
				delete(ws.set, w)
				w.done <- waitOutcome{caughtUp: true}
			}
		}
	}
	now := rt.o.Now()
	for _, w := range asked {
		if _, ok := ws.set[w]; !ok {
			continue // settled above, or gone: its client left, or its token was forged
		}
		first := !w.asked
		w.asked = true
		var o waitOutcome
		switch {
		case err != nil:
			o = waitOutcome{err: err}
		case first:
			w.behind <- struct{}{}
			continue
		case !now.Before(w.deadline):
			o = waitOutcome{} // REPLICA_WAIT passed
		default:
			continue
		}
		delete(ws.set, w)
		w.done <- o
	}
	if len(ws.set) == 0 {
		ws.polling = false
		return 0, false
	}
	pause := rt.o.Poll
	for w := range ws.set {
		pause = min(pause, max(w.deadline.Sub(now), 0))
	}
	return pause, true
}
