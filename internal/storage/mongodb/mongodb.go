// Package mongodb keeps notes and file metadata in MongoDB: Atlas, as
// Fly's guide sets it up with MONGODB_URI, or any server speaking its wire
// protocol (the tests run FerretDB).
//
// Every write is one single-document operation, atomic on every MongoDB
// deployment, so nothing needs a multi-document transaction: Atlas's
// shared tiers and FerretDB have none. That shapes two collections:
// upload intents and files share "files" (see CompleteUpload), and an
// idempotency key is the _id of its record.
//
// Times are stored twice: as a BSON date (created_at), for people reading
// the data in mongosh or Atlas's Data Explorer, and as whole microseconds
// since 1970 (created_at_us), which is what the app reads and queries.
// BSON dates hold milliseconds, and the app's times are microseconds.
package mongodb

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"slices"
	"sync/atomic"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/event"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"
	"go.mongodb.org/mongo-driver/v2/x/mongo/driver/auth"
	"go.mongodb.org/mongo-driver/v2/x/mongo/driver/topology"

	"github.com/example/flystorage/internal/storage"
	"github.com/example/flystorage/internal/storage/engine"
)

var (
	_ storage.Database     = (*Store)(nil)
	_ storage.PoolReporter = (*Store)(nil)
)

// Store is a storage.Database on a MongoDB client.
type Store struct {
	client   *mongo.Client
	db       *mongo.Database
	notes    *mongo.Collection
	files    *mongo.Collection // files, and upload intents (state "upload")
	sessions *mongo.Collection
	keys     *mongo.Collection // idempotency keys
	claims   *mongo.Collection // completions in progress (CompleteUpload)
	monitor  *poolMonitor
	maxConns int64
	describe map[string]string
}

// Collection names.
const (
	notesCollection    = "notes"
	filesCollection    = "files"
	sessionsCollection = "sessions"
	keysCollection     = "idempotency_keys"
	claimsCollection   = "upload_completions"
)

// The state of a document in the files collection.
const (
	stateUpload = "upload" // an upload intent: expires_at is set
	stateFile   = "file"   // a file: sha256 is set
)

func newStore(client *mongo.Client, database string, monitor *poolMonitor, maxConns int64) *Store {
	db := client.Database(database)
	return &Store{
		client: client, db: db, monitor: monitor, maxConns: maxConns,
		notes: db.Collection(notesCollection), files: db.Collection(filesCollection),
		sessions: db.Collection(sessionsCollection), keys: db.Collection(keysCollection),
		claims: db.Collection(claimsCollection),
	}
}

// Close disconnects the client.
func (s *Store) Close() error {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	return s.client.Disconnect(ctx)
}

// Backend is "mongodb" (storage.Describer).
func (s *Store) Backend() string { return "mongodb" }

// Describe returns the backend name, the redacted URI and the database.
func (s *Store) Describe() map[string]string { return s.describe }

// Ping runs the ping command on the server.
func (s *Store) Ping(ctx context.Context) error {
	return translate(s.db.RunCommand(ctx, bson.D{{Key: "ping", Value: 1}}).Err())
}

// micros is how a time is stored for the app: whole microseconds.
func micros(t time.Time) int64 { return t.UnixMicro() }

func fromMicros(us int64) time.Time { return time.UnixMicro(us).UTC() }

// Notes.

type noteDoc struct {
	ID        string `bson:"_id"`
	Title     string `bson:"title"`
	Body      string `bson:"body"`
	CreatedUS int64  `bson:"created_at_us"`
	UpdatedUS int64  `bson:"updated_at_us"`
}

func (d noteDoc) note() storage.Note {
	return storage.Note{ID: d.ID, Title: d.Title, Body: d.Body, CreatedAt: fromMicros(d.CreatedUS), UpdatedAt: fromMicros(d.UpdatedUS)}
}

