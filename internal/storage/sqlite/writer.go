package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"runtime"
	"sync/atomic"

	"modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"

	"github.com/example/flystorage/internal/storage"
)

// maxBatch bounds how many writes one transaction commits together.
const maxBatch = 128

// A querier runs a write's statements: the writer connection, inside the
// transaction the writer goroutine began on it.
type querier interface {
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

// A writeJob is one caller's write, waiting for the writer goroutine.
type writeJob struct {
	fn func(context.Context, querier) error
	// oneStatement: fn runs a single statement and returns its error as
	// is, so the group needs no savepoint to undo it (see commit).
	oneStatement bool
	state        atomic.Int32 // jobPending, then jobRunning (writer) or jobAbandoned (caller)
	err          error
	done         chan struct{}
}

const (
	jobPending int32 = iota
	jobRunning
	jobAbandoned
)

// write runs fn in a transaction on the writer connection and returns once
// that transaction has committed (or fn failed), so a nil error means the
// write is as durable as a COMMIT makes it (WAL with synchronous=NORMAL: it
// survives the process being killed).
//
// Writes are committed in groups: the writer goroutine takes every write
// waiting when it comes round, runs each inside a SAVEPOINT of one
// transaction (a writeOne needs none), and commits them together, so a
// burst of writes pays for one commit rather than one each. A write that
// fails is undone and gets its own error; the others commit (see commit).
// fn gets a context that is never cancelled, since interrupting a statement
// could roll back the whole group; a caller whose ctx ends before its write
// starts gets ctx's error and its write never runs.
func (s *Store) write(ctx context.Context, fn func(context.Context, querier) error) error {
	return s.submit(ctx, &writeJob{fn: fn, done: make(chan struct{})})
}

// writeOne is write for an fn that runs one statement and returns its
// error unchanged; a group runs it without a savepoint.
func (s *Store) writeOne(ctx context.Context, fn func(context.Context, querier) error) error {
	return s.submit(ctx, &writeJob{fn: fn, oneStatement: true, done: make(chan struct{})})
}

func (s *Store) submit(ctx context.Context, j *writeJob) error {
	if err := ctx.Err(); err != nil {
		return translate(err)
	}
	if s.follower {
		return fmt.Errorf("%w: %w", storage.ErrReadOnly, errFollower)
	}
	select {
	case s.jobs <- j:
	case <-ctx.Done():
		return translate(ctx.Err())
	case <-s.closed:
		return errClosed
	}
	select {
	case <-j.done:
		return j.err
	case <-ctx.Done():
		if j.state.CompareAndSwap(jobPending, jobAbandoned) {
			return translate(ctx.Err())
		}
		<-j.done // running: its outcome is known soon
		return j.err
	}
}

var errClosed = errors.New("sqlite: the store is closed")

// writeLoop is the writer goroutine: it commits waiting writes in groups
// until s.closed is closed.
func (s *Store) writeLoop() {
	defer close(s.stopped)
	batch := make([]*writeJob, 0, maxBatch)
	for {
		var j *writeJob
		select {
		case j = <-s.jobs:
		case <-s.closed:
			return
		}
		batch = append(batch[:0], j)
		// Let the handlers that are about to write get in line, so that
		// under load a group is more than one write: yield, take what has
		// come, and yield again while writes keep coming, up to three
		// times. A yield costs nothing when no other goroutine is runnable,
		// and a lone write does not wait for a second yield.
		for range 3 {
			runtime.Gosched()
			if !s.gather(&batch) {
				break
			}
		}
		s.answer(s.commit(batch))
	}
}

// SetCommitWait makes every group of writes wait for wait after it
// commits, before its callers hear of it: SQLITE_DURABILITY=replicated
// waits there until the group's transaction is in the bucket. One call
// answers the whole group, so the writes of a group share its cost. A
// write whose group's wait fails gets its error, matching
// storage.ErrUnavailable: it is committed on the volume, but not known to
// be anywhere else. Call it before the first write.
func (s *Store) SetCommitWait(wait func(context.Context) error) { s.commitWait = wait }

// answer tells the callers of a committed group their outcome, once the
// commit wait (if any) has passed.
func (s *Store) answer(done []*writeJob) {
	if len(done) == 0 {
		return
	}
	if s.commitWait != nil {
		var committed bool
		for _, j := range done {
			committed = committed || j.err == nil
		}
		if committed {
			if err := s.commitWait(context.Background()); err != nil {
				err = fmt.Errorf("%w: the write is committed on the volume but not replicated: %w", storage.ErrUnavailable, err)
				for _, j := range done {
					if j.err == nil {
						j.err = err
					}
				}
			}
		}
	}
	for _, j := range done {
		close(j.done)
	}
}

// gather adds the writes waiting to batch, up to maxBatch, and reports
// whether it took any and there is room for more.
func (s *Store) gather(batch *[]*writeJob) bool {
	n := len(*batch)
	for len(*batch) < maxBatch {
		select {
		case j := <-s.jobs:
			*batch = append(*batch, j)
		default:
			return len(*batch) > n
		}
	}
	return false
}

// commit runs the batch's writes in one transaction, each but a writeOne in
// a savepoint.
// Should the transaction itself fail (BEGIN, a savepoint, COMMIT), every
// write that has not failed on its own is run again alone, so each caller
// gets the outcome of its own write.
//
// A one-statement write runs without a savepoint, which would cost two
// statements more than it: a statement that fails on a constraint is undone
// by SQLite itself, and the transaction goes on (ABORT, the default for
// every constraint in migrations/sqlite); any other failure may have rolled
// the whole transaction back, so the group ends there as if it had failed.
//
// The transaction is the writer connection's own BEGIN and COMMIT, run as
// prepared statements: database/sql's Tx would wrap each statement of
// every write in a Stmt of its own.
//
// commit returns the writes it ran, for answer to tell their callers.
func (s *Store) commit(batch []*writeJob) []*writeJob {
	live := batch[:0:0]
	for _, j := range batch {
		if j.state.CompareAndSwap(jobPending, jobRunning) {
			live = append(live, j)
		} else {
			close(j.done) // abandoned: nobody reads it
		}
	}
	ctx := context.Background()
	switch len(live) {
	case 0:
		return nil
	case 1:
		s.alone(ctx, live[0])
		return live
	}
	failed := make([]bool, len(live))
	err := func() error {
		if err := exec(ctx, s.begin); err != nil {
			return err
		}
		for i, j := range live {
			if j.oneStatement {
				if err := j.fn(ctx, s.conn); err != nil {
					failed[i], j.err = true, translate(err)
					if !undoneAlone(err) {
						return s.abort(ctx, err)
					}
				}
				continue
			}
			if err := exec(ctx, s.savepoint); err != nil {
				return s.abort(ctx, err)
			}
			if err := j.fn(ctx, s.conn); err != nil {
				failed[i], j.err = true, translate(err)
				if err := exec(ctx, s.rollbackTo); err != nil {
					return s.abort(ctx, err)
				}
			}
			if err := exec(ctx, s.release); err != nil {
				return s.abort(ctx, err)
			}
		}
		if err := exec(ctx, s.commitTx); err != nil {
			return s.abort(ctx, err)
		}
		return nil
	}()
	for i, j := range live {
		if err != nil && !failed[i] {
			j.err = nil
			s.alone(ctx, j)
		}
	}
	return live
}

// alone runs one write in a transaction of its own; answer tells its
// caller.
func (s *Store) alone(ctx context.Context, j *writeJob) {
	if err := exec(ctx, s.begin); err != nil {
		j.err = translate(err)
		return
	}
	if err := j.fn(ctx, s.conn); err != nil {
		j.err = translate(s.abort(ctx, err))
		return
	}
	if err := exec(ctx, s.commitTx); err != nil {
		j.err = translate(s.abort(ctx, err))
	}
}

// abort rolls back the transaction after err and returns err. SQLite may
// have rolled it back itself (a full disk, say), and then ROLLBACK fails
// with "no transaction is active", which changes nothing.
func (s *Store) abort(ctx context.Context, err error) error {
	exec(ctx, s.rollback)
	return err
}

// undoneAlone reports whether SQLite undid only the failed statement and
// kept the transaction: a constraint it refused.
func undoneAlone(err error) bool {
	var e *sqlite.Error
	return errors.As(err, &e) && e.Code()&0xff == sqlite3.SQLITE_CONSTRAINT
}

func exec(ctx context.Context, st *sql.Stmt) error {
	_, err := st.ExecContext(ctx)
	return err
}
