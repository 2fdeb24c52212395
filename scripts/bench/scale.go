package main

import (
	"context"
	"database/sql"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"github.com/example/flystorage/internal/service"
	"github.com/example/flystorage/internal/storage"
	"github.com/example/flystorage/internal/storage/localfs"
	"github.com/example/flystorage/internal/storage/sqlite"
)

// scale checks what must not grow with the data: a listing page deep in
// the cursor chain against the first, and the sweep's round trips and
// memory against the number of objects.
func scale(args []string) error {
	f := flag.NewFlagSet("scale", flag.ContinueOnError)
	dir := f.String("dir", "", "a scratch directory")
	notes := f.Int("notes", 1_000_000, "notes to list through")
	objects := f.Int("objects", 100_000, "objects to sweep")
	if err := f.Parse(args); err != nil {
		return err
	}
	if *dir == "" {
		return fmt.Errorf("-dir is required")
	}
	ctx := context.Background()
	if *notes > 0 {
		if err := deepPages(ctx, filepath.Join(*dir, "pages.db"), *notes); err != nil {
			return err
		}
	}
	if *objects > 0 {
		small, err := sweep(ctx, filepath.Join(*dir, "sweep-small"), *objects/10)
		if err != nil {
			return err
		}
		big, err := sweep(ctx, filepath.Join(*dir, "sweep"), *objects)
		if err != nil {
			return err
		}
		for _, s := range []sweepFigures{small, big} {
			fmt.Printf("sweep %7d objects (rows for half)     %6.2fs  %7d DB round trips (%.4f per object)  peak heap %5.1f MiB\n",
				s.objects, s.took.Seconds(), s.trips, float64(s.trips)/float64(s.objects), float64(s.peakHeap)/(1<<20))
		}
		// One lookup per batch of storage.NamedKeysBatch objects, not one or
		// two per object.
		perObject := float64(big.trips) / float64(big.objects)
		verdict := "PASS"
		if perObject > 0.01 {
			verdict = "FAIL"
			failed++
		}
		fmt.Printf("sweep round trips: %.4f per object                               target <= 0.01 %s\n", perObject, verdict)
		// The heap may grow a little with a larger listing; it must not grow
		// like the objects do.
		growth := float64(big.peakHeap) / float64(max(small.peakHeap, 1))
		verdict = "PASS"
		if growth > 1.5 {
			verdict = "FAIL"
			failed++
		}
		fmt.Printf("sweep memory: peak heap x%.2f for x%d objects                     target <= x1.5 %s\n", growth, *objects/(*objects/10), verdict)
	}
	if failed > 0 {
		return fmt.Errorf("%d checks failed", failed)
	}
	return nil
}

// deepPages fills a SQLite database with n notes in large transactions and
// times the first page of 20 against a page 90% down the cursor chain.
func deepPages(ctx context.Context, path string, n int) error {
	os.Remove(path)
	st, err := sqlite.Open(ctx, path)
	if err != nil {
		return err
	}
	defer st.Close()
	start := time.Now()
	deep, err := bulkNotes(path, n)
	if err != nil {
		return err
	}
	fill := time.Since(start)
	page := func(cursor string) (time.Duration, error) {
		const rounds = 2000
		start := time.Now()
		for range rounds {
			got, _, err := st.ListNotes(ctx, storage.Page{Limit: 20, Cursor: cursor})
			if err != nil {
				return 0, err
			}
			if len(got) != 20 {
				return 0, fmt.Errorf("a page of %d notes, want 20", len(got))
			}
		}
		return time.Since(start) / rounds, nil
	}
	// Interleaved, twice, keeping the faster of each.
	var first, deepest time.Duration
	for range 2 {
		// The first page through its query, not the store's cache of it:
		// CursorOrStart("") sorts after every id.
		a, err := page(storage.CursorOrStart(""))
		if err != nil {
			return err
		}
		b, err := page(deep)
		if err != nil {
			return err
		}
		if first == 0 || a < first {
			first = a
		}
		if deepest == 0 || b < deepest {
			deepest = b
		}
	}
	ratio := float64(deepest) / float64(first)
	verdict := "PASS"
	if ratio > 2 {
		verdict = "FAIL"
		failed++
	}
	fmt.Printf("list %d notes (filled in %.1fs): first page %v, page at 90%% %v   ratio %.2f  target <= 2.00 %s\n",
		n, fill.Seconds(), first.Round(time.Microsecond), deepest.Round(time.Microsecond), ratio, verdict)
	return nil
}

// bulkNotes inserts n notes, 50,000 to a transaction, and returns the id
// of the one 90% of the way down the newest-first listing.
func bulkNotes(path string, n int) (string, error) {
	db, err := sql.Open("sqlite", "file:"+path+"?_journal_mode=WAL&_synchronous=OFF&_busy_timeout=5000")
	if err != nil {
		return "", err
	}
	defer db.Close()
	db.SetMaxOpenConns(1)
	var deep string
	now := time.Now().UTC().Format("2006-01-02T15:04:05.000000Z")
	for done := 0; done < n; {
		tx, err := db.Begin()
		if err != nil {
			return "", err
		}
		stmt, err := tx.Prepare(`INSERT INTO notes (id, title, body, created_at, updated_at) VALUES (?, ?, ?, ?, ?)`)
		if err != nil {
			return "", err
		}
		for end := min(done+50_000, n); done < end; done++ {
			id := storage.NewID()
			if done == n/10 {
				deep = id // the listing is newest first
			}
			if _, err := stmt.Exec(id, fmt.Sprintf("note %d", done), "a note among many", now, now); err != nil {
				tx.Rollback()
				return "", err
			}
		}
		stmt.Close()
		if err := tx.Commit(); err != nil {
			return "", err
		}
	}
	return deep, nil
}

