package service_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/example/flystorage/internal/cache"
	"github.com/example/flystorage/internal/service"
	"github.com/example/flystorage/internal/storage"
	"github.com/example/flystorage/internal/storage/engine"
	"github.com/example/flystorage/internal/storage/mongodb"
	"github.com/example/flystorage/internal/storage/mysql"
	"github.com/example/flystorage/internal/storage/postgres"
	"github.com/example/flystorage/internal/testenv"
)

// clock is a settable clock; tests move it instead of sleeping.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) Add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

type stores func(t *testing.T) (storage.Database, storage.Blobs)

// backends are the pairs every test runs on: the embedded default, which
// needs nothing, and Postgres with MinIO, whose bucket presigns and copies.
var backends = map[string]stores{
	"sqlite+dir": func(t *testing.T) (storage.Database, storage.Blobs) {
		db, blobs := testenv.LocalStores(t)
		return db, blobs
	},
	"postgres+s3": func(t *testing.T) (storage.Database, storage.Blobs) {
		db, err := postgres.Open(context.Background(), testenv.PostgresURL(t), postgres.Options{Migrate: true})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { db.Close() })
		return db, testenv.S3Bucket(t).Blobs(t)
	},
	"mysql+dir":   driverStores(mysql.Driver, testenv.MySQLURL),
	"mongodb+dir": driverStores(mongodb.Driver, testenv.MongoURI),
}

// driverStores opens a driver's database, as the registry would, beside a
// fresh blob directory.
func driverStores(d engine.Driver, url func(testing.TB) string) stores {
	return func(t *testing.T) (storage.Database, storage.Blobs) {
		src, err := d.Load(url(t), func(string) string { return "" })
		if err != nil {
			t.Fatal(err)
		}
		db, err := src.Open(context.Background(), storage.OpenOptions{Migrate: true})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { db.Close() })
		_, blobs := testenv.LocalStores(t)
		return db, blobs
	}
}

func newService(t *testing.T, open stores, change ...func(*service.Options)) (*service.Service, *clock) {
	db, blobs := open(t)
	c := &clock{t: time.Now()}
	o := service.Options{DB: db, Blobs: blobs, KeyPrefix: "files/", MaxUpload: 1 << 20, PresignTTL: 15 * time.Minute, Now: c.Now}
	for _, f := range change {
		f(&o)
	}
	return service.New(o), c
}

func run(t *testing.T, test func(t *testing.T, open stores)) {
	for name, open := range backends {
		t.Run(name, func(t *testing.T) { test(t, open) })
	}
}

// content reads the file's bytes and checks they hash to its SHA256.
func content(t *testing.T, s *service.Service, f storage.File) []byte {
	t.Helper()
	r, _, err := s.Blobs().Get(context.Background(), f.Key, nil)
	if err != nil {
		t.Fatalf("reading file %s at %s: %v", f.ID, f.Key, err)
	}
	defer r.Close()
	b, _ := io.ReadAll(r)
	sum := sha256.Sum256(b)
	if hex.EncodeToString(sum[:]) != f.SHA256 {
		t.Errorf("file %s serves bytes whose SHA-256 is not the recorded one", f.ID)
	}
	return b
}

// objects lists every key under files/.
func objects(t *testing.T, s *service.Service) []string {
	t.Helper()
	var keys []string
	for e, err := range s.Blobs().List(context.Background(), "files/") {
		if err != nil {
			t.Fatal(err)
		}
		keys = append(keys, e.Key)
	}
	return keys
}

