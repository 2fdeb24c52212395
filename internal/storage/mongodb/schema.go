package mongodb

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/example/flystorage/internal/storage"
)

// The schema is a list of versioned steps, as the SQL engines' migrations
// are: collections, their validators and their indexes. Each step is
// idempotent (creating what exists is not an error), and the versions
// applied are recorded in the schema_migrations collection,
// {_id: version, name, applied_at}. A lock document in schema_lock keeps
// two machines starting at once from applying a step twice.
//
// Validators restate the domain's rules for anyone writing to the
// database besides the app. FerretDB does not implement them (nor collMod),
// so a step tolerates its NotImplemented error there, and the Store checks
// the same rules itself before every write.

// step is one version of the schema.
type step struct {
	version int64
	name    string
	up      func(ctx context.Context, db *mongo.Database, log *slog.Logger) error
	down    func(ctx context.Context, db *mongo.Database) error
}

// steps are the schema, oldest first. Never edit a released step: add one.
var steps = []step{
	{
		version: 1, name: "00001_create_notes",
		up: func(ctx context.Context, db *mongo.Database, log *slog.Logger) error {
			return createCollection(ctx, db, log, notesCollection, bson.D{
				{Key: "$jsonSchema", Value: bson.D{
					{Key: "bsonType", Value: "object"},
					{Key: "required", Value: bson.A{"_id", "title", "body", "created_at", "created_at_us", "updated_at", "updated_at_us"}},
					{Key: "properties", Value: bson.D{
						{Key: "_id", Value: bson.D{{Key: "bsonType", Value: "string"}}},
						// maxLength counts characters (code points), as the app does.
						{Key: "title", Value: bson.D{{Key: "bsonType", Value: "string"}, {Key: "minLength", Value: 1}, {Key: "maxLength", Value: storage.MaxTitleChars}}},
						{Key: "body", Value: bson.D{{Key: "bsonType", Value: "string"}}},
						{Key: "created_at", Value: bson.D{{Key: "bsonType", Value: "date"}}},
						{Key: "created_at_us", Value: bson.D{{Key: "bsonType", Value: "long"}}},
						{Key: "updated_at", Value: bson.D{{Key: "bsonType", Value: "date"}}},
						{Key: "updated_at_us", Value: bson.D{{Key: "bsonType", Value: "long"}}},
					}},
				}},
				// The body's limit is in bytes, which $jsonSchema cannot count.
				{Key: "$expr", Value: bson.D{{Key: "$lte", Value: bson.A{bson.D{{Key: "$strLenBytes", Value: "$body"}}, storage.MaxBodyBytes}}}},
			})
		},
		down: dropCollection(notesCollection),
	},
	{
		version: 2, name: "00002_create_files",
		up: func(ctx context.Context, db *mongo.Database, log *slog.Logger) error {
			err := createCollection(ctx, db, log, filesCollection, bson.D{
				{Key: "$jsonSchema", Value: bson.D{
					{Key: "bsonType", Value: "object"},
					{Key: "required", Value: bson.A{"_id", "state", "name", "content_type", "size", "key", "created_at", "created_at_us"}},
					{Key: "properties", Value: bson.D{
						{Key: "_id", Value: bson.D{{Key: "bsonType", Value: "string"}}},
						{Key: "state", Value: bson.D{{Key: "enum", Value: bson.A{stateUpload, stateFile}}}},
						{Key: "name", Value: bson.D{{Key: "bsonType", Value: "string"}}},
						{Key: "content_type", Value: bson.D{{Key: "bsonType", Value: "string"}}},
						{Key: "size", Value: bson.D{{Key: "bsonType", Value: "long"}, {Key: "minimum", Value: 0}}},
						{Key: "sha256", Value: bson.D{{Key: "bsonType", Value: "string"}}},
						{Key: "key", Value: bson.D{{Key: "bsonType", Value: "string"}, {Key: "minLength", Value: 1}}},
						{Key: "created_at", Value: bson.D{{Key: "bsonType", Value: "date"}}},
						{Key: "created_at_us", Value: bson.D{{Key: "bsonType", Value: "long"}}},
						{Key: "expires_at", Value: bson.D{{Key: "bsonType", Value: "date"}}},
						{Key: "expires_at_us", Value: bson.D{{Key: "bsonType", Value: "long"}}},
					}},
				}},
			})
			if err != nil {
				return err
			}
			return createIndexes(ctx, db.Collection(filesCollection),
				mongo.IndexModel{Keys: bson.D{{Key: "key", Value: 1}}, Options: options.Index().SetName("key_unique").SetUnique(true)},
				// ListFiles: files only, by _id.
				mongo.IndexModel{Keys: bson.D{{Key: "state", Value: 1}, {Key: "_id", Value: -1}}, Options: options.Index().SetName("state_id")},
				// ExpiredUploads: intents by expiry.
				mongo.IndexModel{Keys: bson.D{{Key: "state", Value: 1}, {Key: "expires_at_us", Value: 1}}, Options: options.Index().SetName("state_expires_at")},
			)
		},
		down: dropCollection(filesCollection),
	},
	{
		version: 3, name: "00003_create_sessions",
		up: func(ctx context.Context, db *mongo.Database, log *slog.Logger) error {
			err := createCollection(ctx, db, log, sessionsCollection, bson.D{
				{Key: "$jsonSchema", Value: bson.D{
					{Key: "bsonType", Value: "object"},
					{Key: "required", Value: bson.A{"_id", "created_at_us", "expires_at_us"}},
					{Key: "properties", Value: bson.D{
						{Key: "_id", Value: bson.D{{Key: "bsonType", Value: "string"}}},
						{Key: "created_at_us", Value: bson.D{{Key: "bsonType", Value: "long"}}},
						{Key: "expires_at_us", Value: bson.D{{Key: "bsonType", Value: "long"}}},
					}},
				}},
			})
			if err != nil {
				return err
			}
			return createIndexes(ctx, db.Collection(sessionsCollection),
				mongo.IndexModel{Keys: bson.D{{Key: "expires_at_us", Value: 1}}, Options: options.Index().SetName("expires_at")})
		},
		down: dropCollection(sessionsCollection),
	},
	{
		version: 4, name: "00004_create_idempotency_keys",
		up: func(ctx context.Context, db *mongo.Database, log *slog.Logger) error {
			err := createCollection(ctx, db, log, keysCollection, bson.D{
				{Key: "$jsonSchema", Value: bson.D{
					{Key: "bsonType", Value: "object"},
					{Key: "required", Value: bson.A{"_id", "fingerprint", "resource_id", "created_at_us"}},
					{Key: "properties", Value: bson.D{
						{Key: "_id", Value: bson.D{{Key: "bsonType", Value: "string"}, {Key: "minLength", Value: 1}}},
						{Key: "fingerprint", Value: bson.D{{Key: "bsonType", Value: "string"}}},
						{Key: "resource_id", Value: bson.D{{Key: "bsonType", Value: "string"}}},
						{Key: "created_at_us", Value: bson.D{{Key: "bsonType", Value: "long"}}},
					}},
				}},
				{Key: "$expr", Value: bson.D{{Key: "$lte", Value: bson.A{bson.D{{Key: "$strLenBytes", Value: "$_id"}}, storage.MaxIdempotencyKey}}}},
			})
			if err != nil {
				return err
			}
			return createIndexes(ctx, db.Collection(keysCollection),
				mongo.IndexModel{Keys: bson.D{{Key: "created_at_us", Value: 1}}, Options: options.Index().SetName("created_at")})
		},
		down: dropCollection(keysCollection),
	},
}

