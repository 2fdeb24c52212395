package engine

import (
	"context"
	"database/sql"
	"errors"
	"path"

	"github.com/pressly/goose/v3"

	"github.com/example/flystorage/internal/storage"
)

// Goose is storage.Migrations for a SQL engine, on a goose provider over
// db, which Close closes. where names the database, secrets masked.
func Goose(p *goose.Provider, db *sql.DB, where string) storage.Migrations {
	return &gooseMigrations{p: p, db: db, where: where}
}

type gooseMigrations struct {
	p     *goose.Provider
	db    *sql.DB
	where string
}

func (g *gooseMigrations) Up(ctx context.Context) ([]storage.MigrationResult, error) {
	res, err := g.p.Up(ctx)
	return results(res), err
}

func (g *gooseMigrations) Down(ctx context.Context) (storage.MigrationResult, error) {
	res, err := g.p.Down(ctx)
	if errors.Is(err, goose.ErrNoNextVersion) {
		return storage.MigrationResult{}, storage.ErrNothingToRollBack
	}
	if res == nil {
		return storage.MigrationResult{}, err
	}
	return results([]*goose.MigrationResult{res})[0], err
}

func (g *gooseMigrations) DownTo(ctx context.Context, version int64) ([]storage.MigrationResult, error) {
	res, err := g.p.DownTo(ctx, version)
	return results(res), err
}

func (g *gooseMigrations) Status(ctx context.Context) ([]storage.MigrationStatus, error) {
	all, err := g.p.Status(ctx)
	if err != nil {
		return nil, err
	}
	out := make([]storage.MigrationStatus, len(all))
	for i, s := range all {
		out[i] = storage.MigrationStatus{Version: s.Source.Version, Name: path.Base(s.Source.Path),
			Applied: s.State == goose.StateApplied, AppliedAt: s.AppliedAt.UTC()}
	}
	return out, nil
}

func (g *gooseMigrations) Version(ctx context.Context) (int64, error) { return g.p.GetDBVersion(ctx) }
func (g *gooseMigrations) Where() string                              { return g.where }
func (g *gooseMigrations) Close() error                               { return g.db.Close() }

func results(in []*goose.MigrationResult) []storage.MigrationResult {
	out := make([]storage.MigrationResult, 0, len(in))
	for _, r := range in {
		if r == nil {
			continue
		}
		out = append(out, storage.MigrationResult{Version: r.Source.Version, Name: path.Base(r.Source.Path),
			Direction: r.Direction, Duration: r.Duration})
	}
	return out
}
