// Package storagetest is the conformance suite every backend runs, so that
// SQLite and Postgres, MinIO and the local directory prove the same
// behaviour: storage.Database through RunDatabase, storage.Blobs through
// RunBlobs.
//
// Each suite is a table of short named tests, as go-cloud's
// drivertest.RunConformanceTests is, so a failing backend names the
// behaviour it broke: TestConformance/ExpiredUploads, not line 251 of one
// long function. To check a new behaviour, write a test function in
// database.go or blobs.go (capabilities.go for an optional capability) and
// add a row to its table.
package storagetest

import (
	"bytes"
	"crypto/rand"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/example/flystorage/internal/storage"
)

// RunDatabase runs every test in databaseTests against databases made by
// open, a fresh and empty one for each test.
func RunDatabase(t *testing.T, open func(t *testing.T) storage.Database) {
	for _, tc := range databaseTests {
		t.Run(tc.name, func(t *testing.T) { tc.run(t, open(t)) })
	}
}

// RunBlobs runs every test in blobTests against stores made by open. Each
// test writes under keys of its own, so stores may be shared.
func RunBlobs(t *testing.T, open func(t *testing.T) storage.Blobs) {
	for _, tc := range blobTests {
		t.Run(tc.name, func(t *testing.T) { tc.run(t, open(t)) })
	}
}

// databaseTests are the behaviours every storage.Database shows. Each
// test gets a fresh, empty database.
var databaseTests = []struct {
	name string
	run  func(t *testing.T, db storage.Database)
}{
	{"NoteRoundTrip", testNoteRoundTrip},
	{"MissingNote", testMissingNote},
	{"DuplicateNoteID", testDuplicateNoteID},
	{"SchemaRejectsInvalidNote", testSchemaRejectsInvalidNote},
	{"UpdateNote", testUpdateNote},
	{"DeleteNote", testDeleteNote},
	{"ListNotesPages", testListNotesPages},
	{"ListNotesBadCursor", testListNotesBadCursor},
	{"EmptyList", testEmptyList},
	{"ConcurrentWriters", testConcurrentWriters},
	{"FileRoundTrip", testFileRoundTrip},
	{"DuplicateFileKey", testDuplicateFileKey},
	{"DeleteFile", testDeleteFile},
	{"ListFilesPages", testListFilesPages},
	{"UploadIntents", testUploadIntents},
	{"ExpiredUploads", testExpiredUploads},
	{"CompleteUpload", testCompleteUpload},
	{"NamedKeys", testNamedKeys},
	{"NamedKeysAcrossBatches", testNamedKeysAcrossBatches},
	{"Sessions", testSessions},
	{"DeleteSession", testDeleteSession},
	{"IdempotencyKeys", testIdempotencyKeys},
	{"ConcurrentIdempotencyClaims", testConcurrentIdempotencyClaims},
	{"GetIdempotencyKey", testGetIdempotencyKey},
	{"PurgeExpired", testPurgeExpired},
	{"Count", testCount},
	{"Ping", testDatabasePing},
	{"Describer", func(t *testing.T, db storage.Database) { RunDescriber(t, db) }},
	{"WritePositioner", testWritePosition},
	{"ReplayPositioner", testReplayPosition},
	{"ReplayLagger", testReplayLag},
	{"PoolReporter", testPoolStats},
}

// blobTests are the behaviours every storage.Blobs shows. Stores may be
// shared between tests, so each writes under keys from blobKey.
var blobTests = []struct {
	name string
	run  func(t *testing.T, b storage.Blobs)
}{
	{"RoundTrip", testBlobRoundTrip},
	{"Ranges", testBlobRanges},
	{"LargerThanOnePart", testBlobLargerThanOnePart},
	{"Missing", testBlobMissing},
	{"Delete", testBlobDelete},
	{"FailedPutLeavesNothing", testBlobFailedPutLeavesNothing},
	{"List", testBlobList},
	{"ListEmptyPrefix", testBlobListEmptyPrefix},
	{"Ping", testBlobPing},
	{"Describer", func(t *testing.T, b storage.Blobs) { RunDescriber(t, b) }},
	{"Presigner", testPresigner},
	{"MultipartAborter", testMultipartAborter},
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

// newUpload returns an upload intent for an empty text file of its own,
// created at now and expiring at expires.
func newUpload(name string, now, expires time.Time) storage.Upload {
	u := storage.Upload{ID: storage.NewID(), Name: name, ContentType: "text/plain", CreatedAt: now, ExpiresAt: expires}
	u.Key = "files/" + u.ID
	return u
}

func mustCreate(t *testing.T, db storage.Database, n storage.Note) {
	t.Helper()
	if err := db.CreateNote(t.Context(), n); err != nil {
		t.Fatalf("CreateNote(%q): %v", n.Title, err)
	}
}

func mustCreateFile(t *testing.T, db storage.Database, f storage.File) {
	t.Helper()
	if err := db.CreateFile(t.Context(), f); err != nil {
		t.Fatalf("CreateFile(%q): %v", f.Name, err)
	}
}

func mustCreateUpload(t *testing.T, db storage.Database, u storage.Upload) {
	t.Helper()
	if err := db.CreateUpload(t.Context(), u); err != nil {
		t.Fatalf("CreateUpload(%q): %v", u.Name, err)
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

// blobKey returns a key under a prefix no other test uses.
func blobKey(name string) string { return "storagetest/" + storage.NewID() + "/" + name }

func assertBlob(t *testing.T, b storage.Blobs, key string, want []byte) {
	t.Helper()
	ctx := t.Context()
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
