package migrations

import (
	"context"
	"log/slog"
	"path"

	"github.com/pressly/goose/v3"
)

// Up applies p's pending migrations and logs each one it applied, also
// when a later one fails, so a start with MIGRATE_ON_START says what it
// changed.
func Up(ctx context.Context, p *goose.Provider, log *slog.Logger) error {
	applied, err := p.Up(ctx)
	for _, r := range applied {
		if r.Error == nil {
			log.Info("applied migration", "version", r.Source.Version, "name", path.Base(r.Source.Path), "duration", r.Duration)
		}
	}
	return err
}