// CreateNote checks n itself before writing it: the collection's
// validator says the same, but FerretDB does not implement validators.
func (s *Store) CreateNote(ctx context.Context, n storage.Note) error {
	if err := n.Validate(); err != nil {
		return err
	}
	_, err := s.notes.InsertOne(ctx, bson.D{
		{Key: "_id", Value: n.ID},
		{Key: "title", Value: n.Title},
		{Key: "body", Value: n.Body},
		{Key: "created_at", Value: n.CreatedAt},
		{Key: "created_at_us", Value: micros(n.CreatedAt)},
		{Key: "updated_at", Value: n.UpdatedAt},
		{Key: "updated_at_us", Value: micros(n.UpdatedAt)},
	})
	return translate(err)
}

func (s *Store) GetNote(ctx context.Context, id string) (storage.Note, error) {
	var d noteDoc
	if err := s.notes.FindOne(ctx, bson.D{{Key: "_id", Value: id}}).Decode(&d); err != nil {
		return storage.Note{}, translate(err)
	}
	return d.note(), nil
}

func (s *Store) UpdateNote(ctx context.Context, n storage.Note) (storage.Note, error) {
	if err := n.Validate(); err != nil {
		return storage.Note{}, err
	}
	var d noteDoc
	err := s.notes.FindOneAndUpdate(ctx, bson.D{{Key: "_id", Value: n.ID}},
		bson.D{{Key: "$set", Value: bson.D{
			{Key: "title", Value: n.Title},
			{Key: "body", Value: n.Body},
			{Key: "updated_at", Value: n.UpdatedAt},
			{Key: "updated_at_us", Value: micros(n.UpdatedAt)},
		}}},
		options.FindOneAndUpdate().SetReturnDocument(options.After)).Decode(&d)
	if err != nil {
		return storage.Note{}, translate(err)
	}
	return d.note(), nil
}

func (s *Store) DeleteNote(ctx context.Context, id string) error {
	res, err := s.notes.DeleteOne(ctx, bson.D{{Key: "_id", Value: id}})
	if err != nil {
		return translate(err)
	}
	if res.DeletedCount == 0 {
		return storage.ErrNotFound
	}
	return nil
}

func (s *Store) ListNotes(ctx context.Context, p storage.Page) ([]storage.Note, string, error) {
	docs, err := page[noteDoc](ctx, s.notes, bson.D{}, p)
	if err != nil {
		return nil, "", err
	}
	notes := make([]storage.Note, len(docs))
	for i, d := range docs {
		notes[i] = d.note()
	}
	notes, next := engine.Cut(notes, p.Limit, func(n storage.Note) string { return n.ID })
	return notes, next, nil
}

// page finds up to p.Limit+1 documents matching filter with an _id below
// the cursor, newest first. _id strings compare by their bytes, as
// Postgres's COLLATE "C" does, so UUIDv7s sort by time.
func page[T any](ctx context.Context, c *mongo.Collection, filter bson.D, p storage.Page) ([]T, error) {
	if p.Cursor != "" && !storage.ValidID(p.Cursor) {
		return nil, fmt.Errorf("%w: malformed cursor", storage.ErrInvalid)
	}
	filter = append(filter, bson.E{Key: "_id", Value: bson.D{{Key: "$lt", Value: storage.CursorOrStart(p.Cursor)}}})
	cur, err := c.Find(ctx, filter, options.Find().SetSort(bson.D{{Key: "_id", Value: -1}}).SetLimit(int64(p.Limit)+1))
	if err != nil {
		return nil, translate(err)
	}
	docs := []T{}
	if err := cur.All(ctx, &docs); err != nil {
		return nil, translate(err)
	}
	return docs, nil
}