func TestUploadAndDelete(t *testing.T) {
	run(t, func(t *testing.T, open stores) {
		s, _ := newService(t, open)
		ctx := context.Background()
		f, err := s.Upload(ctx, service.NewFile{Name: "a.txt", ContentType: "text/plain", Body: strings.NewReader("hello")})
		if err != nil {
			t.Fatal(err)
		}
		if got := content(t, s, f); string(got) != "hello" || f.Size != 5 {
			t.Errorf("stored %q (size %d), want hello", got, f.Size)
		}
		if _, err := s.Upload(ctx, service.NewFile{Name: "big", Body: bytes.NewReader(make([]byte, 1<<20+1))}); !errors.Is(err, storage.ErrTooLarge) {
			t.Errorf("upload over MaxUpload = %v, want ErrTooLarge", err)
		}
		if _, err := s.Upload(ctx, service.NewFile{Name: "cut", Body: io.MultiReader(strings.NewReader("abc"), errReader{})}); !errors.Is(err, service.ErrBadBody) {
			t.Errorf("upload of a body that breaks = %v, want ErrBadBody", err)
		}
		if err := s.DeleteFile(ctx, f.ID); err != nil {
			t.Fatal(err)
		}
		if keys := objects(t, s); len(keys) != 0 {
			t.Errorf("objects left after the delete and two failed uploads: %v", keys)
		}
		if err := s.DeleteFile(ctx, f.ID); !errors.Is(err, storage.ErrNotFound) {
			t.Errorf("second delete = %v, want ErrNotFound", err)
		}
	})
}

type errReader struct{}

func (errReader) Read([]byte) (int, error) { return 0, io.ErrUnexpectedEOF }

// direct starts a direct upload of data and puts the bytes where the
// client would: the presigned URL's key, or through PutUpload.
func direct(t *testing.T, s *service.Service, data []byte) storage.Upload {
	t.Helper()
	ctx := context.Background()
	u, target, err := s.StartUpload(ctx, service.NewUpload{Name: "d.bin", ContentType: "application/octet-stream", Size: int64(len(data))})
	if err != nil {
		t.Fatal(err)
	}
	put(t, s, u, target, data)
	return u
}

// put writes data as the client's PUT would.
func put(t *testing.T, s *service.Service, u storage.Upload, target service.Target, data []byte) {
	t.Helper()
	ctx := context.Background()
	if target.URL != "" {
		// The presigned PUT lands at the staging key; writing it through the
		// store is what the bucket does with it.
		if err := s.Blobs().Put(ctx, u.Key, bytes.NewReader(data), int64(len(data)), u.ContentType); err != nil {
			t.Fatal(err)
		}
		return
	}
	if err := s.PutUpload(ctx, u.ID, bytes.NewReader(data), u.ContentType); err != nil {
		t.Fatal(err)
	}
}

// TestConcurrentCompletes is issue 14's defect 1: completes of one upload
// at once all answer with the file, and its bytes stay.
func TestConcurrentCompletes(t *testing.T) {
	run(t, func(t *testing.T, open stores) {
		s, _ := newService(t, open)
		for round := range 5 {
			data := bytes.Repeat([]byte{byte(round)}, 1000)
			u := direct(t, s, data)
			var wg sync.WaitGroup
			created := make([]bool, 4)
			errs := make([]error, 4)
			for i := range created {
				wg.Go(func() { _, created[i], errs[i] = s.CompleteUpload(context.Background(), u.ID) })
			}
			wg.Wait()
			n := 0
			for i := range errs {
				if errs[i] != nil {
					t.Errorf("round %d: complete %d: %v", round, i, errs[i])
				}
				if created[i] {
					n++
				}
			}
			if n != 1 {
				t.Errorf("round %d: %d completes created the file, want 1", round, n)
			}
			f, err := s.GetFile(context.Background(), u.ID)
			if err != nil {
				t.Fatal(err)
			}
			if got := content(t, s, f); !bytes.Equal(got, data) {
				t.Errorf("round %d: the file holds %d bytes, want its 1000", round, len(got))
			}
		}
		// The losers' copies are gone; only the files' own objects remain,
		// and in a bucket the empty objects that close the upload URLs.
		var kept []string
		for e, err := range s.Blobs().List(context.Background(), "files/") {
			if err != nil {
				t.Fatal(err)
			}
			if _, staged := storage.StagedID("files/", e.Key); staged && e.Size == 0 {
				continue
			}
			kept = append(kept, e.Key)
		}
		if len(kept) != 5 {
			t.Errorf("objects after 5 uploads completed 4 times each: %v, want 5", kept)
		}
	})
}

// swapOnGet is a store in which the client's PUT lands again, with other
// bytes, the moment the staged object is first read: a PUT racing the
// complete.
type swapOnGet struct {
	storage.Blobs
	once    sync.Once
	staging string
	other   []byte
}