// createCollection creates the collection with validator, or sets the
// validator on it when it exists. On a server without validators
// (FerretDB) it logs so and creates the collection without one.
func createCollection(ctx context.Context, db *mongo.Database, log *slog.Logger, name string, validator bson.D) error {
	o := options.CreateCollection()
	if validator != nil {
		o.SetValidator(validator)
	}
	err := db.CreateCollection(ctx, name, o)
	switch {
	case err == nil:
		return nil
	case hasCode(err, codeNamespaceExists):
		if validator == nil {
			return nil
		}
		// A step interrupted before its record was written: set the
		// validator again.
		err = db.RunCommand(ctx, bson.D{{Key: "collMod", Value: name}, {Key: "validator", Value: validator}}).Err()
		if hasCode(err, codeNotImplemented) {
			log.Warn("the MongoDB server does not implement collMod (FerretDB does not); the collection keeps its validator, if any",
				"collection", name)
			return nil
		}
		return err
	case validator != nil && hasCode(err, codeNotImplemented):
		log.Warn("the MongoDB server does not implement collection validators (FerretDB does not); the app checks the same rules before it writes",
			"collection", name)
		return createCollection(ctx, db, log, name, nil)
	}
	return err
}

// createIndexes creates the indexes; the server does nothing for an index
// that exists with the same name and keys.
func createIndexes(ctx context.Context, c *mongo.Collection, models ...mongo.IndexModel) error {
	_, err := c.Indexes().CreateMany(ctx, models)
	return err
}