// Files and upload intents.
//
// An upload intent and the file it becomes are one document in the files
// collection, whose state goes from "upload" to "file". Completing an
// upload is then one findOneAndUpdate-style update on one document
// (atomic on every deployment), where Postgres deletes a row and inserts
// another in a transaction; MongoDB's multi-document transactions need a
// replica set, which Atlas's shared tiers emulate with limits and FerretDB
// lacks. The key index is unique across both states, which is stricter
// than Postgres's two tables but never refuses what the app writes: keys
// hold their document's id.

type fileDoc struct {
	ID          string `bson:"_id"`
	State       string `bson:"state"`
	Name        string `bson:"name"`
	ContentType string `bson:"content_type"`
	Size        int64  `bson:"size"`
	SHA256      string `bson:"sha256"`
	Key         string `bson:"key"`
	CreatedUS   int64  `bson:"created_at_us"`
	ExpiresUS   int64  `bson:"expires_at_us"`
}

func (d fileDoc) file() storage.File {
	return storage.File{ID: d.ID, Name: d.Name, ContentType: d.ContentType, Size: d.Size, SHA256: d.SHA256,
		Key: d.Key, CreatedAt: fromMicros(d.CreatedUS)}
}

func (d fileDoc) upload() storage.Upload {
	return storage.Upload{ID: d.ID, Name: d.Name, ContentType: d.ContentType, Size: d.Size, Key: d.Key,
		CreatedAt: fromMicros(d.CreatedUS), ExpiresAt: fromMicros(d.ExpiresUS)}
}

// fileFields are the fields a file has besides _id and state.
func fileFields(f storage.File) bson.D {
	return bson.D{
		{Key: "name", Value: f.Name},
		{Key: "content_type", Value: f.ContentType},
		{Key: "size", Value: f.Size},
		{Key: "sha256", Value: f.SHA256},
		{Key: "key", Value: f.Key},
		{Key: "created_at", Value: f.CreatedAt},
		{Key: "created_at_us", Value: micros(f.CreatedAt)},
	}
}

func (s *Store) CreateFile(ctx context.Context, f storage.File) error {
	if f.Size < 0 {
		return fmt.Errorf("%w: size %d is negative", storage.ErrInvalid, f.Size)
	}
	doc := append(bson.D{{Key: "_id", Value: f.ID}, {Key: "state", Value: stateFile}}, fileFields(f)...)
	_, err := s.files.InsertOne(ctx, doc)
	return translate(err)
}

func (s *Store) GetFile(ctx context.Context, id string) (storage.File, error) {
	var d fileDoc
	if err := s.files.FindOne(ctx, bson.D{{Key: "_id", Value: id}, {Key: "state", Value: stateFile}}).Decode(&d); err != nil {
		return storage.File{}, translate(err)
	}
	return d.file(), nil
}

func (s *Store) DeleteFile(ctx context.Context, id string) (storage.File, error) {
	var d fileDoc
	if err := s.files.FindOneAndDelete(ctx, bson.D{{Key: "_id", Value: id}, {Key: "state", Value: stateFile}}).Decode(&d); err != nil {
		return storage.File{}, translate(err)
	}
	return d.file(), nil
}

func (s *Store) ListFiles(ctx context.Context, p storage.Page) ([]storage.File, string, error) {
	docs, err := page[fileDoc](ctx, s.files, bson.D{{Key: "state", Value: stateFile}}, p)
	if err != nil {
		return nil, "", err
	}
	files := make([]storage.File, len(docs))
	for i, d := range docs {
		files[i] = d.file()
	}
	files, next := engine.Cut(files, p.Limit, func(f storage.File) string { return f.ID })
	return files, next, nil
}

