package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"runtime"
	"sync/atomic"
)

// maxBatch bounds how many writes one transaction commits together.
const maxBatch = 128

// A writeJob is one caller's write, waiting for the writer goroutine.
type writeJob struct {
	fn    func(context.Context, *sql.Tx) error
	state atomic.Int32 // jobPending, then jobRunning (writer) or jobAbandoned (caller)
	err   error
	done  chan struct{}
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
// transaction, and commits them together, so a burst of writes pays for one
// commit rather than one each. A write that fails is rolled back to its
// savepoint and gets its own error; the others commit. fn gets a context
// that is never cancelled, since interrupting a statement could roll back
// the whole group; a caller whose ctx ends before its write starts gets
// ctx's error and its write never runs.
func (s *Store) write(ctx context.Context, fn func(context.Context, *sql.Tx) error) error {
	if err := ctx.Err(); err != nil {
		return translate(err)
	}
	j := &writeJob{fn: fn, done: make(chan struct{})}
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
		// under load a group is more than one write. It costs nothing when
		// no other goroutine is runnable.
		runtime.Gosched()
	more:
		for len(batch) < maxBatch {
			select {
			case j := <-s.jobs:
				batch = append(batch, j)
			default:
				break more
			}
		}
		s.commit(batch)
	}
}

// commit runs the batch's writes in one transaction, each in a savepoint.
// Should the transaction itself fail (BEGIN, a savepoint, COMMIT), every
// write that has not failed on its own is run again alone, so each caller
// gets the outcome of its own write.
func (s *Store) commit(batch []*writeJob) {
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
		return
	case 1:
		s.alone(ctx, live[0])
		return
	}
	failed := make([]bool, len(live))
	err := func() error {
		tx, err := s.writer.BeginTx(ctx, nil)
		if err != nil {
			return err
		}
		for i, j := range live {
			if _, err := tx.StmtContext(ctx, s.savepoint).ExecContext(ctx); err != nil {
				tx.Rollback()
				return err
			}
			if err := j.fn(ctx, tx); err != nil {
				failed[i], j.err = true, translate(err)
				if _, err := tx.StmtContext(ctx, s.rollbackTo).ExecContext(ctx); err != nil {
					tx.Rollback()
					return err
				}
			}
			if _, err := tx.StmtContext(ctx, s.release).ExecContext(ctx); err != nil {
				tx.Rollback()
				return err
			}
		}
		return tx.Commit()
	}()
	for i, j := range live {
		switch {
		case err == nil, failed[i]:
			close(j.done)
		default:
			j.err = nil
			s.alone(ctx, j)
		}
	}
}

// alone runs one write in a transaction of its own and answers its caller.
func (s *Store) alone(ctx context.Context, j *writeJob) {
	defer close(j.done)
	tx, err := s.writer.BeginTx(ctx, nil)
	if err != nil {
		j.err = translate(err)
		return
	}
	if err := j.fn(ctx, tx); err != nil {
		tx.Rollback()
		j.err = translate(err)
		return
	}
	j.err = translate(tx.Commit())
}