func dropCollection(name string) func(ctx context.Context, db *mongo.Database) error {
	return func(ctx context.Context, db *mongo.Database) error { return db.Collection(name).Drop(ctx) }
}

func hasCode(err error, code int) bool {
	var se mongo.ServerError
	return errors.As(err, &se) && se.HasErrorCode(code)
}

const (
	migrationsCollection = "schema_migrations"
	lockCollection       = "schema_lock"
	lockID               = "migrate"
)

// migrator applies and rolls back steps under the lock.
type migrator struct {
	db    *mongo.Database
	log   *slog.Logger
	steps []step
	owner string // this process's name on the lock
	now   func() time.Time
	// lease is how long the lock holds without renewal: a process that
	// dies holding it delays the others by at most this.
	lease time.Duration
	// wait is how long to wait for a lock another process holds.
	wait time.Duration
}

func newMigrator(db *mongo.Database, log *slog.Logger) *migrator {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	b := make([]byte, 8)
	rand.Read(b)
	return &migrator{db: db, log: log, steps: steps, owner: hex.EncodeToString(b), now: time.Now,
		lease: 30 * time.Second, wait: 2 * time.Minute}
}

type record struct {
	Version   int64     `bson:"_id"`
	Name      string    `bson:"name"`
	AppliedAt time.Time `bson:"applied_at"`
}

type lockDoc struct {
	Owner      string    `bson:"owner"`
	AcquiredAt time.Time `bson:"acquired_at"`
	ExpiresUS  int64     `bson:"expires_at_us"`
}

// errLocked is tryLock's answer while another process holds the lock.
var errLocked = errors.New("locked")

// tryLock takes the lock if it is free or its holder's lease expired.
func (m *migrator) tryLock(ctx context.Context) (lockDoc, error) {
	now := m.now()
	locks := m.db.Collection(lockCollection)
	set := bson.D{
		{Key: "owner", Value: m.owner},
		{Key: "acquired_at", Value: now},
		{Key: "expires_at", Value: now.Add(m.lease)},
		{Key: "expires_at_us", Value: micros(now.Add(m.lease))},
	}
	_, err := locks.InsertOne(ctx, append(bson.D{{Key: "_id", Value: lockID}}, set...))
	if err == nil {
		return lockDoc{}, nil
	}
	if !mongo.IsDuplicateKeyError(err) {
		return lockDoc{}, err
	}
	// Take over a lock whose holder stopped renewing it. The filter
	// re-checks the expiry, so of two processes taking over, one does.
	var old lockDoc
	err = locks.FindOneAndUpdate(ctx,
		bson.D{{Key: "_id", Value: lockID}, {Key: "expires_at_us", Value: bson.D{{Key: "$lte", Value: micros(now)}}}},
		bson.D{{Key: "$set", Value: set}}).Decode(&old)
	if err == nil {
		m.log.Warn("took over the schema migration lock from a process that stopped renewing it",
			"previous_owner", old.Owner, "acquired_at", old.AcquiredAt, "expired_at", fromMicros(old.ExpiresUS))
		return lockDoc{}, nil
	}
	if !errors.Is(err, mongo.ErrNoDocuments) {
		return lockDoc{}, err
	}
	var holder lockDoc
	if err := locks.FindOne(ctx, bson.D{{Key: "_id", Value: lockID}}).Decode(&holder); err != nil && !errors.Is(err, mongo.ErrNoDocuments) {
		return lockDoc{}, err
	}
	return holder, errLocked
}

