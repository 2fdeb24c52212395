package sqlite

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"io"
	"sync"

	"modernc.org/sqlite"

	"github.com/example/flystorage/internal/storage"
)

// noteReaders are read-only connections of the notes' own, on which GetNote
// and ListNotes run their prepared statements through the driver itself.
// Such a read takes a few microseconds in SQLite, and database/sql's pool,
// Stmt, Rows and Scan added a fifth to it; every other read goes through
// Store.readers. A reader is taken from free, used by one caller, and put
// back.
type noteReaders struct {
	free   chan *noteReader
	all    []*noteReader
	closed chan struct{} // closed by close: take fails from then on
	// fresh, when set, is the data source name a reader is opened on
	// again before each use (a follower's; see OpenFollower).
	fresh string
	// reads, on a follower, is held for reading from take to put
	// (OpenFollower).
	reads *sync.RWMutex
}

type noteReader struct {
	conn      driver.Conn
	get, list driver.StmtQueryContext
	row       []driver.Value // the columns of the row being read
	used      bool
}

// openNoteReaders opens n readers of the database at path.
func openNoteReaders(ctx context.Context, path string, n int) (*noteReaders, error) {
	return openNoteReadersDSN(ctx, dsn(path, "_query_only=1"), n)
}

// openNoteReadersDSN opens n readers on the data source name.
func openNoteReadersDSN(ctx context.Context, dsn string, n int) (*noteReaders, error) {
	p := &noteReaders{free: make(chan *noteReader, n), closed: make(chan struct{})}
	for range n {
		r, err := openNoteReader(ctx, dsn)
		if err != nil {
			p.close()
			return nil, err
		}
		p.all = append(p.all, r)
		p.free <- r
	}
	return p, nil
}

func openNoteReader(ctx context.Context, dsn string) (*noteReader, error) {
	conn, err := (&sqlite.Driver{}).Open(dsn)
	if err != nil {
		return nil, err
	}
	r := &noteReader{conn: conn, row: make([]driver.Value, 5)}
	for _, st := range []struct {
		stmt *driver.StmtQueryContext
		sql  string
	}{
		{&r.get, `SELECT id, title, body, created_at, updated_at FROM notes WHERE id = ?`},
		{&r.list, `SELECT id, title, body, created_at, updated_at FROM notes WHERE id < ? ORDER BY id DESC LIMIT ?`},
	} {
		prepared, err := conn.(driver.ConnPrepareContext).PrepareContext(ctx, st.sql)
		if err != nil {
			if r.get != nil {
				r.get.(driver.Stmt).Close()
			}
			conn.Close()
			return nil, err
		}
		*st.stmt = prepared.(driver.StmtQueryContext)
	}
	return r, nil
}

// take waits for a free reader, or for ctx to end; it fails once the
// store is closed.
func (p *noteReaders) take(ctx context.Context) (*noteReader, error) {
	if err := ctx.Err(); err != nil {
		return nil, translate(err)
	}
	select {
	case <-p.closed:
		return nil, errClosed
	default:
	}
	select {
	case r := <-p.free:
		if p.reads != nil {
			p.reads.RLock()
		}
		if p.fresh != "" && r.used {
			nr, err := openNoteReader(ctx, p.fresh)
			if err != nil {
				p.put(r)
				return nil, translate(err)
			}
			r.closeAll()
			r = nr
		}
		r.used = true
		return r, nil
	case <-ctx.Done():
		return nil, translate(ctx.Err())
	case <-p.closed:
		return nil, errClosed
	}
}

// put gives back a reader take gave; free has room for every reader.
func (p *noteReaders) put(r *noteReader) {
	if p.reads != nil {
		p.reads.RUnlock()
	}
	p.free <- r
}

// close stops take, waits for the readers in use to be put back, and
// closes every reader with its statements.
func (p *noteReaders) close() error {
	close(p.closed)
	var errs []error
	for range p.all {
		errs = append(errs, (<-p.free).closeAll())
	}
	return errors.Join(errs...)
}

// closeAll closes the reader's statements and connection.
func (r *noteReader) closeAll() error {
	return errors.Join(r.get.(driver.Stmt).Close(), r.list.(driver.Stmt).Close(), r.conn.Close())
}

// query runs st with args and calls each for every row it returns, with
// the row's columns as a scanner. It cannot be cancelled: the driver
// watches a cancellable context with a goroutine per statement, which costs
// more than reading a page of notes by index does.
func (r *noteReader) query(st driver.StmtQueryContext, each func(scanner) error, args ...any) error {
	named := make([]driver.NamedValue, len(args))
	for i, a := range args {
		named[i] = driver.NamedValue{Ordinal: i + 1, Value: a}
	}
	rows, err := st.QueryContext(context.Background(), named)
	if err != nil {
		return err
	}
	defer rows.Close()
	for {
		switch err := rows.Next(r.row); {
		case err == io.EOF:
			return nil
		case err != nil:
			return err
		}
		if err := each(values(r.row)); err != nil {
			return err
		}
	}
}

// values scans a row of TEXT columns into strings, as sql.Row.Scan would.
type values []driver.Value

func (v values) Scan(dest ...any) error {
	if len(dest) != len(v) {
		return fmt.Errorf("sqlite: scanning %d columns into %d values", len(v), len(dest))
	}
	for i, d := range dest {
		s, ok := v[i].(string)
		p, isString := d.(*string)
		if !ok || !isString {
			return fmt.Errorf("sqlite: column %d is %T, scanned into %T", i, v[i], d)
		}
		*p = s
	}
	return nil
}

// getNote reads the note with id, or sql.ErrNoRows.
func (r *noteReader) getNote(id string) (storage.Note, error) {
	n, found := storage.Note{}, false
	err := r.query(r.get, func(row scanner) (err error) {
		n, err = scanNote(row)
		found = true
		return err
	}, id)
	if err == nil && !found {
		err = sql.ErrNoRows
	}
	return n, err
}