func (b *swapOnGet) Get(ctx context.Context, key string, rng *storage.ByteRange) (io.ReadCloser, storage.BlobInfo, error) {
	r, info, err := b.Blobs.Get(ctx, key, rng)
	if key == b.staging {
		b.once.Do(func() {
			if perr := b.Blobs.Put(ctx, key, bytes.NewReader(b.other), int64(len(b.other)), info.ContentType); perr != nil {
				panic(perr)
			}
		})
	}
	return r, info, err
}

// TestPutRacingComplete is issue 14's defect 2: whatever the client puts
// while a complete runs, the bytes hashed are the bytes kept, and a PUT
// after the complete changes nothing.
func TestPutRacingComplete(t *testing.T) {
	t.Run("sqlite+dir", func(t *testing.T) {
		db, blobs := testenv.LocalStores(t)
		racing := &swapOnGet{Blobs: blobs, other: bytes.Repeat([]byte("B"), 100)}
		s := service.New(service.Options{DB: db, Blobs: racing, KeyPrefix: "files/", MaxUpload: 1 << 20})
		u, target, err := s.StartUpload(context.Background(), service.NewUpload{Name: "r", ContentType: "text/plain", Size: 100})
		if err != nil {
			t.Fatal(err)
		}
		racing.staging = u.Key
		put(t, s, u, target, bytes.Repeat([]byte("A"), 100))
		f, _, err := s.CompleteUpload(context.Background(), u.ID)
		if err != nil {
			t.Fatal(err)
		}
		content(t, s, f) // checks the recorded hash against the kept bytes
	})
	run(t, func(t *testing.T, open stores) {
		s, _ := newService(t, open)
		data := bytes.Repeat([]byte("A"), 100)
		u := direct(t, s, data)
		f, _, err := s.CompleteUpload(context.Background(), u.ID)
		if err != nil {
			t.Fatal(err)
		}
		// A late PUT to the staging key (the presigned URL still works)...
		if err := s.Blobs().Put(context.Background(), u.Key, bytes.NewReader(bytes.Repeat([]byte("B"), 100)), 100, u.ContentType); err != nil {
			t.Fatal(err)
		}
		// ...or through the app, which refuses it: the intent is gone.
		if err := s.PutUpload(context.Background(), u.ID, bytes.NewReader(data), u.ContentType); !errors.Is(err, storage.ErrNotFound) {
			t.Errorf("PutUpload after complete = %v, want ErrNotFound", err)
		}
		if got := content(t, s, f); !bytes.Equal(got, data) {
			t.Errorf("a late PUT changed the file's bytes")
		}
	})
}

func TestCompleteChecks(t *testing.T) {
	run(t, func(t *testing.T, open stores) {
		s, clk := newService(t, open)
		ctx := context.Background()
		u, _, err := s.StartUpload(ctx, service.NewUpload{Name: "c", ContentType: "text/plain", Size: 10})
		if err != nil {
			t.Fatal(err)
		}
		if _, _, err := s.CompleteUpload(ctx, u.ID); !errors.Is(err, storage.ErrInvalid) || !strings.Contains(err.Error(), "nothing has been uploaded") {
			t.Errorf("complete before the PUT = %v, want ErrInvalid saying nothing was uploaded", err)
		}
		if err := s.Blobs().Put(ctx, u.Key, strings.NewReader("short"), 5, "text/plain"); err != nil {
			t.Fatal(err)
		}
		if _, _, err := s.CompleteUpload(ctx, u.ID); !errors.Is(err, storage.ErrInvalid) || !strings.Contains(err.Error(), "5 bytes, 10 were announced") {
			t.Errorf("complete of the wrong size = %v", err)
		}
		// Past its expiry, without waiting for it.
		clk.Add(16 * time.Minute)
		if _, _, err := s.CompleteUpload(ctx, u.ID); !errors.Is(err, storage.ErrNotFound) || !strings.Contains(err.Error(), "expired") {
			t.Errorf("complete after the expiry = %v, want ErrNotFound saying it expired", err)
		}
		if _, _, err := s.CompleteUpload(ctx, storage.NewID()); !errors.Is(err, storage.ErrNotFound) {
			t.Errorf("complete of no upload = %v, want ErrNotFound", err)
		}
		if _, _, err := s.StartUpload(ctx, service.NewUpload{Size: 1<<20 + 1}); !errors.Is(err, storage.ErrTooLarge) {
			t.Errorf("intent over MaxUpload = %v, want ErrTooLarge", err)
		}
	})
}

