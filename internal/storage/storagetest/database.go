package storagetest

import (
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/example/flystorage/internal/storage"
)

// This file holds the tests of storage.Database that RunDatabase runs,
// in the order of databaseTests.

func testNoteRoundTrip(t *testing.T, db storage.Database) {
	want := newNote("first", "body ✓")
	mustCreate(t, db, want)
	got, err := db.GetNote(t.Context(), want.ID)
	if err != nil {
		t.Fatalf("GetNote: %v", err)
	}
	assertNote(t, got, want)
}

func testMissingNote(t *testing.T, db storage.Database) {
	ctx := t.Context()
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
}

func testDuplicateNoteID(t *testing.T, db storage.Database) {
	n := newNote("a", "")
	mustCreate(t, db, n)
	if err := db.CreateNote(t.Context(), n); !errors.Is(err, storage.ErrConflict) {
		t.Errorf("CreateNote(same id) = %v, want ErrConflict", err)
	}
}

// testSchemaRejectsInvalidNote: the server validates first; the schema is
// the last line of defence.
func testSchemaRejectsInvalidNote(t *testing.T, db storage.Database) {
	for _, n := range []storage.Note{newNote("", "empty title"), newNote(strings.Repeat("t", storage.MaxTitleChars+1), "")} {
		if err := db.CreateNote(t.Context(), n); !errors.Is(err, storage.ErrInvalid) {
			t.Errorf("CreateNote(title of %d chars) = %v, want ErrInvalid", len(n.Title), err)
		}
	}
	// Characters, not bytes: 200 three-byte characters fit.
	mustCreate(t, db, newNote(strings.Repeat("€", storage.MaxTitleChars), ""))
}

func testUpdateNote(t *testing.T, db storage.Database) {
	n := newNote("before", "old")
	mustCreate(t, db, n)
	upd := n
	upd.Title, upd.Body, upd.UpdatedAt = "after", "new", n.UpdatedAt.Add(time.Second)
	got, err := db.UpdateNote(t.Context(), upd)
	if err != nil {
		t.Fatalf("UpdateNote: %v", err)
	}
	assertNote(t, got, upd) // CreatedAt unchanged
	if got, _ := db.GetNote(t.Context(), n.ID); got.Title != "after" {
		t.Errorf("after update, GetNote title = %q", got.Title)
	}
}

func testDeleteNote(t *testing.T, db storage.Database) {
	n := newNote("doomed", "")
	mustCreate(t, db, n)
	if err := db.DeleteNote(t.Context(), n.ID); err != nil {
		t.Fatalf("DeleteNote: %v", err)
	}
	if _, err := db.GetNote(t.Context(), n.ID); !errors.Is(err, storage.ErrNotFound) {
		t.Errorf("GetNote after delete = %v, want ErrNotFound", err)
	}
}

// testListNotesPages: pages of 3 walk 7 notes newest first, and a page as
// large as the list says there is no next one.
func testListNotesPages(t *testing.T, db storage.Database) {
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
		notes, next, err := db.ListNotes(t.Context(), storage.Page{Limit: 3, Cursor: cursor})
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
	notes, next, err := db.ListNotes(t.Context(), storage.Page{Limit: 7})
	if err != nil || len(notes) != 7 || next != "" {
		t.Errorf("ListNotes(limit=7) = %d notes, next %q, err %v; want 7, \"\", nil", len(notes), next, err)
	}
}

func testListNotesBadCursor(t *testing.T, db storage.Database) {
	mustCreate(t, db, newNote("listed", ""))
	if _, _, err := db.ListNotes(t.Context(), storage.Page{Limit: 3, Cursor: "not-a-cursor"}); !errors.Is(err, storage.ErrInvalid) {
		t.Errorf("ListNotes(bad cursor) = %v, want ErrInvalid", err)
	}
}

func testEmptyList(t *testing.T, db storage.Database) {
	notes, next, err := db.ListNotes(t.Context(), storage.Page{Limit: 10})
	if err != nil || notes == nil || len(notes) != 0 || next != "" {
		t.Errorf("ListNotes(empty) = %#v, %q, %v; want an empty non-nil slice", notes, next, err)
	}
}

func testConcurrentWriters(t *testing.T, db storage.Database) {
	ctx := t.Context()
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
}

func testFileRoundTrip(t *testing.T, db storage.Database) {
	f := newFile("report.pdf")
	mustCreateFile(t, db, f)
	got, err := db.GetFile(t.Context(), f.ID)
	if err != nil {
		t.Fatalf("GetFile: %v", err)
	}
	assertFile(t, got, f)
}

