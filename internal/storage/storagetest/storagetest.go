// Package storagetest is the conformance suite every backend runs, so that
// SQLite and Postgres, MinIO and the local directory prove the same
// behaviour: storage.Database through RunDatabase, storage.Blobs through
// RunBlobs.
package storagetest

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync"
	"testing"
	"testing/iotest"
	"time"

	"github.com/example/flystorage/internal/storage"
)

// RunDatabase runs the suite against databases made by open, a fresh and
// empty one for each test.
func RunDatabase(t *testing.T, open func(t *testing.T) storage.Database) {
	ctx := context.Background()

	t.Run("NoteRoundTrip", func(t *testing.T) {
		db := open(t)
		want := newNote("first", "body ✓")
		mustCreate(t, db, want)
		got, err := db.GetNote(ctx, want.ID)
		if err != nil {
			t.Fatalf("GetNote: %v", err)
		}
		assertNote(t, got, want)
	})

	t.Run("MissingNote", func(t *testing.T) {
		db := open(t)
		id := storage.NewID()
		if _, err := db.GetNote(ctx, id); !errors.Is(err, storage.ErrNotFound) {
			t.Errorf("GetNote(missing) = %v, want ErrNotFound", err)
		}
		if _, err := db.UpdateNote(ctx, newNote("x", "")); !errors.Is(err, storage.ErrNotFound) {
			t.Errorf("UpdateNote(missing) = %v, want ErrNotFound", err)
		}
		if err := db.DeleteNote(ctx, id); !errors.Is(err, storage.ErrNotFound) {
			t.Errorf("DeleteNote(missing) = %v, want ErrNotFound", err)
		}
	})

	t.Run("DuplicateNoteID", func(t *testing.T) {
		db := open(t)
		n := newNote("a", "")
		mustCreate(t, db, n)
		if err := db.CreateNote(ctx, n); !errors.Is(err, storage.ErrConflict) {
			t.Errorf("CreateNote(same id) = %v, want ErrConflict", err)
		}
	})

	t.Run("SchemaRejectsInvalidNote", func(t *testing.T) {
		db := open(t)
		// The server validates first; the schema is the last line of defence.
		for _, n := range []storage.Note{newNote("", "empty title"), newNote(strings.Repeat("t", storage.MaxTitleChars+1), "")} {
			if err := db.CreateNote(ctx, n); !errors.Is(err, storage.ErrInvalid) {
				t.Errorf("CreateNote(title of %d chars) = %v, want ErrInvalid", len(n.Title), err)
			}
		}
		// Characters, not bytes: 200 three-byte characters fit.
		mustCreate(t, db, newNote(strings.Repeat("€", storage.MaxTitleChars), ""))
	})

	t.Run("UpdateNote", func(t *testing.T) {
		db := open(t)
		n := newNote("before", "old")
		mustCreate(t, db, n)
		upd := n
		upd.Title, upd.Body, upd.UpdatedAt = "after", "new", n.UpdatedAt.Add(time.Second)
		got, err := db.UpdateNote(ctx, upd)
		if err != nil {
			t.Fatalf("UpdateNote: %v", err)
		}
		assertNote(t, got, upd) // CreatedAt unchanged
		if got, _ := db.GetNote(ctx, n.ID); got.Title != "after" {
			t.Errorf("after update, GetNote title = %q", got.Title)
		}
	})

	t.Run("DeleteNote", func(t *testing.T) {
		db := open(t)
		n := newNote("doomed", "")
		mustCreate(t, db, n)
		if err := db.DeleteNote(ctx, n.ID); err != nil {
			t.Fatalf("DeleteNote: %v", err)
		}
		if _, err := db.GetNote(ctx, n.ID); !errors.Is(err, storage.ErrNotFound) {
			t.Errorf("GetNote after delete = %v, want ErrNotFound", err)
		}
	})

	t.Run("ListNotesPages", func(t *testing.T) {
		db := open(t)
		var ids []string
		for i := range 7 {
			n := newNote(fmt.Sprintf("note %d", i), "")
			mustCreate(t, db, n)
			ids = append([]string{n.ID}, ids...) // newest first
		}
		var got []string
		cursor := ""
		for pages := 0; ; pages++ {
			if pages > 3 {
				t.Fatalf("more than 3 pages of 3 for 7 notes")
			}
			notes, next, err := db.ListNotes(ctx, storage.Page{Limit: 3, Cursor: cursor})
			if err != nil {
				t.Fatalf("ListNotes: %v", err)
			}
			for _, n := range notes {
				got = append(got, n.ID)
			}
			if next == "" {
				break
			}
			cursor = next
		}
		if strings.Join(got, ",") != strings.Join(ids, ",") {
			t.Errorf("paged ids =\n%v\nwant newest first\n%v", got, ids)
		}
		notes, next, err := db.ListNotes(ctx, storage.Page{Limit: 7})
		if err != nil || len(notes) != 7 || next != "" {
			t.Errorf("ListNotes(limit=7) = %d notes, next %q, err %v; want 7, \"\", nil", len(notes), next, err)
		}
		if _, _, err := db.ListNotes(ctx, storage.Page{Limit: 3, Cursor: "not-a-cursor"}); !errors.Is(err, storage.ErrInvalid) {
			t.Errorf("ListNotes(bad cursor) = %v, want ErrInvalid", err)
		}
	})

	t.Run("EmptyList", func(t *testing.T) {
		db := open(t)
		notes, next, err := db.ListNotes(ctx, storage.Page{Limit: 10})
		if err != nil || notes == nil || len(notes) != 0 || next != "" {
			t.Errorf("ListNotes(empty) = %#v, %q, %v; want an empty non-nil slice", notes, next, err)
		}
	})

	t.Run("ConcurrentWriters", func(t *testing.T) {
		db := open(t)
		const writers = 16
		var wg sync.WaitGroup
		errs := make(chan error, writers)
		for i := range writers {
			wg.Go(func() {
				n := newNote(fmt.Sprintf("w%d", i), "")
				if err := db.CreateNote(ctx, n); err != nil {
					errs <- err
					return
				}
				if _, err := db.GetNote(ctx, n.ID); err != nil {
					errs <- err
				}
			})
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Errorf("concurrent write: %v", err)
		}
		notes, _, err := db.ListNotes(ctx, storage.Page{Limit: 100})
		if err != nil || len(notes) != writers {
			t.Errorf("after %d concurrent creates, ListNotes = %d notes, %v", writers, len(notes), err)
		}
	})

	t.Run("FileRoundTrip", func(t *testing.T) {
		db := open(t)
		f := newFile("report.pdf")
		if err := db.CreateFile(ctx, f); err != nil {
			t.Fatalf("CreateFile: %v", err)
		}
		got, err := db.GetFile(ctx, f.ID)
		if err != nil {
			t.Fatalf("GetFile: %v", err)
		}
		assertFile(t, got, f)
		dup := newFile("other")
		dup.Key = f.Key
		if err := db.CreateFile(ctx, dup); !errors.Is(err, storage.ErrConflict) {
			t.Errorf("CreateFile(same key) = %v, want ErrConflict", err)
		}
		deleted, err := db.DeleteFile(ctx, f.ID)
		if err != nil {
			t.Fatalf("DeleteFile: %v", err)
		}
		assertFile(t, deleted, f)
		if _, err := db.GetFile(ctx, f.ID); !errors.Is(err, storage.ErrNotFound) {
			t.Errorf("GetFile after delete = %v, want ErrNotFound", err)
		}
		if _, err := db.DeleteFile(ctx, f.ID); !errors.Is(err, storage.ErrNotFound) {
			t.Errorf("DeleteFile(missing) = %v, want ErrNotFound", err)
		}
	})

	t.Run("ListFilesPages", func(t *testing.T) {
		db := open(t)
		var ids []string
		for i := range 5 {
			f := newFile(fmt.Sprintf("f%d", i))
			if err := db.CreateFile(ctx, f); err != nil {
				t.Fatalf("CreateFile: %v", err)
			}
			ids = append([]string{f.ID}, ids...)
		}
		first, next, err := db.ListFiles(ctx, storage.Page{Limit: 2})
		if err != nil || len(first) != 2 || next != ids[1] {
			t.Fatalf("ListFiles page 1 = %d files, next %q, %v; want 2, %q", len(first), next, err, ids[1])
		}
		rest, next, err := db.ListFiles(ctx, storage.Page{Limit: 10, Cursor: next})
		if err != nil || len(rest) != 3 || next != "" || rest[0].ID != ids[2] {
			t.Errorf("ListFiles page 2 = %d files, next %q, %v; want the 3 oldest", len(rest), next, err)
		}
	})

	t.Run("UploadIntents", func(t *testing.T) {
		db := open(t)
		now := storage.Now()
		u := storage.Upload{ID: storage.NewID(), Name: "big.mov", ContentType: "video/quicktime", Size: 1 << 30,
			CreatedAt: now, ExpiresAt: now.Add(15 * time.Minute)}
		u.Key = "files/" + u.ID
		if err := db.CreateUpload(ctx, u); err != nil {
			t.Fatalf("CreateUpload: %v", err)
		}
		if err := db.CreateUpload(ctx, u); !errors.Is(err, storage.ErrConflict) {
			t.Errorf("CreateUpload(same id) = %v, want ErrConflict", err)
		}
		got, err := db.GetUpload(ctx, u.ID)
		if err != nil || got.Name != u.Name || got.Size != u.Size || got.Key != u.Key || !got.ExpiresAt.Equal(u.ExpiresAt) || !got.CreatedAt.Equal(u.CreatedAt) {
			t.Errorf("GetUpload = %+v, %v; want %+v", got, err, u)
		}
		if _, err := db.GetUpload(ctx, storage.NewID()); !errors.Is(err, storage.ErrNotFound) {
			t.Errorf("GetUpload(missing) = %v, want ErrNotFound", err)
		}

		// Only intents expired before the given time are listed.
		old := storage.Upload{ID: storage.NewID(), Name: "old", ContentType: "text/plain", CreatedAt: now.Add(-time.Hour), ExpiresAt: now.Add(-time.Minute)}
		old.Key = "files/" + old.ID
		if err := db.CreateUpload(ctx, old); err != nil {
			t.Fatal(err)
		}
		expired, err := db.ExpiredUploads(ctx, now, 10)
		if err != nil || len(expired) != 1 || expired[0].ID != old.ID {
			t.Errorf("ExpiredUploads = %+v, %v; want only %s", expired, err, old.ID)
		}
		if err := db.DeleteUpload(ctx, old.ID); err != nil {
			t.Errorf("DeleteUpload: %v", err)
		}
		if err := db.DeleteUpload(ctx, old.ID); !errors.Is(err, storage.ErrNotFound) {
			t.Errorf("DeleteUpload(again) = %v, want ErrNotFound", err)
		}

		// Completing turns the intent into a file, once.
		f := storage.File{ID: u.ID, Name: u.Name, ContentType: u.ContentType, Size: u.Size, SHA256: strings.Repeat("cd", 32), Key: u.Key, CreatedAt: storage.Now()}
		if err := db.CompleteUpload(ctx, f, u.ExpiresAt.Add(time.Second)); !errors.Is(err, storage.ErrNotFound) {
			t.Errorf("CompleteUpload after the intent expired = %v, want ErrNotFound", err)
		}
		if err := db.CompleteUpload(ctx, f, now); err != nil {
			t.Fatalf("CompleteUpload: %v", err)
		}
		if _, err := db.GetUpload(ctx, u.ID); !errors.Is(err, storage.ErrNotFound) {
			t.Errorf("the intent survived CompleteUpload: %v", err)
		}
		if got, err := db.GetFile(ctx, u.ID); err != nil || got.SHA256 != f.SHA256 {
			t.Errorf("GetFile after CompleteUpload = %+v, %v", got, err)
		}
		if err := db.CompleteUpload(ctx, f, now); !errors.Is(err, storage.ErrNotFound) {
			t.Errorf("CompleteUpload(again) = %v, want ErrNotFound", err)
		}
	})

	t.Run("NamedKeys", func(t *testing.T) {
		db := open(t)
		now := storage.Now()
		plain := newFile("plain")
		versioned := newFile("versioned")
		versioned.Key = storage.VersionKey("files/", versioned.ID)
		for _, f := range []storage.File{plain, versioned} {
			if err := db.CreateFile(ctx, f); err != nil {
				t.Fatalf("CreateFile: %v", err)
			}
		}
		intent := func(expires time.Time) storage.Upload {
			u := storage.Upload{ID: storage.NewID(), Name: "u", ContentType: "text/plain", Size: 1, CreatedAt: now, ExpiresAt: expires}
			u.Key = storage.StagingKey("files/", u.ID)
			if err := db.CreateUpload(ctx, u); err != nil {
				t.Fatalf("CreateUpload: %v", err)
			}
			return u
		}
		pending, expired := intent(now.Add(time.Hour)), intent(now.Add(-time.Minute))
		completed := intent(now.Add(time.Hour))
		done := storage.File{ID: completed.ID, Name: "done", ContentType: "text/plain", Size: 1, SHA256: strings.Repeat("ef", 32),
			Key: storage.VersionKey("files/", completed.ID), CreatedAt: now}
		if err := db.CompleteUpload(ctx, done, now); err != nil {
			t.Fatalf("CompleteUpload: %v", err)
		}
		wantFiles := map[string]string{plain.ID: plain.Key, versioned.ID: versioned.Key, done.ID: done.Key}
		wantUploads := map[string]bool{pending.ID: true, expired.ID: true}
		check := func(name string, ids []string, wantFiles map[string]string, wantUploads map[string]bool) {
			t.Helper()
			files, uploads, err := db.NamedKeys(ctx, ids)
			if err != nil {
				t.Fatalf("NamedKeys(%s): %v", name, err)
			}
			if fmt.Sprint(files) != fmt.Sprint(wantFiles) || fmt.Sprint(uploads) != fmt.Sprint(wantUploads) {
				t.Errorf("NamedKeys(%s) = files %v, uploads %v;\nwant files %v, uploads %v", name, files, uploads, wantFiles, wantUploads)
			}
		}

		unknown := storage.NewID()
		check("known, unknown and repeated ids",
			[]string{plain.ID, versioned.ID, pending.ID, expired.ID, completed.ID, unknown, plain.ID, pending.ID},
			wantFiles, wantUploads)
		check("unknown ids", []string{unknown, storage.NewID()}, map[string]string{}, map[string]bool{})
		check("an empty batch", nil, map[string]string{}, map[string]bool{})

		// More ids than one query asks about: the rows at the start, in the
		// middle and at the end of the list are all found.
		many := make([]string, 2*storage.NamedKeysBatch+3)
		for i := range many {
			many[i] = storage.NewID()
		}
		many[0], many[storage.NamedKeysBatch+1], many[len(many)-2], many[len(many)-1] = plain.ID, pending.ID, done.ID, versioned.ID
		check(fmt.Sprintf("%d ids", len(many)), many,
			map[string]string{plain.ID: plain.Key, done.ID: done.Key, versioned.ID: versioned.Key}, map[string]bool{pending.ID: true})
	})

	t.Run("Sessions", func(t *testing.T) {
		db := open(t)
		now := storage.Now()
		s := storage.Session{ID: strings.Repeat("a1", 32), CreatedAt: now, ExpiresAt: now.Add(time.Hour)}
		if err := db.CreateSession(ctx, s); err != nil {
			t.Fatalf("CreateSession: %v", err)
		}
		if err := db.CreateSession(ctx, s); !errors.Is(err, storage.ErrConflict) {
			t.Errorf("CreateSession(same id) = %v, want ErrConflict", err)
		}
		got, err := db.GetSession(ctx, s.ID, now)
		if err != nil || got.ID != s.ID || !got.CreatedAt.Equal(s.CreatedAt) || !got.ExpiresAt.Equal(s.ExpiresAt) {
			t.Errorf("GetSession = %+v, %v; want %+v", got, err, s)
		}
		if _, err := db.GetSession(ctx, s.ID, s.ExpiresAt); !errors.Is(err, storage.ErrNotFound) {
			t.Errorf("GetSession at its expiry = %v, want ErrNotFound", err)
		}
		if _, err := db.GetSession(ctx, strings.Repeat("b2", 32), now); !errors.Is(err, storage.ErrNotFound) {
			t.Errorf("GetSession(missing) = %v, want ErrNotFound", err)
		}
		if err := db.DeleteSession(ctx, s.ID); err != nil {
			t.Errorf("DeleteSession: %v", err)
		}
		if _, err := db.GetSession(ctx, s.ID, now); !errors.Is(err, storage.ErrNotFound) {
			t.Errorf("GetSession after DeleteSession = %v, want ErrNotFound", err)
		}
		if err := db.DeleteSession(ctx, s.ID); err != nil {
			t.Errorf("DeleteSession(again) = %v, want nil", err)
		}
	})

	t.Run("IdempotencyKeys", func(t *testing.T) {
		db := open(t)
		now := storage.Now()
		k := storage.IdempotencyKey{Key: "retry-" + storage.NewID(), Fingerprint: strings.Repeat("0f", 32), ResourceID: storage.NewID(), CreatedAt: now}
		got, err := db.ClaimIdempotencyKey(ctx, k)
		if err != nil || got != k {
			t.Fatalf("ClaimIdempotencyKey = %+v, %v; want %+v", got, err, k)
		}
		// A second claim of the key gets the first record, whatever it asks.
		other := k
		other.Fingerprint, other.ResourceID, other.CreatedAt = strings.Repeat("f0", 32), storage.NewID(), now.Add(time.Second)
		if got, err := db.ClaimIdempotencyKey(ctx, other); err != nil || got != k {
			t.Errorf("ClaimIdempotencyKey(again) = %+v, %v; want the first %+v", got, err, k)
		}
		long := storage.IdempotencyKey{Key: strings.Repeat("k", storage.MaxIdempotencyKey), Fingerprint: k.Fingerprint, ResourceID: storage.NewID(), CreatedAt: now}
		if got, err := db.ClaimIdempotencyKey(ctx, long); err != nil || got != long {
			t.Errorf("ClaimIdempotencyKey(%d-byte key) = %+v, %v", storage.MaxIdempotencyKey, got, err)
		}

		// Concurrent claims of one key agree on one record.
		race := storage.IdempotencyKey{Key: "race-" + storage.NewID(), Fingerprint: k.Fingerprint, CreatedAt: now}
		var wg sync.WaitGroup
		ids := make([]string, 8)
		errs := make([]error, 8)
		for i := range ids {
			wg.Go(func() {
				c := race
				c.ResourceID = storage.NewID()
				got, err := db.ClaimIdempotencyKey(ctx, c)
				ids[i], errs[i] = got.ResourceID, err
			})
		}
		wg.Wait()
		for i := range ids {
			if errs[i] != nil || ids[i] != ids[0] {
				t.Errorf("concurrent claim %d = %s, %v; want %s as claim 0 got", i, ids[i], errs[i], ids[0])
			}
		}
	})

	t.Run("PurgeExpired", func(t *testing.T) {
		db := open(t)
		now := storage.Now()
		live := storage.Session{ID: strings.Repeat("c3", 32), CreatedAt: now, ExpiresAt: now.Add(time.Hour)}
		dead := storage.Session{ID: strings.Repeat("d4", 32), CreatedAt: now.Add(-2 * time.Hour), ExpiresAt: now.Add(-time.Hour)}
		oldKey := storage.IdempotencyKey{Key: "old-" + storage.NewID(), Fingerprint: "x", ResourceID: storage.NewID(), CreatedAt: now.Add(-25 * time.Hour)}
		newKey := storage.IdempotencyKey{Key: "new-" + storage.NewID(), Fingerprint: "x", ResourceID: storage.NewID(), CreatedAt: now}
		for _, s := range []storage.Session{live, dead} {
			if err := db.CreateSession(ctx, s); err != nil {
				t.Fatal(err)
			}
		}
		for _, k := range []storage.IdempotencyKey{oldKey, newKey} {
			if _, err := db.ClaimIdempotencyKey(ctx, k); err != nil {
				t.Fatal(err)
			}
		}
		n, err := db.PurgeExpired(ctx, now, now.Add(-24*time.Hour))
		if err != nil || n != 2 {
			t.Errorf("PurgeExpired = %d, %v; want 2 (one session, one key)", n, err)
		}
		if _, err := db.GetSession(ctx, live.ID, now); err != nil {
			t.Errorf("the live session was purged: %v", err)
		}
		// The old key is gone, so claiming it again records the new claim.
		again := oldKey
		again.ResourceID, again.CreatedAt = storage.NewID(), now
		if got, err := db.ClaimIdempotencyKey(ctx, again); err != nil || got != again {
			t.Errorf("claiming a purged key = %+v, %v; want the new claim", got, err)
		}
		if got, err := db.ClaimIdempotencyKey(ctx, storage.IdempotencyKey{Key: newKey.Key, ResourceID: storage.NewID(), CreatedAt: now}); err != nil || got != newKey {
			t.Errorf("the recent key was purged: %+v, %v", got, err)
		}
	})

	t.Run("Ping", func(t *testing.T) {
		if err := open(t).Ping(ctx); err != nil {
			t.Errorf("Ping: %v", err)
		}
	})

	t.Run("Describer", func(t *testing.T) { RunDescriber(t, open(t)) })
}