func (s *Store) CreateUpload(ctx context.Context, u storage.Upload) error {
	if u.Size < 0 {
		return fmt.Errorf("%w: size %d is negative", storage.ErrInvalid, u.Size)
	}
	_, err := s.files.InsertOne(ctx, bson.D{
		{Key: "_id", Value: u.ID},
		{Key: "state", Value: stateUpload},
		{Key: "name", Value: u.Name},
		{Key: "content_type", Value: u.ContentType},
		{Key: "size", Value: u.Size},
		{Key: "key", Value: u.Key},
		{Key: "created_at", Value: u.CreatedAt},
		{Key: "created_at_us", Value: micros(u.CreatedAt)},
		{Key: "expires_at", Value: u.ExpiresAt},
		{Key: "expires_at_us", Value: micros(u.ExpiresAt)},
	})
	return translate(err)
}

func (s *Store) GetUpload(ctx context.Context, id string) (storage.Upload, error) {
	var d fileDoc
	if err := s.files.FindOne(ctx, bson.D{{Key: "_id", Value: id}, {Key: "state", Value: stateUpload}}).Decode(&d); err != nil {
		return storage.Upload{}, translate(err)
	}
	return d.upload(), nil
}

// CompleteUpload turns the intent's document into the file's in one
// update, which matches only while the intent is pending and unexpired:
// of two racing completions, or a completion racing the sweep's
// DeleteUpload, exactly one finds it.
// CompleteUpload flips the intent's document to a file in one update. The
// update's filter alone makes it atomic on MongoDB, but not on servers that
// evaluate the filter and write in two steps (FerretDB), so a completion
// first claims the id with an insert, which a unique _id makes atomic
// everywhere: of concurrent completions one gets the claim, and the claim
// goes once the update is done. A crash between the two leaves a claim
// that refuses later completions; the intent then expires and is swept,
// and the client starts the upload again.
func (s *Store) CompleteUpload(ctx context.Context, f storage.File, now time.Time) error {
	if _, err := s.claims.InsertOne(ctx, bson.D{{Key: "_id", Value: f.ID}, {Key: "at", Value: time.Now().UTC()}}); err != nil {
		if mongo.IsDuplicateKeyError(err) {
			// Answer once the other completion is done, as a second complete
			// on SQL waits for the first one's row lock.
			s.awaitClaim(ctx, f.ID)
			return fmt.Errorf("%w: upload %s was completed by another request", storage.ErrNotFound, f.ID)
		}
		return translate(err)
	}
	defer s.claims.DeleteOne(context.WithoutCancel(ctx), bson.D{{Key: "_id", Value: f.ID}})
	res, err := s.files.UpdateOne(ctx,
		bson.D{
			{Key: "_id", Value: f.ID},
			{Key: "state", Value: stateUpload},
			{Key: "expires_at_us", Value: bson.D{{Key: "$gt", Value: micros(now)}}},
		},
		bson.D{
			{Key: "$set", Value: append(bson.D{{Key: "state", Value: stateFile}}, fileFields(f)...)},
			{Key: "$unset", Value: bson.D{{Key: "expires_at", Value: ""}, {Key: "expires_at_us", Value: ""}}},
		})
	if err != nil {
		return translate(err)
	}
	if res.MatchedCount == 0 {
		return fmt.Errorf("%w: no pending upload %s unexpired at %s", storage.ErrNotFound, f.ID, now.UTC().Format(time.RFC3339))
	}
	return nil
}

// awaitClaim waits until no completion holds id's claim, for at most
// claimWait or until ctx ends.
func (s *Store) awaitClaim(ctx context.Context, id string) {
	ctx, cancel := context.WithTimeout(ctx, claimWait)
	defer cancel()
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for {
		n, err := s.claims.CountDocuments(ctx, bson.D{{Key: "_id", Value: id}})
		if err != nil || n == 0 {
			return
		}
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
	}
}

// claimWait bounds how long a completion waits for a concurrent one.
const claimWait = 5 * time.Second

func (s *Store) DeleteUpload(ctx context.Context, id string) error {
	res, err := s.files.DeleteOne(ctx, bson.D{{Key: "_id", Value: id}, {Key: "state", Value: stateUpload}})
	if err != nil {
		return translate(err)
	}
	if res.DeletedCount == 0 {
		return storage.ErrNotFound
	}
	return nil
}