// lock waits for the lock, up to m.wait, and keeps renewing it until
// unlock. The context it returns is cancelled if the lock is lost.
func (m *migrator) lock(ctx context.Context) (context.Context, func(), error) {
	deadline := time.Now().Add(m.wait)
	backoff := 50 * time.Millisecond
	for {
		holder, err := m.tryLock(ctx)
		if err == nil {
			break
		}
		if !errors.Is(err, errLocked) {
			return nil, nil, fmt.Errorf("taking the schema migration lock: %w", translate(err))
		}
		if !time.Now().Add(backoff).Before(deadline) {
			return nil, nil, fmt.Errorf("%w: another process (%s) has held the schema migration lock (collection %s) since %s; it expires at %s unless renewed",
				storage.ErrUnavailable, holder.Owner, lockCollection, holder.AcquiredAt.UTC().Format(time.RFC3339), fromMicros(holder.ExpiresUS).Format(time.RFC3339))
		}
		t := time.NewTimer(backoff)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil, nil, ctx.Err()
		case <-t.C:
		}
		backoff = min(backoff*2, time.Second)
	}

	ctx, cancel := context.WithCancelCause(ctx)
	done := make(chan struct{})
	stopped := make(chan struct{})
	go func() {
		defer close(stopped)
		tick := time.NewTicker(m.lease / 3)
		defer tick.Stop()
		for {
			select {
			case <-done:
				return
			case <-tick.C:
				now := m.now()
				res, err := m.db.Collection(lockCollection).UpdateOne(ctx,
					bson.D{{Key: "_id", Value: lockID}, {Key: "owner", Value: m.owner}},
					bson.D{{Key: "$set", Value: bson.D{{Key: "expires_at", Value: now.Add(m.lease)}, {Key: "expires_at_us", Value: micros(now.Add(m.lease))}}}})
				if err == nil && res.MatchedCount == 0 {
					cancel(errors.New("lost the schema migration lock to another process"))
					return
				}
			}
		}
	}()
	unlock := func() {
		close(done)
		<-stopped
		// Release even if ctx was cancelled, so others need not wait out
		// the lease.
		rctx, rcancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
		defer rcancel()
		m.db.Collection(lockCollection).DeleteOne(rctx, bson.D{{Key: "_id", Value: lockID}, {Key: "owner", Value: m.owner}})
		cancel(nil)
	}
	return ctx, unlock, nil
}

// applied reads the records of applied steps, by version.
func (m *migrator) applied(ctx context.Context) (map[int64]record, error) {
	cur, err := m.db.Collection(migrationsCollection).Find(ctx, bson.D{})
	if err != nil {
		return nil, translate(err)
	}
	var recs []record
	if err := cur.All(ctx, &recs); err != nil {
		return nil, translate(err)
	}
	out := make(map[int64]record, len(recs))
	for _, r := range recs {
		out[r.Version] = r
	}
	return out, nil
}

// up applies every pending step in order, under the lock.
func (m *migrator) up(ctx context.Context) ([]storage.MigrationResult, error) {
	// Most starts find nothing to do: check before taking the lock.
	done, err := m.applied(ctx)
	if err != nil {
		return nil, err
	}
	if m.pending(done) == 0 {
		return nil, nil
	}
	ctx, unlock, err := m.lock(ctx)
	if err != nil {
		return nil, err
	}
	defer unlock()
	if done, err = m.applied(ctx); err != nil {
		return nil, err
	}
	var results []storage.MigrationResult
	for _, s := range m.steps {
		if _, ok := done[s.version]; ok {
			continue
		}
		start := time.Now()
		if err := s.up(ctx, m.db, m.log); err != nil {
			return results, fmt.Errorf("step %s: %w", s.name, translate(errors.Join(err, context.Cause(ctx))))
		}
		rec := record{Version: s.version, Name: s.name, AppliedAt: m.now().UTC()}
		if _, err := m.db.Collection(migrationsCollection).InsertOne(ctx, rec); err != nil {
			return results, fmt.Errorf("recording step %s: %w", s.name, translate(err))
		}
		results = append(results, storage.MigrationResult{Version: s.version, Name: s.name, Direction: "up", Duration: time.Since(start)})
		m.log.Info("applied a MongoDB schema step", "version", s.version, "name", s.name)
	}
	return results, nil
}