// TestSweep stores a file with its row, orphans of each kind, and objects
// that are not files': the sweep removes the orphans only, and only once
// they are older than the grace period, which the clock moves past.
func TestSweep(t *testing.T) {
	run(t, func(t *testing.T, open stores) {
		s, clk := newService(t, open)
		ctx := context.Background()
		db, blobs := s.DB(), s.Blobs()
		putKey := func(key string) {
			t.Helper()
			if err := blobs.Put(ctx, key, strings.NewReader("data"), 4, "text/plain"); err != nil {
				t.Fatalf("Put(%s): %v", key, err)
			}
		}
		kept, err := s.Upload(ctx, service.NewFile{Name: "kept", ContentType: "text/plain", Body: strings.NewReader("data")})
		if err != nil {
			t.Fatal(err)
		}
		orphan := storage.FileKey("files/", storage.NewID())
		lostCopy := storage.VersionKey("files/", kept.ID) // a losing complete's copy
		strayStaged := storage.StagingKey("files/", storage.NewID())
		for _, k := range []string{orphan, lostCopy, strayStaged} {
			putKey(k)
		}
		intent, target, err := s.StartUpload(ctx, service.NewUpload{Name: "open", ContentType: "text/plain", Size: 4})
		if err != nil {
			t.Fatal(err)
		}
		put(t, s, intent, target, []byte("data"))
		notOurs := []string{"files/not-an-id", "files/" + storage.NewID() + ".x", "backups/app.db.gz"}
		for _, k := range notOurs {
			putKey(k)
		}
		now := time.Now()
		if err := db.CreateSession(ctx, storage.Session{ID: strings.Repeat("e5", 32), CreatedAt: now, ExpiresAt: now.Add(time.Minute)}); err != nil {
			t.Fatal(err)
		}

		res, err := s.Sweep(ctx, service.SweepGrace)
		if err != nil || res.Removed != 0 || res.Checked != 5 {
			t.Errorf("Sweep of new objects = %+v, %v; want 5 checked and none removed", res, err)
		}
		clk.Add(service.SweepGrace + time.Minute) // the intent expires too
		res, err = s.Sweep(ctx, service.SweepGrace)
		if err != nil || res.Removed != 3 || res.Expired != 1 || res.Purged != 1 {
			t.Errorf("Sweep an hour on = %+v, %v; want 3 orphans removed, 1 intent expired, 1 session purged", res, err)
		}
		for _, k := range []string{orphan, lostCopy, strayStaged, intent.Key} {
			if _, err := blobs.Stat(ctx, k); !errors.Is(err, storage.ErrNotFound) {
				t.Errorf("%s still stored: %v", k, err)
			}
		}
		for _, k := range append(notOurs, kept.Key) {
			if _, err := blobs.Stat(ctx, k); err != nil {
				t.Errorf("Sweep removed %s, which it must keep: %v", k, err)
			}
		}
	})
}

// flakyInsert is a database whose CreateFile fails as if the connection
// broke after the statement was sent: applied says whether the insert
// happened, reachable whether reads still work.
type flakyInsert struct {
	storage.Database
	applied, reachable bool
}

func (f *flakyInsert) CreateFile(ctx context.Context, file storage.File) error {
	if f.applied {
		if err := f.Database.CreateFile(ctx, file); err != nil {
			return err
		}
	}
	return fmt.Errorf("%w (%w): connection reset", storage.ErrUnavailable, storage.ErrOutcomeUnknown)
}

func (f *flakyInsert) GetFile(ctx context.Context, id string) (storage.File, error) {
	if !f.reachable {
		return storage.File{}, fmt.Errorf("%w: still down", storage.ErrUnavailable)
	}
	return f.Database.GetFile(ctx, id)
}