func testDuplicateFileKey(t *testing.T, db storage.Database) {
	f := newFile("report.pdf")
	mustCreateFile(t, db, f)
	dup := newFile("other")
	dup.Key = f.Key
	if err := db.CreateFile(t.Context(), dup); !errors.Is(err, storage.ErrConflict) {
		t.Errorf("CreateFile(same key) = %v, want ErrConflict", err)
	}
}

// testDeleteFile: DeleteFile returns the row it deleted, once.
func testDeleteFile(t *testing.T, db storage.Database) {
	ctx := t.Context()
	f := newFile("report.pdf")
	mustCreateFile(t, db, f)
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
}

func testListFilesPages(t *testing.T, db storage.Database) {
	var ids []string
	for i := range 5 {
		f := newFile(fmt.Sprintf("f%d", i))
		mustCreateFile(t, db, f)
		ids = append([]string{f.ID}, ids...)
	}
	first, next, err := db.ListFiles(t.Context(), storage.Page{Limit: 2})
	if err != nil || len(first) != 2 || next != ids[1] {
		t.Fatalf("ListFiles page 1 = %d files, next %q, %v; want 2, %q", len(first), next, err, ids[1])
	}
	rest, next, err := db.ListFiles(t.Context(), storage.Page{Limit: 10, Cursor: next})
	if err != nil || len(rest) != 3 || next != "" || rest[0].ID != ids[2] {
		t.Errorf("ListFiles page 2 = %d files, next %q, %v; want the 3 oldest", len(rest), next, err)
	}
}

// testUploadIntents: an intent for a 1 GiB file reads back whole, and its
// id is taken once.
func testUploadIntents(t *testing.T, db storage.Database) {
	ctx := t.Context()
	now := storage.Now()
	u := bigUpload(now)
	mustCreateUpload(t, db, u)
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
}

// bigUpload returns an intent for a 1 GiB file, created at now and
// expiring 15 minutes later.
func bigUpload(now time.Time) storage.Upload {
	u := storage.Upload{ID: storage.NewID(), Name: "big.mov", ContentType: "video/quicktime", Size: 1 << 30,
		CreatedAt: now, ExpiresAt: now.Add(15 * time.Minute)}
	u.Key = "files/" + u.ID
	return u
}

// testExpiredUploads: only intents expired before the given time are
// listed, and one deleted is gone.
func testExpiredUploads(t *testing.T, db storage.Database) {
	ctx := t.Context()
	now := storage.Now()
	mustCreateUpload(t, db, bigUpload(now))
	old := newUpload("old", now.Add(-time.Hour), now.Add(-time.Minute))
	mustCreateUpload(t, db, old)
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
}

// testCompleteUpload: completing turns a live intent into a file, once.
func testCompleteUpload(t *testing.T, db storage.Database) {
	ctx := t.Context()
	now := storage.Now()
	u := bigUpload(now)
	mustCreateUpload(t, db, u)
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
}

// namedKeys is what testNamedKeys and testNamedKeysAcrossBatches store:
// two files (one under a versioned key), two intents (one expired) and an
// intent completed into the file done, under a versioned key.
type namedKeys struct {
	plain, versioned, done storage.File
	pending, expired       storage.Upload
}

func createNamedKeys(t *testing.T, db storage.Database) namedKeys {
	t.Helper()
	now := storage.Now()
	k := namedKeys{plain: newFile("plain"), versioned: newFile("versioned")}
	k.versioned.Key = storage.VersionKey("files/", k.versioned.ID)
	mustCreateFile(t, db, k.plain)
	mustCreateFile(t, db, k.versioned)
	intent := func(expires time.Time) storage.Upload {
		u := newUpload("u", now, expires)
		u.Size, u.Key = 1, storage.StagingKey("files/", u.ID)
		mustCreateUpload(t, db, u)
		return u
	}
	k.pending, k.expired = intent(now.Add(time.Hour)), intent(now.Add(-time.Minute))
	completed := intent(now.Add(time.Hour)).ID
	k.done = storage.File{ID: completed, Name: "done", ContentType: "text/plain", Size: 1, SHA256: strings.Repeat("ef", 32),
		Key: storage.VersionKey("files/", completed), CreatedAt: now}
	if err := db.CompleteUpload(t.Context(), k.done, now); err != nil {
		t.Fatalf("CompleteUpload: %v", err)
	}
	return k
}