func (m *migrator) pending(done map[int64]record) int {
	n := 0
	for _, s := range m.steps {
		if _, ok := done[s.version]; !ok {
			n++
		}
	}
	return n
}

// version is the newest applied step, 0 for none.
func (m *migrator) version(ctx context.Context) (int64, error) {
	var r record
	err := m.db.Collection(migrationsCollection).FindOne(ctx, bson.D{}, options.FindOne().SetSort(bson.D{{Key: "_id", Value: -1}})).Decode(&r)
	if errors.Is(err, mongo.ErrNoDocuments) {
		return 0, nil
	}
	return r.Version, translate(err)
}

// downTo rolls back, newest first, every applied step newer than version,
// or only the newest when one is true.
func (m *migrator) downTo(ctx context.Context, version int64, one bool) ([]storage.MigrationResult, error) {
	ctx, unlock, err := m.lock(ctx)
	if err != nil {
		return nil, err
	}
	defer unlock()
	var results []storage.MigrationResult
	for {
		v, err := m.version(ctx)
		if err != nil {
			return results, err
		}
		switch {
		case one && len(results) == 1, v <= version && !one:
			return results, nil
		case v == 0:
			return nil, storage.ErrNothingToRollBack
		}
		var s *step
		for i := range m.steps {
			if m.steps[i].version == v {
				s = &m.steps[i]
			}
		}
		if s == nil {
			return results, fmt.Errorf("the database is at schema version %d, which this build does not know: roll back with the build that applied it", v)
		}
		start := time.Now()
		if err := s.down(ctx, m.db); err != nil {
			return results, fmt.Errorf("rolling back step %s: %w", s.name, translate(err))
		}
		if _, err := m.db.Collection(migrationsCollection).DeleteOne(ctx, bson.D{{Key: "_id", Value: v}}); err != nil {
			return results, fmt.Errorf("unrecording step %s: %w", s.name, translate(err))
		}
		results = append(results, storage.MigrationResult{Version: v, Name: s.name, Direction: "down", Duration: time.Since(start)})
		m.log.Info("rolled back a MongoDB schema step", "version", v, "name", s.name)
	}
}

// Migrations is storage.Migrations for MongoDB's schema steps, on a client
// of its own that Close disconnects.
type Migrations struct {
	m      *migrator
	client *mongo.Client
	where  string
}

var _ storage.Migrations = (*Migrations)(nil)

func (g *Migrations) Up(ctx context.Context) ([]storage.MigrationResult, error) { return g.m.up(ctx) }

func (g *Migrations) Down(ctx context.Context) (storage.MigrationResult, error) {
	res, err := g.m.downTo(ctx, 0, true)
	if len(res) == 0 {
		return storage.MigrationResult{}, err
	}
	return res[0], err
}

func (g *Migrations) DownTo(ctx context.Context, version int64) ([]storage.MigrationResult, error) {
	return g.m.downTo(ctx, version, false)
}

func (g *Migrations) Status(ctx context.Context) ([]storage.MigrationStatus, error) {
	done, err := g.m.applied(ctx)
	if err != nil {
		return nil, err
	}
	out := make([]storage.MigrationStatus, len(g.m.steps))
	for i, s := range g.m.steps {
		r, ok := done[s.version]
		out[i] = storage.MigrationStatus{Version: s.version, Name: s.name, Applied: ok}
		if ok {
			out[i].AppliedAt = r.AppliedAt.UTC()
		}
	}
	return out, nil
}

func (g *Migrations) Version(ctx context.Context) (int64, error) { return g.m.version(ctx) }
func (g *Migrations) Where() string                              { return g.where }

func (g *Migrations) Close() error {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	return g.client.Disconnect(ctx)
}
