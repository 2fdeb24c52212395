package mongodb

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/example/flystorage/internal/storage"
	"github.com/example/flystorage/internal/testenv"
)

// migrations opens the schema steps of uri's database, as cmd/migrate does.
func migrations(t *testing.T, uri string) *Migrations {
	t.Helper()
	src := load(t, uri, nil)
	m, err := src.Migrations(context.Background())
	if err != nil {
		t.Fatalf("Migrations: %v", err)
	}
	t.Cleanup(func() { m.Close() })
	return m.(*Migrations)
}

func TestMigrationsUpDown(t *testing.T) {
	ctx := context.Background()
	m := migrations(t, testenv.MongoURI(t))
	last := steps[len(steps)-1].version

	if v, err := m.Version(ctx); err != nil || v != 0 {
		t.Fatalf("Version of an empty database = %d, %v; want 0", v, err)
	}
	if _, err := m.Down(ctx); !errors.Is(err, storage.ErrNothingToRollBack) {
		t.Errorf("Down at version 0 = %v, want ErrNothingToRollBack", err)
	}
	res, err := m.Up(ctx)
	if err != nil || len(res) != len(steps) || res[0].Version != 1 || res[0].Direction != "up" {
		t.Fatalf("Up = %+v, %v; want every step, oldest first", res, err)
	}
	if res, err := m.Up(ctx); err != nil || len(res) != 0 {
		t.Errorf("Up again = %+v, %v; want nothing applied", res, err)
	}
	if v, err := m.Version(ctx); err != nil || v != last {
		t.Errorf("Version after Up = %d, %v; want %d", v, err, last)
	}
	st, err := m.Status(ctx)
	if err != nil || len(st) != len(steps) {
		t.Fatalf("Status = %+v, %v", st, err)
	}
	for _, s := range st {
		if !s.Applied || s.AppliedAt.IsZero() || !strings.HasPrefix(s.Name, fmt.Sprintf("%05d_", s.Version)) {
			t.Errorf("Status after Up: %+v, want applied with a time", s)
		}
	}
	if !strings.Contains(m.Where(), "database test_") {
		t.Errorf("Where = %q, want the database named", m.Where())
	}

	r, err := m.Down(ctx)
	if err != nil || r.Version != last || r.Direction != "down" {
		t.Errorf("Down = %+v, %v; want step %d rolled back", r, err, last)
	}
	names, err := m.m.db.ListCollectionNames(ctx, bson.D{})
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(strings.Join(names, ","), keysCollection) {
		t.Errorf("after rolling back step %d, collections are %v; want no %s", last, names, keysCollection)
	}
	rs, err := m.DownTo(ctx, 1)
	if err != nil || len(rs) != int(last)-2 {
		t.Errorf("DownTo(1) = %+v, %v; want %d steps rolled back", rs, err, last-2)
	}
	if v, _ := m.Version(ctx); v != 1 {
		t.Errorf("Version after DownTo(1) = %d", v)
	}
	st, _ = m.Status(ctx)
	if !st[0].Applied || st[1].Applied {
		t.Errorf("Status after DownTo(1) = %+v; want only step 1 applied", st)
	}
	if res, err := m.Up(ctx); err != nil || len(res) != len(steps)-1 {
		t.Errorf("Up after DownTo(1) = %+v, %v; want the %d later steps again", res, err, len(steps)-1)
	}
}

// TestConcurrentUp: four processes starting at once against an empty
// database all succeed, and each step is applied by exactly one of them.
func TestConcurrentUp(t *testing.T) {
	ctx := context.Background()
	uri := testenv.MongoURI(t)
	const procs = 4
	ms := make([]*Migrations, procs)
	for i := range ms {
		ms[i] = migrations(t, uri) // a client of its own, as a machine has
	}
	var wg sync.WaitGroup
	results := make([][]storage.MigrationResult, procs)
	errs := make([]error, procs)
	for i := range ms {
		wg.Go(func() { results[i], errs[i] = ms[i].Up(ctx) })
	}
	wg.Wait()
	applied := map[int64]int{}
	for i := range ms {
		if errs[i] != nil {
			t.Errorf("Up in process %d: %v", i, errs[i])
		}
		for _, r := range results[i] {
			applied[r.Version]++
		}
	}
	for _, s := range steps {
		if applied[s.version] != 1 {
			t.Errorf("step %s was applied %d times by %d processes, want once", s.name, applied[s.version], procs)
		}
	}
	n, err := ms[0].m.db.Collection(migrationsCollection).CountDocuments(ctx, bson.D{})
	if err != nil || n != int64(len(steps)) {
		t.Errorf("%s holds %d records, %v; want %d", migrationsCollection, n, err, len(steps))
	}
	if n, _ := ms[0].m.db.Collection(lockCollection).CountDocuments(ctx, bson.D{}); n != 0 {
		t.Errorf("the lock was left behind: %d documents in %s", n, lockCollection)
	}
}

// TestLockHeldAndExpired: a lock another process holds makes Up fail
// with a clear error once the wait is over; a lock whose holder stopped
// renewing it is taken over once its lease ends.
func TestLockHeldAndExpired(t *testing.T) {
	ctx := context.Background()
	m := migrations(t, testenv.MongoURI(t)).m
	start := time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)
	clock := start
	m.now = func() time.Time { return clock }
	m.wait = 0

	crashed := newMigrator(m.db, nil)
	crashed.owner = "crashed-machine"
	crashed.now = m.now
	if _, err := crashed.tryLock(ctx); err != nil {
		t.Fatalf("taking the lock: %v", err)
	}

	_, err := m.up(ctx)
	if !errors.Is(err, storage.ErrUnavailable) || !strings.Contains(err.Error(), "crashed-machine") {
		t.Errorf("Up while another holds the lock = %v; want ErrUnavailable naming the holder", err)
	}

	clock = start.Add(crashed.lease + time.Second)
	res, err := m.up(ctx)
	if err != nil || len(res) != len(steps) {
		t.Errorf("Up once the lock's lease ended = %d steps, %v; want every step", len(res), err)
	}
}