// checkNamedKeys asks db.NamedKeys about ids and wants the files' keys and
// the intents it names.
func checkNamedKeys(t *testing.T, db storage.Database, name string, ids []string, wantFiles map[string]string, wantUploads map[string]bool) {
	t.Helper()
	files, uploads, err := db.NamedKeys(t.Context(), ids)
	if err != nil {
		t.Fatalf("NamedKeys(%s): %v", name, err)
	}
	if fmt.Sprint(files) != fmt.Sprint(wantFiles) || fmt.Sprint(uploads) != fmt.Sprint(wantUploads) {
		t.Errorf("NamedKeys(%s) = files %v, uploads %v;\nwant files %v, uploads %v", name, files, uploads, wantFiles, wantUploads)
	}
}

func testNamedKeys(t *testing.T, db storage.Database) {
	k := createNamedKeys(t, db)
	unknown := storage.NewID()
	checkNamedKeys(t, db, "known, unknown and repeated ids",
		[]string{k.plain.ID, k.versioned.ID, k.pending.ID, k.expired.ID, k.done.ID, unknown, k.plain.ID, k.pending.ID},
		map[string]string{k.plain.ID: k.plain.Key, k.versioned.ID: k.versioned.Key, k.done.ID: k.done.Key},
		map[string]bool{k.pending.ID: true, k.expired.ID: true})
	checkNamedKeys(t, db, "unknown ids", []string{unknown, storage.NewID()}, map[string]string{}, map[string]bool{})
	checkNamedKeys(t, db, "an empty batch", nil, map[string]string{}, map[string]bool{})
}

// testNamedKeysAcrossBatches asks about more ids than one query does: the
// rows at the start, in the middle and at the end of the list are all
// found.
func testNamedKeysAcrossBatches(t *testing.T, db storage.Database) {
	k := createNamedKeys(t, db)
	many := make([]string, 2*storage.NamedKeysBatch+3)
	for i := range many {
		many[i] = storage.NewID()
	}
	many[0], many[storage.NamedKeysBatch+1], many[len(many)-2], many[len(many)-1] = k.plain.ID, k.pending.ID, k.done.ID, k.versioned.ID
	checkNamedKeys(t, db, fmt.Sprintf("%d ids", len(many)), many,
		map[string]string{k.plain.ID: k.plain.Key, k.done.ID: k.done.Key, k.versioned.ID: k.versioned.Key},
		map[string]bool{k.pending.ID: true})
}

// testSessions: a session reads back until its expiry, and its id is
// taken once.
func testSessions(t *testing.T, db storage.Database) {
	ctx := t.Context()
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
}