// RunBlobs runs the suite against the store made by open. Each test writes
// under keys of its own, so stores may be shared.
func RunBlobs(t *testing.T, open func(t *testing.T) storage.Blobs) {
	ctx := context.Background()
	key := func(name string) string { return "storagetest/" + storage.NewID() + "/" + name }

	t.Run("RoundTrip", func(t *testing.T) {
		b := open(t)
		for _, size := range []int64{0, 1, 100 << 10} {
			data := randomBytes(size)
			for _, known := range []bool{true, false} {
				k := key("blob")
				n := int64(-1)
				if known {
					n = size
				}
				if err := b.Put(ctx, k, bytes.NewReader(data), n, "text/plain"); err != nil {
					t.Fatalf("Put(%d bytes, size known %v): %v", size, known, err)
				}
				assertBlob(t, b, k, data)
			}
		}
	})

	t.Run("Ranges", func(t *testing.T) {
		b := open(t)
		data := randomBytes(10_000)
		k := key("ranged")
		if err := b.Put(ctx, k, bytes.NewReader(data), int64(len(data)), "application/octet-stream"); err != nil {
			t.Fatal(err)
		}
		for _, rng := range []storage.ByteRange{{Start: 0, Length: 1}, {Start: 100, Length: 900}, {Start: 9_999, Length: 1}, {Start: 5_000, Length: -1}, {Start: 0, Length: -1}} {
			r, info, err := b.Get(ctx, k, &rng)
			if err != nil {
				t.Fatalf("Get(%+v): %v", rng, err)
			}
			got, err := io.ReadAll(r)
			r.Close()
			end := int64(len(data))
			if rng.Length >= 0 {
				end = rng.Start + rng.Length
			}
			if err != nil || !bytes.Equal(got, data[rng.Start:end]) || info.Size != int64(len(data)) {
				t.Errorf("Get(%+v) = %d bytes (whole size %d), %v; want bytes %d to %d of %d", rng, len(got), info.Size, err, rng.Start, end, len(data))
			}
		}
	})

	t.Run("LargerThanOnePart", func(t *testing.T) {
		// 12 MiB streamed with no size crosses the transfer manager's
		// default 8 MiB part, so S3 stores it as a multipart upload.
		b := open(t)
		data := randomBytes(12 << 20)
		k := key("large")
		if err := b.Put(ctx, k, io.MultiReader(bytes.NewReader(data)), -1, "application/octet-stream"); err != nil {
			t.Fatalf("Put: %v", err)
		}
		assertBlob(t, b, k, data)
	})

	t.Run("Missing", func(t *testing.T) {
		b := open(t)
		k := key("missing")
		if _, _, err := b.Get(ctx, k, nil); !errors.Is(err, storage.ErrNotFound) {
			t.Errorf("Get(missing) = %v, want ErrNotFound", err)
		}
		if _, err := b.Stat(ctx, k); !errors.Is(err, storage.ErrNotFound) {
			t.Errorf("Stat(missing) = %v, want ErrNotFound", err)
		}
		if err := b.Delete(ctx, k); err != nil {
			t.Errorf("Delete(missing) = %v, want nil", err)
		}
	})

	t.Run("Delete", func(t *testing.T) {
		b := open(t)
		k := key("doomed")
		if err := b.Put(ctx, k, strings.NewReader("bye"), 3, "text/plain"); err != nil {
			t.Fatalf("Put: %v", err)
		}
		if err := b.Delete(ctx, k); err != nil {
			t.Fatalf("Delete: %v", err)
		}
		if _, err := b.Stat(ctx, k); !errors.Is(err, storage.ErrNotFound) {
			t.Errorf("Stat after delete = %v, want ErrNotFound", err)
		}
	})

	t.Run("FailedPutLeavesNothing", func(t *testing.T) {
		b := open(t)
		for _, size := range []int64{10 << 10, 9 << 20} { // one part, and past the first part
			k := key("failed")
			boom := errors.New("client went away")
			r := io.MultiReader(bytes.NewReader(randomBytes(size)), iotest.ErrReader(boom))
			if err := b.Put(ctx, k, r, -1, "text/plain"); !errors.Is(err, boom) {
				t.Errorf("Put(reader failing after %d bytes) = %v, want the reader's error", size, err)
			}
			if _, err := b.Stat(ctx, k); !errors.Is(err, storage.ErrNotFound) {
				t.Errorf("Stat after failed Put of %d bytes = %v, want ErrNotFound", size, err)
			}
		}
	})

	t.Run("List", func(t *testing.T) {
		b := open(t)
		prefix := "storagetest/" + storage.NewID() + "/"
		want := map[string]int64{prefix + "a": 1, prefix + "b": 2, prefix + "deep/c": 3}
		for k, size := range want {
			if err := b.Put(ctx, k, bytes.NewReader(randomBytes(size)), size, "text/plain"); err != nil {
				t.Fatalf("Put(%s): %v", k, err)
			}
		}
		if err := b.Put(ctx, "storagetest/"+storage.NewID()+"/other", strings.NewReader("x"), 1, ""); err != nil {
			t.Fatal(err)
		}
		got := map[string]int64{}
		for e, err := range b.List(ctx, prefix) {
			if err != nil {
				t.Fatalf("List: %v", err)
			}
			got[e.Key] = e.Size
			if time.Since(e.Modified) > time.Hour || time.Until(e.Modified) > time.Minute {
				t.Errorf("List: %s modified %v, want about now", e.Key, e.Modified)
			}
		}
		if fmt.Sprint(got) != fmt.Sprint(want) {
			t.Errorf("List(%s) = %v, want %v", prefix, got, want)
		}
		for e, err := range b.List(ctx, "storagetest/"+storage.NewID()+"/") {
			t.Errorf("List of an empty prefix yielded %+v, %v", e, err)
		}
	})

	t.Run("Ping", func(t *testing.T) {
		if err := open(t).Ping(ctx); err != nil {
			t.Errorf("Ping: %v", err)
		}
	})

	t.Run("Describer", func(t *testing.T) { RunDescriber(t, open(t)) })
}

