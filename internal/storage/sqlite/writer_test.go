package sqlite

import (
	"context"
	"errors"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/example/flystorage/internal/storage"
)

func openTest(t *testing.T) *Store {
	t.Helper()
	s, err := Open(context.Background(), filepath.Join(t.TempDir(), "app.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func note(title string) storage.Note {
	now := storage.Now()
	return storage.Note{ID: storage.NewID(), Title: title, CreatedAt: now, UpdatedAt: now}
}

// insertJob is the job CreateNote submits.
func insertJob(s *Store, n storage.Note) *writeJob {
	j := savepointInsertJob(s, n)
	j.oneStatement = true
	return j
}

// savepointInsertJob is the same insert as a write of several statements,
// which the group runs in a savepoint.
func savepointInsertJob(s *Store, n storage.Note) *writeJob {
	return &writeJob{done: make(chan struct{}), fn: func(ctx context.Context, tx querier) error {
		_, err := s.insertNote.ExecContext(ctx,
			n.ID, n.Title, n.Body, n.CreatedAt.Format(timeFormat), n.UpdatedAt.Format(timeFormat))
		return err
	}}
}

// TestGroupErrorsAreEach commits one group in which some writes fail: each
// failure is its own caller's, with its own kind, and the others commit.
// Both kinds of write: one statement, which SQLite undoes by itself when it
// fails on a constraint, and a write in a savepoint of its own.
func TestGroupErrorsAreEach(t *testing.T) {
	for name, job := range map[string]func(*Store, storage.Note) *writeJob{"one statement": insertJob, "savepoint": savepointInsertJob} {
		t.Run(name, func(t *testing.T) { testGroupErrorsAreEach(t, job) })
	}
}

func testGroupErrorsAreEach(t *testing.T, insertJob func(*Store, storage.Note) *writeJob) {
	ctx := context.Background()
	s := openTest(t)
	taken := note("taken")
	if err := s.CreateNote(ctx, taken); err != nil {
		t.Fatal(err)
	}
	ok1, dup, bad, ok2 := note("one"), taken, note(""), note("two")
	dup.Title = "again"
	jobs := []*writeJob{insertJob(s, ok1), insertJob(s, dup), insertJob(s, bad), insertJob(s, ok2)}
	s.answer(s.commit(jobs))
	for i, want := range []error{nil, storage.ErrConflict, storage.ErrInvalid, nil} {
		<-jobs[i].done
		if got := jobs[i].err; (want == nil) != (got == nil) || (want != nil && !errors.Is(got, want)) {
			t.Errorf("write %d: %v, want %v", i, got, want)
		}
	}
	for _, n := range []storage.Note{ok1, ok2, taken} {
		got, err := s.GetNote(ctx, n.ID)
		if err != nil || got.Title != n.Title {
			t.Errorf("note %q after the group: %+v, %v", n.Title, got, err)
		}
	}
	if _, err := s.GetNote(ctx, bad.ID); !errors.Is(err, storage.ErrNotFound) {
		t.Errorf("the invalid note was stored: %v", err)
	}
}

// TestGroupFailureRetriesAlone breaks a group's transaction (a write that
// releases the group's savepoint and fails, so it cannot be rolled back to):
// the other writes are run again alone and commit, and the breaking write
// gets its own error.
func TestGroupFailureRetriesAlone(t *testing.T) {
	testBreakingWrite(t, false, "RELEASE w")
}

// TestOneStatementThatEndsTheTransaction: a one-statement write that fails
// on anything but a constraint may have ended the group's transaction (SQLite
// rolls it back on a full disk, say; here the write does so itself). The
// other writes are run again alone and commit, and it gets its own error.
func TestOneStatementThatEndsTheTransaction(t *testing.T) {
	testBreakingWrite(t, true, "ROLLBACK")
}

// testBreakingWrite commits a group of an insert, a write that runs sql and
// fails, and another insert: the inserts are stored, each once, and the
// breaking write gets its own error.
func testBreakingWrite(t *testing.T, oneStatement bool, sql string) {
	ctx := context.Background()
	s := openTest(t)
	before, after := note("before"), note("after")
	boom := errors.New("boom")
	breaker := &writeJob{done: make(chan struct{}), oneStatement: oneStatement, fn: func(ctx context.Context, tx querier) error {
		if _, err := tx.ExecContext(ctx, sql); err != nil {
			return err
		}
		return boom
	}}
	jobs := []*writeJob{insertJob(s, before), breaker, insertJob(s, after)}
	s.answer(s.commit(jobs))
	for _, j := range jobs {
		<-j.done
	}
	if !errors.Is(breaker.err, boom) {
		t.Errorf("the breaking write: %v, want its own error", breaker.err)
	}
	for i, n := range []storage.Note{before, after} {
		if err := []error{jobs[0].err, jobs[2].err}[i]; err != nil {
			t.Errorf("write %q: %v", n.Title, err)
		}
		if _, err := s.GetNote(ctx, n.ID); err != nil {
			t.Errorf("note %q after the group failed and was retried: %v", n.Title, err)
		}
	}
}

// TestAbandonedWriteNeverRuns: a caller that gave up before its write
// started gets its context's error, and the write is not made.
func TestAbandonedWriteNeverRuns(t *testing.T) {
	s := openTest(t)
	ran := false
	j := &writeJob{done: make(chan struct{}), fn: func(context.Context, querier) error { ran = true; return nil }}
	j.state.Store(jobAbandoned)
	s.answer(s.commit([]*writeJob{j, insertJob(s, note("kept"))}))
	<-j.done
	if ran {
		t.Error("an abandoned write ran")
	}

	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	n := note("cancelled")
	if err := s.CreateNote(ctx, n); !errors.Is(err, context.Canceled) {
		t.Errorf("CreateNote with a cancelled context: %v", err)
	}
	if _, err := s.GetNote(context.Background(), n.ID); !errors.Is(err, storage.ErrNotFound) {
		t.Errorf("a cancelled write was stored: %v", err)
	}
}

// TestConcurrentWrites creates many notes at once, some of them clashing:
// exactly the clashing ones fail, and every other is stored.
func TestConcurrentWrites(t *testing.T) {
	ctx := context.Background()
	s := openTest(t)
	taken := note("taken")
	if err := s.CreateNote(ctx, taken); err != nil {
		t.Fatal(err)
	}
	const n = 200
	errs := make([]error, n)
	notes := make([]storage.Note, n)
	var wg sync.WaitGroup
	for i := range n {
		notes[i] = note("concurrent")
		if i%5 == 0 {
			notes[i].ID = taken.ID
		}
		wg.Go(func() { errs[i] = s.CreateNote(ctx, notes[i]) })
	}
	wg.Wait()
	for i, err := range errs {
		if i%5 == 0 {
			if !errors.Is(err, storage.ErrConflict) {
				t.Errorf("clashing write %d: %v, want ErrConflict", i, err)
			}
			continue
		}
		if err != nil {
			t.Errorf("write %d: %v", i, err)
		} else if _, err := s.GetNote(ctx, notes[i].ID); err != nil {
			t.Errorf("write %d acknowledged but not stored: %v", i, err)
		}
	}
}

// TestWriteAfterClose fails instead of hanging.
func TestWriteAfterClose(t *testing.T) {
	s := openTest(t)
	s.Close()
	if err := s.CreateNote(context.Background(), note("late")); err == nil || !strings.Contains(err.Error(), "closed") {
		t.Errorf("CreateNote after Close: %v", err)
	}
}

// TestNotesAfterClose: a closed store answers reads and writes of notes
// with an error at once, rather than waiting for a connection.
func TestNotesAfterClose(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	s := openTest(t)
	n := note("kept")
	if err := s.CreateNote(ctx, n); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := s.GetNote(ctx, n.ID); !errors.Is(err, errClosed) {
		t.Errorf("GetNote after Close: %v, want the store is closed", err)
	}
	if _, _, err := s.ListNotes(ctx, storage.Page{Limit: 10, Cursor: n.ID}); !errors.Is(err, errClosed) {
		t.Errorf("ListNotes after Close: %v, want the store is closed", err)
	}
	if err := s.CreateNote(ctx, note("late")); !errors.Is(err, errClosed) {
		t.Errorf("CreateNote after Close: %v, want the store is closed", err)
	}
}

// TestCommitWait: a committed group's writes are answered after one call
// of the commit wait (SQLITE_DURABILITY=replicated's SyncAndWait), whose
// error reaches each of them as storage.ErrUnavailable; a group in which
// every write failed does not wait.
func TestCommitWait(t *testing.T) {
	ctx := context.Background()
	s := openTest(t)
	calls := 0
	var fail error
	s.SetCommitWait(func(context.Context) error { calls++; return fail })

	group := []*writeJob{insertJob(s, note("a")), insertJob(s, note("b")), insertJob(s, note("c"))}
	s.answer(s.commit(group))
	for i, j := range group {
		if <-j.done; j.err != nil {
			t.Errorf("write %d: %v", i, j.err)
		}
	}
	if calls != 1 {
		t.Errorf("the commit wait ran %d times for one group, want 1", calls)
	}

	fail = errors.New("the bucket is down")
	d := note("d")
	group = []*writeJob{insertJob(s, d), insertJob(s, d)} // the second conflicts
	s.answer(s.commit(group))
	if <-group[0].done; !errors.Is(group[0].err, storage.ErrUnavailable) || !strings.Contains(group[0].err.Error(), "the bucket is down") {
		t.Errorf("a write whose wait failed: %v, want storage.ErrUnavailable with the cause", group[0].err)
	}
	if <-group[1].done; !errors.Is(group[1].err, storage.ErrConflict) {
		t.Errorf("the conflicting write: %v, want its own error", group[1].err)
	}
	if got, err := s.GetNote(ctx, d.ID); err != nil || got.Title != d.Title {
		t.Errorf("the write whose wait failed is not on the volume: %+v, %v", got, err)
	}

	calls = 0
	group = []*writeJob{insertJob(s, d)}
	s.answer(s.commit(group))
	if <-group[0].done; !errors.Is(group[0].err, storage.ErrConflict) || calls != 0 {
		t.Errorf("a group with no committed write: %v, %d waits; want its conflict and no wait", group[0].err, calls)
	}
}
