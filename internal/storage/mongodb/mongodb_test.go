package mongodb_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/example/flystorage/internal/storage"
	"github.com/example/flystorage/internal/storage/mongodb"
	"github.com/example/flystorage/internal/storage/storagetest"
	"github.com/example/flystorage/internal/testenv"
)

// open opens the store at uri with the variables in env.
func open(t testing.TB, uri string, env map[string]string) storage.Database {
	t.Helper()
	src, err := mongodb.Driver.Load(uri, func(k string) string { return env[k] })
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	db, err := src.Open(context.Background(), storage.OpenOptions{})
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

func TestConformance(t *testing.T) {
	storagetest.RunDatabase(t, func(t *testing.T) storage.Database {
		return open(t, testenv.MongoURI(t), nil)
	})
}

// TestPlainClientSeesTheData: what the store writes is ordinary documents
// another MongoDB client (mongosh, Atlas's Data Explorer) can read, with
// dates as BSON dates.
func TestPlainClientSeesTheData(t *testing.T) {
	ctx := context.Background()
	uri := testenv.MongoURI(t)
	db := open(t, uri, nil)
	now := storage.Now()
	n := storage.Note{ID: storage.NewID(), Title: "seen", Body: "from mongosh", CreatedAt: now, UpdatedAt: now}
	if err := db.CreateNote(ctx, n); err != nil {
		t.Fatal(err)
	}
	u := storage.Upload{ID: storage.NewID(), Name: "a.txt", ContentType: "text/plain", Size: 3, CreatedAt: now, ExpiresAt: now.Add(time.Hour)}
	u.Key = "files/" + u.ID
	if err := db.CreateUpload(ctx, u); err != nil {
		t.Fatal(err)
	}
	f := storage.File{ID: u.ID, Name: u.Name, ContentType: u.ContentType, Size: u.Size, SHA256: strings.Repeat("ab", 32), Key: u.Key, CreatedAt: now}
	if err := db.CompleteUpload(ctx, f, now); err != nil {
		t.Fatal(err)
	}

	client, err := mongo.Connect(options.Client().ApplyURI(uri))
	if err != nil {
		t.Fatal(err)
	}
	defer client.Disconnect(ctx)
	name, _ := strings.CutPrefix(uri[strings.LastIndex(uri, "/"):], "/")
	var note struct {
		Title     string    `bson:"title"`
		Body      string    `bson:"body"`
		CreatedAt time.Time `bson:"created_at"`
	}
	if err := client.Database(name).Collection("notes").FindOne(ctx, bson.D{{Key: "_id", Value: n.ID}}).Decode(&note); err != nil {
		t.Fatalf("a plain client finding the note in %s.notes: %v", name, err)
	}
	if note.Title != n.Title || note.Body != n.Body || !note.CreatedAt.Equal(n.CreatedAt.Truncate(time.Millisecond)) {
		t.Errorf("a plain client read %+v; want title %q, body %q, created_at %v", note, n.Title, n.Body, n.CreatedAt.Truncate(time.Millisecond))
	}
	var file bson.M
	if err := client.Database(name).Collection("files").FindOne(ctx, bson.D{{Key: "_id", Value: f.ID}}).Decode(&file); err != nil {
		t.Fatalf("a plain client finding the file: %v", err)
	}
	if file["state"] != "file" || file["sha256"] != f.SHA256 || file["key"] != f.Key {
		t.Errorf("a plain client read the completed upload as %v; want state file, its sha256 and key", file)
	}
	if _, ok := file["expires_at"]; ok {
		t.Errorf("the completed file kept its intent's expires_at: %v", file)
	}
}

// TestCompleteUploadRace: completing is one single-document update, so of
// concurrent completions of one intent exactly one succeeds, with no
// transaction.
func TestCompleteUploadRace(t *testing.T) {
	ctx := context.Background()
	db := open(t, testenv.MongoURI(t), nil)
	now := storage.Now()
	u := storage.Upload{ID: storage.NewID(), Name: "race.bin", ContentType: "application/octet-stream", Size: 1, CreatedAt: now, ExpiresAt: now.Add(time.Hour)}
	u.Key = "incoming/" + u.ID
	if err := db.CreateUpload(ctx, u); err != nil {
		t.Fatal(err)
	}
	const racers = 8
	errs := make([]error, racers)
	var wg sync.WaitGroup
	for i := range racers {
		wg.Go(func() {
			f := storage.File{ID: u.ID, Name: u.Name, ContentType: u.ContentType, Size: u.Size,
				SHA256: strings.Repeat("0", 63) + fmt.Sprint(i%10), Key: "files/" + u.ID, CreatedAt: storage.Now()}
			errs[i] = db.CompleteUpload(ctx, f, now)
		})
	}
	wg.Wait()
	won := 0
	for i, err := range errs {
		switch {
		case err == nil:
			won++
		case !errors.Is(err, storage.ErrNotFound):
			t.Errorf("completion %d = %v, want nil or ErrNotFound", i, err)
		}
	}
	if won != 1 {
		t.Errorf("%d of %d concurrent completions succeeded, want 1", won, racers)
	}
	if f, err := db.GetFile(ctx, u.ID); err != nil || f.Key != "files/"+u.ID {
		t.Errorf("GetFile after the race = %+v, %v", f, err)
	}
}

// TestServerDown: a server that stops answering is ErrUnavailable, within
// DB_CONNECT_TIMEOUT, both when opening and on a store already open.
func TestServerDown(t *testing.T) {
	ctx := context.Background()
	server := testenv.NewFerretDB(t)
	env := map[string]string{"DB_CONNECT_TIMEOUT": "1s"}
	db := open(t, server.URI+"app", env)
	server.Stop()

	now := storage.Now()
	err := db.CreateNote(ctx, storage.Note{ID: storage.NewID(), Title: "lost", CreatedAt: now, UpdatedAt: now})
	if !errors.Is(err, storage.ErrUnavailable) {
		t.Errorf("CreateNote with the server down = %v, want ErrUnavailable", err)
	}
	if err := db.Ping(ctx); !errors.Is(err, storage.ErrUnavailable) {
		t.Errorf("Ping with the server down = %v, want ErrUnavailable", err)
	}

	src, err := mongodb.Driver.Load(server.URI+"app", func(k string) string { return env[k] })
	if err != nil {
		t.Fatal(err)
	}
	if db, err := src.Open(ctx, storage.OpenOptions{}); !errors.Is(err, storage.ErrUnavailable) || errors.Is(err, storage.ErrOutcomeUnknown) {
		if err == nil {
			db.Close()
		}
		t.Errorf("Open with the server down = %v, want ErrUnavailable (and nothing sent, so no ErrOutcomeUnknown)", err)
	}
}

// TestOpenLogs: a plaintext connection to loopback crosses no network, so
// it gets no warning; a server without validators (FerretDB) is logged as
// such, and the store still refuses what they would.
func TestOpenLogs(t *testing.T) {
	var logs bytes.Buffer
	src, err := mongodb.Driver.Load(testenv.MongoURI(t), func(string) string { return "" })
	if err != nil {
		t.Fatal(err)
	}
	db, err := src.Open(context.Background(), storage.OpenOptions{Logger: slog.New(slog.NewTextHandler(&logs, nil))})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if strings.Contains(logs.String(), "not encrypted") {
		t.Errorf("plaintext on loopback logged a warning: %s", logs.String())
	}
	if db.Describe()["tls"] != "false" {
		t.Errorf("Describe tls = %q, want false", db.Describe()["tls"])
	}
	now := storage.Now()
	big := storage.Note{ID: storage.NewID(), Title: "big", Body: strings.Repeat("x", storage.MaxBodyBytes+1), CreatedAt: now, UpdatedAt: now}
	if err := db.CreateNote(context.Background(), big); !errors.Is(err, storage.ErrInvalid) {
		t.Errorf("CreateNote(body of %d bytes) = %v, want ErrInvalid", len(big.Body), err)
	}
	t.Logf("schema log:\n%s", logs.String())
}

func TestDescribeAndPoolStats(t *testing.T) {
	db := open(t, testenv.MongoURI(t), map[string]string{"DB_MAX_CONNS": "7"})
	d := db.Describe()
	if d["backend"] != "mongodb" || !strings.HasPrefix(d["database"], "test_") || !strings.HasPrefix(d["url"], "mongodb://") {
		t.Errorf("Describe = %v", d)
	}
	if err := db.Ping(context.Background()); err != nil {
		t.Fatal(err)
	}
	st := db.(storage.PoolReporter).PoolStats()
	if len(st) != 1 || st[0].Max != 7 || st[0].Acquires == 0 || st[0].InUse != 0 || st[0].Idle < 1 {
		t.Errorf("PoolStats after a ping = %+v; want max 7, some acquires, none in use, one or more idle", st)
	}
}