func newNote(title, body string) storage.Note {
	now := storage.Now()
	return storage.Note{ID: storage.NewID(), Title: title, Body: body, CreatedAt: now, UpdatedAt: now}
}

func newFile(name string) storage.File {
	id := storage.NewID()
	return storage.File{ID: id, Name: name, ContentType: "application/pdf", Size: 1234,
		SHA256: strings.Repeat("ab", 32), Key: "files/" + id, CreatedAt: storage.Now()}
}

func mustCreate(t *testing.T, db storage.Database, n storage.Note) {
	t.Helper()
	if err := db.CreateNote(context.Background(), n); err != nil {
		t.Fatalf("CreateNote(%q): %v", n.Title, err)
	}
}

func assertNote(t *testing.T, got, want storage.Note) {
	t.Helper()
	if got.ID != want.ID || got.Title != want.Title || got.Body != want.Body ||
		!got.CreatedAt.Equal(want.CreatedAt) || !got.UpdatedAt.Equal(want.UpdatedAt) {
		t.Errorf("note =\n%+v\nwant\n%+v", got, want)
	}
	if got.CreatedAt.Location() != time.UTC {
		t.Errorf("CreatedAt is in %v, want UTC", got.CreatedAt.Location())
	}
}

func assertFile(t *testing.T, got, want storage.File) {
	t.Helper()
	if got.ID != want.ID || got.Name != want.Name || got.ContentType != want.ContentType || got.Size != want.Size ||
		got.SHA256 != want.SHA256 || got.Key != want.Key || !got.CreatedAt.Equal(want.CreatedAt) {
		t.Errorf("file =\n%+v\nwant\n%+v", got, want)
	}
}

func assertBlob(t *testing.T, b storage.Blobs, key string, want []byte) {
	t.Helper()
	ctx := context.Background()
	info, err := b.Stat(ctx, key)
	if err != nil || info.Size != int64(len(want)) {
		t.Fatalf("Stat(%s) = %+v, %v; want size %d", key, info, err, len(want))
	}
	r, info, err := b.Get(ctx, key, nil)
	if err != nil {
		t.Fatalf("Get(%s): %v", key, err)
	}
	defer r.Close()
	got, err := io.ReadAll(r)
	if err != nil {
		t.Fatalf("reading %s: %v", key, err)
	}
	if !bytes.Equal(got, want) || info.Size != int64(len(want)) {
		t.Errorf("Get(%s) = %d bytes (info size %d), want %d bytes equal to what was put", key, len(got), info.Size, len(want))
	}
}

func randomBytes(n int64) []byte {
	b := make([]byte, n)
	rand.Read(b)
	return b
}