// TestUploadWhoseInsertOutcomeIsUnknown checks the three ways an insert
// with an unknown outcome resolves: the row is there (the file, object
// kept), the row is surely not there (an error, object deleted), or nobody
// can tell (an error, object kept for the sweep rather than risk a listed
// file without its bytes).
func TestUploadWhoseInsertOutcomeIsUnknown(t *testing.T) {
	for _, tc := range []struct {
		name               string
		applied, reachable bool
		ok                 bool
		objects            int
	}{
		{"row was written", true, true, true, 1},
		{"row was not written", false, true, false, 0},
		{"cannot tell", false, false, false, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, _ := newService(t, func(t *testing.T) (storage.Database, storage.Blobs) {
				db, blobs := testenv.LocalStores(t)
				return &flakyInsert{Database: db, applied: tc.applied, reachable: tc.reachable}, blobs
			})
			_, err := s.Upload(context.Background(), service.NewFile{Name: "a", ContentType: "text/plain", Body: strings.NewReader("hello")})
			if (err == nil) != tc.ok || (err != nil && !errors.Is(err, storage.ErrUnavailable)) {
				t.Errorf("Upload = %v, want success %v (else ErrUnavailable)", err, tc.ok)
			}
			if n := len(objects(t, s)); n != tc.objects {
				t.Errorf("%d objects stored, want %d", n, tc.objects)
			}
		})
	}
}

// TestIdempotencyKeysInRedis: with Redis, a claim is kept there too, so a
// retry is answered from Redis; the database remains the record.
func TestIdempotencyKeysInRedis(t *testing.T) {
	ctx := context.Background()
	cfg, err := cache.Load(func(k string) string {
		return map[string]string{"REDIS_URL": testenv.RedisURL(t)}[k]
	})
	if err != nil {
		t.Fatal(err)
	}
	cfg.KeyPrefix = "test-" + testenv.RandomHex(4) + ":"
	c, err := cache.Open(ctx, cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	defer c.Flush(ctx) // this test's keys
	db, blobs := testenv.LocalStores(t)
	s := service.New(service.Options{DB: db, Blobs: blobs, KeyPrefix: "files/", Cache: c})

	id, retry, err := s.Claim(ctx, "key-1", "fingerprint-a")
	if err != nil || retry {
		t.Fatalf("first claim = %s, %v, %v", id, retry, err)
	}
	// The database forgets the key; Redis still has it.
	if _, err := db.PurgeExpired(ctx, time.Now(), time.Now().Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	if again, retry, err := s.Claim(ctx, "key-1", "fingerprint-a"); err != nil || !retry || again != id {
		t.Errorf("retry = %s, %v, %v; want %s from Redis", again, retry, err, id)
	}
	if _, _, err := s.Claim(ctx, "key-1", "fingerprint-b"); !errors.Is(err, service.ErrKeyReused) {
		t.Errorf("the key with another request = %v, want ErrKeyReused from Redis's copy", err)
	}
}

// TestGoneIsARead: asking whether a claimed id is gone records nothing,
// so any number of retries whose creation failed may still create it,
// while an id deleted since stays gone, on every backend.
func TestGoneIsARead(t *testing.T) {
	run(t, func(t *testing.T, open stores) {
		ctx := t.Context()
		s, _ := newService(t, open)
		never := storage.NewID() // claimed by a key, never created
		for i := range 3 {
			if gone, err := s.Gone(ctx, never); err != nil || gone {
				t.Errorf("Gone(never created), retry %d = %v, %v; want false", i+1, gone, err)
			}
		}
		n, err := s.CreateNote(ctx, storage.Note{Title: "deleted"})
		if err != nil {
			t.Fatal(err)
		}
		if err := s.DeleteNote(ctx, n.ID); err != nil {
			t.Fatal(err)
		}
		for i := range 2 {
			if gone, err := s.Gone(ctx, n.ID); err != nil || !gone {
				t.Errorf("Gone(deleted), retry %d = %v, %v; want true", i+1, gone, err)
			}
		}
	})
}