func (s *Store) ExpiredUploads(ctx context.Context, t time.Time, limit int) ([]storage.Upload, error) {
	cur, err := s.files.Find(ctx,
		bson.D{{Key: "state", Value: stateUpload}, {Key: "expires_at_us", Value: bson.D{{Key: "$lt", Value: micros(t)}}}},
		options.Find().SetSort(bson.D{{Key: "expires_at_us", Value: 1}}).SetLimit(int64(limit)))
	if err != nil {
		return nil, translate(err)
	}
	var docs []fileDoc
	if err := cur.All(ctx, &docs); err != nil {
		return nil, translate(err)
	}
	uploads := make([]storage.Upload, len(docs))
	for i, d := range docs {
		uploads[i] = d.upload()
	}
	return uploads, nil
}

// NamedKeys asks about each batch of ids in one find: files and intents
// share the collection, and a document's state tells which it is.
func (s *Store) NamedKeys(ctx context.Context, ids []string) (map[string]string, map[string]bool, error) {
	files, uploads := map[string]string{}, map[string]bool{}
	for batch := range slices.Chunk(ids, storage.NamedKeysBatch) {
		cur, err := s.files.Find(ctx, bson.D{{Key: "_id", Value: bson.D{{Key: "$in", Value: batch}}}},
			options.Find().SetProjection(bson.D{{Key: "state", Value: 1}, {Key: "key", Value: 1}}))
		if err != nil {
			return nil, nil, translate(err)
		}
		var docs []fileDoc
		if err := cur.All(ctx, &docs); err != nil {
			return nil, nil, translate(err)
		}
		for _, d := range docs {
			switch d.State {
			case stateFile:
				files[d.ID] = d.Key
			case stateUpload:
				uploads[d.ID] = true
			}
		}
	}
	return files, uploads, nil
}

// Sessions and idempotency keys.

type sessionDoc struct {
	ID        string `bson:"_id"`
	CreatedUS int64  `bson:"created_at_us"`
	ExpiresUS int64  `bson:"expires_at_us"`
}

func (s *Store) CreateSession(ctx context.Context, se storage.Session) error {
	_, err := s.sessions.InsertOne(ctx, bson.D{
		{Key: "_id", Value: se.ID},
		{Key: "created_at", Value: se.CreatedAt},
		{Key: "created_at_us", Value: micros(se.CreatedAt)},
		{Key: "expires_at", Value: se.ExpiresAt},
		{Key: "expires_at_us", Value: micros(se.ExpiresAt)},
	})
	return translate(err)
}

func (s *Store) GetSession(ctx context.Context, id string, now time.Time) (storage.Session, error) {
	var d sessionDoc
	err := s.sessions.FindOne(ctx, bson.D{{Key: "_id", Value: id}, {Key: "expires_at_us", Value: bson.D{{Key: "$gt", Value: micros(now)}}}}).Decode(&d)
	if err != nil {
		return storage.Session{}, translate(err)
	}
	return storage.Session{ID: d.ID, CreatedAt: fromMicros(d.CreatedUS), ExpiresAt: fromMicros(d.ExpiresUS)}, nil
}

func (s *Store) DeleteSession(ctx context.Context, id string) error {
	_, err := s.sessions.DeleteOne(ctx, bson.D{{Key: "_id", Value: id}})
	return translate(err)
}

type keyDoc struct {
	Key         string `bson:"_id"`
	Fingerprint string `bson:"fingerprint"`
	ResourceID  string `bson:"resource_id"`
	CreatedUS   int64  `bson:"created_at_us"`
}

func (d keyDoc) record() storage.IdempotencyKey {
	return storage.IdempotencyKey{Key: d.Key, Fingerprint: d.Fingerprint, ResourceID: d.ResourceID, CreatedAt: fromMicros(d.CreatedUS)}
}