// testDeleteSession: a deleted session is gone, and deleting it again is
// no error.
func testDeleteSession(t *testing.T, db storage.Database) {
	ctx := t.Context()
	now := storage.Now()
	s := storage.Session{ID: strings.Repeat("a1", 32), CreatedAt: now, ExpiresAt: now.Add(time.Hour)}
	if err := db.CreateSession(ctx, s); err != nil {
		t.Fatalf("CreateSession: %v", err)
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
}

// testIdempotencyKeys: a second claim of a key gets the first record,
// whatever it asks; keys may be storage.MaxIdempotencyKey bytes long.
func testIdempotencyKeys(t *testing.T, db storage.Database) {
	ctx := t.Context()
	now := storage.Now()
	k := storage.IdempotencyKey{Key: "retry-" + storage.NewID(), Fingerprint: strings.Repeat("0f", 32), ResourceID: storage.NewID(), CreatedAt: now}
	got, err := db.ClaimIdempotencyKey(ctx, k)
	if err != nil || got != k {
		t.Fatalf("ClaimIdempotencyKey = %+v, %v; want %+v", got, err, k)
	}
	other := k
	other.Fingerprint, other.ResourceID, other.CreatedAt = strings.Repeat("f0", 32), storage.NewID(), now.Add(time.Second)
	if got, err := db.ClaimIdempotencyKey(ctx, other); err != nil || got != k {
		t.Errorf("ClaimIdempotencyKey(again) = %+v, %v; want the first %+v", got, err, k)
	}
	long := storage.IdempotencyKey{Key: strings.Repeat("k", storage.MaxIdempotencyKey), Fingerprint: k.Fingerprint, ResourceID: storage.NewID(), CreatedAt: now}
	if got, err := db.ClaimIdempotencyKey(ctx, long); err != nil || got != long {
		t.Errorf("ClaimIdempotencyKey(%d-byte key) = %+v, %v", storage.MaxIdempotencyKey, got, err)
	}
}

// testGetIdempotencyKey: a key never claimed is not found, and looking
// records nothing, so a later claim is the first; a claimed key's record
// comes back as claimed.
func testGetIdempotencyKey(t *testing.T, db storage.Database) {
	ctx := t.Context()
	k := storage.IdempotencyKey{Key: "get-" + storage.NewID(), Fingerprint: strings.Repeat("0f", 32), ResourceID: storage.NewID(), CreatedAt: storage.Now()}
	if got, err := db.GetIdempotencyKey(ctx, k.Key); !errors.Is(err, storage.ErrNotFound) {
		t.Errorf("GetIdempotencyKey(never claimed) = %+v, %v; want ErrNotFound", got, err)
	}
	if got, err := db.ClaimIdempotencyKey(ctx, k); err != nil || got != k {
		t.Fatalf("ClaimIdempotencyKey after a look = %+v, %v; want the claim itself, %+v", got, err, k)
	}
	if got, err := db.GetIdempotencyKey(ctx, k.Key); err != nil || got != k {
		t.Errorf("GetIdempotencyKey(claimed) = %+v, %v; want %+v", got, err, k)
	}
}

// testConcurrentIdempotencyClaims: concurrent claims of one key agree on
// one record.
func testConcurrentIdempotencyClaims(t *testing.T, db storage.Database) {
	race := storage.IdempotencyKey{Key: "race-" + storage.NewID(), Fingerprint: strings.Repeat("0f", 32), CreatedAt: storage.Now()}
	var wg sync.WaitGroup
	ids := make([]string, 8)
	errs := make([]error, 8)
	for i := range ids {
		wg.Go(func() {
			c := race
			c.ResourceID = storage.NewID()
			got, err := db.ClaimIdempotencyKey(t.Context(), c)
			ids[i], errs[i] = got.ResourceID, err
		})
	}
	wg.Wait()
	for i := range ids {
		if errs[i] != nil || ids[i] != ids[0] {
			t.Errorf("concurrent claim %d = %s, %v; want %s as claim 0 got", i, ids[i], errs[i], ids[0])
		}
	}
}

// testPurgeExpired: expired sessions and keys older than the cutoff go;
// live sessions and recent keys stay.
func testPurgeExpired(t *testing.T, db storage.Database) {
	ctx := t.Context()
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
}

// testCount: storage.Counter counts the notes, and the files but not the
// upload intents, as they come and go. Every backend counts: the page's
// totals (GET /api/status) come from it.
func testCount(t *testing.T, db storage.Database) {
	c, ok := db.(storage.Counter)
	if !ok {
		t.Fatalf("the %s database does not implement storage.Counter, which every backend must", db.Backend())
	}
	ctx := t.Context()
	expect := func(when string, notes, files int64) {
		t.Helper()
		if n, err := c.CountNotes(ctx); err != nil || n != notes {
			t.Errorf("%s: CountNotes = %d, %v; want %d", when, n, err, notes)
		}
		if n, err := c.CountFiles(ctx); err != nil || n != files {
			t.Errorf("%s: CountFiles = %d, %v; want %d", when, n, err, files)
		}
	}
	expect("empty", 0, 0)
	first := newNote("first", "")
	for _, n := range []storage.Note{first, newNote("second", ""), newNote("third", "")} {
		mustCreate(t, db, n)
	}
	f := newFile("report.pdf")
	mustCreateFile(t, db, f)
	now := storage.Now()
	pending, done := bigUpload(now), bigUpload(now)
	mustCreateUpload(t, db, pending)
	mustCreateUpload(t, db, done)
	expect("3 notes, a file and 2 upload intents", 3, 1)
	completed := storage.File{ID: done.ID, Name: done.Name, ContentType: done.ContentType, Size: done.Size,
		SHA256: strings.Repeat("cd", 32), Key: done.Key, CreatedAt: now}
	if err := db.CompleteUpload(ctx, completed, now); err != nil {
		t.Fatalf("CompleteUpload: %v", err)
	}
	expect("an intent completed", 3, 2)
	if err := db.DeleteNote(ctx, first.ID); err != nil {
		t.Fatalf("DeleteNote: %v", err)
	}
	if _, err := db.DeleteFile(ctx, f.ID); err != nil {
		t.Fatalf("DeleteFile: %v", err)
	}
	expect("a note and a file deleted", 2, 1)
}

func testDatabasePing(t *testing.T, db storage.Database) {
	if err := db.Ping(t.Context()); err != nil {
		t.Errorf("Ping: %v", err)
	}
}