type sweepFigures struct {
	objects  int
	took     time.Duration
	trips    int64
	peakHeap uint64
}

// sweep lays out n objects in a directory, rows for half of them, and runs
// the service's sweep over them, counting its database calls.
func sweep(ctx context.Context, dir string, n int) (sweepFigures, error) {
	res := sweepFigures{objects: n}
	os.RemoveAll(dir)
	const prefix = "files/"
	if err := os.MkdirAll(filepath.Join(dir, "blobs", prefix), 0o755); err != nil {
		return res, err
	}
	st, err := sqlite.Open(ctx, filepath.Join(dir, "app.db"))
	if err != nil {
		return res, err
	}
	defer st.Close()
	blobs, err := localfs.New(filepath.Join(dir, "blobs"))
	if err != nil {
		return res, err
	}
	defer blobs.Close()
	db, err := sql.Open("sqlite", "file:"+filepath.Join(dir, "app.db")+"?_journal_mode=WAL&_synchronous=OFF&_busy_timeout=5000")
	if err != nil {
		return res, err
	}
	db.SetMaxOpenConns(1)
	tx, err := db.Begin()
	if err != nil {
		return res, err
	}
	now := time.Now().UTC().Format("2006-01-02T15:04:05.000000Z")
	for i := range n {
		id := storage.NewID()
		key := storage.FileKey(prefix, id)
		if err := os.WriteFile(filepath.Join(dir, "blobs", key), []byte("x"), 0o644); err != nil {
			return res, err
		}
		if i%2 == 0 {
			if _, err := tx.Exec(`INSERT INTO files (id, name, content_type, size, sha256, key, created_at) VALUES (?, ?, ?, ?, ?, ?, ?)`,
				id, "f", "text/plain", 1, "", key, now); err != nil {
				return res, err
			}
		}
	}
	if err := tx.Commit(); err != nil {
		return res, err
	}
	db.Close()

	counted := &countingDB{Database: st}
	// The clock is two hours on, so every object is past the grace period.
	later := time.Now().Add(2 * time.Hour)
	svc := service.New(service.Options{DB: counted, Blobs: blobs, KeyPrefix: prefix, Now: func() time.Time { return later }})

	// Twice: the first collection moves what sync.Pools hold to their
	// victim caches, the second frees it. Goose's SQL parser leaves 16 MiB
	// of buffers in one from the migrations sqlite.Open ran, which counted,
	// in some runs, in the peak of the first sweep (7 or 32 MiB for the
	// same 10,000 objects).
	runtime.GC()
	runtime.GC()
	peak := watchHeap()
	start := time.Now()
	got, err := svc.Sweep(ctx, service.SweepGrace)
	res.took = time.Since(start)
	res.peakHeap = peak()
	if err != nil {
		return res, err
	}
	if got.Checked != n || got.Removed != n/2 {
		return res, fmt.Errorf("the sweep checked %d and removed %d of %d objects, want all checked and half removed", got.Checked, got.Removed, n)
	}
	res.trips = counted.calls.Load()
	os.RemoveAll(dir)
	return res, nil
}

// watchHeap samples the heap every 5ms until the function it returns is
// called, which returns the highest HeapAlloc it saw.
func watchHeap() (peak func() uint64) {
	stop := make(chan struct{})
	var wg sync.WaitGroup
	var high atomic.Uint64
	wg.Go(func() {
		tick := time.NewTicker(5 * time.Millisecond)
		defer tick.Stop()
		var ms runtime.MemStats
		for {
			runtime.ReadMemStats(&ms)
			if ms.HeapAlloc > high.Load() {
				high.Store(ms.HeapAlloc)
			}
			select {
			case <-stop:
				return
			case <-tick.C:
			}
		}
	})
	return func() uint64 {
		close(stop)
		wg.Wait()
		return high.Load()
	}
}

// countingDB counts the database calls a sweep makes, each one round
// trip (SQLite's NamedKeys asks about a batch in one query).
type countingDB struct {
	storage.Database
	calls atomic.Int64
}

func (c *countingDB) GetFile(ctx context.Context, id string) (storage.File, error) {
	c.calls.Add(1)
	return c.Database.GetFile(ctx, id)
}

func (c *countingDB) GetUpload(ctx context.Context, id string) (storage.Upload, error) {
	c.calls.Add(1)
	return c.Database.GetUpload(ctx, id)
}

func (c *countingDB) NamedKeys(ctx context.Context, ids []string) (map[string]string, map[string]bool, error) {
	c.calls.Add(1)
	return c.Database.NamedKeys(ctx, ids)
}

func (c *countingDB) ExpiredUploads(ctx context.Context, t time.Time, limit int) ([]storage.Upload, error) {
	c.calls.Add(1)
	return c.Database.ExpiredUploads(ctx, t, limit)
}

func (c *countingDB) DeleteUpload(ctx context.Context, id string) error {
	c.calls.Add(1)
	return c.Database.DeleteUpload(ctx, id)
}

func (c *countingDB) PurgeExpired(ctx context.Context, now, keysBefore time.Time) (int64, error) {
	c.calls.Add(1)
	return c.Database.PurgeExpired(ctx, now, keysBefore)
}