// ClaimIdempotencyKey inserts the record with the key as its _id. Of
// concurrent claims, the unique _id lets one insert; the others get a
// duplicate key error, raised against the committed document, and read
// it. Should that record be purged between the two steps, the claim
// starts over.
func (s *Store) ClaimIdempotencyKey(ctx context.Context, k storage.IdempotencyKey) (storage.IdempotencyKey, error) {
	if len(k.Key) == 0 || len(k.Key) > storage.MaxIdempotencyKey {
		return storage.IdempotencyKey{}, fmt.Errorf("%w: an idempotency key is 1 to %d bytes, not %d", storage.ErrInvalid, storage.MaxIdempotencyKey, len(k.Key))
	}
	for attempt := 0; ; attempt++ {
		_, err := s.keys.InsertOne(ctx, bson.D{
			{Key: "_id", Value: k.Key},
			{Key: "fingerprint", Value: k.Fingerprint},
			{Key: "resource_id", Value: k.ResourceID},
			{Key: "created_at", Value: k.CreatedAt},
			{Key: "created_at_us", Value: micros(k.CreatedAt)},
		})
		if err == nil {
			return k, nil
		}
		if !mongo.IsDuplicateKeyError(err) {
			return storage.IdempotencyKey{}, translate(err)
		}
		var d keyDoc
		err = s.keys.FindOne(ctx, bson.D{{Key: "_id", Value: k.Key}}).Decode(&d)
		if errors.Is(err, mongo.ErrNoDocuments) && attempt < 3 {
			continue
		}
		if err != nil {
			return storage.IdempotencyKey{}, translate(err)
		}
		return d.record(), nil
	}
}

func (s *Store) GetIdempotencyKey(ctx context.Context, key string) (storage.IdempotencyKey, error) {
	var d keyDoc
	if err := s.keys.FindOne(ctx, bson.D{{Key: "_id", Value: key}}).Decode(&d); err != nil {
		return storage.IdempotencyKey{}, translate(err)
	}
	return d.record(), nil
}

func (s *Store) PurgeExpired(ctx context.Context, now, keysBefore time.Time) (int64, error) {
	a, err := s.sessions.DeleteMany(ctx, bson.D{{Key: "expires_at_us", Value: bson.D{{Key: "$lte", Value: micros(now)}}}})
	if err != nil {
		return 0, translate(err)
	}
	b, err := s.keys.DeleteMany(ctx, bson.D{{Key: "created_at_us", Value: bson.D{{Key: "$lt", Value: micros(keysBefore)}}}})
	if err != nil {
		return a.DeletedCount, translate(err)
	}
	return a.DeletedCount + b.DeletedCount, nil
}

// Server error codes translate uses.
const (
	codeUnauthorized               = 13
	codeAuthenticationFailed       = 18
	codeDocumentValidationFailure  = 121
	codeNotImplemented             = 238 // FerretDB, for what it lacks
	codeNamespaceExists            = 48
	codeHostUnreachable            = 6
	codeHostNotFound               = 7
	codeNetworkTimeout             = 89
	codeShutdownInProgress         = 91
	codeInterruptedAtShutdown      = 11600
	codeNotWritablePrimary         = 10107
	codeNotPrimaryOrSecondary      = 13436
	codePrimarySteppedDown         = 189
	codeInterruptedDueToReplChange = 11602
)

// unavailableCodes are server errors that mean "not now": a failover or a
// shutdown. The driver retries most of them once itself.
var unavailableCodes = []int{codeHostUnreachable, codeHostNotFound, codeNetworkTimeout, codeShutdownInProgress,
	codeInterruptedAtShutdown, codeNotWritablePrimary, codeNotPrimaryOrSecondary, codePrimarySteppedDown, codeInterruptedDueToReplChange}

// translate turns driver errors into the storage error kinds by their type,
// code and label, never by their text.
func translate(err error) error {
	if err == nil {
		return nil
	}
	var (
		serverErr mongo.ServerError
		authErr   *auth.Error
		selectErr topology.ServerSelectionError
		waitErr   topology.WaitQueueTimeoutError
		netErr    net.Error
	)
	switch {
	case errors.Is(err, storage.ErrNotFound), errors.Is(err, storage.ErrInvalid), errors.Is(err, storage.ErrUnavailable):
		return err
	case errors.Is(err, mongo.ErrNoDocuments):
		return fmt.Errorf("%w: %w", storage.ErrNotFound, err)
	case mongo.IsDuplicateKeyError(err):
		return fmt.Errorf("%w: %w", storage.ErrConflict, err)
	case errors.As(err, &authErr):
		return fmt.Errorf("%w: MongoDB refused the credentials in %s: %w", storage.ErrRefused, Var, err)
	case errors.As(err, &serverErr) && serverErr.HasErrorCode(codeDocumentValidationFailure):
		return fmt.Errorf("%w: %w", storage.ErrInvalid, err)
	case errors.As(err, &serverErr) && (serverErr.HasErrorCode(codeAuthenticationFailed) || serverErr.HasErrorCode(codeUnauthorized)):
		return fmt.Errorf("%w: %w", storage.ErrRefused, err)
	case errors.As(err, &serverErr) && hasAnyCode(serverErr, unavailableCodes):
		return fmt.Errorf("%w: %w", storage.ErrUnavailable, err)
	case errors.As(err, &selectErr), errors.As(err, &waitErr):
		// No server, or no free connection: nothing was sent.
		return fmt.Errorf("%w: %w", storage.ErrUnavailable, err)
	case mongo.IsNetworkError(err), mongo.IsTimeout(err), errors.As(err, &netErr),
		errors.Is(err, context.DeadlineExceeded), errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		// The command may have reached the server before the connection
		// broke or the time ran out.
		return fmt.Errorf("%w (%w): %w", storage.ErrUnavailable, storage.ErrOutcomeUnknown, err)
	}
	return err
}

func hasAnyCode(err mongo.ServerError, codes []int) bool {
	for _, c := range codes {
		if err.HasErrorCode(c) {
			return true
		}
	}
	return false
}

// poolMonitor counts the driver's connection pool events, for PoolStats.
// The driver keeps one pool per server (three on an Atlas replica set);
// these are the sums.
type poolMonitor struct {
	open, inUse, acquires, waits atomic.Int64
	waitTotal                    atomic.Int64 // nanoseconds
}

func (m *poolMonitor) eventMonitor() *event.PoolMonitor {
	return &event.PoolMonitor{Event: func(e *event.PoolEvent) {
		switch e.Type {
		case event.ConnectionCreated:
			m.open.Add(1)
		case event.ConnectionClosed:
			m.open.Add(-1)
		case event.ConnectionCheckOutStarted:
			if m.open.Load()-m.inUse.Load() <= 0 {
				m.waits.Add(1) // no idle connection: this checkout waits for one
			}
		case event.ConnectionCheckedOut:
			m.inUse.Add(1)
			m.acquires.Add(1)
			m.waitTotal.Add(int64(e.Duration))
		case event.ConnectionCheckedIn:
			m.inUse.Add(-1)
		}
	}}
}

// PoolStats reports the connection pools, as counted from the driver's
// pool events. Max is maxPoolSize, which applies to each server's pool.
func (s *Store) PoolStats() []storage.PoolStats {
	m := s.monitor
	inUse := m.inUse.Load()
	return []storage.PoolStats{{
		Name: "mongodb", Max: s.maxConns, InUse: inUse, Idle: max(m.open.Load()-inUse, 0),
		Acquires: m.acquires.Load(), Waits: m.waits.Load(), WaitTotal: time.Duration(m.waitTotal.Load()),
	}}
}
